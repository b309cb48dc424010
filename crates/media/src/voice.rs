//! A voice call's audio path on either side of RTP: the encoder that turns
//! microphone frames into payloads, and the receiver that turns arriving
//! payloads into a steady stream of samples for the speaker (jitter buffer,
//! decoder, Opus FEC, concealment, time-stretching). The encoder takes the
//! settings of a [`crate::rate::RateController`]: Opus's bitrate, FEC and
//! packet time follow the path; the receiver follows a change of packet time
//! from the packets themselves.
//!
//! Neither reads a clock, a socket or a sound card: the call loop in the
//! binary drives them in real time, and the bench drives the very same code
//! on the network emulator's virtual clock.

use std::time::Instant;

use proto::jitter::{InsertResult, JitterBuffer, JitterConfig, Playout, Stretch};

use crate::codec::error::CodecError;
use crate::codec::g711::{G711, Law, Plc};
use crate::codec::opus::{OpusDecoder, OpusEncoder};
use crate::dsp::stretch::TimeStretch;
use crate::rate::Setting;

/// The codec of a voice stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceCodec {
    /// Opus (RFC 7587) at 16 kHz, VoIP mode, in-band FEC and DTX.
    Opus { bitrate: u32 },
    /// G.711 u-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl VoiceCodec {
    /// The rate the audio is coded at.
    pub fn sample_rate(self) -> u32 {
        match self {
            VoiceCodec::Opus { .. } => 16_000,
            VoiceCodec::Pcmu | VoiceCodec::Pcma => 8_000,
        }
    }

    /// The RTP clock: 48 kHz for Opus whatever it codes at (RFC 7587 §4.1).
    pub fn clock_rate(self) -> u32 {
        match self {
            VoiceCodec::Opus { .. } => 48_000,
            VoiceCodec::Pcmu | VoiceCodec::Pcma => 8_000,
        }
    }
}

/// The settings both halves of a voice path share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceConfig {
    pub codec: VoiceCodec,
    /// Packetisation time: 10, 20, 40 or 60 ms. The receiver's is only where
    /// it starts: it follows the packets.
    pub frame_ms: u32,
}

impl VoiceConfig {
    /// Samples in one frame at the codec's rate.
    pub fn frame_samples(&self) -> usize {
        (self.codec.sample_rate() * self.frame_ms / 1000) as usize
    }

    /// RTP clock ticks in one frame.
    pub fn frame_ticks(&self) -> u32 {
        self.codec.clock_rate() * self.frame_ms / 1000
    }
}

/// The sending half: microphone frames in, RTP payloads out.
pub struct VoiceEncoder {
    inner: Encoder,
    config: VoiceConfig,
}

enum Encoder {
    Opus(Box<OpusEncoder>),
    G711(G711),
}

impl VoiceEncoder {
    pub fn new(config: VoiceConfig) -> Result<Self, CodecError> {
        let inner = match config.codec {
            VoiceCodec::Opus { bitrate } => Encoder::Opus(Box::new(OpusEncoder::new(
                config.codec.sample_rate(),
                config.frame_ms,
                bitrate,
                true,
                0,
                true,
            )?)),
            VoiceCodec::Pcmu => Encoder::G711(G711::new(Law::Mu)),
            VoiceCodec::Pcma => Encoder::G711(G711::new(Law::A)),
        };
        Ok(Self { inner, config })
    }

