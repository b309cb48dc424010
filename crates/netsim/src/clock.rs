//! A virtual clock for tests: time moves only when the test says so.

use std::time::{Duration, Instant};

/// An `Instant` that only moves forward when stepped, so a test can run 32 s
/// of timers in microseconds.
///
/// `Instant` has no public constructor, so the clock needs one real instant as
/// its origin; only the distance from it ([`VirtualClock::elapsed`]) means
/// anything, and results stay reproducible whatever the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualClock {
    origin: Instant,
    now: Instant,
}

impl VirtualClock {
    /// A clock starting at `origin`.
    pub fn starting_at(origin: Instant) -> Self {
        Self {
            origin,
            now: origin,
        }
    }

    /// A clock starting at the real current instant (read once, as the origin).
    pub fn new() -> Self {
        Self::starting_at(Instant::now())
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Where the clock started.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Virtual time since the origin.
    pub fn elapsed(&self) -> Duration {
        self.now - self.origin
    }

    /// Moves the clock forward by `step`; returns the new time.
    pub fn advance(&mut self, step: Duration) -> Instant {
        self.now += step;
        self.now
    }

    /// Moves the clock to `to` if that is later; never moves it back.
    /// Returns the new time.
    pub fn advance_to(&mut self, to: Instant) -> Instant {
        self.now = self.now.max(to);
        self.now
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_forward_only() {
        let mut clock = VirtualClock::new();
        let t0 = clock.now();
        assert_eq!(
            clock.advance(Duration::from_secs(32)),
            t0 + Duration::from_secs(32)
        );
        clock.advance_to(t0);
        assert_eq!(clock.elapsed(), Duration::from_secs(32));
        clock.advance_to(t0 + Duration::from_secs(40));
        assert_eq!(clock.elapsed(), Duration::from_secs(40));
        assert_eq!(clock.origin(), t0);
    }
}
