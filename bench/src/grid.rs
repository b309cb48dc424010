//! The media grid: ipphone's own RTP media path (encoder, RTP/RTCP stream,
//! jitter buffer, decoder, FEC, concealment, time-stretch: the very code a
//! call runs, `media::voice` and `proto::stream`) driven on the network
//! emulator's virtual clock, over codec x loss x jitter x seed.
//!
//! One direction carries the speech; RTCP flows both ways, so the sender's
//! FEC follows the loss the receiver reports, as in a call. The receiving
//! speaker is a clock that consumes samples at the codec's rate from the
//! first moment, and asks the receiver for more whenever less than 6 ms is
//! queued, as the call loop does; what it was given is the recording, and a
//! sample's position in it is the moment it was played. So the file-to-file
//! delay here is what a call on such a path has, minus the sound card's own
//! buffers.
//!
//! The sender adapts as a call's does ([`media::rate::RateController`] fed
//! by the far end's RTCP every second, with delivery feedback); a path may
//! cap the rate each way ([`PathSpec::cap`]), and [`Sender::Fixed`] is the
//! sender before adaptation, for comparison.

use std::time::{Duration, Instant, SystemTime};

use media::codec::opus::{OpusDecoder, OpusEncoder};
use media::rate::{RateConfig, RateController};
use media::voice::{VoiceCodec, VoiceConfig, VoiceEncoder, VoiceReceiver};
use netsim::{Jitter, Link, LinkConfig, Payload, RateLimit};
use proto::rtp::{Pt, SeqNo, Ssrc};
use proto::stream::{MediaStream, StreamConfig, StreamEvent};

/// The payload type of RFC 2198 redundancy, as `ipphone --protocol rtp` has it.
const RED_PT: Pt = Pt(63);

/// What one emulated call gave.
pub struct Outcome {
    /// What the far end's speaker played, at the codec's rate.
    pub played: Vec<i16>,
    pub packets_sent: u64,
    /// IP + UDP + RTP bytes of the media direction.
    pub wire_bytes: u64,
    pub late: u64,
    pub concealed: u64,
    pub fec_recovered: u64,
    /// Lost packets whose frame came in a later packet's RFC 2198 copy.
    pub red_recovered: u64,
    /// The emulated call's length.
    pub seconds: f64,
    /// Every media packet, in the order sent.
    pub packets: Vec<PacketFate>,
    /// IP + UDP + RTCP bytes of the media direction.
    pub rtcp_wire_bytes: u64,
}

/// What became of one media packet.
#[derive(Debug, Clone, Copy)]
pub struct PacketFate {
    /// When it was sent, from the call's start.
    pub sent: Duration,
    /// IP + UDP + RTP bytes.
    pub wire_bytes: u32,
    /// Its one-way delay, if it arrived.
    pub delay: Option<Duration>,
    /// It arrived after its time was played.
    pub late: bool,
}

impl Outcome {
    /// When the media's rate on the wire, averaged over a second, first
    /// went under `bits_per_second`; `None` if it never did.
    pub fn under_rate_at(&self, bits_per_second: u64) -> Option<Duration> {
        let mut window = std::collections::VecDeque::new();
        let mut bytes = 0u64;
        for p in &self.packets {
            window.push_back(*p);
            bytes += u64::from(p.wire_bytes);
            while window
                .front()
                .is_some_and(|f| f.sent + Duration::from_secs(1) <= p.sent)
            {
                bytes -= u64::from(window.pop_front().expect("not empty").wire_bytes);
            }
            if p.sent >= Duration::from_secs(1) && bytes * 8 <= bits_per_second {
                return Some(p.sent);
            }
        }
        None
    }

    /// The media packets sent from `from` on.
    pub fn sent_after(&self, from: Duration) -> impl Iterator<Item = &PacketFate> {
        self.packets.iter().filter(move |p| p.sent >= from)
    }
}

/// How the sender sets its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// As a call does: RTCP every second with delivery feedback, and the
    /// rate controller sets Opus's bitrate, packet time and FEC.
    Adaptive,
    /// Opus at its configured bitrate in 20 ms packets, RTCP every 5 s,
    /// only the FEC following the reported loss: the sender before
    /// adaptation.
    Fixed,
}

/// A datagram on an emulated link, which counts its IP and UDP headers
/// against the link's rate as a real link does.
#[derive(Clone)]
struct Datagram(Vec<u8>);

impl Payload for Datagram {
    fn wire_len(&self) -> usize {
        self.0.len() + IP_UDP as usize
    }
}

/// The path of one grid cell: random loss, and a one-way delay spread
/// uniformly over `[0, jitter]` (each packet independently, so packets
/// overtake each other when the spread exceeds a frame); or a slow link.
#[derive(Debug, Clone, Copy)]
pub struct PathSpec {
    pub loss: f64,
    pub jitter: Duration,
    /// A rate cap each way, IP and UDP headers counted, with a tail-drop
    /// queue; and `delay` of propagation.
    pub cap: Option<RateLimit>,
    pub delay: Duration,
}

