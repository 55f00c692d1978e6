//! `examples/grafana/callpulse.json` against a real scrape: the whole sidecar is fed traffic that
//! makes every metric family appear (CDRs with quality, start/answer/end, registrations, queue
//! events, a SIP probe target answered by the built-in responder), and every metric, matcher
//! label, grouping label and legend label the dashboard's queries use must be in `GET /metrics`.
//! The PromQL is read by a small extractor of its own (lexer + one pass over the tokens), tested
//! here on the shapes the dashboard uses and on the traps around them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use callpulse::clock::SystemClock;
use callpulse::config::SipProbeConfig;
use callpulse::metrics::{Metric, label};
use callpulse::probe::responder::{ResponderBehaviour, spawn_responder};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use tokio_util::sync::CancellationToken;

use crate::support::otlp_client::*;
use crate::support::otlp_sink::*;
use crate::support::sidecar::{Sidecar, test_config};

const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// A small PromQL reader

/// What one PromQL expression reads from Prometheus.
#[derive(Debug, Default, PartialEq)]
struct Query {
    /// Series names selected, each with the label names its `{…}` matchers use.
    selectors: Vec<(String, Vec<String>)>,
    /// `label="value"` matchers with a literal value (no Grafana variable): (series, label, value).
    equalities: Vec<(String, String, String)>,
    /// Label names of `by (…)`, `without (…)`, `on (…)`, `ignoring (…)`, `group_left (…)` and
    /// `group_right (…)`, each with the series names of the expression they apply to.
    groupings: Vec<Grouping>,
}

#[derive(Debug, Clone, PartialEq)]
struct Grouping {
    /// `by`, `without`, `on`, … (`label_values` for Grafana's template function).
    clause: String,
    labels: Vec<String>,
    /// The series the clause applies to.
    series: Vec<String>,
}

impl Query {
    /// Every series name selected.
    fn series(&self) -> Vec<&str> {
        self.selectors.iter().map(|(n, _)| n.as_str()).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `{…}`: the label names of its matchers, the value of `__name__="…"` if any, and the
    /// `label="literal"` matchers.
    Matchers(Vec<String>, Option<String>, Vec<(String, String)>),
    /// A number, duration, string, range `[…]` or Grafana variable: a value, nothing to check.
    Value,
    Open,
    Close,
    Comma,
    Op,
}

/// Aggregation operators: `sum by (…) (…)` and `sum (…) by (…)` group the expression inside.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "limitk",
    "limit_ratio",
];
/// Clauses followed by a parenthesised list of label names.
const LABEL_CLAUSES: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Keywords that are neither metrics nor functions.
const KEYWORDS: [&str; 7] = ["bool", "and", "or", "unless", "offset", "atan2", "start"];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Skips a quoted string starting at `i` (on the quote); returns the index after it and its text.
fn quoted(b: &[char], mut i: usize) -> (usize, String) {
    let q = b[i];
    let mut text = String::new();
    i += 1;
    while i < b.len() && b[i] != q {
        if b[i] == '\\' && q != '`' {
            i += 1;
        }
        if let Some(c) = b.get(i) {
            text.push(*c);
        }
        i += 1;
    }
    (i + 1, text)
}

