//! Reception statistics for RTCP reports: packets expected and lost (RFC 3550
//! Appendix A.3), interarrival jitter (A.8), round-trip time from LSR and
//! DLSR (§6.4.1), and the sender's packet and octet counts (§6.4.1).
//!
//! Times come in as arguments: arrival times in RTP clock units (see
//! [`RtpClock`]) and wall-clock times as [`NtpTime`], built by the caller
//! from a `SystemTime`.

use std::time::{Duration, Instant};

use super::header::{SeqNo, Ssrc};
use super::rtcp::{NtpTime, ReportBlock, SenderInfo};
use super::seq::{SeqOutcome, SourceSeq};

/// Maps an `Instant` onto an RTP clock (RFC 3550 §5.1 timestamp units) from a
/// chosen epoch, for the arrival times jitter needs (A.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpClock {
    epoch: Instant,
    clock_rate: u32,
}

impl RtpClock {
    /// A clock that reads 0 at `epoch` and ticks `clock_rate` times a second
    /// (the payload format's RTP clock, e.g. 48000 for Opus, RFC 7587).
    pub fn new(epoch: Instant, clock_rate: u32) -> Self {
        RtpClock { epoch, clock_rate }
    }

    /// The clock's reading at `now`, wrapping at 2^32; instants before the
    /// epoch read 0.
    pub fn ticks(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.epoch).as_nanos();
        (elapsed * u128::from(self.clock_rate) / 1_000_000_000) as u32
    }

    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }
}

/// Interarrival jitter estimator (RFC 3550 §6.4.1, A.8), in the integer form
/// of A.8: the estimate is kept scaled by 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Jitter {
    /// Relative transit time of the previous packet.
    transit: Option<u32>,
    /// The estimate times 16.
    scaled: u32,
}

impl Jitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Updates the estimate with a packet's RTP timestamp and its arrival
    /// time in the same clock's units. The first packet only sets the
    /// transit reference.
    pub fn update(&mut self, rtp_timestamp: u32, arrival: u32) {
        let transit = arrival.wrapping_sub(rtp_timestamp);
        if let Some(previous) = self.transit {
            // Transit times wrap with both clocks; their difference is small.
            let d = (transit.wrapping_sub(previous) as i32).unsigned_abs();
            // A.8: jitter += d - ((jitter + 8) >> 4), i.e. J += (|D| - J) / 16.
            let scaled =
                u64::from(self.scaled) + u64::from(d) - ((u64::from(self.scaled) + 8) >> 4);
            self.scaled = scaled.min(u64::from(u32::MAX)) as u32;
        }
        self.transit = Some(transit);
    }

    /// The jitter in timestamp units, as an RTCP report block carries it.
    pub fn jitter(&self) -> u32 {
        self.scaled >> 4
    }
}

/// Everything a receiver keeps about one source to report on it: sequence
/// validation (A.1), loss (A.3), jitter (A.8) and the last SR (§6.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverStats {
    ssrc: Ssrc,
    seq: SourceSeq,
    jitter: Jitter,
    last_sr: Option<LastSr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LastSr {
    /// Middle 32 bits of the SR's NTP timestamp.
    lsr: u32,
    /// Our wall-clock time when it arrived.
    received_at: NtpTime,
}

impl ReceiverStats {
    /// A new source `ssrc` whose first packet carried `first_seq`; feed that
    /// packet to [`on_packet`](Self::on_packet) as well.
    pub fn new(ssrc: Ssrc, first_seq: SeqNo) -> Self {
        ReceiverStats {
            ssrc,
            seq: SourceSeq::new(first_seq),
            jitter: Jitter::new(),
            last_sr: None,
        }
    }

    /// Accounts for an RTP packet from this source: `arrival` is its arrival
    /// time in RTP clock units. Jitter is updated only for packets the
    /// sequence validation accepts.
    pub fn on_packet(&mut self, seq: SeqNo, rtp_timestamp: u32, arrival: u32) -> SeqOutcome {
        let outcome = self.seq.update(seq);
        if outcome.ext_seq().is_some() {
            self.jitter.update(rtp_timestamp, arrival);
        }
        outcome
    }