    /// The settings now: `frame_ms` is the packet time of the next frame.
    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// Encodes one frame ([`VoiceConfig::frame_samples`] samples) into `out`.
    /// Returns the payload's length; 0 means the frame is silence that DTX
    /// does not send (the RTP timestamp still advances by one frame).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        match &mut self.inner {
            Encoder::Opus(encoder) => encoder.encode(pcm, out),
            Encoder::G711(codec) => codec.encode(pcm, out),
        }
    }

    /// Tells Opus how much loss the far end reports, so that it spends that
    /// much on in-band FEC (RFC 7587 §3.1.1): none until a loss is reported,
    /// then 5-30 %. G.711 has nothing to adjust.
    pub fn set_expected_loss(&mut self, fraction_lost: f64) {
        if let Encoder::Opus(encoder) = &mut self.inner {
            let percent = (fraction_lost * 100.0).ceil().clamp(0.0, 30.0) as u8;
            let _ = encoder.set_expected_loss(percent);
        }
    }

    /// Changes Opus's target bitrate; G.711 has one rate.
    pub fn set_bitrate(&mut self, bitrate: u32) -> Result<(), CodecError> {
        match &mut self.inner {
            Encoder::Opus(encoder) => encoder.set_bitrate(bitrate),
            Encoder::G711(_) => Ok(()),
        }
    }

    /// Changes Opus's packet time (10, 20, 40 or 60 ms) from the next frame
    /// on: the caller reads the next frame's length from
    /// [`VoiceEncoder::config`]. G.711 keeps the one it started with.
    pub fn set_frame_ms(&mut self, frame_ms: u32) -> Result<(), CodecError> {
        if let Encoder::Opus(encoder) = &mut self.inner {
            encoder.set_frame_ms(frame_ms)?;
            self.config.frame_ms = frame_ms;
        }
        Ok(())
    }

    /// Takes a rate controller's setting (bitrate, packet time, FEC) for
    /// the frames to come. G.711 has nothing to adapt.
    pub fn adapt(&mut self, setting: &Setting) -> Result<(), CodecError> {
        if let Encoder::Opus(encoder) = &mut self.inner {
            encoder.set_bitrate(setting.bitrate)?;
            encoder.set_frame_ms(setting.frame_ms)?;
            self.config.frame_ms = setting.frame_ms;
        }
        self.set_expected_loss(setting.expected_loss);
        Ok(())
    }
}

/// What a [`VoiceReceiver`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoiceCounts {
    /// Frames played from packets that arrived in time.
    pub decoded: u64,
    /// Packets that arrived after their time was played or given up.
    pub late: u64,
    /// Packets of the stream that were never played, their time filled by
    /// concealment or FEC instead: lost on the way or too late. Silence the
    /// sender did not send (DTX) is not counted: the sequence numbers tell
    /// the two apart.
    pub concealed: u64,
    /// Of those, frames rebuilt from the next packet's in-band FEC.
    pub fec_recovered: u64,
    /// Packets lost on the way whose frame came in a later packet's
    /// redundant copy (RFC 2198) in time, and played as sent: not
    /// concealed.
    pub red_recovered: u64,
}

/// The receiving half: payloads in as they arrive, speaker frames out as the
/// speaker's clock asks for them.
pub struct VoiceReceiver {
    config: VoiceConfig,
    jitter: JitterBuffer,
    decoder: Decoder,
    stretch: TimeStretch,
    decoded: Vec<i16>,
    counts: VoiceCounts,
}

enum Decoder {
    Opus(Box<OpusDecoder>),
    G711 { codec: G711, plc: Box<Plc> },
}

impl VoiceReceiver {
    /// A receiver with NetEQ's jitter-buffer settings; for Opus, one frame
    /// more while packets are being lost, so that FEC can rebuild them.
    pub fn new(config: VoiceConfig) -> Result<Self, CodecError> {
        let mut jitter = JitterConfig::new(config.codec.clock_rate());
        jitter.fec_lookahead = matches!(config.codec, VoiceCodec::Opus { .. });
        Self::with_jitter(config, jitter)
    }

    pub fn with_jitter(config: VoiceConfig, jitter: JitterConfig) -> Result<Self, CodecError> {
        let rate = config.codec.sample_rate();
        let decoder = match config.codec {
            VoiceCodec::Opus { .. } => Decoder::Opus(Box::new(OpusDecoder::new(rate)?)),
            VoiceCodec::Pcmu => Decoder::G711 {
                codec: G711::new(Law::Mu),
                plc: Box::new(Plc::new()),
            },
            VoiceCodec::Pcma => Decoder::G711 {
                codec: G711::new(Law::A),
                plc: Box::new(Plc::new()),
            },
        };
        Ok(Self {
            config,
            jitter: JitterBuffer::new(jitter),
            decoder,
            stretch: TimeStretch::new(rate),
            // Opus packets hold at most 120 ms.
            decoded: vec![0; rate as usize * 120 / 1000],
            counts: VoiceCounts::default(),
        })
    }

