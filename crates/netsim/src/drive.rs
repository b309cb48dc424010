//! Drives two sans-IO endpoints against each other over a [`Path`] on a
//! [`VirtualClock`], as quinn-proto's `Pair::drive` and str0m's
//! `progress(l, r)` do in their tests.

use std::time::{Duration, Instant};

use crate::clock::VirtualClock;
use crate::path::Path;

/// The least a sans-IO endpoint must offer to be driven: datagrams and the
/// time in, datagrams and its next deadline out.
pub trait Endpoint {
    /// A datagram arrived at `now`.
    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]);
    /// The next datagram to send, if any.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// When the endpoint next wants [`Endpoint::handle_timeout`] called.
    fn poll_timeout(&mut self) -> Option<Instant>;
    /// Its deadline has passed; `now` is at or after it.
    fn handle_timeout(&mut self, now: Instant);
}

/// When [`Driver::drive`] gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Virtual time the drive may span; events due later are left pending
    /// and the clock stops at this much past the drive's start.
    pub max_time: Duration,
    /// Events the drive may process (a timeout fired, a datagram sent, a
    /// datagram delivered or a clock advance each count one), so an endpoint
    /// that never settles cannot loop forever.
    pub max_steps: u64,
}

impl Default for Limits {
    /// One virtual minute and one million events.
    fn default() -> Self {
        Self {
            max_time: Duration::from_secs(60),
            max_steps: 1_000_000,
        }
    }
}

impl Limits {
    /// The default step limit with a time limit of `max_time`.
    pub fn time(max_time: Duration) -> Self {
        Self {
            max_time,
            ..Self::default()
        }
    }
}

/// Why a drive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// No endpoint timeout and no datagram in flight: nothing more can happen.
    Idle,
    /// The caller's condition became true.
    Done,
    /// The next event was beyond [`Limits::max_time`]; the clock is at the limit.
    TimeLimit,
    /// [`Limits::max_steps`] events were processed.
    StepLimit,
}

/// The outcome of a drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Why it ended.
    pub stop: Stop,
    /// Events processed.
    pub steps: u64,
    /// Virtual time it spanned.
    pub elapsed: Duration,
}

/// A virtual clock and a path between endpoint `a` and endpoint `b`; the
/// endpoints themselves stay with the caller, who can inspect and poke them
/// between drives.
#[derive(Debug, Clone)]
pub struct Driver {
    clock: VirtualClock,
    path: Path,
}

