//! The console exporter: every interval, the derived metrics printed for a person watching a
//! terminal (the demo, a machine with no backend). By default one screen per interval
//! ([`summary`]): per PBX its calls and one line per trunk, registrations and queues, then one line
//! per probe target, then the alerts firing; times in ms or s, ratios as %, long lists capped.
//! Verbose ([`render`]): one line per data point, `name{key=value,…} value`, histograms as
//! `count= sum= mean=`, in catalogue order. Cumulative, so counters are totals since start.
//! Must not be parsed by machines: that is what `/metrics` and OTLP are for.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;

use crate::metrics::{Kind, Metric, label};

/// Where the console exporter and console alert lines go.
#[derive(Debug, Clone, Default)]
pub enum ConsoleOutput {
    /// The process's stdout (the normal case).
    #[default]
    Stdout,
    /// An in-memory buffer, for tests and embedders that show the text themselves.
    Buffer(Arc<Mutex<String>>),
}

impl ConsoleOutput {
    /// A fresh in-memory output.
    pub fn buffer() -> ConsoleOutput {
        ConsoleOutput::Buffer(Arc::default())
    }

    /// Everything written so far to a [`ConsoleOutput::Buffer`] (empty for stdout).
    pub fn contents(&self) -> String {
        match self {
            ConsoleOutput::Stdout => String::new(),
            ConsoleOutput::Buffer(b) => b.lock().map(|s| s.clone()).unwrap_or_default(),
        }
    }

    /// Writes `text` in one piece, so lines from two writers never interleave.
    pub fn write(&self, text: &str) {
        match self {
            // A closed stdout (piped into `head`) must not stop the exporter.
            ConsoleOutput::Stdout => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
            ConsoleOutput::Buffer(b) => {
                if let Ok(mut s) = b.lock() {
                    s.push_str(text);
                }
            }
        }
    }
}

/// A push exporter printing each collection to a [`ConsoleOutput`].
#[derive(Debug)]
pub struct ConsoleExporter {
    out: ConsoleOutput,
    verbose: bool,
}

impl ConsoleExporter {
    /// An exporter printing to `out`: the one-screen summary, or every series when `verbose`.
    pub fn new(out: ConsoleOutput, verbose: bool) -> ConsoleExporter {
        ConsoleExporter { out, verbose }
    }
}

impl PushMetricExporter for ConsoleExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let now = SystemTime::now();
        let text = if self.verbose {
            render(metrics, now)
        } else {
            summary(&Points::collect(metrics), now)
        };
        self.out.write(&text);
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// Renders one collection verbosely: a header line with the UTC time, then one line per data
/// point.
pub fn render(metrics: &ResourceMetrics, now: SystemTime) -> String {
    let mut lines: Vec<(usize, String)> = Vec::new();
    for scope in metrics.scope_metrics() {
        for m in scope.metrics() {
            let order = Metric::ALL
                .iter()
                .position(|c| c.def().name == m.name())
                .unwrap_or(usize::MAX);
            // Self counters report every outcome; zeros are noise on a console.
            let skip_zero = Metric::ALL
                .get(order)
                .is_some_and(|c| c.def().kind == Kind::ObservableCounter);
            let mut points = Vec::new();
            match m.data() {
                AggregatedMetrics::F64(d) => data_lines(m.name(), d, skip_zero, &mut points),
                AggregatedMetrics::U64(d) => data_lines(m.name(), d, skip_zero, &mut points),
                AggregatedMetrics::I64(d) => data_lines(m.name(), d, skip_zero, &mut points),
            }
            points.sort();
            lines.extend(points.into_iter().map(|p| (order, p)));
        }
    }
    // Stable sort: catalogue order, points sorted by labels within a metric.
    lines.sort_by_key(|(order, _)| *order);
    let mut out = format!("--- callpulse metrics at {} ---\n", utc_time(now));
    if lines.is_empty() {
        out.push_str("(no data yet)\n");
    }
    for (_, line) in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Most PBXs shown; the rest are counted in a "… and N more" line.
const MAX_PBXS: usize = 3;
/// Most trunks shown per PBX (busiest first).
const MAX_TRUNKS: usize = 4;
/// Most queues shown per PBX, on one line.
const MAX_QUEUES: usize = 3;
/// Most probe targets shown (down first).
const MAX_TARGETS: usize = 6;
/// Most firing alerts shown (most severe first).
const MAX_ALERTS: usize = 4;
/// Widest name column; longer names are cut with `…`.
const NAME_WIDTH: usize = 18;

/// Counters whose non-zero totals make the summary's `dropped:` line: callpulse losing data.
const LOSSES: &[Metric] = &[
    Metric::EngineDropped,
    Metric::ProbeResponsesDropped,
    Metric::AlertsDropped,
    Metric::AlertsSuppressed,
    Metric::ReceiverRequestsRefused,
    Metric::ProbeRoundsSkipped,
    Metric::ProbeDatagramsDropped,
    Metric::ExportFailures,
];

/// One data point of a collection, flattened: a gauge or counter value, or a histogram's sum
/// and count.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The catalogue metric.
    pub metric: Metric,
    /// Attributes, sorted by key.
    pub attrs: Vec<(String, String)>,
    /// The value (histograms: the sum of the observations).
    pub value: f64,
    /// Histograms: the number of observations; 0 otherwise.
    pub count: u64,
}

