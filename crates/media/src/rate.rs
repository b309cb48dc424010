//! Sender-side rate adaptation for a voice call: from what the far end
//! reports, the Opus bitrate, packet time and FEC that fit the path.
//!
//! A queue in front of a slow link shows first as one-way delay that grows,
//! then as loss when it overflows. So the controller is delay-based first
//! (as GCC, draft-ietf-rmcat-gcc-02, and LEDBAT, RFC 6817) and loss-based
//! second (as TFRC, RFC 5348), with additive increase and multiplicative
//! decrease.
//!
//! Signals:
//! - the far end's [`Delivery`] feedback ([`proto::rtp::feedback`]), about
//!   once a second: the one-way delay of the fastest packet of each interval
//!   (a queue that stands, not jitter) and the rate our stream arrives at.
//!   The queuing delay is that delay above its minimum over the last minute.
//! - RTCP receiver reports (RFC 3550 §6.4): the fraction lost, and the
//!   round-trip time, whose rise above its minimum stands in for the
//!   queuing delay when the far end sends no feedback (any RFC 3550 peer).
//!
//! Control law, on each report, over `W`, the bit rate of our media on the
//! wire (IP, UDP and RTP headers included):
//! - *overuse*: queuing delay over [`OVERUSE`], or loss over 10 % with the
//!   delay over [`CLEAN`] (loss from a queue, not from a lossy radio), while
//!   the queue is not already draining (shorter than at the last report, or
//!   `W` under 90 % of the rate that arrives, as after a decrease): `W`
//!   becomes 0.85 of the rate that arrives (GCC's β), at most halving and at
//!   least cutting by 15 %. The rate that arrived is the link's capacity.
//! - *clean*: delay under [`CLEAN`], whatever the loss: `W` grows by
//!   1 kbit/s each second. For 30 s after an overuse, `W` stays under 90 %
//!   of the capacity, and grows no further than the packet time in use can
//!   spend (so a shorter one is not tried on a link that just proved too
//!   slow): a voice call needs no more, and a queue that comes and goes
//!   costs the jitter buffer time-stretching. After that it probes, by
//!   0.3 kbit/s each second past 90 % of the old capacity, and 1 kbit/s
//!   again once 10 % past it with no queue (a faster path).
//! - otherwise hold.
//!
//! Loss with no queue behind it is met with redundancy, not less rate: a
//! lower rate would not make it go away. A queue too short to show 20 ms of
//! delay is therefore not seen as congestion. Until there is a delay to go
//! by (the first feedback, or the first round-trip time) the controller
//! holds.
//!
//! Redundancy comes two ways. Where the far end takes RFC 2198 `red`, each
//! packet also carries a copy of the frame before it (of the two before it
//! over [`DEEP_LOSS`]), as WebRTC does for Opus: a frame is then lost only
//! with both its packets, 1 % of frames at 10 % random loss, and what
//! arrives is the frame as coded, not a lesser copy. It doubles the media
//! rate, so it is used only on a path that shows no queue (the loss is the
//! path's) and, if it was ever overused, whose capacity then leaves room for
//! the copies, from the first report that takes the loss over [`RED_LOSS`]
//! until [`RED_MEMORY`] after the last. The loss is a mean over reports of
//! each report's net loss (by the cumulative count, which a packet that only
//! came late takes back), so that reordering is not taken for loss.
//! Otherwise Opus's in-band FEC sizes its redundancy to the expected loss
//! (RFC 7587 §3.1.1), at a fraction of the rate and of the quality.
//!
//! From `W` come the packet time and the bitrate: the shortest packet time
//! of 20, 40 and 60 ms that leaves Opus at least [`GOOD_BITRATE`] after the
//! headers (40 bytes a packet over IPv4: 16 kbit/s at 20 ms, 8 at 40 ms,
//! 5.3 at 60 ms), and Opus gets what is left, within its bounds. A slow
//! link thus costs delay (a longer packet) before it costs much quality.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proto::rtp::feedback::Delivery;

/// Queuing delay above which the sender is overusing the path.
pub const OVERUSE: Duration = Duration::from_millis(50);
/// Queuing delay below which the path is clean and the rate may grow.
pub const CLEAN: Duration = Duration::from_millis(20);
/// The least Opus bitrate worth a shorter packet time.
pub const GOOD_BITRATE: u32 = 16_000;

