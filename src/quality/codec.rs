//! The codec table: each codec's equipment impairment Ie and packet-loss robustness Bpl
//! (ITU-T G.113 Appendix I, Appendix IV for wideband), its packet time and look-ahead, and
//! the spelling rules that turn what a PBX reports (`PCMU`, `g729`, `G.711`, `PCMA/8000`)
//! into one canonical name. Configuration (`quality.codecs`) overrides and extends it.
//!
//! The table is data with a provenance per row; it must not guess a codec the reference does
//! not give (iLBC, Opus, AMR): those come from configuration.

use std::borrow::Cow;
use std::time::Duration;

use crate::config::{CodecConfig, QualityConfig};

/// One codec as the E-model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Codec {
    /// Canonical name (the value of the `voip.codec` label for computed scores).
    pub name: Cow<'static, str>,
    /// Equipment impairment factor Ie (on the 129 scale when `wideband`).
    pub ie: f64,
    /// Packet-loss robustness factor Bpl for random loss.
    pub bpl: f64,
    /// Rated with the wideband E-model (G.107.1) instead of the narrowband one.
    pub wideband: bool,
    /// Audio carried per RTP packet (the usual `ptime`): the sender waits this long to fill a
    /// packet, so it adds to the mouth-to-ear delay.
    pub packet_time: Duration,
    /// Algorithmic look-ahead of the encoder, also part of the mouth-to-ear delay.
    pub lookahead: Duration,
    /// Where Ie and Bpl come from, with the reference's confidence tag.
    pub source: Cow<'static, str>,
}

const fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

const fn us(v: u64) -> Duration {
    Duration::from_micros(v)
}

const G113_M: &str = "ITU-T G.113 Appendix I, as widely reproduced [M]";
const NO_BPL: &str =
    "Ie: ITU-T G.113 Appendix I [M]; Bpl: none published, 4.3 (the G.107 floor, no PLC) assumed";

struct Row {
    name: &'static str,
    ie: f64,
    bpl: f64,
    wideband: bool,
    packet_time: Duration,
    lookahead: Duration,
    source: &'static str,
}

/// The built-in rows. Packet times are the RTP defaults of RFC 3551 (G.113 measured Bpl with
/// the packet sizes named in `source`).
const BUILTIN: [Row; 13] = [
    Row {
        name: "G711",
        ie: 0.0,
        bpl: 25.1,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(0),
        source: "ITU-T G.113 Appendix I [H]: G.711 with the PLC of G.711 Appendix I (10 ms packets)",
    },
    Row {
        name: "G711-noPLC",
        ie: 0.0,
        bpl: 4.3,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(0),
        source: "ITU-T G.113 Appendix I [H]: G.711 without PLC (10 ms packets)",
    },
    Row {
        name: "G729A",
        ie: 11.0,
        bpl: 19.0,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(5),
        source: "ITU-T G.113 Appendix I [H]: G.729A + VAD, 2 frames (20 ms) per packet",
    },
    Row {
        name: "G723.1-6.3",
        ie: 15.0,
        bpl: 16.1,
        wideband: false,
        packet_time: ms(30),
        lookahead: us(7500),
        source: "ITU-T G.113 Appendix I [H]: G.723.1 6.3 kbit/s + VAD, 30 ms packets",
    },
    Row {
        name: "G723.1-5.3",
        ie: 19.0,
        bpl: 16.1,
        wideband: false,
        packet_time: ms(30),
        lookahead: us(7500),
        source: "Ie: ITU-T G.113 Appendix I [M]; Bpl: none published, the 6.3 kbit/s value (same frame-erasure concealment) assumed",
    },
    Row {
        name: "G726-40",
        ie: 2.0,
        bpl: 4.3,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(0),
        source: NO_BPL,
    },
    Row {
        name: "G726-32",
        ie: 7.0,
        bpl: 4.3,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(0),
        source: NO_BPL,
    },
    Row {
        name: "G726-24",
        ie: 25.0,
        bpl: 4.3,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(0),
        source: NO_BPL,
    },
    Row {
        name: "G726-16",
        ie: 50.0,
        bpl: 4.3,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(0),
        source: NO_BPL,
    },
    Row {
        name: "G728",
        ie: 7.0,
        bpl: 4.3,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(0),
        source: NO_BPL,
    },
    Row {
        name: "GSM-EFR",
        ie: 5.0,
        bpl: 10.0,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(0),
        source: G113_M,
    },
    Row {
        name: "GSM-FR",
        ie: 20.0,
        bpl: 4.3,
        wideband: false,
        packet_time: ms(20),
        lookahead: ms(0),
        source: NO_BPL,
    },
    Row {
        name: "G722",
        ie: 13.0,
        bpl: 25.1,
        wideband: true,
        packet_time: ms(20),
        lookahead: us(1500),
        source: "Ie,WB 13: ITU-T G.113 Appendix IV as commonly cited [L, unverified]; Bpl: none found, G.711-with-PLC value assumed",
    },
];

