//! presets tests
