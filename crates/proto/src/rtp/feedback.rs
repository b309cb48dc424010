//! Delivery feedback for a sender that adapts its rate: an RTCP APP packet
//! (RFC 3550 §6.7) named `IPFB` that a receiver adds to each of its reports,
//! saying how the sender's stream has been arriving, and the two halves that
//! produce it and read it.
//!
//! RFC 3550's report block gives loss, interarrival jitter and (from LSR and
//! DLSR) the round-trip time, but not what a queue in front of a slow link
//! shows first: one-way delay growing, and the rate that gets through. RFC
//! 8888 feedback gives both, but one timestamp per packet is more than a
//! 32 kbit/s link should carry; this gives one delay sample and one rate
//! sample per report. Peers that do not know the name ignore it (§6.7).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P| subtype |   PT=APP=204  |            length=8           |
//! |                       SSRC of the reporter                    |
//! |                         name: "IPFB"                          |
//! |                    SSRC of the media source                   |
//! |  sequence number of fastest   |      flags (bit 0: fastest)   |
//! |                 arrival time of the fastest                   |
//! |                 packets received (cumulative)                 |
//! |        bytes received: RTP header and payload (cumulative)    |
//! |             arrival time of the last packet counted           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The *fastest* packet is the one with the shortest transit (arrival minus
//! RTP timestamp) since the reporter's previous report: the interval's
//! minimum, as CoDel takes it, so that jitter does not read as a queue but a
//! queue that stands does. Times are on the reporter's own clock in units of
//! 1/65536 s, wrapping at 2^32; counters wrap at 2^32. The sender matches the
//! sequence number to when it sent that packet, so the frame length (which
//! an adapting sender changes) does not enter the delay.

use std::time::{Duration, Instant};

use super::header::{SeqNo, Ssrc};

/// The APP packet's name.
pub const APP_NAME: [u8; 4] = *b"IPFB";
/// Its subtype.
pub const APP_SUBTYPE: u8 = 0;
/// Length of its data, after the name.
pub const DATA_LEN: usize = 24;

/// One `IPFB` report on one media source, as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The stream reported on.
    pub media_ssrc: Ssrc,
    /// The fastest packet since the previous report and when it arrived;
    /// `None` if none arrived.
    pub fastest: Option<(SeqNo, u32)>,
    pub packets: u32,
    pub bytes: u32,
    /// When the last packet counted arrived.
    pub last_arrival: u32,
}

impl DeliveryReport {
    pub fn write(&self) -> [u8; DATA_LEN] {
        let mut out = [0u8; DATA_LEN];
        out[0..4].copy_from_slice(&self.media_ssrc.0.to_be_bytes());
        if let Some((seq, arrival)) = self.fastest {
            out[4..6].copy_from_slice(&seq.0.to_be_bytes());
            out[6..8].copy_from_slice(&1u16.to_be_bytes());
            out[8..12].copy_from_slice(&arrival.to_be_bytes());
        }
        out[12..16].copy_from_slice(&self.packets.to_be_bytes());
        out[16..20].copy_from_slice(&self.bytes.to_be_bytes());
        out[20..24].copy_from_slice(&self.last_arrival.to_be_bytes());
        out
    }

    /// Reads the data of an `IPFB` APP packet; `None` if it is too short.
    /// Longer data is accepted, so that fields can be added at the end.
    pub fn parse(data: &[u8]) -> Option<DeliveryReport> {
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
        };
        let flags = u16::from_be_bytes(data.get(6..8)?.try_into().ok()?);
        let seq = u16::from_be_bytes(data.get(4..6)?.try_into().ok()?);
        Some(DeliveryReport {
            media_ssrc: Ssrc(word(0)?),
            fastest: (flags & 1 == 1).then_some((SeqNo(seq), word(8)?)),
            packets: word(12)?,
            bytes: word(16)?,
            last_arrival: word(20)?,
        })
    }
}

/// What the sender learns from one report, its counters unwrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// One-way delay of the fastest packet since the far end's previous
    /// report, in microseconds, plus the unknown offset between the two
    /// ends' clocks: only its changes mean anything. `None` if no packet
    /// arrived, or the one named is no longer in the send history.
    pub delay_us: Option<i64>,
    /// Packets of our stream the far end has received so far.
    pub packets: u64,
    /// Their RTP bytes, header and payload.
    pub bytes: u64,
    /// When the last of them arrived, on the far end's clock (arbitrary
    /// origin).
    pub at: Duration,
}

/// The receiving half: counts the far end's packets and finds each
/// interval's fastest.
#[derive(Debug, Clone)]
pub struct DeliveryTracker {
    epoch: Instant,
    packets: u32,
    bytes: u32,
    last_arrival: u32,
    /// (transit in µs, sequence number, arrival) of the fastest so far.
    fastest: Option<(i64, SeqNo, u32)>,
}

impl DeliveryTracker {
    pub fn new(epoch: Instant) -> Self {
        DeliveryTracker {
            epoch,
            packets: 0,
            bytes: 0,
            last_arrival: 0,
            fastest: None,
        }
    }

    /// A packet of `len` bytes (RTP header and payload) arrived at `now`;
    /// `timestamp` is its extended RTP timestamp at `clock_rate`.
    pub fn on_packet(
        &mut self,
        now: Instant,
        seq: SeqNo,
        timestamp: u64,
        clock_rate: u32,
        len: usize,
    ) {
        let since = now.saturating_duration_since(self.epoch);
        let arrival = (since.as_nanos() * 65_536 / 1_000_000_000) as u32;
        let sampled = (u128::from(timestamp) * 1_000_000 / u128::from(clock_rate.max(1))) as i64;
        let transit = since.as_micros() as i64 - sampled;
        self.packets = self.packets.wrapping_add(1);
        self.bytes = self.bytes.wrapping_add(len as u32);
        self.last_arrival = arrival;
        if self.fastest.is_none_or(|(best, ..)| transit < best) {
            self.fastest = Some((transit, seq, arrival));
        }
    }

