//! MP3 for the article's tcp-mp3 stream: MPEG-2 layer III, 16 kHz mono,
//! 32 kbit/s, encoded with LAME and decoded with nanomp3 (a pure-Rust port of
//! minimp3) on top of the sans-IO [`Framer`].
//!
//! Delay figures, measured by the tests below at 16 kHz (1 ms = 16 samples):
//! - a frame is 576 samples (36 ms);
//! - the encoder, fed 10 ms pieces, emits its first frame after 800 samples
//!   of input (50 ms: LAME's psychoacoustic model looks 1328 samples ahead and
//!   starts with 528 in hand), then one frame every 576 samples; a frame is
//!   out at most 928 samples after the start of its 576-sample slot;
//! - encoder plus decoder delay is [`CODEC_DELAY`] samples: decoded sample
//!   `n + CODEC_DELAY` is input sample `n` (LAME's 576-sample encoder delay
//!   plus the 529-sample delay of the synthesis filterbank);
//! - so a sample spoken into the encoder can be played at most
//!   928 + 1105 = 2033 samples (127 ms) later, before the network and the
//!   sound cards add theirs.

use mp3lame_encoder::{Bitrate, Builder, FlushGap, Mode, MonoPcm, Quality, VbrMode};
use nanomp3::{Decoder, MAX_SAMPLES_PER_FRAME};
use proto::legacy::mp3::{Expect, Frame, Framer};

use crate::codec::error::CodecError;
use crate::codec::resample::Resampler;

/// Sample rate of the tcp-mp3 stream, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;
/// Bitrate of the tcp-mp3 stream, in kbit/s.
pub const BITRATE_KBPS: u32 = 32;
/// Samples in one frame at 16 kHz (MPEG-2 layer III: one granule).
pub const FRAME_SAMPLES: usize = 576;
/// Encoder plus decoder delay in samples, measured (see the module docs).
pub const CODEC_DELAY: usize = 1105;

const CODEC: &str = "MP3";
/// Input handed to LAME in one call at most: its sample count is a C `int`,
/// and this bounds the output buffer reserved per call.
const MAX_PIECE: usize = 16 * 1024;

/// Encodes 16 kHz mono audio into the tcp-mp3 stream, as
/// `lame -r -s 16 -m m -b 32` would, frame by frame as the audio arrives.
pub struct Mp3Encoder {
    lame: mp3lame_encoder::Encoder,
}

impl Mp3Encoder {
    /// MPEG-2 layer III, 16 kHz mono, CBR 32 kbit/s, no Xing/Info tag (a live
    /// stream cannot go back to fill it in), and no bit reservoir: see
    /// [`Mp3Encoder::with_reservoir`] for why.
    pub fn new() -> Result<Self, CodecError> {
        Self::with_reservoir(false)
    }

    /// With `reservoir`, LAME may start a frame's audio data in the unused
    /// space of earlier frames (ISO/IEC 11172-3 §2.4.2.7,
    /// `main_data_begin`), and so cannot release a frame until the frames
    /// after it are encoded. Measured at 32 kbit/s, the reservoir holds each
    /// frame back up to two more frames (72 ms, 1440 samples before the first
    /// frame instead of 800) and buys nothing audible: real speech correlates
    /// 0.9956 with it and 0.9962 without (SNR 19.6 and 20.2 dB). A live call
    /// takes the 72 ms.
    pub fn with_reservoir(reservoir: bool) -> Result<Self, CodecError> {
        let setup = |reason: String| CodecError::Setup {
            codec: CODEC,
            reason,
        };
        let mut builder = Builder::new().ok_or_else(|| setup("LAME could not allocate".into()))?;
        let rate = std::num::NonZeroU32::new(SAMPLE_RATE);
        builder
            .set_num_channels(1)
            .and_then(|()| builder.set_sample_rate(SAMPLE_RATE))
            .and_then(|()| builder.set_output_sample_rate(rate))
            .and_then(|()| builder.set_mode(Mode::Mono))
            .and_then(|()| builder.set_vbr_mode(VbrMode::Off))
            .and_then(|()| builder.set_brate(Bitrate::Kbps32))
            // LAME's own default (`-q 3`), as the command line uses.
            .and_then(|()| builder.set_quality(Quality::VeryNice))
            .and_then(|()| builder.set_to_write_vbr_tag(false))
            .map_err(|e| setup(e.to_string()))?;
        // SAFETY: the pointer is the builder's live `lame_global_flags`, which
        // stays owned by the builder; `lame_set_disable_reservoir` only
        // stores a flag in it before `lame_init_params` (called by `build`).
        let status = unsafe {
            mp3lame_encoder::ffi::lame_set_disable_reservoir(
                builder.as_ptr(),
                i32::from(!reservoir),
            )
        };
        if status != 0 {
            return Err(setup(format!(
                "lame_set_disable_reservoir returned {status}"
            )));
        }
        let lame = builder.build().map_err(|e| setup(e.to_string()))?;
        Ok(Self { lame })
    }

