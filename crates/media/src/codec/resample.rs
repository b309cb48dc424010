//! Streaming sample-rate conversion by a rational factor.
//!
//! A polyphase windowed-sinc filter (Kaiser window): the input is upsampled by
//! `L`, low-pass filtered below the lower of the two Nyquist frequencies and
//! decimated by `M`, computing only the outputs that are kept. The delay it
//! adds is half the filter, about 1 ms at telephone rates.

/// Zero crossings of the sinc on each side of its centre, counted at the
/// lower of the two rates: the steepness of the anti-alias filter.
const ZERO_CROSSINGS: usize = 16;
/// Passband edge as a fraction of the lower Nyquist frequency.
const CUTOFF: f64 = 0.92;
const KAISER_BETA: f64 = 8.0;

/// Converts a stream of mono samples from one rate to another.
pub struct Resampler {
    up: u64,
    down: u64,
    /// `phases[p][j]` is tap `p + j * up` of the prototype filter.
    phases: Vec<Vec<f32>>,
    centre: u64,
    /// Input not yet fully used, oldest first; `history[0]` is input sample
    /// number `base` (negative numbers are the zeros before the stream).
    history: Vec<f32>,
    base: i64,
    /// Time of the next output sample, in units of the upsampled rate.
    next: u64,
    passthrough: bool,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Self {
        assert!(from > 0 && to > 0, "sample rates are positive");
        let g = gcd(u64::from(from), u64::from(to));
        let (up, down) = (u64::from(to) / g, u64::from(from) / g);
        if up == down {
            return Self {
                up: 1,
                down: 1,
                phases: Vec::new(),
                centre: 0,
                history: Vec::new(),
                base: 0,
                next: 0,
                passthrough: true,
            };
        }
        // Cutoff in cycles per sample at the upsampled rate.
        let fc = CUTOFF * 0.5 / (up.max(down) as f64);
        let half = (ZERO_CROSSINGS as f64 / (2.0 * fc)).ceil() as u64;
        let len = 2 * half + 1;
        let mut taps: Vec<f64> = (0..len)
            .map(|n| {
                let x = n as f64 - half as f64;
                let sinc = if x == 0.0 {
                    2.0 * fc
                } else {
                    (2.0 * std::f64::consts::PI * fc * x).sin() / (std::f64::consts::PI * x)
                };
                let r = x / half as f64;
                sinc * bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt())
                    / bessel_i0(KAISER_BETA)
            })
            .collect();
        let sum: f64 = taps.iter().sum();
        for t in &mut taps {
            *t *= up as f64 / sum;
        }
        let phases = (0..up)
            .map(|p| {
                (p..len)
                    .step_by(up as usize)
                    .map(|n| taps[n as usize] as f32)
                    .collect()
            })
            .collect();
        let lead = len.div_ceil(up) as usize;
        Self {
            up,
            down,
            phases,
            centre: half,
            history: vec![0.0; lead],
            base: -(lead as i64),
            next: 0,
            passthrough: false,
        }
    }

    /// Resamples `input` and appends the result to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.passthrough {
            out.extend_from_slice(input);
            return;
        }
        self.history.extend(input.iter().map(|&s| f32::from(s)));
        let end = self.base + self.history.len() as i64;
        loop {
            let t = self.next + self.centre;
            let newest = (t / self.up) as i64;
            if newest >= end {
                break;
            }
            let phase = &self.phases[(t % self.up) as usize];
            let at = (newest - self.base) as usize;
            let mut acc = 0.0f32;
            for (j, &tap) in phase.iter().enumerate() {
                match at.checked_sub(j) {
                    Some(i) => acc += tap * self.history[i],
                    None => break,
                }
            }
            out.push(acc.round().clamp(-32768.0, 32767.0) as i16);
            self.next += self.down;
        }
        // Keep only what the next output can still reach.
        let t = self.next + self.centre;
        let oldest_needed = (t / self.up) as i64 - self.phases[0].len() as i64;
        let drop = (oldest_needed - self.base).clamp(0, self.history.len() as i64) as usize;
        self.history.drain(..drop);
        self.base += drop as i64;
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The modified Bessel function of the first kind, order zero (series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f64, seconds: f64) -> Vec<i16> {
        (0..(f64::from(rate) * seconds) as usize)
            .map(|n| {
                (10_000.0 * (2.0 * std::f64::consts::PI * freq * n as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Converts in uneven pieces, as audio arrives from a device.
    fn convert(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
        let mut r = Resampler::new(from, to);
        let mut out = Vec::new();
        for piece in input.chunks(37) {
            r.process(piece, &mut out);
        }
        out
    }

    #[test]
    fn length_follows_the_ratio() {
        for (from, to) in [
            (16_000, 8_000),
            (8_000, 48_000),
            (44_100, 8_000),
            (48_000, 16_000),
            (8_000, 8_000),
        ] {
            let input = tone(from, 440.0, 1.0);
            let out = convert(from, to, &input);
            // Short of one second by the filter's delay, which is under 3 ms.
            let missing = i64::from(to) - out.len() as i64;
            assert!(
                (0..=i64::from(to) * 3 / 1000).contains(&missing),
                "{from}->{to}: {}",
                out.len()
            );
        }
    }

    #[test]
    fn passband_tone_keeps_its_level() {
        for (from, to) in [
            (16_000, 8_000),
            (8_000, 16_000),
            (44_100, 8_000),
            (8_000, 48_000),
        ] {
            let out = convert(from, to, &tone(from, 1_000.0, 1.0));
            let steady = &out[out.len() / 4..out.len() * 3 / 4];
            let level = rms(steady) / (10_000.0 / 2f64.sqrt());
            assert!((level - 1.0).abs() < 0.02, "{from}->{to}: level {level}");
        }
    }

    #[test]
    fn tone_above_the_new_nyquist_is_removed() {
        let out = convert(16_000, 8_000, &tone(16_000, 5_000.0, 1.0));
        let steady = &out[out.len() / 4..out.len() * 3 / 4];
        assert!(rms(steady) < 10_000.0 * 0.01, "alias rms {}", rms(steady));
    }

    #[test]
    fn upsampled_tone_is_the_same_frequency() {
        let out = convert(8_000, 16_000, &tone(8_000, 1_000.0, 1.0));
        let reference = tone(16_000, 1_000.0, 1.0);
        // Find the lag that matches best; the tone must line up within a few samples.
        let best = (0..64)
            .map(|lag| {
                let err: f64 = out[2000 + lag..12_000 + lag]
                    .iter()
                    .zip(&reference[2000..12_000])
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
                (err, lag)
            })
            .fold((f64::MAX, 0), |a, b| if b.0 < a.0 { b } else { a });
        let snr = 10.0 * (rms(&reference).powi(2) * 10_000.0 / best.0).log10();
        assert!(snr > 40.0, "snr {snr} dB at lag {}", best.1);
    }
}
