//! G.711 PCMU (µ-law) and PCMA (A-law) per ITU-T G.711 (11/88) §2-3,
//! the packet-loss concealment of G.711 Appendix I (09/99), and level-only
//! comfort noise as RFC 3389 describes it.
//!
//! Samples are 16-bit linear: the codec's 14-bit (µ-law) or 13-bit (A-law)
//! values shifted left, so µ-law decodes to at most ±32124 and A-law to at
//! most ±32256. The RTP payload types are 0 (PCMU) and 8 (PCMA), both at
//! 8 kHz (RFC 3551 §4.5.14).

use crate::codec::error::CodecError;

/// Sample rate of G.711, in Hz.
pub const SAMPLE_RATE: u32 = 8_000;

/// Which of the two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU): North America and Japan.
    Mu,
    /// A-law (PCMA): everywhere else.
    A,
}

impl Law {
    /// Static RTP payload type (RFC 3551 Table 4).
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Mu => 0,
            Law::A => 8,
        }
    }

    /// The SDP encoding name (RFC 3551 §4.5.14).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Law::Mu => "PCMU",
            Law::A => "PCMA",
        }
    }

    /// The code of one sample.
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Law::Mu => ulaw_encode(sample),
            Law::A => alaw_encode(sample),
        }
    }

    /// The sample of one code.
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Law::Mu => ULAW_TO_LINEAR[usize::from(code)],
            Law::A => ALAW_TO_LINEAR[usize::from(code)],
        }
    }
}

/// A G.711 encoder and decoder: one byte per sample, no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct G711 {
    law: Law,
}

impl G711 {
    pub fn new(law: Law) -> Self {
        Self { law }
    }

    pub fn law(&self) -> Law {
        self.law
    }

    /// Encodes 8 kHz `pcm` into `out`, one byte per sample; returns the
    /// number of bytes written.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let out = fit(self.law, pcm.len(), out)?;
        for (code, &sample) in out.iter_mut().zip(pcm) {
            *code = self.law.encode_sample(sample);
        }
        Ok(pcm.len())
    }

    /// Decodes `payload` into `out`, one sample per byte; returns the number
    /// of samples written.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let out = fit(self.law, payload.len(), out)?;
        for (sample, &code) in out.iter_mut().zip(payload) {
            *sample = self.law.decode_sample(code);
        }
        Ok(payload.len())
    }
}

/// µ-law code of a 16-bit sample: the 14-bit value (G.711 Table 2a), biased
/// by 33 so that each segment's boundary is a power of two, then segment and
/// step, with all bits inverted for transmission.
pub fn ulaw_encode(sample: i16) -> u8 {
    const CLIP: i32 = 8159;
    let value = i32::from(sample) >> 2;
    let (magnitude, mask) = if value < 0 {
        (-value, 0x7F)
    } else {
        (value, 0xFF)
    };
    // Segment 0 covers 33..=63 and segment 7 4096..=8191: clipped at 8159,
    // plus the bias, the top value would start a segment 8.
    let biased = (magnitude.min(CLIP) + 33).min(8191);
    let segment = (31 - biased.leading_zeros()).saturating_sub(5);
    let step = (biased >> (segment + 1)) & 0x0F;
    ((segment << 4) as u8 | step as u8) ^ mask
}

/// A-law code of a 16-bit sample: the 13-bit value (G.711 Table 1a),
/// segment and step, with the even bits inverted for transmission.
pub fn alaw_encode(sample: i16) -> u8 {
    let value = i32::from(sample) >> 3;
    // Negative values are coded from -1 down: -1 and 0 share the smallest step.
    let (magnitude, mask) = if value >= 0 {
        (value, 0xD5)
    } else {
        (-value - 1, 0x55)
    };
    // magnitude < 4096 = 2^12: segment 0 and 1 are both 32 wide with step 2.
    let segment = (32 - magnitude.leading_zeros()).saturating_sub(5);
    let step = if segment < 2 {
        (magnitude >> 1) & 0x0F
    } else {
        (magnitude >> segment) & 0x0F
    };
    ((segment << 4) as u8 | step as u8) ^ mask
}

/// The 16-bit sample of a µ-law code.
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// The 16-bit sample of an A-law code.
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

