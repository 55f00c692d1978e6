//! RTP without I/O (the start of synthetic calls, issue 11): the RFC 3550 §5.1 packet header, and
//! a receiver's RFC 3550 §A.1/§A.3 sequence validation and loss accounting with §A.8 jitter.
//! Pure: no sockets and no clock — arrival times come in as timestamp units, so every rule is
//! table-tested with explicit numbers. The jitter arithmetic itself is `quality::jitter`'s.

pub mod jitter_buffer;
pub mod packet;
pub mod stats;

pub use jitter_buffer::{FixedJitterBuffer, Playout};
pub use packet::{RtpError, RtpHeader, RtpPacket};
pub use stats::{ReceiverReport, ReceiverStats};
