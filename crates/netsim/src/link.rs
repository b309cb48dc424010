//! One direction of an emulated network path, in the sans-IO shape: packets
//! and the time go in through [`Link::send`], deliveries come out of
//! [`Link::poll_deliver`] once the clock reaches [`Link::poll_timeout`].

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::{ConfigError, Jitter, LinkConfig};
use crate::rng::Rng;

/// Something a link can carry: it needs a size on the wire (for the rate
/// cap) and must be cloneable (for duplication).
pub trait Payload: Clone {
    /// The size in bytes this packet occupies on the link.
    fn wire_len(&self) -> usize;
}

impl Payload for Vec<u8> {
    fn wire_len(&self) -> usize {
        self.len()
    }
}

impl Payload for Box<[u8]> {
    fn wire_len(&self) -> usize {
        self.len()
    }
}

/// A datagram with metadata the link carries along but does not count, such
/// as the address a relay should forward it to.
impl<M: Clone> Payload for (M, Vec<u8>) {
    fn wire_len(&self) -> usize {
        self.1.len()
    }
}

/// A packet leaving the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered<T = Vec<u8>> {
    /// The packet as it was sent.
    pub packet: T,
    /// When it was given to [`Link::send`].
    pub sent_at: Instant,
    /// When it was due to arrive (at or before the `now` it was polled with).
    pub at: Instant,
    /// Its number on this link: the n-th call to [`Link::send`] is `n - 1`.
    /// Both copies of a duplicated packet share it.
    pub seq: u64,
    /// `true` for the extra copy made by duplication.
    pub duplicate: bool,
}

/// What happened to the packets given to a link.
///
/// At any time `sent + duplicated == delivered + lost + dropped_queue +
/// dropped_overflow + in_flight()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Calls to [`Link::send`].
    pub sent: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Packets handed out by [`Link::poll_deliver`] (copies included).
    pub delivered: u64,
    /// Bytes handed out by [`Link::poll_deliver`].
    pub delivered_bytes: u64,
    /// Packets lost on the wire, by random or bursty loss.
    pub lost: u64,
    /// Packets tail-dropped because the rate cap's queue was full.
    pub dropped_queue: u64,
    /// Packets dropped because the link already held `max_in_flight` packets.
    pub dropped_overflow: u64,
    /// Packets picked by [`crate::Reorder`] to be held back.
    pub held_back: u64,
    /// Packets delivered after a packet that was sent later (measured at
    /// delivery, whatever the cause: reordering or unordered jitter).
    pub reordered: u64,
}

impl LinkStats {
    /// Every packet that will never be delivered.
    pub fn dropped(&self) -> u64 {
        self.lost + self.dropped_queue + self.dropped_overflow
    }
}

/// One direction of a path: delay, jitter, loss, reordering, duplication and
/// a rate cap, driven by the caller's clock and a seeded generator.
///
/// Memory is bounded: at most [`LinkConfig::max_in_flight`] packets are held
/// (queued or propagating), and the rate cap's bookkeeping holds at most
/// `queue_bytes` entries. `now` must not go backwards; an earlier `now` is
/// treated as the latest one seen.
#[derive(Debug, Clone)]
pub struct Link<T = Vec<u8>> {
    config: LinkConfig,
    rngs: Rngs,
    /// Gilbert–Elliott state: `true` when bad.
    bad: bool,
    last_now: Option<Instant>,
    /// When the serializer finishes the last queued packet.
    busy_until: Option<Instant>,
    /// Rate-cap queue: (serialization finish time, bytes counted), in order.
    queue: VecDeque<(Instant, usize)>,
    queued_bytes: usize,
    /// The latest delivery time of an in-order packet (for `keep_order`).
    order_floor: Option<Instant>,
    in_flight: BinaryHeap<Reverse<Entry<T>>>,
    next_seq: u64,
    next_order: u64,
    highest_delivered: Option<u64>,
    stats: LinkStats,
}

