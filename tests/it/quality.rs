//! quality: the E-model against its published values and an independent implementation, the
//! codec table, and the measurement mapping end to end (numbers documented in docs/quality.md).

use std::collections::BTreeMap;
use std::time::Duration;

use callpulse::config::{CodecConfig, QualityConfig};
use callpulse::event::QualityFields;
use callpulse::quality::{
    self, EModelParams, codec, emodel, estimate_call, estimate_probe, mos_from_r, r_factor,
};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn path(d: f64, ie: f64, bpl: f64, ppl: f64, burst_r: f64) -> EModelParams {
    EModelParams {
        t: d,
        ta: d,
        tr: 2.0 * d,
        ie,
        bpl,
        ppl,
        burst_r,
        ..EModelParams::default()
    }
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} ± {tol}"
    );
}

// ---- published values (reference/emodel.md §8) ----

#[test]
fn all_defaults_give_r_93_2_and_mos_4_41() {
    let r = r_factor(&EModelParams::default());
    close(r, 93.2, 0.05, "R with G.107 Table 3 defaults");
    close(mos_from_r(r), 4.41, 0.01, "MOS with defaults");
    // The exact value of the equations, carried to 10 digits by VoIPmonitor too.
    close(r, 93.206_207_7, 1e-6, "R to the digit");
}

#[test]
fn annex_b_category_boundaries() {
    for (r, mos) in [
        (90.0, 4.34),
        (80.0, 4.03),
        (70.0, 3.60),
        (60.0, 3.10),
        (50.0, 2.58),
    ] {
        close(mos_from_r(r), mos, 0.01, &format!("MOS at R {r}"));
    }
    // The printed 4.03 at R = 80 is the formula's 4.024 rounded up.
    close(mos_from_r(80.0), 4.024, 0.0005, "MOS at R 80 by B-4");
    close(mos_from_r(93.2), 4.41, 0.01, "MOS at R 93.2");
}

#[test]
fn mos_clamps_at_both_ends() {
    // R above 100 (the advantage factor can push it there) reads 4.5.
    let high = EModelParams {
        a: 20.0,
        ..EModelParams::default()
    };
    let r = r_factor(&high);
    assert!(r > 100.0, "R {r}");
    assert_eq!(mos_from_r(r), 4.5);
    assert_eq!(mos_from_r(100.0), 4.5);
    // R below 0 (heavy loss without PLC and a satellite delay) reads 1.
    let low = path(800.0, 0.0, 4.3, 30.0, 4.0);
    let r = r_factor(&low);
    assert!(r < 0.0, "R {r}");
    assert_eq!(mos_from_r(r), 1.0);
    // Just above 0 the cubic dips below 1; the clamp holds it at 1.
    for r in [0.5, 3.0, 5.73, 6.0] {
        assert_eq!(mos_from_r(r), 1.0, "R {r}");
    }
    assert!(mos_from_r(7.0) > 1.0);
}

// ---- the sweep against the independent Python implementation ----

struct Row {
    codec: String,
    ie: f64,
    bpl: f64,
    burst_r: f64,
    delay_ms: f64,
    loss_pct: f64,
    r: f64,
    mos: f64,
}

fn reference_rows() -> Vec<Row> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/emodel_reference.csv"
    );
    let text = std::fs::read_to_string(file).expect("run tests/data/emodel_reference.py");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("codec,ie,bpl,burst_r,delay_ms,loss_pct,r,mos")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 8, "{l}");
            let n = |i: usize| f[i].parse::<f64>().unwrap();
            Row {
                codec: f[0].to_string(),
                ie: n(1),
                bpl: n(2),
                burst_r: n(3),
                delay_ms: n(4),
                loss_pct: n(5),
                r: n(6),
                mos: n(7),
            }
        })
        .collect()
}

