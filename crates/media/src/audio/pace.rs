//! A clock for backends that have none of their own (files, null): it wakes
//! every few milliseconds and says how many samples are due, so that a file
//! is read or written exactly as fast as a sound card would do it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a paced backend wakes up.
pub const TICK: Duration = Duration::from_millis(5);

/// The work a paced thread does.
pub trait PacedTask: Send + 'static {
    /// `samples` more samples are due.
    fn step(&mut self, samples: usize);
    /// The stream is closing; runs on the paced thread after the last step.
    fn finish(self);
}

/// A thread that calls [`PacedTask::step`] every [`TICK`] with the number of
/// samples due since the last call, at `rate` Hz measured from its start,
/// until this guard is dropped; then it finishes the task and is joined.
pub struct Paced {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Paced {
    pub fn spawn(name: &str, rate: u32, mut task: impl PacedTask) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let start = Instant::now();
                let mut done: u64 = 0;
                let mut ticks: u32 = 0;
                while !stopping.load(Ordering::Acquire) {
                    ticks += 1;
                    let wake = start + TICK * ticks;
                    if let Some(wait) = wake.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u64;
                    if due > done {
                        task.step((due - done) as usize);
                        done = due;
                    }
                }
                task.finish();
            })
            .expect("spawning an audio pacing thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
