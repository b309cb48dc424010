//! The media grid: ipphone's own RTP media path (encoder, RTP/RTCP stream,
//! jitter buffer, decoder, FEC, concealment, time-stretch: the very code a
//! call runs, `media::voice` and `proto::stream`) driven on the network
//! emulator's virtual clock, over codec x loss x jitter x seed.
//!
//! One direction carries the speech; RTCP flows both ways, so the sender's
//! FEC follows the loss the receiver reports, as in a call. The receiving
//! speaker is a clock that consumes samples at the codec's rate from the
//! first moment, and asks the receiver for more whenever less than 10 ms is
//! queued, as the call loop does; what it was given is the recording, and a
//! sample's position in it is the moment it was played. So the file-to-file
//! delay here is what a call on such a path has, minus the sound card's own
//! buffers.

use std::time::{Duration, Instant, SystemTime};

use media::codec::opus::{OpusDecoder, OpusEncoder};
use media::voice::{VoiceCodec, VoiceConfig, VoiceEncoder, VoiceReceiver};
use netsim::{Jitter, Link, LinkConfig};
use proto::rtp::{Pt, SeqNo, Ssrc};
use proto::stream::{MediaStream, StreamConfig, StreamEvent};

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
    /// The emulated call's length.
    pub seconds: f64,
}

/// The path of one grid cell: random loss, and a one-way delay spread
/// uniformly over `[0, jitter]` (each packet independently, so packets
/// overtake each other when the spread exceeds a frame).
#[derive(Debug, Clone, Copy)]
pub struct PathSpec {
    pub loss: f64,
    pub jitter: Duration,
}

impl PathSpec {
    fn link(&self) -> LinkConfig {
        LinkConfig {
            delay: self.jitter / 2,
            jitter: if self.jitter.is_zero() {
                Jitter::None
            } else {
                Jitter::Uniform(self.jitter / 2)
            },
            keep_order: false,
            loss: self.loss,
            ..LinkConfig::default()
        }
    }
}

const FRAME_MS: u32 = 20;
const LOW_WATER_MS: u64 = 10;
const STEP: Duration = Duration::from_millis(1);
/// IPv4 + UDP headers.
const IP_UDP: u64 = 28;

/// Sends `speech` (at the codec's rate) one way over an emulated path.
pub fn call(codec: VoiceCodec, speech: &[i16], path: PathSpec, seed: u64) -> Outcome {
    let config = VoiceConfig {
        codec,
        frame_ms: FRAME_MS,
    };
    let rate = u64::from(codec.sample_rate());
    let frame = config.frame_samples();
    let ticks = config.frame_ticks();
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
        rtcp_interval: Duration::from_secs(5),
        seed: seed ^ n,
    };
    let mut sender = MediaStream::new(stream_config(1), t0);
    let mut far = MediaStream::new(stream_config(2), t0);
    let mut forward = Link::new(path.link(), seed).expect("a valid link");
    let mut back = Link::new(path.link(), seed ^ 0x5eed).expect("a valid link");

    let frames = speech.len() / frame;
    // Let the last frames arrive and play out.
    let end = Duration::from_millis(frames as u64 * u64::from(FRAME_MS) + 500);
    let mut played = Vec::with_capacity(speech.len() + rate as usize);
    let mut payload = vec![0u8; 1_500];
    let mut next_frame = 0usize;
    let mut packets_sent = 0u64;
    let mut wire_bytes = 0u64;
    let mut elapsed = Duration::ZERO;
    while elapsed <= end {
        let now = t0 + elapsed;
        let wall = wall0 + elapsed;
        // The microphone: a frame is complete every 20 ms.
        while next_frame < frames
            && Duration::from_millis((next_frame as u64 + 1) * u64::from(FRAME_MS)) <= elapsed
        {
            let pcm = &speech[next_frame * frame..(next_frame + 1) * frame];
            let n = encoder.encode(pcm, &mut payload).expect("encoding");
            if n == 0 {
                sender.skip(ticks);
            } else {
                sender.send_media(&payload[..n], ticks);
            }
            next_frame += 1;
        }
        sender.handle_timeout(now, wall);
        while let Some(t) = sender.poll_transmit() {
            if !t.rtcp {
                packets_sent += 1;
                wire_bytes += t.data.len() as u64 + IP_UDP;
            }
            forward.send(now, t.data);
        }
        while let Some(d) = forward.poll_deliver(now) {
            far.handle_datagram(now, wall, &d.packet);
        }
        while let Some(event) = far.poll_event() {
            if let StreamEvent::Media {
                seq,
                timestamp,
                payload,
                ..
            } = event
            {
                receiver.insert(now, seq, timestamp, &payload);
            }
        }
        far.handle_timeout(now, wall);
        while let Some(t) = far.poll_transmit() {
            back.send(now, t.data);
        }
        while let Some(d) = back.poll_deliver(now) {
            sender.handle_datagram(now, wall, &d.packet);
        }
        while let Some(event) = sender.poll_event() {
            if let StreamEvent::Report { fraction_lost, .. } = event {
                encoder.set_expected_loss(fraction_lost);
            }
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
        packets_sent,
        wire_bytes,
        late: counts.late,
        concealed: counts.concealed,
        fec_recovered: counts.fec_recovered,
        seconds: frames as f64 * f64::from(FRAME_MS) / 1000.0,
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
                OpusEncoder::new(rate, FRAME_MS, bitrate, true, 5, true).expect("Opus settings");
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
