//! Shared test helpers: the in-process OTLP sink, OTLP request builders, the whole sidecar, and
//! the preset fixtures as the Collector delivers them.
pub mod fixtures;
pub mod otlp_client;
pub mod otlp_sink;
pub mod sidecar;
