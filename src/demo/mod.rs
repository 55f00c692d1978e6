//! `callpulse demo`: the real pipeline on the embedded defaults, fed over real OTLP by a simulated
//! PBX, probing built-in SIP responders, printing the derived metrics on the console.

pub mod pbx;
