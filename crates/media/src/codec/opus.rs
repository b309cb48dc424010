//! Opus (RFC 6716) for calls, mono, as RTP carries it (RFC 7587): the VoIP
//! application, in-band FEC, DTX and the decoder's own concealment.
//!
//! The codec is `ropus`, a pure-Rust port of libopus (fixed point) that is
//! bit-exact against the C reference, so the default build needs no C
//! toolchain, no cmake and no libopus. Its packets and libopus's decode the
//! same either way. Where the system has libopus, its encoder is used
//! instead: it costs about a quarter less CPU ([`super::libopus`]).
//!
//! Delay: the encoder looks ahead 2.5 ms plus 4 ms of delay compensation
//! ([`OpusEncoder::lookahead`]); the decoded audio follows the input by that
//! 6.5 ms at any frame size, measured by the tests below (a frame adds its own
//! length on the sender's side before it can be encoded).

use ropus::{Application, Bitrate, Channels, DecodeMode, Decoder, Encoder, InbandFec};

use crate::codec::error::CodecError;
use crate::codec::libopus;
use crate::dsp::vad::{Activity, Vad};

/// Sample rates Opus runs at, in Hz.
pub const SAMPLE_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];
/// Frame lengths a call may use, in milliseconds.
pub const FRAME_MS: [u32; 4] = [10, 20, 40, 60];
/// Largest packet Opus produces for one frame (RFC 6716 §3.4, R5).
pub const MAX_PACKET: usize = 1_275;

const CODEC: &str = "Opus";

/// Which Opus encoder an [`OpusEncoder`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderKind {
    /// ropus, built in.
    Builtin,
    /// The system's libopus ([`super::libopus`]).
    System,
}

impl EncoderKind {
    /// libopus where it loads, unless `IPPHONE_OPUS` says otherwise.
    pub fn preferred() -> Result<Self, CodecError> {
        Self::chosen(std::env::var("IPPHONE_OPUS").ok().as_deref())
    }

    /// The encoder `IPPHONE_OPUS=setting` asks for: `ropus` the built-in
    /// one, `libopus` libopus or an error; unset or anything else, libopus
    /// where it loads, else the built-in one.
    fn chosen(setting: Option<&str>) -> Result<Self, CodecError> {
        match setting {
            Some("ropus") => Ok(EncoderKind::Builtin),
            Some("libopus") => libopus::version()
                .map(|_| EncoderKind::System)
                .map_err(|e| setup(format!("IPPHONE_OPUS=libopus: {e}"))),
            _ if libopus::version().is_ok() => Ok(EncoderKind::System),
            _ => Ok(EncoderKind::Builtin),
        }
    }

    /// What it is, for logs and the bench: `ropus` or libopus's version.
    pub fn describe(self) -> String {
        match self {
            EncoderKind::Builtin => "ropus 0.12 (built in)".into(),
            EncoderKind::System => libopus::version().unwrap_or("libopus").into(),
        }
    }
}

enum Engine {
    Builtin(Box<Encoder>),
    System(libopus::Encoder),
}

impl Engine {
    fn set_bitrate(&mut self, bitrate: u32) -> Result<(), CodecError> {
        let checked = bits(bitrate)?;
        self.set(|e| e.set_bitrate(checked), |e| e.set_bitrate(bitrate))
    }

    fn set_packet_loss_perc(&mut self, percent: u8) -> Result<(), CodecError> {
        self.set(
            |e| e.set_packet_loss_perc(percent),
            |e| e.set_packet_loss_perc(percent),
        )
    }

    fn set_complexity(&mut self, complexity: u8) -> Result<(), CodecError> {
        self.set(
            |e| e.set_complexity(complexity),
            |e| e.set_complexity(complexity),
        )
    }

    /// One setting, given to whichever encoder this is.
    fn set<E: std::fmt::Display>(
        &mut self,
        builtin: impl FnOnce(&mut Encoder) -> Result<(), E>,
        system: impl FnOnce(&mut libopus::Encoder) -> Result<(), String>,
    ) -> Result<(), CodecError> {
        match self {
            Engine::Builtin(encoder) => builtin(encoder).map_err(|e| setup(e.to_string())),
            Engine::System(encoder) => system(encoder).map_err(setup),
        }
    }
}

/// Encodes mono speech into Opus packets, one frame per packet.
pub struct OpusEncoder {
    inner: Engine,
    /// The bitrate, complexity and expected loss the engine was last given.
    bitrate: u32,
    complexity: u8,
    loss_set: u8,
    sample_rate: u32,
    frame_samples: usize,
    /// With DTX: which frames are pauses. Opus's own DTX stays off: its
    /// detector takes a microphone's faint noise for sound (DTX then seldom
    /// starts) and, coming out of a pause, dropped the second frame of a
    /// sentence that began quietly.
    vad: Option<Vad>,
    /// Samples encoded since a frame was last sent; `None` before the first.
    unsent: Option<usize>,
    /// The loss the far end last reported, in percent.
    loss_pct: u8,
    /// Samples encoded so far, and until when the path counts as lossy.
    encoded: u64,
    lossy_until: u64,
}

