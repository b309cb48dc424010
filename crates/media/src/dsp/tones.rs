//! Call-progress tones and ringing, generated rather than recorded: one or
//! two sine frequencies switched on and off in a cadence, as the country
//! tone plans of ITU-T E.180 describe them.

use std::f64::consts::TAU;

/// A tone: up to two frequencies summed, and a cadence of (on, off)
/// milliseconds repeated for ever; an empty cadence is continuous.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneSpec {
    pub frequencies: Vec<f64>,
    pub cadence: Vec<(u32, u32)>,
    /// Peak level of the sum, 0 to 1 of full scale.
    pub level: f64,
}

impl ToneSpec {
    /// The North American ringing signal heard by an answering phone's
    /// user: 440 + 480 Hz, 2 s on, 4 s off (E.180 Supplement 2, US).
    pub fn ringtone() -> Self {
        ToneSpec {
            frequencies: vec![440.0, 480.0],
            cadence: vec![(2_000, 4_000)],
            level: 0.25,
        }
    }
}

/// Generates a [`ToneSpec`] sample by sample.
#[derive(Debug, Clone)]
pub struct Tone {
    spec: ToneSpec,
    rate: u32,
    /// Samples generated so far.
    n: u64,
    /// Length of one cadence cycle, in samples (0: continuous).
    cycle: u64,
}

impl Tone {
    pub fn new(spec: ToneSpec, rate: u32) -> Self {
        let cycle = spec
            .cadence
            .iter()
            .map(|&(on, off)| u64::from(on + off))
            .sum::<u64>()
            * u64::from(rate)
            / 1000;
        Tone {
            spec,
            rate: rate.max(1),
            n: 0,
            cycle,
        }
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        let amplitude =
            self.spec.level.clamp(0.0, 1.0) * 32_767.0 / self.spec.frequencies.len().max(1) as f64;
        for sample in out {
            let on = self.sounding(self.n);
            let t = self.n as f64 / f64::from(self.rate);
            let value: f64 = if on {
                self.spec
                    .frequencies
                    .iter()
                    .map(|f| (TAU * f * t).sin())
                    .sum::<f64>()
                    * amplitude
            } else {
                0.0
            };
            *sample = value.round().clamp(-32_768.0, 32_767.0) as i16;
            self.n += 1;
        }
    }

    fn sounding(&self, n: u64) -> bool {
        if self.cycle == 0 {
            return true;
        }
        let mut at = (n % self.cycle) * 1000 / u64::from(self.rate);
        for &(on, off) in &self.spec.cadence {
            if at < u64::from(on) {
                return true;
            }
            at = at.saturating_sub(u64::from(on));
            if at < u64::from(off) {
                return false;
            }
            at -= u64::from(off);
        }
        false
    }
}

/// The power of `frequency` in `pcm` (Goertzel), normalised so that a
/// full-scale sine reads about 0.5 whatever the length.
pub fn goertzel(pcm: &[i16], rate: u32, frequency: f64) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let coefficient = 2.0 * (TAU * frequency / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) / 32_768.0 + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    2.0 * power / (pcm.len() as f64 * pcm.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ringtone_has_its_frequencies_and_cadence() {
        let rate = 8_000;
        let mut tone = Tone::new(ToneSpec::ringtone(), rate);
        let mut pcm = vec![0i16; rate as usize * 6];
        tone.fill(&mut pcm);
        let on = &pcm[..rate as usize * 2];
        let off = &pcm[rate as usize * 2..];
        for f in [440.0, 480.0] {
            assert!(goertzel(on, rate, f) > 0.005, "{f} Hz");
        }
        assert!(goertzel(on, rate, 1_000.0) < 1e-5);
        assert!(off.iter().all(|&s| s == 0), "4 s of silence");
        // The cycle repeats.
        let mut next = vec![0i16; rate as usize];
        tone.fill(&mut next);
        assert!(goertzel(&next, rate, 440.0) > 0.005);
    }
}
