//! normalize tests
