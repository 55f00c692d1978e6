//! The ITU-T G.107 (06/2015) E-model as arithmetic: the transmission rating R from the
//! parameters of G.107 Table 3, every term kept visible, and R → MOS by Annex B.
//! It knows no codec names, measurements or configuration (those are `codec.rs` and
//! `mapping.rs`), so each equation can be checked against the standard on its own.
//!
//! Equation numbers `(7-n)` are those of G.107 clause 7. The wideband variant (G.107.1) is
//! partial and provisional; see [`wideband_terms`] and `docs/quality.md`.

/// Delay-sensitivity class of G.107 Table 1: where the absolute-delay impairment Idd starts
/// (`m_t`, ms) and how steeply it grows (`s_t`). Carrier and enterprise telephony use the
/// default class; the others exist for applications whose users tolerate more delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelaySensitivity {
    /// Sharpness sT.
    pub s_t: f64,
    /// Minimum perceivable delay mT, in ms.
    pub m_t: f64,
}

impl DelaySensitivity {
    /// Default class (sT = 1, mT = 100 ms): the one for conversational telephony.
    pub const DEFAULT: DelaySensitivity = DelaySensitivity {
        s_t: 1.0,
        m_t: 100.0,
    };
    /// Low sensitivity (sT = 0.55, mT = 120 ms).
    pub const LOW: DelaySensitivity = DelaySensitivity {
        s_t: 0.55,
        m_t: 120.0,
    };
    /// Very low sensitivity (sT = 0.4, mT = 150 ms).
    pub const VERY_LOW: DelaySensitivity = DelaySensitivity {
        s_t: 0.4,
        m_t: 150.0,
    };
}

impl Default for DelaySensitivity {
    fn default() -> Self {
        DelaySensitivity::DEFAULT
    }
}

/// Every input parameter of the narrowband E-model, in G.107's own units (dB, ms, %).
///
/// `Default` gives G.107 Table 3, which rates an ideal G.711 connection at R = 93.2; callers
/// change only what they measured (delays, codec, loss) and keep the standard's values for
/// the terminal and room parameters nobody measures in a VoIP network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EModelParams {
    /// Send loudness rating SLR, dB (8).
    pub slr: f64,
    /// Receive loudness rating RLR, dB (2).
    pub rlr: f64,
    /// Sidetone masking rating STMR, dB (15).
    pub stmr: f64,
    /// Listener sidetone rating LSTR, dB (18 = STMR + Dr).
    pub lstr: f64,
    /// D-value of the telephone, send side Ds (3).
    pub ds: f64,
    /// D-value of the telephone, receive side Dr (3). Kept for completeness: the equations use
    /// it only through LSTR = STMR + Dr, so change `lstr` with it.
    pub dr: f64,
    /// Talker echo loudness rating TELR, dB (65).
    pub telr: f64,
    /// Weighted echo path loss WEPL, dB (110).
    pub wepl: f64,
    /// Mean one-way delay of the echo path T, ms (0).
    pub t: f64,
    /// Round-trip delay in a 4-wire loop Tr, ms (0).
    pub tr: f64,
    /// Absolute (mouth-to-ear) one-way delay Ta, ms (0).
    pub ta: f64,
    /// Number of quantisation distortion units qdu (1).
    pub qdu: f64,
    /// Equipment impairment factor Ie of the codec (0).
    pub ie: f64,
    /// Packet-loss robustness factor Bpl of the codec (4.3).
    pub bpl: f64,
    /// Packet-loss probability Ppl, in percent 0…100 (0).
    pub ppl: f64,
    /// Burst ratio BurstR: 1 for random loss, above 1 for bursty loss (1).
    pub burst_r: f64,
    /// Circuit noise Nc, dBm0p (−70).
    pub nc: f64,
    /// Noise floor at the receive side Nfor, dBmp (−64).
    pub nfor: f64,
    /// Room noise at the send side Ps, dB(A) (35).
    pub ps: f64,
    /// Room noise at the receive side Pr, dB(A) (35).
    pub pr: f64,
    /// Advantage factor A (0; 0 is right for wire-bound and VoIP monitoring).
    pub a: f64,
    /// Delay-sensitivity class (default class).
    pub delay_sensitivity: DelaySensitivity,
}