#[test]
fn sweep_matches_the_independent_reference() {
    let rows = reference_rows();
    assert!(rows.len() > 3000, "{} rows", rows.len());
    let mut worst_r: f64 = 0.0;
    let mut worst_mos: f64 = 0.0;
    for row in &rows {
        // The reference's codec rows are the table's rows.
        let c = codec::builtin(&row.codec).unwrap();
        assert_eq!((c.ie, c.bpl), (row.ie, row.bpl), "{}", row.codec);
        let r = r_factor(&path(
            row.delay_ms,
            row.ie,
            row.bpl,
            row.loss_pct,
            row.burst_r,
        ));
        let what = format!(
            "{} d={} loss={} burst={}",
            row.codec, row.delay_ms, row.loss_pct, row.burst_r
        );
        close(r, row.r, 0.05, &format!("R {what}"));
        close(mos_from_r(r), row.mos, 0.01, &format!("MOS {what}"));
        worst_r = worst_r.max((r - row.r).abs());
        worst_mos = worst_mos.max((mos_from_r(r) - row.mos).abs());
    }
    // Both follow the same equations, so beyond the tolerance the agreement is to the CSV's
    // six printed decimals; a larger gap means one of them changed.
    assert!(worst_r < 1e-5 && worst_mos < 1e-5, "{worst_r} {worst_mos}");
    let codecs: std::collections::BTreeSet<_> = rows.iter().map(|r| r.codec.as_str()).collect();
    assert_eq!(
        codecs.into_iter().collect::<Vec<_>>(),
        ["G711", "G711-noPLC", "G729A"]
    );
}

// ---- monotonicity over the grid ----