impl Driver {
    /// A driver over `path` whose clock starts at `clock`'s current time.
    pub fn new(path: Path, clock: VirtualClock) -> Self {
        Self { clock, path }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The virtual clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The path (read its links' counters here).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path, to change its conditions between drives.
    pub fn path_mut(&mut self) -> &mut Path {
        &mut self.path
    }

    /// Runs until nothing is pending or a limit is hit.
    pub fn drive<A: Endpoint, B: Endpoint>(
        &mut self,
        a: &mut A,
        b: &mut B,
        limits: Limits,
    ) -> Report {
        self.drive_until(a, b, limits, |_, _| false)
    }

    /// Runs until `done(a, b)` holds (checked before every event), nothing is
    /// pending, or a limit is hit.
    ///
    /// At each instant the driver fires due timeouts, moves every datagram
    /// the endpoints want to send into the path, and hands over every
    /// datagram the path delivers, always `a` before `b`, until nothing is
    /// left; only then does it move the clock to the earliest pending event.
    pub fn drive_until<A, B>(
        &mut self,
        a: &mut A,
        b: &mut B,
        limits: Limits,
        mut done: impl FnMut(&A, &B) -> bool,
    ) -> Report
    where
        A: Endpoint,
        B: Endpoint,
    {
        let start = self.clock.now();
        let deadline = start + limits.max_time;
        let mut steps = 0;
        let stop = loop {
            if done(a, b) {
                break Stop::Done;
            }
            if steps >= limits.max_steps {
                break Stop::StepLimit;
            }
            steps += 1;
            let now = self.clock.now();
            if a.poll_timeout().is_some_and(|t| t <= now) {
                a.handle_timeout(now);
            } else if b.poll_timeout().is_some_and(|t| t <= now) {
                b.handle_timeout(now);
            } else if let Some(datagram) = a.poll_transmit() {
                self.path.a_to_b.send(now, datagram);
            } else if let Some(datagram) = b.poll_transmit() {
                self.path.b_to_a.send(now, datagram);
            } else if let Some(d) = self.path.a_to_b.poll_deliver(now) {
                b.handle_datagram(now, &d.packet);
            } else if let Some(d) = self.path.b_to_a.poll_deliver(now) {
                a.handle_datagram(now, &d.packet);
            } else {
                let next = [a.poll_timeout(), b.poll_timeout(), self.path.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                match next {
                    None => {
                        steps -= 1;
                        break Stop::Idle;
                    }
                    Some(t) if t > deadline => {
                        self.clock.advance_to(deadline);
                        break Stop::TimeLimit;
                    }
                    Some(t) => {
                        self.clock.advance_to(t);
                    }
                }
            }
        };
        Report {
            stop,
            steps,
            elapsed: self.clock.now() - start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LinkConfig;

    /// Sends `count` pings 20 ms apart and records round-trip times.
    struct Pinger {
        next: Option<Instant>,
        left: u32,
        outbox: Vec<Vec<u8>>,
        sent: Vec<Instant>,
        rtts: Vec<Duration>,
    }

    impl Pinger {
        fn new(start: Instant, count: u32) -> Self {
            Self {
                next: Some(start),
                left: count,
                outbox: Vec::new(),
                sent: Vec::new(),
                rtts: Vec::new(),
            }
        }
    }

    impl Endpoint for Pinger {
        fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
            let n = u32::from_be_bytes(datagram.try_into().unwrap()) as usize;
            self.rtts.push(now - self.sent[n]);
        }
        fn poll_transmit(&mut self) -> Option<Vec<u8>> {
            self.outbox.pop()
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            self.next
        }
        fn handle_timeout(&mut self, now: Instant) {
            self.outbox
                .push((self.sent.len() as u32).to_be_bytes().to_vec());
            self.sent.push(now);
            self.left -= 1;
            self.next = (self.left > 0).then(|| now + Duration::from_millis(20));
        }
    }

    /// Echoes every datagram.
    #[derive(Default)]
    struct Echo {
        outbox: Vec<Vec<u8>>,
    }

    impl Endpoint for Echo {
        fn handle_datagram(&mut self, _now: Instant, datagram: &[u8]) {
            self.outbox.push(datagram.to_vec());
        }
        fn poll_transmit(&mut self) -> Option<Vec<u8>> {
            self.outbox.pop()
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            None
        }
        fn handle_timeout(&mut self, _now: Instant) {}
    }

    /// Always wants a timeout at a time long past: a broken endpoint.
    struct Spinner(Instant);

    impl Endpoint for Spinner {
        fn handle_datagram(&mut self, _: Instant, _: &[u8]) {}
        fn poll_transmit(&mut self) -> Option<Vec<u8>> {
            None
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            Some(self.0)
        }
        fn handle_timeout(&mut self, _: Instant) {}
    }

    fn driver(config: LinkConfig, seed: u64) -> Driver {
        Driver::new(Path::symmetric(config, seed).unwrap(), VirtualClock::new())
    }

    #[test]
    fn ping_pong_until_idle() {
        let mut d = driver(LinkConfig::with_delay(Duration::from_millis(40)), 1);
        let mut a = Pinger::new(d.now(), 50);
        let mut b = Echo::default();
        let report = d.drive(&mut a, &mut b, Limits::default());
        assert_eq!(report.stop, Stop::Idle);
        assert_eq!(a.rtts.len(), 50);
        assert!(a.rtts.iter().all(|&rtt| rtt == Duration::from_millis(80)));
        // The last ping leaves at 49 × 20 ms and comes back 80 ms later.
        assert_eq!(report.elapsed, Duration::from_millis(49 * 20 + 80));
        assert_eq!(d.path().a_to_b.stats().delivered, 50);
    }

    #[test]
    fn time_limit_stops_the_clock_at_the_limit_and_resumes() {
        let mut d = driver(LinkConfig::with_delay(Duration::from_millis(40)), 1);
        let mut a = Pinger::new(d.now(), 100);
        let mut b = Echo::default();
        let report = d.drive(&mut a, &mut b, Limits::time(Duration::from_millis(500)));
        assert_eq!(report.stop, Stop::TimeLimit);
        assert_eq!(report.elapsed, Duration::from_millis(500));
        // Pings at 0..=420 ms have returned by 500 ms.
        assert_eq!(a.rtts.len(), 22);
        let report = d.drive(&mut a, &mut b, Limits::default());
        assert_eq!(report.stop, Stop::Idle);
        assert_eq!(a.rtts.len(), 100);
    }

    #[test]
    fn drive_until_condition() {
        let mut d = driver(LinkConfig::with_delay(Duration::from_millis(10)), 1);
        let mut a = Pinger::new(d.now(), 100);
        let mut b = Echo::default();
        let report = d.drive_until(&mut a, &mut b, Limits::default(), |a, _| a.rtts.len() == 3);
        assert_eq!(report.stop, Stop::Done);
        assert_eq!(a.rtts.len(), 3);
        assert_eq!(report.elapsed, Duration::from_millis(40 + 20));
    }

    #[test]
    fn step_limit_stops_a_spinning_endpoint() {
        let mut d = driver(LinkConfig::default(), 1);
        let mut spinner = Spinner(d.now());
        let report = d.drive(&mut spinner, &mut Echo::default(), Limits::default());
        assert_eq!(report.stop, Stop::StepLimit);
        assert_eq!(report.steps, Limits::default().max_steps);
        assert_eq!(report.elapsed, Duration::ZERO);
    }

    #[test]
    fn lossy_path_loses_some_pings_reproducibly() {
        let config = LinkConfig {
            delay: Duration::from_millis(25),
            loss: 0.2,
            ..LinkConfig::default()
        };
        let run = |seed| {
            let mut d = driver(config.clone(), seed);
            let mut a = Pinger::new(d.now(), 200);
            let mut b = Echo::default();
            d.drive(&mut a, &mut b, Limits::default());
            a.rtts.len()
        };
        let got = run(7);
        assert_eq!(got, run(7));
        // Each round trip survives with probability 0.8 × 0.8 = 0.64.
        assert!((100..156).contains(&got), "{got}");
    }
}