fn lex(expr: &str) -> Result<Vec<Tok>, String> {
    let b: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' | '`' => {
                i = quoted(&b, i).0;
                out.push(Tok::Value);
            }
            // Grafana variables: $name, ${name}, ${name:format}.
            '$' => {
                i += 1;
                if b.get(i) == Some(&'{') {
                    while i < b.len() && b[i] != '}' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < b.len() && is_ident(b[i]) {
                        i += 1;
                    }
                }
                out.push(Tok::Value);
            }
            // A range or subquery `[5m]`, `[$__rate_interval]`, `[1h:5m]`, or Grafana's `[[var]]`.
            '[' => {
                let mut depth = 0;
                while i < b.len() {
                    match b[i] {
                        '[' => depth += 1,
                        ']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                if depth != 0 {
                    return Err(format!("unclosed [ in {expr}"));
                }
                i += 1;
                out.push(Tok::Value);
            }
            '{' => {
                let mut labels = Vec::new();
                let mut name = None;
                let mut equalities = Vec::new();
                i += 1;
                loop {
                    while i < b.len() && (b[i].is_whitespace() || b[i] == ',') {
                        i += 1;
                    }
                    match b.get(i) {
                        None => return Err(format!("unclosed {{ in {expr}")),
                        Some('}') => {
                            i += 1;
                            break;
                        }
                        Some(c) if is_ident_start(*c) => {}
                        Some(c) => return Err(format!("unexpected {c:?} in matchers of {expr}")),
                    }
                    let start = i;
                    while i < b.len() && is_ident(b[i]) {
                        i += 1;
                    }
                    let key: String = b[start..i].iter().collect();
                    while i < b.len() && b[i].is_whitespace() {
                        i += 1;
                    }
                    let op_start = i;
                    while i < b.len() && matches!(b[i], '=' | '!' | '~') {
                        i += 1;
                    }
                    let op: String = b[op_start..i].iter().collect();
                    if !["=", "!=", "=~", "!~"].contains(&op.as_str()) {
                        return Err(format!("bad matcher operator {op:?} in {expr}"));
                    }
                    while i < b.len() && b[i].is_whitespace() {
                        i += 1;
                    }
                    if !matches!(b.get(i), Some('"' | '\'' | '`')) {
                        return Err(format!("matcher {key} without a quoted value in {expr}"));
                    }
                    let (next, value) = quoted(&b, i);
                    i = next;
                    if key == "__name__" && op == "=" {
                        name = Some(value);
                    } else {
                        if op == "=" && !value.contains('$') {
                            equalities.push((key.clone(), value));
                        }
                        labels.push(key);
                    }
                }
                out.push(Tok::Matchers(labels, name, equalities));
            }
            // Numbers and durations: 0.5, 1e-3, 0x1f, 5m, 1h30m, Inf via the ident arm.
            c if c.is_ascii_digit()
                || (c == '.' && b.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let hex = c == '0' && matches!(b.get(i + 1), Some('x' | 'X'));
                while i < b.len() {
                    let d = b[i];
                    let exponent_sign = matches!(d, '+' | '-')
                        && !hex
                        && matches!(b.get(i.wrapping_sub(1)), Some('e' | 'E'));
                    if d.is_ascii_alphanumeric() || d == '.' || d == '_' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push(Tok::Value);
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word: String = b[start..i].iter().collect();
                if ["inf", "nan"].contains(&word.to_ascii_lowercase().as_str()) {
                    out.push(Tok::Value);
                } else {
                    out.push(Tok::Ident(word));
                }
            }
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            _ => {
                out.push(Tok::Op);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// One parenthesised group while reading.
#[derive(Default)]
struct Frame {
    series: Vec<String>,
    /// `Some` when the group is an aggregation's argument: its `by`/`without` clause, if any.
    aggregation: Option<Option<(String, Vec<String>)>>,
    /// `on`/`ignoring`/`group_*` clauses inside the group: they apply to its operands.
    matching: Vec<(String, Vec<String>)>,
}

/// Reads `( label, label, … )` at `toks[i]`; returns the labels and the index after `)`.
fn label_list(toks: &[Tok], mut i: usize, expr: &str) -> Result<(Vec<String>, usize), String> {
    if toks.get(i) != Some(&Tok::Open) {
        return Err(format!("expected ( after a label clause in {expr}"));
    }
    i += 1;
    let mut labels = Vec::new();
    loop {
        match toks.get(i) {
            Some(Tok::Close) => return Ok((labels, i + 1)),
            Some(Tok::Comma) => {}
            Some(Tok::Ident(l)) => labels.push(l.clone()),
            other => return Err(format!("unexpected {other:?} in a label list of {expr}")),
        }
        i += 1;
    }
}

/// Reads a PromQL expression (with Grafana variables), or Grafana's `label_values(selector,
/// label)` template query.
fn read_query(expr: &str) -> Result<Query, String> {
    let trimmed = expr.trim();
    if let Some(inner) = trimmed
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let (selector, label) = match inner.rsplit_once(',') {
            Some((s, l)) => (s, l.trim()),
            None => ("", inner.trim()),
        };
        let mut q = if selector.trim().is_empty() {
            Query::default()
        } else {
            read_promql(selector)?
        };
        let series = q.series().into_iter().map(String::from).collect();
        q.groupings.push(Grouping {
            clause: "label_values".into(),
            labels: vec![label.to_string()],
            series,
        });
        return Ok(q);
    }
    read_promql(trimmed)
}

fn read_promql(expr: &str) -> Result<Query, String> {
    let toks = lex(expr)?;
    let mut q = Query::default();
    let mut stack = vec![Frame::default()];
    // An aggregation operator was just read: the next `(` opens its argument.
    let mut pending_aggregation: Option<Option<(String, Vec<String>)>> = None;
    // The series of the aggregation that just closed, for a trailing `by (…)`.
    let mut closed_aggregation: Option<Vec<String>> = None;
    let mut i = 0;
    while i < toks.len() {
        let just_closed = closed_aggregation.take();
        match &toks[i] {
            Tok::Ident(w) if LABEL_CLAUSES.contains(&w.as_str()) => {
                let (labels, next) = label_list(&toks, i + 1, expr)?;
                i = next;
                match (w.as_str(), pending_aggregation.as_mut(), just_closed) {
                    ("by" | "without", Some(clause), _) => {
                        *clause = Some((w.clone(), labels));
                    }
                    ("by" | "without", None, Some(series)) => q.groupings.push(Grouping {
                        clause: w.clone(),
                        labels,
                        series,
                    }),
                    ("by" | "without", None, None) => {
                        return Err(format!("{w} (…) outside an aggregation in {expr}"));
                    }
                    _ => stack
                        .last_mut()
                        .expect("root frame")
                        .matching
                        .push((w.clone(), labels)),
                }
                continue;
            }
            Tok::Ident(w) if AGGREGATIONS.contains(&w.as_str()) => {
                pending_aggregation = Some(None);
            }
            Tok::Ident(w) if KEYWORDS.contains(&w.as_str()) => {}
            Tok::Ident(w) => {
                if toks.get(i + 1) == Some(&Tok::Open) {
                    // A function call: its `(` opens a plain group.
                } else {
                    let (labels, equalities) = match toks.get(i + 1) {
                        Some(Tok::Matchers(labels, _, equalities)) => {
                            i += 1;
                            (labels.clone(), equalities.clone())
                        }
                        _ => Default::default(),
                    };
                    q.selectors.push((w.clone(), labels));
                    q.equalities
                        .extend(equalities.into_iter().map(|(l, v)| (w.clone(), l, v)));
                    stack.last_mut().expect("root frame").series.push(w.clone());
                }
            }
            Tok::Matchers(labels, name, equalities) => {
                let Some(name) = name else {
                    return Err(format!("a selector without a metric name in {expr}"));
                };
                q.selectors.push((name.clone(), labels.clone()));
                q.equalities.extend(
                    equalities
                        .iter()
                        .map(|(l, v)| (name.clone(), l.clone(), v.clone())),
                );
                stack
                    .last_mut()
                    .expect("root frame")
                    .series
                    .push(name.clone());
            }
            Tok::Open => stack.push(Frame {
                aggregation: pending_aggregation.take(),
                ..Frame::default()
            }),
            Tok::Close => {
                let frame = stack
                    .pop()
                    .filter(|_| !stack.is_empty())
                    .ok_or_else(|| format!("unbalanced ) in {expr}"))?;
                for (clause, labels) in frame.matching {
                    q.groupings.push(Grouping {
                        clause,
                        labels,
                        series: frame.series.clone(),
                    });
                }
                match frame.aggregation {
                    Some(Some((clause, labels))) => q.groupings.push(Grouping {
                        clause,
                        labels,
                        series: frame.series.clone(),
                    }),
                    Some(None) => closed_aggregation = Some(frame.series.clone()),
                    None => {}
                }
                stack
                    .last_mut()
                    .expect("parent frame")
                    .series
                    .extend(frame.series);
            }
            Tok::Value | Tok::Comma | Tok::Op => {}
        }
        i += 1;
    }
    if stack.len() != 1 {
        return Err(format!("unbalanced ( in {expr}"));
    }
    let root = stack.pop().expect("root frame");
    for (clause, labels) in root.matching {
        q.groupings.push(Grouping {
            clause,
            labels,
            series: root.series.clone(),
        });
    }
    Ok(q)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn promql_reader_finds_series_matchers_and_groupings() {
    let q = read_query(
        r#"histogram_quantile(0.5, sum by (le, voip_trunk) (rate(voip_call_mos_bucket{voip_pbx=~"$pbx", x="a}b,c=\"d\""}[$__rate_interval])))"#,
    )
    .unwrap();
    assert_eq!(
        q.selectors,
        [(
            "voip_call_mos_bucket".to_string(),
            strings(&["voip_pbx", "x"])
        )]
    );
    assert_eq!(
        q.equalities,
        [(
            "voip_call_mos_bucket".to_string(),
            "x".to_string(),
            "a}b,c=\"d\"".to_string()
        )]
    );
    assert_eq!(
        q.groupings,
        [Grouping {
            clause: "by".into(),
            labels: strings(&["le", "voip_trunk"]),
            series: strings(&["voip_call_mos_bucket"]),
        }]
    );

    // A trailing `by`, a binary operation with vector matching, numbers that look like words.
    let q = read_query(
        "sum(rate(a_total[5m] offset 1h)) by (outcome) / on (x) group_left (y) b > 1e-3 * 0x1F + Inf",
    )
    .unwrap();
    assert_eq!(q.series(), ["a_total", "b"]);
    assert_eq!(
        q.groupings,
        [
            Grouping {
                clause: "by".into(),
                labels: strings(&["outcome"]),
                series: strings(&["a_total"]),
            },
            Grouping {
                clause: "on".into(),
                labels: strings(&["x"]),
                series: strings(&["a_total", "b"]),
            },
            Grouping {
                clause: "group_left".into(),
                labels: strings(&["y"]),
                series: strings(&["a_total", "b"]),
            },
        ]
    );

    // Grafana variables outside matchers and ranges, `__name__`, an aggregation's parameter.
    let q = read_query(
        r#"topk($n, {__name__="voip_kpi_asr", voip_pbx="p"}) * ${factor} + count_values("v", up) [[x]]"#,
    )
    .unwrap();
    assert_eq!(
        q.selectors,
        [
            ("voip_kpi_asr".to_string(), strings(&["voip_pbx"])),
            ("up".to_string(), vec![])
        ]
    );
    assert!(q.groupings.is_empty());

    // Grafana's template query.
    let q = read_query(r#"label_values(voip_calls_total{voip_pbx=~"$pbx"}, voip_trunk)"#).unwrap();
    assert_eq!(
        q.selectors,
        [("voip_calls_total".to_string(), strings(&["voip_pbx"]))]
    );
    assert_eq!(
        q.groupings,
        [Grouping {
            clause: "label_values".into(),
            labels: strings(&["voip_trunk"]),
            series: strings(&["voip_calls_total"]),
        }]
    );

    // Malformed queries are errors, not silently empty.
    for bad in [
        "sum(a",
        "a)",
        r#"a{b=~}"#,
        r#"a{b="c""#,
        "a by (x)",
        r#"{job="x"}"#,
        "sum by x (a)",
    ] {
        assert!(read_query(bad).is_err(), "{bad} was accepted");
    }
}

// ---------------------------------------------------------------------------------------------
// The dashboard

fn dashboard() -> serde_json::Value {
    let path = format!(
        "{}/examples/grafana/callpulse.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// One query of the dashboard: where it is, its PromQL, and its legend.
struct DashQuery {
    place: String,
    expr: String,
    legend: String,
}

fn dashboard_queries(dash: &serde_json::Value) -> Vec<DashQuery> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(DashQuery {
                place: format!("panel {} {:?} {}", p["id"], p["title"], t["refId"]),
                expr: t["expr"].as_str().unwrap().to_owned(),
                legend: t["legendFormat"].as_str().unwrap_or("").to_owned(),
            });
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            out.push(DashQuery {
                place: format!("variable {}", v["name"]),
                expr: v["query"]["query"].as_str().unwrap().to_owned(),
                legend: String::new(),
            });
        }
    }
    out
}

/// The `{{label}}` names of a legend format.
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|rest| rest.split_once("}}"))
        .map(|(l, _)| l.trim().to_string())
        .collect()
}