    /// The report on `media_ssrc`; the next interval starts.
    pub fn report(&mut self, media_ssrc: Ssrc) -> DeliveryReport {
        DeliveryReport {
            media_ssrc,
            fastest: self.fastest.take().map(|(_, seq, arrival)| (seq, arrival)),
            packets: self.packets,
            bytes: self.bytes,
            last_arrival: self.last_arrival,
        }
    }
}

/// Slots of the send history: 20 s of 20 ms packets.
const HISTORY: usize = 1_024;

/// The sending half: when each recent packet left, and the far end's
/// wrapping counters unwrapped.
#[derive(Debug, Clone)]
pub struct SendHistory {
    clock_rate: u32,
    /// Ticks of audio sent since the stream started.
    ticks: u64,
    /// By sequence number modulo [`HISTORY`]: the number and the tick its
    /// frame ended at, which is when it could leave.
    sent: Vec<Option<(SeqNo, u64)>>,
    /// The last report's raw counters and their unwrapped values.
    last: Option<([u32; 3], [u64; 3])>,
}

impl SendHistory {
    pub fn new(clock_rate: u32) -> Self {
        SendHistory {
            clock_rate: clock_rate.max(1),
            ticks: 0,
            sent: vec![None; HISTORY],
            last: None,
        }
    }

    /// A media packet holding `ticks` of audio went out as `seq`.
    pub fn on_sent(&mut self, seq: SeqNo, ticks: u32) {
        self.ticks += u64::from(ticks);
        self.sent[usize::from(seq.0) % HISTORY] = Some((seq, self.ticks));
    }

    /// `ticks` of audio went by with nothing sent (DTX).
    pub fn on_skipped(&mut self, ticks: u32) {
        self.ticks += u64::from(ticks);
    }

    /// Reads a report on our stream.
    pub fn on_report(&mut self, report: &DeliveryReport) -> Delivery {
        let raw = [report.packets, report.bytes, report.last_arrival];
        let unwrapped = match self.last {
            None => raw.map(u64::from),
            Some((before, total)) => {
                std::array::from_fn(|i| total[i] + u64::from(raw[i].wrapping_sub(before[i])))
            }
        };
        self.last = Some((raw, unwrapped));
        let units_us = |units: u64| (u128::from(units) * 1_000_000 / 65_536) as i64;
        let at_us = units_us(unwrapped[2]);
        let delay_us = report.fastest.and_then(|(seq, arrival)| {
            let (sent_seq, end) = self.sent[usize::from(seq.0) % HISTORY]?;
            if sent_seq != seq {
                return None;
            }
            // The fastest arrived before or with the last one counted.
            let arrived = at_us - units_us(u64::from(report.last_arrival.wrapping_sub(arrival)));
            let sent = (u128::from(end) * 1_000_000 / u128::from(self.clock_rate)) as i64;
            Some(arrived - sent)
        });
        Delivery {
            delay_us,
            packets: unwrapped[0],
            bytes: unwrapped[1],
            at: Duration::from_micros(at_us.max(0) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips() {
        let report = DeliveryReport {
            media_ssrc: Ssrc(0xdead_beef),
            fastest: Some((SeqNo(65_535), 0x8000_0001)),
            packets: 7,
            bytes: u32::MAX,
            last_arrival: 3,
        };
        assert_eq!(DeliveryReport::parse(&report.write()), Some(report));
        let empty = DeliveryReport {
            fastest: None,
            ..report
        };
        assert_eq!(DeliveryReport::parse(&empty.write()), Some(empty));
        assert_eq!(DeliveryReport::parse(&report.write()[..20]), None);
    }

    /// A 20 ms stream through a queue that grows by 5 ms a packet: the
    /// sender sees the delay grow by the same, whatever the clocks' offset
    /// and across the counters' wrap.
    #[test]
    fn delay_and_counters_reach_the_sender() {
        let t0 = Instant::now();
        let mut receiver = DeliveryTracker::new(t0 + Duration::from_secs(3));
        receiver.packets = u32::MAX - 60;
        let mut sender = SendHistory::new(48_000);
        let mut delays = Vec::new();
        let mut counts = Vec::new();
        let mut seq = SeqNo(65_500);
        for n in 0..200u64 {
            sender.on_sent(seq, 960);
            // Sent when its frame ends; 30 ms of path plus the queue.
            let arrive = t0 + Duration::from_millis(20 * (n + 1) + 30 + 5 * n + 3_000);
            receiver.on_packet(arrive, seq, 1_000 + 960 * n, 48_000, 100);
            seq = seq.next();
            if n % 50 == 49 {
                let report = receiver.report(Ssrc(1));
                let delivery = sender.on_report(&DeliveryReport::parse(&report.write()).unwrap());
                delays.push(delivery.delay_us.unwrap());
                counts.push((delivery.packets, delivery.bytes, delivery.at));
            }
        }
        for pair in counts.windows(2) {
            assert_eq!(pair[1].0 - pair[0].0, 50, "{counts:?}");
            assert_eq!(pair[1].1 - pair[0].1, 5_000, "{counts:?}");
            let took = pair[1].2 - pair[0].2;
            assert!(took.abs_diff(Duration::from_millis(1_250)) < Duration::from_micros(100));
        }
        // Each interval's fastest is its first packet: 50 packets apart.
        for pair in delays.windows(2) {
            let step = pair[1] - pair[0];
            assert!((249_000..=251_000).contains(&step), "{delays:?}");
        }
    }
}
