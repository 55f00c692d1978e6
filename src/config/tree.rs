//! YAML text → a small tree of mappings, sequences and scalars, each carrying its line.
//!
//! Built from the event stream of `granit-parser` (the parser under `serde-saphyr`, re-exported by
//! it), so the validating walker can report every problem with a line and key path instead of
//! stopping at the first one as serde does. Scalars stay text: typing is the walker's job and
//! follows the YAML 1.2 core schema (only `true`/`false` are booleans; `yes` is a string).
//! Anchors and aliases are resolved here, with a node budget against alias bombs; `<<` merge keys
//! are supported. Must not know any config key.

use std::collections::HashMap;
use std::fmt;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StrInput, Tag};

use super::ConfigProblem;

/// Most nodes a file may expand to (aliases count every time they are used).
const NODE_BUDGET: usize = 200_000;

/// A YAML node with the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Line of the node's first character.
    pub line: usize,
    /// What it is.
    pub kind: Kind,
}

/// The node kinds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar, still as text.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order, keys unique.
    Map(Vec<Entry>),
}

/// A scalar's text and whether the core schema applies to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    /// Text after YAML escape processing (may hold `${env:…}` placeholders).
    pub text: String,
    /// Plain (unquoted, untagged) scalars are typed by their text; quoted and block scalars and
    /// `!!str` are always strings.
    pub plain: bool,
}

/// One mapping entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The key's text.
    pub key: String,
    /// The key's line.
    pub key_line: usize,
    /// The value.
    pub value: Node,
}

impl Node {
    /// A plain scalar that the core schema reads as null (`~`, `null`, or nothing at all).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s) if s.plain && is_null_text(&s.text))
    }

    /// How the node is named in "expected X, got Y" messages.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Map(_) => "a mapping".into(),
            Kind::Seq(_) => "a list".into(),
            Kind::Scalar(s) if s.plain && is_null_text(&s.text) => "nothing (null)".into(),
            Kind::Scalar(s) => format!("\"{}\"", super::env::unexpanded(&s.text)),
        }
    }
}

/// Core-schema null spellings.
pub(crate) fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// One step of a key path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a path like `probes.sip[2].interval`.
struct PathDisplay<'a>(&'a [Seg]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Parsing stopped (the problem is already recorded).
struct Stop;

struct Builder<'t, 'o> {
    text: &'t str,
    parser: Parser<'t, StrInput<'t>>,
    origin: &'o str,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    path: Vec<Seg>,
    /// Line of the last event read, for a truncated stream.
    last_line: usize,
    problems: Vec<ConfigProblem>,
}

/// Parses one YAML document. `Ok(None)` for an empty file (or one holding only comments or a
/// bare `---`); problems for a syntax error, a second document, unsupported tags, duplicate keys.
pub(crate) fn parse(text: &str, origin: &str) -> (Option<Node>, Vec<ConfigProblem>) {
    let mut b = Builder {
        text,
        parser: Parser::new_from_str(text),
        origin,
        anchors: HashMap::new(),
        nodes: 0,
        path: Vec::new(),
        last_line: 1,
        problems: Vec::new(),
    };
    let root = b.document().ok().flatten();
    (root, b.problems)
}

