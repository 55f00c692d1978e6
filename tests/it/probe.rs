//! probe tests