    /// Encodes `pcm` (16 kHz mono) and appends whatever MP3 bytes are ready
    /// to `out`: whole frames, each as soon as LAME has it.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        for piece in pcm.chunks(MAX_PIECE) {
            out.reserve(mp3lame_encoder::max_required_buffer_size(piece.len()));
            self.lame
                .encode_to_vec(MonoPcm(piece), out)
                .map_err(|e| CodecError::Encode {
                    codec: CODEC,
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Encodes what LAME still holds, padded with silence to whole frames,
    /// and appends it to `out`. Call at the end of the stream.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        // LAME's documented worst case for a flush.
        out.reserve(7200);
        self.lame
            .flush_to_vec::<FlushGap>(out)
            .map_err(|e| CodecError::Encode {
                codec: CODEC,
                reason: e.to_string(),
            })?;
        Ok(())
    }
}

/// Counters of an [`Mp3Decoder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mp3Stats {
    /// Audio frames found in the stream, decoded or concealed.
    pub frames: u64,
    /// Garbage skipped to resynchronise: bytes that were neither frames nor
    /// tags (ID3 tags and Xing/Info frames are not counted).
    pub skipped_bytes: u64,
    /// Frames that did not decode (corrupt, or needing bit-reservoir data
    /// from before a resync) and were replaced by silence.
    pub bad_frames: u64,
}

/// Decodes any MPEG audio stream (layer III above all) into 16 kHz mono.
///
/// Bytes go in as they arrive; every complete frame is decoded at once.
/// Stereo is downmixed and other sample rates are resampled, so the output
/// is always 16 kHz mono. A frame that cannot be decoded becomes silence of
/// its length, so the output keeps time with the sender.
pub struct Mp3Decoder {
    framer: Framer,
    /// About 22 KiB of filterbank state and scratch: boxed, not on the stack.
    decoder: Box<Decoder>,
    /// Interleaved output of one frame.
    pcm: Vec<i16>,
    mono: Vec<i16>,
    /// For a stream at another rate than 16 kHz: its rate and the converter.
    resampler: Option<(u32, Resampler)>,
    stats: Mp3Stats,
    /// Bytes the framer could not take (never, while it keeps its promise).
    dropped: u64,
}

impl Default for Mp3Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Mp3Decoder {
    pub fn new() -> Self {
        Self {
            framer: Framer::new(Expect::TCP_MP3),
            decoder: Box::new(Decoder::new()),
            pcm: vec![0; MAX_SAMPLES_PER_FRAME],
            mono: Vec::with_capacity(MAX_SAMPLES_PER_FRAME),
            resampler: None,
            stats: Mp3Stats::default(),
            dropped: 0,
        }
    }

    /// Takes the next bytes of the stream and appends 16 kHz mono samples to
    /// `out` for every frame they complete.
    pub fn decode(&mut self, bytes: &[u8], out: &mut Vec<i16>) {
        let mut rest = bytes;
        loop {
            let taken = self.framer.push(rest);
            rest = &rest[taken..];
            while let Some(frame) = self.framer.poll_frame() {
                decode_frame(
                    &frame,
                    &mut self.decoder,
                    &mut self.pcm,
                    &mut self.mono,
                    &mut self.stats,
                );
                let rate = frame.header.sample_rate();
                emit(&self.mono, rate, &mut self.resampler, out);
            }
            // The framer always has room once polled dry; stop anyway rather
            // than spin if it ever does not.
            if rest.is_empty() || taken == 0 {
                break;
            }
        }
        self.dropped += rest.len() as u64;
        self.stats.skipped_bytes = self.framer.stats().garbage_bytes + self.dropped;
    }

    pub fn stats(&self) -> Mp3Stats {
        self.stats
    }
}

