//! Time-stretching of mono PCM frames for the jitter buffer: take out or put
//! in one pitch period, as WebRTC NetEQ's Accelerate and PreemptiveExpand do
//! (a WSOLA-style overlap-add of two segments one period apart).
//!
//! The period is the lag of the highest normalised autocorrelation between
//! 2.5 and 20 ms, measured on the frame together with the audio played just
//! before it. A frame is stretched only when it is periodic enough at that lag
//! (correlation ≥ 0.9, NetEQ's threshold), or so quiet that nobody hears the
//! cut; otherwise it is passed on unchanged. A stretched frame begins and ends
//! with the samples it would have unstretched, so frames join seamlessly.

/// Normalised correlation a period must reach for speech to be stretched.
const PERIODIC: f64 = 0.9;
/// Below this RMS (about -50 dBFS) a frame is stretched wherever it suits.
const QUIET_RMS: f64 = 100.0;
/// Correlation window in ms, reaching back into the previous output.
const WINDOW_MS: u32 = 10;

/// Accelerates and expands frames of one stream. Allocates only in `new`.
#[derive(Debug, Clone)]
pub struct TimeStretch {
    min_lag: usize,
    max_lag: usize,
    window: usize,
    /// The last `max_lag + window` samples played, oldest first.
    history: Vec<i16>,
    /// History and frame side by side, for the correlation.
    scratch: Vec<i16>,
    /// Correlation at each lag from `min_lag`.
    scores: Vec<f64>,
}

impl TimeStretch {
    /// A stretcher for mono audio at `sample_rate` Hz.
    pub fn new(sample_rate: u32) -> Self {
        let rate = sample_rate.max(1000) as usize;
        let min_lag = rate * 5 / 2000;
        let max_lag = rate / 50;
        let window = rate * WINDOW_MS as usize / 1000;
        TimeStretch {
            min_lag,
            max_lag,
            window,
            history: vec![0; max_lag + window],
            scratch: Vec::with_capacity(max_lag + window + rate / 10),
            scores: Vec::with_capacity(max_lag + 1),
        }
    }

    /// Plays `frame` shorter by one pitch period if it is periodic or quiet
    /// enough, appending the result to `out`. Returns the samples appended.
    pub fn accelerate(&mut self, frame: &[i16], out: &mut Vec<i16>) -> usize {
        self.accelerate_at_most(frame, usize::MAX, false, out)
    }

    /// [`TimeStretch::accelerate`], cutting at most `max_cut` samples: a
    /// pitch period longer than that is left alone, and a quiet frame loses
    /// just that much. With `quiet_only`, speech is left alone: only a quiet
    /// frame is cut, where nobody hears the delay change.
    pub fn accelerate_at_most(
        &mut self,
        frame: &[i16],
        max_cut: usize,
        quiet_only: bool,
        out: &mut Vec<i16>,
    ) -> usize {
        let start = out.len();
        let cut = if quiet_only && !self.is_quiet(frame) {
            None
        } else {
            self.period(frame, max_cut)
        };
        match cut {
            Some((lag, overlap)) => {
                // frame[..overlap] fades into frame[lag..lag + overlap]; the
                // `lag` samples between are gone.
                for i in 0..overlap {
                    out.push(mix(frame[i], frame[i + lag], i, overlap));
                }
                out.extend_from_slice(&frame[lag + overlap..]);
            }
            None => out.extend_from_slice(frame),
        }
        self.remember(&out[start..]);
        out.len() - start
    }

    /// Plays `frame` longer by one pitch period if it is periodic or quiet
    /// enough, appending the result to `out`. Returns the samples appended.
    pub fn expand(&mut self, frame: &[i16], out: &mut Vec<i16>) -> usize {
        self.expand_at_most(frame, usize::MAX, out)
    }