/// The encoder's complexity on a clean path below [`CHEAP_FROM`]: a fifth
/// of the CPU of the default (about 0.8 % of a core for 16 kHz speech
/// here, against 1.9 %), and no worse on speech (PESQ-WB 4.46 against 4.31
/// at 24 kbit/s).
const CLEAN_COMPLEXITY: u8 = 5;
/// The complexity on a clean path from [`CHEAP_FROM`] up, where the
/// default call runs. libopus 1.3.1, 16 kHz speech, PESQ-WB of the offline
/// round trip (codec2's Harvard sentences / LibriVox), complexity 2 against 5:
/// 4.41 / 4.24 against 4.45 / 4.28 at 24 kbit/s, 4.49 / 4.33 against
/// 4.53 / 4.36 at 32; in a call's rhythm the encoder takes about 170 µs a
/// frame against 215, a fifth of the call's CPU less. Below 24 kbit/s the
/// price climbs (4.00 / 3.65 against 4.19 / 3.95 at 16), so the rates a
/// slow link is given keep complexity 5.
const CHEAP_COMPLEXITY: u8 = 2;
/// See [`CHEAP_COMPLEXITY`].
const CHEAP_FROM: u32 = 24_000;
/// The complexity while packets are being lost. Opus codes in-band FEC
/// only when its effective rate, which counts complexity, clears a
/// threshold: at 24 kbit/s, 8 and more do, 7 and less do not (the bench's
/// grid at 5 % loss: PESQ-WB 3.87 against 3.40).
const FEC_COMPLEXITY: u8 = 9;
/// How long a reported loss keeps FEC on: losses come and go, and a
/// report of none is one second's luck as often as a clean path.
const LOSS_MEMORY_SECONDS: u64 = 10;

fn complexity(lossy: bool, bitrate: u32) -> u8 {
    if lossy {
        FEC_COMPLEXITY
    } else if bitrate >= CHEAP_FROM {
        CHEAP_COMPLEXITY
    } else {
        CLEAN_COMPLEXITY
    }
}

/// In a pause, DTX still sends one frame this often (and the stream's very
/// first frame): so that a far end that answers whoever sends first hears
/// us, and one that times out a silent stream, or a NAT binding, does not
/// let go. At 2 s it costs nothing in a conversation's short pauses.
const KEEPALIVE_SECONDS: usize = 2;

impl OpusEncoder {
    /// A VoIP encoder at `sample_rate` Hz (one of [`SAMPLE_RATES`]) taking
    /// `frame_ms` frames (one of [`FRAME_MS`]), variable bitrate around
    /// `bitrate` bit/s.
    ///
    /// With `fec`, each packet also carries the previous frame at a lower
    /// rate (SILK LBRR, RFC 6716 §4.2.4), which the encoder spends bits on
    /// in proportion to `expected_loss_pct`: at 0 % it sends none. With
    /// `dtx`, pauses are not sent at all (see [`OpusEncoder::encode`]).
    ///
    /// The encoder is [`EncoderKind::preferred`].
    pub fn new(
        sample_rate: u32,
        frame_ms: u32,
        bitrate: u32,
        fec: bool,
        expected_loss_pct: u8,
        dtx: bool,
    ) -> Result<Self, CodecError> {
        let kind = EncoderKind::preferred()?;
        Self::with_kind(
            kind,
            sample_rate,
            frame_ms,
            bitrate,
            fec,
            expected_loss_pct,
            dtx,
        )
    }

    /// As [`OpusEncoder::new`], with the encoder `kind`.
    pub fn with_kind(
        kind: EncoderKind,
        sample_rate: u32,
        frame_ms: u32,
        bitrate: u32,
        fec: bool,
        expected_loss_pct: u8,
        dtx: bool,
    ) -> Result<Self, CodecError> {
        if !SAMPLE_RATES.contains(&sample_rate) || !FRAME_MS.contains(&frame_ms) {
            return Err(setup(format!(
                "{sample_rate} Hz with {frame_ms} ms frames is not an Opus setting"
            )));
        }
        let loss = expected_loss_pct.min(100);
        let complexity = complexity(loss > 0, bitrate);
        let inner = match kind {
            EncoderKind::Builtin => Engine::Builtin(Box::new(
                Encoder::builder(sample_rate, Channels::Mono, Application::Voip)
                    .bitrate(bits(bitrate)?)
                    .inband_fec(if fec {
                        InbandFec::Enabled
                    } else {
                        InbandFec::Disabled
                    })
                    .packet_loss_perc(loss)
                    .dtx(false)
                    .complexity(complexity)
                    .build()
                    .map_err(|e| setup(e.to_string()))?,
            )),
            EncoderKind::System => {
                bits(bitrate)?;
                let mut encoder = libopus::Encoder::new(sample_rate).map_err(setup)?;
                encoder.set_bitrate(bitrate).map_err(setup)?;
                encoder.set_inband_fec(fec).map_err(setup)?;
                encoder.set_packet_loss_perc(loss).map_err(setup)?;
                encoder.set_dtx(false).map_err(setup)?;
                encoder.set_complexity(complexity).map_err(setup)?;
                Engine::System(encoder)
            }
        };
        Ok(Self {
            inner,
            bitrate,
            complexity,
            loss_set: loss,
            sample_rate,
            frame_samples: (sample_rate * frame_ms / 1000) as usize,
            vad: dtx.then(|| Vad::new(sample_rate)),
            unsent: None,
            loss_pct: expected_loss_pct.min(100),
            encoded: 0,
            lossy_until: if expected_loss_pct > 0 { u64::MAX } else { 0 },
        })
    }

