//! The validating walker's toolbox: a context that collects every problem with its line and key
//! path, mapping access that rejects unknown keys, and typed readers for scalars (YAML 1.2 core
//! schema: only `true`/`false` are booleans, quoted text is never a number). Knows no config key;
//! the sections live in `sections.rs`, `probes.rs` and `alerts.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigProblem;
use super::env::EnvRefs;
use super::tree::{Entry, Kind, Node, is_null_text};
use super::units::{parse_duration, parse_size};

/// A node after `${env:…}` expansion.
pub(crate) enum Value<'n> {
    /// Absent in effect: `~`, `null`, nothing, or a reference that expanded to nothing.
    Null,
    /// A scalar.
    Text {
        /// The text.
        text: String,
        /// Plain scalars are typed by their text; quoted ones are strings.
        plain: bool,
        /// Environment variables whose values make up part of `text`. Such text may be a
        /// secret, so a message about it names these variables and never shows the text.
        from_env: Vec<String>,
    },
    /// A mapping.
    Map(&'n [Entry]),
    /// A sequence.
    Seq(&'n [Node]),
}

/// Collects problems while the sections are read.
pub(crate) struct Ctx<'a> {
    origin: &'a str,
    env: &'a EnvRefs,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Every problem so far.
    pub problems: Vec<ConfigProblem>,
}

/// A mapping whose unknown keys have been reported; hands out the known ones.
pub(crate) struct Fields<'n> {
    /// Key path of the mapping.
    pub path: String,
    /// Line of the mapping.
    pub line: usize,
    entries: &'n [Entry],
    /// The keys this mapping allows, kept in tests so a reader asking for a key it does not
    /// allow fails at once (see [`audit`]).
    #[cfg(test)]
    allowed: Vec<String>,
}

/// Each reader writes its keys twice: in the list passed to [`Ctx::fields`] and in the calls that
/// read them. In tests both are checked against each other: asking for a key not in the list
/// panics, and [`audit::unread`] lists keys a config set and the list allowed but no reader read
/// (a setting silently ignored). `config::tests` runs it over every key of
/// `examples/callpulse.yaml`, so the two cannot drift apart unnoticed.
#[cfg(test)]
pub(crate) mod audit {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    thread_local! {
        static SEEN: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
        static READ: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
    }

    pub(crate) fn seen(path: String) {
        SEEN.with(|s| s.borrow_mut().insert(path));
    }

    pub(crate) fn read(path: String) {
        READ.with(|s| s.borrow_mut().insert(path));
    }

    /// Forgets what earlier parses on this thread saw and read.
    pub(crate) fn reset() {
        SEEN.with(|s| s.borrow_mut().clear());
        READ.with(|s| s.borrow_mut().clear());
    }

    /// Key paths present and allowed but never read since the last [`reset`].
    pub(crate) fn unread() -> Vec<String> {
        let read = READ.with(|r| r.borrow().clone());
        SEEN.with(|s| s.borrow().difference(&read).cloned().collect())
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

impl<'n> Fields<'n> {
    /// The value node of `key`, when present.
    pub(crate) fn node(&self, key: &str) -> Option<&'n Node> {
        #[cfg(test)]
        {
            assert!(
                self.allowed.iter().any(|a| a == key),
                "config reader asks for {}, which its allowed keys {:?} leave out",
                self.path(key),
                self.allowed
            );
            audit::read(self.path(key));
        }
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// Key path of `key` in this mapping.
    pub(crate) fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Whether `key` is present (even as null).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.node(key).is_some()
    }
}

impl<'a> Ctx<'a> {
    /// A context for one file.
    pub(crate) fn new(
        origin: &'a str,
        env: &'a EnvRefs,
        lookup: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Ctx {
            origin,
            env,
            lookup,
            problems: Vec::new(),
        }
    }