/// Loss above which a queue that shows is congestion.
const LOSS_CONGESTED: f64 = 0.10;
/// Reported loss (smoothed over reports) over which packets carry redundant copies.
pub const RED_LOSS: f64 = 0.02;
/// Reported loss (smoothed over reports) over which they carry two.
pub const DEEP_LOSS: f64 = 0.15;
/// How long redundancy stays on after the last report of a loss.
pub const RED_MEMORY: Duration = Duration::from_secs(10);
/// Multiplicative decrease (GCC's β).
const DECREASE: f64 = 0.85;
/// Additive increase, bit/s each second, far from and near the last capacity.
const INCREASE: f64 = 1_000.0;
const INCREASE_NEAR: f64 = 300.0;
/// A queue this much shorter than at the last report is draining.
const DRAINING: Duration = Duration::from_millis(5);
/// Going to a shorter packet time takes this much more than [`GOOD_BITRATE`].
const HYSTERESIS: u32 = 2_000;
/// The packet times to choose from, shortest (the clean path's) first.
const FRAME_MS: [u32; 3] = [20, 40, 60];
/// RTP's fixed header.
const RTP_HEADER: u32 = 12;
/// How far back the delay minimum looks, in buckets.
const BASE_BUCKET: Duration = Duration::from_secs(10);
const BASE_BUCKETS: usize = 6;
/// Feedback closer together than this gives no rate.
const MIN_RATE_INTERVAL: Duration = Duration::from_millis(200);
/// A gap in the reports longer than this does not count as time to grow in.
const MAX_STEP: Duration = Duration::from_secs(2);
/// How long the rate that arrived at an overuse stands for the capacity.
const CAPACITY_MEMORY: Duration = Duration::from_secs(30);
/// The share of a remembered capacity the rate may use.
const HEADROOM: f64 = 0.9;
/// `W` under this share of the rate arriving: the queue is draining.
const UNDER: f64 = 0.9;

/// What the controller adapts within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    /// Opus's bitrate on a clean path, and the most it gets, in bit/s.
    pub max_bitrate: u32,
    /// The least Opus bitrate.
    pub min_bitrate: u32,
    /// IP and UDP headers of each packet: 28 over IPv4, 48 over IPv6.
    pub ip_udp_bytes: u32,
}

impl RateConfig {
    /// Up to `max_bitrate`, down to 8 kbit/s, over IPv4.
    pub fn new(max_bitrate: u32) -> Self {
        RateConfig {
            max_bitrate,
            min_bitrate: 8_000,
            ip_udp_bytes: 28,
        }
    }
}

/// What the encoder should do now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// Opus's target bitrate, bit/s.
    pub bitrate: u32,
    /// Packet time, ms.
    pub frame_ms: u32,
    /// The loss the FEC is sized for, 0 to 1.
    pub expected_loss: f64,
    /// How many earlier frames each packet should carry (RFC 2198), 0 to 2.
    pub redundancy: usize,
}

impl Setting {
    /// The setting for a stream that can (`red`) or cannot send RFC 2198
    /// redundancy: without it, no copies; with copies, no in-band FEC,
    /// which would only repeat them at a lower quality.
    pub fn with_red(self, red: bool) -> Setting {
        match self.redundancy {
            0 => self,
            _ if !red => Setting {
                redundancy: 0,
                ..self
            },
            _ => Setting {
                expected_loss: 0.0,
                ..self
            },
        }
    }
}

/// What the controller makes of the path, for statistics and tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    /// The media's bit rate on the wire it aims at, headers included.
    pub wire_target: u32,
    /// The queue's delay as last measured.
    pub queuing_delay: Option<Duration>,
    /// Our stream's rate on arrival, headers included, as last measured.
    pub receive_rate: Option<u32>,
    /// The share of packets lost, as last reported.
    pub loss: f64,
    /// Decreases so far.
    pub decreases: u32,
}

/// Adapts one Opus stream's rate to its path; see the module's doc.
#[derive(Debug, Clone)]
pub struct RateController {
    config: RateConfig,
    wire: f64,
    frame_ms: u32,
    loss: f64,
    delay_base: MinWindow,
    rtt_base: MinWindow,
    feedback_seen: bool,
    queue: Option<Duration>,
    last_queue: Option<Duration>,
    last_delivery: Option<Delivery>,
    receive_rate: Option<f64>,
    /// The rate that arrived at the last overuse, and when.
    capacity: Option<(f64, Instant)>,
    last_step: Option<Instant>,
    decreases: u32,
    /// Copies each packet carries, and until when at least.
    redundancy: usize,
    lossy_until: Option<Instant>,
    /// The reported loss, smoothed over reports: an early report on a
    /// handful of packets says little of how deep the loss is.
    loss_mean: f64,
}

