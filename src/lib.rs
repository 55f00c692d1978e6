//! callpulse: a sidecar that turns PBX events (OTLP logs) and its own SIP probes into
//! call-experience metrics and threshold events, exported as OTLP.
//!
//! Data flow: `receiver` → `normalize` → `engine` (uses `quality`, `alert`) → `export`;
//! `probe` → `engine`. See `docs/architecture.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alert;
pub mod app;
pub mod clock;
pub mod config;
pub mod demo;
pub mod engine;
pub mod event;
pub mod export;
pub mod metrics;
pub mod normalize;
mod otlp_wire;
pub mod probe;
pub mod quality;
pub mod receiver;
pub mod rtp;
pub mod signal;
pub mod sip;
pub mod stats;
