//! G.711 PCMU (µ-law) and PCMA (A-law) per ITU-T G.711 (11/88) §2-3,
//! packet-loss concealment after G.711 Appendix I (09/99) with linear
//! prediction, and level-only comfort noise as RFC 3389 describes it.
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

/// Packet-loss concealment for 8 kHz G.711, after G.711 Appendix I with
/// linear prediction in place of plain waveform repetition.
///
/// On a loss it fits a 12th-order linear predictor to the last 30 ms and
/// runs the predictor's residual, repeated with the pitch period, through
/// the synthesis filter: the concealment continues the received waveform
/// without a join. As in Appendix I the repeated stretch grows from one
/// period to two after 10 ms and three after 20 ms, so a long gap does not
/// buzz; from 10 ms into the gap the output fades by 20 % per 10 ms, and
/// after 60 ms it is silence.
///
/// The output lags the input by [`Plc::DELAY`] samples (2.5 ms), so when
/// the first good frame after a gap arrives, the last 2.5 ms of concealment
/// have not been played yet. The frame is continued backwards into them by
/// its own pitch period, and the concealment is cross-faded into that and
/// on over the frame's first 2.5 ms: the gap ends on the frame's own
/// waveform instead of a join out of phase. Frames of any length work; the
/// algorithm steps in 10 ms, so multiples of 10 ms follow Appendix I.
#[derive(Clone)]
pub struct Plc {
    /// The last [`HISTORY`] samples, good or concealed, the newest last; the
    /// newest [`Plc::DELAY`] of them have not been output yet.
    history: [i16; HISTORY],
    /// The predictor fitted at the start of the gap: A(z) = 1 + Σ lpc[k-1] z^-k.
    lpc: [f32; ORDER],
    /// The synthesis filter's state: its last [`ORDER`] outputs, the newest last.
    memory: [f32; ORDER],
    /// The history at the start of the gap through A(z); its last
    /// `periods * pitch` samples are repeated.
    residual: [f32; HISTORY],
    pitch: usize,
    /// How many pitch periods of the residual are repeated: 1, 2 or 3.
    periods: usize,
    /// Where the next repeated sample comes from, `0..periods * pitch`.
    offset: usize,
    /// Samples concealed in the current gap; 0 between gaps.
    erased: usize,
    gain: f32,
}

impl Plc {
    /// Samples by which the output lags the input (2.5 ms). Appendix I has
    /// 3.75 ms; 2.5 keeps a PCMU call within 30 ms end to end for about
    /// 0.02-0.05 PESQ-NB at 10 % loss, and no lag at all costs 0.12-0.15
    /// (the join is then out of phase with the speech that was lost).
    pub const DELAY: usize = 20;

    pub fn new() -> Self {
        Self {
            history: [0; HISTORY],
            lpc: [0.0; ORDER],
            memory: [0.0; ORDER],
            residual: [0.0; HISTORY],
            pitch: PITCH_MAX,
            periods: 1,
            offset: 0,
            erased: 0,
            gain: 1.0,
        }
    }

