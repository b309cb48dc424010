//! Two RTP media streams with jitter buffers, talking through the seeded
//! network emulator for a minute of virtual time: random and bursty loss,
//! jitter, reordering and duplicates. Every 20 ms frame of playout is
//! accounted for (played, rebuilt from the next packet, or concealed),
//! almost nothing comes too late, and the delay stays bounded.

use std::time::{Duration, Instant, SystemTime};

use ipphone_proto::jitter::{InsertResult, JitterBuffer, JitterConfig, Playout};
use ipphone_proto::rtp::{Pt, SeqNo, Ssrc};
use ipphone_proto::stream::{MediaStream, StreamConfig, StreamEvent};
use netsim::{
    Driver, Endpoint, GilbertElliott, Jitter, Limits, LinkConfig, Path, Reorder, VirtualClock,
};

const FRAME: Duration = Duration::from_millis(20);
const TICKS: u32 = 960;

struct Phone {
    t0: Instant,
    wall0: SystemTime,
    stream: MediaStream,
    jitter: JitterBuffer,
    next_frame: Instant,
    sent: u32,
    frames: Frames,
}

#[derive(Debug, Default, Clone, Copy)]
struct Frames {
    played: u64,
    rebuilt: u64,
    concealed: u64,
    empty: u64,
    late: u64,
}

impl Phone {
    fn new(t0: Instant, ssrc: u32) -> Phone {
        let config = StreamConfig {
            clock_rate: 48_000,
            pt: Pt(111),
            ssrc: Ssrc(ssrc),
            first_seq: SeqNo(ssrc as u16),
            first_timestamp: ssrc.wrapping_mul(7919),
            cname: format!("phone{ssrc}"),
            rtcp_interval: Duration::from_secs(5),
            feedback: false,
            seed: u64::from(ssrc),
        };
        Phone {
            t0,
            wall0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            stream: MediaStream::new(config, t0),
            jitter: JitterBuffer::new(JitterConfig::new(48_000)),
            next_frame: t0,
            sent: 0,
            frames: Frames::default(),
        }
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.wall0 + now.duration_since(self.t0)
    }
}

impl Endpoint for Phone {
    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        self.stream.handle_datagram(now, self.wall(now), datagram);
        while let Some(event) = self.stream.poll_event() {
            if let StreamEvent::Media {
                seq,
                timestamp,
                payload,
                ..
            } = event
                && self.jitter.insert(now, seq, timestamp, &payload) == InsertResult::TooLate
            {
                self.frames.late += 1;
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.stream.poll_transmit().map(|t| t.data)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        Some(self.next_frame)
    }

    fn handle_timeout(&mut self, now: Instant) {
        while self.next_frame <= now {
            // One frame out, numbered so the payload says which it is.
            let mut payload = self.sent.to_be_bytes().to_vec();
            payload.resize(60, 0x55);
            self.stream.send_media(&payload, TICKS);
            self.sent += 1;
            // One frame of playout, at the audio clock's pace.
            match self.jitter.pop(now) {
                Playout::Packet { .. } => self.frames.played += 1,
                Playout::Lost { next: Some(_), .. } => self.frames.rebuilt += 1,
                Playout::Lost { next: None, .. } => self.frames.concealed += 1,
                Playout::Empty => self.frames.empty += 1,
            }
            self.jitter.played(u64::from(TICKS));
            self.next_frame += FRAME;
        }
        let wall = self.wall(now);
        self.stream.handle_timeout(now, wall);
    }
}

fn run(config: LinkConfig, seed: u64, seconds: u64) -> (Phone, Phone) {
    let clock = VirtualClock::new();
    let t0 = clock.now();
    let path = Path::symmetric(config, seed).expect("a valid link");
    let mut driver = Driver::new(path, clock);
    let (mut a, mut b) = (Phone::new(t0, 0x1111), Phone::new(t0, 0x2222));
    let limits = Limits {
        max_time: Duration::from_secs(seconds),
        max_steps: 10_000_000,
    };
    driver.drive(&mut a, &mut b, limits);
    (a, b)
}

fn frames(f: &Frames) -> u64 {
    f.played + f.rebuilt + f.concealed + f.empty
}

#[test]
fn ten_percent_loss_and_thirty_ms_of_jitter() {
    let mut config = LinkConfig::with_delay(Duration::from_millis(20));
    config.jitter = Jitter::Uniform(Duration::from_millis(30));
    config.loss = 0.10;
    let (a, b) = run(config, 11, 60);
    for phone in [&a, &b] {
        let f = phone.frames;
        let stats = phone.jitter.stats();
        // Every frame period produced a frame of audio.
        assert!((2_999..=3_001).contains(&frames(&f)), "{f:?}");
        assert!(f.played > 2_550, "about 90 % arrive and are played: {f:?}");
        assert!(f.late < 30, "under 1 % late: {f:?} {stats:?}");
        assert!(stats.max_buffered < Duration::from_millis(200), "{stats:?}");
        assert!(stats.target_delay < Duration::from_millis(120), "{stats:?}");
    }
    assert!(
        a.frames.rebuilt > 50,
        "lost frames are often followed by their successor, for FEC: {:?}",
        a.frames
    );
    // Each side counted the other's losses, and RTCP measured the round trip.
    assert!(b.stream.stats().lost > 200, "{:?}", b.stream.stats());
    assert!(a.stream.stats().rtt.is_some(), "{:?}", a.stream.stats());
}

#[test]
fn bursts_reordering_and_duplicates() {
    let mut config = LinkConfig::with_delay(Duration::from_millis(30));
    config.jitter = Jitter::Uniform(Duration::from_millis(10));
    config.burst_loss =
        Some(GilbertElliott::from_loss_and_burst(0.05, 3.0).expect("a valid model"));
    config.reorder = Some(Reorder {
        probability: 0.05,
        extra_delay: Duration::from_millis(15),
    });
    config.duplicate = 0.05;
    let (a, _) = run(config, 5, 60);
    let f = a.frames;
    assert!((2_999..=3_001).contains(&frames(&f)), "{f:?}");
    assert!(f.played > 2_700, "{f:?}");
    assert!(a.jitter.stats().duplicates > 50, "{:?}", a.jitter.stats());
    assert!(f.late < 30, "{f:?}");
}

#[test]
fn a_clean_path_settles_near_one_frame() {
    let (a, _) = run(LinkConfig::with_delay(Duration::from_millis(10)), 1, 20);
    let stats = a.jitter.stats();
    assert_eq!(a.frames.late, 0);
    assert!(a.frames.played >= 990, "{:?}", a.frames);
    assert!(stats.target_delay <= Duration::from_millis(40), "{stats:?}");
}
