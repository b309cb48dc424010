//! The sans-IO core of ipphone: wire formats and protocol state machines.
//!
//! Nothing here opens a socket, starts a thread, reads a clock or touches a sound
//! card. Callers feed bytes and the time in, and take bytes, events and deadlines
//! out, so every protocol can be driven by a test in microseconds.
#![forbid(unsafe_code)]

pub mod jitter;
pub mod legacy;
pub mod rtp;
pub mod sdp;
pub mod sip;
pub mod stream;
pub mod vcard;
