//! Extended sequence numbers and RTP source validation (RFC 3550 §6.4.1 and
//! Appendix A.1).
//!
//! [`SourceSeq`] is the RFC's `source` structure and `update_seq()`, kept
//! close to the C so the two can be read side by side. A source is valid
//! after [`MIN_SEQUENTIAL`] packets in sequence; after that, jumps of up to
//! [`MAX_DROPOUT`] ahead are losses, up to [`MAX_MISORDER`] behind are late
//! packets, and anything else is ignored unless the next packet follows it,
//! in which case the sender restarted and the source is re-initialised.

use super::header::SeqNo;

/// Packets in sequence needed before a source is valid.
pub const MIN_SEQUENTIAL: u16 = 2;
/// The largest forward jump still taken as packet loss.
pub const MAX_DROPOUT: u16 = 3000;
/// The largest backward jump still taken as a late (misordered) packet.
pub const MAX_MISORDER: u16 = 100;

const RTP_SEQ_MOD: u32 = 1 << 16;

/// A sequence number extended with the count of 16-bit wrap-arounds
/// ("cycles"): strictly increasing across the life of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ExtSeq(pub u64);

impl ExtSeq {
    /// The 16-bit sequence number carried on the wire.
    pub fn seq(self) -> SeqNo {
        SeqNo(self.0 as u16)
    }

    /// The low 32 bits, as an RTCP report block's "extended highest sequence
    /// number received" (RFC 3550 §6.4.1).
    pub fn to_u32(self) -> u32 {
        self.0 as u32
    }
}

/// What [`SourceSeq::update`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// A packet of a valid source: in order, after a loss, or late.
    Valid(ExtSeq),
    /// The source is still on probation (or restarted it): not yet valid.
    Probation,
    /// A jump too large to be loss or misorder; the packet is dropped, but
    /// if the next one follows it, the source restarts there.
    BadJump,
    /// The packet followed a [`SeqOutcome::BadJump`]: the sender restarted
    /// its sequence (RFC 3550 A.1), and statistics start afresh here.
    Restarted(ExtSeq),
}

impl SeqOutcome {
    /// The extended sequence number, for packets the caller should use.
    pub fn ext_seq(self) -> Option<ExtSeq> {
        match self {
            SeqOutcome::Valid(ext) | SeqOutcome::Restarted(ext) => Some(ext),
            SeqOutcome::Probation | SeqOutcome::BadJump => None,
        }
    }
}

/// Per-source sequence state of RFC 3550 Appendix A.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSeq {
    /// Highest sequence number seen.
    max_seq: u16,
    /// Shifted count of sequence number cycles.
    cycles: u64,
    /// Base sequence number (extended, so one before the first is representable).
    base_seq: u32,
    /// Last "bad" sequence number + 1; `RTP_SEQ_MOD + 1` when there is none.
    bad_seq: u32,
    /// Sequential packets still needed until the source is valid.
    probation: u16,
    /// Packets received.
    received: u64,
    /// Packet expected at the last report interval.
    expected_prior: u64,
    /// Packet received at the last report interval.
    received_prior: u64,
}

impl SourceSeq {
    /// A new source whose first packet carried `seq`: it is on probation
    /// (RFC 3550 A.1: `init_seq(s, seq); s->max_seq = seq - 1;
    /// s->probation = MIN_SEQUENTIAL;`). Feed that first packet to
    /// [`update`](Self::update) too.
    pub fn new(seq: SeqNo) -> Self {
        let mut source = SourceSeq {
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: 0,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
        };
        source.init(seq.0);
        source.max_seq = seq.0.wrapping_sub(1);
        source.probation = MIN_SEQUENTIAL;
        source
    }