#[test]
fn more_loss_or_delay_never_raises_mos() {
    for name in ["G711", "G711-noPLC", "G729A"] {
        let c = codec::builtin(name).unwrap();
        let mos = |d: f64, loss: f64, burst: f64| {
            mos_from_r(r_factor(&path(d, c.ie, c.bpl, loss, burst)))
        };
        for burst in [1.0, 2.0, 4.0] {
            for di in 0..=160 {
                let d = f64::from(di) * 5.0;
                for li in 0..=60 {
                    let loss = f64::from(li) * 0.5;
                    let here = mos(d, loss, burst);
                    assert!(
                        mos(d + 5.0, loss, burst) <= here,
                        "{name}: delay {d}→{} raised MOS at loss {loss}",
                        d + 5.0
                    );
                    assert!(
                        mos(d, loss + 0.5, burst) <= here,
                        "{name}: loss {loss}→{} raised MOS at delay {d}",
                        loss + 0.5
                    );
                    if burst < 4.0 {
                        assert!(
                            mos(d, loss, burst * 2.0) <= here,
                            "{name}: burstier loss raised MOS"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn worse_measurements_never_raise_a_call_mos() {
    let cfg = QualityConfig::default();
    let call = |rtt: u64, jitter: u64, loss: f64| {
        estimate_call(
            &QualityFields {
                rtt: Some(ms(rtt)),
                jitter: Some(ms(jitter)),
                loss_ratio: Some(loss),
                codec: Some("PCMU".into()),
                ..QualityFields::default()
            },
            &cfg,
        )
        .unwrap()
        .mos
    };
    for rtt in (0..=1000).step_by(50) {
        for jitter in (0..=100).step_by(10) {
            for loss in [0.0, 0.01, 0.05, 0.1, 0.2] {
                let here = call(rtt, jitter, loss);
                assert!(call(rtt + 50, jitter, loss) <= here);
                assert!(call(rtt, jitter + 10, loss) <= here);
                assert!(call(rtt, jitter, loss + 0.01) <= here);
            }
        }
    }
}

// ---- codec table ----

#[test]
fn codec_names_normalise() {
    let cfg = QualityConfig::default();
    let name = |n: &str| codec::lookup(n, &cfg).map(|c| c.name.to_string());
    for n in [
        "PCMU",
        "PCMA",
        "G711U",
        "G711A",
        "g.711",
        "G.711u",
        "pcmu/8000",
        "ulaw",
    ] {
        assert_eq!(name(n).as_deref(), Some("G711"), "{n}");
    }
    for n in ["G729", "G729a", "g.729A", "G729AB"] {
        assert_eq!(name(n).as_deref(), Some("G729A"), "{n}");
    }
    assert_eq!(name("G723").as_deref(), Some("G723.1-6.3"));
    assert_eq!(name("G.723.1-5.3").as_deref(), Some("G723.1-5.3"));
    assert_eq!(name("G726").as_deref(), Some("G726-32"));
    assert_eq!(name("G722").as_deref(), Some("G722"));
    assert_eq!(name("opus"), None);
    assert_eq!(
        name("iLBC"),
        None,
        "no sourced iLBC values: configuration only"
    );
}

#[test]
fn config_overrides_a_codec_for_all_its_spellings() {
    let mut codecs = BTreeMap::new();
    codecs.insert(
        "pcmu".to_string(),
        CodecConfig {
            ie: 5.0,
            bpl: 10.0,
            wideband: false,
            packet_time: ms(30),
        },
    );
    let cfg = QualityConfig {
        codecs,
        ..QualityConfig::default()
    };
    // PCMA is G.711 too, so the PCMU entry re-rates it.
    let c = codec::lookup("PCMA", &cfg).unwrap();
    assert_eq!(
        (c.name.as_ref(), c.ie, c.bpl, c.packet_time),
        ("G711", 5.0, 10.0, ms(30))
    );
    assert!(c.source.contains("configuration"), "{}", c.source);

    let q = QualityFields {
        one_way_delay: Some(ms(50)),
        loss_ratio: Some(0.02),
        codec: Some("PCMA".into()),
        ..QualityFields::default()
    };
    let got = estimate_call(&q, &cfg).unwrap();
    // 50 + 20 (buffer floor) + 30 (configured packet time) = 100 ms; Ie 5, Bpl 10, Ppl 2.
    let want = r_factor(&path(100.0, 5.0, 10.0, 2.0, 1.0));
    close(got.r, want, 1e-9, "R with the overridden codec");
    let plain = estimate_call(&q, &QualityConfig::default()).unwrap();
    assert!(got.mos < plain.mos);
}

#[test]
fn config_extends_the_table() {
    let mut codecs = BTreeMap::new();
    codecs.insert(
        "opus".to_string(),
        CodecConfig {
            ie: 10.2,
            bpl: 20.0,
            wideband: true,
            packet_time: ms(20),
        },
    );
    let cfg = QualityConfig {
        codecs,
        ..QualityConfig::default()
    };
    let q = QualityFields {
        loss_ratio: Some(0.0),
        codec: Some("OPUS/48000/2".into()),
        ..QualityFields::default()
    };
    let e = estimate_call(&q, &cfg).unwrap();
    assert_eq!((e.codec.as_str(), e.wideband), ("opus", true));
    assert!(
        e.r > 100.0,
        "a clean wideband call rates above the narrowband top: {}",
        e.r
    );
    close(
        e.mos,
        emodel::mos_from_r_wideband(e.r),
        1e-12,
        "wideband MOS",
    );
    // Without the entry, Opus is unknown and the assumed G.711 is used and named.
    let e = estimate_call(&q, &QualityConfig::default()).unwrap();
    assert_eq!((e.codec.as_str(), e.wideband), ("G711", false));
}

// ---- end to end: the worked examples of docs/quality.md ----
// Expected R and MOS come from tests/data/emodel_reference.py at the mouth-to-ear delay the
// mapping must produce.

#[test]
fn call_without_measurements_has_no_computed_mos() {
    let q = QualityFields {
        codec: Some("PCMU".into()),
        reported_mos: Some(4.2),
        ..QualityFields::default()
    };
    assert_eq!(estimate_call(&q, &QualityConfig::default()), None);
}

#[test]
fn good_g711_call() {
    // RTT 100 ms → 50 ms one way; jitter 15 ms → buffer 30 ms; 20 ms packets: Ta = 100 ms.
    let q = QualityFields {
        rtt: Some(ms(100)),
        jitter: Some(ms(15)),
        loss_ratio: Some(0.01),
        codec: Some("PCMU".into()),
        ..QualityFields::default()
    };
    let cfg = QualityConfig::default();
    let i = quality::mapping::call_inputs(&q, &cfg).unwrap();
    assert_eq!(i.mouth_to_ear_ms, 100.0);
    let e = estimate_call(&q, &cfg).unwrap();
    close(e.r, 87.0239, 0.05, "R");
    close(e.mos, 4.2594, 0.01, "MOS");
    assert_eq!((e.codec.as_str(), e.wideband), ("G711", false));
}

#[test]
fn g729_call_with_bursty_loss() {
    // 115 ms one way + 20 ms buffer floor + 20 ms packets + 5 ms look-ahead = 160 ms.
    let q = QualityFields {
        one_way_delay: Some(ms(115)),
        jitter: Some(ms(5)),
        loss_ratio: Some(0.02),
        burst_ratio: Some(1.5),
        codec: Some("G729".into()),
        ..QualityFields::default()
    };
    let e = estimate_call(&q, &QualityConfig::default()).unwrap();
    close(e.r, 69.8736, 0.05, "R");
    close(e.mos, 3.5911, 0.01, "MOS");
    assert_eq!(e.codec, "G729A");
}

#[test]
fn poor_call() {
    // RTT 520 ms → 260 ms + 20 ms floor + 20 ms packets = 300 ms; 8 % loss in bursts (BurstR 2).
    let q = QualityFields {
        rtt: Some(ms(520)),
        loss_ratio: Some(0.08),
        burst_ratio: Some(2.0),
        codec: Some("PCMA".into()),
        ..QualityFields::default()
    };
    let e = estimate_call(&q, &QualityConfig::default()).unwrap();
    close(e.r, 46.5495, 0.05, "R");
    close(e.mos, 2.395, 0.01, "MOS");
    assert!(e.mos < 3.0, "unacceptable band");
}

#[test]
fn extra_delay_is_added() {
    let q = QualityFields {
        one_way_delay: Some(ms(60)),
        ..QualityFields::default()
    };
    let cfg = QualityConfig {
        extra_delay: ms(20),
        ..QualityConfig::default()
    };
    let i = quality::mapping::call_inputs(&q, &cfg).unwrap();
    assert_eq!(i.mouth_to_ear_ms, 60.0 + 20.0 + 20.0 + 20.0);
    close(
        estimate_call(&q, &cfg).unwrap().r,
        r_factor(&path(120.0, 0.0, 25.1, 0.0, 1.0)),
        1e-9,
        "R",
    );
}

#[test]
fn wideband_call_is_labelled_and_mapped_from_the_129_scale() {
    // G.722: 40 ms + 20 ms floor + 20 ms packets + 1.5 ms look-ahead = 81.5 ms.
    let q = QualityFields {
        one_way_delay: Some(ms(40)),
        jitter: Some(ms(5)),
        loss_ratio: Some(0.0),
        codec: Some("G722".into()),
        ..QualityFields::default()
    };
    let e = estimate_call(&q, &QualityConfig::default()).unwrap();
    assert!(e.wideband);
    // R_WB = 129 − 1.29 · Id(81.5 ms) − Ie,WB 13, with Id(81.5 ms) = 2.3054 by the reference.
    close(e.r, 129.0 - 1.29 * 2.3054 - 13.0, 0.05, "R_WB");
    close(e.mos, 4.2763, 0.01, "MOS from R_WB / 1.29");
}

#[test]
fn probe_estimate() {
    let cfg = QualityConfig::default();
    // RTT 60 ms → 30 ms; round-trip jitter 10 ms → 7.07 ms one way → buffer max(20, 14.1) = 20;
    // G.711 20 ms packets: Ta = 70 ms.
    let e = estimate_probe(ms(60), ms(10), 0.0, &cfg);
    close(e.r, 91.2996, 0.05, "R");
    close(e.mos, 4.3695, 0.01, "MOS");
    assert_eq!((e.codec.as_str(), e.wideband), ("G711", false));
    let lossy = estimate_probe(ms(60), ms(10), 0.05, &cfg);
    close(lossy.r, 75.5189, 0.05, "R at 5 % loss");
    close(lossy.mos, 3.844, 0.01, "MOS at 5 % loss");
    // A different assumed codec is used and named.
    let g729 = QualityConfig {
        assumed_codec: "G729".into(),
        ..QualityConfig::default()
    };
    let e = estimate_probe(ms(60), ms(10), 0.0, &g729);
    assert_eq!(e.codec, "G729A");
    close(
        e.r,
        r_factor(&path(75.0, 11.0, 19.0, 0.0, 1.0)),
        1e-9,
        "G.729A probe R",
    );
    // Nonsense loss never panics and never leaves [1, 4.5].
    for loss in [f64::NAN, -1.0, 2.0, f64::INFINITY] {
        let e = estimate_probe(ms(60), ms(10), loss, &cfg);
        assert!((1.0..=4.5).contains(&e.mos), "{loss}: {}", e.mos);
    }
}