    /// Records a problem.
    pub(crate) fn problem(&mut self, line: usize, path: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            origin: self.origin.to_string(),
            line: Some(line),
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Whether a scalar's raw text is exactly one `${env:NAME}` reference without default (how
    /// secrets must be written).
    pub(crate) fn is_env_reference(&self, text: &str) -> bool {
        self.env.is_single_reference(text)
    }

    /// Expands `${env:…}` in a scalar; `None` when a reference could not be expanded (reported).
    pub(crate) fn value<'n>(&mut self, node: &'n Node, path: &str) -> Option<Value<'n>> {
        match &node.kind {
            Kind::Map(entries) => Some(Value::Map(entries)),
            Kind::Seq(items) => Some(Value::Seq(items)),
            Kind::Scalar(s) if !EnvRefs::touches(&s.text) => {
                if s.plain && is_null_text(&s.text) {
                    Some(Value::Null)
                } else {
                    Some(Value::Text {
                        text: s.text.clone(),
                        plain: s.plain,
                        from_env: Vec::new(),
                    })
                }
            }
            Kind::Scalar(s) => {
                let expanded = self.env.expand(&s.text, self.lookup);
                let failed = !expanded.unset.is_empty() || !expanded.malformed.is_empty();
                for r in expanded.unset {
                    self.problem(
                        r.line,
                        path,
                        format!(
                            "environment variable {name} is not set (write ${{env:{name}:-default}} to give a default)",
                            name = r.name
                        ),
                    );
                }
                for e in expanded.malformed {
                    self.problem(e.line, path, e.message);
                }
                if failed {
                    None
                } else if s.plain && is_null_text(expanded.text.trim()) {
                    Some(Value::Null)
                } else {
                    Some(Value::Text {
                        text: if s.plain {
                            expanded.text.trim().to_string()
                        } else {
                            expanded.text
                        },
                        plain: s.plain,
                        from_env: expanded.from_env,
                    })
                }
            }
        }
    }