impl RateController {
    /// A controller that starts at the clean path's setting: the most
    /// bitrate in 20 ms packets.
    pub fn new(config: RateConfig) -> Self {
        let mut controller = RateController {
            config,
            wire: 0.0,
            frame_ms: FRAME_MS[0],
            loss: 0.0,
            delay_base: MinWindow::default(),
            rtt_base: MinWindow::default(),
            feedback_seen: false,
            queue: None,
            last_queue: None,
            last_delivery: None,
            receive_rate: None,
            capacity: None,
            last_step: None,
            decreases: 0,
            redundancy: 0,
            lossy_until: None,
            loss_mean: 0.0,
        };
        controller.wire = controller.max_wire();
        controller
    }

    /// An RTCP receiver report about our stream arrived at `now`: its
    /// fraction lost, and, from the second report on, the share lost since
    /// the previous one by the cumulative count (`net_loss`, which is below
    /// 0 when packets counted lost came late:
    /// [`proto::stream::StreamEvent::Report`]). Redundancy goes by the net
    /// loss where it is known: a reordering path raises the fraction lost
    /// with packets that only come a report late, and takes them back in
    /// the net loss of the next.
    pub fn on_report(
        &mut self,
        now: Instant,
        fraction_lost: f64,
        net_loss: Option<f64>,
        rtt: Option<Duration>,
    ) {
        self.loss = fraction_lost.clamp(0.0, 1.0);
        let loss = net_loss.map_or(self.loss, |net| net.clamp(-1.0, 1.0));
        self.loss_mean += 0.5 * (loss - self.loss_mean);
        if self.loss_mean > RED_LOSS {
            self.lossy_until = Some(now + RED_MEMORY);
        }
        if let Some(rtt) = rtt {
            let micros = rtt.as_micros() as i64;
            self.rtt_base.push(now, micros);
            if !self.feedback_seen {
                self.set_queue(self.rtt_base.above(micros));
                self.control(now);
            }
        }
    }

    /// The far end's delivery feedback arrived at `now` (it follows the
    /// report of the same RTCP packet, whose loss it then uses).
    pub fn on_feedback(&mut self, now: Instant, delivery: &Delivery) {
        self.feedback_seen = true;
        if let Some(delay) = delivery.delay_us {
            self.delay_base.push(now, delay);
            self.set_queue(self.delay_base.above(delay));
        }
        match self.last_delivery {
            Some(last) if delivery.at < last.at + MIN_RATE_INTERVAL => {}
            Some(last) => {
                let packets = delivery.packets.saturating_sub(last.packets);
                let bytes = delivery.bytes.saturating_sub(last.bytes)
                    + packets * u64::from(self.config.ip_udp_bytes);
                let seconds = (delivery.at - last.at).as_secs_f64();
                self.receive_rate = Some(bytes as f64 * 8.0 / seconds);
                self.last_delivery = Some(*delivery);
            }
            None => self.last_delivery = Some(*delivery),
        }
        self.control(now);
    }

    /// The encoder's setting now.
    pub fn setting(&self) -> Setting {
        let bitrate = (self.wire - self.header_rate(self.frame_ms)).round() as u32;
        Setting {
            bitrate: bitrate.clamp(self.config.min_bitrate, self.config.max_bitrate),
            frame_ms: self.frame_ms,
            expected_loss: self.loss,
            redundancy: self.redundancy,
        }
    }

    pub fn status(&self) -> Status {
        Status {
            wire_target: self.wire.round() as u32,
            queuing_delay: self.queue,
            receive_rate: self.receive_rate.map(|r| r.round() as u32),
            loss: self.loss,
            decreases: self.decreases,
        }
    }

    fn set_queue(&mut self, queue: Duration) {
        self.last_queue = self.queue;
        self.queue = Some(queue);
    }

