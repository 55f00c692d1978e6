//! quality tests