    /// Opens a mapping: reports keys not in `allowed` (with a did-you-mean) and a non-mapping
    /// value. Null counts as an empty mapping.
    pub(crate) fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let entries: &'n [Entry] = match self.value(node, path)? {
            Value::Map(entries) => entries,
            Value::Null => &[],
            other => {
                let got = describe(&other);
                self.problem(
                    node.line,
                    path,
                    format!("expected a mapping of keys, got {got}"),
                );
                return None;
            }
        };
        for entry in entries {
            if !allowed.contains(&entry.key.as_str()) {
                let message = unknown_key_message(&super::env::unexpanded(&entry.key), allowed);
                self.problem(entry.key_line, &join(path, &entry.key), message);
            } else {
                #[cfg(test)]
                audit::seen(join(path, &entry.key));
            }
        }
        Some(Fields {
            path: path.to_string(),
            line: node.line,
            entries,
            #[cfg(test)]
            allowed: allowed.iter().map(|a| a.to_string()).collect(),
        })
    }

    /// Reports a missing required key of `f`.
    pub(crate) fn missing(&mut self, f: &Fields<'_>, key: &str) {
        let path = f.path.clone();
        self.problem(f.line, &path, format!("missing required key \"{key}\""));
    }

    /// Reads a scalar node with `parse(text, plain)`; `None` for null (absent) or a reported
    /// problem. `expected` names the type in the message for a mapping or list.
    pub(crate) fn scalar_node<T>(
        &mut self,
        node: &Node,
        path: &str,
        expected: &str,
        parse: impl FnOnce(&str, bool) -> Result<T, String>,
    ) -> Option<T> {
        match self.value(node, path)? {
            Value::Null => None,
            Value::Text {
                text,
                plain,
                from_env,
            } => match parse(&text, plain) {
                Ok(v) => Some(v),
                Err(message) if from_env.is_empty() => {
                    self.problem(node.line, path, message);
                    None
                }
                Err(message) => {
                    let message = self.redact(&message, expected, &text, &from_env);
                    self.problem(node.line, path, message);
                    None
                }
            },
            other => {
                let got = describe(&other);
                self.problem(node.line, path, format!("expected {expected}, got {got}"));
                None
            }
        }
    }

    /// A parse error about text that holds environment values, rewritten so it cannot show them
    /// (they may be secrets, and problems go to the terminal and the logs): the part of the
    /// message before its `, got …` is kept when it holds none of the values, and the value is
    /// named by its variables instead.
    fn redact(&self, message: &str, expected: &str, text: &str, from_env: &[String]) -> String {
        let got = got_env(from_env);
        let head = message.split_once(", got ").map(|(head, _)| head);
        let leaks = |head: &str| {
            (!text.trim().is_empty() && head.contains(text.trim()))
                || from_env.iter().any(|name| {
                    (self.lookup)(name)
                        .is_some_and(|v| !v.trim().is_empty() && head.contains(v.trim()))
                })
        };
        match head {
            Some(head) if !leaks(head) => format!("{head}, got {got}"),
            _ => format!("expected {expected}, got {got}"),
        }
    }

    /// [`Self::scalar_node`] for `f.key`; `None` when absent.
    pub(crate) fn scalar<T>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        expected: &str,
        parse: impl FnOnce(&str, bool) -> Result<T, String>,
    ) -> Option<T> {
        let node = f.node(key)?;
        self.scalar_node(node, &f.path(key), expected, parse)
    }

    /// A duration (`60s`).
    pub(crate) fn duration(&mut self, f: &Fields<'_>, key: &str) -> Option<Duration> {
        self.scalar(f, key, "a duration like \"60s\"", |t, _| parse_duration(t))
    }

    /// A duration that must be more than zero, or `default`.
    pub(crate) fn positive_duration(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let node_line = f.node(key).map(|n| n.line);
        match self.duration(f, key) {
            Some(d) if d.is_zero() => {
                self.problem(
                    node_line.unwrap_or(f.line),
                    &f.path(key),
                    "must be more than zero",
                );
                default
            }
            Some(d) => d,
            None => default,
        }
    }

    /// A boolean (`true`/`false` only).
    pub(crate) fn bool(&mut self, f: &Fields<'_>, key: &str) -> Option<bool> {
        self.scalar(f, key, "true or false", parse_bool)
    }

    /// A whole number within `min..=max`.
    pub(crate) fn uint(&mut self, f: &Fields<'_>, key: &str, min: u64, max: u64) -> Option<u64> {
        self.scalar(f, key, "a whole number", |t, plain| {
            let n = parse_uint(t, plain)?;
            check_range(n, min, max)
        })
    }

    /// A finite number within `min..=max`.
    pub(crate) fn float(&mut self, f: &Fields<'_>, key: &str, min: f64, max: f64) -> Option<f64> {
        self.scalar(f, key, "a number", |t, plain| {
            let x = parse_float(t, plain)?;
            if x < min || x > max {
                Err(format!("must be between {min} and {max}, got {t}"))
            } else {
                Ok(x)
            }
        })
    }

    /// Any non-empty string.
    pub(crate) fn string(&mut self, f: &Fields<'_>, key: &str) -> Option<String> {
        self.scalar(f, key, "a string", parse_string)
    }

    /// A file path.
    pub(crate) fn file(&mut self, f: &Fields<'_>, key: &str) -> Option<PathBuf> {
        self.string(f, key).map(PathBuf::from)
    }

    /// A size (`4MiB` or bytes).
    pub(crate) fn size(&mut self, f: &Fields<'_>, key: &str) -> Option<u64> {
        self.scalar(f, key, "a size like \"4MiB\"", |t, _| parse_size(t))
    }

    /// A listen address `host:port` (IP literal or `localhost`).
    pub(crate) fn listen_addr(&mut self, f: &Fields<'_>, key: &str) -> Option<SocketAddr> {
        self.scalar(f, key, "an address like \"127.0.0.1:4317\"", |t, _| {
            parse_socket_addr(t)
        })
    }

    /// One of `choices` by spelling.
    pub(crate) fn choice<T: Copy>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let node = f.node(key)?;
        self.choice_node(node, &f.path(key), choices)
    }

    /// One of `choices` by spelling, for any node.
    pub(crate) fn choice_node<T: Copy>(
        &mut self,
        node: &Node,
        path: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let expected = format!("one of {}", names.join(", "));
        self.scalar_node(node, path, &expected, |t, _| {
            choices
                .iter()
                .find(|(name, _)| *name == t)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let hint = suggestion(t, &names)
                        .map(|s| format!(" (did you mean \"{s}\"?)"))
                        .unwrap_or_default();
                    format!("expected {expected}, got \"{t}\"{hint}")
                })
        })
    }

    /// A list; null counts as empty. `None` (reported) when the value is not a list.
    pub(crate) fn list<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match self.value(node, path)? {
            Value::Seq(items) => Some(items),
            Value::Null => Some(&[]),
            other => {
                let got = describe(&other);
                self.problem(node.line, path, format!("expected a list, got {got}"));
                None
            }
        }
    }

    /// A list of strings.
    pub(crate) fn string_list(&mut self, f: &Fields<'_>, key: &str) -> Option<Vec<String>> {
        let node = f.node(key)?;
        let path = f.path(key);
        let items = self.list(node, &path)?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = index(&path, i);
            match self.scalar_node(item, &item_path, "a string", parse_string) {
                Some(s) => out.push(s),
                None if item.is_null() => self.problem(
                    item.line,
                    &item_path,
                    "expected a string, got nothing (null)",
                ),
                None => {}
            }
        }
        Some(out)
    }

    /// A mapping of names to string values, in file order (keys are checked by `key_ok`).
    pub(crate) fn string_pairs(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        key_ok: impl Fn(&str) -> Result<(), String>,
    ) -> Option<Vec<(String, String)>> {
        let node = f.node(key)?;
        let path = f.path(key);
        let entries = match self.value(node, &path)? {
            Value::Map(entries) => entries,
            Value::Null => return Some(Vec::new()),
            other => {
                let got = describe(&other);
                self.problem(
                    node.line,
                    &path,
                    format!("expected a mapping of names to values, got {got}"),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry_path = join(&path, &entry.key);
            if let Err(message) = key_ok(&entry.key) {
                self.problem(entry.key_line, &entry_path, message);
                continue;
            }
            match self.value(&entry.value, &entry_path) {
                None => {}
                Some(Value::Null) => out.push((entry.key.clone(), String::new())),
                // The value is not echoed: it may be a secret (an API key header).
                Some(Value::Text { text, .. })
                    if text.chars().any(|c| c.is_control() && c != '\t') =>
                {
                    self.problem(
                        entry.value.line,
                        &entry_path,
                        "must not hold line breaks or control characters",
                    );
                }
                Some(Value::Text { text, .. }) => out.push((entry.key.clone(), text)),
                Some(other) => {
                    let got = describe(&other);
                    self.problem(
                        entry.value.line,
                        &entry_path,
                        format!("expected a string value, got {got}"),
                    );
                }
            }
        }
        Some(out)
    }

    /// [`Self::string_pairs`] as a sorted map.
    pub(crate) fn string_map(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        key_ok: impl Fn(&str) -> Result<(), String>,
    ) -> Option<BTreeMap<String, String>> {
        self.string_pairs(f, key, key_ok)
            .map(|pairs| pairs.into_iter().collect())
    }
}

/// `the value of ${env:A}` (or `of ${env:A} and ${env:B}`): how a message names text it must not
/// show.
fn got_env(names: &[String]) -> String {
    let refs: Vec<String> = names.iter().map(|n| format!("${{env:{n}}}")).collect();
    format!("the value of {}", refs.join(" and "))
}

/// How a message shows a value: quoted text, or the variables it came from (never their values).
pub(crate) fn describe(value: &Value<'_>) -> String {
    match value {
        Value::Text { from_env, .. } if !from_env.is_empty() => got_env(from_env),
        Value::Text { text, .. } => format!("\"{text}\""),
        Value::Map(_) => "a mapping".into(),
        Value::Seq(_) => "a list".into(),
        Value::Null => "nothing (null)".into(),
    }
}

/// `true`/`false` (and their capitalised forms), plain only.
pub(crate) fn parse_bool(text: &str, plain: bool) -> Result<bool, String> {
    match (text, plain) {
        ("true" | "True" | "TRUE", true) => Ok(true),
        ("false" | "False" | "FALSE", true) => Ok(false),
        (_, false) if matches!(text, "true" | "false") => Err(format!(
            "expected true or false, got the quoted string \"{text}\" (remove the quotes)"
        )),
        _ => Err(format!("expected true or false, got \"{text}\"")),
    }
}

/// A non-negative core-schema integer (`10`, `0x1F`, `0o17`), plain only.
pub(crate) fn parse_uint(text: &str, plain: bool) -> Result<u64, String> {
    let parsed = if let Some(hex) = text.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = text.strip_prefix("0o") {
        u64::from_str_radix(oct, 8).ok()
    } else if !text.is_empty()
        && text
            .trim_start_matches('+')
            .chars()
            .all(|c| c.is_ascii_digit())
    {
        text.trim_start_matches('+').parse().ok()
    } else {
        None
    };
    match (parsed, plain) {
        (Some(n), true) => Ok(n),
        (Some(_), false) => Err(format!(
            "expected a whole number, got the quoted string \"{text}\" (remove the quotes)"
        )),
        (None, _) if text.starts_with('-') && text[1..].chars().all(|c| c.is_ascii_digit()) => {
            Err(format!("must not be negative, got {text}"))
        }
        (None, _) => Err(format!("expected a whole number, got \"{text}\"")),
    }
}

/// A finite core-schema number, plain only.
pub(crate) fn parse_float(text: &str, plain: bool) -> Result<f64, String> {
    let looks_numeric = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        && text.chars().any(|c| c.is_ascii_digit());
    let parsed = if looks_numeric {
        text.parse::<f64>().ok().filter(|x| x.is_finite())
    } else {
        None
    };
    match (parsed, plain) {
        (Some(x), true) => Ok(x),
        (Some(_), false) => Err(format!(
            "expected a number, got the quoted string \"{text}\" (remove the quotes)"
        )),
        (None, _) => Err(format!("expected a number, got \"{text}\"")),
    }
}

/// Any scalar as a string; empty text is refused.
pub(crate) fn parse_string(text: &str, _plain: bool) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(text.to_string())
    }
}

