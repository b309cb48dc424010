//! One RTP audio stream, both directions (RFC 3550): packetising what the
//! encoder makes, validating and accounting for what arrives, and the RTCP
//! that goes with it (SR/RR with SDES, BYE, round-trip time), and, when
//! asked, delivery feedback for a sender that adapts its rate
//! ([`crate::rtp::feedback`]) and redundant audio for a lossy path
//! ([`crate::rtp::red`]).
//!
//! Sans-IO: datagrams, the time (`Instant`) and the wall clock (`SystemTime`,
//! for RTCP's NTP fields) go in; datagrams to send, events and the next
//! deadline come out. Where datagrams go is the caller's business
//! (symmetric RTP: back to where the far end's packets come from).

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use crate::rtp::feedback::{self, Delivery, DeliveryReport, DeliveryTracker, SendHistory};
use crate::rtp::header::{Demux, RtpPacket, demux};
use crate::rtp::red::{self, RedBlock, RedPayload};
use crate::rtp::rtcp::{
    App, Bye, NtpTime, ReceiverReport, ReportBlock, RtcpPacket, SdesChunk, SdesItem, SdesType,
    SenderReport, parse_compound, write_compound,
};
use crate::rtp::stats::{ReceiverStats, RtpClock, SenderStats, round_trip_time};
use crate::rtp::{Pt, SeqNo, Ssrc};

/// At most this many datagrams wait to be sent, and events to be read: a
/// caller that stops polling loses the oldest, never memory.
const MAX_QUEUED: usize = 256;
/// The largest RTCP compound this stream writes.
const MAX_RTCP: usize = 512;
/// How long an early report waits after a gap in the far end's sequence
/// numbers, for packets that were only overtaken.
const EARLY_WAIT: Duration = Duration::from_millis(60);
/// The most earlier frames a packet carries under RFC 2198 redundancy.
pub const MAX_REDUNDANCY: usize = 2;
/// The largest media payload kept for redundancy; larger ones are sent
/// without their copies (RFC 2198's block length has 10 bits).
const MAX_REDUNDANT_PAYLOAD: usize = red::MAX_BLOCK_LEN;

/// How a stream sends.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub clock_rate: u32,
    pub pt: Pt,
    pub ssrc: Ssrc,
    pub first_seq: SeqNo,
    pub first_timestamp: u32,
    /// The RTCP CNAME (RFC 3550 §6.5.1), e.g. `ipphone@host`.
    pub cname: String,
    /// Mean interval between RTCP reports; each is randomised to 0.5-1.5
    /// times it (RFC 3550 §6.3.1). 5 s is RFC 3550's recommended minimum; a
    /// sender that adapts its rate needs the far end's reports sooner, as
    /// RFC 4585 (AVPF) allows: 1 s costs about 1.2 kbit/s each way.
    pub rtcp_interval: Duration,
    /// Whether each report also says how the far end's stream arrives
    /// (one-way delay, rate: [`crate::rtp::feedback`]), for a far end that
    /// adapts its rate to it.
    pub feedback: bool,
    /// Seeds the randomised intervals, so a scenario replays exactly.
    pub seed: u64,
}

/// Something the far end did.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A media packet of the far end's stream, in arrival order. A RED
    /// packet (RFC 2198) comes out as its blocks, each its own event: the
    /// redundant copies first, oldest first, then the primary.
    Media {
        /// Extended sequence number (RFC 3550 A.1); a redundant block's is
        /// implied by its place (see [`crate::rtp::red`]).
        seq: u64,
        /// Extended timestamp: the 32-bit one unwrapped.
        timestamp: u64,
        marker: bool,
        pt: Pt,
        payload: Vec<u8>,
        /// A copy of a frame sent before, carried in a later RED packet: it
        /// only fills a gap, and arrives later than the frame was due.
        redundant: bool,
    },
    /// The far end reported how our stream reaches it.
    Report {
        /// Share of our packets lost since its previous report, 0 to 1.
        fraction_lost: f64,
        cumulative_lost: i32,
        /// Its interarrival jitter of our stream, in our clock's ticks.
        jitter: u32,
        rtt: Option<Duration>,
        /// The share lost since its previous report, from the change in the
        /// cumulative count: negative when packets counted lost then came
        /// late, so that over reports reordering nets out, where
        /// `fraction_lost` (never under 0) counts it as loss. `None` on the
        /// first report.
        net_loss: Option<f64>,
    },
    /// The far end's delivery feedback on our stream (its `IPFB` APP
    /// packet, [`crate::rtp::feedback`]): comes after the
    /// [`StreamEvent::Report`] of the same compound packet.
    Feedback(Delivery),
    /// The far end left (RTCP BYE).
    Bye { reason: Option<String> },
}

