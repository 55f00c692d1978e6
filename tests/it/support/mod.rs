//! Shared test helpers: the in-process OTLP sink, OTLP request builders, free ports.
pub mod otlp_client;
pub mod otlp_sink;
pub mod sidecar;