#[test]
fn the_dashboard_charts_what_the_issue_asks_and_is_well_formed() {
    let dash = dashboard();
    let mut queried = BTreeSet::new();
    for q in dashboard_queries(&dash) {
        let read = read_query(&q.expr).unwrap_or_else(|e| panic!("{}: {e}", q.place));
        assert!(!read.selectors.is_empty(), "{}: no metric", q.place);
        queried.extend(read.series().into_iter().map(String::from));
    }
    // The issue's list: MOS and its distribution, probe RTT/loss/jitter/up, registrations and
    // failure ratio, active calls, queues and abandon ratio, KPIs, firing alerts.
    for must in [
        "voip_call_mos_mean",
        "voip_call_mos_bucket",
        "sip_probe_rtt_seconds_bucket",
        "sip_probe_loss_ratio",
        "sip_probe_jitter_seconds",
        "sip_probe_up",
        "voip_registration_attempts_total",
        "voip_registration_failure_ratio",
        "voip_calls_active",
        "voip_queue_calls_total",
        "voip_queue_abandon_ratio",
        "voip_kpi_asr",
        "voip_kpi_ner",
        "voip_kpi_ser",
        "voip_kpi_acd_seconds",
        "voip_kpi_post_dial_delay_seconds",
        "voip_kpi_short_call_ratio",
        "voip_alerts_firing",
    ] {
        assert!(
            queried.contains(must),
            "the dashboard does not chart {must}"
        );
    }
    // Every panel reads the datasource variable; ids are unique.
    let mut ids = BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
    let vars: Vec<_> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["datasource", "pbx", "trunk", "queue", "target"]);
    assert_eq!(dash["templating"]["list"][0]["query"], "prometheus");
}