impl Default for EModelParams {
    fn default() -> Self {
        EModelParams {
            slr: 8.0,
            rlr: 2.0,
            stmr: 15.0,
            lstr: 18.0,
            ds: 3.0,
            dr: 3.0,
            telr: 65.0,
            wepl: 110.0,
            t: 0.0,
            tr: 0.0,
            ta: 0.0,
            qdu: 1.0,
            ie: 0.0,
            bpl: 4.3,
            ppl: 0.0,
            burst_r: 1.0,
            nc: -70.0,
            nfor: -64.0,
            ps: 35.0,
            pr: 35.0,
            a: 0.0,
            delay_sensitivity: DelaySensitivity::DEFAULT,
        }
    }
}

impl EModelParams {
    /// True when a delay, the loss or the burst ratio lies outside the ranges G.107 Table 3
    /// was validated for (T, Ta ≤ 500 ms, Tr ≤ 1000 ms, Ppl ≤ 20 %, BurstR ≤ 8). The model still
    /// computes a value there, but it is an extrapolation and should be shown as such.
    pub fn extrapolated(&self) -> bool {
        self.t > 500.0
            || self.ta > 500.0
            || self.tr > 1000.0
            || self.ppl > 20.0
            || self.burst_r > 8.0
    }
}

/// Every term of one E-model evaluation, so a score can be explained and each equation tested.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Terms {
    /// Total noise power No, dBm0p (7-3).
    pub no: f64,
    /// Basic signal-to-noise ratio Ro (7-2).
    pub ro: f64,
    /// Impairment by too-low overall loudness, Iolr.
    pub iolr: f64,
    /// Impairment by non-optimum sidetone, Ist.
    pub ist: f64,
    /// Impairment by quantising distortion, Iq.
    pub iq: f64,
    /// Simultaneous impairment factor Is = Iolr + Ist + Iq (7-8).
    pub is: f64,
    /// Talker-echo impairment Idte.
    pub idte: f64,
    /// Listener-echo impairment Idle.
    pub idle: f64,
    /// Absolute-delay impairment Idd.
    pub idd: f64,
    /// Delay impairment factor Id = Idte + Idle + Idd (7-18).
    pub id: f64,
    /// Effective equipment impairment factor Ie,eff (7-29).
    pub ie_eff: f64,
    /// Advantage factor A.
    pub a: f64,
    /// Transmission rating R = Ro − Is − Id − Ie,eff + A (7-1).
    pub r: f64,
}

/// Transmission rating R of the narrowband E-model (G.107 (7-1)), on the scale 0…100.
pub fn r_factor(p: &EModelParams) -> f64 {
    terms(p).r
}

/// Every term of the narrowband E-model for `p` (G.107 clause 7).
pub fn terms(p: &EModelParams) -> Terms {
    let olr = p.slr + p.rlr;

    // 7.2: basic signal-to-noise ratio.
    let nfo = p.nfor + p.rlr; // (7-7)
    let pre = p.pr + 10.0 * (1.0 + pow10((10.0 - p.lstr) / 10.0)).log10(); // (7-6)
    let nor = p.rlr - 121.0 + pre + 0.008 * (pre - 35.0).powi(2); // (7-5)
    let nos = p.ps - p.slr - p.ds - 100.0 + 0.004 * (p.ps - olr - p.ds - 14.0).powi(2); // (7-4)
    let no = 10.0
        * (pow10(p.nc / 10.0) + pow10(nos / 10.0) + pow10(nor / 10.0) + pow10(nfo / 10.0)).log10(); // (7-3)
    let ro = 15.0 - 1.5 * (p.slr + no); // (7-2)

    // 7.3: simultaneous impairments.
    let xolr = olr + 0.2 * (64.0 + no - p.rlr);
    let iolr = 20.0 * ((1.0 + (xolr / 8.0).powi(8)).powf(1.0 / 8.0) - xolr / 8.0);
    let stmro =
        -10.0 * (pow10(-p.stmr / 10.0) + (-p.t / 4.0).exp() * pow10(-p.telr / 10.0)).log10();
    let ist = 12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
        - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
        - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
        + 29.0;
    let q = 37.0 - 15.0 * p.qdu.log10();
    let g = 1.07 + 0.258 * q + 0.0602 * q * q;
    let z = 46.0 / 30.0 - g / 40.0;
    let y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
    let iq = 15.0 * (1.0 + pow10(y) + pow10(z)).log10();
    let is = iolr + ist + iq;

    // 7.4: delay impairments.
    let idte = talker_echo(p, no, ist);
    let idle = listener_echo(p.wepl, p.tr, ro);
    let idd = absolute_delay(p.ta, p.delay_sensitivity);
    let id = idte + idle + idd;

    // 7.5: codec and packet loss.
    let ie_eff = effective_equipment_impairment(p.ie, p.bpl, p.ppl, p.burst_r, 95.0);

    let r = ro - is - id - ie_eff + p.a;
    Terms {
        no,
        ro,
        iolr,
        ist,
        iq,
        is,
        idte,
        idle,
        idd,
        id,
        ie_eff,
        a: p.a,
        r,
    }
}

