//! A clock for backends that have none of their own (files, null): samples
//! fall due a tick at a time, as a sound card's periods do, counted from the
//! moment the stream opens, so that a file is read or written exactly as fast
//! as a sound card would do it.
//!
//! Nothing wakes up to do that work: the thread that uses the stream brings
//! it up to date whenever it looks at the ring ([`Driver::advance`]), and it
//! knows from the clock when the next samples fall due ([`Driver::when`]), so
//! it can sleep until then. Only that thread touches either end of the ring,
//! so doing every tick's work late, at once, moves the same samples as doing
//! it on time: what a tick finds in the ring is what was there when it fell
//! due.

use std::time::{Duration, Instant};

use super::Driver;

/// The period of a paced backend: how much falls due at a time.
pub const TICK: Duration = Duration::from_millis(5);
const TICK_NANOS: u64 = TICK.as_nanos() as u64;
/// Whole ticks in a second, so the clock's sums stay in u64 (no u128
/// division on every look at the ring).
const TICKS_PER_SECOND: u64 = 1_000_000_000 / TICK_NANOS;
const _: () = assert!(TICKS_PER_SECOND * TICK_NANOS == 1_000_000_000);

/// The work of a paced stream.
pub trait PacedTask: Send + 'static {
    /// `samples` more samples are due.
    fn step(&mut self, samples: usize);
    /// The stream is closing, after the last step.
    fn finish(self);
}

/// A task on the clock: samples at `rate` Hz fall due every [`TICK`] from
/// its start. Dropping it brings it up to date and finishes the task.
pub struct Paced<T: PacedTask> {
    start: Instant,
    rate: u32,
    /// Samples handed to the task so far.
    done: u64,
    task: Option<T>,
}

impl<T: PacedTask> Paced<T> {
    pub fn new(rate: u32, task: T) -> Self {
        Self {
            start: Instant::now(),
            rate,
            done: 0,
            task: Some(task),
        }
    }

    /// The task itself, for tests.
    #[cfg(test)]
    pub fn task(&mut self) -> &mut T {
        self.task.as_mut().expect("the task lives until the drop")
    }

    /// Samples due by the end of tick `ticks`.
    fn due_at_tick(&self, ticks: u64) -> u64 {
        ticks * u64::from(self.rate) / TICKS_PER_SECOND
    }
}

impl<T: PacedTask> Driver for Paced<T> {
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start);
        let ticks =
            elapsed.as_secs() * TICKS_PER_SECOND + u64::from(elapsed.subsec_nanos()) / TICK_NANOS;
        let due = self.due_at_tick(ticks);
        if due > self.done
            && let Some(task) = &mut self.task
        {
            task.step((due - self.done) as usize);
            self.done = due;
        }
    }

    fn when(&self, _now: Instant, samples: usize) -> Instant {
        // The first tick whose end brings the count to `wanted`.
        let wanted = self.done + samples.max(1) as u64;
        let ticks = (wanted * TICKS_PER_SECOND).div_ceil(u64::from(self.rate));
        self.start + Duration::from_nanos(ticks * TICK_NANOS)
    }
}

impl<T: PacedTask> Drop for Paced<T> {
    fn drop(&mut self) {
        self.advance(Instant::now());
        if let Some(task) = self.task.take() {
            task.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Count(u64);

    impl PacedTask for Count {
        fn step(&mut self, samples: usize) {
            self.0 += samples as u64;
        }
        fn finish(self) {}
    }

    #[test]
    fn samples_fall_due_a_tick_at_a_time() {
        let mut paced = Paced::new(16_000, Count::default());
        let start = paced.start;
        paced.advance(start + TICK - Duration::from_micros(1));
        assert_eq!(paced.task().0, 0);
        paced.advance(start + TICK);
        assert_eq!(paced.task().0, 80);
        paced.advance(start + Duration::from_millis(23));
        assert_eq!(paced.task().0, 320);
    }

    #[test]
    fn the_clock_says_when_samples_will_be_due() {
        let mut paced = Paced::new(8_000, Count::default());
        let start = paced.start;
        assert_eq!(paced.when(start, 1), start + TICK);
        assert_eq!(paced.when(start, 160), start + 4 * TICK);
        assert_eq!(paced.when(start, 161), start + 5 * TICK);
        paced.advance(start + 4 * TICK);
        assert_eq!(paced.when(start, 160), start + 8 * TICK);
        // A rate that does not divide into ticks: 220.5 samples each.
        let paced = Paced::new(44_100, Count::default());
        let start = paced.start;
        assert_eq!(paced.when(start, 441), start + 2 * TICK);
        assert_eq!(paced.when(start, 442), start + 3 * TICK);
        assert_eq!(paced.when(start, 44_100), start + Duration::from_secs(1));
    }
}