    /// Remembers an SR from this source, received at wall-clock `now`, for
    /// the LSR and DLSR of the next report block.
    pub fn on_sender_report(&mut self, info: &SenderInfo, now: NtpTime) {
        self.last_sr = Some(LastSr {
            lsr: info.ntp.middle32(),
            received_at: now,
        });
    }

    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// Sequence state: extended highest sequence number, expected, lost.
    pub fn seq(&self) -> &SourceSeq {
        &self.seq
    }

    /// Current interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter.jitter()
    }

    /// Builds the report block for this source at wall-clock `now`, and
    /// starts the next interval for the fraction lost (A.3).
    pub fn report_block(&mut self, now: NtpTime) -> ReportBlock {
        let (expected_interval, received_interval) = self.seq.take_interval();
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some(sr) => (
                sr.lsr,
                now.middle32().wrapping_sub(sr.received_at.middle32()),
            ),
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.seq.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            ext_highest_seq: self.seq.ext_max().to_u32(),
            jitter: self.jitter(),
            lsr,
            dlsr,
        }
    }
}

/// Round-trip time from a report block about our stream, received at
/// wall-clock `now` (RFC 3550 §6.4.1: `A - LSR - DLSR`). `None` when the
/// peer has had no SR from us yet (LSR 0), or when the result would be
/// negative (clocks or the peer's DLSR are off).
pub fn round_trip_time(block: &ReportBlock, now: NtpTime) -> Option<Duration> {
    if block.lsr == 0 {
        return None;
    }
    let rtt = now
        .middle32()
        .wrapping_sub(block.lsr)
        .wrapping_sub(block.dlsr);
    if (rtt as i32) < 0 {
        return None;
    }
    Some(Duration::from_nanos(
        u64::from(rtt) * 1_000_000_000 / 65_536,
    ))
}

/// The sender's counters for its SRs (RFC 3550 §6.4.1): packets and payload
/// octets sent since the stream started, both wrapping at 2^32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderStats {
    packets: u32,
    octets: u32,
}

