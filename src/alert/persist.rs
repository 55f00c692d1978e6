//! The optional state file's contents: which alerts were firing, so a restart neither repeats a
//! "firing" event nor forgets to send "resolved", and (since version 2) the outbox of transitions
//! the backend has not acknowledged yet, so a restart does not lose them. Owns the JSON shape and
//! its version; must not read or write files (the caller does, so tests and the app choose where).
//!
//! Version 1 had `firing` only; it is still read (as an empty outbox). Version 2 adds `outbox`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::outbox::OutboxEntry;
use super::{AlertError, AlertState, AlertTransition};
use crate::metrics::label;
use crate::signal::Severity;

/// The shape's version written; a file with a version other than this or [`VERSION_1`] is
/// refused whole.
pub(crate) const VERSION: u32 = 2;
/// The first version (no outbox), still read.
pub(crate) const VERSION_1: u32 = 1;

/// Scope label keys a state file may name. Scope keys are `&'static str` in memory, so on the way
/// back in each key must map onto one of these constants.
const SCOPE_LABELS: &[&str] = &[
    label::PBX,
    label::TRUNK,
    label::QUEUE,
    label::PROBE_TARGET,
    label::DIRECTION,
    label::CODEC,
    label::TRANSPORT,
];

fn static_label(key: &str) -> Option<&'static str> {
    SCOPE_LABELS.iter().copied().find(|k| *k == key)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateDoc {
    version: u32,
    firing: Vec<SavedAlert>,
    /// Absent in version 1.
    #[serde(default)]
    outbox: Vec<SavedTransition>,
}

/// One transition waiting for the backend: everything its log record carries, so the record sent
/// after a restart is the one that would have been sent before it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedTransition {
    id: String,
    rule: String,
    severity: String,
    state: String,
    value: f64,
    threshold: f64,
    window_ms: u64,
    scope: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    body: String,
    at_unix_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedAlert {
    rule: String,
    scope: Vec<(String, String)>,
    since_unix_ms: u64,
    value: f64,
}

/// One firing alert, as saved or restored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FiringEntry {
    /// Rule name.
    pub(crate) rule: String,
    /// Scope labels.
    pub(crate) scope: Vec<(&'static str, String)>,
    /// When it started firing.
    pub(crate) since: SystemTime,
    /// Its last evaluable value.
    pub(crate) value: f64,
}

fn to_unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

fn save_transition(e: &OutboxEntry) -> SavedTransition {
    let t = &e.transition;
    SavedTransition {
        id: e.id.clone(),
        rule: t.rule.clone(),
        severity: t.severity.as_str().to_owned(),
        state: t.state.as_str().to_owned(),
        value: finite(t.value),
        threshold: finite(t.threshold),
        window_ms: u64::try_from(t.window.as_millis()).unwrap_or(u64::MAX),
        scope: t
            .scope
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        labels: t.labels.clone(),
        body: t.body.clone(),
        at_unix_ms: to_unix_ms(t.at),
    }
}

