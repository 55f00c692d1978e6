//! A rate limit on the OpenTelemetry SDK's own WARN and ERROR lines (targets `opentelemetry*`).
//! While a backend is down, each failed export makes the SDK log the same lines again (the
//! exporter's "retries exhausted", the periodic reader's "export error"), every few seconds per
//! exporter. callpulse's own line for a failed export (`otlp::Counted`) already says the same with
//! a count, so each SDK callsite is let through once per [`super::otlp::FAILURE_LOG_EVERY`] and the
//! rest dropped. Other targets and lower levels pass untouched (the env filter decides those).

use std::collections::HashMap;
use std::sync::Mutex;

use tracing::callsite::Identifier;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::otlp::{FAILURE_LOG_EVERY, LogLimiter};

/// The layer: add it to the process's subscriber (`main.rs`).
#[derive(Debug, Default)]
pub struct SdkLogLimit {
    callsites: Mutex<HashMap<Identifier, LogLimiter>>,
}

impl<S: Subscriber> Layer<S> for SdkLogLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        // In tracing, less severe levels compare greater: INFO > WARN > ERROR.
        if *meta.level() > Level::WARN || !meta.target().starts_with("opentelemetry") {
            return true;
        }
        let mut callsites = self
            .callsites
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        callsites
            .entry(meta.callsite())
            .or_default()
            .admit(tokio::time::Instant::now(), FAILURE_LOG_EVERY)
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn repeated_sdk_failure_lines_pass_once_and_others_untouched() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
            .with(SdkLogLimit::default());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                tracing::warn!(target: "opentelemetry-otlp", "sdk export exhausted");
                tracing::error!(target: "opentelemetry_sdk", "sdk reader export error");
                tracing::info!(target: "opentelemetry_sdk", "sdk info");
                tracing::warn!("callpulse own line");
            }
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let count = |s: &str| text.lines().filter(|l| l.contains(s)).count();
        assert_eq!(count("sdk export exhausted"), 1, "{text}");
        assert_eq!(count("sdk reader export error"), 1, "{text}");
        assert_eq!(count("sdk info"), 3, "{text}");
        assert_eq!(count("callpulse own line"), 3, "{text}");
    }
}
