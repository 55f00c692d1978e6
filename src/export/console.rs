//! The console exporter: every interval, the derived metrics printed for a person watching a
//! terminal (the demo, a machine with no backend). One line per data point,
//! `name{key=value,…} value`, histograms as `count= sum= mean=`, in catalogue order.
//! Cumulative, so the numbers are totals since start. Must not be parsed by machines: that is
//! what `/metrics` and OTLP are for.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;

use crate::metrics::{Kind, Metric};

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
}

impl ConsoleExporter {
    /// An exporter printing to `out`.
    pub fn new(out: ConsoleOutput) -> ConsoleExporter {
        ConsoleExporter { out }
    }
}

impl PushMetricExporter for ConsoleExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let text = render(metrics, SystemTime::now());
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

/// Renders one collection: a header line with the UTC time, then one line per data point.
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
    fn time_of_day_is_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(utc_time(t), "22:13:20Z");
    }

    #[test]
    fn one_line_per_point_in_catalogue_order() {
        let out = ConsoleOutput::buffer();
        let provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(ConsoleExporter::new(out.clone()))
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