impl<T: Payload> Link<T> {
    /// A link with `config`, whose random choices all follow from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            rngs: Rngs::new(seed),
            bad: false,
            last_now: None,
            busy_until: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            order_floor: None,
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            next_order: 0,
            highest_delivered: None,
            stats: LinkStats::default(),
        })
    }

    /// Changes the conditions from now on (a handover, a congested hour).
    /// Packets already in flight keep their delivery times; the burst state
    /// and the queue carry over (the queue is emptied if the cap is removed).
    pub fn set_config(&mut self, config: LinkConfig) -> Result<(), ConfigError> {
        config.validate()?;
        if config.rate.is_none() {
            self.queue.clear();
            self.queued_bytes = 0;
            self.busy_until = None;
        }
        self.config = config;
        Ok(())
    }

    /// The current configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Counters since the link was made.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Packets held by the link, not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Offers a packet to the link at `now`; returns its sequence number
    /// (see [`Delivered::seq`]). Whether and when it arrives is decided here,
    /// from the seeded generator; [`Link::poll_timeout`] tells when to look.
    pub fn send(&mut self, now: Instant, packet: T) -> u64 {
        let now = self.observe(now);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.sent += 1;
        if self.config.duplicate > 0.0 && self.rngs.duplicate.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            self.transmit(now, seq, packet.clone(), false);
            self.transmit(now, seq, packet, true);
        } else {
            self.transmit(now, seq, packet, false);
        }
        seq
    }

    /// When the next packet is due, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse(e)| e.at)
    }

    /// The next packet due at or before `now`, earliest first (ties in the
    /// order they were scheduled).
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Delivered<T>> {
        let now = self.observe(now);
        if self.poll_timeout()? > now {
            return None;
        }
        let Reverse(entry) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        self.stats.delivered_bytes += entry.packet.wire_len() as u64;
        match self.highest_delivered {
            Some(h) if entry.seq < h => self.stats.reordered += 1,
            _ => self.highest_delivered = Some(entry.seq),
        }
        Some(Delivered {
            packet: entry.packet,
            sent_at: entry.sent_at,
            at: entry.at,
            seq: entry.seq,
            duplicate: entry.duplicate,
        })
    }

    fn observe(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |last| last.max(now));
        self.last_now = Some(now);
        now
    }

    /// Stages 2 to 5 of [`LinkConfig`] for one copy.
    fn transmit(&mut self, now: Instant, seq: u64, packet: T, duplicate: bool) {
        if self.in_flight.len() >= self.config.max_in_flight {
            self.stats.dropped_overflow += 1;
            return;
        }
        let Some(departure) = self.serialize(now, packet.wire_len()) else {
            self.stats.dropped_queue += 1;
            return;
        };
        if self.lose() {
            self.stats.lost += 1;
            return;
        }
        let jitter = self.jitter();
        let base = clamped_add(departure, self.config.delay, jitter);
        let at = match self.config.reorder {
            Some(r) if r.probability > 0.0 && self.rngs.reorder.chance(r.probability) => {
                self.stats.held_back += 1;
                base + r.extra_delay
            }
            _ if self.config.keep_order => {
                let at = self.order_floor.map_or(base, |floor| floor.max(base));
                self.order_floor = Some(at);
                at
            }
            _ => base,
        };
        let order = self.next_order;
        self.next_order += 1;
        self.in_flight.push(Reverse(Entry {
            at,
            order,
            seq,
            sent_at: now,
            duplicate,
            packet,
        }));
    }

    /// Puts `len` bytes through the rate cap: the time the last bit leaves,
    /// or `None` if the queue is full.
    fn serialize(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let Some(rate) = self.config.rate else {
            return Some(now);
        };
        while let Some(&(finish, bytes)) = self.queue.front() {
            if finish > now {
                break;
            }
            self.queue.pop_front();
            self.queued_bytes -= bytes;
        }
        let cost = len.max(1);
        if self.queued_bytes + cost > rate.queue_bytes {
            return None;
        }
        let start = self.busy_until.map_or(now, |busy| busy.max(now));
        let bits = len as u128 * 8 * 1_000_000_000;
        let nanos = bits.div_ceil(u128::from(rate.bits_per_second));
        let finish = start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.busy_until = Some(finish);
        self.queue.push_back((finish, cost));
        self.queued_bytes += cost;
        Some(finish)
    }

    /// Random loss, then one step of the Gilbert–Elliott chain (the chain
    /// steps once per packet reaching the wire, not with time).
    fn lose(&mut self) -> bool {
        let mut lost = self.config.loss > 0.0 && self.rngs.loss.chance(self.config.loss);
        if let Some(ge) = self.config.burst_loss {
            let p_loss = if self.bad { ge.loss_bad } else { ge.loss_good };
            lost |= self.rngs.burst.chance(p_loss);
            let switch = if self.bad { ge.r } else { ge.p };
            if self.rngs.burst.chance(switch) {
                self.bad = !self.bad;
            }
        }
        lost
    }

    /// A jitter sample in nanoseconds (may be negative).
    fn jitter(&mut self) -> i128 {
        match self.config.jitter {
            Jitter::None => 0,
            Jitter::Uniform(j) => {
                let j = j.as_nanos().min(u128::from(u64::MAX / 2)) as u64;
                i128::from(self.rngs.jitter.below(2 * j + 1)) - i128::from(j)
            }
            Jitter::Normal(sigma) => {
                let x = self.rngs.jitter.normalish() * sigma.as_nanos() as f64;
                x.round() as i128
            }
        }
    }
}

/// `departure + delay + jitter`, never earlier than `departure`.
fn clamped_add(departure: Instant, delay: Duration, jitter: i128) -> Instant {
    let total = (delay.as_nanos() as i128 + jitter).max(0);
    let total = u64::try_from(total).unwrap_or(u64::MAX);
    departure + Duration::from_nanos(total)
}

/// One generator per impairment, so that (for example) adding jitter or
/// reordering does not change which packets are lost.
#[derive(Debug, Clone)]
struct Rngs {
    duplicate: Rng,
    loss: Rng,
    burst: Rng,
    jitter: Rng,
    reorder: Rng,
}

