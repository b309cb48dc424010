//! Audio in and out of a call: one backend interface, several backends.
//!
//! Every backend has the same shape: a capture side that writes mono 16-bit
//! samples into a lock-free ring at its own clock ([`MicStream`]), and a
//! playback side that takes them out of another ring at its own clock
//! ([`SpeakerStream`]). The code above the rings ([`Microphone`],
//! [`Speaker`]) is shared, so a headless run with WAV files exercises the same
//! pipeline as a sound card.
//!
//! Each stream's [`Driver`] also tells when its ring will next have moved,
//! so that a call can sleep until its next frame is captured or its speaker
//! runs low, instead of looking every few milliseconds.
//!
//! Backends:
//! - [`device`]: the sound card, through cpal (ALSA, or PulseAudio/PipeWire).
//! - [`wav`]: a WAV file played as a microphone in real time, and a WAV file
//!   recorded as a speaker in real time.
//! - [`null`]: silence in, nothing out, at real-time pace.

pub mod device;
pub mod null;
pub mod wav;

mod pace;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::codec::resample::Resampler;

/// How long each ring can hold, in seconds of audio: room for the bursts of
/// a sender that buffers (the article's LAME pipe writes 4 KiB, a second of
/// MP3, at a time).
const RING_SECONDS: u32 = 3;

/// Where a call's audio comes from or goes to, as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSpec {
    /// The default sound device.
    Default,
    /// A sound device by (part of) its name, as `ipphone devices` lists it.
    Device(String),
    /// A WAV file: read as a microphone, written as a speaker.
    Wav(PathBuf),
    /// Silence as a microphone; a speaker that discards.
    Null,
}

impl FromStr for AudioSpec {
    type Err = AudioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "" => return Err(AudioError::BadSpec("an empty audio name".into())),
            "default" => AudioSpec::Default,
            "null" => AudioSpec::Null,
            s if s.to_ascii_lowercase().ends_with(".wav") => AudioSpec::Wav(PathBuf::from(s)),
            s => AudioSpec::Device(s.to_owned()),
        })
    }
}

impl fmt::Display for AudioSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioSpec::Default => f.write_str("default"),
            AudioSpec::Device(name) => f.write_str(name),
            AudioSpec::Wav(path) => write!(f, "{}", path.display()),
            AudioSpec::Null => f.write_str("null"),
        }
    }
}

/// Why audio could not be opened or kept running.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{0} is not a usable audio name (use default, null, a device name or FILE.wav)")]
    BadSpec(String),
    #[error(
        "no sound card found: {0}; use --mic/--speaker with FILE.wav or null to run without one"
    )]
    NoDevice(String),
    #[error("sound device error: {0}")]
    Device(String),
    #[error("cannot read {path} as a WAV file: {reason}")]
    WavRead { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    WavWrite { path: PathBuf, reason: String },
}

/// Counters that a backend's real-time side bumps without locking.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Capture: samples lost because the ring was full. Playback: samples of
    /// silence played because the ring was empty.
    pub xruns: AtomicU64,
    /// Set when a microphone has reached the end of its input (a WAV file);
    /// from then on it delivers silence.
    pub ended: AtomicBool,
    /// Playback: samples the shared layer asks the backend to drop from the
    /// oldest end of the ring, to cut a standing delay at once.
    pub discard: AtomicUsize,
}

/// Run by a playback backend's real-time side before it takes samples: drops
/// what [`Speaker`] asked to drop. Lock-free and allocation-free.
pub fn apply_discard(ring: &mut rtrb::Consumer<i16>, counters: &StreamCounters) {
    let asked = counters.discard.swap(0, Ordering::Relaxed);
    if asked > 0
        && let Ok(chunk) = ring.read_chunk(asked.min(ring.slots()))
    {
        chunk.commit_all();
    }
}

