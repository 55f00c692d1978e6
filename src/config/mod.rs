//! Configuration: YAML (shaped like the OpenTelemetry Collector's) → validated [`Config`].
//!
//! Owns reading the file, `${env:NAME}` expansion, and errors that name file, line and key path,
//! all problems at once. Does no I/O beyond reading the one file (and reads the process
//! environment only in [`parse_str`] / [`load`]; tests inject it through [`parse_str_with_env`]).
//!
//! The pipeline: `env` swaps `${env:…}` references for placeholders (lines stay exact) → `tree`
//! parses the YAML into nodes that carry their line → `sections` (with `probes`, `alerts`) walks
//! them into the validated model, collecting every problem on the way. serde alone would stop at
//! the first error, so the walker is hand-written.

mod alerts;
mod env;
mod model;
mod native;
mod probes;
mod sections;
mod tree;
mod units;
mod walk;

/// Probe target URIs: one parser, in [`crate::sip::uri`], for config and prober alike.
pub use crate::sip::uri::{TargetHost as SipHost, TargetUri as SipTarget};
pub use alerts::{signal_name, signal_scopes};
pub use model::*;
pub(crate) use probes::MAX_REGISTER_TRANSACTIONS;
pub use units::{format_duration, parse_duration};

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
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a config, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// The problems, in file order.
    pub problems: Vec<ConfigProblem>,
}

/// Parses YAML text; `origin` names it in errors. `${env:NAME}` reads the process environment.
pub fn parse_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_str_with_env(text, origin, &|name| std::env::var(name).ok())
}

/// [`parse_str`] with the environment lookup passed in, so tests (and a future `--env-file`) need
/// not touch the process environment.
pub fn parse_str_with_env(
    text: &str,
    origin: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let (placeheld, refs) = env::extract(text);
    let (root, mut problems) = tree::parse(&placeheld, origin);
    let config = match &root {
        Some(root) => {
            let mut ctx = walk::Ctx::new(origin, &refs, lookup);
            let config = sections::config(&mut ctx, root);
            problems.append(&mut ctx.problems);
            config
        }
        None => Config::default(),
    };
    if problems.is_empty() {
        Ok(config)
    } else {
        // File order; problems without a line last. The sort is stable, so problems on one line
        // keep the order they were found in.
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        problems.dedup();
        Err(ConfigError { problems })
    }
}

/// Fuzzing hook (`fuzz/fuzz_targets/config.rs`): the size parser (`4MiB`). Not part of the API.
#[doc(hidden)]
pub fn fuzz_parse_size(text: &str) -> Result<u64, String> {
    units::parse_size(text)
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

/// Checks a file as `callpulse validate` does: the same as [`load`], named for the caller's intent.
pub fn validate_file(path: &Path) -> Result<Config, ConfigError> {
    load(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `examples/callpulse.yaml` with its commented-out examples switched on: every key the file
    /// documents, set.
    fn every_key() -> String {
        fn uncomment(line: &str) -> Option<String> {
            let indent = &line[..line.len() - line.trim_start().len()];
            let rest = line.trim_start().strip_prefix('#')?;
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            let item = rest.trim_start();
            let item = item.strip_prefix("- ").unwrap_or(item);
            let key = item.split_once(':')?.0;
            let lower = !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            let codec = key.contains('-')
                && key
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
            (lower || codec).then(|| format!("{indent}{rest}"))
        }
        include_str!("../../examples/callpulse.yaml")
            .lines()
            .map(|line| {
                let mut line = line.to_string();
                while let Some(on) = uncomment(&line) {
                    line = on;
                }
                line + "\n"
            })
            .collect()
    }

    #[test]
    fn every_key_of_the_example_is_read_by_its_reader() {
        let text = every_key();
        assert!(text.contains("\n      method: INVITE"), "{text}");
        walk::audit::reset();
        let env = |name: &str| Some(format!("value-of-{name}"));
        if let Err(e) = parse_str_with_env(&text, "every-key.yaml", &env) {
            panic!("{e}\n{text}");
        }
        let unread = walk::audit::unread();
        assert!(
            unread.is_empty(),
            "keys allowed and set but never read: {unread:?}"
        );
    }
}
