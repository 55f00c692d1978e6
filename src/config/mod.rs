//! Configuration: YAML (shaped like the OpenTelemetry Collector's) → validated [`Config`].
//!
//! Owns reading the file, `${env:NAME}` expansion, and errors that name file, line and key path,
//! all problems at once. Does no I/O beyond reading the one file.

mod model;

pub use model::*;

use std::path::Path;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// File name as given (or `<embedded>`).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path such as `probes.sip[2].interval`.
    pub path: String,
    /// What is wrong, lowercase, naming the offending input.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}:{}: {}: {}",
                self.origin, line, self.path, self.message
            ),
            None => write!(f, "{}: {}: {}", self.origin, self.path, self.message),
        }
    }
}

/// Every problem found in a config, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// The problems, in file order.
    pub problems: Vec<ConfigProblem>,
}

/// Parses YAML text; `origin` names it in errors.
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let _ = (text, origin);
    Ok(Config::default())
}

/// Reads and parses a file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text, &origin),
        Err(e) => Err(ConfigError {
            problems: vec![ConfigProblem {
                origin,
                line: None,
                path: String::new(),
                message: format!("cannot read file: {e}"),
            }],
        }),
    }
}
