//! DTMF as RTP telephone events (RFC 4733 §2.3, §2.5): the 4-byte payload,
//! a sender that turns one key press into its packet sequence, and a
//! receiver that reports each digit once.
//!
//! Sender timing follows RFC 4733 §2.5.1.2 and libre's `telev.c` (baresip):
//! the first packet has the marker bit and covers one update interval; an
//! update follows every interval (50 ms by default) with the duration so
//! far; when the key is released the final packet, with the end bit and the
//! whole duration, is sent three times, one interval apart (§2.5.1.4). All
//! packets of one event carry the RTP timestamp of its start.
//!
//! Durations longer than the 16-bit field allows (8.19 s at 8 kHz) are cut
//! at 65535 ticks; the long-event segments of §2.5.1.3 are not sent.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

/// Length of one telephone-event payload.
pub const PAYLOAD_LEN: usize = 4;

/// Default time between updates (RFC 4733 §2.5.1.2: "every 50 ms").
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(50);

/// How many times the final (end) packet is sent (RFC 4733 §2.5.1.4).
pub const END_PACKETS: u8 = 3;

/// The longest update interval [`DtmfSender::set_interval`] accepts.
pub const MAX_INTERVAL: Duration = Duration::from_secs(1);

/// The longest key press [`DtmfSender::start`] sends; longer ones are cut.
pub const MAX_LENGTH: Duration = Duration::from_secs(3600);

/// Default volume: -10 dBm0, a typical DTMF level (RFC 4733 §2.3.4 carries
/// the power level as a positive number of dB below 0 dBm0).
pub const DEFAULT_VOLUME: u8 = 10;

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelephoneEvent {
    /// Event code (§3.2: 0-9, 10 `*`, 11 `#`, 12-15 `A`-`D`).
    pub event: u8,
    /// The `E` bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level in -dBm0, 0-63 (6 bits; larger values are cut to 63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

/// Why a payload could not be parsed or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DtmfError {
    #[error("{0} bytes: a telephone-event payload is 4")]
    TooShort(usize),
    #[error("the buffer holds {available} bytes, a telephone event needs 4")]
    BufferTooSmall { available: usize },
    #[error("an event is still being sent: wait until the sender is idle")]
    Busy,
}

impl TelephoneEvent {
    /// Parses the first event of a payload; bytes after it are ignored.
    /// The reserved `R` bit is ignored, as §2.3.3 asks of receivers.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::TooShort(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4 payload bytes (`R` written as 0).
    pub fn to_bytes(&self) -> [u8; PAYLOAD_LEN] {
        let [d0, d1] = self.duration.to_be_bytes();
        [
            self.event,
            u8::from(self.end) << 7 | self.volume.min(63),
            d0,
            d1,
        ]
    }

    /// Writes the payload into the front of `out`; returns 4.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, DtmfError> {
        let Some(dest) = out.get_mut(..PAYLOAD_LEN) else {
            return Err(DtmfError::BufferTooSmall {
                available: out.len(),
            });
        };
        dest.copy_from_slice(&self.to_bytes());
        Ok(PAYLOAD_LEN)
    }
}

/// The event code of a keypad character (RFC 4733 §3.2, Table 7);
/// letters in either case.
pub fn event_for_digit(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// The keypad character of a DTMF event code, `None` for other events.
pub fn digit_for_event(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// One packet the sender wants sent: the caller puts `event` into an RTP
/// packet of its stream with the telephone-event payload type, its next
/// sequence number, this `timestamp` and `marker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    pub marker: bool,
    /// RTP timestamp of the event's start, the same in every packet of it.
    pub timestamp: u32,
    pub event: TelephoneEvent,
}

/// Sends one event at a time as its RFC 4733 packet sequence.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    clock_rate: u32,
    interval: Duration,
    volume: u8,
    tone: Option<Tone>,
    transmit: VecDeque<DtmfPacket>,
}

