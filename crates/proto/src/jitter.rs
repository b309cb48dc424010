//! Adaptive jitter buffer for one RTP audio stream, in the spirit of WebRTC
//! NetEQ: it holds encoded payloads, learns the arrival jitter (RFC 3550 §6.4.1
//! relative transit), and tells the caller's audio clock what to play next and
//! whether to time-stretch it to move the delay toward the target.
//!
//! # Model
//!
//! - *Transit* of a packet: its arrival in clock ticks minus its RTP timestamp.
//!   Its *relative delay* is the transit minus the smallest transit over the
//!   last [`JitterConfig::window`]. The *target delay* is the
//!   [`JitterConfig::percentile`] of relative delay over that window, plus one
//!   frame, clamped to `[min_delay, max_delay]`: about one frame on a clean path.
//! - *Level*: how long the audio at the playout position spends between its
//!   earliest possible arrival and the end of its playout, i.e. the playout
//!   delay plus one frame; it is filtered over about ten frames. On a clean path
//!   the level matches the audio buffered at a pop (content span).
//! - The caller pulls one frame at a time with [`JitterBuffer::pop`] and then
//!   reports with [`JitterBuffer::played`] how many ticks it actually played,
//!   which differs from the frame length when it time-stretched.
//! - Decisions ([`Stretch`]): the band is `[target, target + b]`, `b` the
//!   arrivals' spread (the percentile of relative delay) kept between 2.5 ms
//!   and 20 ms (an eighth of a frame and a frame for long frames). Below it,
//!   expand by about what reaches mid-band ([`JitterBuffer::deficit`]); above
//!   it, accelerate by at most the excess over the target
//!   ([`JitterBuffer::excess`]), and where the arrivals spread only once the
//!   next packet is here; either goes on until the level is back in the
//!   middle of the band. The
//!   target is thus a floor, as a percentile only is when the playout delay
//!   is at least that (NetEQ's band is `[3/4 target, target]`, below it).
//!   Clock drift of a few per mille is absorbed one pitch period at a time.
//! - Whole frames are dropped only on big jumps: when more than `max_delay` of
//!   audio is buffered (after an outage, say), the oldest packets are dropped so
//!   that the target remains, and when `max_packets` are held.
//! - A change of transit by more than `max(2 max_delay, 1 s)` between two
//!   packets means the sender restarted its timestamp base: the buffer flushes
//!   and starts afresh. A new talkspurt after DTX keeps its transit and is not a
//!   jump; its first packet is played once it has been buffered for the target.
//! - A lost packet's frame may come again, as a redundant copy (RFC 2198) in a
//!   later packet ([`JitterBuffer::insert_recovered`]): it fills the gap if its
//!   time has not been played, without teaching the target any jitter. As for
//!   FEC, a frame more is held for 10 s after a loss so that the next copy
//!   comes in time.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Settings of a [`JitterBuffer`].
#[derive(Debug, Clone, PartialEq)]
pub struct JitterConfig {
    /// The RTP clock rate (48 000 for Opus, RFC 7587; 8 000 for G.711).
    pub clock_rate: u32,
    /// The target delay never goes below this.
    pub min_delay: Duration,
    /// The target delay never goes above this; buffered audio beyond it is dropped.
    pub max_delay: Duration,
    /// Packets held at most; see [`InsertResult::Full`].
    pub max_packets: usize,
    /// Largest payload accepted, in bytes; see [`InsertResult::Oversized`].
    pub max_payload: usize,
    /// How far back the arrival statistics look.
    pub window: Duration,
    /// The share of packets that should arrive in time, 0 to 1.
    pub percentile: f64,
    /// The decoder can rebuild a lost frame from the packet after it (Opus
    /// in-band FEC): for 10 s after each loss, hold one frame more, so that
    /// the next packet is usually there when a gap is found. (Held from the
    /// start, it would cost a clean path 20 ms, or a stretch to take them
    /// back that PESQ hears.)
    pub fec_lookahead: bool,
    /// Added to the target: what a packet that arrives just in time may
    /// still be late by, from the caller's own timing (the moments it pops
    /// move by a millisecond or two). Without it, a target met exactly
    /// leaves the next packet arriving at the very moment it is needed.
    pub margin: Duration,
}

impl JitterConfig {
    /// NetEQ's choices for a stream with this RTP clock: the 97th percentile
    /// over 2 s, at most 400 ms of delay (ITU-T G.114's "unacceptable"),
    /// 128 packets and 1500-byte payloads.
    pub fn new(clock_rate: u32) -> Self {
        JitterConfig {
            clock_rate,
            min_delay: Duration::ZERO,
            max_delay: Duration::from_millis(400),
            max_packets: 128,
            max_payload: 1500,
            window: Duration::from_secs(2),
            percentile: 0.97,
            fec_lookahead: false,
            margin: Duration::from_millis(2),
        }
    }
}

/// What [`JitterBuffer::insert`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertResult {
    /// Buffered for playout.
    Inserted,
    /// The same sequence number or timestamp was already received; dropped.
    Duplicate,
    /// Its time has already been played (or given up as lost); dropped.
    TooLate,
    /// The buffer held `max_packets`: the packet with the earliest timestamp,
    /// of those buffered and this one, was dropped to make room. If that is
    /// this packet, it was not buffered; otherwise it was.
    Full,
    /// The payload is larger than `max_payload`; dropped.
    Oversized,
}

/// How the caller should play the frame it was given, to move the buffer level
/// toward the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stretch {
    /// Play it as it is.
    Normal,
    /// The level is well above the target: play it shorter, by up to a pitch period.
    Accelerate,
    /// The level is below the target or the next packet is late: play it
    /// longer, by up to a pitch period.
    Expand,
}

/// What to play next, from [`JitterBuffer::pop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Decode and play this packet.
    Packet {
        /// Its RTP timestamp (extended).
        timestamp: u64,
        payload: &'a [u8],
        stretch: Stretch,
    },
    /// The packet for this position is missing and waiting longer would exceed
    /// the target: conceal one frame (decoder PLC), or decode the forward error
    /// correction carried in `next`, the payload of the packet right after
    /// (Opus in-band FEC, RFC 7587 §3.1). `next` stays buffered and comes
    /// again as a [`Playout::Packet`].
    Lost {
        timestamp: u64,
        next: Option<&'a [u8]>,
        stretch: Stretch,
    },
    /// No audio for this position: nothing buffered yet, DTX silence, the far
    /// end stopped, or the next packet is late but may still come. Play
    /// concealment right after speech, comfort noise or silence after that;
    /// nothing was consumed.
    Empty,
}

/// Counters and levels of a [`JitterBuffer`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JitterStats {
    /// The target delay, as of the last pop.
    pub target_delay: Duration,
    /// The filtered level: playout delay plus one frame.
    pub level: Duration,
    /// The highest filtered level so far.
    pub max_level: Duration,
    /// Audio buffered now, from the earliest packet to the end of the latest.
    pub buffered: Duration,
    /// The most audio ever buffered.
    pub max_buffered: Duration,
    /// Packets buffered now.
    pub packets: usize,
    /// Packets accepted for playout.
    pub inserted: u64,
    /// Packets that came after their time was played.
    pub late: u64,
    /// Frames taken in from a later packet's redundant copy
    /// ([`JitterBuffer::insert_recovered`]) to fill a gap.
    pub recovered: u64,
    pub duplicates: u64,
    pub oversized: u64,
    /// Packets of the stream never played (missing from the sequence numbers
    /// between played packets): lost on the way, late, or dropped.
    pub lost: u64,
    /// [`Playout::Lost`] frames given out.
    pub concealed: u64,
    /// Times playout ran dry ([`Playout::Empty`] with nothing buffered): a
    /// late packet, a loss, DTX, or the far end stopped.
    pub underruns: u64,
    /// [`Playout::Empty`] frames given out while waiting for a late packet with later ones buffered.
    pub waits: u64,
    pub expanded: u64,
    pub accelerated: u64,
    /// Packets dropped by `max_packets`, catching up after a big jump, or a resync.
    pub dropped: u64,
    /// Restarts after a timestamp jump.
    pub resyncs: u64,
}