fn load_transition(s: SavedTransition) -> Option<OutboxEntry> {
    let severity = match s.severity.as_str() {
        "info" => Severity::Info,
        "warning" => Severity::Warning,
        "critical" => Severity::Critical,
        _ => return None,
    };
    let state = match s.state.as_str() {
        "firing" => AlertState::Firing,
        "resolved" => AlertState::Resolved,
        _ => return None,
    };
    let scope: Option<Vec<(&'static str, String)>> = s
        .scope
        .into_iter()
        .map(|(k, v)| static_label(&k).map(|k| (k, v)))
        .collect();
    let at = UNIX_EPOCH.checked_add(Duration::from_millis(s.at_unix_ms))?;
    if !s.value.is_finite() || !s.threshold.is_finite() {
        return None;
    }
    Some(OutboxEntry {
        // The saved id, not a recomputed one: it is what the backend may already have seen.
        id: s.id,
        transition: AlertTransition {
            rule: s.rule,
            severity,
            state,
            value: s.value,
            threshold: s.threshold,
            window: Duration::from_millis(s.window_ms),
            scope: scope?,
            labels: s.labels,
            body: s.body,
            at,
        },
    })
}

/// Serialises firing alerts (and an empty outbox) to JSON.
pub(crate) fn encode(entries: Vec<FiringEntry>) -> String {
    let doc = StateDoc {
        version: VERSION,
        outbox: Vec::new(),
        firing: entries
            .into_iter()
            .map(|e| SavedAlert {
                rule: e.rule,
                scope: e
                    .scope
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                since_unix_ms: to_unix_ms(e.since),
                // Values are finite by construction (non-finite ones are gaps); this keeps a
                // stray one from writing `null`, which would make the file unreadable.
                value: finite(e.value),
            })
            .collect(),
    };
    to_text(&doc)
}

fn to_text(doc: &StateDoc) -> String {
    match serde_json::to_string_pretty(doc) {
        Ok(s) => s,
        Err(e) => {
            // Cannot happen for this shape (string keys, finite numbers); an empty but valid
            // document beats a file that fails to load.
            tracing::error!(error = %e, "alert state not serialisable");
            format!("{{\"version\":{VERSION},\"firing\":[]}}")
        }
    }
}

/// Parses the document and checks its version (1 or 2).
fn parse(text: &str) -> Result<StateDoc, AlertError> {
    let doc: StateDoc = serde_json::from_str(text)?;
    if doc.version != VERSION && doc.version != VERSION_1 {
        return Err(AlertError::Version {
            found: doc.version,
            expected: VERSION,
        });
    }
    Ok(doc)
}

/// `state` (a document from [`encode`], i.e. the alert engine's firing alerts) with its outbox
/// replaced by `outbox`. Works on the text because the engine hands its part over as text.
pub(crate) fn with_outbox<'a>(
    state: &str,
    outbox: impl Iterator<Item = &'a OutboxEntry>,
) -> Result<String, AlertError> {
    let mut doc = parse(state)?;
    doc.version = VERSION;
    doc.outbox = outbox.map(save_transition).collect();
    Ok(to_text(&doc))
}

/// The outbox of a state file (empty for version 1), oldest first, and how many entries were
/// skipped (unknown scope label, severity or state, bad time or value).
pub(crate) fn decode_outbox(text: &str) -> Result<(Vec<OutboxEntry>, usize), AlertError> {
    let doc = parse(text)?;
    let mut skipped = 0;
    let mut out = Vec::with_capacity(doc.outbox.len());
    for saved in doc.outbox {
        let rule = saved.rule.clone();
        match load_transition(saved) {
            Some(e) => out.push(e),
            None => {
                tracing::warn!(rule = %rule, "alert outbox entry skipped: unknown label, severity or state, or bad time");
                skipped += 1;
            }
        }
    }
    Ok((out, skipped))
}