#[derive(Debug, Clone)]
struct Tone {
    event: u8,
    timestamp: u32,
    start: Instant,
    length: Duration,
    /// Updates (non-end packets) sent so far.
    updates: u32,
    /// End packets sent so far.
    ends: u8,
}

impl DtmfSender {
    /// A sender for a telephone-event format with this RTP clock rate
    /// (8000 for the usual `telephone-event/8000`).
    pub fn new(clock_rate: u32) -> Self {
        DtmfSender {
            clock_rate,
            interval: DEFAULT_INTERVAL,
            volume: DEFAULT_VOLUME,
            tone: None,
            transmit: VecDeque::new(),
        }
    }

    /// Sets the time between updates, e.g. the audio packet time (§2.5.1.2).
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval.clamp(Duration::from_millis(1), MAX_INTERVAL);
    }

    /// Sets the volume, in -dBm0 (0-63).
    pub fn set_volume(&mut self, volume: u8) {
        self.volume = volume.min(63);
    }

    /// Starts sending `event`, a key held for `length`, at `now`, which is
    /// `rtp_timestamp` in the stream's RTP clock. The first packet is ready
    /// at once from [`poll_transmit`](Self::poll_transmit).
    pub fn start(
        &mut self,
        now: Instant,
        event: u8,
        length: Duration,
        rtp_timestamp: u32,
    ) -> Result<(), DtmfError> {
        if self.is_busy() {
            return Err(DtmfError::Busy);
        }
        self.tone = Some(Tone {
            event,
            timestamp: rtp_timestamp,
            start: now,
            length: length.min(MAX_LENGTH),
            updates: 0,
            ends: 0,
        });
        self.handle_timeout(now);
        Ok(())
    }

    /// Whether an event is still in progress or has packets waiting.
    pub fn is_busy(&self) -> bool {
        self.tone.is_some() || !self.transmit.is_empty()
    }

    /// When the next packet is due, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tone.as_ref().map(|tone| self.next_due(tone))
    }

    /// Queues every packet due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(tone) = &self.tone {
            if self.next_due(tone) > now {
                break;
            }
            let total = self.ticks(tone.length);
            let (end, duration) = if self.updates_left(tone) {
                let covered = self.interval * (tone.updates + 1);
                (false, self.ticks(covered).min(total))
            } else {
                (true, total)
            };
            let packet = DtmfPacket {
                marker: tone.updates == 0 && tone.ends == 0,
                timestamp: tone.timestamp,
                event: TelephoneEvent {
                    event: tone.event,
                    end,
                    volume: self.volume,
                    duration,
                },
            };
            self.transmit.push_back(packet);
            let tone = self.tone.as_mut().expect("the loop holds a tone");
            if end {
                tone.ends += 1;
                if tone.ends == END_PACKETS {
                    self.tone = None;
                }
            } else {
                tone.updates += 1;
            }
        }
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<DtmfPacket> {
        self.transmit.pop_front()
    }

    /// Whether another update comes before the end packets.
    fn updates_left(&self, tone: &Tone) -> bool {
        // The first packet goes out even for a zero-length press.
        tone.updates == 0 || self.interval * tone.updates < tone.length
    }

    fn next_due(&self, tone: &Tone) -> Instant {
        if self.updates_left(tone) {
            tone.start + self.interval * tone.updates
        } else {
            tone.start + tone.length + self.interval * u32::from(tone.ends)
        }
    }

    fn ticks(&self, duration: Duration) -> u16 {
        let ticks = duration.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        ticks.min(u128::from(u16::MAX)) as u16
    }
}

/// A digit reported by [`DtmfReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedEvent {
    pub event: u8,
    /// RTP timestamp of the event's start.
    pub timestamp: u32,
}

impl ReceivedEvent {
    /// The keypad character, for DTMF events.
    pub fn digit(&self) -> Option<char> {
        digit_for_event(self.event)
    }
}

