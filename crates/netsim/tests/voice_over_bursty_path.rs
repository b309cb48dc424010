//! Scenario: two endpoints send a 20 ms voice stream at each other for a
//! virtual minute over a path with delay, jitter and bursty loss, driven by
//! `Driver`; what each side receives matches the path's counters, and the
//! whole run replays from its seed.

use std::time::{Duration, Instant};

use ipphone_netsim::{
    Driver, Endpoint, GilbertElliott, Jitter, Limits, LinkConfig, Path, Stop, VirtualClock,
};

/// Sends a numbered 160-byte frame every 20 ms and records what arrives.
struct Talker {
    next: Instant,
    frames: u32,
    sent: u32,
    outbox: Option<Vec<u8>>,
    received: Vec<(u32, Instant)>,
}

impl Talker {
    fn new(start: Instant, frames: u32) -> Self {
        Self {
            next: start,
            frames,
            sent: 0,
            outbox: None,
            received: Vec::new(),
        }
    }
}

impl Endpoint for Talker {
    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        let n = u32::from_be_bytes(datagram[..4].try_into().unwrap());
        self.received.push((n, now));
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.take()
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        (self.sent < self.frames).then_some(self.next)
    }
    fn handle_timeout(&mut self, now: Instant) {
        let mut frame = vec![0xd5; 160];
        frame[..4].copy_from_slice(&self.sent.to_be_bytes());
        self.outbox = Some(frame);
        self.sent += 1;
        self.next = now + Duration::from_millis(20);
    }
}

fn config() -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(60),
        jitter: Jitter::Uniform(Duration::from_millis(15)),
        burst_loss: Some(GilbertElliott::from_loss_and_burst(0.05, 3.0).unwrap()),
        ..LinkConfig::default()
    }
}

/// Frame numbers with their arrival time since the start of the call.
type Arrivals = Vec<(u32, Duration)>;

fn call(seed: u64) -> (Arrivals, Arrivals, Driver) {
    let clock = VirtualClock::new();
    let t0 = clock.now();
    let mut driver = Driver::new(Path::symmetric(config(), seed).unwrap(), clock);
    let mut a = Talker::new(t0, 3_000);
    let mut b = Talker::new(t0 + Duration::from_millis(7), 3_000);
    let report = driver.drive(&mut a, &mut b, Limits::time(Duration::from_secs(120)));
    assert_eq!(report.stop, Stop::Idle);
    let rel = |v: Vec<(u32, Instant)>| v.into_iter().map(|(n, at)| (n, at - t0)).collect();
    (rel(a.received), rel(b.received), driver)
}

#[test]
fn voice_stream_over_bursty_path() {
    let (at_a, at_b, driver) = call(2024);
    let ab = driver.path().a_to_b.stats();
    let ba = driver.path().b_to_a.stats();
    assert_eq!(at_b.len() as u64, ab.delivered);
    assert_eq!(at_a.len() as u64, ba.delivered);
    assert_eq!(ab.delivered + ab.lost, 3_000);
    assert_eq!(ba.delivered + ba.lost, 3_000);
    for (stats, received) in [(ab, &at_b), (ba, &at_a)] {
        let loss = stats.lost as f64 / 3_000.0;
        assert!((0.02..0.08).contains(&loss), "loss {loss}");
        // Jitter keeps order by default: frame numbers only go up.
        assert!(received.windows(2).all(|w| w[0].0 < w[1].0));
    }
    // Each frame arrives 45..=75 ms after it was sent (b starts 7 ms late).
    for &(n, at) in &at_b {
        let sent = Duration::from_millis(20 * u64::from(n));
        assert!(
            (sent + Duration::from_millis(45)..=sent + Duration::from_millis(75)).contains(&at)
        );
    }
    for &(n, at) in &at_a {
        let sent = Duration::from_millis(7 + 20 * u64::from(n));
        assert!(
            (sent + Duration::from_millis(45)..=sent + Duration::from_millis(75)).contains(&at)
        );
    }
}

#[test]
fn voice_stream_replays_from_its_seed() {
    let (a1, b1, _) = call(99);
    let (a2, b2, _) = call(99);
    assert_eq!((a1, b1), (a2, b2));
    let (a3, _, _) = call(100);
    let (a4, _, _) = call(99);
    assert_ne!(a3, a4);
}