/// What runs a stream and keeps its time: a device's callback on a thread of
/// its own, or, for a backend without a clock, the paced work done on the
/// thread that uses the stream, by the clock. Dropping it stops the stream (and
/// finishes a recording).
pub trait Driver: Send {
    /// Brings the stream up to `now`. A backend without a clock moves the
    /// samples that have fallen due since it was last asked; a device's
    /// callback does that by itself. Call it before looking at the ring.
    fn advance(&mut self, _now: Instant) {}

    /// When `samples` more samples will have gone through the ring (captured
    /// into it, or played out of it), by the stream's clock: after `now` once
    /// the stream is advanced to `now`, for a caller that sleeps until then
    /// and looks again. A device's is a prediction from its last callback.
    fn when(&self, now: Instant, samples: usize) -> Instant;
}

/// The capture side of a backend: samples at `rate` Hz appear in `ring` at
/// the pace of the backend's clock.
pub struct MicStream {
    pub rate: u32,
    pub ring: rtrb::Consumer<i16>,
    pub counters: Arc<StreamCounters>,
    pub driver: Box<dyn Driver>,
}

/// The playback side of a backend: samples pushed into `ring` are played at
/// `rate` Hz at the pace of the backend's clock.
pub struct SpeakerStream {
    pub rate: u32,
    pub ring: rtrb::Producer<i16>,
    /// How many samples the backend holds beyond the ring (device buffers).
    pub device_latency: usize,
    pub counters: Arc<StreamCounters>,
    pub driver: Box<dyn Driver>,
}

/// Opens the capture side of `spec`, at `preferred_rate` if the backend can.
pub fn open_mic(spec: &AudioSpec, preferred_rate: u32) -> Result<MicStream, AudioError> {
    match spec {
        AudioSpec::Default => device::open_mic(None, preferred_rate),
        AudioSpec::Device(name) => device::open_mic(Some(name), preferred_rate),
        AudioSpec::Wav(path) => wav::open_mic(path),
        AudioSpec::Null => Ok(null::open_mic(preferred_rate)),
    }
}

/// Opens the playback side of `spec`, at `preferred_rate` if the backend can.
pub fn open_speaker(spec: &AudioSpec, preferred_rate: u32) -> Result<SpeakerStream, AudioError> {
    match spec {
        AudioSpec::Default => device::open_speaker(None, preferred_rate),
        AudioSpec::Device(name) => device::open_speaker(Some(name), preferred_rate),
        AudioSpec::Wav(path) => wav::open_speaker(path, preferred_rate),
        AudioSpec::Null => Ok(null::open_speaker(preferred_rate)),
    }
}

/// Checks, before a call, that `spec` can serve as a microphone: a WAV file
/// must exist and parse, a device must exist.
pub fn check_mic(spec: &AudioSpec) -> Result<(), AudioError> {
    match spec {
        AudioSpec::Wav(path) => wav::check_readable(path),
        AudioSpec::Default => device::check(None, true),
        AudioSpec::Device(name) => device::check(Some(name), true),
        AudioSpec::Null => Ok(()),
    }
}

/// Checks, before a call, that `spec` can serve as a speaker: a device must
/// exist. (A WAV file is created when the call starts.)
pub fn check_speaker(spec: &AudioSpec) -> Result<(), AudioError> {
    match spec {
        AudioSpec::Default => device::check(None, false),
        AudioSpec::Device(name) => device::check(Some(name), false),
        AudioSpec::Wav(_) | AudioSpec::Null => Ok(()),
    }
}

/// A microphone at the call's sample rate: the backend's samples, resampled.
pub struct Microphone {
    stream: MicStream,
    resampler: Resampler,
    input: Vec<i16>,
    pending: Vec<i16>,
    rate: u32,
}

impl Microphone {
    /// Opens `spec` and converts its samples to `rate` Hz.
    pub fn open(spec: &AudioSpec, rate: u32) -> Result<Self, AudioError> {
        Ok(Self::new(open_mic(spec, rate)?, rate))
    }

