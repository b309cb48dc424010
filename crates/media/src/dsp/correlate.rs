//! How far, and how faithfully, one recording follows another: the lag of the
//! cross-correlation peak, computed with FFTs.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Where `received` best matches `reference`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    /// `received[n + lag]` matches `reference[n]`.
    pub lag: usize,
    /// Normalised correlation at that lag, -1 to 1: how much of what arrived
    /// is the reference (1 is identical up to a gain).
    pub correlation: f64,
}

impl Alignment {
    /// The lag in milliseconds at `rate` Hz.
    pub fn lag_ms(&self, rate: u32) -> f64 {
        self.lag as f64 * 1000.0 / f64::from(rate)
    }
}

/// Finds the lag in `0..=max_lag` at which `received` best matches
/// `reference`. Returns `None` if either is silent or too short.
pub fn align(reference: &[i16], received: &[i16], max_lag: usize) -> Option<Alignment> {
    let reference = trim_trailing_silence(reference);
    if reference.is_empty() || received.len() < reference.len().min(received.len()) {
        return None;
    }
    let n = (reference.len() + received.len()).next_power_of_two();
    let mut planner = FftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(n);
    let inverse = planner.plan_fft_inverse(n);
    let to_complex = |x: &[i16]| {
        let mut v: Vec<Complex<f64>> = x.iter().map(|&s| Complex::new(f64::from(s), 0.0)).collect();
        v.resize(n, Complex::new(0.0, 0.0));
        v
    };
    let mut a = to_complex(received);
    let mut b = to_complex(reference);
    forward.process(&mut a);
    forward.process(&mut b);
    for (x, y) in a.iter_mut().zip(&b) {
        *x *= y.conj();
    }
    inverse.process(&mut a);

    let energy_ref: f64 = reference.iter().map(|&s| f64::from(s).powi(2)).sum();
    let mut prefix = Vec::with_capacity(received.len() + 1);
    prefix.push(0.0);
    for &s in received {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + f64::from(s).powi(2));
    }
    let window_energy = |lag: usize| {
        let end = (lag + reference.len()).min(received.len());
        prefix[end] - prefix[lag.min(end)]
    };
    let mut best: Option<Alignment> = None;
    let lags = max_lag.min(received.len().saturating_sub(1)) + 1;
    for (lag, product) in a.iter().enumerate().take(lags) {
        let energy = window_energy(lag);
        if energy <= 0.0 || energy_ref <= 0.0 {
            continue;
        }
        let correlation = product.re / n as f64 / (energy * energy_ref).sqrt();
        if best.is_none_or(|b| correlation > b.correlation) {
            best = Some(Alignment { lag, correlation });
        }
    }
    best
}

fn trim_trailing_silence(x: &[i16]) -> &[i16] {
    let end = x.iter().rposition(|&s| s != 0).map_or(0, |i| i + 1);
    &x[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::signal;

    #[test]
    fn finds_a_known_delay() {
        let reference = signal::test_speech(8_000, 3.0);
        let mut received = vec![0i16; 1234];
        received.extend(reference.iter().map(|&s| s / 2));
        let a = align(&reference, &received, 4_000).expect("aligned");
        assert_eq!(a.lag, 1234);
        assert!(a.correlation > 0.999, "{a:?}");
    }

    #[test]
    fn unrelated_noise_does_not_correlate() {
        let reference = signal::test_speech(8_000, 3.0);
        let mut seed = 1u32;
        let noise: Vec<i16> = (0..30_000)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 20) as i16 - 2048
            })
            .collect();
        let a = align(&reference, &noise, 4_000).expect("aligned");
        assert!(a.correlation < 0.1, "{a:?}");
    }

    #[test]
    fn silence_has_no_alignment() {
        assert_eq!(align(&[0; 100], &[0; 200], 50), None);
    }
}