    /// Takes a decoded frame into the history and replaces it with the output:
    /// the input [`Plc::DELAY`] samples ago, cross-faded from the concealment
    /// at the end of a gap.
    pub fn good_frame(&mut self, pcm: &mut [i16]) {
        if self.erased > 0 {
            self.end_gap(pcm);
            self.erased = 0;
        }
        for chunk in pcm.chunks_mut(FRAME) {
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
        if self.erased == 0 {
            self.start_gap();
        } else if self.erased.is_multiple_of(FRAME) && (stage == 1 || stage == 2) {
            // One more period, in phase with the one repeated so far.
            self.offset %= self.pitch;
            self.periods = stage + 1;
        }
        if stage >= SILENT_STAGE {
            self.gain = 0.0;
        }
        let mut concealed = [0.0f32; FRAME];
        let concealed = &mut concealed[..out.len()];
        self.synthesize(concealed, stage >= 1);
        for (o, &c) in out.iter_mut().zip(concealed.iter()) {
            *o = clamp(c);
        }
        self.erased += out.len();
    }

    /// Fits the predictor to the history, filters the history into the
    /// residual and finds the pitch period to repeat.
    fn start_gap(&mut self) {
        let mut signal = [0.0f32; HISTORY];
        for (s, &h) in signal.iter_mut().zip(&self.history) {
            *s = f32::from(h);
        }
        self.lpc = linear_prediction(&signal[HISTORY - WINDOW..]);
        for n in ORDER..HISTORY {
            let past = signal[n - ORDER..n].iter().rev();
            self.residual[n] =
                signal[n] + self.lpc.iter().zip(past).map(|(a, s)| a * s).sum::<f32>();
        }
        self.memory.copy_from_slice(&signal[HISTORY - ORDER..]);
        let recent = HISTORY - PITCH_WINDOW;
        self.pitch = best_lag(&signal, recent, PITCH_WINDOW, PITCH_MAX, Direction::Earlier);
        self.periods = 1;
        self.offset = 0;
        self.gain = 1.0;
    }

    /// Next samples of the concealment: the repeated residual through the
    /// synthesis filter, fading by 20 % per 10 ms if `attenuate`.
    fn synthesize(&mut self, out: &mut [f32], attenuate: bool) {
        let len = self.periods * self.pitch;
        let start = HISTORY - len;
        for o in out {
            let excitation = self.residual[start + self.offset];
            self.offset += 1;
            if self.offset == len {
                self.offset = 0;
            }
            let past = self.memory.iter().rev();
            let prediction: f32 = self.lpc.iter().zip(past).map(|(a, m)| a * m).sum();
            let y = (excitation - prediction).clamp(-FULL_SCALE, FULL_SCALE);
            self.memory.copy_within(1.., 0);
            self.memory[ORDER - 1] = y;
            *o = y * self.gain;
            if attenuate {
                self.gain = (self.gain - ATTENUATION_PER_SAMPLE).max(0.0);
            }
        }
    }

    /// Cross-fades from the concealment into the good frame `pcm`: over the
    /// concealed samples not yet output, into `pcm` continued backwards by
    /// its pitch period, then over the start of `pcm` itself.
    fn end_gap(&mut self, pcm: &mut [i16]) {
        let n = pcm.len().min(MERGE_MAX);
        let mut good = [0.0f32; MERGE_MAX];
        for (g, &s) in good.iter_mut().zip(pcm.iter()) {
            *g = f32::from(s);
        }
        let compared = (n / 2).min(BACK_CORRELATION);
        let backward = (compared >= PITCH_MIN).then(|| {
            let longest = PITCH_MAX.min(n - compared);
            best_lag(&good, 0, compared, longest, Direction::Later)
        });
        // Concealed samples not yet output (fewer after a gap under 2.5 ms);
        // none to fade in a frame too short to continue backwards.
        let pending = backward.map_or(0, |_| Self::DELAY.min(self.erased));
        let into_frame = MERGE_INTO_FRAME.min(n);
        let mut concealed = [0.0f32; MERGE_INTO_FRAME];
        self.synthesize(&mut concealed[..into_frame], self.erased >= FRAME);
        let fade = pending + into_frame;
        let start = HISTORY - pending;
        for i in 0..fade {
            let w = (i + 1) as f32 / (fade + 1) as f32;
            match backward {
                Some(lag) if i < pending => {
                    // The frame's sample i - pending, one or more periods on.
                    let mut j = i as isize - pending as isize;
                    while j < 0 {
                        j += lag as isize;
                    }
                    let h = &mut self.history[start + i];
                    *h = clamp((1.0 - w) * f32::from(*h) + w * good[j as usize]);
                }
                _ => {
                    let s = &mut pcm[i - pending];
                    *s = clamp((1.0 - w) * concealed[i - pending] + w * f32::from(*s));
                }
            }
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

/// Which way [`best_lag`] looks from the stretch it matches.
#[derive(Clone, Copy)]
enum Direction {
    Earlier,
    Later,
}

/// The lag in `PITCH_MIN..=longest` at which `signal[at..at + len]` best
/// matches the stretch that many samples earlier or later, by normalised
/// cross-correlation. The stretches compared must lie inside `signal`.
fn best_lag(signal: &[f32], at: usize, len: usize, longest: usize, direction: Direction) -> usize {
    let reference = &signal[at..at + len];
    let reference_energy: f32 = reference.iter().map(|x| x * x).sum();
    let mut best = (f32::MIN, longest);
    for lag in PITCH_MIN..=longest {
        let from = match direction {
            Direction::Earlier => at - lag,
            Direction::Later => at + lag,
        };
        let other = &signal[from..from + len];
        let (mut xy, mut yy) = (0.0f32, 0.0f32);
        for (&x, &y) in reference.iter().zip(other) {
            xy += x * y;
            yy += y * y;
        }
        let floor = CORRELATION_MIN_POWER * len as f32;
        let correlation = xy / (reference_energy * yy).sqrt().max(floor);
        if correlation > best.0 {
            best = (correlation, lag);
        }
    }
    best.1
}

/// The coefficients of A(z) for `signal` (at most [`WINDOW`] samples):
/// autocorrelation under a Hann window, a 60 Hz Gaussian lag window against
/// too sharp resonances, Levinson-Durbin recursion, and a 0.99 bandwidth
/// expansion so that the filter rings down. All zero for silence.
fn linear_prediction(signal: &[f32]) -> [f32; ORDER] {
    let n = signal.len().min(WINDOW);
    let mut windowed = [0.0f64; WINDOW];
    for (i, (w, &s)) in windowed.iter_mut().zip(signal).enumerate() {
        let phase = std::f64::consts::PI * (i as f64 + 0.5) / n as f64;
        *w = f64::from(s) * phase.sin().powi(2);
    }
    let windowed = &windowed[..n];
    let mut r = [0.0f64; ORDER + 1];
    for (k, r) in r.iter_mut().enumerate().take(n) {
        *r = windowed[k..].iter().zip(windowed).map(|(a, b)| a * b).sum();
    }
    let mut lpc = [0.0f32; ORDER];
    if r[0] < 1.0 {
        return lpc;
    }
    // White-noise correction of -40 dB, then the lag window.
    r[0] *= 1.0001;
    for (k, r) in r.iter_mut().enumerate().skip(1) {
        let x = 2.0 * std::f64::consts::PI * 60.0 * k as f64 / f64::from(SAMPLE_RATE);
        *r *= (-0.5 * x * x).exp();
    }
    let mut a = [0.0f64; ORDER + 1];
    a[0] = 1.0;
    let mut error = r[0];
    for i in 1..=ORDER {
        let acc: f64 = (0..i).map(|j| a[j] * r[i - j]).sum();
        let k = -acc / error;
        // A reflection of magnitude 1 or more (or NaN) would make the
        // synthesis filter unstable: stop at the order reached.
        if k.is_nan() || k.abs() >= 1.0 {
            break;
        }
        let previous = a;
        for j in 1..i {
            a[j] = previous[j] + k * previous[i - j];
        }
        a[i] = k;
        error *= 1.0 - k * k;
    }
    let mut expansion = 1.0;
    for (l, &a) in lpc.iter_mut().zip(&a[1..]) {
        expansion *= BANDWIDTH_EXPANSION;
        *l = (a * expansion) as f32;
    }
    lpc
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
/// Shortest pitch period searched: 2.5 ms (400 Hz).
const PITCH_MIN: usize = 20;
/// Longest pitch period searched: 15 ms (66.7 Hz).
const PITCH_MAX: usize = 120;
/// The stretch the pitch search matches at the start of a gap: the newest
/// 7.5 ms, since the pitch that matters is the one at the gap's edge.
const PITCH_WINDOW: usize = 60;
/// Three longest periods and the predictor's reach before them.
const HISTORY: usize = PITCH_MAX * 3 + ORDER;
/// Order of the linear prediction.
const ORDER: usize = 12;
/// The stretch the linear prediction analyses: 30 ms.
const WINDOW: usize = 240;
/// Per-coefficient factor that widens the predictor's resonances.
const BANDWIDTH_EXPANSION: f64 = 0.99;
/// From 60 ms into a gap the concealment is silence.
const SILENT_STAGE: usize = 6;
/// Floor of the energy that normalises the correlation, so that near
/// silence does not pick a random lag.
const CORRELATION_MIN_POWER: f32 = 250.0;
/// The most of a good frame that ending a gap looks at: 20 ms.
const MERGE_MAX: usize = 160;
/// The stretch at the start of a good frame whose pitch period continues
/// it backwards: 8 ms.
const BACK_CORRELATION: usize = 64;
/// How far into the good frame the cross-fade from the concealment runs: 2.5 ms.
const MERGE_INTO_FRAME: usize = 20;
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
        // After the cross-fade the output is the input again.
        assert_eq!(
            out[960 + MERGE_INTO_FRAME..],
            input[960 + MERGE_INTO_FRAME..out.len()]
        );
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
            let (start, end) = (i * 160, (i + 1) * 160);
            // The concealment repeats the last periods of the 30 ms before
            // the gap through their own predictor; its last 2.5 ms fade
            // into the next frame.
            let history = &speech[start - 240..start];
            let concealment = &out[start..end - Plc::DELAY];
            assert!(
                peak(concealment) <= peak(history) * 101 / 100 + 1,
                "frame {i}: {} against {}",
                peak(concealment),
                peak(history)
            );
            let next = &speech[end..end + 160];
            assert!(peak(&out[start..end]) <= peak(history).max(peak(next)) + 1);
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
        // Silence after 60 ms, until the fade-in into the next frame starts
        // in the last 2.5 ms of the gap.
        let fade_in = 1_600 - Plc::DELAY;
        assert!(out[1_280..fade_in].iter().all(|&s| s == 0));
        assert!(out[fade_in..1_600].iter().any(|&s| s != 0));
        // And back to the input after the fade-in.
        assert_eq!(
            out[1_600 + MERGE_INTO_FRAME..2_000],
            input[1_600 + MERGE_INTO_FRAME..2_000]
        );
    }

    fn correlation(a: &[i16], b: &[i16]) -> f64 {
        let dot = |x: &[i16], y: &[i16]| {
            x.iter()
                .zip(y)
                .map(|(&p, &q)| f64::from(p) * f64::from(q))
                .sum::<f64>()
        };
        dot(a, b) / (dot(a, a) * dot(b, b)).sqrt().max(1.0)
    }

    #[test]
    fn continues_a_steady_tone_in_phase() {
        // 250 Hz: a period of 32 samples. And the vowel, whose period of
        // 56.3 samples is no whole number, so the repetition drifts a little.
        let tone: Vec<i16> = (0..1_600)
            .map(|n| {
                (8_000.0 * (2.0 * std::f64::consts::PI * 250.0 * n as f64 / 8_000.0).sin()) as i16
            })
            .collect();
        for (input, least) in [(tone, 0.99), (voiced(1_600), 0.95)] {
            let out = run(&input, &[5]);
            let gap = 800..960;
            let c = correlation(&input[gap.clone()], &out[gap]);
            assert!(c > least, "correlation {c:.3}");
        }
    }

    /// When the lost frame starts a new sound, the end of the gap already
    /// fades into the next frame's waveform instead of joining it out of
    /// phase at the frame boundary.
    #[test]
    fn ends_a_gap_on_the_next_frames_waveform() {
        let tone = |hz: f64, n: usize| {
            (6_000.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / 8_000.0).sin()) as i16
        };
        let input: Vec<i16> = (0..1_600)
            .map(|n| {
                if n < 800 {
                    tone(200.0, n)
                } else {
                    tone(310.0, n)
                }
            })
            .collect();
        let out = run(&input, &[5]);
        let end = 960 - Plc::DELAY / 2..960 + MERGE_INTO_FRAME;
        let c = correlation(&input[end.clone()], &out[end]);
        assert!(c > 0.9, "correlation {c:.3}");
        assert_eq!(
            out[960 + MERGE_INTO_FRAME..],
            input[960 + MERGE_INTO_FRAME..out.len()]
        );
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