/// Packet-loss concealment for 8 kHz G.711 after G.711 Appendix I.
///
/// On a loss it repeats the last pitch period of the history (one period for
/// the first 10 ms, then two, then three, so a long gap does not buzz), with
/// a quarter-period overlap-add at every join; from 10 ms into the gap the
/// output fades by 20 % per 10 ms, and after 60 ms it is silence. The first
/// good frame after a gap is cross-faded from the concealment over a quarter
/// period plus 4 ms per extra 10 ms lost.
///
/// The overlap-add at the start of a gap reaches back into audio already
/// received, so every output, good or concealed, is [`Plc::DELAY`] samples
/// (3.75 ms) behind its input. Frames of any length work; the algorithm
/// steps in 10 ms, so multiples of 10 ms follow Appendix I exactly.
#[derive(Clone)]
pub struct Plc {
    /// The last [`HISTORY`] samples, good or concealed, the newest last; the
    /// newest [`Plc::DELAY`] of them have not been output yet.
    history: [i16; HISTORY],
    /// The history at the start of the gap, its last quarter period
    /// smoothed; its last `pitch_buffer_len` samples are repeated.
    pitch_buffer: [f32; HISTORY],
    /// The last quarter period of the history before it was smoothed.
    last_quarter: [f32; OVERLAP_MAX],
    pitch: usize,
    overlap: usize,
    /// How many samples of the repeated stretch are in use: 1, 2 or 3 periods.
    pitch_buffer_len: usize,
    /// Where the next repeated sample comes from, `0..pitch_buffer_len`.
    offset: usize,
    /// Samples concealed in the current gap; 0 between gaps.
    erased: usize,
    gain: f32,
}

impl Plc {
    /// Samples by which the output lags the input (3.75 ms).
    pub const DELAY: usize = OVERLAP_MAX;

    pub fn new() -> Self {
        Self {
            history: [0; HISTORY],
            pitch_buffer: [0.0; HISTORY],
            last_quarter: [0.0; OVERLAP_MAX],
            pitch: PITCH_MIN,
            overlap: PITCH_MIN / 4,
            pitch_buffer_len: PITCH_MIN,
            offset: 0,
            erased: 0,
            gain: 1.0,
        }
    }

    /// Takes a decoded frame into the history and replaces it with the output:
    /// the input [`Plc::DELAY`] samples ago, cross-faded from the concealment
    /// at the end of a gap.
    pub fn good_frame(&mut self, pcm: &mut [i16]) {
        for chunk in pcm.chunks_mut(FRAME) {
            if self.erased > 0 {
                let frames_lost = self.erased.div_ceil(FRAME);
                let len = (self.overlap + (frames_lost - 1) * OVERLAP_INCREMENT)
                    .min(FRAME)
                    .min(chunk.len());
                let mut concealed = [0i16; FRAME];
                self.repeat(&mut concealed[..len]);
                self.fade_in(chunk, &concealed[..len]);
                self.erased = 0;
            }
            self.save(chunk);
        }
    }

    /// Fills `out` with the output for a lost frame of its length.
    pub fn lost_frame(&mut self, out: &mut [i16]) {
        let mut done = 0;
        while done < out.len() {
            // Step so that each piece stays inside one 10 ms stage of the gap.
            let len = (FRAME - self.erased % FRAME).min(out.len() - done);
            let piece = &mut out[done..done + len];
            self.conceal(piece);
            self.save(piece);
            done += len;
        }
    }

    /// Whether the last frame was concealed.
    pub fn in_gap(&self) -> bool {
        self.erased > 0
    }

    fn conceal(&mut self, out: &mut [i16]) {
        let stage = self.erased / FRAME;
        let stage_start = self.erased.is_multiple_of(FRAME);
        if self.erased == 0 {
            self.start_gap();
            self.repeat(out);
        } else if stage_start && (stage == 1 || stage == 2) {
            // Take in one more period, joined to the old by an overlap-add.
            let mut tail = [0i16; OVERLAP_MAX];
            let tail = &mut tail[..self.overlap.min(out.len())];
            let saved = self.offset;
            self.repeat(tail);
            self.offset = saved % self.pitch;
            self.pitch_buffer_len += self.pitch;
            self.smooth_join();
            self.repeat(out);
            let len = tail.len();
            for (i, (o, &t)) in out.iter_mut().zip(tail.iter()).enumerate() {
                let w = (i + 1) as f32 / (len + 1) as f32;
                *o = clamp((1.0 - w) * f32::from(t) + w * f32::from(*o));
            }
            self.attenuate(out);
        } else if stage > 5 {
            out.fill(0);
            self.gain = 0.0;
        } else {
            self.repeat(out);
            if stage >= 1 {
                self.attenuate(out);
            }
        }
        self.erased += out.len();
    }