    /// [`TimeStretch::expand`], adding at most `max_add` samples (but never
    /// less than the shortest pitch period, 2.5 ms): a level just under its
    /// target is not pushed a whole long period over it.
    pub fn expand_at_most(&mut self, frame: &[i16], max_add: usize, out: &mut Vec<i16>) -> usize {
        let start = out.len();
        match self.period(frame, max_add.max(self.min_lag)) {
            Some((lag, overlap)) => {
                // After frame[..lag], frame[lag..lag + overlap] fades into
                // frame[..overlap], and the frame plays again from
                // `overlap`: one period more.
                out.extend_from_slice(&frame[..lag]);
                for i in 0..overlap {
                    out.push(mix(frame[lag + i], frame[i], i, overlap));
                }
                out.extend_from_slice(&frame[overlap..]);
            }
            None => out.extend_from_slice(frame),
        }
        self.remember(&out[start..]);
        out.len() - start
    }

    /// Plays `frame` as it is, keeping the history for the next stretch.
    pub fn normal(&mut self, frame: &[i16], out: &mut Vec<i16>) -> usize {
        out.extend_from_slice(frame);
        self.remember(frame);
        frame.len()
    }

    /// The pitch period of `frame`, up to `max_lag`, and the overlap to
    /// cross-fade over, if the frame can be stretched.
    fn period(&mut self, frame: &[i16], max_lag: usize) -> Option<(usize, usize)> {
        // The overlap is a period at most, at least the shortest period, and
        // frame[lag + overlap] must exist.
        let max_lag = self
            .max_lag
            .min(max_lag)
            .min(frame.len().saturating_sub(self.min_lag));
        if max_lag < self.min_lag {
            return None;
        }
        let fit = |lag: usize| lag.min(frame.len() - lag);
        if self.is_quiet(frame) {
            return Some((max_lag, fit(max_lag)));
        }

        self.scratch.clear();
        self.scratch.extend_from_slice(&self.history);
        self.scratch.extend_from_slice(frame);
        let signal = &self.scratch;
        // Compare the last `window` samples before frame[overlap] with those
        // one lag earlier, and the overlapped segments themselves.
        self.scores.clear();
        for lag in self.min_lag..=max_lag {
            let overlap = fit(lag);
            let end = self.history.len() + lag + overlap;
            let begin = end - self.window.max(overlap);
            self.scores.push(correlation(
                &signal[begin..end],
                &signal[begin - lag..end - lag],
            ));
        }
        let best = self.scores.iter().copied().fold(0.0, f64::max);
        if best < PERIODIC {
            return None;
        }
        // The first peak nearly as high as the highest: multiples of the
        // period correlate as well, and would take out or put in more.
        let peak = (0..self.scores.len()).find(|&i| {
            let c = self.scores[i];
            c >= best * 0.97
                && (i == 0 || self.scores[i - 1] <= c)
                && self.scores.get(i + 1).is_none_or(|&next| next <= c)
        })?;
        let lag = self.min_lag + peak;
        Some((lag, fit(lag)))
    }

    /// Whether `frame` is so quiet that a cut anywhere goes unheard.
    fn is_quiet(&self, frame: &[i16]) -> bool {
        let energy: f64 = frame.iter().map(|&s| f64::from(s).powi(2)).sum();
        energy / (frame.len().max(1) as f64) < QUIET_RMS * QUIET_RMS
    }

    fn remember(&mut self, played: &[i16]) {
        let keep = self.history.len();
        if played.len() >= keep {
            self.history.copy_from_slice(&played[played.len() - keep..]);
        } else {
            self.history.copy_within(played.len().., 0);
            self.history[keep - played.len()..].copy_from_slice(played);
        }
    }
}

/// Sample `i` of an `n`-sample linear cross-fade from `from` to `to`.
fn mix(from: i16, to: i16, i: usize, n: usize) -> i16 {
    let w = (i + 1) as f64 / (n + 1) as f64;
    (f64::from(from) * (1.0 - w) + f64::from(to) * w).round() as i16
}

