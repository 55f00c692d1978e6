//! The `callpulse` command.

fn main() {}
