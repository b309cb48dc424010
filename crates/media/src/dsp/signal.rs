//! Generated audio: a speech-like test signal whose every stretch is unlike
//! every other, so that a cross-correlation finds one clear peak.

use std::f64::consts::PI;

/// "Syllables" of voiced sound: a glottal-like harmonic series on a pitch that
/// glides, shaped by two moving formants, with pauses between words. A fixed
/// pseudo-random sequence picks pitches and lengths, so the signal is the same
/// on every run. Peak level about -6 dBFS.
pub fn test_speech(rate: u32, seconds: f64) -> Vec<i16> {
    test_speech_seeded(rate, seconds, 0x2545_f491)
}

/// [`test_speech`] with another sequence of syllables: a second voice.
pub fn test_speech_seeded(rate: u32, seconds: f64, seed: u32) -> Vec<i16> {
    let total = (f64::from(rate) * seconds) as usize;
    let mut out = Vec::with_capacity(total);
    let mut rng = seed.max(1);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        f64::from(rng) / f64::from(u32::MAX)
    };
    let nyquist = f64::from(rate) / 2.0;
    let mut phase = 0.0f64;
    while out.len() < total {
        let syllable = ((0.12 + 0.2 * next()) * f64::from(rate)) as usize;
        let pause = ((0.03 + 0.25 * next() * next()) * f64::from(rate)) as usize;
        let f0_start = 90.0 + 160.0 * next();
        let f0_end = f0_start * (0.75 + 0.5 * next());
        let formant1 = 300.0 + 600.0 * next();
        let formant2 = 900.0 + 1800.0 * next();
        for n in 0..syllable {
            let t = n as f64 / syllable as f64;
            let f0 = f0_start + (f0_end - f0_start) * t;
            phase += 2.0 * PI * f0 / f64::from(rate);
            let mut v = 0.0;
            let mut h = 1.0;
            while h * f0 < nyquist.min(3_800.0) {
                let f = h * f0;
                let gain = 1.0 / (1.0 + ((f - formant1) / 150.0).powi(2))
                    + 0.6 / (1.0 + ((f - formant2) / 250.0).powi(2))
                    + 0.05 / h;
                v += gain * (h * phase).sin();
                h += 1.0;
            }
            let envelope = (PI * t).sin().powf(0.6);
            out.push(v * envelope);
        }
        out.extend(std::iter::repeat_n(0.0, pause));
    }
    out.truncate(total);
    let peak = out.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-9);
    out.iter().map(|v| (v / peak * 16_000.0) as i16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_the_right_length() {
        let a = test_speech(8_000, 2.0);
        assert_eq!(a.len(), 16_000);
        assert_eq!(a, test_speech(8_000, 2.0));
        assert!(a.iter().any(|&s| s > 10_000));
    }
}