/// An adaptive jitter buffer for one RTP audio stream. See the module docs.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    min_delay_ticks: u64,
    max_delay_ticks: u64,
    margin_ticks: u64,
    window_ticks: u64,
    jump_ticks: i128,
    max_frame_ticks: u64,
    /// The instant that tick 0 of the arrival clock stands for.
    epoch: Option<Instant>,
    /// Buffered packets by timestamp.
    packets: BTreeMap<u64, Slot>,
    /// Payload buffers for reuse, so steady state does not allocate.
    spare: Vec<Vec<u8>>,
    /// The payload handed out by the last pop.
    current: Vec<u8>,
    arrivals: VecDeque<Arrival>,
    arrival_count: u64,
    /// (arrival index, transit) of the window's arrivals that no later one
    /// undercuts: a sliding minimum, its front the smallest transit.
    fastest: VecDeque<(u64, i128)>,
    scratch: Vec<u64>,
    min_transit: i128,
    last_transit: Option<i128>,
    target: u64,
    target_dirty: bool,
    /// The percentile of relative delay behind the target, in ticks.
    spread: u64,
    frame: u64,
    frame_learned: bool,
    frame_candidate: Option<u64>,
    last_arrival: Option<(u64, u64)>,
    seq_max: Option<u64>,
    /// Bit `i` set: sequence number `seq_max - i` was received.
    seq_seen: u128,
    /// Until when (arrival clock) the buffer holds the frame more for FEC:
    /// [`LOSS_MEMORY`] after playout last passed over a packet that never
    /// came (lost or too late).
    losing_until: u64,
    /// Arrival tick of the latest packet.
    last_at: u64,
    last_played_seq: Option<u64>,
    state: State,
    last_pop: LastPop,
    played_ticks: Option<u64>,
    /// Ticks of concealment played with nothing buffered since the last content.
    starved: u64,
    level: Option<f64>,
    /// The stretch under way, kept until the level reaches mid-band.
    stretching: Stretch,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        let mut config = config;
        config.clock_rate = config.clock_rate.max(1);
        config.max_packets = config.max_packets.max(2);
        if !(0.0..=1.0).contains(&config.percentile) {
            config.percentile = 0.97;
        }
        let rate = config.clock_rate;
        let min_delay_ticks = duration_ticks(config.min_delay, rate);
        let max_delay_ticks = duration_ticks(config.max_delay, rate).max(min_delay_ticks);
        let frame = (u64::from(rate) / 50).max(1);
        JitterBuffer {
            min_delay_ticks,
            max_delay_ticks,
            margin_ticks: duration_ticks(config.margin, rate),
            window_ticks: duration_ticks(config.window, rate),
            jump_ticks: i128::from((2 * max_delay_ticks).max(u64::from(rate))),
            max_frame_ticks: u64::from(rate) * 120 / 1000,
            epoch: None,
            packets: BTreeMap::new(),
            spare: Vec::new(),
            current: Vec::new(),
            arrivals: VecDeque::new(),
            arrival_count: 0,
            fastest: VecDeque::new(),
            scratch: Vec::new(),
            min_transit: 0,
            last_transit: None,
            target: frame.clamp(min_delay_ticks, max_delay_ticks),
            target_dirty: false,
            spread: 0,
            frame,
            frame_learned: false,
            frame_candidate: None,
            last_arrival: None,
            seq_max: None,
            seq_seen: 0,
            losing_until: 0,
            last_at: 0,
            last_played_seq: None,
            state: State::Idle { floor: None },
            last_pop: LastPop::Nothing,
            played_ticks: None,
            starved: 0,
            level: None,
            stretching: Stretch::Normal,
            stats: JitterStats::default(),
            config,
        }
    }

    /// Buffers one packet that arrived at `now`. `ext_seq` is the extended
    /// sequence number and `timestamp` the extended RTP timestamp, in clock
    /// ticks; unwrapping both is the caller's job.
    pub fn insert(
        &mut self,
        now: Instant,
        ext_seq: u64,
        timestamp: u64,
        payload: &[u8],
    ) -> InsertResult {
        if self.oversized(payload) {
            return InsertResult::Oversized;
        }
        let at = self.arrival_ticks(now);
        let transit = i128::from(at) - i128::from(timestamp);
        if self
            .last_transit
            .is_some_and(|last| (transit - last).abs() > self.jump_ticks)
        {
            self.resync();
        }
        if self.seen(ext_seq) || self.packets.contains_key(&timestamp) {
            self.stats.duplicates += 1;
            return InsertResult::Duplicate;
        }
        self.last_at = at;
        self.mark_seen(ext_seq);
        self.last_transit = Some(transit);
        self.record_arrival(at, transit);
        self.learn_frame(ext_seq, timestamp);
        if self.floor().is_some_and(|floor| timestamp < floor) {
            self.stats.late += 1;
            return InsertResult::TooLate;
        }

        let mut result = InsertResult::Inserted;
        if self.packets.len() >= self.config.max_packets {
            result = InsertResult::Full;
            self.stats.dropped += 1;
            let (&first, _) = self
                .packets
                .first_key_value()
                .expect("a full buffer holds packets");
            if timestamp < first {
                return result;
            }
            self.remove(first);
            if let State::Playing { next_ts } = &mut self.state {
                *next_ts = self
                    .packets
                    .first_key_value()
                    .map_or(timestamp, |(&ts, _)| ts.min(timestamp));
            }
        }
        self.store(ext_seq, timestamp, payload, false);
        let buffered = self.buffered_ticks();
        self.stats.max_buffered = self.stats.max_buffered.max(self.ticks_duration(buffered));
        result
    }

    /// Buffers a frame recovered from a later packet (an RFC 2198 redundant
    /// copy): it fills a gap if its time has not been played yet, and is
    /// dropped quietly otherwise, neither late nor duplicate, since the copy
    /// was always going to come a packet after the frame. Its arrival says
    /// nothing of the path's jitter, so the target does not learn from it.
    /// When it plays it counts as a loss: with
    /// [`JitterConfig::fec_lookahead`] the buffer holds the frame after a
    /// loss that lets the next copies arrive in time. Concealment played
    /// while it was on its way stands for it, as for a gap, once a frame is
    /// held: the copy is then dropped rather than played late.
    pub fn insert_recovered(
        &mut self,
        ext_seq: u64,
        timestamp: u64,
        payload: &[u8],
    ) -> InsertResult {
        if self.oversized(payload) {
            return InsertResult::Oversized;
        }
        if self.epoch.is_none() || self.seen(ext_seq) || self.packets.contains_key(&timestamp) {
            return InsertResult::Duplicate;
        }
        if self.floor().is_some_and(|floor| timestamp < floor) {
            return InsertResult::TooLate;
        }
        if self.packets.len() >= self.config.max_packets {
            return InsertResult::Full;
        }
        self.mark_seen(ext_seq);
        self.store(ext_seq, timestamp, payload, true);
        InsertResult::Inserted
    }

    /// Turns [`JitterConfig::fec_lookahead`] on or off from now on: on once
    /// the far end sends redundancy that a held frame lets arrive in time.
    pub fn set_fec_lookahead(&mut self, on: bool) {
        if self.config.fec_lookahead != on {
            self.config.fec_lookahead = on;
            self.target_dirty = true;
        }
    }

    /// What to play for the next frame at `now`. Call [`JitterBuffer::played`]
    /// afterwards with the ticks actually played.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        self.account_played();
        self.update_target();
        if self.epoch.is_none() {
            return Playout::Empty;
        }
        let at = self.arrival_ticks(now);

        let mut next_ts = match self.state {
            State::Playing { next_ts } => next_ts,
            State::Idle { .. } => {
                let Some((&first, _)) = self.packets.first_key_value() else {
                    self.last_pop = LastPop::Idle;
                    return Playout::Empty;
                };
                if !self.ripe(at, first) {
                    self.last_pop = LastPop::Idle;
                    return Playout::Empty;
                }
                self.state = State::Playing { next_ts: first };
                first
            }
        };
        self.catch_up(&mut next_ts);
        self.drop_recovered_concealed(at, next_ts);

        let Some((&first, _)) = self.packets.first_key_value() else {
            if self.last_pop != LastPop::Starved {
                self.stats.underruns += 1;
            }
            self.last_pop = LastPop::Starved;
            return Playout::Empty;
        };
        if first < next_ts.saturating_add(self.frame) {
            return self.deliver(at, first);
        }

        // A gap before `first`. Concealment already played with nothing
        // buffered stands for as much of it as it lasted (NetEQ plays the
        // next packet after an expand, rather than concealing twice).
        let gap = first - next_ts;
        if self.starved >= self.frame && self.first_loss_held(at, first) {
            // The first loss in a while, with FEC: from now on a frame more
            // is held, and the concealment just played is that frame. It is
            // not skipped: the packet after the gap is here to rebuild the
            // lost one, and the delay grows where the sound is broken anyway,
            // not by stretching speech later.
            self.starved = 0;
        }
        if self.starved >= self.frame {
            let skip = (self.starved / self.frame)
                .saturating_mul(self.frame)
                .min(gap);
            self.starved -= skip;
            next_ts += skip;
            // That concealment played the missing packets' time: it was not
            // delay added on top of them.
            if let Some(level) = &mut self.level {
                *level -= skip as f64;
            }
            self.state = State::Playing { next_ts };
            if first < next_ts.saturating_add(self.frame) {
                if self.ripe(at, first) {
                    return self.deliver(at, first);
                }
                // A new talkspurt: start it once it has been buffered for the target.
                self.state = State::Idle { floor: Some(first) };
                self.level = None;
                self.last_pop = LastPop::Idle;
                return Playout::Empty;
            }
        }

        // Waiting one more frame for it would take its delay past the target.
        let waited = self.level_at(at, next_ts);
        if waited + 2 * i128::from(self.frame) > i128::from(self.target) {
            self.stats.concealed += 1;
            self.state = State::Playing {
                next_ts: next_ts.saturating_add(self.frame),
            };
            self.starved = 0;
            self.last_pop = LastPop::Content;
            let stretch = self.decide(first < next_ts.saturating_add(2 * self.frame));
            let next = if first < next_ts.saturating_add(2 * self.frame) {
                self.packets.get(&first).map(|slot| slot.payload.as_slice())
            } else {
                None
            };
            return Playout::Lost {
                timestamp: next_ts,
                next,
                stretch,
            };
        }
        self.stats.waits += 1;
        self.last_pop = LastPop::Waited;
        Playout::Empty
    }

    /// Whether the next [`JitterBuffer::pop`] hands out a packet: playout is
    /// under way and the packet at its position is here. A caller whose
    /// speaker has room can then pop as soon as the packet arrives, giving
    /// `pop` the moment it would otherwise have asked, instead of waking up
    /// again at that moment: the audio plays at the same time either way.
    pub fn next_ready(&self) -> bool {
        let State::Playing { next_ts } = self.state else {
            return false;
        };
        self.packets
            .first_key_value()
            .is_some_and(|(&first, _)| first < next_ts.saturating_add(self.frame))
    }

    /// How many ticks of audio the caller played for the last pop; without
    /// this call, one frame is assumed.
    pub fn played(&mut self, ticks: u64) {
        self.played_ticks = Some(ticks);
    }

    /// The decoder found that the packet just given out holds `ticks` of
    /// audio (Opus reads it from the packet's TOC byte, RFC 6716 §3.1): that
    /// is the frame length from now on, and the next packet is due right
    /// after this one. So a sender that changes its packet time mid-stream
    /// (RFC 7587 lets every packet have its own) is followed from its first
    /// packet of the new length, rather than two packets later by
    /// [`JitterBuffer::frame_ticks`]'s learning from timestamps.
    pub fn packet_ticks(&mut self, ticks: u64) {
        if ticks == 0 || ticks > self.max_frame_ticks || ticks == self.frame {
            return;
        }
        if let (State::Playing { next_ts }, LastPop::Content) = (&mut self.state, self.last_pop) {
            *next_ts = next_ts.saturating_sub(self.frame).saturating_add(ticks);
        }
        self.frame = ticks;
        self.frame_learned = true;
        self.frame_candidate = None;
    }

    /// The frame length learnt from the timestamps, in ticks (20 ms until learnt).
    pub fn frame_ticks(&self) -> u64 {
        self.frame
    }

    /// The target delay, as of the last pop.
    pub fn target_delay(&self) -> Duration {
        self.ticks_duration(self.target)
    }

    /// Whether playout has started (and not stopped for a new talkspurt).
    pub fn is_playing(&self) -> bool {
        matches!(self.state, State::Playing { .. })
    }

    pub fn stats(&self) -> JitterStats {
        let mut stats = self.stats.clone();
        stats.target_delay = self.ticks_duration(self.target);
        stats.level = self.ticks_duration(self.level.unwrap_or(0.0).max(0.0) as u64);
        stats.buffered = self.ticks_duration(self.buffered_ticks());
        stats.packets = self.packets.len();
        stats
    }

    fn deliver(&mut self, at: u64, ts: u64) -> Playout<'_> {
        let slot = self
            .packets
            .remove(&ts)
            .expect("deliver is given a buffered timestamp");
        if let Some(last) = self.last_played_seq
            && slot.seq > last
        {
            self.stats.lost = self.stats.lost.saturating_add(slot.seq - last - 1);
            if slot.seq > last + 1 {
                self.hold_for_fec_from(at);
                self.target_dirty = true;
            }
        }
        if slot.recovered {
            self.stats.recovered += 1;
            self.hold_for_fec_from(at);
            self.target_dirty = true;
        }
        self.last_played_seq = Some(slot.seq);
        let old = std::mem::replace(&mut self.current, slot.payload);
        self.recycle(old);
        self.state = State::Playing {
            next_ts: ts.saturating_add(self.frame),
        };
        self.starved = 0;
        self.last_pop = LastPop::Content;

        let measured = self.level_at(at, ts).max(0) as f64 + self.frame as f64;
        let filtered = match self.level {
            Some(level) => level + LEVEL_SMOOTHING * (measured - level),
            None => measured,
        };
        self.level = Some(filtered);
        let level = self.ticks_duration(filtered.max(0.0) as u64);
        self.stats.max_level = self.stats.max_level.max(level);

        let next_here = self
            .packets
            .first_key_value()
            .is_some_and(|(&first, _)| first < ts.saturating_add(2 * self.frame));
        let stretch = self.decide(next_here);
        Playout::Packet {
            timestamp: ts,
            payload: &self.current,
            stretch,
        }
    }

    fn decide(&mut self, next_here: bool) -> Stretch {
        let Some(level) = self.level else {
            return Stretch::Normal;
        };
        let target = self.target as f64;
        let band = self.band();
        let middle = target + band / 2.0;
        // Hysteresis: once stretching, go on to the middle of the band.
        self.stretching = match self.stretching {
            Stretch::Expand if level < middle => Stretch::Expand,
            Stretch::Accelerate if level > middle => Stretch::Accelerate,
            _ if level < target => Stretch::Expand,
            _ if level > target + band => Stretch::Accelerate,
            _ => Stretch::Normal,
        };
        // An acceleration is cut to what lies above the target (see
        // `excess`), so it cannot starve playout on its own; with the
        // arrivals spread, it waits for the next packet too.
        let safe = next_here || self.spread == 0;
        match self.stretching {
            Stretch::Accelerate if safe => {
                self.stats.accelerated += 1;
                Stretch::Accelerate
            }
            Stretch::Expand => {
                self.stats.expanded += 1;
                Stretch::Expand
            }
            _ => Stretch::Normal,
        }
    }

    /// How far above the target the level may float before the buffer
    /// accelerates: as much as the arrivals spread (the percentile of their
    /// relative delay), between an eighth of a frame or 2.5 ms and a frame or
    /// 20 ms. Narrow on a clean path, so that each packet plays within a few
    /// milliseconds of its arrival; as wide as before where the arrivals
    /// jitter, so that the level's own wandering (the fastest packet of the
    /// window changes) is not chased with stretches. [`JitterBuffer::excess`]
    /// keeps an acceleration from cutting below the target.
    fn band(&self) -> f64 {
        let floor = (f64::from(self.config.clock_rate) / 400.0).max(self.frame as f64 / 8.0);
        let wide = (f64::from(self.config.clock_rate) / 50.0).max(self.frame as f64);
        (self.spread as f64).clamp(floor, wide.max(floor))
    }

    /// How much shorter the frame just given out may be played without
    /// taking the level below the target, in ticks: what an acceleration may
    /// cut. 0 when the level is at or under the target.
    pub fn excess(&self) -> u64 {
        self.level
            .map_or(0.0, |level| (level - self.target as f64).max(0.0)) as u64
    }

    /// How much longer the frame just given out may be played to bring the
    /// level back into the band, in ticks: what an expansion may add (to the
    /// middle of the band). 0 when the level is at or over the target.
    pub fn deficit(&self) -> u64 {
        self.level.map_or(0.0, |level| {
            let middle = self.target as f64 + self.band() / 2.0;
            if level < self.target as f64 {
                middle - level
            } else {
                0.0
            }
        }) as u64
    }

    /// Books what the caller played for the previous pop.
    fn account_played(&mut self) {
        let played = self.played_ticks.take().unwrap_or(self.frame);
        match self.last_pop {
            LastPop::Content => {
                if let Some(level) = &mut self.level {
                    *level += played as f64 - self.frame as f64;
                }
            }
            LastPop::Starved => {
                self.starved = self.starved.saturating_add(played);
                if let Some(level) = &mut self.level {
                    *level += played as f64;
                }
            }
            LastPop::Waited => {
                if let Some(level) = &mut self.level {
                    *level += played as f64;
                }
            }
            LastPop::Nothing | LastPop::Idle => {}
        }
    }

    /// Drops the recovered copies whose time concealment already played
    /// while nothing was buffered, unless they come after the first loss in
    /// a while: that concealment then becomes the frame held for them, as
    /// for FEC ([`JitterBuffer::first_loss_held`]). So a copy does not add
    /// to the delay what an acceleration would have to take back from speech.
    fn drop_recovered_concealed(&mut self, at: u64, next_ts: u64) {
        let (Some(last), true) = (self.last_played_seq, self.starved >= self.frame) else {
            return;
        };
        let covered = self.starved / self.frame;
        let mut held = false;
        while let Some((&ts, slot)) = self.packets.first_key_value() {
            // The frames right after the last one played, one per missing
            // sequence number: not a talkspurt after a pause (DTX), whose
            // timestamp jumps further than its sequence number.
            let behind = slot.seq.saturating_sub(last.saturating_add(1));
            let expected = next_ts.saturating_add(behind.saturating_mul(self.frame));
            if !slot.recovered
                || slot.seq <= last
                || behind >= covered
                || ts.abs_diff(expected) > self.frame / 2
            {
                break;
            }
            if !held && self.first_loss_held(at, ts) {
                self.starved = 0;
                return;
            }
            held = true;
            self.remove(ts);
            self.stats.dropped += 1;
        }
    }

    /// A loss at `at`: hold the frame for FEC until [`LOSS_MEMORY`] after it.
    fn hold_for_fec_from(&mut self, at: u64) {
        let until = at.saturating_add(duration_ticks(LOSS_MEMORY, self.config.clock_rate));
        self.losing_until = self.losing_until.max(until);
    }

    /// Whether the packet at `first` comes after a loss (a gap in the
    /// sequence numbers, not DTX) while no frame is held for FEC; if so,
    /// the buffer starts holding one (see [`JitterConfig::fec_lookahead`]).
    fn first_loss_held(&mut self, at: u64, first: u64) -> bool {
        let lost = self
            .packets
            .get(&first)
            .zip(self.last_played_seq)
            .is_some_and(|(slot, last)| slot.recovered || slot.seq > last.saturating_add(1));
        if !lost || !self.config.fec_lookahead || self.last_at < self.losing_until {
            return false;
        }
        self.hold_for_fec_from(at);
        self.target_dirty = true;
        self.update_target();
        true
    }

    /// Drops the oldest packets when far more than `max_delay` is buffered, so
    /// that the target remains: a big jump (an outage, a stalled caller) is
    /// caught up at once rather than by accelerating for seconds.
    fn catch_up(&mut self, next_ts: &mut u64) {
        if self.buffered_ticks() <= self.max_delay_ticks {
            return;
        }
        let Some((&last, _)) = self.packets.last_key_value() else {
            return;
        };
        let keep_from = last
            .saturating_add(self.frame)
            .saturating_sub(self.target.max(self.frame));
        while let Some((&first, _)) = self.packets.first_key_value() {
            if first >= keep_from {
                break;
            }
            self.remove(first);
            self.stats.dropped += 1;
        }
        if let Some((&first, _)) = self.packets.first_key_value() {
            *next_ts = first;
            self.state = State::Playing { next_ts: first };
            self.level = None;
        }
    }

    /// Whether a first packet at `ts` has waited long enough to start playout.
    fn ripe(&self, at: u64, ts: u64) -> bool {
        let target = i128::from(self.target);
        self.level_at(at, ts) + i128::from(self.frame) >= target
            || i128::from(self.buffered_ticks()) >= target
    }

    /// The playout delay of timestamp `ts` if played at `at`, against the
    /// earliest arrival seen.
    fn level_at(&self, at: u64, ts: u64) -> i128 {
        i128::from(at) - i128::from(ts) - self.min_transit
    }

    fn update_target(&mut self) {
        if !self.target_dirty {
            return;
        }
        self.target_dirty = false;
        if self.arrivals.is_empty() {
            return;
        }
        self.scratch.clear();
        self.scratch
            .extend(self.arrivals.iter().map(|a| a.relative));
        let n = self.scratch.len();
        let index = ((self.config.percentile * n as f64).ceil() as usize).clamp(1, n) - 1;
        let (_, &mut relative, _) = self.scratch.select_nth_unstable(index);
        let losing = self.config.fec_lookahead && self.last_at < self.losing_until;
        let lookahead = if losing { self.frame } else { 0 };
        self.spread = relative;
        self.target = relative
            .saturating_add(self.frame + lookahead + self.margin_ticks)
            .max(self.min_delay_ticks)
            .min(self.max_delay_ticks);
    }

    /// Books an arrival. Its relative delay is taken against the smallest
    /// transit of the window as it stands now, not when the target is
    /// computed: under clock drift the newest packets sit at one end of the
    /// window, and only this measures what they need.
    fn record_arrival(&mut self, at: u64, transit: i128) {
        let index = self.arrival_count;
        self.arrival_count += 1;
        while self.fastest.back().is_some_and(|&(_, t)| t >= transit) {
            self.fastest.pop_back();
        }
        self.fastest.push_back((index, transit));
        while self.arrivals.len() >= MAX_ARRIVALS
            || (self.arrivals.len() >= MIN_ARRIVALS
                && self
                    .arrivals
                    .front()
                    .is_some_and(|a| a.at.saturating_add(self.window_ticks) < at))
        {
            let Some(old) = self.arrivals.pop_front() else {
                break;
            };
            if self.fastest.front().is_some_and(|&(i, _)| i == old.index) {
                self.fastest.pop_front();
            }
        }
        self.min_transit = self.fastest.front().map_or(transit, |&(_, t)| t);
        let relative = u64::try_from(transit - self.min_transit).unwrap_or(u64::MAX);
        self.arrivals.push_back(Arrival {
            at,
            index,
            relative,
        });
        self.target_dirty = true;
    }

    /// Learns the frame length from consecutive sequence numbers. A shorter
    /// frame is taken at once; a longer one (up to Opus's 120 ms) only when
    /// seen twice in a row, since one step may span a DTX pause.
    fn learn_frame(&mut self, seq: u64, ts: u64) {
        if let Some((last_seq, last_ts)) = self.last_arrival
            && seq == last_seq.wrapping_add(1)
            && ts > last_ts
            && ts - last_ts <= self.max_frame_ticks
        {
            let step = ts - last_ts;
            if !self.frame_learned || step < self.frame {
                self.frame = step;
                self.frame_learned = true;
                self.frame_candidate = None;
            } else if step > self.frame {
                if self.frame_candidate == Some(step) {
                    self.frame = step;
                    self.frame_candidate = None;
                } else {
                    self.frame_candidate = Some(step);
                }
            } else {
                self.frame_candidate = None;
            }
        }
        self.last_arrival = Some((seq, ts));
    }

    fn seen(&self, seq: u64) -> bool {
        match self.seq_max {
            Some(max) if seq <= max => max - seq < 128 && self.seq_seen & (1 << (max - seq)) != 0,
            _ => false,
        }
    }

    fn mark_seen(&mut self, seq: u64) {
        match self.seq_max {
            Some(max) if seq <= max => {
                if max - seq < 128 {
                    self.seq_seen |= 1 << (max - seq);
                }
            }
            Some(max) => {
                let shift = seq - max;
                self.seq_seen = if shift >= 128 {
                    0
                } else {
                    self.seq_seen << shift
                };
                self.seq_seen |= 1;
                self.seq_max = Some(seq);
            }
            None => {
                self.seq_seen = 1;
                self.seq_max = Some(seq);
            }
        }
    }

    /// Timestamps below this have been played.
    fn floor(&self) -> Option<u64> {
        match self.state {
            State::Playing { next_ts } => Some(next_ts),
            State::Idle { floor } => floor,
        }
    }

    fn resync(&mut self) {
        self.stats.resyncs += 1;
        while let Some((&ts, _)) = self.packets.first_key_value() {
            self.remove(ts);
            self.stats.dropped += 1;
        }
        self.arrivals.clear();
        self.fastest.clear();
        self.last_transit = None;
        self.last_arrival = None;
        self.seq_max = None;
        self.seq_seen = 0;
        self.last_played_seq = None;
        self.state = State::Idle { floor: None };
        self.starved = 0;
        self.level = None;
        self.target_dirty = true;
    }

    /// Whether `payload` is over [`JitterConfig::max_payload`] (counted).
    fn oversized(&mut self, payload: &[u8]) -> bool {
        let over = payload.len() > self.config.max_payload;
        self.stats.oversized += u64::from(over);
        over
    }

    /// Buffers a payload, in a spare buffer if there is one.
    fn store(&mut self, seq: u64, timestamp: u64, payload: &[u8], recovered: bool) {
        self.stats.inserted += 1;
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(payload);
        let slot = Slot {
            seq,
            payload: buffer,
            recovered,
        };
        self.packets.insert(timestamp, slot);
    }

    fn remove(&mut self, ts: u64) {
        if let Some(slot) = self.packets.remove(&ts) {
            self.recycle(slot.payload);
        }
    }

    fn recycle(&mut self, buffer: Vec<u8>) {
        if self.spare.len() <= self.config.max_packets {
            self.spare.push(buffer);
        }
    }

    fn buffered_ticks(&self) -> u64 {
        match (
            self.packets.first_key_value(),
            self.packets.last_key_value(),
        ) {
            (Some((&first, _)), Some((&last, _))) => last.saturating_add(self.frame) - first,
            _ => 0,
        }
    }

    fn arrival_ticks(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        duration_ticks(now.saturating_duration_since(epoch), self.config.clock_rate)
    }

    fn ticks_duration(&self, ticks: u64) -> Duration {
        let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(self.config.clock_rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Weight of a new measurement in the filtered level: about ten frames.
const LEVEL_SMOOTHING: f64 = 0.1;
/// How long a loss keeps the frame held for FEC: losses come and go on a
/// path, and each change of the target is a stretch that can be heard.
const LOSS_MEMORY: Duration = Duration::from_secs(10);
/// Arrivals kept even when older than the window, so a DTX pause does not
/// forget the jitter.
const MIN_ARRIVALS: usize = 16;
/// Arrivals kept at most, so a flood cannot grow the statistics.
const MAX_ARRIVALS: usize = 1024;

#[derive(Debug)]
struct Slot {
    seq: u64,
    payload: Vec<u8>,
    /// A copy from a later packet ([`JitterBuffer::insert_recovered`]).
    recovered: bool,
}

#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: u64,
    index: u64,
    relative: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started, or waiting to start a new talkspurt; timestamps below
    /// `floor` have been played.
    Idle { floor: Option<u64> },
    /// Playing; the next frame's timestamp is `next_ts`.
    Playing { next_ts: u64 },
}

/// What the previous pop gave out, to book what the caller played for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastPop {
    Nothing,
    Idle,
    Content,
    Starved,
    Waited,
}

