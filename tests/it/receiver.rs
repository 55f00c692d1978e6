//! receiver tests