/// Reports each event of one RTP stream once: on the first of its packets
/// to arrive, whichever that is, ignoring the updates and the repeated end
/// packets. Events are told apart by their RTP timestamp (§2.5.2.2); a few
/// recent ones are remembered, so a late packet of a previous event is
/// not reported again.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    recent: [Option<(u32, u8)>; 4],
    next: usize,
}

impl DtmfReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one telephone-event packet with this RTP `timestamp`.
    pub fn handle_packet(
        &mut self,
        timestamp: u32,
        event: &TelephoneEvent,
    ) -> Option<ReceivedEvent> {
        let key = (timestamp, event.event);
        if self.recent.contains(&Some(key)) {
            return None;
        }
        self.recent[self.next] = Some(key);
        self.next = (self.next + 1) % self.recent.len();
        Some(ReceivedEvent {
            event: event.event,
            timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_vectors() {
        // Event 5, E=1, volume 10, duration 800 (100 ms at 8 kHz).
        let bytes = [0x05, 0x8A, 0x03, 0x20];
        let ev = TelephoneEvent::parse(&bytes).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(ev.to_bytes(), bytes);
        // The R bit is ignored on receipt and written as zero.
        let reserved = TelephoneEvent::parse(&[11, 0x4A, 0, 0]).unwrap();
        assert!(!reserved.end);
        assert_eq!(reserved.volume, 10);
        assert_eq!(reserved.to_bytes(), [11, 0x0A, 0, 0]);
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::TooShort(3))
        );
        assert_eq!(
            ev.write(&mut [0u8; 3]),
            Err(DtmfError::BufferTooSmall { available: 3 })
        );
    }

    #[test]
    fn keypad_codes() {
        let keys = "0123456789*#ABCD";
        for (code, key) in keys.chars().enumerate() {
            assert_eq!(event_for_digit(key), Some(code as u8));
            assert_eq!(digit_for_event(code as u8), Some(key));
        }
        assert_eq!(event_for_digit('d'), Some(15));
        assert_eq!(event_for_digit('x'), None);
        assert_eq!(digit_for_event(16), None);
    }

    fn drain(sender: &mut DtmfSender) -> Vec<DtmfPacket> {
        std::iter::from_fn(|| sender.poll_transmit()).collect()
    }

    /// Drives the sender through its timeouts; returns each packet with the
    /// time since the start at which it was released.
    fn run(sender: &mut DtmfSender, t0: Instant) -> Vec<(Duration, DtmfPacket)> {
        let mut sent: Vec<_> = drain(sender)
            .into_iter()
            .map(|p| (Duration::ZERO, p))
            .collect();
        while let Some(at) = sender.poll_timeout() {
            sender.handle_timeout(at);
            sent.extend(drain(sender).into_iter().map(|p| (at - t0, p)));
        }
        sent
    }

    #[test]
    fn a_key_held_for_180_ms() {
        let t0 = Instant::now();
        let mut sender = DtmfSender::new(8000);
        sender
            .start(
                t0,
                event_for_digit('7').unwrap(),
                Duration::from_millis(180),
                4242,
            )
            .unwrap();
        let sent = run(&mut sender, t0);
        let ms = |n| Duration::from_millis(n);
        let summary: Vec<_> = sent
            .iter()
            .map(|(at, p)| (*at, p.marker, p.event.end, p.event.duration))
            .collect();
        assert_eq!(
            summary,
            [
                (ms(0), true, false, 400),
                (ms(50), false, false, 800),
                (ms(100), false, false, 1200),
                (ms(150), false, false, 1440),
                (ms(180), false, true, 1440),
                (ms(230), false, true, 1440),
                (ms(280), false, true, 1440),
            ]
        );
        assert!(
            sent.iter()
                .all(|(_, p)| p.timestamp == 4242 && p.event.event == 7 && p.event.volume == 10)
        );
        assert!(!sender.is_busy());
        assert_eq!(sender.poll_timeout(), None);
    }

    #[test]
    fn a_short_press_still_sends_start_and_three_ends() {
        let t0 = Instant::now();
        let mut sender = DtmfSender::new(8000);
        sender.start(t0, 11, Duration::from_millis(20), 0).unwrap();
        let sent = run(&mut sender, t0);
        assert_eq!(sent.len(), 4);
        assert!(sent[0].1.marker && !sent[0].1.event.end);
        assert_eq!(sent[0].1.event.duration, 160);
        assert!(
            sent[1..]
                .iter()
                .all(|(_, p)| p.event.end && p.event.duration == 160)
        );
    }

    #[test]
    fn busy_until_done_and_late_timeouts_catch_up() {
        let t0 = Instant::now();
        let mut sender = DtmfSender::new(8000);
        sender.start(t0, 1, Duration::from_millis(100), 0).unwrap();
        assert_eq!(
            sender.start(t0, 2, Duration::from_millis(100), 0),
            Err(DtmfError::Busy)
        );
        // Woken only once, long after the end: everything comes out in order.
        sender.handle_timeout(t0 + Duration::from_secs(1));
        let packets = drain(&mut sender);
        assert_eq!(packets.len(), 2 + 3);
        assert_eq!(packets.iter().filter(|p| p.event.end).count(), 3);
        assert!(!sender.is_busy());
        assert!(sender.start(t0, 2, Duration::from_millis(100), 800).is_ok());
    }

    #[test]
    fn long_presses_are_capped_at_16_bits() {
        let t0 = Instant::now();
        let mut sender = DtmfSender::new(48_000);
        sender.set_interval(Duration::from_millis(500));
        sender.start(t0, 0, Duration::from_secs(3), 0).unwrap();
        let sent = run(&mut sender, t0);
        assert_eq!(sent.last().unwrap().1.event.duration, u16::MAX);
    }

    #[test]
    fn receiver_reports_each_digit_once() {
        let t0 = Instant::now();
        let mut sender = DtmfSender::new(8000);
        let mut receiver = DtmfReceiver::new();
        let mut reported = Vec::new();
        let mut timestamp = 1000u32;
        for key in "19#".chars() {
            let now = t0 + Duration::from_millis(u64::from(timestamp) / 8);
            sender
                .start(
                    now,
                    event_for_digit(key).unwrap(),
                    Duration::from_millis(120),
                    timestamp,
                )
                .unwrap();
            for (_, packet) in run(&mut sender, now) {
                // Every payload goes through the wire format.
                let event = TelephoneEvent::parse(&packet.event.to_bytes()).unwrap();
                reported.extend(receiver.handle_packet(packet.timestamp, &event));
            }
            timestamp += 8 * 400;
        }
        let digits: String = reported.iter().filter_map(ReceivedEvent::digit).collect();
        assert_eq!(digits, "19#");
    }

    #[test]
    fn receiver_reports_a_digit_seen_only_by_its_end_packets() {
        let mut receiver = DtmfReceiver::new();
        let end = TelephoneEvent {
            event: 4,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(
            receiver.handle_packet(160, &end),
            Some(ReceivedEvent {
                event: 4,
                timestamp: 160
            })
        );
        assert_eq!(receiver.handle_packet(160, &end), None);
        // The same key again is a new event with a new timestamp.
        assert!(receiver.handle_packet(2000, &end).is_some());
        // A straggler of the first one is not reported twice.
        assert_eq!(receiver.handle_packet(160, &end), None);
    }

    #[test]
    fn random_payloads_never_panic() {
        let mut rng = crate::rtp::header::tests::XorShift(77);
        let mut buf = [0u8; 8];
        for _ in 0..10_000 {
            let len = (rng.next_u64() % 9) as usize;
            rng.fill(&mut buf[..len]);
            if let Ok(ev) = TelephoneEvent::parse(&buf[..len]) {
                assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
            }
        }
    }
}
