//! The Prometheus scrape endpoint: `opentelemetry-prometheus` as a pull reader on the shared
//! meter provider, served as text by a small axum server on `GET /metrics`. Owns the Prometheus
//! names of the catalogue ([`prometheus_name`]); must not keep metric state of its own.
//!
//! Names follow the OpenTelemetry spec's "OTLP metric points to Prometheus" rules as they stand
//! since the `1` → `_ratio` special case was removed: unit words for real units (`s` →
//! `_seconds`), nothing for `1` or `{annotations}`, `_total` on monotonic counters, never a suffix
//! twice. `opentelemetry-prometheus` 0.33 would instead render unit `1` as `_ratio` on every
//! type (`voip_registration_failure_ratio_ratio`, `voip_call_mos_ratio_bucket`,
//! `sip_probe_up_ratio`), so it runs with units and counter suffixes off and each family is
//! renamed here at scrape time from a table built from the catalogue.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use opentelemetry_prometheus::PrometheusExporter;
use prometheus::{Encoder as _, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::ExportError;
use crate::metrics::{Kind, Metric, MetricDef};

/// Path of the scrape endpoint.
pub const METRICS_PATH: &str = "/metrics";

/// The Prometheus name of a catalogue metric (the family name; histograms add `_bucket`,
/// `_sum` and `_count` to it).
pub fn prometheus_name(def: &MetricDef) -> String {
    let mut name = String::with_capacity(def.name.len() + 16);
    for c in def.name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' {
            c
        } else {
            '_'
        };
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    if let Some(unit) = unit_suffix(def.unit)
        && !name.ends_with(&format!("_{unit}"))
    {
        name.push('_');
        name.push_str(&unit);
    }
    if matches!(def.kind, Kind::Counter | Kind::ObservableCounter) && !name.ends_with("_total") {
        name.push_str("_total");
    }
    name
}

/// The unit word of a UCUM unit, per the spec's table; `None` for `1` and `{annotations}`.
fn unit_suffix(unit: &str) -> Option<String> {
    // Annotations carry no unit: `{call}` → nothing, `{packet}/s` → `per_second`.
    let stripped: String = {
        let mut out = String::new();
        let mut depth = 0;
        for c in unit.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out
    };
    let (main, per) = match stripped.split_once('/') {
        Some((m, p)) => (m, Some(p)),
        None => (stripped.as_str(), None),
    };
    let main = match main {
        "" | "1" => None,
        u => Some(unit_word(u).map_or_else(|| sanitize_unit(u), str::to_string)),
    };
    let per = per.and_then(|p| {
        let w = per_unit_word(p).map_or_else(|| sanitize_unit(p), str::to_string);
        (!w.is_empty()).then(|| format!("per_{w}"))
    });
    match (main, per) {
        (Some(m), Some(p)) => Some(format!("{m}_{p}")),
        (Some(m), None) => Some(m),
        (None, Some(p)) => Some(p),
        (None, None) => None,
    }
}

fn sanitize_unit(u: &str) -> String {
    u.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// The family name `opentelemetry-prometheus` gives a metric with units and counter suffixes
/// off: every character outside `[a-zA-Z0-9_:]` becomes `_`.
fn raw_name(otel_name: &str) -> String {
    otel_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Builds the Prometheus reader and the registry it feeds.
pub fn reader() -> Result<(PrometheusExporter, Registry), ExportError> {
    let registry = Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .without_units()
        .without_counter_suffixes()
        .build()
        .map_err(|e| ExportError::Prometheus(e.to_string()))?;
    Ok((exporter, registry))
}

/// What a scrape needs: the registry and the catalogue's rename table.
struct Scrape {
    registry: Registry,
    renames: HashMap<String, String>,
}

impl Scrape {
    fn new(registry: Registry) -> Scrape {
        let renames = Metric::ALL
            .iter()
            .map(|m| (raw_name(m.def().name), prometheus_name(m.def())))
            .collect();
        Scrape { registry, renames }
    }

    /// Gathers (which runs a collection, including the gauge callbacks) and encodes as text.
    fn render(&self) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        for f in &mut families {
            if let Some(name) = self.renames.get(f.name()) {
                f.set_name(name.clone());
            }
        }
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut buf = Vec::new();
        TextEncoder::new().encode(&families, &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

async fn metrics(State(scrape): State<Arc<Scrape>>) -> Response {
    match scrape.render() {
        Ok(body) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(e) => {
            warn!(error = %e, "prometheus scrape failed");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

/// The running `/metrics` server.
pub struct PrometheusServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl PrometheusServer {
    /// Binds `endpoint` (port 0 picks one) and serves `registry` on `GET /metrics`.
    pub async fn start(
        endpoint: SocketAddr,
        registry: Registry,
    ) -> Result<PrometheusServer, ExportError> {
        let bind_err = |source| ExportError::Bind {
            addr: endpoint,
            source,
        };
        let listener = TcpListener::bind(endpoint).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let app = Router::new()
            .route(METRICS_PATH, get(metrics))
            .with_state(Arc::new(Scrape::new(registry)));
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                warn!(addr = %addr, error = %e, "prometheus endpoint stopped");
            }
        });
        debug!(addr = %addr, "prometheus endpoint listening");
        Ok(PrometheusServer { addr, stop, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; in-flight scrapes finish.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits for the server to end, aborting it at `deadline`.
    pub async fn join(self, deadline: tokio::time::Instant) {
        self.stop.cancel();
        let abort = self.task.abort_handle();
        if tokio::time::timeout_at(deadline, self.task).await.is_err() {
            abort.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &'static str, unit: &'static str, kind: Kind) -> MetricDef {
        MetricDef {
            name,
            unit,
            kind,
            description: "",
            boundaries: &[],
        }
    }

    #[test]
    fn names_follow_the_spec() {
        let cases = [
            (
                def("sip.probe.rtt", "s", Kind::Histogram),
                "sip_probe_rtt_seconds",
            ),
            (
                def("voip.calls", "{call}", Kind::Counter),
                "voip_calls_total",
            ),
            (
                def("voip.registration.failure_ratio", "1", Kind::Gauge),
                "voip_registration_failure_ratio",
            ),
            (def("voip.call.mos", "1", Kind::Histogram), "voip_call_mos"),
            (
                def("x.duration_seconds", "s", Kind::Gauge),
                "x_duration_seconds",
            ),
            (
                def("x.sent_total", "{request}", Kind::Counter),
                "x_sent_total",
            ),
            (
                def("x.rate", "{packet}/s", Kind::Gauge),
                "x_rate_per_second",
            ),
            (
                def("x.speed", "m/s", Kind::Gauge),
                "x_speed_meters_per_second",
            ),
            (def("x.mem", "By", Kind::Gauge), "x_mem_bytes"),
            (
                def("x..odd-name", "ms", Kind::Counter),
                "x_odd_name_milliseconds_total",
            ),
        ];
        for (d, want) in cases {
            assert_eq!(prometheus_name(&d), want, "{}", d.name);
        }
    }

    #[test]
    fn every_catalogue_name_is_valid_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for m in Metric::ALL {
            let n = prometheus_name(m.def());
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{n}"
            );
            assert!(seen.insert(n.clone()), "duplicate {n}");
            // The rename key must be what the exporter renders with units off.
            assert_eq!(raw_name(m.def().name), m.def().name.replace('.', "_"));
        }
    }
}