impl Row {
    fn codec(&self) -> Codec {
        Codec {
            name: Cow::Borrowed(self.name),
            ie: self.ie,
            bpl: self.bpl,
            wideband: self.wideband,
            packet_time: self.packet_time,
            lookahead: self.lookahead,
            source: Cow::Borrowed(self.source),
        }
    }
}

/// The lookup key of a codec name: the part before any `/` (`PCMU/8000`), upper case, without
/// spaces, dots, dashes or underscores, so `g.711`, `G711`, `G-711` meet.
pub fn normalize_name(name: &str) -> String {
    let base = name.split('/').next().unwrap_or("");
    base.chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '.' | '-' | '_'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// The canonical name of a built-in codec for any of its usual spellings, or `None`.
///
/// `G729` maps to G.729A: the RTP payload name does not tell G.729 from G.729A and the PBXes
/// callpulse listens to ship the Annex A codec. `G723` maps to the 6.3 kbit/s rate, the one
/// G.113 rates with loss data. Plain `G726` is the 32 kbit/s rate (RFC 3551).
pub fn canonical_name(name: &str) -> Option<&'static str> {
    let key = normalize_name(name);
    let key = key.strip_prefix("AAL2").unwrap_or(&key);
    let canonical = match key {
        "PCMU" | "PCMA" | "G711" | "G711U" | "G711A" | "G711MU" | "G711ULAW" | "G711ALAW"
        | "ULAW" | "ALAW" | "MULAW" | "G711PLC" => "G711",
        "G711NOPLC" | "PCMUNOPLC" | "PCMANOPLC" => "G711-noPLC",
        "G729" | "G729A" | "G729AB" | "G729B" | "G729AVAD" => "G729A",
        "G723" | "G7231" | "G72363" | "G723163" => "G723.1-6.3",
        "G72353" | "G723153" => "G723.1-5.3",
        "G72640" => "G726-40",
        "G726" | "G72632" => "G726-32",
        "G72624" => "G726-24",
        "G72616" => "G726-16",
        "G728" | "G72816" => "G728",
        "GSMEFR" | "EFR" => "GSM-EFR",
        "GSM" | "GSMFR" => "GSM-FR",
        "G722" | "G72264" => "G722",
        _ => return None,
    };
    Some(canonical)
}

/// The built-in row for a name in any spelling, without configuration.
pub fn builtin(name: &str) -> Option<Codec> {
    let canonical = canonical_name(name)?;
    BUILTIN.iter().find(|r| r.name == canonical).map(Row::codec)
}

/// Every built-in row, for documentation and status pages.
pub fn builtin_table() -> Vec<Codec> {
    BUILTIN.iter().map(Row::codec).collect()
}

/// The codec for `name` under `cfg`: a `quality.codecs` entry whose name resolves to the same
/// codec wins over the built-in row (so `PCMU: …` also re-rates `PCMA`, both being G.711); an
/// entry with an unknown name adds a codec matched by its normalised spelling. `None` when the
/// name is neither built in nor configured.
pub fn lookup(name: &str, cfg: &QualityConfig) -> Option<Codec> {
    let canonical = canonical_name(name);
    let key = normalize_name(name);
    let configured = cfg.codecs.iter().find(|(k, _)| match canonical {
        Some(c) => canonical_name(k) == Some(c),
        None => normalize_name(k) == key,
    });
    match (configured, canonical) {
        (Some((k, c)), Some(canon)) => Some(from_config(Cow::Borrowed(canon), c, k)),
        (Some((k, c)), None) => Some(from_config(Cow::Owned(k.clone()), c, k)),
        (None, Some(_)) => builtin(name),
        (None, None) => None,
    }
}