/// A datagram to send; `rtcp` ones go to the RTCP port unless rtcp-mux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub rtcp: bool,
    pub data: Vec<u8>,
}

/// What a datagram turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Media,
    Rtcp,
    /// STUN, DTLS, garbage, a packet of another payload type or of a source
    /// still on probation: ignored, as RFC 3550 and RFC 7983 ask.
    Ignored,
}

/// Counters of the stream so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamStats {
    pub packets_sent: u64,
    pub payload_bytes_sent: u64,
    pub packets_received: u64,
    pub payload_bytes_received: u64,
    /// Packets of the far end's stream that never arrived (RFC 3550 A.3).
    pub lost: i64,
    /// Interarrival jitter of the far end's stream, in its clock's ticks.
    pub jitter: u32,
    pub rtt: Option<Duration>,
    /// Datagrams that were not ours to use.
    pub ignored: u64,
}

/// One RTP stream: ours out, theirs in.
pub struct MediaStream {
    config: StreamConfig,
    clock: RtpClock,
    seq: SeqNo,
    timestamp: u32,
    marker_next: bool,
    sender: SenderStats,
    receiver: Option<ReceiverStats>,
    last_timestamp: Option<u64>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<StreamEvent>,
    next_report: Instant,
    /// With feedback: a loss seen from this moment on brings the next
    /// report forward (RFC 4585's early feedback), once an interval.
    early_from: Instant,
    epoch: Instant,
    delivery: DeliveryTracker,
    history: SendHistory,
    rng: u64,
    stats: StreamStats,
    closed: bool,
    red: Redundancy,
    /// The far end's last report on our stream: cumulative lost, extended
    /// highest sequence number.
    last_reported: Option<(i32, u32)>,
}

/// RFC 2198 redundancy, both ways.
#[derive(Default)]
struct Redundancy {
    /// The payload type to send RED with, and the one it arrives with.
    send_pt: Option<Pt>,
    recv_pt: Option<Pt>,
    /// How many earlier frames each packet carries now.
    depth: usize,
    /// The last media packets sent, the newest last: sequence number,
    /// timestamp, payload. Their buffers are reused.
    sent: VecDeque<(SeqNo, u32, Vec<u8>)>,
    /// Where a RED packet is put together.
    scratch: Vec<u8>,
}

impl MediaStream {
    pub fn new(config: StreamConfig, now: Instant) -> Self {
        let mut stream = MediaStream {
            clock: RtpClock::new(now, config.clock_rate),
            seq: config.first_seq,
            timestamp: config.first_timestamp,
            marker_next: true,
            sender: SenderStats::new(),
            receiver: None,
            last_timestamp: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_report: now,
            early_from: now,
            epoch: now,
            delivery: DeliveryTracker::new(now),
            history: SendHistory::new(config.clock_rate),
            rng: config.seed | 1,
            stats: StreamStats::default(),
            closed: false,
            red: Redundancy::default(),
            last_reported: None,
            config,
        };
        // The first report goes out early, at half the interval (§6.2).
        stream.next_report = now + stream.config.rtcp_interval / 2;
        stream
    }

    /// Sends one encoded frame that holds `ticks` of audio: with the frames
    /// sent before it when redundancy is on ([`MediaStream::set_redundancy`]).
    pub fn send_media(&mut self, payload: &[u8], ticks: u32) {
        let (pt, marker, timestamp) = (self.config.pt, self.marker_next, self.timestamp);
        if !self.closed {
            self.history.on_sent(self.seq, ticks);
        }
        match self.red.send_pt {
            Some(red_pt) if self.red.depth > 0 => {
                let mut scratch = std::mem::take(&mut self.red.scratch);
                match self.red_payload(payload, &mut scratch) {
                    Some(n) => self.send_other(red_pt, marker, timestamp, &scratch[..n]),
                    None => self.send_other(pt, marker, timestamp, payload),
                }
                self.red.scratch = scratch;
            }
            _ => self.send_other(pt, marker, timestamp, payload),
        }
        if self.red.send_pt.is_some() {
            self.remember_sent(payload, timestamp);
        }
        self.marker_next = false;
        self.timestamp = self.timestamp.wrapping_add(ticks);
    }

    /// Sets the payload types of RFC 2198 redundancy: `send` to send it with
    /// (the far end's number), `recv` to take it in with (ours). `None`
    /// where it was not agreed on.
    pub fn set_red(&mut self, send: Option<Pt>, recv: Option<Pt>) {
        self.red.send_pt = send;
        self.red.recv_pt = recv;
    }

    /// How many frames sent before each packet it also carries (RFC 2198),
    /// up to [`MAX_REDUNDANCY`]; 0 sends plain packets. Takes effect only
    /// with a payload type to send it with ([`MediaStream::set_red`]).
    pub fn set_redundancy(&mut self, depth: usize) {
        self.red.depth = depth.min(MAX_REDUNDANCY);
    }