fn check_range(n: u64, min: u64, max: u64) -> Result<u64, String> {
    if n < min || n > max {
        if max == u64::MAX {
            Err(format!("must be at least {min}, got {n}"))
        } else {
            Err(format!("must be between {min} and {max}, got {n}"))
        }
    } else {
        Ok(n)
    }
}

/// `ip:port`, `[v6]:port` or `localhost:port` (mapped to 127.0.0.1, without a DNS lookup).
pub(crate) fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = text.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if text.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "missing port: expected \"host:port\" like \"127.0.0.1:4317\", got \"{text}\""
        ));
    }
    Err(format!(
        "expected \"ip:port\" like \"127.0.0.1:4317\" or \"[::1]:4317\" (an IP address, or localhost), got \"{text}\""
    ))
}

/// "unknown key" with the closest allowed key, or the whole list when none is close.
fn unknown_key_message(key: &str, allowed: &[&str]) -> String {
    match suggestion(key, allowed) {
        Some(s) => format!("unknown key \"{key}\" (did you mean \"{s}\"?)"),
        None if allowed.is_empty() => format!("unknown key \"{key}\": this mapping takes no keys"),
        None => format!(
            "unknown key \"{key}\"; expected one of: {}",
            allowed.join(", ")
        ),
    }
}