impl PathSpec {
    /// Random loss and jitter, no cap.
    pub fn lossy(loss: f64, jitter: Duration) -> Self {
        PathSpec {
            loss,
            jitter,
            cap: None,
            delay: Duration::ZERO,
        }
    }

    /// A slow link: `bits_per_second` each way with a queue of `queue`
    /// (at that rate) and `delay` of propagation, nothing else.
    pub fn slow_link(bits_per_second: u64, queue: Duration, delay: Duration) -> Self {
        PathSpec {
            loss: 0.0,
            jitter: Duration::ZERO,
            cap: Some(RateLimit {
                bits_per_second,
                queue_bytes: (bits_per_second as f64 / 8.0 * queue.as_secs_f64()) as usize,
            }),
            delay,
        }
    }

    fn link(&self) -> LinkConfig {
        LinkConfig {
            delay: self.delay + self.jitter / 2,
            jitter: if self.jitter.is_zero() {
                Jitter::None
            } else {
                Jitter::Uniform(self.jitter / 2)
            },
            keep_order: false,
            loss: self.loss,
            rate: self.cap,
            ..LinkConfig::default()
        }
    }
}

const FRAME_MS: u32 = 20;
const LOW_WATER_MS: u64 = 6;
const STEP: Duration = Duration::from_millis(1);
/// IPv4 + UDP headers.
const IP_UDP: u64 = 28;

/// Sends `speech` (at the codec's rate) one way over an emulated path, as a
/// call does.
pub fn call(codec: VoiceCodec, speech: &[i16], path: PathSpec, seed: u64) -> Outcome {
    call_with(codec, speech, path, seed, Sender::Adaptive)
}

