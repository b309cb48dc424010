//! RTP and RTCP (RFC 3550): packets, sequence numbering, receiver statistics
//! and telephone events (RFC 4733).
//!
//! - [`header`]: the RTP packet (§5.1, header extensions of §5.3.1 and RFC 8285)
//!   and the first-byte demultiplexing of a media port (RFC 7983, RFC 5761).
//! - [`seq`]: extended sequence numbers and source validation (Appendix A.1).
//! - [`rtcp`]: compound RTCP packets: SR, RR, SDES, BYE, APP (§6).
//! - [`stats`]: reception statistics, jitter and round-trip time (A.3, A.8, §6.4.1).
//! - [`dtmf`]: the telephone-event payload and its sender and receiver (RFC 4733).
//! - [`red`]: redundant audio, each packet carrying the frames before it (RFC 2198).
//! - [`feedback`]: delivery feedback (one-way delay, rate received) in an APP
//!   packet, for a sender that adapts its rate.

pub mod dtmf;
pub mod feedback;
pub mod header;
pub mod red;
pub mod rtcp;
pub mod seq;
pub mod stats;

pub use header::{Pt, SeqNo, Ssrc};
pub use seq::ExtSeq;