    /// Wraps an opened stream, converting its samples to `rate` Hz.
    pub fn new(stream: MicStream, rate: u32) -> Self {
        let resampler = Resampler::new(stream.rate, rate);
        Self {
            stream,
            resampler,
            input: Vec::new(),
            pending: Vec::new(),
            rate,
        }
    }

    /// The call-side sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// True once the source has ended (a WAV file played to its end).
    pub fn ended(&self) -> bool {
        self.stream.counters.ended.load(Ordering::Relaxed)
    }

    /// Samples lost because nobody read the ring in time.
    pub fn overruns(&self) -> u64 {
        self.stream.counters.xruns.load(Ordering::Relaxed)
    }

    /// Fills `out` with the next samples if they have arrived; never waits.
    pub fn try_read(&mut self, out: &mut [i16]) -> bool {
        self.take_available(Instant::now());
        if self.pending.len() < out.len() {
            return false;
        }
        out.copy_from_slice(&self.pending[..out.len()]);
        self.pending.drain(..out.len());
        true
    }

    /// When `samples` (at the call's rate) can be read: `now` if they can,
    /// else when the backend's clock will have brought what is missing. With
    /// a resampler in between that may be a little early, never late: look
    /// again then.
    pub fn ready_at(&mut self, samples: usize, now: Instant) -> Instant {
        self.take_available(now);
        let Some(missing) = samples.checked_sub(self.pending.len()).filter(|&m| m > 0) else {
            return now;
        };
        let backend = (missing as u64 * u64::from(self.stream.rate)).div_ceil(u64::from(self.rate));
        self.stream.driver.when(now, backend as usize)
    }

    /// Moves what the backend has captured into `pending`; returns whether
    /// there was anything.
    fn take_available(&mut self, now: Instant) -> bool {
        self.stream.driver.advance(now);
        let available = self.stream.ring.slots();
        if available == 0 {
            return false;
        }
        self.input.clear();
        if let Ok(chunk) = self.stream.ring.read_chunk(available) {
            let (a, b) = chunk.as_slices();
            self.input.extend_from_slice(a);
            self.input.extend_from_slice(b);
            chunk.commit_all();
        }
        self.resampler.process(&self.input, &mut self.pending);
        true
    }

    /// Fills `out` with the next samples, sleeping until the backend's clock
    /// brings them.
    ///
    /// Returns false, with `out` untouched, if `give_up` returns true while
    /// waiting or no audio arrives for two seconds (a stalled device).
    pub fn read(&mut self, out: &mut [i16], mut give_up: impl FnMut() -> bool) -> bool {
        /// The longest sleep between looks at `give_up`.
        const LOOK: Duration = Duration::from_millis(20);
        let mut last_progress = Instant::now();
        loop {
            let now = Instant::now();
            if self.take_available(now) {
                last_progress = now;
            }
            if self.pending.len() >= out.len() {
                break;
            }
            if give_up() || now.duration_since(last_progress) > Duration::from_secs(2) {
                return false;
            }
            let ready = self.ready_at(out.len(), now).min(now + LOOK);
            std::thread::sleep(ready.saturating_duration_since(Instant::now()));
        }
        out.copy_from_slice(&self.pending[..out.len()]);
        self.pending.drain(..out.len());
        true
    }
}

/// Playout policy for a stream that arrives in bursts and at a clock that is
/// not quite ours.
#[derive(Debug, Clone, Copy)]
pub struct PlayoutConfig {
    /// Audio queued before playback (re)starts after running dry.
    pub prefill: Duration,
    /// How much more than `prefill` may stay queued at the lowest point of a
    /// whole `window` before the excess is dropped. A queue that never drains
    /// is delay nobody needs: a link that stalled and then caught up, or a far
    /// end whose clock runs fast. A queue that drains between bursts is left
    /// alone, however large the bursts.
    pub slack: Duration,
    pub window: Duration,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        Self {
            prefill: Duration::from_millis(20),
            slack: Duration::from_millis(40),
            window: Duration::from_secs(2),
        }
    }
}