impl<'t> Builder<'t, '_> {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            origin: self.origin.to_string(),
            line: Some(line),
            path: PathDisplay(&self.path).to_string(),
            message: message.into(),
        });
    }

    /// The next event that matters; comments and other metadata are skipped.
    fn next(&mut self) -> Result<(Event<'t>, Span), Stop> {
        loop {
            match self.parser.next() {
                None => {
                    let line = self.last_line;
                    self.problem(line, "yaml syntax error: unexpected end of input");
                    return Err(Stop);
                }
                Some(Err(e)) => {
                    let line = e.marker().line().max(1);
                    // The scanner often notices a tab one line late (as part of the scalar
                    // before it); point at the tab itself when it indents a nearby line.
                    let tab_line = self
                        .text
                        .lines()
                        .enumerate()
                        .skip(line - 1)
                        .take(2)
                        .find(|(_, l)| {
                            l.chars()
                                .take_while(|c| c.is_whitespace())
                                .any(|c| c == '\t')
                        })
                        .map(|(i, _)| i + 1);
                    match tab_line {
                        Some(tab_line) => self.problem(
                            tab_line,
                            "yaml syntax error: a tab indents this line; yaml indents with spaces only",
                        ),
                        None => {
                            let message = format!(
                                "yaml syntax error: {} (column {})",
                                e.info(),
                                e.marker().col() + 1
                            );
                            self.problem(line, message);
                        }
                    }
                    return Err(Stop);
                }
                Some(Ok((event, span))) => {
                    self.last_line = span.start.line().max(1);
                    match event {
                        Event::StreamStart
                        | Event::StreamEnd
                        | Event::DocumentStart(..)
                        | Event::DocumentEnd
                        | Event::Alias(_)
                        | Event::Scalar(..)
                        | Event::SequenceStart(..)
                        | Event::SequenceEnd
                        | Event::MappingStart(..)
                        | Event::MappingEnd => return Ok((event, span)),
                        _ => continue,
                    }
                }
            }
        }
    }

    fn document(&mut self) -> Result<Option<Node>, Stop> {
        let mut root = None;
        let mut documents = 0;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart(..) => {
                    documents += 1;
                    if documents > 1 {
                        self.problem(
                            span.start.line().max(1),
                            "a second yaml document starts here; callpulse reads one document per file",
                        );
                        return Err(Stop);
                    }
                }
                node_event => {
                    let node = self.node(node_event, span)?;
                    root = if node.is_null() { None } else { Some(node) };
                }
            }
        }
    }

    fn count(&mut self, n: usize, line: usize) -> Result<(), Stop> {
        self.nodes += n;
        if self.nodes > NODE_BUDGET {
            self.problem(
                line,
                format!("the file expands to more than {NODE_BUDGET} yaml nodes (alias bomb?)"),
            );
            return Err(Stop);
        }
        Ok(())
    }

    fn check_tag(&mut self, tag: Option<&Tag>, line: usize) {
        if let Some(tag) = tag
            && tag.core_suffix().is_none()
        {
            self.problem(line, format!("unsupported yaml tag \"{}\"", tag.original()));
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn node(&mut self, event: Event<'t>, span: Span) -> Result<Node, Stop> {
        let line = span.start.line().max(1);
        self.count(1, line)?;
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.check_tag(tag.as_deref(), line);
                let forced_str = tag
                    .as_deref()
                    .is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                let quoted = !matches!(style, ScalarStyle::Plain);
                let core_tagged = tag.as_deref().is_some_and(|t| t.core_suffix().is_some());
                let node = Node {
                    line,
                    kind: Kind::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: !forced_str && (!quoted || core_tagged),
                    }),
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    let size = size_of_tree(&node);
                    self.count(size, line)?;
                    node.line = line;
                    Ok(node)
                }
                None => {
                    self.problem(line, "alias to an unknown anchor");
                    Err(Stop)
                }
            },
            Event::SequenceStart(_, anchor, tag) => {
                self.check_tag(tag.as_deref(), line);
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    self.path.push(Seg::Index(items.len()));
                    let item = self.node(event, span);
                    self.path.pop();
                    items.push(item?);
                }
                let node = Node {
                    line,
                    kind: Kind::Seq(items),
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(_, anchor, tag) => {
                self.check_tag(tag.as_deref(), line);
                let node = Node {
                    line,
                    kind: Kind::Map(self.mapping_entries()?),
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            _ => {
                self.problem(line, "yaml syntax error: unexpected structure");
                Err(Stop)
            }
        }
    }

    fn mapping_entries(&mut self) -> Result<Vec<Entry>, Stop> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut merged: Vec<Entry> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key_line = span.start.line().max(1);
            let key = match self.node(event, span)? {
                Node {
                    kind: Kind::Scalar(s),
                    ..
                } => Some(s),
                other => {
                    let what = other.describe();
                    self.problem(key_line, format!("a key must be a name, got {what}"));
                    None
                }
            };
            self.path.push(Seg::Key(
                key.as_ref().map(|k| k.text.clone()).unwrap_or_default(),
            ));
            let value = self.next().and_then(|(event, span)| self.node(event, span));
            self.path.pop();
            let value = value?;
            let Some(key) = key else { continue };
            if key.plain && key.text == "<<" {
                self.merge_source(&value, &mut merged);
                continue;
            }
            if let Some(first) = entries.iter().find(|e| e.key == key.text) {
                let message = format!(
                    "duplicate key \"{}\" (first on line {})",
                    key.text, first.key_line
                );
                self.path.push(Seg::Key(key.text));
                self.problem(key_line, message);
                self.path.pop();
                continue;
            }
            entries.push(Entry {
                key: key.text,
                key_line,
                value,
            });
        }
        // Merged keys never override the mapping's own keys, and earlier sources win.
        for entry in merged {
            if !entries.iter().any(|e| e.key == entry.key) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    fn merge_source(&mut self, value: &Node, merged: &mut Vec<Entry>) {
        let sources: Vec<&Node> = match &value.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![value],
        };
        for source in sources {
            match &source.kind {
                Kind::Map(entries) => {
                    for entry in entries {
                        if !merged.iter().any(|e| e.key == entry.key) {
                            merged.push(entry.clone());
                        }
                    }
                }
                _ => {
                    let what = source.describe();
                    self.problem(
                        source.line,
                        format!(
                            "a \"<<\" merge key takes a mapping or a list of mappings, got {what}"
                        ),
                    );
                }
            }
        }
    }
}