fn pow10(x: f64) -> f64 {
    10f64.powf(x)
}

/// Idte, with the STMR corrections of G.107 7.4 (TERVs below 9 dB, √(Idte² + Ist²) above 20 dB).
fn talker_echo(p: &EModelParams, no: f64, ist: f64) -> f64 {
    let t = p.t;
    let mut terv =
        p.telr - 40.0 * ((1.0 + t / 10.0) / (1.0 + t / 150.0)).log10() + 6.0 * (-0.3 * t * t).exp();
    if p.stmr < 9.0 {
        terv += ist / 2.0;
    }
    let roe = -1.5 * (no - p.rlr);
    let re = 80.0 + 2.5 * (terv - 14.0);
    let idte = if t < 1.0 {
        0.0
    } else {
        let d = roe - re;
        (d / 2.0 + (d * d / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t).exp())
    };
    if p.stmr > 20.0 {
        (idte * idte + ist * ist).sqrt()
    } else {
        idte
    }
}

/// Idle from the weighted echo path loss and the 4-wire round-trip delay.
fn listener_echo(wepl: f64, tr: f64, ro: f64) -> f64 {
    let rle = 10.5 * (wepl + 7.0) * (tr + 1.0).powf(-0.25);
    let d = ro - rle;
    d / 2.0 + (d * d / 4.0 + 169.0).sqrt()
}

/// Idd: zero up to mT, then the G.107 curve in X = log2(Ta / mT), saturating near 50.
fn absolute_delay(ta: f64, class: DelaySensitivity) -> f64 {
    if ta <= class.m_t {
        return 0.0;
    }
    let x = (ta / class.m_t).log2();
    let e = 6.0 * class.s_t;
    25.0 * ((1.0 + x.powf(e)).powf(1.0 / e) - 3.0 * (1.0 + (x / 3.0).powf(e)).powf(1.0 / e) + 2.0)
}

/// Ie,eff = Ie + (top − Ie) · Ppl / (Ppl/BurstR + Bpl): (7-29) with top = 95 on the
/// narrowband scale.
fn effective_equipment_impairment(ie: f64, bpl: f64, ppl: f64, burst_r: f64, top: f64) -> f64 {
    if ppl <= 0.0 {
        return ie;
    }
    ie + (top - ie) * ppl / (ppl / burst_r + bpl)
}

/// MOS-CQE from the narrowband rating R by G.107 Annex B (B-4), clamped to [1, 4.5].
///
/// The clamp matters at the low end too: for 0 < R < ≈ 6.5 the cubic dips slightly below 1.
/// A NaN rating (only possible from nonsensical parameters) gives 1, the worst score, rather
/// than a NaN that would poison every mean it enters.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        return 1.0;
    }
    if r >= 100.0 {
        return 4.5;
    }
    let mos = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6;
    mos.clamp(1.0, 4.5)
}

/// Top of the wideband rating scale (G.107.1): 1.29 × the narrowband 100.
pub const WIDEBAND_R_MAX: f64 = 129.0;

/// Ratio of the wideband to the narrowband rating scale.
pub const WIDEBAND_SCALE: f64 = WIDEBAND_R_MAX / 100.0;