/// A speaker at the call's sample rate: resamples to the backend's rate and
/// keeps the queue in front of the backend no longer than the arrival
/// pattern needs.
pub struct Speaker {
    stream: SpeakerStream,
    resampler: Resampler,
    scratch: Vec<i16>,
    prefill: usize,
    slack: usize,
    window: Duration,
    capacity: usize,
    seen_underruns: u64,
    started: bool,
    /// The lowest the queue has been, just before a push, since `window_start`.
    low_point: usize,
    window_start: Instant,
    dropped: u64,
}

impl Speaker {
    /// Opens `spec` and accepts samples at `rate` Hz.
    pub fn open(spec: &AudioSpec, rate: u32, config: PlayoutConfig) -> Result<Self, AudioError> {
        Ok(Self::new(open_speaker(spec, rate)?, rate, config))
    }

    /// Wraps an opened stream that will be fed at `rate` Hz.
    pub fn new(stream: SpeakerStream, rate: u32, config: PlayoutConfig) -> Self {
        let samples = |d: Duration| (d.as_secs_f64() * f64::from(stream.rate)).round() as usize;
        Self {
            resampler: Resampler::new(rate, stream.rate),
            scratch: Vec::new(),
            prefill: samples(config.prefill),
            slack: samples(config.slack),
            window: config.window,
            capacity: stream.ring.slots(),
            seen_underruns: 0,
            started: false,
            low_point: usize::MAX,
            window_start: Instant::now(),
            dropped: 0,
            stream,
        }
    }

    /// Queues `pcm` (at the call's rate) for playback. Never blocks.
    pub fn play(&mut self, pcm: &[i16]) {
        self.scratch.clear();
        self.resampler.process(pcm, &mut self.scratch);
        self.stream.driver.advance(Instant::now());
        let mut queued = self.queued();
        let underruns = self.stream.counters.xruns.load(Ordering::Relaxed);
        let ran_dry = queued == 0 && (underruns != self.seen_underruns || !self.started);
        self.seen_underruns = underruns;
        if ran_dry {
            // Start again a little ahead of the device, so that the next
            // burst of audio arrives before this one has been played out.
            queued += self.push_silence(self.prefill);
            self.started = true;
            self.restart_window();
        }
        self.low_point = self.low_point.min(queued);

        if self.window_start.elapsed() >= self.window {
            if self.low_point > self.prefill + self.slack {
                // Drop the oldest audio, not the newest: the delay falls at
                // once instead of after the backlog has played out.
                let excess = self.low_point - self.prefill;
                self.stream
                    .counters
                    .discard
                    .fetch_add(excess, Ordering::Relaxed);
                self.dropped += excess as u64;
            }
            self.restart_window();
        }
        let samples = &self.scratch[..];
        let n = samples.len().min(self.stream.ring.slots());
        if let Ok(chunk) = self.stream.ring.write_chunk_uninit(n) {
            chunk.fill_from_iter(samples[..n].iter().copied());
        }
        self.dropped += (samples.len() - n) as u64;
    }

    /// Queues `pcm` (at the call's rate) as it is, for a caller that paces
    /// playout itself (a jitter buffer): no prefill, no trimming.
    pub fn push(&mut self, pcm: &[i16]) {
        self.scratch.clear();
        self.resampler.process(pcm, &mut self.scratch);
        self.stream.driver.advance(Instant::now());
        let n = self.scratch.len().min(self.stream.ring.slots());
        if let Ok(chunk) = self.stream.ring.write_chunk_uninit(n) {
            chunk.fill_from_iter(self.scratch[..n].iter().copied());
        }
        self.dropped += (self.scratch.len() - n) as u64;
    }

    /// How much audio waits in front of the backend.
    pub fn queued_time(&mut self) -> Duration {
        self.stream.driver.advance(Instant::now());
        Duration::from_secs_f64(self.queued() as f64 / f64::from(self.stream.rate))
    }