/// Parses a state file. A malformed document or another version is refused whole; an entry whose
/// scope names a label callpulse does not use is skipped (and counted in the second value), so one
/// odd entry loses nothing else.
pub(crate) fn decode(text: &str) -> Result<(Vec<FiringEntry>, usize), AlertError> {
    let doc = parse(text)?;
    let mut skipped = 0;
    let mut out = Vec::with_capacity(doc.firing.len());
    for saved in doc.firing {
        let scope: Option<Vec<(&'static str, String)>> = saved
            .scope
            .into_iter()
            .map(|(k, v)| static_label(&k).map(|k| (k, v)))
            .collect();
        let since = UNIX_EPOCH.checked_add(Duration::from_millis(saved.since_unix_ms));
        match (scope, since) {
            (Some(scope), Some(since)) if saved.value.is_finite() => out.push(FiringEntry {
                rule: saved.rule,
                scope,
                since,
                value: saved.value,
            }),
            _ => {
                tracing::warn!(rule = %saved.rule, "alert state entry skipped: unknown scope label or bad time");
                skipped += 1;
            }
        }
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_everything() {
        let e = FiringEntry {
            rule: "call_mos_low".into(),
            scope: vec![(label::PBX, "p".into()), (label::TRUNK, "t \"q\"".into())],
            since: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            value: 3.21,
        };
        let text = encode(vec![e.clone()]);
        assert_eq!(decode(&text).unwrap(), (vec![e], 0));
    }

    /// Found by the `alert_state` fuzz target: serde_json's default float parsing read the
    /// `1.1000000837531936e26` it had written as 1.1000000837531937e26 (one unit in the last
    /// place off), so a restored value changed on every save and restart. serde_json's
    /// `float_roundtrip` feature parses floats exactly.
    #[test]
    fn values_survive_the_round_trip_to_the_last_bit() {
        let crash = "{\n  \"version\": 2,\n  \"firing\": [\n    {\n      \"rule\": \"call_mos_low\",\n      \"scope\": [[\"voip.pbx\", \"SSSSSSSSSSSSSSSSSSSSSSSSSince_unin_msSSSSSSpbTTTTTTTTTTTTTTTTTT1TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT]TTTx-0\"], [\"voip.trunk\", \"carrier-z\"]],\n      \"since_unix_ms\": 17000023456,      \"value\": 110000008375319363688624581.5\n    }\n  ]\n}";
        let (entries, 0) = decode(crash).unwrap() else {
            panic!("an entry was skipped");
        };
        assert_eq!(entries[0].value, 1.100_000_083_753_193_6e26);
        assert_eq!(decode(&encode(entries.clone())).unwrap(), (entries, 0));
        for value in [
            0.1,
            1.0 / 3.0,
            4.35,
            2.225_073_858_507_201e-308,
            f64::MAX,
            9.007_199_254_740_993e15,
        ] {
            let e = FiringEntry {
                rule: "call_mos_low".into(),
                scope: vec![(label::PBX, "p".into())],
                since: UNIX_EPOCH,
                value,
            };
            let back = decode(&encode(vec![e])).unwrap().0;
            assert_eq!(back[0].value.to_bits(), value.to_bits(), "{value:e}");
        }
    }

    #[test]
    fn bad_documents_are_refused_and_odd_entries_skipped() {
        assert!(matches!(decode("{"), Err(AlertError::Parse(_))));
        assert!(matches!(
            decode(r#"{"version":3,"firing":[]}"#),
            Err(AlertError::Version { found: 3, .. })
        ));
        let text = r#"{"version":1,"firing":[
            {"rule":"a","scope":[["caller","x"]],"since_unix_ms":1,"value":1.0},
            {"rule":"b","scope":[["voip.pbx","p"]],"since_unix_ms":1,"value":1.0}]}"#;
        let (entries, skipped) = decode(text).unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].rule, "b");
    }

    #[test]
    fn version_1_files_still_load_with_an_empty_outbox() {
        let v1 = r#"{"version":1,"firing":[
            {"rule":"b","scope":[["voip.pbx","p"]],"since_unix_ms":1000,"value":0.5}]}"#;
        let (firing, skipped) = decode(v1).unwrap();
        assert_eq!((firing.len(), skipped), (1, 0));
        assert_eq!(decode_outbox(v1).unwrap(), (vec![], 0));
        // Rewritten, it becomes version 2 and keeps the firing alert.
        let v2 = with_outbox(v1, std::iter::empty()).unwrap();
        assert!(v2.contains("\"version\": 2"), "{v2}");
        assert_eq!(decode(&v2).unwrap().0, firing);
    }

    #[test]
    fn the_outbox_round_trips_with_its_ids() {
        let t = AlertTransition {
            rule: "call_mos_low".into(),
            severity: Severity::Warning,
            state: AlertState::Resolved,
            value: 3.84,
            threshold: 3.5,
            window: Duration::from_secs(300),
            scope: vec![(label::PBX, "p".into()), (label::TRUNK, "t".into())],
            labels: vec![("team".into(), "voice".into())],
            body: "MOS recovered".into(),
            at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        };
        let entry = OutboxEntry::new(t);
        let firing = encode(vec![]);
        let text = with_outbox(&firing, [entry.clone()].iter()).unwrap();
        assert_eq!(decode_outbox(&text).unwrap(), (vec![entry.clone()], 0));
        assert_eq!(decode(&text).unwrap(), (vec![], 0));
        // One bad entry is skipped, the rest kept.
        let bad = text.replacen("\"voip.pbx\"", "\"caller\"", 1);
        let (entries, skipped) = decode_outbox(&bad).unwrap();
        assert_eq!((entries.len(), skipped), (0, 1));
    }
}