/// Terms of the wideband E-model (G.107.1), as far as callpulse implements it: **provisional**.
///
/// R_WB = Ro,WB − Is,WB − Id,WB − Ie,eff,WB + A with Ro,WB = 129 and Is,WB = 0 (the 2019 edition
/// does not cover loudness, sidetone, noise or quantising distortion, so the terminal and room
/// parameters of `p` are not used), Id,WB = 1.29 × the narrowband Id of `p` (the delay impairment
/// moved onto the 129 scale, as rtpengine's fullband code does with 1.48), and
/// Ie,eff,WB = Ie,WB + (129 − Ie,WB) · Ppl / (Ppl/BurstR + Bpl) with `p.ie`, `p.bpl` read as
/// wideband values. These choices are assumptions recorded in `docs/quality.md`.
pub fn wideband_terms(p: &EModelParams) -> Terms {
    let nb = terms(p);
    let id = WIDEBAND_SCALE * nb.id;
    let ie_eff = effective_equipment_impairment(p.ie, p.bpl, p.ppl, p.burst_r, WIDEBAND_R_MAX);
    Terms {
        no: nb.no,
        ro: WIDEBAND_R_MAX,
        iolr: 0.0,
        ist: 0.0,
        iq: 0.0,
        is: 0.0,
        idte: WIDEBAND_SCALE * nb.idte,
        idle: WIDEBAND_SCALE * nb.idle,
        idd: WIDEBAND_SCALE * nb.idd,
        id,
        ie_eff,
        a: p.a,
        r: WIDEBAND_R_MAX - id - ie_eff + p.a,
    }
}

/// Wideband rating R_WB (0…129); see [`wideband_terms`].
pub fn r_factor_wideband(p: &EModelParams) -> f64 {
    wideband_terms(p).r
}