// ---------------------------------------------------------------------------------------------
// A real scrape

/// A scrape: the samples, and each family's `# TYPE`.
struct Scrape {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let types = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .map(|(family, ty)| (family.to_string(), ty.trim().to_string()))
            .collect();
        Scrape {
            samples: parse_prometheus(text),
            types,
        }
    }

    /// What is wrong with selecting `series` (empty when it is a real series): a `_bucket`,
    /// `_sum` or `_count` name must belong to a histogram (or summary) family, and a histogram
    /// family is never selected by its bare name.
    fn series_problem(&self, series: &str) -> Option<String> {
        if let Some("histogram" | "summary") = self.types.get(series).map(String::as_str) {
            return Some(format!(
                "{series} is a histogram family, not a series (add _bucket, _sum or _count)"
            ));
        }
        if !self.samples.iter().any(|s| s.name == series) {
            return Some(format!("{series} is not in the scrape"));
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| series.strip_suffix(suffix))
            .filter(|f| {
                self.types
                    .get(*f)
                    .is_some_and(|t| t == "histogram" || t == "summary")
            });
        match (family, self.types.contains_key(series)) {
            (Some(_), _) | (None, true) => None,
            (None, false) => Some(format!("{series} has no # TYPE line")),
        }
    }

    /// Whether some sample of `series` carries `label`.
    fn has_label(&self, series: &str, label: &str) -> bool {
        self.samples
            .iter()
            .any(|s| s.name == series && s.labels.contains_key(label))
    }

    /// Label names of `series`, for failure messages.
    fn labels_of(&self, series: &str) -> BTreeSet<&str> {
        self.samples
            .iter()
            .filter(|s| s.name == series)
            .flat_map(|s| s.labels.keys().map(String::as_str))
            .collect()
    }
}

