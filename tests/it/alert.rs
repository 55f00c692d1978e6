//! alert tests
