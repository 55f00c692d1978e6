//! All integration tests build into this one binary (one link, shared helpers in `support`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod alert;
mod attacks;
mod cli;
mod collector_interop;
mod config;
mod dashboard;
mod drops;
mod event_time;
mod export;
mod fresh_gauges;
mod native_inputs;
mod normalize;
mod otlp_interop;
mod outbox;
mod pipeline;
mod presets;
mod presets_e2e;
mod probe;
mod probe_call;
mod probe_interop;
mod probe_isolation;
mod prometheus_interop;
mod quality;
mod receiver;
