//! The optional state file's contents: which alerts were firing, so a restart neither repeats a
//! "firing" event nor forgets to send "resolved". Owns the JSON shape and its version; must not
//! read or write files (the caller does, so tests and the app choose where).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::AlertError;
use crate::metrics::label;

/// The shape's version; a file with another version is refused whole.
pub(crate) const VERSION: u32 = 1;

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

/// Serialises firing alerts to JSON.
pub(crate) fn encode(entries: Vec<FiringEntry>) -> String {
    let doc = StateDoc {
        version: VERSION,
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
                value: if e.value.is_finite() { e.value } else { 0.0 },
            })
            .collect(),
    };
    match serde_json::to_string_pretty(&doc) {
        Ok(s) => s,
        Err(e) => {
            // Cannot happen for this shape (string keys, finite numbers); an empty but valid
            // document beats a file that fails to load.
            tracing::error!(error = %e, "alert state not serialisable");
            format!("{{\"version\":{VERSION},\"firing\":[]}}")
        }
    }
}

/// Parses a state file. A malformed document or another version is refused whole; an entry whose
/// scope names a label callpulse does not use is skipped (and counted in the second value), so one
/// odd entry loses nothing else.
pub(crate) fn decode(text: &str) -> Result<(Vec<FiringEntry>, usize), AlertError> {
    let doc: StateDoc = serde_json::from_str(text)?;
    if doc.version != VERSION {
        return Err(AlertError::Version {
            found: doc.version,
            expected: VERSION,
        });
    }
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

    #[test]
    fn bad_documents_are_refused_and_odd_entries_skipped() {
        assert!(matches!(decode("{"), Err(AlertError::Parse(_))));
        assert!(matches!(
            decode(r#"{"version":2,"firing":[]}"#),
            Err(AlertError::Version { found: 2, .. })
        ));
        let text = r#"{"version":1,"firing":[
            {"rule":"a","scope":[["caller","x"]],"since_unix_ms":1,"value":1.0},
            {"rule":"b","scope":[["voip.pbx","p"]],"since_unix_ms":1,"value":1.0}]}"#;
        let (entries, skipped) = decode(text).unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].rule, "b");
    }
}