    fn start_gap(&mut self) {
        for (p, &h) in self.pitch_buffer.iter_mut().zip(&self.history) {
            *p = f32::from(h);
        }
        self.pitch = self.find_pitch();
        self.overlap = self.pitch / 4;
        let end = HISTORY - self.overlap;
        self.last_quarter[..self.overlap].copy_from_slice(&self.pitch_buffer[end..]);
        self.offset = 0;
        self.pitch_buffer_len = self.pitch;
        self.gain = 1.0;
        self.smooth_join();
        // The smoothed quarter period has not been output yet: it goes out
        // in place of what arrived.
        for (h, &p) in self.history[end..]
            .iter_mut()
            .zip(&self.pitch_buffer[end..])
        {
            *h = clamp(p);
        }
    }

    /// Cross-fades the last quarter period of the history into the quarter
    /// period before the repeated stretch, so that the end of the history
    /// runs smoothly into the start of the repetition.
    fn smooth_join(&mut self) {
        let n = self.overlap;
        let start = HISTORY - self.pitch_buffer_len - n;
        let end = HISTORY - n;
        for i in 0..n {
            let w = (i + 1) as f32 / (n + 1) as f32;
            self.pitch_buffer[end + i] =
                (1.0 - w) * self.last_quarter[i] + w * self.pitch_buffer[start + i];
        }
    }

    /// Appendix I's pitch search: normalised cross-correlation of the last
    /// 20 ms with the 20 ms that starts 5 to 15 ms earlier, coarse on every
    /// second sample, then refined around the best lag.
    fn find_pitch(&self) -> usize {
        let buffer = &self.pitch_buffer;
        let recent = &buffer[HISTORY - CORRELATION_LEN..];
        let base = HISTORY - CORRELATION_LEN - PITCH_MAX;
        let score = |shift: usize, step: usize| {
            let earlier = &buffer[base + shift..base + shift + CORRELATION_LEN];
            let (mut energy, mut correlation) = (0.0f32, 0.0f32);
            for i in (0..CORRELATION_LEN).step_by(step) {
                energy += earlier[i] * earlier[i];
                correlation += earlier[i] * recent[i];
            }
            correlation / energy.max(CORRELATION_MIN_POWER).sqrt()
        };
        let mut best = (score(0, DECIMATION), 0);
        for shift in (DECIMATION..=PITCH_MAX - PITCH_MIN).step_by(DECIMATION) {
            let s = score(shift, DECIMATION);
            if s >= best.0 {
                best = (s, shift);
            }
        }
        let low = best.1.saturating_sub(DECIMATION - 1);
        let high = (best.1 + DECIMATION - 1).min(PITCH_MAX - PITCH_MIN);
        let mut fine = (score(low, 1), low);
        for shift in low + 1..=high {
            let s = score(shift, 1);
            if s > fine.0 {
                fine = (s, shift);
            }
        }
        PITCH_MAX - fine.1
    }

    /// Next samples of the repeated stretch.
    fn repeat(&mut self, out: &mut [i16]) {
        let start = HISTORY - self.pitch_buffer_len;
        for o in out {
            *o = clamp(self.pitch_buffer[start + self.offset]);
            self.offset += 1;
            if self.offset == self.pitch_buffer_len {
                self.offset = 0;
            }
        }
    }

    /// Fades by 20 % per 10 ms, down to silence.
    fn attenuate(&mut self, out: &mut [i16]) {
        for o in out {
            *o = clamp(f32::from(*o) * self.gain);
            self.gain = (self.gain - ATTENUATION_PER_SAMPLE).max(0.0);
        }
    }