fn size_of_tree(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Scalar(_) => 0,
        Kind::Seq(items) => items.iter().map(size_of_tree).sum(),
        Kind::Map(entries) => entries.iter().map(|e| size_of_tree(&e.value)).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Option<Node> {
        let (node, problems) = parse(text, "t.yaml");
        assert!(problems.is_empty(), "{problems:?}");
        node
    }

    fn scalar(node: &Node) -> (&str, bool) {
        match &node.kind {
            Kind::Scalar(s) => (s.text.as_str(), s.plain),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    fn entries(node: &Node) -> &[Entry] {
        match &node.kind {
            Kind::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn lines_styles_and_order() {
        let root = ok("# c\na: 1\nb:\n  - x\n  - 'y'\nc: {d: \"e\"}\n").unwrap();
        let e = entries(&root);
        assert_eq!(
            e.iter()
                .map(|e| (e.key.as_str(), e.key_line))
                .collect::<Vec<_>>(),
            [("a", 2), ("b", 3), ("c", 6)]
        );
        assert_eq!(scalar(&e[0].value), ("1", true));
        let Kind::Seq(items) = &e[1].value.kind else {
            panic!()
        };
        assert_eq!(items[0].line, 4);
        assert_eq!(scalar(&items[0]), ("x", true));
        assert_eq!(scalar(&items[1]), ("y", false));
        assert_eq!(scalar(&entries(&e[2].value)[0].value), ("e", false));
    }

    #[test]
    fn empty_inputs_are_none() {
        assert!(ok("").is_none());
        assert!(ok("# only a comment\n").is_none());
        assert!(ok("---\n").is_none());
        assert!(ok("~\n").is_none());
    }

    #[test]
    fn str_tag_forces_a_string_and_custom_tags_are_refused() {
        let root = ok("a: !!str 5\n").unwrap();
        assert_eq!(scalar(&entries(&root)[0].value), ("5", false));
        let (_, problems) = parse("a: !custom 5\n", "t.yaml");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("unsupported yaml tag"));
        assert_eq!(problems[0].path, "a");
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let root = ok("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: [*b]\n").unwrap();
        let e = entries(&root);
        let other = entries(&e[1].value);
        let kv: Vec<_> = other
            .iter()
            .map(|e| (e.key.as_str(), scalar(&e.value).0))
            .collect();
        assert_eq!(kv, [("y", "3"), ("x", "1")]);
        let Kind::Seq(items) = &e[2].value.kind else {
            panic!()
        };
        assert_eq!(items[0].line, 5);
        assert_eq!(entries(&items[0]).len(), 2);
    }

    #[test]
    fn duplicate_keys_are_reported_at_the_duplicate() {
        let (_, problems) = parse("a:\n  b: 1\n  b: 2\n", "t.yaml");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(3));
        assert_eq!(problems[0].path, "a.b");
        assert!(problems[0].message.contains("first on line 2"));
    }

    #[test]
    fn syntax_errors_carry_line_and_path() {
        for (text, line, path) in [
            ("a:\n\tb: 1\n", 2, "a"),
            ("a:\n  b: 1\n\tc: 2\n", 3, "a.b"),
            ("a:\n  b:\n\t  c: 2\n", 3, "a.b"),
            ("a:\n  - x\n\t- y\n", 3, "a"),
        ] {
            let (node, problems) = parse(text, "t.yaml");
            assert!(node.is_none());
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].line, Some(line), "{text:?}: {problems:?}");
            assert_eq!(problems[0].path, path, "{text:?}: {problems:?}");
            assert!(problems[0].message.contains("a tab indents this line"));
        }
        let (_, problems) = parse("a: [1, 2\nb: 3\n", "t.yaml");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("yaml syntax error"));
    }

    #[test]
    fn second_document_is_refused() {
        let (_, problems) = parse("a: 1\n---\nb: 2\n", "t.yaml");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn alias_bomb_is_stopped() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let (node, problems) = parse(&text, "t.yaml");
        assert!(node.is_none());
        assert!(problems[0].message.contains("alias bomb"), "{problems:?}");
    }

    #[test]
    fn private_use_placeholders_survive_in_every_context() {
        let root =
            ok("a: \u{E000}0\u{E001}\nb: {c: \u{E000}1\u{E001}}\nd: [\"x\u{E000}2\u{E001}\"]\n")
                .unwrap();
        let e = entries(&root);
        assert_eq!(scalar(&e[0].value), ("\u{E000}0\u{E001}", true));
        assert_eq!(
            scalar(&entries(&e[1].value)[0].value).0,
            "\u{E000}1\u{E001}"
        );
    }
}