/// What the dashboard reads that the scrape does not have, one line each.
fn dashboard_problems(dash: &serde_json::Value, scrape: &Scrape) -> Vec<String> {
    let mut problems = Vec::new();
    for q in dashboard_queries(dash) {
        let read = match read_query(&q.expr) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{}: {e}", q.place));
                continue;
            }
        };
        for (series, labels) in &read.selectors {
            if let Some(p) = scrape.series_problem(series) {
                problems.push(format!("{}: {p}", q.place));
                continue;
            }
            for l in labels {
                if !scrape.has_label(series, l) {
                    problems.push(format!(
                        "{}: {series} has no label {l} (it has {:?})",
                        q.place,
                        scrape.labels_of(series)
                    ));
                }
            }
        }
        for (series, l, v) in &read.equalities {
            let found = scrape
                .samples
                .iter()
                .any(|s| &s.name == series && s.labels.get(l) == Some(v));
            // A missing series or label is reported above already.
            if !found && scrape.has_label(series, l) {
                problems.push(format!("{}: no {series} has {l}=\"{v}\"", q.place));
            }
        }
        for g in &read.groupings {
            for l in &g.labels {
                let ok = if g.series.is_empty() {
                    scrape.samples.iter().any(|s| s.labels.contains_key(l))
                } else {
                    g.series.iter().all(|s| scrape.has_label(s, l))
                };
                if !ok {
                    problems.push(format!(
                        "{}: {} ({l}) is not a label of {:?}",
                        q.place, g.clause, g.series
                    ));
                }
            }
        }
        // A legend names labels of the result: those the outermost `by` keeps (less `le`, which
        // histogram_quantile consumes), else the series' own.
        let quantile = q.expr.contains("histogram_quantile");
        let outer_by = read
            .groupings
            .iter()
            .rev()
            .find(|g| g.clause == "by" || g.clause == "without");
        for l in legend_labels(&q.legend) {
            let ok = match outer_by {
                Some(g) if g.clause == "by" => g.labels.contains(&l) && !(quantile && l == "le"),
                _ => read.series().iter().all(|s| scrape.has_label(s, &l)),
            };
            if !ok {
                problems.push(format!(
                    "{}: legend {{{{{l}}}}} is not a result label",
                    q.place
                ));
            }
        }
    }
    problems
}