/// Decodes one frame into `mono`, or fills it with a frame of silence.
fn decode_frame(
    frame: &Frame<'_>,
    decoder: &mut Decoder,
    pcm: &mut [i16],
    mono: &mut Vec<i16>,
    stats: &mut Mp3Stats,
) {
    mono.clear();
    if !frame.kind.is_audio() {
        // A Xing/Info/VBRI tag: no sound, and no place in the timeline.
        return;
    }
    stats.frames += 1;
    // The framer hands out exactly one frame, which is all minimp3 needs to
    // decode it (the bit reservoir of earlier frames it keeps itself). It is
    // not reset when the framer resynchronised: garbage between whole frames
    // leaves the reservoir right (LAME's stream with garbage inserted decodes
    // bit for bit as without), and a new encoder's first frame uses none.
    // Where frames were really lost, minimp3 reports the reservoir short.
    let (_, result) = decoder.decode(frame.bytes, pcm);
    match result {
        Ok(info) => {
            let channels = usize::from(info.channels.num());
            let samples = pcm
                .get(..info.samples_produced * channels)
                .unwrap_or_default();
            if channels == 2 {
                mono.extend(
                    samples
                        .chunks_exact(2)
                        .map(|lr| ((i32::from(lr[0]) + i32::from(lr[1])) / 2) as i16),
                );
            } else {
                mono.extend_from_slice(samples);
            }
        }
        // ReservoirUnavailable: the frame's data starts in frames from before
        // a resync, which were never decoded. Corrupt, or anything else:
        // the frame is unusable. Either way, a frame of silence keeps time.
        Err(_) => {
            stats.bad_frames += 1;
            mono.resize(frame.header.samples_per_frame(), 0);
        }
    }
}