    /// Cross-fades from the (attenuated) concealment into the good frame.
    fn fade_in(&self, chunk: &mut [i16], concealed: &[i16]) {
        let n = concealed.len();
        for (i, (s, &c)) in chunk.iter_mut().zip(concealed).enumerate() {
            let w = (i + 1) as f32 / (n + 1) as f32;
            *s = clamp((1.0 - w) * self.gain * f32::from(c) + w * f32::from(*s));
        }
    }

    /// Appends `frame` to the history and replaces it with the output, the
    /// history [`Plc::DELAY`] samples back.
    fn save(&mut self, frame: &mut [i16]) {
        let n = frame.len();
        debug_assert!(n <= FRAME, "frames are saved in pieces of at most 10 ms");
        self.history.copy_within(n.., 0);
        self.history[HISTORY - n..].copy_from_slice(frame);
        let from = HISTORY - n - Self::DELAY;
        frame.copy_from_slice(&self.history[from..from + n]);
    }
}

impl Default for Plc {
    fn default() -> Self {
        Self::new()
    }
}

/// Level-only comfort noise (RFC 3389 §3.1): white noise at a level given in
/// -dBov, for the gaps a sender leaves when it stops sending silence.
///
/// 0 dBov is the level of a full-scale square wave (RFC 3389 §3.1), here
/// ±32767. The generator's randomness is an input: the caller seeds it.
#[derive(Debug, Clone)]
pub struct ComfortNoise {
    rng: u64,
    /// Uniform noise amplitude that gives the wanted RMS level.
    amplitude: f32,
}

impl ComfortNoise {
    /// A generator at -`level` dBov (0..=127, as the RFC 3389 payload's
    /// first byte; 127 is silence).
    pub fn new(seed: u64, level: u8) -> Self {
        let mut noise = Self {
            rng: seed | 1,
            amplitude: 0.0,
        };
        noise.set_level(level);
        noise
    }

    /// Sets the level to -`level` dBov (values over 127 count as 127).
    pub fn set_level(&mut self, level: u8) {
        let level = level.min(127);
        self.amplitude = if level == 127 {
            0.0
        } else {
            // A uniform distribution on ±a has RMS a/√3.
            FULL_SCALE * 10f32.powf(-f32::from(level) / 20.0) * 3f32.sqrt()
        };
    }

    /// Fills `out` with noise.
    pub fn generate(&mut self, out: &mut [i16]) {
        for o in out {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let uniform = (self.rng >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            *o = clamp(uniform * self.amplitude);
        }
    }

    /// The level of `pcm` in -dBov, as the sender puts it in an RFC 3389
    /// packet: 0 for full scale, 127 for digital silence.
    pub fn measure_level(pcm: &[i16]) -> u8 {
        if pcm.is_empty() {
            return 127;
        }
        let power = pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64;
        if power <= 0.0 {
            return 127;
        }
        let dbov = 10.0 * (power / f64::from(FULL_SCALE).powi(2)).log10();
        (-dbov).round().clamp(0.0, 127.0) as u8
    }
}

/// 10 ms at 8 kHz: the step of Appendix I.
const FRAME: usize = 80;
/// Shortest pitch period searched: 5 ms (200 Hz).
const PITCH_MIN: usize = 40;
/// Longest pitch period searched: 15 ms (66.7 Hz).
const PITCH_MAX: usize = 120;
/// Longest overlap-add: a quarter of the longest period.
const OVERLAP_MAX: usize = PITCH_MAX / 4;
/// Three longest periods and an overlap.
const HISTORY: usize = PITCH_MAX * 3 + OVERLAP_MAX;
/// The stretch compared by the pitch search: 20 ms.
const CORRELATION_LEN: usize = 160;
/// Floor of the energy that normalises the correlation, so that near
/// silence does not pick a random lag.
const CORRELATION_MIN_POWER: f32 = 250.0;
/// The coarse pitch search looks at every second sample.
const DECIMATION: usize = 2;
/// The fade-in at the end of a gap grows by 4 ms per 10 ms lost after the first.
const OVERLAP_INCREMENT: usize = 32;
/// 20 % per 10 ms.
const ATTENUATION_PER_SAMPLE: f32 = 0.2 / FRAME as f32;
const FULL_SCALE: f32 = 32_767.0;

static ULAW_TO_LINEAR: [i16; 256] = ulaw_table();
static ALAW_TO_LINEAR: [i16; 256] = alaw_table();

/// G.711 Table 2a decoder outputs (14-bit) times 4.
const fn ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let u = !(code as u8);
        let step = (u & 0x0F) as i32;
        let segment = ((u & 0x70) >> 4) as i32;
        let magnitude = (((step << 3) + 0x84) << segment) - 0x84;
        table[code] = if u & 0x80 != 0 {
            -magnitude as i16
        } else {
            magnitude as i16
        };
        code += 1;
    }
    table
}