    /// When less than `level` will be queued: `now` if it already is, else
    /// when the backend's clock will have played enough of the queue.
    pub fn low_at(&mut self, level: Duration, now: Instant) -> Instant {
        self.stream.driver.advance(now);
        let level = (level.as_secs_f64() * f64::from(self.stream.rate)).ceil() as usize;
        match (self.queued() + 1).checked_sub(level) {
            Some(over) if over > 0 => self.stream.driver.when(now, over),
            _ => now,
        }
    }

    /// Samples played as silence because nothing was queued.
    pub fn underruns(&self) -> u64 {
        self.stream.counters.xruns.load(Ordering::Relaxed)
    }

    /// Samples dropped to keep the queue short, or because it was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn queued(&self) -> usize {
        self.capacity - self.stream.ring.slots()
    }

    fn restart_window(&mut self) {
        self.low_point = usize::MAX;
        self.window_start = Instant::now();
    }

    fn push_silence(&mut self, n: usize) -> usize {
        let n = n.min(self.stream.ring.slots());
        if let Ok(chunk) = self.stream.ring.write_chunk_uninit(n) {
            chunk.fill_from_iter(std::iter::repeat(0));
        }
        n
    }
}

fn ring_capacity(rate: u32) -> usize {
    (rate * RING_SECONDS) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(speaker: &mut Speaker) -> usize {
        speaker.stream.driver.advance(Instant::now());
        speaker.queued()
    }

    #[test]
    fn specs_parse_as_documented() {
        assert_eq!("default".parse::<AudioSpec>().unwrap(), AudioSpec::Default);
        assert_eq!("null".parse::<AudioSpec>().unwrap(), AudioSpec::Null);
        assert_eq!(
            "a/b.WAV".parse::<AudioSpec>().unwrap(),
            AudioSpec::Wav("a/b.WAV".into())
        );
        assert_eq!(
            "pulse:x".parse::<AudioSpec>().unwrap(),
            AudioSpec::Device("pulse:x".into())
        );
        assert!("".parse::<AudioSpec>().is_err());
    }

    fn quick() -> PlayoutConfig {
        PlayoutConfig {
            window: Duration::from_millis(100),
            ..PlayoutConfig::default()
        }
    }

    #[test]
    fn a_standing_queue_is_trimmed_to_keep_the_delay_short() {
        let mut speaker = Speaker::new(null::open_speaker(8_000), 8_000, quick());
        // A stalled link catches up: half a second arrives at once, then
        // audio flows at the right pace, and the queue never drains.
        speaker.play(&[100; 4_000]);
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(10));
            speaker.play(&[100; 80]);
        }
        assert!(
            queued(&mut speaker) < 8 * 100,
            "queued {}",
            queued(&mut speaker)
        );
        assert!(speaker.dropped() > 2_000, "dropped {}", speaker.dropped());
    }

    #[test]
    fn bursts_that_drain_are_played_whole() {
        let mut speaker = Speaker::new(null::open_speaker(8_000), 8_000, quick());
        // A sender that buffers: a quarter of a second at a time.
        for _ in 0..4 {
            speaker.play(&[100; 2_000]);
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(speaker.dropped(), 0);
    }

    #[test]
    fn playback_starts_with_a_little_headroom() {
        let mut speaker = Speaker::new(null::open_speaker(8_000), 8_000, PlayoutConfig::default());
        speaker.play(&[100; 80]);
        let q = queued(&mut speaker);
        assert!((80..=80 + 160).contains(&q), "prefill + frame, got {q}");
        assert_eq!(speaker.dropped(), 0);
    }

    #[test]
    fn microphone_resamples_to_the_call_rate() {
        let clip: Arc<[i16]> = crate::dsp::signal::test_speech(16_000, 0.5).into();
        let mut mic = Microphone::new(wav::open_clip(clip, 16_000), 8_000);
        let mut out = vec![0i16; 1_600];
        assert!(mic.read(&mut out, || false));
        assert!(out.iter().any(|&s| s.abs() > 1_000));
    }
}