    /// Changes the frame length (one of [`FRAME_MS`]) from the next frame
    /// on, keeping the encoder's state: a longer frame spends fewer packets,
    /// so less on headers, on a slow link. The decoder reads each packet's
    /// length from its TOC byte (RFC 6716 §3.1), so nothing is signalled.
    pub fn set_frame_ms(&mut self, frame_ms: u32) -> Result<(), CodecError> {
        if !FRAME_MS.contains(&frame_ms) {
            return Err(setup(format!("{frame_ms} ms is not an Opus frame length")));
        }
        self.frame_samples = (self.sample_rate * frame_ms / 1000) as usize;
        Ok(())
    }

    /// Changes the target bitrate from the next frame on, keeping the
    /// encoder's state (for congestion control).
    pub fn set_bitrate(&mut self, bitrate: u32) -> Result<(), CodecError> {
        self.inner.set_bitrate(bitrate)?;
        self.bitrate = bitrate;
        self.apply_loss()
    }

    /// The complexity and expected loss the encoder itself reports.
    #[cfg(test)]
    fn engine_settings(&self) -> (u32, u32) {
        match &self.inner {
            Engine::Builtin(encoder) => (
                u32::from(encoder.complexity()),
                u32::from(encoder.packet_loss_perc()),
            ),
            Engine::System(encoder) => (
                encoder.complexity().expect("libopus answers"),
                encoder.packet_loss_perc().expect("libopus answers"),
            ),
        }
    }

    /// Which encoder this is.
    pub fn kind(&self) -> EncoderKind {
        match self.inner {
            Engine::Builtin(_) => EncoderKind::Builtin,
            Engine::System(_) => EncoderKind::System,
        }
    }

    /// Changes the loss rate the FEC is sized for, 0 to 100 % (from RTCP
    /// receiver reports). A loss turns FEC on, at the complexity it needs,
    /// for the next 10 s at least; on a path that stays clean the encoder
    /// spends neither bits nor CPU on it. (A loss given to [`OpusEncoder::new`]
    /// keeps FEC on for good.)
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), CodecError> {
        self.loss_pct = percent.min(100);
        if percent > 0 {
            let hold = LOSS_MEMORY_SECONDS * u64::from(self.sample_rate);
            self.lossy_until = self.lossy_until.max(self.encoded.saturating_add(hold));
        }
        self.apply_loss()
    }

    /// Sets the encoder's loss and complexity for the path as it is now.
    fn apply_loss(&mut self) -> Result<(), CodecError> {
        let lossy = self.encoded < self.lossy_until;
        // While lossy, at least 5 %, even when the last report said none.
        let percent = if lossy { self.loss_pct.max(5) } else { 0 };
        if self.loss_set != percent {
            self.inner.set_packet_loss_perc(percent)?;
            self.loss_set = percent;
        }
        let wanted = complexity(lossy, self.bitrate);
        if self.complexity != wanted {
            self.inner.set_complexity(wanted)?;
            self.complexity = wanted;
        }
        Ok(())
    }

    /// Samples in one frame.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// The encoder's lookahead in samples at its rate: how far the decoded
    /// audio lags the input.
    pub fn lookahead(&self) -> usize {
        match &self.inner {
            Engine::Builtin(encoder) => encoder.lookahead() as usize,
            // What every libopus and ropus answers: 2.5 ms and 4 ms.
            Engine::System(encoder) => encoder
                .lookahead()
                .map_or(self.sample_rate as usize * 13 / 2000, |n| n as usize),
        }
    }

    /// Encodes one frame of exactly [`OpusEncoder::frame_samples`] samples
    /// into `out` (room for [`MAX_PACKET`] bytes is always enough) and
    /// returns the packet's length.
    ///
    /// 0 means there is nothing to send: with DTX, a frame of a pause (the
    /// background, more than 100 ms after speech; [`crate::dsp::vad`]),
    /// but for the stream's first frame and one every 2 s.
    /// The receiver sees the RTP timestamp jump and conceals, and Opus's
    /// concealment after background noise goes on as comfort noise near its
    /// level (-48 dBFS for a -45 dBFS room; -68 dBFS, all through a 10 s
    /// pause, for -60 dBFS: measured below), so no periodic update is
    /// sent but every 2 s, to keep the stream alive: at 24 kbit/s an update
    /// frame of faint noise costs about as much as speech (some 90 bytes
    /// with headers), and one every 400 ms would add 0.9 kbit/s to a call
    /// of 2 s of talk and 2 s of pause. The frame
    /// is encoded all the same, so that the encoder's state runs on with
    /// the audio.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        if pcm.len() != self.frame_samples {
            return Err(CodecError::FrameLength {
                codec: CODEC,
                expected: self.frame_samples,
                got: pcm.len(),
            });
        }
        let was_lossy = self.encoded < self.lossy_until;
        self.encoded += pcm.len() as u64;
        if was_lossy && self.encoded >= self.lossy_until {
            self.apply_loss()?;
        }
        let activity = self.vad.as_mut().map(|vad| vad.classify(pcm));
        let len = match &mut self.inner {
            Engine::Builtin(encoder) => encoder.encode(pcm, out).map_err(|e| e.to_string()),
            Engine::System(encoder) => encoder.encode(pcm, out),
        }
        .map_err(|reason| CodecError::Encode {
            codec: CODEC,
            reason,
        })?;
        let keepalive = self
            .unsent
            .is_none_or(|n| n + pcm.len() > KEEPALIVE_SECONDS * self.sample_rate as usize);
        if len <= 2 || (activity == Some(Activity::Silence) && !keepalive) {
            self.unsent = self.unsent.map(|n| n + pcm.len());
            return Ok(0);
        }
        self.unsent = Some(0);
        Ok(len)
    }
}