/// [`call`] with the sender of one's choice.
pub fn call_with(
    codec: VoiceCodec,
    speech: &[i16],
    path: PathSpec,
    seed: u64,
    how: Sender,
) -> Outcome {
    let config = VoiceConfig {
        codec,
        frame_ms: FRAME_MS,
    };
    let rate = u64::from(codec.sample_rate());
    let adaptive = how == Sender::Adaptive;
    // G.711 has one rate, but its sender too turns redundancy on under loss.
    let mut controller = match codec {
        _ if !adaptive => None,
        VoiceCodec::Opus { bitrate } => Some(RateController::new(RateConfig::new(bitrate))),
        VoiceCodec::Pcmu | VoiceCodec::Pcma => Some(RateController::new(RateConfig::new(64_000))),
    };
    let mut encoder = VoiceEncoder::new(config).expect("the grid's codec settings are valid");
    let mut receiver = VoiceReceiver::new(config).expect("the grid's codec settings are valid");
    let t0 = Instant::now();
    let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let pt = match codec {
        VoiceCodec::Opus { .. } => Pt(111),
        VoiceCodec::Pcmu => Pt(0),
        VoiceCodec::Pcma => Pt(8),
    };
    let stream_config = |n: u64| StreamConfig {
        clock_rate: codec.clock_rate(),
        pt,
        ssrc: Ssrc(
            (seed as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(n as u32),
        ),
        first_seq: SeqNo((seed as u16).wrapping_mul(31).wrapping_add(n as u16)),
        first_timestamp: (seed as u32).wrapping_mul(7_919).wrapping_add(n as u32),
        cname: format!("bench-{n}@grid"),
        rtcp_interval: Duration::from_secs(if adaptive { 1 } else { 5 }),
        feedback: adaptive,
        seed: seed ^ n,
    };
    let mut sender = MediaStream::new(stream_config(1), t0);
    let mut far = MediaStream::new(stream_config(2), t0);
    // RFC 2198 redundancy, with the number a call without SDP uses.
    sender.set_red(Some(RED_PT), None);
    far.set_red(None, Some(RED_PT));
    let mut forward = Link::<Datagram>::new(path.link(), seed).expect("a valid link");
    let mut back = Link::<Datagram>::new(path.link(), seed ^ 0x5eed).expect("a valid link");

    // Let the last frames arrive and play out.
    let end = Duration::from_millis(speech.len() as u64 * 1000 / rate + 500);
    let mut played = Vec::with_capacity(speech.len() + rate as usize);
    let mut payload = vec![0u8; 1_500];
    // The microphone's position in the speech, in samples.
    let mut mic = 0usize;
    let mut packets = Vec::new();
    // Link sequence number -> index in `packets`, for media packets.
    let mut on_link: Vec<Option<usize>> = Vec::new();
    let mut rtcp_wire_bytes = 0u64;
    let mut elapsed = Duration::ZERO;
    while elapsed <= end {
        let now = t0 + elapsed;
        let wall = wall0 + elapsed;
        // The microphone: a frame is complete once its last sample is in.
        loop {
            let frame = encoder.config().frame_samples();
            if mic + frame > speech.len()
                || Duration::from_micros((mic + frame) as u64 * 1_000_000 / rate) > elapsed
            {
                break;
            }
            let ticks = encoder.config().frame_ticks();
            let n = encoder
                .encode(&speech[mic..mic + frame], &mut payload)
                .expect("encoding");
            if n == 0 {
                sender.skip(ticks);
            } else {
                sender.send_media(&payload[..n], ticks);
            }
            mic += frame;
        }
        sender.handle_timeout(now, wall);
        while let Some(t) = sender.poll_transmit() {
            let wire = t.data.len() as u64 + IP_UDP;
            let media = !t.rtcp;
            if media {
                packets.push(PacketFate {
                    sent: elapsed,
                    wire_bytes: wire as u32,
                    delay: None,
                    late: false,
                });
            } else {
                rtcp_wire_bytes += wire;
            }
            let seq = forward.send(now, Datagram(t.data)) as usize;
            on_link.resize(on_link.len().max(seq + 1), None);
            on_link[seq] = media.then(|| packets.len() - 1);
        }
        while let Some(d) = forward.poll_deliver(now) {
            let fate = on_link.get(d.seq as usize).copied().flatten();
            if let Some(i) = fate {
                packets[i].delay = Some(d.at.saturating_duration_since(d.sent_at));
            }
            far.handle_datagram(now, wall, &d.packet.0);
            while let Some(event) = far.poll_event() {
                if let StreamEvent::Media {
                    seq,
                    timestamp,
                    payload,
                    redundant,
                    ..
                } = event
                {
                    if redundant {
                        receiver.insert_redundant(seq, timestamp, &payload);
                        continue;
                    }
                    let late = receiver.counts().late;
                    receiver.insert(now, seq, timestamp, &payload);
                    if let Some(i) = fate {
                        packets[i].late = receiver.counts().late > late;
                    }
                }
            }
        }
        far.handle_timeout(now, wall);
        while let Some(t) = far.poll_transmit() {
            back.send(now, Datagram(t.data));
        }
        while let Some(d) = back.poll_deliver(now) {
            sender.handle_datagram(now, wall, &d.packet.0);
        }
        let mut reported = false;
        while let Some(event) = sender.poll_event() {
            match (event, &mut controller) {
                (
                    StreamEvent::Report {
                        fraction_lost,
                        net_loss,
                        rtt,
                        ..
                    },
                    Some(controller),
                ) => {
                    controller.on_report(now, fraction_lost, net_loss, rtt);
                    reported = true;
                }
                (StreamEvent::Feedback(delivery), Some(controller)) => {
                    controller.on_feedback(now, &delivery);
                    reported = true;
                }
                (StreamEvent::Report { fraction_lost, .. }, None) => {
                    encoder.set_expected_loss(fraction_lost);
                }
                _ => {}
            }
        }
        if let Some(controller) = controller.as_ref().filter(|_| reported) {
            let setting = controller.setting().with_red(true);
            encoder
                .adapt(&setting)
                .expect("the controller's settings are valid");
            sender.set_redundancy(setting.redundancy);
        }
        // The speaker: it has consumed `rate` samples a second since 0.
        let consumed = elapsed.as_millis() as u64 * rate / 1000;
        while (played.len() as u64) < consumed + LOW_WATER_MS * rate / 1000 {
            receiver.pull(now, &mut played);
        }
        elapsed += STEP;
    }
    let counts = receiver.counts();
    Outcome {
        played,
        packets_sent: packets.len() as u64,
        wire_bytes: packets.iter().map(|p| u64::from(p.wire_bytes)).sum(),
        late: counts.late,
        concealed: counts.concealed,
        fec_recovered: counts.fec_recovered,
        red_recovered: counts.red_recovered,
        seconds: mic as f64 / rate as f64,
        packets,
        rtcp_wire_bytes,
    }
}

/// The codec alone, encoder straight into decoder with nothing lost: the
/// best a call with this codec can sound. DTX pauses are filled as a
/// receiver fills them, by the decoder's concealment.
pub fn offline_round_trip(codec: VoiceCodec, speech: &[i16]) -> Vec<i16> {
    let config = VoiceConfig {
        codec,
        frame_ms: FRAME_MS,
    };
    let frame = config.frame_samples();
    let mut out = Vec::with_capacity(speech.len());
    let mut payload = vec![0u8; 1_500];
    match codec {
        VoiceCodec::Opus { bitrate } => {
            let rate = codec.sample_rate();
            let mut encoder =
                OpusEncoder::new(rate, FRAME_MS, bitrate, true, 0, true).expect("Opus settings");
            let mut decoder = OpusDecoder::new(rate).expect("Opus settings");
            let mut pcm = vec![0i16; frame];
            for chunk in speech.chunks_exact(frame) {
                let n = encoder.encode(chunk, &mut payload).expect("encoding");
                let got = if n == 0 {
                    decoder.conceal(&mut pcm)
                } else {
                    decoder.decode(&payload[..n], &mut pcm)
                }
                .expect("decoding");
                out.extend_from_slice(&pcm[..got]);
            }
        }
        VoiceCodec::Pcmu | VoiceCodec::Pcma => {
            let law = if codec == VoiceCodec::Pcmu {
                media::codec::g711::Law::Mu
            } else {
                media::codec::g711::Law::A
            };
            out.extend(
                speech
                    .iter()
                    .map(|&s| law.decode_sample(law.encode_sample(s))),
            );
        }
    }
    out
}
