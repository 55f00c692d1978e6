//! probe_interop tests