/// Decodes Opus packets into mono audio, and conceals lost ones.
pub struct OpusDecoder {
    inner: Decoder,
    sample_rate: u32,
    /// Samples in the last frame decoded: what a lost frame stands in for.
    frame_samples: usize,
    /// Longest frame of the stream (120 ms): bounds what `decode` may write.
    max_samples: usize,
}

impl OpusDecoder {
    /// A decoder at `sample_rate` Hz (one of [`SAMPLE_RATES`]), whatever
    /// rate the sender encoded at.
    pub fn new(sample_rate: u32) -> Result<Self, CodecError> {
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(setup(format!("{sample_rate} Hz is not an Opus rate")));
        }
        let inner = Decoder::new(sample_rate, Channels::Mono).map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            inner,
            sample_rate,
            frame_samples: (sample_rate / 50) as usize,
            max_samples: (sample_rate * 120 / 1000) as usize,
        })
    }

    /// Decodes `packet` into `out` and returns the number of samples: the
    /// packet's duration, which `out` must have room for.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if packet.is_empty() {
            return Err(CodecError::Decode {
                codec: CODEC,
                reason: "empty packet".into(),
            });
        }
        let room = out.len().min(self.max_samples);
        let n = self
            .inner
            .decode(packet, &mut out[..room], DecodeMode::Normal)
            .map_err(|e| decode_error(&e))?;
        self.frame_samples = n;
        Ok(n)
    }

    /// Recovers the lost frame before `next_packet` from the redundancy that
    /// packet carries (in-band FEC), or conceals it if it carries none.
    /// Writes one frame (as long as the last one decoded) into `out` and
    /// returns its length. Decode `next_packet` itself with
    /// [`OpusDecoder::decode`] afterwards.
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let frame = self.frame_out(out)?;
        self.inner
            .decode(next_packet, frame, DecodeMode::Fec)
            .map_err(|e| decode_error(&e))
    }

    /// Conceals a lost frame (as long as the last one decoded) by the
    /// decoder's extrapolation of what came before; returns its length.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        let frame = self.frame_out(out)?;
        self.inner
            .decode(&[], frame, DecodeMode::Normal)
            .map_err(|e| decode_error(&e))
    }

    /// Samples that a lost frame stands in for.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Sets how long the next lost frame is ([`OpusDecoder::conceal`],
    /// [`OpusDecoder::decode_fec`]), when the caller knows better than the
    /// last packet's length: a jitter buffer that has seen the sender change
    /// its packet time. A multiple of 2.5 ms up to 120 ms; others are ignored.
    pub fn set_frame_samples(&mut self, samples: usize) {
        let step = (self.sample_rate / 400) as usize;
        if samples > 0 && samples.is_multiple_of(step) && samples <= self.max_samples {
            self.frame_samples = samples;
        }
    }

    fn frame_out<'a>(&self, out: &'a mut [i16]) -> Result<&'a mut [i16], CodecError> {
        let available = out.len();
        out.get_mut(..self.frame_samples)
            .ok_or(CodecError::BufferTooSmall {
                codec: CODEC,
                needed: self.frame_samples,
                available,
            })
    }
}

fn bits(bitrate: u32) -> Result<Bitrate, CodecError> {
    Bitrate::try_bits(bitrate).map_err(|e| setup(format!("bitrate {}: out of range", e.0)))
}

fn setup(reason: String) -> CodecError {
    CodecError::Setup {
        codec: CODEC,
        reason,
    }
}