    /// Copies per packet: while a loss was reported lately, on a path with
    /// no queue, as many as the worst loss asks for (until it has been gone
    /// for [`RED_MEMORY`]) and the link's last known capacity has room for.
    fn choose_redundancy(&mut self, now: Instant) {
        let lossy = self.lossy_until.is_some_and(|until| now < until);
        let wanted = match self.loss_mean {
            l if l > DEEP_LOSS => 2,
            l if l > RED_LOSS => 1,
            _ => 0,
        }
        .max(self.redundancy)
        .max(1);
        // With the copies, the rate must fit what the link was last found
        // to carry.
        let fits = |copies: usize| {
            self.capacity
                .is_none_or(|(capacity, _)| self.rate_with(copies) <= HEADROOM * capacity)
        };
        let room = self.queue.is_some_and(|q| q < CLEAN);
        self.redundancy = match (1..=wanted).rev().find(|&n| fits(n)) {
            Some(n) if lossy && room => n,
            _ => 0,
        };
    }

    /// Our media's rate on the wire with its redundant copies: each copy
    /// adds the payload again and a 4-byte block header.
    fn sent_rate(&self) -> f64 {
        self.rate_with(self.redundancy)
    }

    /// Our media's rate on the wire with `copies` of each frame.
    fn rate_with(&self, copies: usize) -> f64 {
        let headers = self.header_rate(self.frame_ms);
        let copy = (self.wire - headers).max(0.0) + 32_000.0 / f64::from(self.frame_ms);
        self.wire + copies as f64 * copy
    }

    fn control(&mut self, now: Instant) {
        let step = self
            .last_step
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(MAX_STEP);
        self.last_step = Some(now);
        let draining = match (self.queue, self.last_queue) {
            (Some(q), Some(last)) => q + DRAINING < last,
            _ => false,
        } || self
            .receive_rate
            .is_some_and(|r| self.sent_rate() < UNDER * r);
        // With no delay to go by yet, hold.
        let Some(queue) = self.queue else {
            return;
        };
        let overuse =
            !draining && (queue > OVERUSE || (self.loss > LOSS_CONGESTED && queue > CLEAN));
        // Loss with no queue is the path's, not ours: it does not stop growth.
        let clean = queue < CLEAN;
        let mut most = self.max_wire();
        if overuse {
            // What arrived of the media itself, without its copies.
            let arrived = self
                .receive_rate
                .map_or(self.wire, |r| r * self.wire / self.sent_rate());
            self.wire = (DECREASE * arrived).clamp(self.wire / 2.0, DECREASE * self.wire);
            self.capacity = Some((arrived, now));
            self.decreases += 1;
        } else if clean {
            let near = self.capacity.is_some_and(|(c, _)| self.wire >= 0.9 * c);
            let slope = if near { INCREASE_NEAR } else { INCREASE };
            let before = self.wire;
            self.wire += slope * step.as_secs_f64();
            match self.capacity {
                Some((capacity, at)) if now.saturating_duration_since(at) <= CAPACITY_MEMORY => {
                    // What the packet time in use can spend, and what the
                    // link can carry, and no more.
                    let spend =
                        f64::from(self.config.max_bitrate) + self.header_rate(self.frame_ms);
                    most = spend.min(HEADROOM * capacity).max(before);
                }
                Some((capacity, _)) if self.wire > 1.1 * capacity => {
                    // Well past the old capacity with no queue: a faster path.
                    self.capacity = None;
                }
                _ => {}
            }
        }
        self.wire = self.wire.clamp(self.min_wire(), most);
        self.choose_frame();
        self.choose_redundancy(now);
    }

    /// The shortest packet time that leaves Opus a good bitrate.
    fn choose_frame(&mut self) {
        let current = self.frame_ms;
        self.frame_ms = FRAME_MS
            .into_iter()
            .find(|&ms| {
                let need = GOOD_BITRATE + if ms < current { HYSTERESIS } else { 0 };
                self.wire - self.header_rate(ms) >= f64::from(need)
            })
            .unwrap_or(FRAME_MS[FRAME_MS.len() - 1]);
    }

    /// Headers' bit rate at a packet time.
    fn header_rate(&self, frame_ms: u32) -> f64 {
        f64::from((self.config.ip_udp_bytes + RTP_HEADER) * 8 * 1000) / f64::from(frame_ms)
    }

    fn max_wire(&self) -> f64 {
        f64::from(self.config.max_bitrate) + self.header_rate(FRAME_MS[0])
    }

    fn min_wire(&self) -> f64 {
        f64::from(self.config.min_bitrate) + self.header_rate(FRAME_MS[FRAME_MS.len() - 1])
    }
}

/// The minimum of a signal over the last minute, in buckets of 10 s, so that
/// a clock drifting slowly or a path that changes is followed.
#[derive(Debug, Clone, Default)]
struct MinWindow {
    buckets: VecDeque<(Instant, i64)>,
}

