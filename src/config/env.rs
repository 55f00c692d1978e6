//! `${env:NAME}` and `${env:NAME:-default}` references.
//!
//! Before the YAML is parsed, each reference in the text is swapped for a short placeholder made of
//! private-use characters, remembered with its line. The YAML structure therefore never sees the
//! value (a token holding `#`, `: ` or `}` cannot break the file, and references work inside flow
//! mappings such as `{ bearer_token: ${env:TOKEN} }`), line numbers stay exact, and a reference in a
//! comment is never looked up. When the walker reads a scalar, [`EnvRefs::expand`] puts the values
//! in. `$${env:X}` is an escape for the literal text `${env:X}`.
//!
//! Must not read the process environment itself: the lookup is passed in.

use std::fmt::Write as _;

/// Start and end of a placeholder: characters from the Unicode private-use area, which YAML
/// accepts in plain scalars and no config value needs.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';
/// Marks a `$${` escape, expanded back to a literal `${`.
const ESCAPED: char = '\u{E002}';

/// One reference found in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvRef {
    /// Variable name.
    pub name: String,
    /// Text after `:-`, when given.
    pub default: Option<String>,
    /// 1-based line of the reference.
    pub line: usize,
}

/// A malformed reference, found while scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvSyntaxError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The references of one file, by placeholder index.
#[derive(Debug, Default)]
pub(crate) struct EnvRefs {
    refs: Vec<Result<EnvRef, EnvSyntaxError>>,
}

/// Result of expanding one scalar.
pub(crate) struct Expanded {
    /// The text with every reference replaced (an unset variable becomes the empty string).
    pub text: String,
    /// References to unset variables without a default, with their lines.
    pub unset: Vec<EnvRef>,
    /// Malformed references in this scalar.
    pub malformed: Vec<EnvSyntaxError>,
    /// Variables whose value (not a default written in the file) went into `text`: the text
    /// may hold a secret, so no message may echo it; messages name these instead.
    pub from_env: Vec<String>,
}

/// Replaces every `${…}` in `text` with a placeholder. A malformed one gets a placeholder too, so
/// it is reported only when a value holds it (never for a comment).
pub(crate) fn extract(text: &str) -> (String, EnvRefs) {
    let mut out = String::with_capacity(text.len());
    let mut refs = EnvRefs::default();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let mut rest = line;
        while let Some(pos) = rest.find("${") {
            // `$${` escapes a literal `${`.
            if pos > 0 && rest[..pos].ends_with('$') {
                out.push_str(&rest[..pos - 1]);
                out.push(ESCAPED);
                rest = &rest[pos + 2..];
                continue;
            }
            out.push_str(&rest[..pos]);
            let body_start = pos + 2;
            let _ = write!(out, "{OPEN}{}{CLOSE}", refs.refs.len());
            let Some(close) = rest[body_start..].find('}') else {
                // Only the `${` is replaced, so the rest of the line keeps its YAML meaning.
                refs.refs.push(Err(EnvSyntaxError {
                    line: line_no,
                    message: format!(
                        "unclosed \"${{\" in \"{}\"; write ${{env:NAME}} (or $${{ for a literal ${{)",
                        rest[pos..].trim_end()
                    ),
                }));
                rest = &rest[body_start..];
                continue;
            };
            let body = &rest[body_start..body_start + close];
            let whole = &rest[pos..body_start + close + 1];
            refs.refs.push(match parse_body(body) {
                Ok((name, default)) => Ok(EnvRef {
                    name,
                    default,
                    line: line_no,
                }),
                Err(message) => Err(EnvSyntaxError {
                    line: line_no,
                    message: format!("{message} in \"{whole}\""),
                }),
            });
            rest = &rest[body_start + close + 1..];
        }
        out.push_str(rest);
    }
    (out, refs)
}

/// `env:NAME` or `env:NAME:-default` → (name, default).
fn parse_body(body: &str) -> Result<(String, Option<String>), String> {
    let Some(spec) = body.strip_prefix("env:") else {
        return Err(format!(
            "only environment references are expanded: write \"${{env:{body}}}\""
        ));
    };
    let (name, default) = match spec.split_once(":-") {
        Some((name, default)) => (name, Some(default.to_string())),
        None => (spec, None),
    };
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "invalid environment variable name \"{name}\" (letters, digits and _, not starting with a digit)"
        ));
    }
    Ok((name.to_string(), default))
}

/// `text` with each placeholder shown as `${env:…}` and escapes as `${`: for messages about raw
/// text (a key, a root scalar) that are written before expansion. Never shows a value.
pub(crate) fn unexpanded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_placeholder = false;
    for c in text.chars() {
        match c {
            OPEN => {
                in_placeholder = true;
                out.push_str("${env:…}");
            }
            CLOSE => in_placeholder = false,
            ESCAPED => out.push_str("${"),
            _ if in_placeholder => {}
            _ => out.push(c),
        }
    }
    out
}

impl EnvRefs {
    /// Whether `text` (before expansion) is one `${env:…}` reference without a `:-default` and
    /// nothing else: how a secret such as a probe password must be written, so that it never
    /// sits in the file (a default would be a literal in the file).
    pub(crate) fn is_single_reference(&self, text: &str) -> bool {
        let t = text.trim();
        t.strip_prefix(OPEN)
            .and_then(|r| r.strip_suffix(CLOSE))
            .and_then(|index| index.parse::<usize>().ok())
            .and_then(|n| self.refs.get(n))
            .is_some_and(|r| matches!(r, Ok(reference) if reference.default.is_none()))
    }