/// Appends `mono` at `rate` to `out` at 16 kHz.
fn emit(mono: &[i16], rate: u32, resampler: &mut Option<(u32, Resampler)>, out: &mut Vec<i16>) {
    if mono.is_empty() {
        return;
    }
    if rate == SAMPLE_RATE {
        out.extend_from_slice(mono);
        return;
    }
    if resampler.as_ref().is_none_or(|(from, _)| *from != rate) {
        *resampler = Some((rate, Resampler::new(rate, SAMPLE_RATE)));
    }
    if let Some((_, r)) = resampler {
        r.process(mono, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::correlate::align;
    use crate::dsp::signal::test_speech;

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Encodes `pcm` in 10 ms pieces, as a call does; returns the stream
    /// and, for each frame, how many input samples had gone in when its
    /// last byte came out.
    fn encode_timed(encoder: &mut Mp3Encoder, pcm: &[i16]) -> (Vec<u8>, Vec<usize>) {
        let mut stream = Vec::new();
        let mut framer = Framer::new(Expect::TCP_MP3);
        let mut ready = Vec::new();
        let mut fed = 0;
        for piece in pcm.chunks(160) {
            let before = stream.len();
            encoder.encode(piece, &mut stream).unwrap();
            fed += piece.len();
            framer.push(&stream[before..]);
            while framer.poll_frame().is_some() {
                ready.push(fed);
            }
        }
        encoder.flush(&mut stream).unwrap();
        (stream, ready)
    }

    /// How far behind its slot each frame comes out, worst case: frame `k`
    /// holds output samples from `576 k`, and is out when `ready[k]` input
    /// samples have gone in.
    fn worst_lateness(ready: &[usize]) -> usize {
        ready
            .iter()
            .enumerate()
            .map(|(k, &t)| t - k * FRAME_SAMPLES)
            .max()
            .unwrap()
    }

    fn decode_in_pieces(stream: &[u8], rng: &mut Rng) -> (Vec<i16>, Mp3Stats) {
        let mut decoder = Mp3Decoder::new();
        let mut out = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let n = (1 + rng.below(300)).min(rest.len());
            decoder.decode(&rest[..n], &mut out);
            rest = &rest[n..];
        }
        (out, decoder.stats())
    }

    fn encode_all(pcm: &[i16]) -> Vec<u8> {
        let mut encoder = Mp3Encoder::new().unwrap();
        encode_timed(&mut encoder, pcm).0
    }

    /// The figures in the module docs.
    #[test]
    fn encoder_latency_and_codec_delay() {
        let speech = test_speech(SAMPLE_RATE, 10.0);
        let mut encoder = Mp3Encoder::new().unwrap();
        let (stream, ready) = encode_timed(&mut encoder, &speech);
        // LAME's psychoacoustic model looks 1328 samples ahead and starts
        // with 528 in hand: 800 samples in, the first frame is out.
        assert_eq!(ready[0], 800);
        assert_eq!(worst_lateness(&ready), 928);
        // CBR: every frame 144 bytes, and the whole input is there after the
        // flush, delay included.
        assert_eq!(stream.len() % 144, 0);
        let frames = stream.len() / 144;
        assert!(frames * FRAME_SAMPLES >= speech.len() + CODEC_DELAY);

        let (decoded, stats) = decode_in_pieces(&stream, &mut Rng(7));
        assert_eq!(decoded.len(), frames * FRAME_SAMPLES);
        assert_eq!(stats.frames as usize, frames);
        assert_eq!((stats.bad_frames, stats.skipped_bytes), (0, 0));
        let a = align(&speech, &decoded, 4000).unwrap();
        assert_eq!(a.lag, CODEC_DELAY);
        // Measured 0.9955 (real speech through the same path: 0.996).
        assert!(a.correlation > 0.98, "{a:?}");
    }

    /// Why the encoder runs without the bit reservoir: with it, a frame
    /// waits for up to two more frames (72 ms) before it can be sent, and
    /// the sound is no better (0.9956 against 0.9962 correlation on real
    /// speech at 32 kbit/s).
    #[test]
    fn the_bit_reservoir_would_cost_two_frames() {
        let speech = test_speech(SAMPLE_RATE, 10.0);
        let mut with = Mp3Encoder::with_reservoir(true).unwrap();
        let (_, ready_with) = encode_timed(&mut with, &speech);
        let mut without = Mp3Encoder::new().unwrap();
        let (_, ready_without) = encode_timed(&mut without, &speech);
        assert_eq!(ready_with[0], 1440);
        assert_eq!(
            worst_lateness(&ready_with) - worst_lateness(&ready_without),
            2 * FRAME_SAMPLES
        );
    }

    #[test]
    fn output_does_not_depend_on_how_bytes_arrive() {
        let stream = encode_all(&test_speech(SAMPLE_RATE, 3.0));
        let mut whole = Vec::new();
        Mp3Decoder::new().decode(&stream, &mut whole);
        for seed in 1..4 {
            let (pieces, _) = decode_in_pieces(&stream, &mut Rng(seed));
            assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn garbage_between_frames_loses_no_audio() {
        let stream = encode_all(&test_speech(SAMPLE_RATE, 3.0));
        let mut clean = Vec::new();
        Mp3Decoder::new().decode(&stream, &mut clean);
        let mut rng = Rng(42);
        let mut dirty = Vec::new();
        let mut garbage = 0;
        for (i, frame) in stream.chunks(144).enumerate() {
            dirty.extend_from_slice(frame);
            if i % 5 == 3 {
                let n = 1 + rng.below(40);
                dirty.extend((0..n).map(|_| rng.next() as u8));
                garbage += n;
            }
        }
        let (decoded, stats) = decode_in_pieces(&dirty, &mut rng);
        assert!(
            decoded == clean,
            "{} samples, {} without garbage",
            decoded.len(),
            clean.len()
        );
        assert_eq!(stats.skipped_bytes, garbage as u64);
        assert_eq!(stats.bad_frames, 0);
    }

    #[test]
    fn id3v2_and_info_frames_are_skipped() {
        let stream = encode_all(&test_speech(SAMPLE_RATE, 1.0));
        let mut clean = Vec::new();
        Mp3Decoder::new().decode(&stream, &mut clean);
        let mut tagged = b"ID3\x04\x00\x00\x00\x00\x00\x20".to_vec();
        tagged.extend([0xFF; 0x20]);
        let mut info = stream[..144].to_vec();
        info[4..].fill(0);
        info[13..17].copy_from_slice(b"Info");
        tagged.extend(info);
        tagged.extend_from_slice(&stream);
        let (decoded, stats) = decode_in_pieces(&tagged, &mut Rng(3));
        assert_eq!(decoded, clean);
        assert_eq!(stats.frames as usize, stream.len() / 144);
        assert_eq!(stats.skipped_bytes, 0);
    }

    /// Joining a stream in the middle: frames whose data starts in the bit
    /// reservoir of frames never seen are silence of the right length.
    #[test]
    fn joining_mid_stream_conceals_and_keeps_time() {
        let speech = test_speech(SAMPLE_RATE, 4.0);
        let mut encoder = Mp3Encoder::with_reservoir(true).unwrap();
        let (stream, _) = encode_timed(&mut encoder, &speech);
        let skip_frames = 30;
        let join = &stream[skip_frames * 144 + 77..];
        let (decoded, stats) = decode_in_pieces(join, &mut Rng(5));
        assert!(stats.bad_frames >= 1, "{stats:?}");
        assert_eq!(stats.skipped_bytes, 144 - 77);
        assert_eq!(decoded.len(), stats.frames as usize * FRAME_SAMPLES);
        // What was decoded lines up with the sender's timeline.
        let first = (skip_frames + 1) * FRAME_SAMPLES;
        let reference = &speech[first - CODEC_DELAY + FRAME_SAMPLES * 2..];
        let a = align(reference, &decoded, 4000).unwrap();
        assert_eq!(a.lag, FRAME_SAMPLES * 2);
        assert!(a.correlation > 0.95, "{a:?}");
    }

    /// A LAME encoder for another format than the article's.
    fn lame(rate: u32, channels: u8, bitrate: Bitrate) -> mp3lame_encoder::Encoder {
        let mut b = Builder::new().unwrap();
        b.set_num_channels(channels).unwrap();
        b.set_sample_rate(rate).unwrap();
        b.set_output_sample_rate(std::num::NonZeroU32::new(rate))
            .unwrap();
        b.set_brate(bitrate).unwrap();
        b.set_vbr_mode(VbrMode::Off).unwrap();
        b.set_to_write_vbr_tag(false).unwrap();
        b.set_mode(if channels == 1 {
            Mode::Mono
        } else {
            Mode::JointStereo
        })
        .unwrap();
        b.build().unwrap()
    }

    /// Streams at other rates and in stereo come out as 16 kHz mono.
    #[test]
    fn other_rates_and_stereo_become_16k_mono() {
        let reference = test_speech(SAMPLE_RATE, 3.0);
        for (rate, channels, bitrate) in [
            (32_000, 1, Bitrate::Kbps96),
            (32_000, 2, Bitrate::Kbps192),
            (32_000, 2, Bitrate::Kbps96),
            (44_100, 2, Bitrate::Kbps128),
            (8_000, 1, Bitrate::Kbps24),
        ] {
            // The same sound at `rate`.
            let mut speech = Vec::new();
            Resampler::new(SAMPLE_RATE, rate).process(&reference, &mut speech);
            let mut encoder = lame(rate, channels, bitrate);
            let mut stream =
                Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(speech.len()) * 2);
            if channels == 2 {
                // The right channel at half level: the downmix is 3/4.
                let right: Vec<i16> = speech.iter().map(|&s| s / 2).collect();
                let input = mp3lame_encoder::DualPcm {
                    left: &speech,
                    right: &right,
                };
                encoder.encode_to_vec(input, &mut stream).unwrap();
            } else {
                encoder
                    .encode_to_vec(MonoPcm(&speech), &mut stream)
                    .unwrap();
            }
            encoder.flush_to_vec::<FlushGap>(&mut stream).unwrap();
            let (decoded, stats) = decode_in_pieces(&stream, &mut Rng(9));
            assert_eq!(stats.bad_frames, 0);
            let seconds = decoded.len() as f64 / f64::from(SAMPLE_RATE);
            assert!((3.0..3.3).contains(&seconds), "{rate}: {seconds} s");
            let a = align(&reference, &decoded, 4000).unwrap();
            assert!(
                a.correlation > 0.95,
                "{rate} Hz, {channels} channels: {a:?}"
            );
        }
    }

    #[test]
    fn random_and_corrupted_input_never_panics() {
        let mut rng = Rng(0xDEC0DE);
        for _ in 0..50 {
            let len = rng.below(10_000);
            let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = decode_in_pieces(&noise, &mut rng);
        }
        // A real stream with bytes flipped: bad frames become silence, and
        // the output keeps time.
        let stream = encode_all(&test_speech(SAMPLE_RATE, 5.0));
        for _ in 0..20 {
            let mut damaged = stream.clone();
            for _ in 0..20 {
                let at = rng.below(damaged.len());
                damaged[at] ^= 1 << rng.below(8);
            }
            let (decoded, stats) = decode_in_pieces(&damaged, &mut rng);
            assert_eq!(decoded.len(), stats.frames as usize * FRAME_SAMPLES);
        }
    }
}