/// MOS from a wideband rating: R_WB / 1.29 brought back to the narrowband scale, then Annex B.
/// Feeding R_WB into the narrowband cubic would read every rating above 100 as 4.5.
pub fn mos_from_r_wideband(r_wb: f64) -> f64 {
    mos_from_r(r_wb / WIDEBAND_SCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_delay(d: f64) -> EModelParams {
        EModelParams {
            t: d,
            ta: d,
            tr: 2.0 * d,
            ..EModelParams::default()
        }
    }

    #[test]
    fn defaults_reproduce_clause_7_7_term_by_term() {
        let t = terms(&EModelParams::default());
        assert!((t.no - -61.1792).abs() < 1e-4, "No {}", t.no);
        assert!((t.ro - 94.7688).abs() < 1e-4, "Ro {}", t.ro);
        assert!((t.iolr - 0.4402).abs() < 1e-4, "Iolr {}", t.iolr);
        assert!((t.ist - -0.0007).abs() < 1e-4, "Ist {}", t.ist);
        assert!((t.iq - 0.9741).abs() < 1e-4, "Iq {}", t.iq);
        assert!((t.is - 1.4136).abs() < 1e-4, "Is {}", t.is);
        assert_eq!(t.idte, 0.0);
        assert!((t.idle - 0.149).abs() < 1e-3, "Idle {}", t.idle);
        assert_eq!(t.idd, 0.0);
        assert_eq!(t.ie_eff, 0.0);
        assert!((t.r - 93.206_207_7).abs() < 1e-6, "R {}", t.r);
    }

    #[test]
    fn delay_terms_match_the_reference_table() {
        // (d, Idte, Idle, Idd, R) from reference/emodel.md §1.3 (full G.107, T = Ta = d, Tr = 2d).
        let rows = [
            (100.0, 1.964, 0.728, 0.0, 90.664),
            (150.0, 2.812, 0.841, 0.164, 89.539),
            (200.0, 3.571, 0.935, 3.044, 85.805),
            (300.0, 4.834, 1.094, 14.761, 72.666),
            (400.0, 5.808, 1.230, 24.070, 62.247),
            (500.0, 6.564, 1.352, 30.636, 54.803),
            (800.0, 8.029, 1.671, 40.832, 42.822),
        ];
        for (d, idte, idle, idd, r) in rows {
            let t = terms(&with_delay(d));
            assert!((t.idte - idte).abs() < 1.5e-3, "Idte at {d}: {}", t.idte);
            assert!((t.idle - idle).abs() < 1.5e-3, "Idle at {d}: {}", t.idle);
            assert!((t.idd - idd).abs() < 1.5e-3, "Idd at {d}: {}", t.idd);
            assert!((t.r - r).abs() < 1.5e-3, "R at {d}: {}", t.r);
        }
    }

    #[test]
    fn talker_echo_dips_slightly_negative_just_above_one_ms() {
        // A property of the formula with TELR = 65 dB, not a bug (reference §1.3).
        let t = terms(&with_delay(2.0));
        assert!(t.idte < 0.0 && t.idte > -0.2, "Idte {}", t.idte);
        assert_eq!(terms(&with_delay(0.5)).idte, 0.0);
    }

    #[test]
    fn loss_term_follows_7_29() {
        let p = EModelParams {
            ie: 11.0,
            bpl: 19.0,
            ppl: 5.0,
            burst_r: 2.0,
            ..EModelParams::default()
        };
        let want = 11.0 + 84.0 * 5.0 / (2.5 + 19.0);
        assert!((terms(&p).ie_eff - want).abs() < 1e-12);
        // Burstier loss hurts more; BurstR = 1 is the random-loss case.
        let random = terms(&EModelParams { burst_r: 1.0, ..p }).ie_eff;
        assert!(random < terms(&p).ie_eff);
    }

    #[test]
    fn stmr_corrections_change_talker_echo() {
        let base = with_delay(200.0);
        let low = terms(&EModelParams { stmr: 8.0, ..base });
        let high = terms(&EModelParams { stmr: 21.0, ..base });
        let mid = terms(&base);
        // Below 9 dB the echo threshold moves by Ist/2; above 20 dB Idte combines with Ist.
        // Between them STMR does not enter Idte, so the 15 dB value is the uncorrected one.
        assert_ne!(low.idte, mid.idte);
        let combined = (mid.idte.powi(2) + high.ist.powi(2)).sqrt();
        assert!(
            (high.idte - combined).abs() < 1e-9,
            "{} vs {combined}",
            high.idte
        );
    }

    #[test]
    fn delay_sensitivity_classes_move_the_knee() {
        let p = with_delay(115.0);
        assert!(terms(&p).idd > 0.0);
        let low = EModelParams {
            delay_sensitivity: DelaySensitivity::LOW,
            ..p
        };
        assert_eq!(terms(&low).idd, 0.0, "the low class starts at 120 ms");
        let far = with_delay(400.0);
        let idd = |class| {
            terms(&EModelParams {
                delay_sensitivity: class,
                ..far
            })
            .idd
        };
        assert!(idd(DelaySensitivity::DEFAULT) > idd(DelaySensitivity::LOW));
        assert!(idd(DelaySensitivity::LOW) > idd(DelaySensitivity::VERY_LOW));
    }

    #[test]
    fn annex_b_points_and_clamps() {
        for (r, mos) in [
            (90.0, 4.34),
            (80.0, 4.024),
            (70.0, 3.60),
            (60.0, 3.10),
            (50.0, 2.58),
        ] {
            assert!(
                (mos_from_r(r) - mos).abs() < 0.005,
                "R {r}: {}",
                mos_from_r(r)
            );
        }
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(3.0), 1.0, "the cubic dips below 1 near R = 3");
        assert_eq!(mos_from_r(100.0), 4.5);
        assert_eq!(mos_from_r(130.0), 4.5);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
    }

    #[test]
    fn extrapolation_flag_follows_table_3_ranges() {
        assert!(!EModelParams::default().extrapolated());
        assert!(with_delay(501.0).extrapolated());
        assert!(
            EModelParams {
                ppl: 25.0,
                ..EModelParams::default()
            }
            .extrapolated()
        );
    }

    #[test]
    fn wideband_scale_tops_at_129_and_maps_back() {
        let p = EModelParams::default();
        let t = wideband_terms(&p);
        assert!((t.r - (129.0 - 1.29 * terms(&p).idle)).abs() < 1e-9);
        assert!(t.r > 100.0);
        // G.711 heard on the wideband scale (Ie,WB = 36) sits near the narrowband 93.
        let g711 = r_factor_wideband(&EModelParams { ie: 36.0, ..p });
        assert!((g711 - 92.8).abs() < 0.1, "{g711}");
        assert!((mos_from_r_wideband(129.0) - 4.5).abs() < 1e-12);
        assert!((mos_from_r_wideband(116.1) - mos_from_r(90.0)).abs() < 1e-12);
    }
}