/// G.711 Table 1a decoder outputs (13-bit) times 8.
const fn alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let a = (code as u8) ^ 0x55;
        let step = (a & 0x0F) as i32;
        let segment = ((a & 0x70) >> 4) as i32;
        let magnitude = match segment {
            0 => (step << 4) + 8,
            _ => ((step << 4) + 0x108) << (segment - 1),
        };
        // The sign bit set means positive in A-law.
        table[code] = if a & 0x80 != 0 {
            magnitude as i16
        } else {
            -magnitude as i16
        };
        code += 1;
    }
    table
}

fn fit<T>(law: Law, needed: usize, out: &mut [T]) -> Result<&mut [T], CodecError> {
    let available = out.len();
    out.get_mut(..needed).ok_or(CodecError::BufferTooSmall {
        codec: law.encoding_name(),
        needed,
        available,
    })
}

fn clamp(x: f32) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn every_ulaw_code_survives_a_round_trip() {
        for code in 0..=255u8 {
            let sample = ulaw_decode(code);
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                ulaw_encode(sample),
                expected,
                "code {code:#04x} -> {sample}"
            );
        }
    }

    #[test]
    fn every_alaw_code_survives_a_round_trip() {
        for code in 0..=255u8 {
            let sample = alaw_decode(code);
            assert_eq!(alaw_encode(sample), code, "code {code:#04x} -> {sample}");
        }
    }

    /// Decoder outputs from G.711 Table 2a (µ-law, 14-bit units, times 4
    /// here) and Table 1a (A-law, 13-bit units, times 8 here), with the
    /// transmitted character of each.
    #[test]
    fn decodes_the_standards_table_values() {
        let ulaw = [
            (0xFF, 0), // positive zero: segment 0, step 0
            (0x7F, 0), // negative zero
            (0xFE, 2 * 4),
            (0xF0, 30 * 4), // end of segment 0
            (0xEF, 33 * 4), // start of segment 1
            (0xDF, 99 * 4),
            (0x8F, 4_191 * 4), // start of segment 7
            (0x80, 8_031 * 4), // largest output
            (0x00, -8_031 * 4),
            (0x7E, -2 * 4),
        ];
        for (code, value) in ulaw {
            assert_eq!(i32::from(ulaw_decode(code)), value, "µ-law {code:#04x}");
        }
        let alaw = [
            (0xD5, 8), // 1 * 8: segment 0, step 0
            (0x55, -8),
            (0xD4, 3 * 8),
            (0xC5, 33 * 8),    // segment 1
            (0xF5, 66 * 8),    // segment 2
            (0xAA, 4_032 * 8), // largest output
            (0x2A, -4_032 * 8),
        ];
        for (code, value) in alaw {
            assert_eq!(i32::from(alaw_decode(code)), value, "A-law {code:#04x}");
        }
    }

    /// Decision values from the same tables: the boundaries where the code
    /// changes, and clipping beyond the last.
    #[test]
    fn encodes_at_the_standards_decision_values() {
        // µ-law, 14-bit: 0 -> 0xFF; 1 -> 0xFE (decision value 1); 8159 and up clip.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(3), 0xFF);
        assert_eq!(ulaw_encode(4), 0xFE);
        assert_eq!(ulaw_encode(-4), 0x7E);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        // A-law, 13-bit: 0 and 1 -> 0xD5; 2 -> 0xD4 (decision value 2).
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(15), 0xD5);
        assert_eq!(alaw_encode(16), 0xD4);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn encoding_is_monotonic_and_error_stays_within_half_a_step() {
        for law in [Law::Mu, Law::A] {
            let mut last = i16::MIN;
            for x in i16::MIN..=i16::MAX {
                let y = law.decode_sample(law.encode_sample(x));
                assert!(y >= last, "{law:?}: {x} decodes below its predecessor");
                last = y;
                let error = (i32::from(x) - i32::from(y)).abs();
                // Half the largest step (µ-law 256*4/2, A-law 128*8/2), plus
                // the clipped top.
                assert!(
                    error <= 640 || x.unsigned_abs() > 32_000,
                    "{law:?} {x}: {y}"
                );
            }
        }
    }

    #[test]
    fn encodes_and_decodes_buffers() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 397) % 20_000 - 10_000) as i16)
            .collect();
        for law in [Law::Mu, Law::A] {
            let mut codec = G711::new(law);
            let mut payload = [0u8; 160];
            assert_eq!(codec.encode(&pcm, &mut payload), Ok(160));
            let mut decoded = [0i16; 200];
            assert_eq!(codec.decode(&payload, &mut decoded), Ok(160));
            for (&a, &b) in pcm.iter().zip(&decoded) {
                // 13/14-bit companding: relative error under 1/16 above the first segments.
                assert!((i32::from(a) - i32::from(b)).abs() <= i32::from(a).abs() / 16 + 16);
            }
            let mut short = [0u8; 100];
            assert!(matches!(
                codec.encode(&pcm, &mut short),
                Err(CodecError::BufferTooSmall {
                    needed: 160,
                    available: 100,
                    ..
                })
            ));
        }
        assert_eq!(Law::Mu.payload_type(), 0);
        assert_eq!(Law::A.encoding_name(), "PCMA");
    }

    /// A vowel-like periodic signal: harmonics of 142 Hz (a period of 56.3
    /// samples, not a whole number).
    fn voiced(len: usize) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let t = n as f64 / f64::from(SAMPLE_RATE);
                let v: f64 = (1..=12)
                    .map(|h| {
                        let h = f64::from(h);
                        (2.0 * std::f64::consts::PI * 142.0 * h * t + h).sin() / h
                    })
                    .sum();
                (v * 6_000.0) as i16
            })
            .collect()
    }

    /// Runs `input` through the PLC in 20 ms frames, losing those in `lost`;
    /// returns the output, moved back by the PLC's delay.
    fn run(input: &[i16], lost: &[usize]) -> Vec<i16> {
        let mut plc = Plc::new();
        let mut out = Vec::new();
        for (i, frame) in input.chunks(160).enumerate() {
            let mut buffer = frame.to_vec();
            if lost.contains(&i) {
                plc.lost_frame(&mut buffer);
            } else {
                plc.good_frame(&mut buffer);
            }
            out.extend_from_slice(&buffer);
        }
        out.drain(..Plc::DELAY);
        out
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
    fn good_frames_pass_through_delayed() {
        let input = voiced(1_600);
        let out = run(&input, &[]);
        assert_eq!(out[..], input[..out.len()]);
    }

    #[test]
    fn conceals_a_lost_voiced_frame_far_better_than_silence() {
        let input = voiced(1_600);
        let out = run(&input, &[5]);
        // The lost 20 ms and the 10 ms after it, where the fade-in works.
        let region = 800..1_040;
        let concealed = snr_db(&input[region.clone()], &out[region.clone()]);
        let zeros = run_zeros(&input, 5);
        let silenced = snr_db(&input[region.clone()], &zeros[region]);
        assert!(
            concealed > silenced + 10.0,
            "concealed {concealed:.1} dB, zeros {silenced:.1} dB"
        );
        // Outside the gap the output is the input again.
        assert_eq!(out[1_100..1_500], input[1_100..1_500]);
    }

    fn run_zeros(input: &[i16], lost: usize) -> Vec<i16> {
        let mut out = input.to_vec();
        out[lost * 160..(lost + 1) * 160].fill(0);
        out
    }

    /// On speech with a gliding pitch the waveform drifts from the original
    /// (waveform SNR says little there), but the concealment stays within
    /// the level of what came before and adds no clicks.
    #[test]
    fn concealment_of_speech_like_sound_stays_within_its_level() {
        let speech = crate::dsp::signal::test_speech(SAMPLE_RATE, 4.0);
        let lost: Vec<usize> = (3..199).step_by(7).collect();
        let out = run(&speech, &lost);
        let peak = |v: &[i16]| v.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0);
        let steepest = |v: &[i16]| {
            v.windows(2)
                .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
                .max()
                .unwrap_or(0)
        };
        for &i in &lost {
            let gap = &out[i * 160..(i + 1) * 160];
            // The repeated periods come from the last 50 ms, cross-faded.
            let history = &speech[i * 160 - 400..i * 160];
            assert!(peak(gap) <= peak(history) + 1, "frame {i}");
            let around = &out[i * 160 - 40..(i + 1) * 160 + 40];
            let nearby = &speech[i * 160 - 400..(i + 1) * 160 + 400];
            assert!(
                steepest(around) <= 2 * steepest(nearby) + 16,
                "frame {i}: {} against {}",
                steepest(around),
                steepest(nearby)
            );
        }
    }

    #[test]
    fn fades_to_silence_over_a_long_gap() {
        let input = voiced(4_000);
        // 20 ms frames 5..=9 lost: 100 ms from sample 800.
        let out = run(&input, &[5, 6, 7, 8, 9]);
        let energy = |v: &[i16], range: std::ops::Range<usize>| {
            v[range].iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
        };
        // Output energy over input energy, per 10 ms of the gap.
        let steps: Vec<f64> = (0..10)
            .map(|k| {
                let range = 800 + k * 80..880 + k * 80;
                energy(&out, range.clone()) / energy(&input, range)
            })
            .collect();
        // The first 10 ms at full level, then fading by 20 % per 10 ms.
        assert!(steps[0] > 0.5, "{steps:?}");
        for k in 1..6 {
            assert!(steps[k] < steps[k - 1], "energy rose at {k}: {steps:?}");
        }
        assert!(steps[4] < 0.2, "{steps:?}");
        // Silence after 60 ms.
        assert!(steps[6..].iter().all(|&e| e == 0.0), "{steps:?}");
        // And back to the input after the fade-in.
        assert_eq!(out[1_700..2_000], input[1_700..2_000]);
    }

    #[test]
    fn survives_arbitrary_frames_and_losses() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut plc = Plc::new();
        let mut buffer = vec![0i16; 1_000];
        for _ in 0..5_000 {
            let len = rng.below(400);
            let frame = &mut buffer[..len];
            let loud = rng.below(2) == 0;
            for s in frame.iter_mut() {
                *s = if loud {
                    [i16::MIN, i16::MAX][rng.below(2)]
                } else {
                    rng.next() as i16
                };
            }
            if rng.below(3) == 0 {
                plc.lost_frame(frame);
            } else {
                plc.good_frame(frame);
            }
        }
    }

    #[test]
    fn comfort_noise_has_the_level_asked_for() {
        for level in [20u8, 40, 60, 80] {
            let mut noise = ComfortNoise::new(7, level);
            let mut out = vec![0i16; 8_000];
            noise.generate(&mut out);
            assert_eq!(ComfortNoise::measure_level(&out), level);
            let mean = out.iter().map(|&s| f64::from(s)).sum::<f64>() / out.len() as f64;
            assert!(mean.abs() < 0.05 * 10f64.powf(-f64::from(level) / 20.0) * 32_767.0);
        }
        let mut silent = ComfortNoise::new(7, 127);
        let mut out = [1i16; 160];
        silent.generate(&mut out);
        assert!(out.iter().all(|&s| s == 0));
        assert_eq!(ComfortNoise::measure_level(&out), 127);
        // A full-scale square wave is 0 dBov.
        let square: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { 32_767 } else { -32_767 })
            .collect();
        assert_eq!(ComfortNoise::measure_level(&square), 0);
    }

    #[test]
    fn comfort_noise_is_white_and_seeded() {
        let mut a = ComfortNoise::new(1, 30);
        let mut b = ComfortNoise::new(1, 30);
        let (mut x, mut y) = (vec![0i16; 4_000], vec![0i16; 4_000]);
        a.generate(&mut x);
        b.generate(&mut y);
        assert_eq!(x, y);
        // Neighbouring samples are uncorrelated.
        let lag1: f64 = x
            .windows(2)
            .map(|w| f64::from(w[0]) * f64::from(w[1]))
            .sum();
        let power: f64 = x.iter().map(|&s| f64::from(s).powi(2)).sum();
        assert!((lag1 / power).abs() < 0.05);
    }
}