fn generic(event_name: &str, attrs: &[(&str, &str)], numbers: &[(&str, f64)]) -> LogRecord {
    let mut a: Vec<_> = attrs.iter().map(|(k, v)| attr_str(k, v)).collect();
    a.extend(numbers.iter().map(|(k, v)| attr_f64(k, *v)));
    event(event_name, a)
}

/// Traffic in the input contract that makes every VoIP family appear: CDRs with quality and
/// a non-2xx status, a call that ends and one still in progress (with post-dial delay),
/// registrations with a failure, a queue with an answer and an abandon.
fn every_family_traffic() -> Vec<LogRecord> {
    let trunk = ("voip.trunk", "carrier-a");
    let mut records = vec![cdr("d1"), cdr("d2")];
    for r in &mut records {
        r.attributes.extend([
            attr_f64("voip.rtp.loss_ratio", 0.01),
            attr_f64("voip.rtp.jitter", 0.015),
            attr_f64("voip.rtp.rtt", 0.1),
            attr_f64("voip.mos", 4.1),
        ]);
    }
    records.extend([
        generic(
            "voip.cdr",
            &[
                ("voip.call.id", "d3"),
                ("voip.call.disposition", "busy"),
                trunk,
            ],
            &[("sip.response.status_code", 486.0)],
        ),
        generic("voip.call.start", &[("voip.call.id", "d4"), trunk], &[]),
        generic(
            "voip.call.answer",
            &[("voip.call.id", "d4")],
            &[("voip.call.post_dial_delay", 0.8)],
        ),
        generic(
            "voip.call.end",
            &[
                ("voip.call.id", "d4"),
                ("voip.call.disposition", "answered"),
            ],
            &[("sip.response.status_code", 200.0)],
        ),
        generic("voip.call.start", &[("voip.call.id", "d5"), trunk], &[]),
        generic(
            "voip.call.answer",
            &[("voip.call.id", "d5")],
            &[("voip.call.post_dial_delay", 1.5)],
        ),
        generic(
            "voip.registration",
            &[("voip.registration.outcome", "success")],
            &[],
        ),
        generic(
            "voip.registration",
            &[
                ("voip.registration.outcome", "failure"),
                ("voip.registration.kind", "trunk"),
            ],
            &[("sip.response.status_code", 403.0)],
        ),
        generic("voip.queue.join", &[("voip.queue.name", "support")], &[]),
        generic(
            "voip.queue.answer",
            &[("voip.queue.name", "support")],
            &[("voip.queue.wait_time", 12.0)],
        ),
        generic("voip.queue.join", &[("voip.queue.name", "support")], &[]),
        generic(
            "voip.queue.abandon",
            &[("voip.queue.name", "support")],
            &[("voip.queue.wait_time", 48.0)],
        ),
    ]);
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_in_a_real_scrape() {
    let responders = CancellationToken::new();
    let sbc = spawn_responder(
        ([127, 0, 0, 1], 0).into(),
        ResponderBehaviour::default(),
        responders.clone(),
    )
    .await
    .expect("responder");
    let mut cfg = test_config(None);
    let mut target = SipProbeConfig::new("sbc-1", &format!("sip:{sbc}"));
    target.interval = Duration::from_millis(500);
    target.count = 4;
    target.spacing = Duration::from_millis(20);
    target.timeout = Duration::from_millis(200);
    cfg.probes.sip = vec![target];
    let mut car = Sidecar::start(cfg, Arc::new(SystemClock)).await;

    grpc_client(car.grpc(), false)
        .await
        .export(request("pbx-dash", every_family_traffic()))
        .await
        .expect("export");

    // The engine has applied the traffic, ticked, evaluated the alert rules, and a probe round
    // with answers (so a jitter and an estimated MOS) has come back.
    car.wait_for_gauges(WAIT, |s| {
        let has = |m: Metric| s.points.iter().any(|p| p.metric == m);
        [
            Metric::CallsActive,
            Metric::CallMosBelowRatio,
            Metric::KpiPostDialDelay,
            Metric::QueueAbandonRatio,
            Metric::RegistrationFailureRatio,
            Metric::AlertsFiring,
            Metric::ProbeJitter,
            Metric::ProbeMos,
        ]
        .into_iter()
        .all(has)
            && s.get(
                Metric::ProbeUp,
                &[(label::PROBE_TARGET, "sbc-1"), (label::TRANSPORT, "udp")],
            ) == Some(1.0)
    })
    .await;

    let text = scrape(car.endpoints.prometheus.expect("prometheus")).await;
    if std::env::var_os("CALLPULSE_PRINT_SCRAPE").is_some() {
        println!("{text}");
    }
    let scrape = Scrape::parse(&text);
    let problems = dashboard_problems(&dashboard(), &scrape);
    assert!(
        problems.is_empty(),
        "the dashboard reads what callpulse does not export:\n{}\n\nscrape:\n{text}",
        problems.join("\n")
    );

    // The check has teeth: a renamed metric, a histogram by its bare name, a label the family
    // lacks, a label value it never has, and a legend label the aggregation drops are caught.
    let mut broken = dashboard();
    let panels = broken["panels"].as_array_mut().unwrap();
    let target = |panels: &mut Vec<serde_json::Value>, id: u64| {
        let p = panels.iter_mut().find(|p| p["id"] == id).unwrap();
        p["targets"][0].clone()
    };
    let mut mos = target(panels, 2);
    mos["legendFormat"] = "".into();
    mos["expr"] = "voip_call_mos_average".into();
    let mut bare = mos.clone();
    bare["expr"] = "rate(voip_call_mos_count[5m]) + voip_call_mos".into();
    let mut no_label = mos.clone();
    no_label["expr"] = r#"voip_registration_failure_ratio{voip_trunk="a"}"#.into();
    let mut value = mos.clone();
    value["expr"] = r#"voip_call_mos_below_ratio{voip_mos_bound="3.50"}"#.into();
    let mut legend = mos.clone();
    legend["expr"] = "sum by (voip_pbx) (voip_calls_active)".into();
    legend["legendFormat"] = "{{voip_trunk}}".into();
    panels.push(serde_json::json!({
        "id": 999, "title": "broken", "targets": [mos, bare, no_label, value, legend],
    }));
    let found = dashboard_problems(&broken, &scrape);
    assert_eq!(
        found.len(),
        5,
        "expected exactly the five planted problems: {found:#?}"
    );
    for want in [
        "voip_call_mos_average is not in the scrape",
        "voip_call_mos is a histogram family",
        "voip_registration_failure_ratio has no label voip_trunk",
        "no voip_call_mos_below_ratio has voip_mos_bound=\"3.50\"",
        "legend {{voip_trunk}} is not a result label",
    ] {
        assert!(
            found.iter().any(|p| p.contains(want)),
            "{want} not in {found:#?}"
        );
    }

    car.stop().await.expect("clean stop");
    responders.cancel();
}