impl Point {
    fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn matches(&self, filter: &[(&str, &str)]) -> bool {
        filter.iter().all(|(k, v)| self.get(k) == Some(*v))
    }
}

/// The data points of one collection, the summary's input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points(pub Vec<Point>);

impl Points {
    /// Every data point of the catalogue's metrics in `metrics` (others are left out).
    pub fn collect(metrics: &ResourceMetrics) -> Points {
        let mut out = Vec::new();
        for scope in metrics.scope_metrics() {
            for m in scope.metrics() {
                let Some(metric) = Metric::ALL.iter().find(|c| c.def().name == m.name()) else {
                    continue;
                };
                match m.data() {
                    AggregatedMetrics::F64(d) => flatten(*metric, d, &mut out),
                    AggregatedMetrics::U64(d) => flatten(*metric, d, &mut out),
                    AggregatedMetrics::I64(d) => flatten(*metric, d, &mut out),
                }
            }
        }
        Points(out)
    }

    fn of<'a>(
        &'a self,
        metric: Metric,
        filter: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Point> + 'a {
        self.0
            .iter()
            .filter(move |p| p.metric == metric && p.matches(filter))
    }

    /// Sum over the matching points (counter totals); `None` when there are none.
    fn total(&self, metric: Metric, filter: &[(&str, &str)]) -> Option<f64> {
        self.of(metric, filter)
            .map(|p| p.value)
            .reduce(|a, b| a + b)
    }

    /// Largest matching value (a ratio over several series: the worst one).
    fn max(&self, metric: Metric, filter: &[(&str, &str)]) -> Option<f64> {
        self.of(metric, filter)
            .map(|p| p.value)
            .filter(|v| v.is_finite())
            .reduce(f64::max)
    }

    /// Plain mean of the matching values.
    fn mean(&self, metric: Metric, filter: &[(&str, &str)]) -> Option<f64> {
        let vals: Vec<f64> = self
            .of(metric, filter)
            .map(|p| p.value)
            .filter(|v| v.is_finite())
            .collect();
        (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
    }

    /// Mean of the observations of the matching histogram points.
    fn hist_mean(&self, metric: Metric, filter: &[(&str, &str)]) -> Option<f64> {
        let (sum, count) = self
            .of(metric, filter)
            .fold((0.0, 0u64), |(s, c), p| (s + p.value, c + p.count));
        (count > 0).then(|| sum / count as f64)
    }

    /// The distinct values of label `key` on the points of `metrics` matching `filter`.
    fn values(&self, metrics: &[Metric], key: &str, filter: &[(&str, &str)]) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .iter()
            .filter(|p| metrics.contains(&p.metric) && p.matches(filter))
            .filter_map(|p| p.get(key).map(str::to_string))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

fn flatten<T: Num>(metric: Metric, data: &MetricData<T>, out: &mut Vec<Point>) {
    let attrs = |it: &mut dyn Iterator<Item = &KeyValue>| {
        let mut a: Vec<(String, String)> = it
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        a.sort();
        a
    };
    match data {
        MetricData::Gauge(g) => out.extend(g.data_points().map(|p| Point {
            metric,
            attrs: attrs(&mut p.attributes()),
            value: p.value().as_f64(),
            count: 0,
        })),
        MetricData::Sum(s) => out.extend(s.data_points().map(|p| Point {
            metric,
            attrs: attrs(&mut p.attributes()),
            value: p.value().as_f64(),
            count: 0,
        })),
        MetricData::Histogram(h) => out.extend(h.data_points().map(|p| Point {
            metric,
            attrs: attrs(&mut p.attributes()),
            value: p.sum().as_f64(),
            count: p.count(),
        })),
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// Renders one collection as the one-screen summary: a header with the UTC time; per PBX its
/// active and total calls, one line per trunk (MOS, ASR, ACD, PDD p90, short calls),
/// registrations and queues; one line per probe target; the alerts firing; what callpulse
/// dropped. Lists past their cap end in "… and N more".
pub fn summary(points: &Points, now: SystemTime) -> String {
    let mut out = format!(
        "=== callpulse at {} (counters: totals since start) ===\n",
        utc_time(now)
    );
    let before = out.len();
    pbx_blocks(points, &mut out);
    probe_block(points, &mut out);
    let any_data = out.len() > before;
    alert_block(points, any_data, &mut out);
    loss_line(points, &mut out);
    if out.len() == before {
        out.push_str("(no data yet)\n");
    }
    out
}

fn pbx_blocks(points: &Points, out: &mut String) {
    const PBX_METRICS: &[Metric] = &[
        Metric::Calls,
        Metric::CallsActive,
        Metric::RegistrationAttempts,
        Metric::QueueCalls,
        Metric::KpiAsr,
    ];
    let pbxs = points.values(PBX_METRICS, label::PBX, &[]);
    for pbx in pbxs.iter().take(MAX_PBXS) {
        let f = [(label::PBX, pbx.as_str())];
        let _ = write!(out, "pbx {pbx}");
        if let Some(a) = points.total(Metric::CallsActive, &f) {
            let _ = write!(out, "  active {}", num(a));
        }
        if let Some(c) = points.total(Metric::Calls, &f) {
            let answered = points
                .total(
                    Metric::Calls,
                    &[(label::PBX, pbx), (label::DISPOSITION, "answered")],
                )
                .unwrap_or(0.0);
            let _ = write!(out, "  calls {} (answered {})", num(c), num(answered));
        }
        out.push('\n');
        trunk_lines(points, pbx, out);
        if let Some(attempts) = points.total(Metric::RegistrationAttempts, &f) {
            let _ = write!(
                out,
                "  {:<w$}  attempts {}",
                "registrations",
                num(attempts),
                w = NAME_WIDTH + 6
            );
            if let Some(r) = points.max(Metric::RegistrationFailureRatio, &f) {
                let _ = write!(out, "  failing {}", pct(r));
            }
            out.push('\n');
        }
        queue_line(points, pbx, out);
    }
    more(out, "", pbxs.len(), MAX_PBXS, "PBXs");
}

fn trunk_lines(points: &Points, pbx: &str, out: &mut String) {
    const TRUNK_METRICS: &[Metric] = &[Metric::Calls, Metric::KpiAsr, Metric::CallMosMean];
    let pbx_f = [(label::PBX, pbx)];
    let mut trunks: Vec<(f64, String)> = points
        .values(TRUNK_METRICS, label::TRUNK, &pbx_f)
        .into_iter()
        .map(|t| {
            let calls = points
                .total(Metric::Calls, &[(label::PBX, pbx), (label::TRUNK, &t)])
                .unwrap_or(0.0);
            (calls, t)
        })
        .collect();
    // Busiest first, so the cap hides the quiet ones.
    trunks.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    for (calls, trunk) in trunks.iter().take(MAX_TRUNKS) {
        let f = [(label::PBX, pbx), (label::TRUNK, trunk.as_str())];
        let p90 = [
            (label::PBX, pbx),
            (label::TRUNK, trunk.as_str()),
            (label::QUANTILE, "0.9"),
        ];
        let _ = writeln!(
            out,
            "  trunk {:<w$}  calls {:>5}  MOS {}  ASR {}  ACD {}  PDD p90 {}  short {}",
            name(trunk),
            num(*calls),
            opt(points.mean(Metric::CallMosMean, &f), |m| format!("{m:.2}")),
            opt(points.mean(Metric::KpiAsr, &f), pct),
            opt(points.mean(Metric::KpiAcd, &f), |s| format!("{s:.0} s")),
            opt(points.max(Metric::KpiPostDialDelay, &p90), seconds),
            opt(points.mean(Metric::KpiShortCallRatio, &f), pct),
            w = NAME_WIDTH,
        );
    }
    more(out, "  ", trunks.len(), MAX_TRUNKS, "trunks");
}

fn queue_line(points: &Points, pbx: &str, out: &mut String) {
    const QUEUE_METRICS: &[Metric] = &[Metric::QueueCalls, Metric::QueueAbandonRatio];
    let queues = points.values(QUEUE_METRICS, label::QUEUE, &[(label::PBX, pbx)]);
    if queues.is_empty() {
        return;
    }
    let shown: Vec<String> = queues
        .iter()
        .take(MAX_QUEUES)
        .map(|q| {
            let f = [(label::PBX, pbx), (label::QUEUE, q.as_str())];
            format!(
                "{q} abandon {}",
                opt(points.max(Metric::QueueAbandonRatio, &f), pct)
            )
        })
        .collect();
    let _ = write!(
        out,
        "  {:<w$}  {}",
        "queues",
        shown.join(", "),
        w = NAME_WIDTH + 6
    );
    if queues.len() > MAX_QUEUES {
        let _ = write!(out, ", … and {} more", queues.len() - MAX_QUEUES);
    }
    out.push('\n');
}

fn probe_block(points: &Points, out: &mut String) {
    const PROBE_METRICS: &[Metric] = &[
        Metric::ProbeUp,
        Metric::ProbeRtt,
        Metric::ProbeLossRatio,
        Metric::ProbeRequests,
    ];
    let mut targets: Vec<(bool, String)> = points
        .values(PROBE_METRICS, label::PROBE_TARGET, &[])
        .into_iter()
        .map(|t| {
            let up = points.max(Metric::ProbeUp, &[(label::PROBE_TARGET, &t)]) != Some(0.0);
            (up, t)
        })
        .collect();
    if targets.is_empty() {
        return;
    }
    // Down first, so the cap never hides one.
    targets.sort();
    out.push_str("probes\n");
    for (_, t) in targets.iter().take(MAX_TARGETS) {
        let f = [(label::PROBE_TARGET, t.as_str())];
        let state = match points.max(Metric::ProbeUp, &f) {
            Some(v) if v > 0.0 => "up",
            Some(_) => "DOWN",
            None => "?",
        };
        let _ = writeln!(
            out,
            "  {:<w$}  {state:<4}  loss {:>6}  RTT {:>8}  jitter {:>8}  MOS {}",
            name(t),
            opt(points.max(Metric::ProbeLossRatio, &f), pct),
            opt(points.hist_mean(Metric::ProbeRtt, &f), millis),
            opt(points.max(Metric::ProbeJitter, &f), millis),
            opt(points.mean(Metric::ProbeMos, &f), |m| format!("{m:.2}")),
            w = NAME_WIDTH + 6,
        );
    }
    more(out, "  ", targets.len(), MAX_TARGETS, "targets");
}

/// The alerts firing; "none" said only when there is data they could be about.
fn alert_block(points: &Points, say_none: bool, out: &mut String) {
    let mut firing: Vec<(u8, String, String, String)> = points
        .of(Metric::AlertsFiring, &[])
        .filter(|p| p.value > 0.0)
        .map(|p| {
            let severity = p.get(label::ALERT_SEVERITY).unwrap_or("-").to_string();
            let rank = match severity.as_str() {
                "critical" => 0,
                "warning" => 1,
                _ => 2,
            };
            let rule = p.get(label::ALERT_RULE).unwrap_or("-").to_string();
            let scope: Vec<String> = p
                .attrs
                .iter()
                .filter(|(k, _)| k != label::ALERT_RULE && k != label::ALERT_SEVERITY)
                .map(|(k, v)| format!("{}={v}", short_key(k)))
                .collect();
            (rank, rule, severity, scope.join(" "))
        })
        .collect();
    firing.sort();
    if firing.is_empty() {
        if say_none {
            out.push_str("alerts firing: none\n");
        }
        return;
    }
    let _ = writeln!(out, "alerts firing: {}", firing.len());
    for (_, rule, severity, scope) in firing.iter().take(MAX_ALERTS) {
        let line = format!("  {severity:<8}  {rule}  {scope}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    more(out, "  ", firing.len(), MAX_ALERTS, "alerts");
}

fn loss_line(points: &Points, out: &mut String) {
    let parts: Vec<String> = LOSSES
        .iter()
        .filter_map(|m| {
            let t = points.total(*m, &[])?;
            (t > 0.0).then(|| format!("{} {}", m.def().name, num(t)))
        })
        .collect();
    if !parts.is_empty() {
        let _ = writeln!(out, "dropped: {}", parts.join(", "));
    }
}

/// "… and N more …" when `total` is past `cap`.
fn more(out: &mut String, indent: &str, total: usize, cap: usize, what: &str) {
    if total > cap {
        let _ = writeln!(out, "{indent}… and {} more {what}", total - cap);
    }
}

/// `pbx` for `voip.pbx`, `target` for `sip.probe.target`: the scope keys a person reads.
fn short_key(key: &str) -> &str {
    match key {
        label::PBX => "pbx",
        label::TRUNK => "trunk",
        label::QUEUE => "queue",
        label::PROBE_TARGET => "target",
        other => other,
    }
}

/// A name cut to the name column.
fn name(n: &str) -> String {
    if n.chars().count() > NAME_WIDTH {
        let cut: String = n.chars().take(NAME_WIDTH - 1).collect();
        format!("{cut}…")
    } else {
        n.to_string()
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.filter(|v| v.is_finite()).map_or_else(|| "-".into(), f)
}

/// A ratio as a percentage with one decimal.
fn pct(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

/// Seconds as milliseconds: one decimal under 10 ms, whole above.
fn millis(s: f64) -> String {
    let ms = s * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// A delay: in ms under a second, else seconds with one decimal.
fn seconds(s: f64) -> String {
    if s < 1.0 {
        millis(s)
    } else {
        format!("{s:.1} s")
    }
}

trait Num: Copy {
    fn as_f64(self) -> f64;
}
impl Num for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}
impl Num for u64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}
impl Num for i64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

fn data_lines<T: Num>(name: &str, data: &MetricData<T>, skip_zero: bool, out: &mut Vec<String>) {
    let mut push = |attrs: &mut dyn Iterator<Item = &KeyValue>, value: String| {
        out.push(format!("{name}{} {value}", labels(attrs)));
    };
    match data {
        MetricData::Gauge(g) => {
            for p in g.data_points() {
                push(&mut p.attributes(), num(p.value().as_f64()));
            }
        }
        MetricData::Sum(s) => {
            for p in s.data_points() {
                let v = p.value().as_f64();
                if skip_zero && v == 0.0 {
                    continue;
                }
                push(&mut p.attributes(), num(v));
            }
        }
        MetricData::Histogram(h) => {
            for p in h.data_points() {
                let sum = p.sum().as_f64();
                let mean = if p.count() > 0 {
                    sum / p.count() as f64
                } else {
                    0.0
                };
                push(
                    &mut p.attributes(),
                    format!("count={} sum={} mean={}", p.count(), num(sum), num(mean)),
                );
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn labels(attrs: &mut dyn Iterator<Item = &KeyValue>) -> String {
    let mut pairs: Vec<String> = attrs.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
    if pairs.is_empty() {
        return String::new();
    }
    pairs.sort();
    format!("{{{}}}", pairs.join(","))
}

/// A number as a person reads it: integers bare, others with up to 4 decimals.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// `HH:MM:SSZ` of `now` (UTC), enough to tell intervals apart on a terminal.
fn utc_time(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86_400;
    let mut s = String::with_capacity(9);
    let _ = write!(
        s,
        "{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    s
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

    use super::*;

    #[test]
    fn numbers_read_like_numbers() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(0.416_666), "0.4167");
        assert_eq!(num(4.5), "4.5");
        assert_eq!(num(0.0), "0");
    }

    #[test]
    fn times_read_in_ms_or_s_and_ratios_in_percent() {
        assert_eq!(millis(0.00623), "6.2 ms");
        assert_eq!(millis(0.0213), "21 ms");
        assert_eq!(seconds(0.85), "850 ms");
        assert_eq!(seconds(3.12), "3.1 s");
        assert_eq!(pct(0.150_588_235_294_117_63), "15.1%");
        assert_eq!(opt(None, pct), "-");
        assert_eq!(opt(Some(f64::NAN), pct), "-");
        assert_eq!(name("a-very-long-trunk-name-indeed"), "a-very-long-trunk…");
    }

    #[test]
    fn an_empty_collection_says_so() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            summary(&Points::default(), t),
            "=== callpulse at 22:13:20Z (counters: totals since start) ===\n(no data yet)\n"
        );
    }

    #[test]
    fn losses_get_one_line_and_zeros_none() {
        let p = |metric, attrs: &[(&str, &str)], value| Point {
            metric,
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            count: 0,
        };
        let points = Points(vec![
            p(Metric::ProbeUp, &[(label::PROBE_TARGET, "sbc1")], 1.0),
            p(Metric::EngineDropped, &[(label::REASON, "late")], 2.0),
            p(Metric::EngineDropped, &[(label::REASON, "duplicate")], 1.0),
            p(Metric::ExportFailures, &[], 0.0),
        ]);
        let text = summary(&points, UNIX_EPOCH);
        assert!(
            text.ends_with("alerts firing: none\ndropped: callpulse.engine.dropped 3\n"),
            "{text}"
        );
        assert!(text.contains("  sbc1 "), "{text}");
        assert!(text.contains("  up  "), "{text}");
    }

    #[test]
    fn time_of_day_is_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(utc_time(t), "22:13:20Z");
    }

    #[test]
    fn one_line_per_point_in_catalogue_order() {
        let out = ConsoleOutput::buffer();
        let provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(ConsoleExporter::new(out.clone(), true))
                    .with_interval(Duration::from_secs(3600))
                    .build(),
            )
            .build();
        let meter = provider.meter("t");
        let rtt = meter.f64_histogram(Metric::ProbeRtt.def().name).build();
        let calls = meter.u64_counter(Metric::Calls.def().name).build();
        rtt.record(0.02, &[KeyValue::new("sip.probe.target", "sbc1")]);
        rtt.record(0.04, &[KeyValue::new("sip.probe.target", "sbc1")]);
        calls.add(
            3,
            &[
                KeyValue::new("voip.pbx", "b"),
                KeyValue::new("voip.call.disposition", "busy"),
            ],
        );
        calls.add(5, &[KeyValue::new("voip.pbx", "a")]);
        provider.force_flush().unwrap();
        let text = out.contents();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("--- callpulse metrics at "), "{text}");
        assert_eq!(
            &lines[1..],
            &[
                "voip.calls{voip.call.disposition=busy,voip.pbx=b} 3",
                "voip.calls{voip.pbx=a} 5",
                "sip.probe.rtt{sip.probe.target=sbc1} count=2 sum=0.06 mean=0.03",
            ],
            "{text}"
        );
    }
}