    /// Buffers a payload that arrived at `now` (extended sequence number and
    /// timestamp, as the media stream reports them).
    pub fn insert(&mut self, now: Instant, seq: u64, timestamp: u64, payload: &[u8]) {
        if self.jitter.insert(now, seq, timestamp, payload) == InsertResult::TooLate {
            self.counts.late += 1;
        }
    }

    /// Buffers a redundant copy (RFC 2198) of an earlier frame, carried by a
    /// later packet: it fills the frame's gap if that has not been played
    /// yet. From the first copy on, the buffer holds a frame more after each
    /// loss (as for Opus FEC), so that the next packet's copy arrives before
    /// the gap has to be concealed.
    pub fn insert_redundant(&mut self, seq: u64, timestamp: u64, payload: &[u8]) {
        self.jitter.set_fec_lookahead(true);
        self.jitter.insert_recovered(seq, timestamp, payload);
    }

    /// Whether the next [`VoiceReceiver::pull`] decodes a packet that is
    /// here (see [`JitterBuffer::next_ready`]).
    pub fn next_ready(&self) -> bool {
        self.jitter.next_ready()
    }

    /// Appends the next piece of audio for the speaker to `out` (one frame,
    /// longer or shorter when the buffer is time-stretching) and returns how
    /// many samples it appended; never 0, so the speaker keeps time.
    pub fn pull(&mut self, now: Instant, out: &mut Vec<i16>) -> usize {
        let clock = u64::from(self.config.codec.clock_rate());
        let rate = u64::from(self.config.codec.sample_rate());
        // The frame as the packets have it, which the sender may change.
        let frame =
            ((self.jitter.frame_ticks() * rate / clock) as usize).clamp(1, self.decoded.len());
        if let Decoder::Opus(decoder) = &mut self.decoder {
            decoder.set_frame_samples(frame);
        }
        let start = out.len();
        let decoded = &mut self.decoded;
        let mut packet_samples = None;
        let (n, how) = match self.jitter.pop(now) {
            Playout::Packet {
                payload, stretch, ..
            } => {
                self.counts.decoded += 1;
                let n = match &mut self.decoder {
                    Decoder::Opus(decoder) => decoder.decode(payload, decoded).unwrap_or(0),
                    Decoder::G711 { codec, plc } => {
                        let n = codec.decode(payload, decoded).unwrap_or(0);
                        plc.good_frame(&mut decoded[..n]);
                        n
                    }
                };
                packet_samples = Some(n as u64);
                (n, stretch)
            }
            Playout::Lost { next, stretch, .. } => {
                let n = match &mut self.decoder {
                    Decoder::Opus(decoder) => match next {
                        Some(next) => {
                            self.counts.fec_recovered += 1;
                            decoder.decode_fec(next, &mut decoded[..frame]).unwrap_or(0)
                        }
                        None => decoder.conceal(&mut decoded[..frame]).unwrap_or(0),
                    },
                    Decoder::G711 { plc, .. } => {
                        plc.lost_frame(&mut decoded[..frame]);
                        frame
                    }
                };
                (n, stretch)
            }
            Playout::Empty => {
                // Right after speech, concealment fades the last sound out;
                // before the first packet, silence.
                let n = if self.jitter.is_playing() {
                    match &mut self.decoder {
                        Decoder::Opus(decoder) => {
                            decoder.conceal(&mut decoded[..frame]).unwrap_or(0)
                        }
                        Decoder::G711 { plc, .. } => {
                            plc.lost_frame(&mut decoded[..frame]);
                            frame
                        }
                    }
                } else {
                    decoded[..frame].fill(0);
                    frame
                };
                (n, Stretch::Normal)
            }
        };
        let max_cut = (self.jitter.excess() * rate / clock) as usize;
        let max_add = (self.jitter.deficit() * rate / clock) as usize;
        // Up to a frame of excess waits for a quiet frame.
        let quiet_only = max_cut <= frame;
        let produced = apply(
            &mut self.stretch,
            how,
            (max_cut, max_add, quiet_only),
            &self.decoded[..n],
            out,
        );
        let produced = if produced == 0 {
            // A decoder that gave nothing: keep time with silence.
            out.truncate(start);
            out.resize(start + frame, 0);
            frame
        } else {
            produced
        };
        if let Some(n) = packet_samples.filter(|&n| n > 0) {
            self.jitter.packet_ticks(n * clock / rate);
        }
        self.jitter.played(produced as u64 * clock / rate);
        produced
    }