    /// How many earlier frames each packet carries now.
    pub fn redundancy(&self) -> usize {
        if self.red.send_pt.is_some() {
            self.red.depth
        } else {
            0
        }
    }

    /// The RTP timestamp the next frame will carry: now, in the stream's clock.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Sends a packet of another payload type on this stream, such as an RFC
    /// 4733 telephone event: same SSRC and sequence numbers, its own
    /// timestamp and marker.
    pub fn send_other(&mut self, pt: Pt, marker: bool, timestamp: u32, payload: &[u8]) {
        if self.closed {
            return;
        }
        let mut packet = RtpPacket::new(pt, self.seq, timestamp, self.config.ssrc, payload);
        packet.marker = marker;
        let mut data = vec![0u8; packet.encoded_len()];
        if packet.write(&mut data).is_ok() {
            self.queue(Transmit { rtcp: false, data });
            self.sender.on_sent(payload.len());
            self.stats.packets_sent += 1;
            self.stats.payload_bytes_sent += payload.len() as u64;
        }
        self.seq = self.seq.next();
    }

    /// Sends nothing for `ticks` of audio (silence under DTX); the next packet
    /// starts a talkspurt and carries the marker bit (RFC 3551 §4.1).
    pub fn skip(&mut self, ticks: u32) {
        self.history.on_skipped(ticks);
        self.timestamp = self.timestamp.wrapping_add(ticks);
        self.marker_next = true;
    }

    /// Takes in one datagram from the media port (or the RTCP port).
    pub fn handle_datagram(&mut self, now: Instant, wall: SystemTime, data: &[u8]) -> Received {
        match demux(data) {
            Demux::Rtp => self.handle_rtp(now, data),
            Demux::Rtcp => self.handle_rtcp(wall, data),
            _ => self.ignore(),
        }
    }