impl MinWindow {
    fn push(&mut self, now: Instant, value: i64) {
        match self.buckets.back_mut() {
            Some((start, min)) if now.saturating_duration_since(*start) < BASE_BUCKET => {
                *min = (*min).min(value);
            }
            _ => self.buckets.push_back((now, value)),
        }
        while self.buckets.len() > BASE_BUCKETS {
            self.buckets.pop_front();
        }
    }

    /// How far `value` is above the minimum, as a duration of microseconds.
    fn above(&self, value: i64) -> Duration {
        let min = self.buckets.iter().map(|b| b.1).min().unwrap_or(value);
        Duration::from_micros(value.saturating_sub(min).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(delay_ms: i64, packets: u64, bytes: u64, at_ms: u64) -> Delivery {
        Delivery {
            delay_us: Some(delay_ms * 1000),
            packets,
            bytes,
            at: Duration::from_millis(at_ms),
        }
    }

    /// A controller fed once a second by a path of capacity `capacity`
    /// bit/s (headers included) with a queue of `queue_ms` at most: a
    /// fluid model of the link, enough to check the law's shape.
    fn fluid(capacity: f64, queue_ms: f64, seconds: u64) -> Vec<(Setting, Status, f64)> {
        let t0 = Instant::now();
        let mut rc = RateController::new(RateConfig::new(24_000));
        let (mut queue_bits, mut packets, mut bytes) = (0.0f64, 0u64, 0u64);
        let mut out = Vec::new();
        for s in 1..=seconds {
            let setting = rc.setting();
            let pps = 1000.0 / f64::from(setting.frame_ms);
            let copies = setting.redundancy as f64;
            let offered =
                f64::from(setting.bitrate) * (1.0 + copies) + pps * (40.0 + 4.0 * copies) * 8.0;
            // The interval's fastest packet saw the shorter of its queues.
            let before = queue_bits;
            queue_bits += offered - capacity;
            let max = capacity * queue_ms / 1000.0;
            let lost = (queue_bits - max).max(0.0) / offered;
            queue_bits = queue_bits.clamp(0.0, max);
            let through = offered.min(capacity);
            packets += (pps * (1.0 - lost)) as u64;
            bytes += (through / 8.0) as u64 - (pps * (1.0 - lost) * 28.0) as u64;
            let now = t0 + Duration::from_secs(s);
            rc.on_report(now, lost, None, None);
            let delay = (before.min(queue_bits) / capacity * 1000.0) as i64;
            rc.on_feedback(now, &delivery(40 + delay, packets, bytes, s * 1000));
            out.push((rc.setting(), rc.status(), offered));
        }
        out
    }

    #[test]
    fn a_clean_path_keeps_the_most_bitrate_in_20_ms() {
        let run = fluid(1_000_000.0, 200.0, 60);
        for (setting, status, _) in &run {
            assert_eq!(setting.bitrate, 24_000, "{status:?}");
            assert_eq!(setting.frame_ms, 20);
            assert_eq!(status.decreases, 0);
        }
    }

    #[test]
    fn a_32_kbit_link_gets_longer_packets_and_stays_under_its_rate() {
        let run = fluid(32_000.0, 250.0, 60);
        let settled = run
            .iter()
            .position(|(_, _, offered)| *offered <= 32_000.0)
            .unwrap_or_else(|| panic!("never adapts: {run:#?}"));
        assert!(settled <= 4, "{run:?}");
        let after = &run[settled..];
        // Once the first queue has drained (150 ms a second).
        for (setting, status, _) in &after[2..] {
            // A probe for a faster path may queue a little, never overflow.
            assert!(status.loss == 0.0, "{setting:?} {status:?}");
            let queue = status.queuing_delay.expect("measured");
            assert!(queue < Duration::from_millis(100), "{status:?}");
            assert!(setting.bitrate >= 14_000, "{setting:?}");
        }
        // Its loss comes from the queue: no copies to make it worse.
        assert!(run.iter().all(|r| r.0.redundancy == 0), "{run:?}");
        let mean = after.iter().map(|r| r.2).sum::<f64>() / after.len() as f64;
        assert!((27_000.0..=32_000.0).contains(&mean), "{mean}");
        let longer = after.iter().filter(|r| r.0.frame_ms >= 40).count();
        assert!(
            longer * 10 >= after.len() * 9,
            "{longer} of {}",
            after.len()
        );
    }

    /// The path of a call at `loss` with no queue: its settings after each
    /// report, one a second for `seconds`, then `clean` more seconds with
    /// no loss.
    fn lossy_path(loss: f64, seconds: u64, clean: u64) -> Vec<Setting> {
        let t0 = Instant::now();
        let mut rc = RateController::new(RateConfig::new(24_000));
        (1..=seconds + clean)
            .map(|s| {
                let now = t0 + Duration::from_secs(s);
                let lost = if s <= seconds { loss } else { 0.0 };
                rc.on_report(now, lost, Some(lost), None);
                rc.on_feedback(
                    now,
                    &delivery(40 + (s % 3) as i64 * 5, 40 * s, 4_000 * s, s * 1000),
                );
                rc.setting()
            })
            .collect()
    }

    #[test]
    fn random_loss_without_a_queue_is_met_with_redundancy_not_less_rate() {
        let run = lossy_path(0.2, 30, 0);
        let setting = run[run.len() - 1];
        assert_eq!(setting.bitrate, 24_000);
        assert_eq!(setting.frame_ms, 20);
        assert!((setting.expected_loss - 0.2).abs() < 1e-9);
        // From the first report, a copy; two once the loss proves deep.
        assert_eq!(run[0].redundancy, 1);
        assert_eq!(setting.redundancy, 2);
        // Where the far end takes no RFC 2198, in-band FEC instead; with
        // copies, no FEC on top of them.
        let fec = setting.with_red(false);
        assert_eq!((fec.redundancy, fec.expected_loss), (0, 0.2));
        let red = setting.with_red(true);
        assert_eq!((red.redundancy, red.expected_loss), (2, 0.0));
    }

    #[test]
    fn redundancy_lasts_ten_seconds_past_the_last_loss_and_no_longer() {
        let run = lossy_path(0.05, 10, 15);
        assert!(run[..10].iter().all(|s| s.redundancy == 1), "{run:?}");
        // Reports at 11..=19 s are within 10 s of the last loss at 10 s.
        assert!(run[10..19].iter().all(|s| s.redundancy == 1), "{run:?}");
        assert!(run[20..].iter().all(|s| s.redundancy == 0), "{run:?}");
        // A loss under 2 % is left to in-band FEC.
        assert!(lossy_path(0.01, 10, 0).iter().all(|s| s.redundancy == 0));
    }

    /// On a reordering path a packet that comes a report late counts as
    /// lost in one report's fraction, and comes back in the next report's
    /// net loss: no copies for that.
    #[test]
    fn reordering_is_not_loss_to_redundancy() {
        let t0 = Instant::now();
        let mut rc = RateController::new(RateConfig::new(24_000));
        for s in 1..=30u64 {
            let now = t0 + Duration::from_secs(s);
            let (fraction, net) = if s % 2 == 1 {
                (0.04, 0.04)
            } else {
                (0.0, -0.04)
            };
            rc.on_report(now, fraction, Some(net), None);
            rc.on_feedback(now, &delivery(40, 50 * s, 3_000 * s, s * 1000));
            assert_eq!(rc.setting().redundancy, 0, "at {s} s: {:?}", rc.status());
        }
    }

    #[test]
    fn round_trip_time_stands_in_for_feedback() {
        let t0 = Instant::now();
        let mut rc = RateController::new(RateConfig::new(24_000));
        rc.on_report(t0, 0.0, None, Some(Duration::from_millis(60)));
        rc.on_report(
            t0 + Duration::from_secs(5),
            0.0,
            None,
            Some(Duration::from_millis(260)),
        );
        assert_eq!(rc.status().decreases, 1);
        assert!(rc.status().wire_target < 35_000, "{:?}", rc.status());
        // No delay at all to go by (the report before the first feedback,
        // or before an RTT): loss sizes the FEC, nothing else.
        let mut blind = RateController::new(RateConfig::new(24_000));
        for s in 0..4 {
            blind.on_report(t0 + Duration::from_secs(s), 0.3, None, None);
        }
        assert_eq!(blind.status().decreases, 0);
        assert!((blind.setting().expected_loss - 0.3).abs() < 1e-9);
    }

    #[test]
    fn min_window_forgets_after_a_minute() {
        let t0 = Instant::now();
        let mut w = MinWindow::default();
        w.push(t0, 100);
        for s in 1..=70u64 {
            w.push(t0 + Duration::from_secs(s), 200);
        }
        assert_eq!(w.above(250), Duration::from_micros(50));
    }
}