/// The closest candidate within a small edit distance.
fn suggestion<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let word_lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word_lower, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_strict() {
        assert_eq!(parse_bool("true", true), Ok(true));
        assert_eq!(parse_bool("False", true), Ok(false));
        for bad in ["yes", "no", "on", "off", "y", "1"] {
            let e = parse_bool(bad, true).unwrap_err();
            assert_eq!(e, format!("expected true or false, got \"{bad}\""));
        }
        assert!(parse_bool("true", false).unwrap_err().contains("quoted"));
    }

    #[test]
    fn integers() {
        assert_eq!(parse_uint("10", true), Ok(10));
        assert_eq!(parse_uint("0x2E", true), Ok(46));
        assert_eq!(parse_uint("0o17", true), Ok(15));
        assert!(parse_uint("10", false).unwrap_err().contains("quoted"));
        assert!(parse_uint("-1", true).unwrap_err().contains("negative"));
        assert_eq!(
            parse_uint("ten", true).unwrap_err(),
            "expected a whole number, got \"ten\""
        );
        assert!(parse_uint("1.5", true).is_err());
        assert!(parse_uint("99999999999999999999999", true).is_err());
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float("3.5", true), Ok(3.5));
        assert_eq!(parse_float("2", true), Ok(2.0));
        assert_eq!(parse_float("1e-3", true), Ok(0.001));
        assert!(parse_float(".inf", true).is_err());
        assert!(parse_float("nan", true).is_err());
        assert!(parse_float("3.5", false).is_err());
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(
            parse_socket_addr("127.0.0.1:4317"),
            Ok(([127, 0, 0, 1], 4317).into())
        );
        assert_eq!(
            parse_socket_addr("localhost:9464"),
            Ok(([127, 0, 0, 1], 9464).into())
        );
        assert_eq!(parse_socket_addr("[::1]:0").map(|a| a.port()), Ok(0));
        assert!(
            parse_socket_addr("127.0.0.1")
                .unwrap_err()
                .contains("missing port")
        );
        assert!(parse_socket_addr("collector:4317").is_err());
        assert!(parse_socket_addr("127.0.0.1:99999").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            unknown_key_message("timout", &["interval", "timeout"]),
            "unknown key \"timout\" (did you mean \"timeout\"?)"
        );
        assert_eq!(
            unknown_key_message("zzz", &["a", "b"]),
            "unknown key \"zzz\"; expected one of: a, b"
        );
        assert_eq!(suggestion("GRPC", &["grpc", "http"]), Some("grpc"));
    }
}