    /// Sends the RTCP report when it is due.
    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        if !self.closed && now >= self.next_report {
            self.report(wall, None);
            let factor = 0.5 + self.random();
            self.next_report = now + self.config.rtcp_interval.mul_f64(factor);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.closed).then_some(self.next_report)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        self.events.pop_front()
    }

    /// Ends the stream: a last report with a BYE (RFC 3550 §6.6).
    pub fn close(&mut self, wall: SystemTime, reason: &str) {
        if !self.closed {
            self.report(wall, Some(reason));
            self.closed = true;
        }
    }

    pub fn stats(&self) -> StreamStats {
        let mut stats = self.stats;
        if let Some(r) = &self.receiver {
            stats.lost = r.seq().lost();
            stats.jitter = r.jitter();
        }
        stats
    }

    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    fn handle_rtp(&mut self, now: Instant, data: &[u8]) -> Received {
        let Ok(packet) = RtpPacket::parse(data) else {
            return self.ignore();
        };
        if packet.ssrc == self.config.ssrc {
            // Our own packets looped back: not the far end's.
            return self.ignore();
        }
        let arrival = self.clock.ticks(now);
        let receiver = match &mut self.receiver {
            Some(r) if r.ssrc() == packet.ssrc => r,
            _ => {
                // A new source, or the far end restarted with a new SSRC.
                self.last_timestamp = None;
                self.delivery = DeliveryTracker::new(self.epoch);
                self.receiver
                    .insert(ReceiverStats::new(packet.ssrc, packet.seq))
            }
        };
        let highest = receiver
            .seq()
            .is_valid()
            .then(|| receiver.seq().ext_max().0);
        let Some(seq) = receiver
            .on_packet(packet.seq, packet.timestamp, arrival)
            .ext_seq()
        else {
            return self.ignore();
        };
        self.on_sequence(now, highest, seq.0);
        let timestamp = unwrap_timestamp(self.last_timestamp, packet.timestamp);
        self.last_timestamp = Some(self.last_timestamp.map_or(timestamp, |t| t.max(timestamp)));
        if self.config.feedback {
            let rate = self.config.clock_rate;
            self.delivery
                .on_packet(now, packet.seq, timestamp, rate, data.len());
        }
        self.stats.packets_received += 1;
        self.stats.payload_bytes_received += packet.payload.len() as u64;
        if !self.media_events(seq.0, timestamp, &packet) {
            return self.ignore();
        }
        Received::Media
    }

    fn handle_rtcp(&mut self, wall: SystemTime, data: &[u8]) -> Received {
        let Ok(packets) = parse_compound(data) else {
            return self.ignore();
        };
        let now = NtpTime::from_system_time(wall);
        for packet in &packets {
            let (from, blocks) = match packet {
                RtcpPacket::SenderReport(sr) => {
                    if let Some(r) = self.receiver.as_mut().filter(|r| r.ssrc() == sr.ssrc) {
                        r.on_sender_report(&sr.info, now);
                    }
                    (sr.ssrc, &sr.reports[..])
                }
                RtcpPacket::ReceiverReport(rr) => (rr.ssrc, &rr.reports[..]),
                RtcpPacket::Bye(bye) => {
                    if bye.sources.iter().any(|s| *s != self.config.ssrc) {
                        let reason = bye.reason.map(|r| String::from_utf8_lossy(r).into_owned());
                        self.event(StreamEvent::Bye { reason });
                    }
                    continue;
                }
                RtcpPacket::App(app)
                    if app.name == feedback::APP_NAME
                        && app.subtype == feedback::APP_SUBTYPE
                        && app.ssrc != self.config.ssrc =>
                {
                    if let Some(report) = DeliveryReport::parse(app.data)
                        && report.media_ssrc == self.config.ssrc
                    {
                        let delivery = self.history.on_report(&report);
                        self.event(StreamEvent::Feedback(delivery));
                    }
                    continue;
                }
                _ => continue,
            };
            if from == self.config.ssrc {
                continue;
            }
            let ours = self.config.ssrc;
            for block in blocks.iter().filter(|b| b.ssrc == ours) {
                let rtt = round_trip_time(block, now);
                if rtt.is_some() {
                    self.stats.rtt = rtt;
                }
                let net_loss = self.last_reported.and_then(|(lost, highest)| {
                    let expected = block.ext_highest_seq.wrapping_sub(highest) as i32;
                    (expected > 0).then(|| {
                        f64::from(block.cumulative_lost.wrapping_sub(lost)) / f64::from(expected)
                    })
                });
                self.last_reported = Some((block.cumulative_lost, block.ext_highest_seq));
                self.event(StreamEvent::Report {
                    fraction_lost: f64::from(block.fraction_lost) / 256.0,
                    cumulative_lost: block.cumulative_lost,
                    jitter: block.jitter,
                    rtt,
                    net_loss,
                });
            }
        }
        Received::Rtcp
    }

    /// An SR (we have sent) or RR, SDES with our CNAME, and a BYE if leaving.
    fn report(&mut self, wall: SystemTime, bye: Option<&str>) {
        let ntp = NtpTime::from_system_time(wall);
        let blocks: Vec<ReportBlock> = self
            .receiver
            .as_mut()
            .map(|r| r.report_block(ntp))
            .into_iter()
            .collect();
        let ssrc = self.config.ssrc;
        let delivery = match &self.receiver {
            Some(r) if self.config.feedback => Some(self.delivery.report(r.ssrc()).write()),
            _ => None,
        };
        let mut packets = Vec::with_capacity(4);
        if self.sender.packets() > 0 {
            // The RTP time of this instant: where the stream's clock is now.
            let info = self.sender.sender_info(ntp, self.timestamp);
            packets.push(RtcpPacket::SenderReport(SenderReport {
                ssrc,
                info,
                reports: blocks,
                extension: &[],
            }));
        } else {
            packets.push(RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc,
                reports: blocks,
                extension: &[],
            }));
        }
        let cname = self.config.cname.as_bytes();
        let items = vec![SdesItem {
            kind: SdesType::CNAME,
            value: &cname[..cname.len().min(255)],
        }];
        packets.push(RtcpPacket::Sdes(vec![SdesChunk { ssrc, items }]));
        if let Some(data) = &delivery {
            packets.push(RtcpPacket::App(App {
                subtype: feedback::APP_SUBTYPE,
                ssrc,
                name: feedback::APP_NAME,
                data,
            }));
        }
        if let Some(reason) = bye {
            let reason = &reason.as_bytes()[..reason.len().min(255)];
            packets.push(RtcpPacket::Bye(Bye {
                sources: vec![ssrc],
                reason: Some(reason),
            }));
        }
        let mut data = vec![0u8; MAX_RTCP];
        if let Ok(n) = write_compound(&packets, &mut data) {
            data.truncate(n);
            self.queue(Transmit { rtcp: true, data });
        }
    }

    /// Notes the far end's sequence number `seq`, `highest` being the highest
    /// before it: a gap between them is a loss the far end should hear of
    /// soon, if it adapts to our feedback, rather than up to an interval and
    /// a half later (a loss in a call's first second would otherwise go
    /// unanswered for most of it). The report waits [`EARLY_WAIT`] for a
    /// packet that was only overtaken, and at most one report an interval
    /// comes early.
    fn on_sequence(&mut self, now: Instant, highest: Option<u64>, seq: u64) {
        let gap = highest.is_some_and(|h| seq > h.saturating_add(1));
        if gap && self.config.feedback && now >= self.early_from {
            self.next_report = self.next_report.min(now + EARLY_WAIT);
            self.early_from = now + self.config.rtcp_interval;
        }
    }

    /// Writes the RED payload for `primary` into `out`, with the packets
    /// sent just before it that still fit. `None` if none does.
    fn red_payload(&self, primary: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut blocks = [RedBlock {
            pt: self.config.pt,
            offset: 0,
            data: &[],
        }; MAX_REDUNDANCY];
        // The newest first, as long as they are the packets right before
        // this one: the receiver numbers them by their place.
        let mut count = 0;
        for (back, (seq, timestamp, data)) in self.red.sent.iter().rev().enumerate() {
            let offset = self.timestamp.wrapping_sub(*timestamp);
            if count == self.red.depth
                || seq.0 != self.seq.0.wrapping_sub(back as u16 + 1)
                || offset > red::MAX_OFFSET
            {
                break;
            }
            blocks[count] = RedBlock {
                pt: self.config.pt,
                offset,
                data,
            };
            count += 1;
        }
        if count == 0 || primary.len() > MAX_REDUNDANT_PAYLOAD {
            return None;
        }
        blocks[..count].reverse();
        out.resize(red::encoded_len(&blocks[..count], primary), 0);
        red::write(&blocks[..count], self.config.pt, primary, out)
    }

    /// Keeps a copy of a media payload just sent, for the packets after it.
    fn remember_sent(&mut self, payload: &[u8], timestamp: u32) {
        // `send_other` has moved the sequence number on.
        let seq = SeqNo(self.seq.0.wrapping_sub(1));
        if payload.len() > MAX_REDUNDANT_PAYLOAD {
            self.red.sent.clear();
            return;
        }
        let mut buffer = if self.red.sent.len() >= MAX_REDUNDANCY {
            self.red
                .sent
                .pop_front()
                .map(|(_, _, b)| b)
                .unwrap_or_default()
        } else {
            Vec::with_capacity(MAX_REDUNDANT_PAYLOAD)
        };
        buffer.clear();
        buffer.extend_from_slice(payload);
        self.red.sent.push_back((seq, timestamp, buffer));
    }

    /// The events of a media packet: a RED packet's blocks one by one, any
    /// other packet as it is. A RED payload that does not parse is ignored.
    fn media_events(&mut self, seq: u64, timestamp: u64, packet: &RtpPacket<'_>) -> bool {
        if Some(packet.pt) != self.red.recv_pt {
            self.event(StreamEvent::Media {
                seq,
                timestamp,
                marker: packet.marker,
                pt: packet.pt,
                payload: packet.payload.to_vec(),
                redundant: false,
            });
            return true;
        }
        let Ok(red) = RedPayload::parse(packet.payload) else {
            return false;
        };
        let count = red.redundant().count() as u64;
        for (i, block) in red.redundant().enumerate() {
            let back = count - i as u64;
            if back > seq || u64::from(block.offset) > timestamp {
                continue;
            }
            self.event(StreamEvent::Media {
                seq: seq - back,
                timestamp: timestamp - u64::from(block.offset),
                marker: false,
                pt: block.pt,
                payload: block.data.to_vec(),
                redundant: true,
            });
        }
        self.event(StreamEvent::Media {
            seq,
            timestamp,
            marker: packet.marker,
            pt: red.primary.pt,
            payload: red.primary.data.to_vec(),
            redundant: false,
        });
        true
    }

    fn ignore(&mut self) -> Received {
        self.stats.ignored += 1;
        Received::Ignored
    }

    fn queue(&mut self, transmit: Transmit) {
        if self.transmits.len() >= MAX_QUEUED {
            self.transmits.pop_front();
        }
        self.transmits.push_back(transmit);
    }

    fn event(&mut self, event: StreamEvent) {
        if self.events.len() >= MAX_QUEUED {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Uniform in [0, 1): xorshift64*.
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Unwraps a 32-bit RTP timestamp to 64 bits, next to the last one seen:
/// a step of less than 2^31 either way is taken as the short way round.
fn unwrap_timestamp(last: Option<u64>, timestamp: u32) -> u64 {
    // Start well away from zero so that a first packet followed by an
    // earlier one (reordering) does not go below it.
    const BASE: u64 = 1 << 32;
    match last {
        None => BASE + u64::from(timestamp),
        Some(last) => {
            let step = timestamp.wrapping_sub(last as u32) as i32;
            last.saturating_add_signed(i64::from(step))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ssrc: u32, seed: u64) -> StreamConfig {
        StreamConfig {
            clock_rate: 48_000,
            pt: Pt(111),
            ssrc: Ssrc(ssrc),
            first_seq: SeqNo(65_530),
            first_timestamp: u32::MAX - 1_920,
            cname: format!("test{ssrc}@localhost"),
            rtcp_interval: Duration::from_secs(5),
            feedback: false,
            seed,
        }
    }

    fn pump(from: &mut MediaStream, to: &mut MediaStream, now: Instant, wall: SystemTime) {
        while let Some(t) = from.poll_transmit() {
            to.handle_datagram(now, wall, &t.data);
        }
    }

    #[test]
    fn media_crosses_sequence_and_timestamp_wrap() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let (mut a, mut b) = (
            MediaStream::new(config(1, 1), t0),
            MediaStream::new(config(2, 2), t0),
        );
        let mut got = Vec::new();
        for i in 0..20u32 {
            let now = t0 + Duration::from_millis(20 * u64::from(i));
            a.send_media(&[i as u8; 40], 960);
            pump(&mut a, &mut b, now, wall);
            while let Some(e) = b.poll_event() {
                if let StreamEvent::Media {
                    seq,
                    timestamp,
                    payload,
                    ..
                } = e
                {
                    got.push((seq, timestamp, payload[0]));
                }
            }
        }
        // The first packet is spent on probation (RFC 3550 A.1).
        assert_eq!(got.len(), 19);
        for w in got.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "sequence continues across the wrap");
            assert_eq!(w[1].1, w[0].1 + 960, "timestamp continues across the wrap");
        }
        assert_eq!(b.stats().packets_received, 19);
    }

    #[test]
    fn reports_give_loss_and_round_trip_time() {
        let t0 = Instant::now();
        let wall0 = SystemTime::now();
        let (mut a, mut b) = (
            MediaStream::new(config(1, 1), t0),
            MediaStream::new(config(2, 2), t0),
        );
        let path = Duration::from_millis(30);
        let mut reports = Vec::new();
        for i in 0..1_000u64 {
            let now = t0 + Duration::from_millis(20 * i);
            let wall = wall0 + Duration::from_millis(20 * i);
            a.send_media(&[0; 40], 960);
            b.send_media(&[0; 40], 960);
            a.handle_timeout(now, wall);
            b.handle_timeout(now, wall);
            // Every tenth packet from a is lost; both ways take 30 ms.
            while let Some(t) = a.poll_transmit() {
                if t.rtcp || i % 10 != 5 {
                    b.handle_datagram(now + path, wall + path, &t.data);
                }
            }
            while let Some(t) = b.poll_transmit() {
                a.handle_datagram(now + path, wall + path, &t.data);
            }
            while let Some(e) = a.poll_event() {
                if let StreamEvent::Report {
                    fraction_lost, rtt, ..
                } = e
                {
                    reports.push((fraction_lost, rtt));
                }
            }
        }
        assert!(
            reports.len() >= 2,
            "{reports:?} {:?} {:?}",
            a.stats(),
            b.stats()
        );
        let (loss, rtt) = *reports.last().expect("a report");
        assert!((0.07..0.13).contains(&loss), "loss {loss}");
        let rtt = rtt.expect("an rtt once an SR has crossed");
        assert!((50..=70).contains(&rtt.as_millis()), "rtt {rtt:?}");
        assert!(b.stats().lost >= 90, "{:?}", b.stats());
    }

    /// With feedback on, the far end's reports carry the one-way delay of
    /// our stream (here growing by 2 ms a packet: a queue filling) and the
    /// rate it arrives at; a stream without it sends none.
    #[test]
    fn feedback_gives_one_way_delay_and_rate() {
        let t0 = Instant::now();
        let wall0 = SystemTime::now();
        let with = |ssrc, seed| StreamConfig {
            feedback: true,
            rtcp_interval: Duration::from_secs(1),
            ..config(ssrc, seed)
        };
        let (mut a, mut b) = (
            MediaStream::new(with(1, 1), t0),
            MediaStream::new(with(2, 2), t0),
        );
        let mut got = Vec::new();
        for i in 0..400u64 {
            // a's frame i ends at 20 (i + 1) ms and goes out then.
            let sent = t0 + Duration::from_millis(20 * (i + 1));
            a.send_media(&[0; 88], 960);
            let arrive = sent + Duration::from_millis(40 + 2 * i);
            while let Some(t) = a.poll_transmit() {
                b.handle_datagram(arrive, wall0 + (arrive - t0), &t.data);
            }
            b.handle_timeout(arrive, wall0 + (arrive - t0));
            while let Some(t) = b.poll_transmit() {
                a.handle_datagram(arrive, wall0 + (arrive - t0), &t.data);
            }
            while let Some(e) = a.poll_event() {
                if let StreamEvent::Feedback(d) = e {
                    got.push(d);
                }
            }
        }
        assert!(got.len() >= 5, "{got:?}");
        for three in got.windows(3) {
            let (w, x, y) = (three[0], three[1], three[2]);
            // Each report's fastest is the first packet after the one before.
            let packets = (x.packets - w.packets) as i64;
            let grew = y.delay_us.unwrap() - x.delay_us.unwrap();
            assert!((grew - 2_000 * packets).abs() < 100, "{three:?}");
            // 100 bytes each (RTP header and payload) every 22 ms.
            let rate = (y.bytes - x.bytes) as f64 * 8.0 / (y.at - x.at).as_secs_f64();
            assert!((rate - 800.0 / 0.022).abs() < 500.0, "{rate} {three:?}");
        }
        let (mut c, mut d) = (
            MediaStream::new(config(3, 3), t0),
            MediaStream::new(config(4, 4), t0),
        );
        for i in 0..400u64 {
            let now = t0 + Duration::from_millis(20 * i);
            c.send_media(&[0; 40], 960);
            pump(&mut c, &mut d, now, wall0);
            d.handle_timeout(now, wall0);
            pump(&mut d, &mut c, now, wall0);
        }
        assert!(
            std::iter::from_fn(|| c.poll_event()).all(|e| !matches!(e, StreamEvent::Feedback(_)))
        );
    }

    #[test]
    fn bye_ends_the_far_side_and_stun_is_ignored() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let (mut a, mut b) = (
            MediaStream::new(config(1, 1), t0),
            MediaStream::new(config(2, 2), t0),
        );
        let mut stun = vec![0u8; 20];
        stun[1] = 1;
        assert_eq!(b.handle_datagram(t0, wall, &stun), Received::Ignored);
        assert_eq!(
            b.handle_datagram(t0, wall, b"garbage!!!!!!!!"),
            Received::Ignored
        );
        a.close(wall, "bye now");
        pump(&mut a, &mut b, t0, wall);
        assert_eq!(
            b.poll_event(),
            Some(StreamEvent::Bye {
                reason: Some("bye now".into())
            })
        );
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn dtx_gap_sets_the_marker_and_moves_the_timestamp() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let (mut a, mut b) = (
            MediaStream::new(config(1, 1), t0),
            MediaStream::new(config(2, 2), t0),
        );
        for _ in 0..3 {
            a.send_media(&[1; 10], 960);
        }
        a.skip(960 * 10);
        a.send_media(&[2; 10], 960);
        pump(&mut a, &mut b, t0, wall);
        let media: Vec<_> = std::iter::from_fn(|| b.poll_event())
            .filter_map(|e| match e {
                StreamEvent::Media {
                    timestamp, marker, ..
                } => Some((timestamp, marker)),
                _ => None,
            })
            .collect();
        let (last, before) = (media[media.len() - 1], media[media.len() - 2]);
        assert!(last.1, "a talkspurt starts with the marker");
        assert_eq!(last.0 - before.0, 960 * 11);
    }

    /// With feedback on, a gap in the far end's sequence numbers brings the
    /// next report forward to 60 ms after it, once an interval; a packet
    /// overtaken, not lost, comes back in the next report's net loss.
    #[test]
    fn a_loss_is_reported_early_and_reordering_nets_out() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut far = config(2, 2);
        far.feedback = true;
        far.rtcp_interval = Duration::from_secs(1);
        let (mut a, mut b) = (
            MediaStream::new(config(1, 1), t0),
            MediaStream::new(far, t0),
        );
        let mut held = None;
        let mut reports = Vec::new();
        for i in 0..300u64 {
            let now = t0 + Duration::from_millis(20 * i);
            a.send_media(&[0; 40], 960);
            a.handle_timeout(now, wall);
            while let Some(t) = a.poll_transmit() {
                match i {
                    // Lost.
                    10 => {}
                    // Overtaken by fifty others: it comes 1 s late,
                    // reports later.
                    48 => held = Some(t),
                    _ => {
                        b.handle_datagram(now, wall, &t.data);
                    }
                }
            }
            if i == 11 {
                // The first report was due at 0.5 s; the gap brings it to 0.28 s.
                let due = b.poll_timeout().unwrap();
                assert_eq!(due, now + Duration::from_millis(60));
            }
            if i == 98
                && let Some(t) = held.take()
            {
                b.handle_datagram(now, wall, &t.data);
            }
            b.handle_timeout(now, wall);
            while let Some(t) = b.poll_transmit() {
                a.handle_datagram(now, wall, &t.data);
            }
            while let Some(e) = a.poll_event() {
                if let StreamEvent::Report {
                    fraction_lost,
                    net_loss,
                    ..
                } = e
                {
                    reports.push((now - t0, fraction_lost, net_loss));
                }
            }
        }
        // The early report at 280 ms, with the loss; none at 500 ms.
        assert_eq!(reports[0].0, Duration::from_millis(280), "{reports:?}");
        assert!(reports[0].1 > 0.0 && reports[0].2.is_none(), "{reports:?}");
        assert!(reports[1].0 >= Duration::from_millis(780), "{reports:?}");
        // Packet 48 is counted lost in one report and found in a later one,
        // whose net loss takes it back (a share of that report's packets),
        // while the fractions lost only count it.
        let after: Vec<_> = reports
            .iter()
            .filter(|r| r.0 > Duration::from_millis(960))
            .collect();
        let nets: Vec<f64> = after.iter().filter_map(|r| r.2).collect();
        assert!(nets.iter().any(|&n| n > 0.0), "{reports:?}");
        assert!(nets.iter().any(|&n| n < 0.0), "{reports:?}");
        assert!(after.iter().map(|r| r.1).sum::<f64>() > 0.0, "{reports:?}");
    }

    /// Under RFC 2198 each packet carries the one before it: a lost packet's
    /// frame comes out of the next, numbered and timed as the lost one, and
    /// a telephone event in between breaks the chain instead of misnumbering it.
    #[test]
    fn redundancy_brings_back_a_lost_packet() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let (mut a, mut b) = (
            MediaStream::new(config(1, 1), t0),
            MediaStream::new(config(2, 2), t0),
        );
        a.set_red(Some(Pt(63)), Some(Pt(63)));
        b.set_red(Some(Pt(63)), Some(Pt(63)));
        let mut got = Vec::new();
        for i in 0..12u32 {
            if i == 6 {
                a.set_redundancy(1);
            }
            if i == 10 {
                a.send_other(Pt(101), true, a.timestamp(), &[1, 0, 0, 160]);
            }
            a.send_media(&[i as u8; 30], 960);
            let now = t0 + Duration::from_millis(20 * u64::from(i));
            if i == 8 {
                // Packet 8 is lost on the way.
                while a.poll_transmit().is_some() {}
            }
            pump(&mut a, &mut b, now, wall);
            while let Some(e) = b.poll_event() {
                if let StreamEvent::Media {
                    seq,
                    timestamp,
                    pt,
                    payload,
                    redundant,
                    ..
                } = e
                {
                    got.push((seq, timestamp, pt, payload, redundant));
                }
            }
        }
        let audio: Vec<_> = got.iter().filter(|g| g.2 == Pt(111)).collect();
        let frames = |redundant: bool| -> Vec<u8> {
            audio
                .iter()
                .filter(|g| g.4 == redundant)
                .map(|g| g.3[0])
                .collect()
        };
        // The first packet is spent on probation; 8 arrives only as a copy.
        assert_eq!(frames(false), [1, 2, 3, 4, 5, 6, 7, 9, 10, 11]);
        // Redundancy starts with packet 6 (carrying 5); the event just
        // before 10 leaves 10 without a copy of 9.
        assert_eq!(frames(true), [5, 6, 8, 10]);
        let (first_seq, first_ts) = (audio[0].0, audio[0].1);
        for (seq, timestamp, _, payload, _) in &audio {
            let i = u64::from(payload[0]) - 1;
            let after_event = u64::from(payload[0] >= 10);
            assert_eq!(*seq, first_seq + i + after_event, "frame {}", payload[0]);
            assert_eq!(*timestamp, first_ts + 960 * i, "frame {}", payload[0]);
            assert_eq!(payload.len(), 30);
        }
    }

    #[test]
    fn a_red_payload_that_does_not_parse_is_ignored() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut b = MediaStream::new(config(2, 2), t0);
        b.set_red(None, Some(Pt(63)));
        for i in 0..3u16 {
            // A block header that claims 5 bytes, then nothing.
            let packet = RtpPacket::new(
                Pt(63),
                SeqNo(i),
                960 * u32::from(i),
                Ssrc(7),
                &[0x80, 0, 0, 5, 111],
            );
            let mut data = vec![0u8; packet.encoded_len()];
            packet.write(&mut data).unwrap();
            b.handle_datagram(t0, wall, &data);
        }
        assert_eq!(b.poll_event(), None);
        assert!(b.stats().ignored >= 2);
    }

    #[test]
    fn random_datagrams_never_panic() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut s = MediaStream::new(config(2, 2), t0);
        let mut x = 0x1234_5678_9abc_def0u64;
        for n in 0..20_000usize {
            let len = n % 90;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly RTP/RTCP-looking first bytes.
                    x as u8
                })
                .enumerate()
                .map(|(i, b)| if i == 0 { 0x80 | (b & 0x3f) } else { b })
                .collect();
            s.handle_datagram(t0, wall, &data);
        }
        assert!(s.events.len() <= MAX_QUEUED);
    }
}
