//! otlp_interop tests