/// Normalised cross-correlation of two equally long slices, -1 to 1.
fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use std::f64::consts::PI;

    use super::*;

    const SPEECH: &str = "/usr/share/codec2/raw/speech_orig_16k.wav";

    fn tone(rate: u32, hz: f64, seconds: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                // A fundamental with two harmonics: periodic, not a pure sine.
                let v = (2.0 * PI * hz * t).sin()
                    + 0.5 * (4.0 * PI * hz * t).sin()
                    + 0.25 * (6.0 * PI * hz * t).sin();
                (v * 8000.0) as i16
            })
            .collect()
    }

    #[test]
    fn an_expansion_adds_no_more_than_asked_beyond_the_shortest_period() {
        let rate = 16_000;
        let mut stretch = TimeStretch::new(rate);
        // Quiet: stretched wherever it suits, by just what is asked.
        let quiet = vec![3i16; 320];
        let mut out = Vec::new();
        assert_eq!(stretch.expand_at_most(&quiet, 60, &mut out), 320 + 60);
        out.clear();
        // Less than the shortest period (2.5 ms) is rounded up to it.
        assert_eq!(stretch.expand_at_most(&quiet, 5, &mut out), 320 + 40);
        // A voiced frame: one period of 5 ms, not more than asked.
        let voiced = tone(rate, 200.0, 0.1);
        let mut out = Vec::new();
        stretch.normal(&voiced[..320], &mut out);
        out.clear();
        let n = stretch.expand_at_most(&voiced[320..640], 100, &mut out);
        assert!(n == 320 || (320 + 40..=320 + 100).contains(&n), "{n}");
    }

    fn max_step(x: &[i16]) -> i32 {
        x.windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    }

    /// Upward zero crossings per second: the fundamental of the test tone.
    fn pitch(x: &[i16], rate: u32) -> f64 {
        let crossings = x.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        crossings as f64 * f64::from(rate) / x.len() as f64
    }

    fn corr(a: &[i16], b: &[i16]) -> f64 {
        let n = a.len().min(b.len());
        correlation(&a[..n], &b[..n])
    }

    enum Op {
        Accelerate,
        Expand,
    }

    /// Stretches every frame of `x` as `op` says, the others played as they
    /// are. Returns the output and, per stretched frame, where it was in the
    /// input and where and how long it is in the output.
    fn run(
        x: &[i16],
        rate: u32,
        frame: usize,
        op: impl Fn(usize) -> Option<Op>,
    ) -> (Vec<i16>, Vec<(usize, usize, usize)>) {
        let mut stretch = TimeStretch::new(rate);
        let mut out = Vec::new();
        let mut stretched = Vec::new();
        for (k, chunk) in x.chunks_exact(frame).enumerate() {
            let start = out.len();
            let n = match op(k) {
                Some(Op::Accelerate) => stretch.accelerate(chunk, &mut out),
                Some(Op::Expand) => stretch.expand(chunk, &mut out),
                None => stretch.normal(chunk, &mut out),
            };
            assert_eq!(n, out.len() - start);
            if n != chunk.len() {
                stretched.push((k * frame, start, n));
            }
        }
        (out, stretched)
    }

    #[test]
    fn accelerate_takes_out_one_period_of_a_tone() {
        let rate = 16_000;
        let x = tone(rate, 150.0, 2.0);
        let frame = 320;
        let (out, stretched) = run(&x, rate, frame, |_| Some(Op::Accelerate));
        let frames = x.len() / frame;
        assert_eq!(
            stretched.len(),
            frames - 1,
            "all but the first, which has no history"
        );
        let removed = (x.len() - out.len()) as f64 / stretched.len() as f64;
        assert!((removed - 106.7).abs() < 1.5, "removed {removed} per frame");
        assert!(
            max_step(&out) <= 2 * max_step(&x),
            "{} vs {}",
            max_step(&out),
            max_step(&x)
        );
        let f = pitch(&out, rate);
        assert!((f - 150.0).abs() < 3.0, "pitch {f}");
    }

    #[test]
    fn expand_puts_in_one_period_of_a_tone() {
        let rate = 48_000;
        let x = tone(rate, 150.0, 2.0);
        let frame = 960;
        let (out, stretched) = run(&x, rate, frame, |k| (k % 2 == 1).then_some(Op::Expand));
        let added = (out.len() - x.len()) as f64 / stretched.len() as f64;
        assert_eq!(stretched.len(), x.len() / frame / 2);
        assert!((added - 320.0).abs() < 3.0, "added {added} per frame");
        assert!(
            max_step(&out) <= 2 * max_step(&x),
            "{} vs {}",
            max_step(&out),
            max_step(&x)
        );
        let f = pitch(&out, rate);
        assert!((f - 150.0).abs() < 3.0, "pitch {f}");
    }

    #[test]
    fn noise_is_left_alone_and_silence_is_cut_freely() {
        let mut seed = 1u32;
        let noise: Vec<i16> = (0..3200)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (seed >> 16) as i16
            })
            .collect();
        let (out, stretched) = run(&noise, 16_000, 320, |_| Some(Op::Accelerate));
        assert!(stretched.is_empty());
        assert_eq!(out, noise);
        let quiet = vec![3i16; 3200];
        let (out, stretched) = run(&quiet, 16_000, 320, |_| Some(Op::Expand));
        assert_eq!(stretched.len(), 10);
        assert!(out.iter().all(|&s| s == 3));
    }

    #[test]
    fn speech_is_stretched_without_clicks() {
        let mut reader = hound::WavReader::open(SPEECH).expect("codec2-examples installed");
        let rate = reader.spec().sample_rate;
        let x: Vec<i16> = reader
            .samples::<i16>()
            .map(|s| s.expect("readable WAV"))
            .collect();
        let frame = rate as usize / 50;
        let limit = 2 * max_step(&x);
        for (name, op) in [("accelerate", 0), ("expand", 1)] {
            let (out, stretched) = run(&x, rate, frame, |k| {
                (k % 3 == 0).then_some(if op == 0 { Op::Accelerate } else { Op::Expand })
            });
            let share = stretched.len() as f64 / (x.len() / frame / 3) as f64;
            assert!(share > 0.3, "{name}: only {share} of frames stretched");
            assert!(
                max_step(&out) <= limit,
                "{name}: step {} > {limit}",
                max_step(&out)
            );
            // Each stretched frame still sounds like its input: it lines up
            // with it once the period taken out or put in is skipped.
            let mut total = 0.0;
            let mut weights = 0.0;
            for &(at, start, len) in &stretched {
                let input = &x[at..at + frame];
                let output = &out[start..start + len];
                let c = if len < frame {
                    corr(output, &input[frame - len..])
                } else {
                    corr(&output[len - frame..], input)
                };
                // No click: steps within and at the edges of the frame stay
                // within twice the input's own around there.
                let near = max_step(&x[at.saturating_sub(1)..(at + frame + 1).min(x.len())]);
                let steps =
                    max_step(&out[start.saturating_sub(1)..(start + len + 1).min(out.len())]);
                assert!(
                    steps <= 2 * near.max(16),
                    "{name}: step {steps} in a frame whose input steps {near}"
                );
                let energy: f64 = input.iter().map(|&s| f64::from(s).powi(2)).sum();
                total += c * energy;
                weights += energy;
            }
            let c = total / weights;
            assert!(c > 0.9, "{name}: correlation {c}");
        }
    }

    #[test]
    fn steady_state_does_not_allocate() {
        let x = tone(16_000, 150.0, 1.0);
        let mut stretch = TimeStretch::new(16_000);
        let mut out = Vec::with_capacity(2 * x.len());
        let capacities = (
            stretch.scratch.capacity(),
            stretch.scores.capacity(),
            stretch.history.capacity(),
        );
        for (k, chunk) in x.chunks_exact(320).enumerate() {
            match k % 3 {
                0 => stretch.accelerate(chunk, &mut out),
                1 => stretch.expand(chunk, &mut out),
                _ => stretch.normal(chunk, &mut out),
            };
        }
        assert_eq!(
            capacities,
            (
                stretch.scratch.capacity(),
                stretch.scores.capacity(),
                stretch.history.capacity()
            )
        );
    }
}