fn duration_ticks(duration: Duration, rate: u32) -> u64 {
    u64::try_from(duration.as_nanos() * u128::from(rate) / 1_000_000_000).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const RATE: u32 = 48_000;
    /// 20 ms of Opus at its 48 kHz RTP clock.
    const FRAME: u64 = 960;
    /// What the caller's time-stretcher takes out or puts in: a 6 ms pitch period.
    const PITCH: u64 = 288;
    const MS: u64 = 1_000_000;

    /// A seeded linear congruential generator (Knuth's MMIX constants).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 11
        }

        fn unit(&mut self) -> f64 {
            self.next() as f64 / (1u64 << 53) as f64
        }
    }

    #[derive(Debug, Clone, Copy)]
    struct Packet {
        sent_ns: u64,
        at_ns: u64,
        seq: u64,
        ts: u64,
        /// A redundant copy carried by a later packet.
        copy: bool,
    }

    /// A sender of 20 ms frames whose clock runs `speed` times ours, over a
    /// network of `base_ms` delay plus `jitter(n)`.
    fn stream(
        seconds: u64,
        speed: f64,
        base_ms: u64,
        mut jitter: impl FnMut(u64) -> u64,
    ) -> Vec<Packet> {
        let count = seconds * 50;
        (0..count)
            .map(|n| {
                let sent_ns = (n as f64 * 20.0 * MS as f64 / speed) as u64;
                Packet {
                    sent_ns,
                    at_ns: sent_ns + base_ms * MS + jitter(n),
                    seq: 1000 + n,
                    ts: 7_000_000 + n * FRAME,
                    copy: false,
                }
            })
            .collect()
    }

    #[derive(Debug, Default)]
    struct Run {
        /// (timestamp, one-way delay to the end of its playout, in ns)
        played: Vec<(u64, u64)>,
        /// (timestamp, sequence number of `next`)
        lost: Vec<(u64, Option<u64>)>,
        empties: usize,
        /// Playing time at which each Empty was given out, in ns.
        empty_at: Vec<u64>,
    }

    /// Plays `packets` through `jb` for `seconds`, as an audio clock pulling
    /// one frame at a time and stretching by one pitch period when told (an
    /// acceleration by at most [`JitterBuffer::excess`]).
    fn play(jb: &mut JitterBuffer, base: Instant, packets: &[Packet], seconds: u64) -> Run {
        let mut arrivals = packets.to_vec();
        arrivals.sort_by_key(|p| p.at_ns);
        let sent: HashMap<u64, u64> = packets.iter().map(|p| (p.ts, p.sent_ns)).collect();
        let mut run = Run::default();
        let mut next = 0;
        let mut now_ns = 0u64;
        while now_ns < seconds * 1000 * MS {
            while next < arrivals.len() && arrivals[next].at_ns <= now_ns {
                let p = arrivals[next];
                if p.copy {
                    jb.insert_recovered(p.seq, p.ts, &p.seq.to_be_bytes());
                } else {
                    jb.insert(
                        base + Duration::from_nanos(p.at_ns),
                        p.seq,
                        p.ts,
                        &p.seq.to_be_bytes(),
                    );
                }
                next += 1;
            }
            let stretch = match jb.pop(base + Duration::from_nanos(now_ns)) {
                Playout::Packet {
                    timestamp,
                    payload,
                    stretch,
                } => {
                    let seq = u64::from_be_bytes(payload.try_into().expect("8-byte payloads"));
                    assert_eq!(
                        timestamp,
                        packets.iter().find(|p| p.seq == seq).expect("known seq").ts
                    );
                    run.played
                        .push((timestamp, now_ns + 20 * MS - sent[&timestamp]));
                    stretch
                }
                Playout::Lost {
                    timestamp,
                    next,
                    stretch,
                } => {
                    let next =
                        next.map(|p| u64::from_be_bytes(p.try_into().expect("8-byte payloads")));
                    run.lost.push((timestamp, next));
                    stretch
                }
                Playout::Empty => {
                    // Those after the stream's end are no concern.
                    if next < arrivals.len() {
                        run.empties += 1;
                        run.empty_at.push(now_ns);
                    }
                    Stretch::Normal
                }
            };
            let ticks = match stretch {
                Stretch::Normal => FRAME,
                // Cut no more than lies above the target, as the caller's
                // stretcher is asked to.
                Stretch::Accelerate => FRAME - PITCH.min(jb.excess()),
                Stretch::Expand => FRAME + PITCH,
            };
            jb.played(ticks);
            now_ns += ticks * 1_000_000_000 / u64::from(RATE);
        }
        run
    }

    fn mean_ms(delays: &[(u64, u64)]) -> f64 {
        delays.iter().map(|&(_, d)| d as f64).sum::<f64>() / delays.len() as f64 / MS as f64
    }

    fn in_order(run: &Run) -> bool {
        run.played.windows(2).all(|w| w[0].0 < w[1].0)
    }

    #[test]
    fn clean_path_settles_at_about_one_frame() {
        let mut jb = JitterBuffer::new(JitterConfig::new(RATE));
        let packets = stream(20, 1.0, 10, |_| 0);
        let run = play(&mut jb, Instant::now(), &packets, 20);
        let stats = jb.stats();
        // One frame and the 2 ms margin.
        assert_eq!(stats.target_delay, Duration::from_millis(22));
        assert!(in_order(&run));
        assert!(run.played.len() >= 995, "played {}", run.played.len());
        assert_eq!(run.empties, 1, "only before the first packet");
        assert!(run.lost.is_empty());
        // Network 10 ms + buffer + one frame of playout.
        let buffered = mean_ms(&run.played[100..]) - 10.0;
        assert!((20.0..=40.0).contains(&buffered), "level {buffered} ms");
        // Each packet plays within the narrow band of its arrival: one frame,
        // the margin and at most 2.5 ms more.
        assert!(stats.level <= Duration::from_millis(25), "{stats:?}");
        assert_eq!((stats.lost, stats.late, stats.underruns), (0, 0, 0));
    }

    /// `next_ready` promises a packet: whenever it says so, the pop that
    /// follows gives one, on a clean path nearly always, and under loss and
    /// jitter never when the packet at the position is missing.
    #[test]
    fn next_ready_promises_the_packet_that_pop_gives() {
        let mut rng = Lcg(7);
        let clean = stream(10, 1.0, 10, |_| 0);
        let mut rough: Vec<Packet> = stream(10, 1.0, 10, |_| rng.next() % 30 * MS)
            .into_iter()
            .filter(|p| p.seq % 10 != 3)
            .collect();
        rough.sort_by_key(|p| p.at_ns);
        for (packets, name) in [(clean, "clean"), (rough, "lossy")] {
            let mut jb = JitterBuffer::new(JitterConfig::new(RATE));
            let base = Instant::now();
            let (mut next, mut ready, mut given) = (0, 0, 0);
            for pop in 0..500u64 {
                let now_ns = pop * 20 * MS;
                while next < packets.len() && packets[next].at_ns <= now_ns {
                    let p = packets[next];
                    jb.insert(base + Duration::from_nanos(p.at_ns), p.seq, p.ts, &[1]);
                    next += 1;
                }
                let promised = jb.next_ready();
                let packet = matches!(
                    jb.pop(base + Duration::from_nanos(now_ns)),
                    Playout::Packet { .. }
                );
                assert!(packet || !promised, "{name}: pop {pop} promised a packet");
                ready += u64::from(promised);
                given += u64::from(packet);
                jb.played(FRAME);
            }
            if name == "clean" {
                assert!(ready >= 495, "{name}: ready {ready} of 500");
            } else {
                assert!(given > ready / 2 && ready < 460, "{name}: {ready} {given}");
            }
        }
    }

    /// Holding a frame for FEC starts with a loss, not with the stream: the
    /// first packet plays as soon as on any clean path.
    #[test]
    fn with_fec_lookahead_a_clean_path_holds_no_extra_frame() {
        let mut config = JitterConfig::new(RATE);
        config.fec_lookahead = true;
        let mut jb = JitterBuffer::new(config);
        let run = play(&mut jb, Instant::now(), &stream(5, 1.0, 10, |_| 0), 6);
        let stats = jb.stats();
        assert_eq!(stats.target_delay, Duration::from_millis(22), "{stats:?}");
        assert!(run.lost.is_empty());
        let mut plain = JitterBuffer::new(JitterConfig::new(RATE));
        play(&mut plain, Instant::now(), &stream(5, 1.0, 10, |_| 0), 6);
        assert_eq!(stats.max_level, plain.stats().max_level, "{stats:?}");
    }

    #[test]
    fn uniform_jitter_of_30_ms_is_absorbed() {
        let mut rng = Lcg(0x5eed);
        let mut jb = JitterBuffer::new(JitterConfig::new(RATE));
        let packets = stream(60, 1.0, 10, |_| (rng.unit() * 30.0 * MS as f64) as u64);
        let run = play(&mut jb, Instant::now(), &packets, 61);
        let stats = jb.stats();
        let sent = packets.len() as f64;
        assert!(in_order(&run));
        let late = (stats.late + stats.lost) as f64 / sent;
        let underruns = stats.underruns as f64 / sent;
        let delay = mean_ms(&run.played[250..]) - 10.0;
        assert!(late < 0.01, "late {late} {stats:?}");
        assert!(underruns < 0.01, "underruns {underruns} {stats:?}");
        assert!(delay <= 80.0, "delay {delay} ms {stats:?}");
        assert!(stats.target_delay >= Duration::from_millis(47), "{stats:?}");
        assert!(stats.target_delay <= Duration::from_millis(52), "{stats:?}");
    }

    #[test]
    fn reordering_and_duplicates_are_sorted_out() {
        let mut config = JitterConfig::new(RATE);
        config.min_delay = Duration::from_millis(60);
        let mut jb = JitterBuffer::new(config);
        // Every tenth packet arrives 25 ms late, behind the one after it.
        let mut packets = stream(10, 1.0, 10, |n| if n % 10 == 3 { 25 * MS } else { 0 });
        let duplicates: Vec<Packet> = packets
            .iter()
            .filter(|p| p.seq % 7 == 0)
            .map(|p| Packet {
                at_ns: p.at_ns + 5 * MS,
                ..*p
            })
            .collect();
        packets.extend(&duplicates);
        let run = play(&mut jb, Instant::now(), &packets, 11);
        let stats = jb.stats();
        assert!(in_order(&run));
        assert_eq!(run.played.len(), 500, "{stats:?}");
        assert_eq!(stats.duplicates, duplicates.len() as u64);
        assert_eq!(
            (stats.lost, stats.late, stats.concealed),
            (0, 0, 0),
            "{stats:?}"
        );
    }

    #[test]
    fn a_lost_packet_is_concealed_with_the_next_for_fec() {
        let mut config = JitterConfig::new(RATE);
        config.min_delay = Duration::from_millis(60);
        let mut jb = JitterBuffer::new(config);
        let mut packets = stream(5, 1.0, 10, |_| 0);
        let gone = packets.remove(100);
        let run = play(&mut jb, Instant::now(), &packets, 6);
        assert_eq!(run.lost, vec![(gone.ts, Some(gone.seq + 1))]);
        assert!(in_order(&run));
        assert_eq!(run.played.len(), 249);
        let stats = jb.stats();
        assert_eq!((stats.lost, stats.concealed, stats.late), (1, 1, 0));
    }

    #[test]
    fn on_a_clean_path_a_loss_is_concealed_while_starved() {
        let mut jb = JitterBuffer::new(JitterConfig::new(RATE));
        let mut packets = stream(5, 1.0, 10, |_| 0);
        packets.remove(100);
        let run = play(&mut jb, Instant::now(), &packets, 6);
        assert_eq!(run.played.len(), 249);
        assert!(in_order(&run));
        // One frame of concealment (Empty) stands for the lost one.
        assert_eq!(run.empties, 2);
        let stats = jb.stats();
        // The second underrun is the end of the stream.
        assert_eq!((stats.lost, stats.underruns, stats.late), (1, 2, 0));
        // The concealment stood in for the lost packet's time: it added no
        // delay to be accelerated away, beyond what the same stream whole
        // needs to find its phase.
        let mut whole = JitterBuffer::new(JitterConfig::new(RATE));
        play(&mut whole, Instant::now(), &stream(5, 1.0, 10, |_| 0), 6);
        assert_eq!(stats.accelerated, whole.stats().accelerated, "{stats:?}");
        assert!(mean_ms(&run.played[150..]) <= 50.0);
    }

    #[test]
    fn with_fec_lookahead_losses_on_a_clean_path_are_rebuilt_from_the_next_packet() {
        let mut config = JitterConfig::new(RATE);
        config.fec_lookahead = true;
        let mut jb = JitterBuffer::new(config);
        let mut packets = stream(10, 1.0, 10, |_| 0);
        // One packet in ten lost, from the fifth second on.
        packets.retain(|p| p.seq < 1250 || p.seq % 10 != 3);
        let run = play(&mut jb, Instant::now(), &packets, 11);
        assert!(in_order(&run));
        let stats = jb.stats();
        assert_eq!(stats.lost, 25, "{stats:?}");
        // The first loss finds the buffer at one frame: the concealment
        // played while it waited becomes the frame held from then on, and
        // the packet after each gap, the first included, is there to rebuild
        // it.
        let rebuilt = run.lost.iter().filter(|(_, next)| next.is_some()).count();
        assert_eq!(rebuilt, 25, "{:?}", run.lost);
        assert_eq!(stats.target_delay, Duration::from_millis(42), "{stats:?}");
        // Before any loss, one frame, as on any clean path.
        let before = mean_ms(&run.played[50..240]) - 10.0;
        assert!(before <= 40.0, "level before the losses {before} ms");
    }

    /// The copy of each packet that the next one carries (RFC 2198), arriving with it.
    fn copies(packets: &[Packet]) -> Vec<Packet> {
        packets
            .windows(2)
            .map(|w| Packet {
                at_ns: w[1].at_ns,
                copy: true,
                ..w[0]
            })
            .collect()
    }

    /// RFC 2198: each lost packet's frame comes again with the next packet.
    /// After the first loss the buffer holds a frame, and every later copy
    /// arrives in time to be played as sent; copies of frames already played
    /// are dropped quietly, neither late nor duplicate.
    #[test]
    fn redundant_copies_fill_the_gaps_of_lost_packets() {
        let mut config = JitterConfig::new(RATE);
        config.fec_lookahead = true;
        let mut jb = JitterBuffer::new(config);
        let mut packets = stream(10, 1.0, 10, |_| 0);
        let copies = copies(&packets);
        // One packet in ten lost, from the fifth second on.
        packets.retain(|p| p.seq < 1250 || p.seq % 10 != 3);
        packets.extend(&copies);
        let run = play(&mut jb, Instant::now(), &packets, 11);
        assert!(in_order(&run));
        let stats = jb.stats();
        assert_eq!(stats.recovered, 25, "{stats:?}");
        assert_eq!((stats.late, stats.duplicates), (0, 0), "{stats:?}");
        // The first loss costs its frame, whose concealment becomes the
        // frame held; the copy of every later one comes in time.
        assert!(stats.lost <= 1, "{stats:?}");
        assert!(run.played.len() >= 498, "{}", run.played.len());
        assert_eq!(stats.target_delay, Duration::from_millis(42), "{stats:?}");
        // Only at the start and the stream's end: no excess to take back.
        assert!(stats.accelerated <= 2, "{stats:?}");
    }

    /// A copy whose frame's time concealment played while the buffer ran
    /// dry, with no frame held for it, is dropped, not played late: the
    /// delay stays, rather than grow by a frame for speech to be cut later.
    #[test]
    fn a_copy_after_its_time_was_concealed_is_dropped() {
        let config = JitterConfig::new(RATE);
        let mut jb = JitterBuffer::new(config);
        let mut packets = stream(8, 1.0, 10, |_| 0);
        let copies = copies(&packets);
        packets.retain(|p| p.seq != 1100);
        packets.extend(&copies);
        let run = play(&mut jb, Instant::now(), &packets, 9);
        assert!(in_order(&run));
        let stats = jb.stats();
        assert_eq!(
            (stats.lost, stats.dropped, stats.recovered),
            (1, 1, 0),
            "{stats:?}"
        );
        let after = mean_ms(&run.played[run.played.len() - 100..]) - 10.0;
        let before = mean_ms(&run.played[50..90]) - 10.0;
        assert!(
            (after - before).abs() < 3.0,
            "{before} ms, then {after} ms: {stats:?}"
        );
        assert!(stats.accelerated <= 2, "{stats:?}");
    }

    #[test]
    fn burst_loss() {
        let mut config = JitterConfig::new(RATE);
        config.min_delay = Duration::from_millis(60);
        let mut jb = JitterBuffer::new(config);
        let mut packets = stream(6, 1.0, 10, |_| 0);
        packets.drain(100..106);
        let run = play(&mut jb, Instant::now(), &packets, 7);
        let stats = jb.stats();
        assert!(in_order(&run));
        assert_eq!(run.played.len(), 294);
        assert_eq!(stats.lost, 6);
        let concealed = run.lost.len() + run.empties;
        assert!(
            (6..=9).contains(&concealed),
            "{:?} {:?}",
            run.lost,
            run.empty_at
        );
        assert_eq!(run.lost.last().map(|l| l.1), Some(Some(1106)));
        // Back to the target after the burst.
        let after = mean_ms(&run.played[200..]) - 10.0;
        assert!((55.0..=90.0).contains(&after), "{after} {stats:?}");
    }

    fn drift(speed: f64) -> (Run, JitterStats) {
        let mut rng = Lcg(42);
        let mut jb = JitterBuffer::new(JitterConfig::new(RATE));
        let packets = stream(60, speed, 10, |_| (rng.unit() * 10.0 * MS as f64) as u64);
        let run = play(&mut jb, Instant::now(), &packets, 60);
        (run, jb.stats())
    }

    #[test]
    fn a_fast_far_end_is_accelerated() {
        let (run, stats) = drift(1.005);
        assert!(in_order(&run));
        assert!(stats.accelerated >= 10, "{stats:?}");
        assert!(
            stats.max_buffered <= Duration::from_millis(100),
            "{stats:?}"
        );
        let end = mean_ms(&run.played[run.played.len() - 200..]) - 10.0;
        assert!(end <= 60.0, "{end} {stats:?}");
        assert_eq!(stats.dropped, 0);
        assert!(stats.late + stats.lost <= 30, "{stats:?}");
    }

    #[test]
    fn a_slow_far_end_is_expanded() {
        let (run, stats) = drift(0.995);
        assert!(in_order(&run));
        assert!(stats.expanded >= 10, "{stats:?}");
        let end = mean_ms(&run.played[run.played.len() - 200..]) - 10.0;
        assert!((20.0..=60.0).contains(&end), "{end} {stats:?}");
        assert!(stats.underruns <= 30, "{stats:?}");
        assert!(stats.late + stats.lost <= 30, "{stats:?}");
    }

    #[test]
    fn a_new_talkspurt_after_dtx_plays_without_loss() {
        let mut jb = JitterBuffer::new(JitterConfig::new(RATE));
        let mut packets = stream(8, 1.0, 10, |_| 0);
        // Silence from 2 s to 5 s: the sender sends nothing, its clock runs on.
        packets.retain(|p| !(100..250).contains(&(p.seq - 1000)));
        for (i, p) in packets.iter_mut().enumerate() {
            p.seq = 1000 + i as u64;
        }
        let run = play(&mut jb, Instant::now(), &packets, 9);
        let stats = jb.stats();
        assert!(in_order(&run));
        assert_eq!(run.played.len(), packets.len());
        assert_eq!(
            (stats.lost, stats.late, stats.resyncs, stats.concealed),
            (0, 0, 0, 0),
            "{stats:?}"
        );
        let after = &run.played[100..];
        assert!(
            after.iter().all(|&(_, d)| d <= 60 * MS),
            "{:?}",
            &after[..10]
        );
    }

    #[test]
    fn a_restarted_timestamp_base_resynchronises() {
        let mut jb = JitterBuffer::new(JitterConfig::new(RATE));
        let mut packets = stream(10, 1.0, 10, |_| 0);
        for p in &mut packets[250..] {
            p.ts = p.ts - 7_000_000 + 123;
        }
        let run = play(&mut jb, Instant::now(), &packets, 11);
        let stats = jb.stats();
        assert_eq!(stats.resyncs, 1);
        assert_eq!(run.played.len(), packets.len(), "{stats:?}");
        assert!(run.empties <= 3, "{:?}", run.empty_at);
        assert_eq!((stats.lost, stats.late), (0, 0));
    }

    #[test]
    fn a_huge_backlog_is_dropped_to_catch_up() {
        let mut jb = JitterBuffer::new(JitterConfig::new(RATE));
        // A one-second outage, then the queued packets arrive at once.
        let packets = stream(10, 1.0, 10, |n| {
            if (100..150).contains(&n) {
                (150 - n) * 20 * MS
            } else {
                0
            }
        });
        let run = play(&mut jb, Instant::now(), &packets, 10);
        let stats = jb.stats();
        assert!(in_order(&run));
        assert!(stats.dropped > 0, "{stats:?}");
        let after = mean_ms(&run.played[run.played.len() - 50..]) - 10.0;
        assert!(after <= 60.0, "{after} {stats:?}");
    }

    #[test]
    fn learns_the_frame_length() {
        let mut jb = JitterBuffer::new(JitterConfig::new(8000));
        let base = Instant::now();
        for n in 0..3u64 {
            jb.insert(base + Duration::from_millis(30 * n), n, n * 240, &[0]);
        }
        assert_eq!(jb.frame_ticks(), 240);
        // A DTX step is not a frame.
        jb.insert(base + Duration::from_millis(500), 3, 4000, &[0]);
        assert_eq!(jb.frame_ticks(), 240);
    }

    /// A sender going from 20 ms packets to 60 ms and back: told each
    /// packet's length by the decoder, the buffer plays every packet in
    /// turn, with no concealment in between.
    #[test]
    fn follows_a_change_of_packet_length() {
        let mut jb = JitterBuffer::new(JitterConfig::new(RATE));
        let base = Instant::now();
        // 20 ms packets, then 60 ms ones, then 20 ms again.
        let mut packets = Vec::new();
        let (mut ts, mut sent) = (0u64, 0u64);
        for n in 0..60u64 {
            let ms = if (20..40).contains(&n) { 60 } else { 20 };
            sent += ms;
            packets.push((n, ts, ms, base + Duration::from_millis(sent + 10)));
            ts += ms * 48;
        }
        let mut next = 0;
        let mut playing = Vec::new();
        let mut now = base;
        let mut concealed = 0;
        while now < base + Duration::from_millis(sent + 500) {
            while next < packets.len() && packets[next].3 <= now {
                let (seq, ts, ..) = packets[next];
                jb.insert(now, seq, ts, &[seq as u8]);
                next += 1;
            }
            let played = match jb.pop(now) {
                Playout::Packet { payload, .. } => {
                    let ms = packets[usize::from(payload[0])].2;
                    playing.push(payload[0]);
                    jb.packet_ticks(ms * 48);
                    ms * 48
                }
                Playout::Lost { .. } => {
                    concealed += 1;
                    jb.frame_ticks()
                }
                Playout::Empty => 960,
            };
            jb.played(played);
            now += Duration::from_millis(played / 48);
        }
        assert_eq!(concealed, 0);
        assert_eq!(playing, (0..60).collect::<Vec<u8>>());
        assert_eq!(jb.frame_ticks(), 960);
    }

    #[test]
    fn memory_is_bounded_under_a_flood() {
        let mut rng = Lcg(7);
        let config = JitterConfig::new(RATE);
        let mut jb = JitterBuffer::new(config.clone());
        let base = Instant::now();
        let payload = [0u8; 2000];
        for n in 0..100_000u64 {
            let now = base + Duration::from_micros(n * 10);
            let len = (rng.next() % 1600) as usize;
            let ts = 1_000_000 + rng.next() % 100_000;
            jb.insert(now, rng.next() % 50_000, ts, &payload[..len]);
            if n % 200 == 0 {
                let _ = jb.pop(now);
            }
            assert!(jb.packets.len() <= config.max_packets);
        }
        assert!(jb.arrivals.len() <= MAX_ARRIVALS);
        assert!(jb.spare.len() <= config.max_packets + 1);
        assert!(
            jb.packets
                .values()
                .all(|s| s.payload.len() <= config.max_payload)
        );
        assert!(jb.stats().oversized > 0);
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = Lcg(99);
        let base = Instant::now() + Duration::from_secs(1000);
        for round in 0..200 {
            let mut config = JitterConfig::new([0, 1, 8000, 48_000, u32::MAX][round % 5]);
            config.min_delay = Duration::from_millis(rng.next() % 500);
            config.max_delay = Duration::from_millis(rng.next() % 500);
            config.max_packets = (rng.next() % 10) as usize;
            config.percentile = [0.0, 0.5, 1.0, 2.0, f64::NAN][round % 5];
            config.window = Duration::from_millis(rng.next() % 3000);
            let mut jb = JitterBuffer::new(config);
            let big = |r: &mut Lcg| {
                if r.next().is_multiple_of(4) {
                    u64::MAX - r.next() % 3
                } else {
                    r.next() % 100_000
                }
            };
            for _ in 0..500 {
                let now = if rng.next().is_multiple_of(2) {
                    base + Duration::from_millis(rng.next() % 100_000)
                } else {
                    base - Duration::from_millis(rng.next() % 1000)
                };
                match rng.next() % 3 {
                    0 => {
                        let (seq, ts) = (big(&mut rng), big(&mut rng));
                        jb.insert(now, seq, ts, &[1, 2, 3]);
                    }
                    1 => {
                        let _ = jb.pop(now);
                    }
                    _ => jb.played(big(&mut rng)),
                }
            }
            let _ = jb.stats();
        }
    }
}