impl Rngs {
    fn new(seed: u64) -> Self {
        Self {
            duplicate: Rng::stream(seed, 1),
            loss: Rng::stream(seed, 2),
            burst: Rng::stream(seed, 3),
            jitter: Rng::stream(seed, 4),
            reorder: Rng::stream(seed, 5),
        }
    }
}

/// A packet in flight, ordered by due time, then by scheduling order.
#[derive(Debug, Clone)]
struct Entry<T> {
    at: Instant,
    order: u64,
    seq: u64,
    sent_at: Instant,
    duplicate: bool,
    packet: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.order == other.order
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RateLimit, Reorder};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn perfect_link_delivers_after_delay() {
        let t0 = Instant::now();
        let mut link = Link::new(LinkConfig::with_delay(ms(30)), 1).unwrap();
        assert_eq!(link.poll_timeout(), None);
        assert_eq!(link.send(t0, vec![1, 2, 3]), 0);
        assert_eq!(link.poll_timeout(), Some(t0 + ms(30)));
        assert_eq!(link.poll_deliver(t0 + ms(29)), None);
        let d = link.poll_deliver(t0 + ms(30)).unwrap();
        assert_eq!(d.packet, vec![1, 2, 3]);
        assert_eq!(
            (d.sent_at, d.at, d.seq, d.duplicate),
            (t0, t0 + ms(30), 0, false)
        );
        assert_eq!(link.poll_deliver(t0 + ms(100)), None);
        assert_eq!(link.stats().delivered_bytes, 3);
    }

    #[test]
    fn time_going_backwards_is_clamped() {
        let t0 = Instant::now();
        let mut link = Link::new(LinkConfig::with_delay(ms(10)), 1).unwrap();
        link.send(t0 + ms(5), vec![0]);
        link.send(t0, vec![1]);
        let a = link.poll_deliver(t0 + ms(20)).unwrap();
        let b = link.poll_deliver(t0 + ms(20)).unwrap();
        assert_eq!((a.seq, b.seq), (0, 1));
        assert_eq!(b.sent_at, t0 + ms(5));
    }

    #[test]
    fn serialization_time_is_size_times_eight_over_rate() {
        let t0 = Instant::now();
        let config = LinkConfig {
            rate: Some(RateLimit {
                bits_per_second: 64_000,
                queue_bytes: 10_000,
            }),
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, 1).unwrap();
        link.send(t0, vec![0; 160]);
        link.send(t0, vec![0; 80]);
        assert_eq!(link.poll_deliver(t0 + ms(100)).unwrap().at, t0 + ms(20));
        assert_eq!(link.poll_deliver(t0 + ms(100)).unwrap().at, t0 + ms(30));
    }

    #[test]
    fn packet_larger_than_queue_is_dropped() {
        let t0 = Instant::now();
        let config = LinkConfig {
            rate: Some(RateLimit {
                bits_per_second: 1_000_000,
                queue_bytes: 100,
            }),
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, 1).unwrap();
        link.send(t0, vec![0; 101]);
        link.send(t0, vec![0; 100]);
        assert_eq!(link.stats().dropped_queue, 1);
        assert_eq!(link.in_flight(), 1);
    }

    #[test]
    fn held_back_packet_is_overtaken() {
        let t0 = Instant::now();
        let config = LinkConfig {
            delay: ms(10),
            reorder: Some(Reorder {
                probability: 1.0,
                extra_delay: ms(50),
            }),
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, 1).unwrap();
        link.send(t0, vec![0]);
        link.set_config(LinkConfig::with_delay(ms(10))).unwrap();
        link.send(t0 + ms(1), vec![1]);
        let first = link.poll_deliver(t0 + ms(100)).unwrap();
        let second = link.poll_deliver(t0 + ms(100)).unwrap();
        assert_eq!((first.seq, second.seq), (1, 0));
        assert_eq!(second.at, t0 + ms(60));
        assert_eq!((link.stats().held_back, link.stats().reordered), (1, 1));
    }

    #[test]
    fn negative_total_delay_is_clamped_to_departure() {
        let t0 = Instant::now();
        let config = LinkConfig {
            delay: ms(1),
            jitter: Jitter::Uniform(ms(50)),
            keep_order: false,
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, 9).unwrap();
        for i in 0..1000 {
            link.send(t0 + ms(i), vec![]);
        }
        while let Some(d) = link.poll_deliver(t0 + ms(2000)) {
            assert!(d.at >= d.sent_at);
        }
    }

    #[test]
    fn payload_with_metadata() {
        let t0 = Instant::now();
        let mut link: Link<(u16, Vec<u8>)> = Link::new(LinkConfig::default(), 1).unwrap();
        link.send(t0, (5060, vec![1, 2]));
        let d = link.poll_deliver(t0).unwrap();
        assert_eq!(d.packet, (5060, vec![1, 2]));
        assert_eq!(link.stats().delivered_bytes, 2);
    }
}