    /// Whether `text` holds a placeholder or an escape, i.e. needs [`Self::expand`].
    pub(crate) fn touches(text: &str) -> bool {
        text.contains([OPEN, ESCAPED])
    }

    /// Replaces the placeholders in one scalar. An unset variable without default (or set to the
    /// empty string, when a default is given) follows the shell's `:-` rule.
    pub(crate) fn expand(&self, text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Expanded {
        let mut out = String::with_capacity(text.len());
        let mut unset = Vec::new();
        let mut malformed = Vec::new();
        let mut from_env: Vec<String> = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                ESCAPED => out.push_str("${"),
                OPEN => {
                    let after = &text[i + OPEN.len_utf8()..];
                    let reference = after
                        .find(CLOSE)
                        .and_then(|end| after[..end].parse::<usize>().ok().map(|n| (n, end)))
                        .and_then(|(n, end)| self.refs.get(n).map(|r| (r, end)));
                    let Some((reference, end)) = reference else {
                        out.push(c);
                        continue;
                    };
                    match reference {
                        Ok(reference) => match (lookup(&reference.name), &reference.default) {
                            (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                            (Some(v), _) => {
                                out.push_str(&v);
                                if !from_env.contains(&reference.name) {
                                    from_env.push(reference.name.clone());
                                }
                            }
                            (None, Some(d)) => out.push_str(d),
                            (None, None) => unset.push(reference.clone()),
                        },
                        Err(e) => malformed.push(e.clone()),
                    }
                    // Skip the index digits and the closing mark.
                    let skip_to = i + OPEN.len_utf8() + end + CLOSE.len_utf8();
                    while chars.peek().is_some_and(|(j, _)| *j < skip_to) {
                        chars.next();
                    }
                }
                _ => out.push(c),
            }
        }
        Expanded {
            text: out,
            unset,
            malformed,
            from_env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr#t: }x".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("4317".into()),
            _ => None,
        }
    }

    fn roundtrip(text: &str) -> (String, Vec<EnvRef>) {
        let (placeheld, refs) = extract(text);
        let e = refs.expand(&placeheld, &env);
        assert!(e.malformed.is_empty(), "{:?}", e.malformed);
        (e.text, e.unset)
    }

    #[test]
    fn set_unset_and_default() {
        assert_eq!(roundtrip("a ${env:TOKEN} b").0, "a s3cr#t: }x b");
        assert_eq!(roundtrip("${env:NOPE:-fallback}").0, "fallback");
        assert_eq!(roundtrip("${env:PORT:-1}").0, "4317");
        assert_eq!(roundtrip("${env:EMPTY:-dflt}").0, "dflt");
        assert_eq!(roundtrip("x${env:EMPTY}y").0, "xy");
        assert_eq!(roundtrip("${env:A:-}").0, "");
        let (text, unset) = roundtrip("k: ${env:NOPE}");
        assert_eq!(text, "k: ");
        assert_eq!(unset.len(), 1);
        assert_eq!(unset[0].name, "NOPE");
        assert_eq!(unset[0].line, 1);
    }

    #[test]
    fn variables_whose_values_were_used_are_listed() {
        let (placeheld, refs) = extract("${env:TOKEN}-${env:NOPE:-d}-${env:PORT}-${env:TOKEN}");
        let e = refs.expand(&placeheld, &env);
        assert_eq!(e.from_env, ["TOKEN", "PORT"]);
        let (placeheld, refs) = extract("${env:EMPTY:-dflt} ${env:NOPE:-x}");
        assert!(refs.expand(&placeheld, &env).from_env.is_empty());
    }

    #[test]
    fn unexpanded_text_shows_references_not_values() {
        let (placeheld, _) = extract("a ${env:TOKEN} b $${env:X}");
        assert_eq!(unexpanded(&placeheld), "a ${env:…} b ${env:X}");
    }

    #[test]
    fn lines_are_kept_and_recorded() {
        let text = "a: 1\nb: ${env:X}\n\nc: ${env:Y} ${env:Z}\n";
        let (placeheld, refs) = extract(text);
        assert_eq!(placeheld.lines().count(), text.lines().count());
        let lines: Vec<_> = refs
            .refs
            .iter()
            .map(|r| r.as_ref().map(|r| (r.name.as_str(), r.line)).unwrap())
            .collect();
        assert_eq!(lines, [("X", 2), ("Y", 4), ("Z", 4)]);
    }

    #[test]
    fn escape_gives_literal_text() {
        assert_eq!(roundtrip("$${env:TOKEN}").0, "${env:TOKEN}");
        assert_eq!(roundtrip("cost $5").0, "cost $5");
    }

    #[test]
    fn malformed_references_are_reported_with_their_line() {
        let (placeheld, refs) = extract("a: 1\nb: ${TOKEN}\nc: ${env:9X}\nd: ${env:OPEN\n");
        let errors = refs.expand(&placeheld, &env).malformed;
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        assert!(
            errors[0].message.contains("${env:TOKEN}"),
            "{}",
            errors[0].message
        );
        assert!(
            errors[1].message.contains("\"9X\""),
            "{}",
            errors[1].message
        );
        assert!(
            errors[2].message.contains("unclosed"),
            "{}",
            errors[2].message
        );
    }
}