fn from_config(name: Cow<'static, str>, c: &CodecConfig, key: &str) -> Codec {
    // Look-ahead is not configurable: keep the built-in value of an overridden codec.
    let lookahead = builtin(key).map(|b| b.lookahead).unwrap_or(Duration::ZERO);
    Codec {
        name,
        ie: c.ie,
        bpl: c.bpl,
        wideband: c.wideband,
        packet_time: c.packet_time,
        lookahead,
        source: Cow::Owned(format!("configuration (quality.codecs.{key})")),
    }
}

/// The codec a score is computed with: the reported one when known, else the configured
/// assumed codec, else G.711 with PLC. The flag is true when the reported codec was not used
/// (absent or unknown), so the score can say its codec was assumed.
pub fn resolve(reported: Option<&str>, cfg: &QualityConfig) -> (Codec, bool) {
    if let Some(c) = reported.and_then(|n| lookup(n, cfg)) {
        return (c, false);
    }
    let assumed = lookup(&cfg.assumed_codec, cfg)
        .or_else(|| builtin("G711"))
        .unwrap_or_else(|| BUILTIN[0].codec());
    (assumed, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_meet() {
        for n in [
            "PCMU",
            "pcma",
            "G711U",
            "g.711",
            "G.711a",
            "PCMU/8000",
            "ulaw",
            "G711_ALAW",
        ] {
            assert_eq!(canonical_name(n), Some("G711"), "{n}");
        }
        for n in ["G729", "g729a", "G.729A", "G729AB", "G729/8000"] {
            assert_eq!(canonical_name(n), Some("G729A"), "{n}");
        }
        assert_eq!(canonical_name("G723"), Some("G723.1-6.3"));
        assert_eq!(canonical_name("G.723.1-5.3"), Some("G723.1-5.3"));
        assert_eq!(canonical_name("AAL2-G726-32"), Some("G726-32"));
        assert_eq!(canonical_name("G726-24"), Some("G726-24"));
        assert_eq!(canonical_name("G722/8000"), Some("G722"));
        assert_eq!(canonical_name("G711-noPLC"), Some("G711-noPLC"));
        assert_eq!(canonical_name("opus"), None);
        assert_eq!(canonical_name(""), None);
    }

    #[test]
    fn every_canonical_name_resolves_to_its_own_row() {
        for row in &BUILTIN {
            assert_eq!(canonical_name(row.name), Some(row.name));
            assert!(row.bpl >= 4.3 && row.ie >= 0.0);
        }
    }

    #[test]
    fn only_g722_is_wideband() {
        let wb: Vec<_> = BUILTIN
            .iter()
            .filter(|r| r.wideband)
            .map(|r| r.name)
            .collect();
        assert_eq!(wb, ["G722"]);
    }

    #[test]
    fn g113_rows() {
        let g711 = builtin("PCMU").unwrap();
        assert_eq!((g711.ie, g711.bpl), (0.0, 25.1));
        let noplc = builtin("G711-noPLC").unwrap();
        assert_eq!((noplc.ie, noplc.bpl), (0.0, 4.3));
        let g729 = builtin("G729").unwrap();
        assert_eq!((g729.ie, g729.bpl, g729.lookahead), (11.0, 19.0, ms(5)));
        let g723 = builtin("G723").unwrap();
        assert_eq!((g723.ie, g723.bpl, g723.packet_time), (15.0, 16.1, ms(30)));
    }

    #[test]
    fn unknown_reported_codec_falls_back_to_the_assumed_one() {
        let cfg = QualityConfig::default();
        let (c, assumed) = resolve(Some("opus"), &cfg);
        assert_eq!((c.name.as_ref(), assumed), ("G711", true));
        let (c, assumed) = resolve(Some("G729"), &cfg);
        assert_eq!((c.name.as_ref(), assumed), ("G729A", false));
        let broken = QualityConfig {
            assumed_codec: "nonsense".into(),
            ..QualityConfig::default()
        };
        assert_eq!(resolve(None, &broken).0.name, "G711");
    }
}