    /// RFC 3550 A.1 `init_seq()`.
    fn init(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// RFC 3550 A.1 `update_seq()`, for each arriving packet.
    pub fn update(&mut self, seq: SeqNo) -> SeqOutcome {
        let seq = seq.0;
        let udelta = seq.wrapping_sub(self.max_seq);

        if self.probation > 0 {
            // The C compares `seq == s->max_seq + 1` in int arithmetic, which
            // fails at the wrap from 65535 to 0; wrapping is what is meant.
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init(seq);
                    self.received += 1;
                    return SeqOutcome::Valid(self.ext_max());
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqOutcome::Probation;
        }

        let mut restarted = false;
        if udelta < MAX_DROPOUT {
            // In order, with permissible gap.
            if seq < self.max_seq {
                // Sequence number wrapped: count another 64K cycle.
                self.cycles += u64::from(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // The sequence number made a very large jump.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: assume the other side restarted
                // without telling us, so just re-sync (i.e., pretend this was
                // the first packet).
                self.init(seq);
                restarted = true;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqOutcome::BadJump;
            }
        } else {
            // Duplicate or reordered packet.
        }
        self.received += 1;
        let ext = self.extend(SeqNo(seq));
        if restarted {
            SeqOutcome::Restarted(ext)
        } else {
            SeqOutcome::Valid(ext)
        }
    }

    /// Extends `seq` to the value nearest the highest one seen, so a late
    /// packet from before a wrap gets the previous cycle.
    pub fn extend(&self, seq: SeqNo) -> ExtSeq {
        let delta = i64::from(seq.0.wrapping_sub(self.max_seq) as i16);
        ExtSeq(self.ext_max().0.saturating_add_signed(delta))
    }

    /// Whether the source has left probation.
    pub fn is_valid(&self) -> bool {
        self.probation == 0
    }

    /// The extended highest sequence number received.
    pub fn ext_max(&self) -> ExtSeq {
        ExtSeq(self.cycles + u64::from(self.max_seq))
    }

    /// The base (first) sequence number since the last (re)start.
    pub fn base_seq(&self) -> u32 {
        self.base_seq
    }

    /// Packets received since the last (re)start, late ones and duplicates
    /// included.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets expected since the last (re)start (RFC 3550 A.3:
    /// `extended_max - base_seq + 1`).
    pub fn expected(&self) -> u64 {
        (self.ext_max().0 + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Cumulative packets lost: expected minus received, which duplicates
    /// can make negative (RFC 3550 §6.4.1).
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Closes a report interval and returns its `(expected, received)`
    /// counts (RFC 3550 A.3 `expected_interval`, `received_interval`).
    pub fn take_interval(&mut self) -> (u64, u64) {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        (expected_interval, received_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source fed `first`, `first + 1`: valid from the second packet.
    fn valid_source(first: u16) -> SourceSeq {
        let mut s = SourceSeq::new(SeqNo(first));
        assert_eq!(s.update(SeqNo(first)), SeqOutcome::Probation);
        assert!(!s.is_valid());
        let second = first.wrapping_add(1);
        assert_eq!(
            s.update(SeqNo(second)),
            SeqOutcome::Valid(ExtSeq(u64::from(second)))
        );
        assert!(s.is_valid());
        s
    }

    #[test]
    fn probation_needs_two_in_sequence() {
        let mut s = SourceSeq::new(SeqNo(100));
        assert_eq!(s.update(SeqNo(100)), SeqOutcome::Probation);
        // Out of sequence: probation starts over from this packet.
        assert_eq!(s.update(SeqNo(500)), SeqOutcome::Probation);
        assert_eq!(s.update(SeqNo(501)), SeqOutcome::Valid(ExtSeq(501)));
        // init_seq() on validation: the first packet counted is 501.
        assert_eq!(s.base_seq(), 501);
        assert_eq!(s.received(), 1);
        assert_eq!(s.expected(), 1);
    }

    #[test]
    fn probation_across_the_wrap() {
        let s = valid_source(65535);
        assert_eq!(s.ext_max(), ExtSeq(0));
    }

    #[test]
    fn wrap_around_counts_cycles() {
        let mut s = valid_source(65533);
        assert_eq!(s.update(SeqNo(65535)), SeqOutcome::Valid(ExtSeq(65535)));
        assert_eq!(s.update(SeqNo(0)), SeqOutcome::Valid(ExtSeq(65536)));
        assert_eq!(s.update(SeqNo(1)), SeqOutcome::Valid(ExtSeq(65537)));
        // A late packet from before the wrap keeps its old cycle.
        assert_eq!(s.update(SeqNo(65532)), SeqOutcome::Valid(ExtSeq(65532)));
        assert_eq!(s.ext_max(), ExtSeq(65537));
        assert_eq!(s.expected(), 65537 - 65534 + 1);
        assert_eq!(s.received(), 5);
        assert_eq!(s.lost(), -1);
    }

    #[test]
    fn many_cycles() {
        let mut s = valid_source(0);
        let mut seq = SeqNo(1);
        for _ in 0..3 * 65536 {
            seq = seq.next();
            assert!(matches!(s.update(seq), SeqOutcome::Valid(_)));
        }
        assert_eq!(s.ext_max(), ExtSeq(3 * 65536 + 1));
        assert_eq!(s.ext_max().seq(), SeqNo(1));
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn gaps_below_max_dropout_are_loss() {
        let mut s = valid_source(1000);
        let next = 1001 + MAX_DROPOUT - 1;
        assert_eq!(
            s.update(SeqNo(next)),
            SeqOutcome::Valid(ExtSeq(u64::from(next)))
        );
        // Expected 1001..=4000, received 1001 and 4000.
        assert_eq!(s.lost(), i64::from(MAX_DROPOUT) - 2);
    }

    #[test]
    fn big_jump_is_dropped_unless_followed() {
        let mut s = valid_source(1000);
        // udelta = MAX_DROPOUT: too far ahead.
        assert_eq!(s.update(SeqNo(1001 + MAX_DROPOUT)), SeqOutcome::BadJump);
        // The stream goes on where it was: the jump is forgotten.
        assert_eq!(s.update(SeqNo(1002)), SeqOutcome::Valid(ExtSeq(1002)));
        // A jump followed by its successor: the sender restarted.
        assert_eq!(s.update(SeqNo(40000)), SeqOutcome::BadJump);
        assert_eq!(s.update(SeqNo(40001)), SeqOutcome::Restarted(ExtSeq(40001)));
        assert_eq!(s.base_seq(), 40001);
        assert_eq!(s.received(), 1);
        assert_eq!(s.update(SeqNo(40002)), SeqOutcome::Valid(ExtSeq(40002)));
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn misorder_window() {
        let mut s = valid_source(5000);
        // Fewer than MAX_MISORDER behind: a late packet, counted.
        let late = 5001 - (MAX_MISORDER - 1);
        assert_eq!(
            s.update(SeqNo(late)),
            SeqOutcome::Valid(ExtSeq(u64::from(late)))
        );
        // MAX_MISORDER behind is a bad jump (udelta == RTP_SEQ_MOD - MAX_MISORDER).
        assert_eq!(s.update(SeqNo(5001 - MAX_MISORDER)), SeqOutcome::BadJump);
        assert_eq!(s.ext_max(), ExtSeq(5001));
    }

    #[test]
    fn restart_across_the_wrap() {
        let mut s = valid_source(30000);
        assert_eq!(s.update(SeqNo(65535)), SeqOutcome::BadJump);
        // bad_seq is (65535 + 1) & 0xFFFF = 0.
        assert_eq!(s.update(SeqNo(0)), SeqOutcome::Restarted(ExtSeq(0)));
    }

    #[test]
    fn report_intervals() {
        let mut s = valid_source(0);
        for seq in [2u16, 3, 5, 6] {
            s.update(SeqNo(seq));
        }
        // Expected 0..=6 from base 1: 6; received 1, 2, 3, 5, 6: 5.
        assert_eq!(s.take_interval(), (6, 5));
        for seq in 7u16..=16 {
            if seq % 5 != 0 {
                s.update(SeqNo(seq));
            }
        }
        assert_eq!(s.take_interval(), (10, 8));
        assert_eq!(s.take_interval(), (0, 0));
    }
}