impl SenderStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one RTP packet with `payload_len` payload octets (header and
    /// padding excluded, as the RFC says).
    pub fn on_sent(&mut self, payload_len: usize) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
    }

    pub fn packets(&self) -> u32 {
        self.packets
    }

    pub fn octets(&self) -> u32 {
        self.octets
    }

    /// The sender info of an SR sent at wall-clock `ntp`, which is
    /// `rtp_timestamp` in the media's RTP clock.
    pub fn sender_info(&self, ntp: NtpTime, rtp_timestamp: u32) -> SenderInfo {
        SenderInfo {
            ntp,
            rtp_timestamp,
            packet_count: self.packets,
            octet_count: self.octets,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::rtp::seq::ExtSeq;

    #[test]
    fn rtt_example_of_rfc_3550_6_4_1() {
        // A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s),
        // DLSR = 0x0005:4000 (5.250 s): RTT = 0x0006:2000 (6.125 s).
        let now = NtpTime(0xB710_8000 << 16);
        let block = ReportBlock {
            lsr: 0xB705_2000,
            dlsr: 0x0005_4000,
            ..ReportBlock::default()
        };
        assert_eq!(
            round_trip_time(&block, now),
            Some(Duration::from_millis(6125))
        );
        assert_eq!(round_trip_time(&ReportBlock::default(), now), None);
        let early = NtpTime(0xB70A_0000 << 16);
        assert_eq!(round_trip_time(&block, early), None);
    }

    #[test]
    fn jitter_is_zero_for_a_steady_stream() {
        let mut j = Jitter::new();
        for n in 0..100u32 {
            // 20 ms packets at 8 kHz, a constant 37 ticks of transit.
            j.update(1000 + n * 160, 1037 + n * 160);
        }
        assert_eq!(j.jitter(), 0);
    }

    #[test]
    fn jitter_follows_the_a8_estimator() {
        let mut j = Jitter::new();
        let mut reference = 0.0f64;
        let mut previous_transit: Option<f64> = None;
        // Arrival alternates early and late by 40 ticks; the RTP timestamp
        // wraps on the way.
        let mut ts = u32::MAX - 800;
        for n in 0..200u32 {
            let wobble = if n % 2 == 0 { 0 } else { 40 };
            let arrival = n * 160 + wobble + 5;
            j.update(ts, arrival);
            let transit = f64::from(arrival) - f64::from(n * 160);
            if let Some(previous) = previous_transit {
                let d = (transit - previous).abs();
                reference += (d - reference) / 16.0;
            }
            previous_transit = Some(transit);
            ts = ts.wrapping_add(160);
        }
        // The float estimate converges to 40; the integer form is within a tick.
        assert!((reference - 40.0).abs() < 0.01);
        assert!(j.jitter().abs_diff(40) <= 1, "jitter {}", j.jitter());
    }

    #[test]
    fn jitter_of_a_single_step() {
        let mut j = Jitter::new();
        j.update(0, 100);
        j.update(160, 260 + 32);
        // D = 32: jitter = 0 + 32/16 = 2.
        assert_eq!(j.jitter(), 2);
    }

    #[test]
    fn report_block_from_a_lossy_stream() {
        let mut stats = ReceiverStats::new(Ssrc(0xFEED), SeqNo(65530));
        let mut arrival = 0u32;
        for seq in 65530u16..=65535 {
            stats.on_packet(SeqNo(seq), u32::from(seq) * 160, arrival);
            arrival += 160;
        }
        // Through the wrap, losing 2 and 4.
        for seq in [0u16, 1, 3, 5, 6, 7] {
            stats.on_packet(SeqNo(seq), (65536 + u32::from(seq)) * 160, arrival);
            arrival += 160;
        }
        // Valid from 65531: expected 65531..=65543 (13), received 11.
        assert_eq!(stats.seq().ext_max(), ExtSeq(65536 + 7));
        assert_eq!(stats.seq().expected(), 13);
        assert_eq!(stats.seq().received(), 11);
        assert_eq!(stats.seq().lost(), 2);

        let sr_sent = NtpTime(0x0000_1234_5678_0000);
        let info = SenderInfo {
            ntp: sr_sent,
            ..SenderInfo::default()
        };
        let received_at = NtpTime::from_system_time(UNIX_EPOCH + Duration::from_secs(1_000));
        stats.on_sender_report(&info, received_at);
        let now =
            NtpTime::from_system_time(SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_500));
        let block = stats.report_block(now);
        assert_eq!(block.ssrc, Ssrc(0xFEED));
        assert_eq!(block.fraction_lost, 39); // (2 << 8) / 13
        assert_eq!(block.cumulative_lost, 2);
        assert_eq!(block.ext_highest_seq, 0x0001_0007);
        assert_eq!(block.lsr, 0x1234_5678);
        assert_eq!(block.dlsr, 0x8000); // 0.5 s
        // The next interval starts empty.
        assert_eq!(stats.report_block(now).fraction_lost, 0);
        for seq in 8u16..=11 {
            if seq != 9 {
                stats.on_packet(SeqNo(seq), 0, 0);
            }
        }
        assert_eq!(stats.report_block(now).fraction_lost, 64); // (1 << 8) / 4
    }

    #[test]
    fn duplicates_do_not_make_fraction_negative() {
        let mut stats = ReceiverStats::new(Ssrc(1), SeqNo(10));
        for seq in [10u16, 11, 12, 12, 12, 13] {
            stats.on_packet(SeqNo(seq), 0, 0);
        }
        let block = stats.report_block(NtpTime(0));
        assert_eq!(block.fraction_lost, 0);
        assert_eq!(block.cumulative_lost, -2);
        assert_eq!((block.lsr, block.dlsr), (0, 0));
    }

    #[test]
    fn rtp_clock_ticks() {
        let epoch = Instant::now();
        let clock = RtpClock::new(epoch, 48_000);
        assert_eq!(clock.ticks(epoch), 0);
        assert_eq!(clock.ticks(epoch + Duration::from_millis(20)), 960);
        assert_eq!(
            clock.ticks(epoch + Duration::from_secs(100_000)),
            4_800_000_000u64 as u32
        );
    }

    #[test]
    fn sender_stats_fill_sender_info() {
        let mut s = SenderStats::new();
        for _ in 0..3 {
            s.on_sent(160);
        }
        let info = s.sender_info(NtpTime(42), 480);
        assert_eq!(
            (info.packet_count, info.octet_count, info.rtp_timestamp),
            (3, 480, 480)
        );
    }
}
