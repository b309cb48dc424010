//! The timers of RFC 3261 §17 (Table 4 of §A) and RFC 6026, in one place.

use std::time::Duration;

/// A transaction timer; each fires at most once per arming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// INVITE client: retransmit the request over UDP; starts at T1, doubles.
    A,
    /// INVITE client: give up waiting for any response, 64·T1.
    B,
    /// INVITE client: stay Completed to absorb retransmitted responses,
    /// at least 32 s over UDP, 0 over TCP.
    D,
    /// Non-INVITE client: retransmit the request over UDP; T1 doubling to T2.
    E,
    /// Non-INVITE client: give up, 64·T1.
    F,
    /// INVITE server: retransmit a final non-2xx over UDP; T1 doubling to T2.
    G,
    /// INVITE server: give up waiting for the ACK, 64·T1.
    H,
    /// INVITE server: stay Confirmed to absorb ACK retransmissions, T4 over UDP.
    I,
    /// Non-INVITE server: stay Completed to absorb retransmissions, 64·T1 over UDP.
    J,
    /// Non-INVITE client: stay Completed to absorb responses, T4 over UDP.
    K,
    /// INVITE server (RFC 6026): stay Accepted after a 2xx, 64·T1.
    L,
    /// INVITE client (RFC 6026): stay Accepted to pass on forked 2xx, 64·T1.
    M,
}

/// The base times: T1 (round-trip estimate), T2 (largest retransmit
/// interval for non-INVITE requests and INVITE responses), T4 (how long a
/// message can live in the network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    /// RFC 3261's values: 500 ms, 4 s, 5 s.
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// The first interval or the whole duration of `timer`, over a reliable
    /// transport or not.
    pub fn duration(&self, timer: Timer, reliable: bool) -> Duration {
        let unreliable = |d: Duration| if reliable { Duration::ZERO } else { d };
        match timer {
            Timer::A | Timer::E | Timer::G => self.t1,
            Timer::B | Timer::F | Timer::H | Timer::L | Timer::M => self.t1 * 64,
            Timer::D => unreliable(Duration::from_secs(32).max(self.t1 * 64)),
            Timer::I | Timer::K => unreliable(self.t4),
            Timer::J => unreliable(self.t1 * 64),
        }
    }
}
