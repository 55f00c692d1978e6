//! export tests