    pub fn counts(&self) -> VoiceCounts {
        let stats = self.jitter.stats();
        VoiceCounts {
            concealed: stats.lost,
            red_recovered: stats.recovered,
            ..self.counts
        }
    }

    pub fn jitter(&self) -> &JitterBuffer {
        &self.jitter
    }

    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }
}

/// Plays `pcm` as the jitter buffer asked. An acceleration cuts at most
/// `max_cut` samples, so that it does not undershoot the target; with
/// `quiet_only`, it waits for a quiet frame (a pause between words) rather
/// than shorten speech, which PESQ and ears both notice. An expansion adds
/// about `max_add`, what brings the level to mid-band, so that it does not
/// overshoot into a delay only an acceleration would undo.
fn apply(
    stretch: &mut TimeStretch,
    how: Stretch,
    (max_cut, max_add, quiet_only): (usize, usize, bool),
    pcm: &[i16],
    out: &mut Vec<i16>,
) -> usize {
    match how {
        Stretch::Normal => stretch.normal(pcm, out),
        Stretch::Accelerate => stretch.accelerate_at_most(pcm, max_cut, quiet_only, out),
        Stretch::Expand => stretch.expand_at_most(pcm, max_add, out),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dsp::correlate;
    use crate::dsp::signal::test_speech;

    /// Frames sent in order and pulled on time come out as the speech that
    /// went in, less than 100 ms late.
    fn round_trip(codec: VoiceCodec) {
        let config = VoiceConfig {
            codec,
            frame_ms: 20,
        };
        let rate = codec.sample_rate();
        let speech = test_speech(rate, 3.0);
        let mut encoder = VoiceEncoder::new(config).unwrap();
        let mut receiver = VoiceReceiver::new(config).unwrap();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut payload = [0u8; 1500];
        let mut timestamp = 0u64;
        let mut seq = 0u64;
        let per_ms = rate as usize / 1000;
        for (n, frame) in speech.chunks_exact(config.frame_samples()).enumerate() {
            // Sent when its last sample is in, arriving 5 ms later.
            let ms = 20 * (n + 1) + 5;
            let now = t0 + Duration::from_millis(ms as u64);
            let len = encoder.encode(frame, &mut payload).unwrap();
            if len > 0 {
                receiver.insert(now, seq, timestamp, &payload[..len]);
                seq += 1;
            }
            timestamp += u64::from(config.frame_ticks());
            // The speaker, playing in real time from 0, asks for more as it
            // runs out, up to now.
            while out.len() < ms * per_ms {
                let step = t0 + Duration::from_micros((out.len() * 1000 / per_ms) as u64);
                receiver.pull(step, &mut out);
            }
        }
        // The buffer moves its phase to play each packet soon after it
        // arrives (the delay changes by a few ms early on), so the speech is
        // judged a quarter of a second at a time.
        let quarter = rate as usize / 4;
        let mut pieces: Vec<(f64, usize)> = (1..speech.len() / quarter - 1)
            .map(|i| {
                let piece = &speech[i * quarter..(i + 1) * quarter];
                correlate::align(piece, &out[i * quarter..], quarter)
                    .map_or((0.0, usize::MAX), |a| (a.correlation, a.lag))
            })
            .collect();
        pieces.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(pieces[1].0 > 0.8, "{codec:?}: {pieces:?}");
        assert!(
            pieces.iter().all(|&(_, lag)| lag < rate as usize / 10),
            "{codec:?}: {pieces:?}"
        );
        assert_eq!(receiver.counts().concealed, 0);
    }

    #[test]
    fn opus_round_trip() {
        round_trip(VoiceCodec::Opus { bitrate: 24_000 });
    }

    #[test]
    fn pcmu_round_trip() {
        round_trip(VoiceCodec::Pcmu);
    }

    /// The sender changes its packet time mid-stream (20, 60, 40, 20 ms),
    /// as the rate control does: the receiver follows from the packets
    /// alone, playing every one, and the speech comes out whole.
    #[test]
    fn the_receiver_follows_a_change_of_packet_time() {
        let config = VoiceConfig {
            codec: VoiceCodec::Opus { bitrate: 20_000 },
            frame_ms: 20,
        };
        let speech = test_speech(16_000, 4.0);
        let mut encoder = VoiceEncoder::new(config).unwrap();
        let mut receiver = VoiceReceiver::new(config).unwrap();
        let t0 = Instant::now();
        let (mut out, mut payload) = (Vec::new(), [0u8; 1500]);
        let (mut at, mut seq, mut timestamp, mut n) = (0usize, 0u64, 0u64, 0usize);
        let mut ms = 0u64;
        loop {
            let setting = Setting {
                bitrate: 20_000,
                frame_ms: [20, 60, 40, 20][(n / 15) % 4],
                expected_loss: 0.05,
                redundancy: 0,
            };
            encoder.adapt(&setting).unwrap();
            let frame = encoder.config().frame_samples();
            if at + frame > speech.len() {
                break;
            }
            ms += u64::from(encoder.config().frame_ms);
            // Sent when the frame is complete, arriving 5 ms later.
            let now = t0 + Duration::from_millis(ms + 5);
            let len = encoder
                .encode(&speech[at..at + frame], &mut payload)
                .unwrap();
            if len > 0 {
                receiver.insert(now, seq, timestamp, &payload[..len]);
                seq += 1;
            }
            timestamp += u64::from(encoder.config().frame_ticks());
            at += frame;
            n += 1;
            // The speaker, in 10 ms steps up to now.
            while out.len() < (ms as usize + 5) * 16 {
                let step = t0 + Duration::from_millis(out.len() as u64 / 16);
                receiver.pull(step, &mut out);
            }
        }
        // The speaker plays on until what is buffered is out (the target
        // may be several frames when the stream ends).
        let end = out.len() + 16 * 300;
        while out.len() < end {
            let step = t0 + Duration::from_millis(out.len() as u64 / 16);
            receiver.pull(step, &mut out);
        }
        assert_eq!(receiver.counts().concealed, 0, "{:?}", receiver.counts());
        // Every packet played.
        assert_eq!(seq, receiver.counts().decoded, "{:?}", receiver.counts());
        // The delay moves as the packets grow and shrink (the buffer
        // stretches to follow): a quarter of a second at a time, the speech
        // is there.
        let mut pieces: Vec<f64> = (1..at / 4_000 - 1)
            .map(|i| {
                let piece = &speech[i * 4_000..(i + 1) * 4_000];
                correlate::align(piece, &out[i * 4_000..], 16_000 / 4)
                    .map_or(0.0, |a| a.correlation)
            })
            .collect();
        pieces.sort_by(f64::total_cmp);
        assert!(pieces[pieces.len() / 2] > 0.8, "{pieces:?}");
        assert_eq!(receiver.jitter().frame_ticks(), 960);
    }

    #[test]
    fn a_missing_packet_is_concealed_and_time_kept() {
        let config = VoiceConfig {
            codec: VoiceCodec::Pcma,
            frame_ms: 20,
        };
        let mut encoder = VoiceEncoder::new(config).unwrap();
        let mut receiver = VoiceReceiver::new(config).unwrap();
        let speech = test_speech(8_000, 1.0);
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut payload = [0u8; 1500];
        for (n, frame) in speech.chunks_exact(160).enumerate() {
            let now = t0 + Duration::from_millis(20 * n as u64);
            let len = encoder.encode(frame, &mut payload).unwrap();
            if n != 20 {
                receiver.insert(now, n as u64, 160 * n as u64, &payload[..len]);
            }
            while out.len() < (n + 1) * 160 {
                receiver.pull(now, &mut out);
            }
        }
        assert_eq!(receiver.counts().concealed, 1);
        assert!((out.len() as i64 - speech.len() as i64).abs() <= 320);
    }
}