fn decode_error(e: &ropus::DecodeError) -> CodecError {
    CodecError::Decode {
        codec: CODEC,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::resample::Resampler;
    use crate::dsp::correlate::align;

    /// Harvard sentences, 10.8 s, 16 kHz mono (Debian `codec2-examples`,
    /// which the README's test command installs).
    const SPEECH: &str = "/usr/share/codec2/raw/speech_orig_16k.wav";

    /// Both encoders. libopus must be installed (Debian `libopus0`, which
    /// the README's test command installs): a test that skipped it would
    /// pass without testing what calls run.
    fn kinds() -> [EncoderKind; 2] {
        if let Err(e) = libopus::version() {
            panic!("{e}: run scripts/test, which installs it");
        }
        [EncoderKind::Builtin, EncoderKind::System]
    }

    /// `IPPHONE_OPUS` picks the encoder; without it, libopus where it loads.
    #[test]
    fn ipphone_opus_chooses_the_encoder() {
        kinds();
        let chosen = |setting| EncoderKind::chosen(setting).expect("libopus is installed");
        assert_eq!(chosen(Some("ropus")), EncoderKind::Builtin);
        assert_eq!(chosen(Some("libopus")), EncoderKind::System);
        assert_eq!(chosen(None), EncoderKind::System);
        assert_eq!(chosen(Some("")), EncoderKind::System);
    }

    fn speech(rate: u32) -> Vec<i16> {
        let reader = hound::WavReader::open(SPEECH).unwrap_or_else(|e| {
            panic!("cannot read {SPEECH} ({e}): run scripts/test, which installs codec2-examples")
        });
        assert_eq!(reader.spec().sample_rate, 16_000, "{SPEECH}");
        let pcm: Vec<i16> = reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("the WAV file decodes");
        if rate == 16_000 {
            return pcm;
        }
        let mut out = Vec::new();
        Resampler::new(16_000, rate).process(&pcm, &mut out);
        out
    }

    /// Encodes `pcm` frame by frame; `None` where the encoder sent nothing.
    fn encode_all(encoder: &mut OpusEncoder, pcm: &[i16]) -> Vec<Option<Vec<u8>>> {
        let mut buffer = [0u8; MAX_PACKET];
        pcm.chunks_exact(encoder.frame_samples())
            .map(|frame| {
                let n = encoder.encode(frame, &mut buffer).expect("encodes");
                (n > 0).then(|| buffer[..n].to_vec())
            })
            .collect()
    }

    fn snr_db(reference: &[i16], test: &[i16]) -> f64 {
        let signal: f64 = reference.iter().map(|&s| f64::from(s).powi(2)).sum();
        let noise: f64 = reference
            .iter()
            .zip(test)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        10.0 * (signal / noise.max(1e-9)).log10()
    }

    #[test]
    fn speech_survives_every_rate_and_frame_length() {
        for kind in kinds() {
            speech_survives_every_rate_and_frame_length_with(kind);
        }
    }

    fn speech_survives_every_rate_and_frame_length_with(kind: EncoderKind) {
        eprintln!("{}", kind.describe());
        for rate in [8_000, 16_000, 48_000] {
            let input = speech(rate);
            let input = &input[..input.len() / 3];
            for frame_ms in FRAME_MS {
                let mut encoder =
                    OpusEncoder::with_kind(kind, rate, frame_ms, 24_000, false, 0, false)
                        .expect("valid settings");
                let mut decoder = OpusDecoder::new(rate).expect("valid rate");
                let mut output = Vec::new();
                let mut buffer = vec![0i16; rate as usize * 120 / 1000];
                for packet in encode_all(&mut encoder, input) {
                    let packet = packet.expect("no DTX");
                    let n = decoder.decode(&packet, &mut buffer).expect("decodes");
                    assert_eq!(n, encoder.frame_samples());
                    output.extend_from_slice(&buffer[..n]);
                }
                let alignment = align(input, &output, rate as usize / 10).expect("not silent");
                assert!(
                    alignment.correlation > 0.9,
                    "{rate} Hz, {frame_ms} ms: {alignment:?}"
                );
                // The lookahead, give or take 0.1 ms (the resampler's phase).
                let lag = alignment.lag as f64 - encoder.lookahead() as f64;
                assert!(
                    lag.abs() <= f64::from(rate) / 10_000.0,
                    "{rate} Hz, {frame_ms} ms: lag {} for a lookahead of {}",
                    alignment.lag,
                    encoder.lookahead()
                );
                eprintln!(
                    "{rate} Hz {frame_ms} ms: correlation {:.4}, lag {} samples ({:.2} ms)",
                    alignment.correlation,
                    alignment.lag,
                    alignment.lag_ms(rate)
                );
            }
        }
    }

    #[test]
    fn in_band_fec_recovers_lost_frames_better_than_concealment() {
        for kind in kinds() {
            in_band_fec_recovers_lost_frames_better_than_concealment_with(kind);
        }
    }

    fn in_band_fec_recovers_lost_frames_better_than_concealment_with(kind: EncoderKind) {
        eprintln!("{}", kind.describe());
        let input = speech(16_000);
        let mut encoder = OpusEncoder::with_kind(kind, 16_000, 20, 24_000, true, 20, false)
            .expect("valid settings");
        let delay = encoder.lookahead();
        let packets: Vec<Vec<u8>> = encode_all(&mut encoder, &input)
            .into_iter()
            .map(|p| p.expect("no DTX"))
            .collect();
        // Every seventh frame lost, never the last.
        let lost = |i: usize| i % 7 == 3 && i + 1 < packets.len();

        let run = |recover: bool| {
            let mut decoder = OpusDecoder::new(16_000).expect("valid rate");
            let mut output = Vec::new();
            let mut buffer = [0i16; 1_920];
            for (i, packet) in packets.iter().enumerate() {
                let n = if !lost(i) {
                    decoder.decode(packet, &mut buffer)
                } else if recover {
                    decoder.decode_fec(&packets[i + 1], &mut buffer)
                } else {
                    decoder.conceal(&mut buffer)
                };
                let n = n.expect("decodes");
                assert_eq!(n, 320);
                output.extend_from_slice(&buffer[..n]);
            }
            output
        };
        let (fec, plc) = (run(true), run(false));
        // Compare the lost frames only, with the input moved by the codec's delay.
        let lost_audio = |v: &[i16], shift: usize| -> Vec<i16> {
            (0..packets.len())
                .filter(|&i| lost(i))
                .flat_map(|i| v[i * 320 + shift..(i + 1) * 320 + shift].to_vec())
                .collect()
        };
        let reference = lost_audio(&input, 0);
        let (fec_snr, plc_snr) = (
            snr_db(&reference, &lost_audio(&fec, delay)),
            snr_db(&reference, &lost_audio(&plc, delay)),
        );
        eprintln!("lost frames: FEC {fec_snr:.1} dB, PLC {plc_snr:.1} dB");
        assert!(
            fec_snr > plc_snr + 3.0,
            "FEC {fec_snr:.1} dB, PLC {plc_snr:.1} dB"
        );
        assert!(fec_snr > 3.0, "FEC {fec_snr:.1} dB");
        // Without FEC in the packets, decode_fec falls back to concealment.
        let mut plain =
            OpusEncoder::with_kind(kind, 16_000, 20, 24_000, false, 20, false).expect("valid");
        let packets: Vec<Vec<u8>> = encode_all(&mut plain, &input[..16_000])
            .into_iter()
            .flatten()
            .collect();
        let (mut a, mut b) = (
            OpusDecoder::new(16_000).expect("ok"),
            OpusDecoder::new(16_000).expect("ok"),
        );
        let (mut x, mut y) = ([0i16; 320], [0i16; 320]);
        for packet in &packets[..20] {
            a.decode(packet, &mut x).expect("decodes");
            b.decode(packet, &mut y).expect("decodes");
        }
        a.decode_fec(&packets[21], &mut x).expect("conceals");
        b.conceal(&mut y).expect("conceals");
        assert_eq!(x, y);
    }

    #[test]
    fn dtx_sends_almost_nothing_for_silence() {
        for kind in kinds() {
            dtx_sends_almost_nothing_for_silence_with(kind);
        }
    }

    fn dtx_sends_almost_nothing_for_silence_with(kind: EncoderKind) {
        eprintln!("{}", kind.describe());
        let speech = speech(16_000);
        let mut input = vec![0i16; 32_000];
        input.extend_from_slice(&speech[..32_000]);
        for dtx in [false, true] {
            let mut encoder = OpusEncoder::with_kind(kind, 16_000, 20, 24_000, false, 0, dtx)
                .expect("valid settings");
            let packets = encode_all(&mut encoder, &input);
            let (silence, talk) = packets.split_at(100);
            let sent = silence.iter().flatten().count();
            let bytes: usize = silence.iter().flatten().map(Vec::len).sum();
            eprintln!("DTX {dtx}: {sent} packets, {bytes} bytes for 2 s of silence");
            // With DTX, the stream's first frame only, to be heard at all.
            assert_eq!(sent, if dtx { 1 } else { 100 });
            assert!(silence[0].is_some());
            assert!(bytes < 100 * 10, "{bytes} bytes for 2 s of silence");
            // Speech goes out whole, from its first frame.
            let talk_sent = talk.iter().flatten().count();
            assert_eq!(talk_sent, 100, "{talk_sent} of 100 speech frames sent");
        }
        // The decoder turns the gaps into concealment without complaint.
        let mut decoder = OpusDecoder::new(16_000).expect("valid rate");
        let mut out = [0i16; 320];
        for _ in 0..10 {
            assert_eq!(decoder.conceal(&mut out), Ok(320));
        }
    }

    /// The bench's half-silent conversation in small: two seconds of speech,
    /// ten of a microphone's faint noise, two of speech again.
    #[test]
    fn dtx_sends_nothing_in_a_pause_of_faint_noise_and_every_onset() {
        for kind in kinds() {
            dtx_sends_nothing_in_a_pause_of_faint_noise_and_every_onset_with(kind);
        }
    }

    fn dtx_sends_nothing_in_a_pause_of_faint_noise_and_every_onset_with(kind: EncoderKind) {
        eprintln!("{}", kind.describe());
        let speech = speech(16_000);
        let mut input = speech[..32_000].to_vec();
        // White noise at -60 dBFS (uniform, peak 57).
        let mut state = 0x2545_f491_u32;
        input.extend((0..160_000).map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            ((state >> 16) as i16 as i32 * 57 / 32_768) as i16
        }));
        input.extend_from_slice(&speech[32_000..64_000]);
        let mut encoder =
            OpusEncoder::with_kind(kind, 16_000, 20, 24_000, true, 5, true).expect("valid");
        let packets = encode_all(&mut encoder, &input);
        let (talk, rest) = packets.split_at(100);
        let (pause, again) = rest.split_at(500);
        assert!(talk.iter().all(Option::is_some));
        // 100 ms of hangover after the last word (the first of them also
        // carries its last 6.5 ms, the encoder's lookahead), then one frame
        // every 2 s to keep the stream alive.
        let sent: Vec<usize> = (0..pause.len()).filter(|&i| pause[i].is_some()).collect();
        assert_eq!(
            sent,
            [0, 1, 2, 3, 4, 105, 206, 307, 408],
            "pause frames sent"
        );
        // Speech again: every frame, the first one too.
        let missing: Vec<usize> = (0..again.len()).filter(|&i| again[i].is_none()).collect();
        assert!(missing.is_empty(), "speech frames not sent: {missing:?}");

        // The far end conceals the pause: comfort noise near the noise's
        // level all through it, and the speech after it intact.
        let mut decoder = OpusDecoder::new(16_000).expect("valid rate");
        let mut output = Vec::new();
        let mut frame = [0i16; 320];
        for packet in &packets {
            let n = match packet {
                Some(packet) => decoder.decode(packet, &mut frame),
                None => decoder.conceal(&mut frame),
            };
            output.extend_from_slice(&frame[..n.expect("decodes")]);
        }
        let dbfs = |pcm: &[i16]| {
            let power = pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64;
            10.0 * (power / f64::from(i16::MAX).powi(2)).log10()
        };
        for second in 1..10 {
            let start = 32_000 + second * 16_000;
            let level = dbfs(&output[start..start + 16_000]);
            eprintln!("{second} s into the pause: {level:.1} dBFS at the far end");
            assert!(
                (-75.0..-55.0).contains(&level),
                "{level:.1} dBFS {second} s into the pause"
            );
        }
        let resumed = 192_000 + encoder.lookahead();
        let alignment = align(&input[192_000..], &output[resumed..], 160).expect("not silent");
        eprintln!("speech after the pause: {alignment:?}");
        assert!(alignment.correlation > 0.9, "{alignment:?}");
        assert!(alignment.lag <= 2, "{alignment:?}");
    }

    /// A clean path costs neither FEC bits nor the complexity FEC needs (and
    /// from 24 kbit/s up, not even the usual complexity); a reported loss
    /// turns both on, and they stay on for 10 s after the last report of one.
    #[test]
    fn fec_and_its_complexity_follow_the_reported_loss() {
        for kind in kinds() {
            fec_and_its_complexity_follow_the_reported_loss_with(kind);
        }
    }

    fn fec_and_its_complexity_follow_the_reported_loss_with(kind: EncoderKind) {
        eprintln!("{}", kind.describe());
        let input = speech(16_000);
        let second = 16_000;
        let mut encoder =
            OpusEncoder::with_kind(kind, 16_000, 20, 24_000, true, 0, false).expect("valid");
        encode_all(&mut encoder, &input[..2 * second]);
        assert_eq!(encoder.engine_settings().0, u32::from(CHEAP_COMPLEXITY));
        assert_eq!(encoder.engine_settings().1, 0);
        // A lower rate (a slow link) is worth the usual complexity.
        encoder.set_bitrate(16_000).expect("valid");
        assert_eq!(encoder.engine_settings().0, u32::from(CLEAN_COMPLEXITY));
        encoder.set_bitrate(24_000).expect("valid");
        assert_eq!(encoder.engine_settings().0, u32::from(CHEAP_COMPLEXITY));
        encoder.set_expected_loss(10).expect("valid");
        assert_eq!(encoder.engine_settings().0, u32::from(FEC_COMPLEXITY));
        assert_eq!(encoder.engine_settings().1, 10);
        encode_all(&mut encoder, &input[..2 * second]);
        // A report of no loss: FEC stays, at its least.
        encoder.set_expected_loss(0).expect("valid");
        assert_eq!(encoder.engine_settings().1, 5);
        encode_all(&mut encoder, &input[..7 * second]);
        assert_eq!(
            encoder.engine_settings().0,
            u32::from(FEC_COMPLEXITY),
            "within 10 s"
        );
        encoder.set_expected_loss(0).expect("valid");
        encode_all(&mut encoder, &input[..2 * second]);
        assert_eq!(
            encoder.engine_settings().0,
            u32::from(CHEAP_COMPLEXITY),
            "10 s after"
        );
        assert_eq!(encoder.engine_settings().1, 0);
    }

    #[test]
    fn bitrate_and_loss_change_at_run_time() {
        for kind in kinds() {
            bitrate_and_loss_change_at_run_time_with(kind);
        }
    }

    fn bitrate_and_loss_change_at_run_time_with(kind: EncoderKind) {
        eprintln!("{}", kind.describe());
        let input = speech(16_000);
        let mut encoder =
            OpusEncoder::with_kind(kind, 16_000, 20, 12_000, true, 0, false).expect("valid");
        let bytes = |encoder: &mut OpusEncoder, range: std::ops::Range<usize>| -> usize {
            encode_all(encoder, &input[range])
                .iter()
                .flatten()
                .map(Vec::len)
                .sum()
        };
        let low = bytes(&mut encoder, 0..48_000);
        encoder.set_bitrate(32_000).expect("valid bitrate");
        let high = bytes(&mut encoder, 0..48_000);
        assert!(
            high as f64 > 2.0 * low as f64,
            "12k: {low} B, 32k: {high} B"
        );
        // At a high expected loss, more of the budget goes to redundancy
        // (LBRR), which grows the packets only where VBR has room; the
        // setter must at least be accepted at both ends.
        encoder.set_expected_loss(0).expect("valid");
        encoder.set_expected_loss(100).expect("valid");
        assert!(encoder.set_bitrate(0).is_err());
    }

    /// One encoder going from 20 ms frames to 60 ms and back: each packet
    /// decodes to its own length and the speech runs on unbroken.
    #[test]
    fn frame_length_changes_at_run_time() {
        for kind in kinds() {
            frame_length_changes_at_run_time_with(kind);
        }
    }

    fn frame_length_changes_at_run_time_with(kind: EncoderKind) {
        eprintln!("{}", kind.describe());
        let input = speech(16_000);
        let input = &input[..48_000];
        let mut encoder =
            OpusEncoder::with_kind(kind, 16_000, 20, 16_000, true, 5, false).expect("valid");
        let mut decoder = OpusDecoder::new(16_000).expect("valid");
        assert!(encoder.set_frame_ms(25).is_err());
        let (mut at, mut n) = (0, 0);
        let mut output = Vec::new();
        let mut packet = [0u8; MAX_PACKET];
        let mut pcm = [0i16; 1_920];
        while at + encoder.frame_samples() <= input.len() {
            let ms = [20, 60, 40, 20][(n / 10) % 4];
            encoder.set_frame_ms(ms).expect("an Opus length");
            let frame = encoder.frame_samples();
            assert_eq!(frame, 16 * ms as usize);
            let len = encoder
                .encode(&input[at..at + frame], &mut packet)
                .expect("encodes");
            let got = decoder.decode(&packet[..len], &mut pcm).expect("decodes");
            assert_eq!(got, frame);
            output.extend_from_slice(&pcm[..got]);
            at += frame;
            n += 1;
        }
        let alignment = align(&input[..at], &output, 1_600).expect("not silent");
        assert!(alignment.correlation > 0.9, "{alignment:?}");
        assert!(
            alignment.lag.abs_diff(encoder.lookahead()) <= 2,
            "{alignment:?}"
        );
        decoder.set_frame_samples(960);
        assert_eq!(decoder.conceal(&mut pcm), Ok(960));
        decoder.set_frame_samples(333);
        assert_eq!(decoder.frame_samples(), 960);
    }

    #[test]
    fn misuse_and_garbage_are_errors_not_panics() {
        for kind in kinds() {
            misuse_and_garbage_are_errors_not_panics_with(kind);
        }
    }

    fn misuse_and_garbage_are_errors_not_panics_with(kind: EncoderKind) {
        eprintln!("{}", kind.describe());
        assert!(OpusEncoder::with_kind(kind, 44_100, 20, 24_000, false, 0, false).is_err());
        assert!(OpusEncoder::with_kind(kind, 16_000, 25, 24_000, false, 0, false).is_err());
        assert!(OpusDecoder::new(11_025).is_err());
        let mut encoder =
            OpusEncoder::with_kind(kind, 16_000, 20, 24_000, false, 0, false).expect("valid");
        let mut packet = [0u8; MAX_PACKET];
        assert!(matches!(
            encoder.encode(&[0; 100], &mut packet),
            Err(CodecError::FrameLength {
                expected: 320,
                got: 100,
                ..
            })
        ));
        let mut decoder = OpusDecoder::new(16_000).expect("valid");
        let mut out = [0i16; 1_920];
        assert!(decoder.decode(&[], &mut out).is_err());
        assert!(matches!(
            decoder.conceal(&mut out[..10]),
            Err(CodecError::BufferTooSmall { needed: 320, .. })
        ));
        let mut state = 0x2545_f491_u32;
        for len in 1..400 {
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decoder.decode(&garbage, &mut out);
            let _ = decoder.decode_fec(&garbage, &mut out);
        }
    }
}
