//! The sound card, through cpal: ALSA, and PulseAudio (or PipeWire's
//! PulseAudio server) through cpal's pure-Rust client.
//!
//! Devices are named `HOST:NAME`, as [`list`] shows them: `pulse:NAME` for a
//! PulseAudio sink or source (its monitor sources included), `alsa:NAME` for an
//! ALSA PCM (`alsa:default`, `alsa:hw:CARD=PCH,DEV=0`, ...). A name given by the
//! user matches exactly (with or without the `HOST:` part), else as a unique
//! case-insensitive part of a device's name or description.
//!
//! With no name, the PulseAudio server's default device is used when a server
//! answers (`PULSE_SERVER`, or `$XDG_RUNTIME_DIR/pulse/native`), else ALSA's
//! `default`. ALSA devices are offered only when the kernel has a sound card:
//! without one ALSA has only its `null` device, which has no clock (it takes
//! and gives samples as fast as they are asked for) and so cannot pace a call.
//!
//! Each stream lives on a thread of its own that builds it, plays it and drops
//! it when the guard is dropped, because a cpal stream need not be `Send`. That
//! thread also catches alsa-lib's messages, which it would otherwise print on
//! stderr, and logs them at debug level. The device callbacks only move samples
//! between the device's buffer and the ring: no allocation, lock or log. Each
//! also notes when it ran (a clock read and an atomic store), from which the
//! stream's user predicts the next callback and sleeps until then.
//!
//! Known limits of cpal 0.18's PulseAudio client with a fixed buffer size: a
//! playback stream asks for a target length of exactly two requests, from
//! which the server derives a device latency of zero, so the sink runs at
//! its minimum latency (0.5 ms blocks on a null sink) and burns CPU; and a
//! recording stream's `maxlength` is one period, so when the server's main
//! thread or the client's reactor is late by more than a period, captured
//! audio is dropped. `parec` on the same source, with the default
//! `maxlength`, loses nothing at the same moments.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    BufferSize, DeviceDirection, FromSample, HostId, Sample, SampleFormat, SizedSample,
    StreamConfig, SupportedBufferSize, SupportedStreamConfigRange,
};

use super::{
    AudioError, Driver, MicStream, SpeakerStream, StreamCounters, apply_discard, ring_capacity,
};

/// Audio moved per device callback. cpal's default lets PulseAudio buffer
/// seconds; a fixed period bounds the device's share of the delay: two
/// periods on playback (cpal double-buffers on ALSA and PulseAudio), one on
/// capture. 20 ms rather than 10: cpal asks PulseAudio to hold no more than
/// one period for a recording client, and at 10 ms a busy two-core machine
/// lost captured audio now and then.
pub const PERIOD: Duration = Duration::from_millis(20);

/// How long a PulseAudio server may take to create a stream.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Device errors queued for the stream's thread to log; more are counted only.
const ERROR_QUEUE: usize = 16;

/// How long a stream's user sleeps before looking again when a callback is
/// later than predicted.
const LATE_RETRY: Duration = Duration::from_millis(1);

/// One sound device as `ipphone devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `pulse` or `alsa`.
    pub host: String,
    /// The name to give as `--mic`/`--speaker`: `HOST:NAME`.
    pub name: String,
    /// What the host calls it, for people ("Monitor of Null Output").
    pub description: String,
    pub input: bool,
    pub output: bool,
    /// The host's default device (for input, output or both).
    pub default: bool,
}

/// Every sound device of every host ipphone can use, PulseAudio's first.
///
/// Fails with [`AudioError::NoDevice`] when there is none: no PulseAudio (or
/// PipeWire) server answers and the kernel has no sound card.
pub fn list() -> Result<Vec<DeviceInfo>, AudioError> {
    on_quiet_thread("audio-devices", || {
        let hosts = Hosts::connect();
        hosts.require_any()?;
        let mut devices = Vec::new();
        for host in hosts.all() {
            let default_in = host.default_name(Direction::Capture);
            let default_out = host.default_name(Direction::Playback);
            for device in host.devices()? {
                let default = Some(&device.name) == default_in.as_ref()
                    || Some(&device.name) == default_out.as_ref();
                devices.push(DeviceInfo {
                    host: host.prefix().to_owned(),
                    name: device.name,
                    description: device.description,
                    input: device.input,
                    output: device.output,
                    default,
                });
            }
        }
        Ok(devices)
    })
}

/// Checks that the microphone (`input`) or speaker `name` (the default one if
/// `None`) exists, without opening it: so that a call fails before it rings
/// anyone, not after.
pub fn check(name: Option<&str>, input: bool) -> Result<(), AudioError> {
    let name = name.map(str::to_owned);
    let direction = if input {
        Direction::Capture
    } else {
        Direction::Playback
    };
    on_quiet_thread("audio-check", move || {
        let hosts = Hosts::connect();
        pick(&hosts, direction, name.as_deref()).map(|_| ())
    })
}

/// Opens the microphone `name` (the default one if `None`), at
/// `preferred_rate` if the device offers it, else at its closest rate.
pub fn open_mic(name: Option<&str>, preferred_rate: u32) -> Result<MicStream, AudioError> {
    let opened = open(Direction::Capture, name, preferred_rate)?;
    let Ring::Capture(ring) = opened.ring else {
        unreachable!("a capture stream hands back the consuming end of its ring")
    };
    Ok(MicStream {
        rate: opened.rate,
        ring,
        counters: opened.counters,
        driver: Box::new(opened.guard),
    })
}

/// Opens the speaker `name` (the default one if `None`), at `preferred_rate`
/// if the device offers it, else at its closest rate.
pub fn open_speaker(name: Option<&str>, preferred_rate: u32) -> Result<SpeakerStream, AudioError> {
    let opened = open(Direction::Playback, name, preferred_rate)?;
    let Ring::Playback(ring) = opened.ring else {
        unreachable!("a playback stream hands back the producing end of its ring")
    };
    Ok(SpeakerStream {
        rate: opened.rate,
        ring,
        device_latency: opened.device_latency,
        counters: opened.counters,
        driver: Box::new(opened.guard),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Capture,
    Playback,
}

impl Direction {
    fn noun(self) -> &'static str {
        match self {
            Direction::Capture => "microphone",
            Direction::Playback => "speaker",
        }
    }
}

/// The hosts that can be used now, and why the others cannot.
struct Hosts {
    pulse: Result<cpal::Host, String>,
    alsa: Result<cpal::Host, String>,
}

impl Hosts {
    fn connect() -> Self {
        Self {
            pulse: connect_pulse(),
            alsa: connect_alsa(),
        }
    }

    fn all(&self) -> impl Iterator<Item = Host<'_>> {
        let pulse = self.pulse.as_ref().ok().map(|h| Host {
            id: HostId::PulseAudio,
            host: h,
        });
        let alsa = self.alsa.as_ref().ok().map(|h| Host {
            id: HostId::Alsa,
            host: h,
        });
        pulse.into_iter().chain(alsa)
    }

    /// Fails with a plain explanation when no host is usable.
    fn require_any(&self) -> Result<(), AudioError> {
        match (&self.pulse, &self.alsa) {
            (Err(pulse), Err(alsa)) => Err(AudioError::NoDevice(format!("{alsa}, and {pulse}"))),
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Copy)]
struct Host<'a> {
    id: HostId,
    host: &'a cpal::Host,
}

/// A device of one host, as offered for a name to match.
struct Candidate {
    name: String,
    description: String,
    input: bool,
    output: bool,
    device: cpal::Device,
}

impl Host<'_> {
    fn prefix(&self) -> &'static str {
        match self.id {
            HostId::PulseAudio => "pulse",
            _ => "alsa",
        }
    }

    fn devices(&self) -> Result<Vec<Candidate>, AudioError> {
        let devices = self.host.devices().map_err(|e| {
            AudioError::Device(format!("cannot list the {} devices: {e}", self.prefix()))
        })?;
        Ok(devices.filter_map(|d| self.candidate(d)).collect())
    }

    fn candidate(&self, device: cpal::Device) -> Option<Candidate> {
        let id = device.id().ok()?;
        // ALSA's null device has no clock: `null` (our own backend) is the
        // silent device that keeps time.
        if self.id == HostId::Alsa && id.id() == "null" {
            return None;
        }
        let description = device.description().ok();
        let (input, output) = match self.id {
            // ALSA cannot tell a plugin's directions without opening it.
            HostId::Alsa => match description.as_ref().map(|d| d.direction()) {
                Some(DeviceDirection::Input) => (true, false),
                Some(DeviceDirection::Output) => (false, true),
                _ => (true, true),
            },
            _ => (device.supports_input(), device.supports_output()),
        };
        let description = description
            .map(|d| d.name().lines().collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        Some(Candidate {
            name: format!("{}:{}", self.prefix(), id.id()),
            description,
            input,
            output,
            device,
        })
    }

    fn default_device(&self, direction: Direction) -> Option<cpal::Device> {
        match direction {
            Direction::Capture => self.host.default_input_device(),
            Direction::Playback => self.host.default_output_device(),
        }
    }

    fn default_name(&self, direction: Direction) -> Option<String> {
        let device = self.default_device(direction)?;
        Some(format!("{}:{}", self.prefix(), device.id().ok()?.id()))
    }
}

fn connect_pulse() -> Result<cpal::Host, String> {
    let server = std::env::var("PULSE_SERVER").ok();
    if !cpal::available_hosts().contains(&HostId::PulseAudio) {
        return Err(match server {
            Some(s) if s.starts_with("unix:") => {
                format!("no PulseAudio or PipeWire server answers at PULSE_SERVER={s}")
            }
            Some(s) => format!(
                "PULSE_SERVER={s} is not a local socket (unix:PATH), the only kind ipphone \
                 can reach"
            ),
            None => "no PulseAudio or PipeWire server is running \
                     ($XDG_RUNTIME_DIR/pulse/native does not exist)"
                .to_owned(),
        });
    }
    cpal::host_from_id(HostId::PulseAudio)
        .map_err(|e| format!("the PulseAudio or PipeWire server does not answer: {e}"))
}

fn connect_alsa() -> Result<cpal::Host, String> {
    if alsa::card::Iter::new()
        .filter_map(Result::ok)
        .next()
        .is_none()
    {
        return Err(
            "the kernel has none (ALSA offers only its null device, which has no clock)".to_owned(),
        );
    }
    cpal::host_from_id(HostId::Alsa).map_err(|e| format!("ALSA is not usable: {e}"))
}

/// Finds the device `wanted` names, or the default one.
fn pick(
    hosts: &Hosts,
    direction: Direction,
    wanted: Option<&str>,
) -> Result<Candidate, AudioError> {
    hosts.require_any()?;
    let Some(wanted) = wanted else {
        for host in hosts.all() {
            if let Some(device) = host.default_device(direction) {
                let name = host
                    .default_name(direction)
                    .unwrap_or_else(|| format!("{}:default", host.prefix()));
                return Ok(Candidate {
                    name,
                    description: String::new(),
                    input: direction == Direction::Capture,
                    output: direction == Direction::Playback,
                    device,
                });
            }
        }
        return Err(AudioError::NoDevice(format!(
            "no host has a default {}",
            direction.noun()
        )));
    };
    let mut candidates = Vec::new();
    let mut others = Vec::new();
    for host in hosts.all() {
        for candidate in host.devices()? {
            let fits = match direction {
                Direction::Capture => candidate.input,
                Direction::Playback => candidate.output,
            };
            if fits {
                candidates.push(candidate);
            } else {
                others.push(candidate.name);
            }
        }
    }
    let names: Vec<(&str, &str)> = candidates
        .iter()
        .map(|c| (c.name.as_str(), c.description.as_str()))
        .collect();
    let noun = direction.noun();
    // A device of the other direction named exactly: say so, rather than
    // find its monitor by a part of the name.
    let exact = |name: &str| name == wanted || bare_name(name) == wanted;
    let other = others.iter().find(|name| exact(name));
    if let Some(other) = other.filter(|_| !names.iter().any(|(name, _)| exact(name))) {
        let other_noun = match direction {
            Direction::Capture => Direction::Playback.noun(),
            Direction::Playback => Direction::Capture.noun(),
        };
        return Err(AudioError::Device(format!(
            "{other} is a {other_noun}, not a {noun}"
        )));
    }
    match find(wanted, &names) {
        Match::Found(i) => Ok(candidates.swap_remove(i)),
        Match::Ambiguous(matches) => Err(AudioError::Device(format!(
            "{wanted:?} names more than one {noun}: {}; give more of the name",
            matches
                .iter()
                .map(|&i| names[i].0)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Match::None if wanted == "alsa:null" => Err(AudioError::Device(
            "alsa:null has no clock, so it cannot pace a call; use `null` for silence".into(),
        )),
        Match::None if names.is_empty() => Err(AudioError::NoDevice(format!("there is no {noun}"))),
        Match::None => Err(AudioError::Device(format!(
            "no {noun} is named {wanted:?}; the {noun}s are: {}",
            names
                .iter()
                .map(|(name, description)| if description.is_empty() {
                    (*name).to_owned()
                } else {
                    format!("{name} ({description})")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Match {
    Found(usize),
    Ambiguous(Vec<usize>),
    None,
}

/// Matches `wanted` against `(HOST:NAME, description)` pairs: the whole name,
/// then the name without its host, then a case-insensitive part of either.
fn find(wanted: &str, names: &[(&str, &str)]) -> Match {
    let wanted_lower = wanted.to_lowercase();
    let whole = matching(names, |name, _| name == wanted);
    let bare = || matching(names, |name, _| bare_name(name) == wanted);
    let part = || {
        matching(names, |name, description| {
            name.to_lowercase().contains(&wanted_lower)
                || description.to_lowercase().contains(&wanted_lower)
        })
    };
    let matches = Some(whole)
        .filter(|m| !m.is_empty())
        .or_else(|| Some(bare()).filter(|m| !m.is_empty()))
        .unwrap_or_else(part);
    match matches.as_slice() {
        [] => Match::None,
        [one] => Match::Found(*one),
        _ => Match::Ambiguous(matches),
    }
}

/// The indices of the `(name, description)` pairs `rule` accepts.
fn matching(names: &[(&str, &str)], rule: impl Fn(&str, &str) -> bool) -> Vec<usize> {
    names
        .iter()
        .enumerate()
        .filter(|(_, (name, description))| rule(name, description))
        .map(|(i, _)| i)
        .collect()
}

/// A device's name without its `HOST:` part.
fn bare_name(name: &str) -> &str {
    name.split_once(':').map_or(name, |(_, rest)| rest)
}

/// The stream configuration chosen for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Choice {
    format: SampleFormat,
    channels: u16,
    rate: u32,
    /// Frames per callback.
    period: u32,
}

/// Sample formats in the order ipphone prefers them; others are not used.
const FORMATS: [SampleFormat; 12] = [
    SampleFormat::I16,
    SampleFormat::F32,
    SampleFormat::I32,
    SampleFormat::I24,
    SampleFormat::F64,
    SampleFormat::U16,
    SampleFormat::I8,
    SampleFormat::U8,
    SampleFormat::U24,
    SampleFormat::U32,
    SampleFormat::I64,
    SampleFormat::U64,
];

/// Picks the configuration closest to mono 16-bit at `preferred_rate`: the
/// rate first (exact, else the nearest above, else the nearest below), then
/// the fewest channels, then the format.
fn choose_config(
    ranges: &[SupportedStreamConfigRange],
    preferred_rate: u32,
    period: Duration,
) -> Option<Choice> {
    ranges
        .iter()
        .filter(|r| r.channels() > 0)
        .filter_map(|r| {
            let rank = FORMATS.iter().position(|&f| f == r.sample_format())?;
            let rate = preferred_rate.clamp(r.min_sample_rate(), r.max_sample_rate());
            let period = (u64::from(rate) * period.as_micros() as u64 / 1_000_000).max(1) as u32;
            let period = match *r.buffer_size() {
                SupportedBufferSize::Range { min, max } => period.clamp(min, max.max(min)),
                SupportedBufferSize::Unknown => period,
            };
            let key = (
                rate < preferred_rate,
                rate.abs_diff(preferred_rate),
                r.channels(),
                rank,
            );
            let choice = Choice {
                format: r.sample_format(),
                channels: r.channels(),
                rate,
                period,
            };
            Some((key, choice))
        })
        .min_by_key(|(key, _)| *key)
        .map(|(_, choice)| choice)
}

/// The end of the ring the caller gets.
enum Ring {
    Capture(rtrb::Consumer<i16>),
    Playback(rtrb::Producer<i16>),
}

struct Opened {
    rate: u32,
    ring: Ring,
    device_latency: usize,
    counters: Arc<StreamCounters>,
    guard: DeviceGuard,
}

/// What the stream's thread sends back once the stream plays.
struct Started {
    rate: u32,
    ring: Ring,
    device_latency: usize,
    counters: Arc<StreamCounters>,
    clock: Arc<CallbackClock>,
}

/// What the stream's thread is told while the stream runs.
enum Event {
    Stop,
    Error(cpal::Error),
}

/// When a stream's callback last ran, and how much it moved: written by the
/// callback, read by the stream's user to predict the next one. The two
/// values may be read half updated: a prediction a little off, at worst.
struct CallbackClock {
    epoch: Instant,
    rate: u32,
    /// Nanoseconds from `epoch` to the start of the last callback, plus one;
    /// 0 before the first.
    last: AtomicU64,
    /// Frames the last callback moved (at first, the period asked for): a
    /// server may call back with less, more often.
    frames: AtomicUsize,
}

impl CallbackClock {
    fn new(period: u32, rate: u32) -> Self {
        Self {
            epoch: Instant::now(),
            rate: rate.max(1),
            last: AtomicU64::new(0),
            frames: AtomicUsize::new(period.max(1) as usize),
        }
    }

    /// Notes that a callback moving `frames` runs now. Real-time safe:
    /// reading the monotonic clock is no system call where it matters (the
    /// vDSO), and the stores are plain atomics.
    fn tick(&self, frames: usize) {
        let since = self.epoch.elapsed().as_nanos() as u64;
        self.last.store(since.saturating_add(1), Ordering::Relaxed);
        if frames > 0 {
            self.frames.store(frames, Ordering::Relaxed);
        }
    }

    /// When `samples` more will have been moved, callbacks of the last one's
    /// size following each other at its length.
    fn when(&self, now: Instant, samples: usize) -> Instant {
        let frames = self.frames.load(Ordering::Relaxed).max(1);
        let callbacks = samples.div_ceil(frames).max(1) as u64;
        let period = Duration::from_nanos(frames as u64 * 1_000_000_000 / u64::from(self.rate));
        let predicted = match self.last.load(Ordering::Relaxed) {
            0 => now + period,
            last => {
                self.epoch + Duration::from_nanos(last - 1) + period * callbacks.min(1_000) as u32
            }
        };
        if predicted > now {
            predicted
        } else {
            now + LATE_RETRY
        }
    }
}

/// Keeps a device stream playing; dropping it stops and closes the stream.
struct DeviceGuard {
    events: SyncSender<Event>,
    thread: Option<JoinHandle<()>>,
    clock: Arc<CallbackClock>,
}

impl Driver for DeviceGuard {
    fn when(&self, now: Instant, samples: usize) -> Instant {
        self.clock.when(now, samples)
    }
}

impl Drop for DeviceGuard {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn open(
    direction: Direction,
    name: Option<&str>,
    preferred_rate: u32,
) -> Result<Opened, AudioError> {
    let name = name.map(str::to_owned);
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let (events, events_rx) = mpsc::sync_channel(ERROR_QUEUE);
    let errors = events.clone();
    let thread_name = match direction {
        Direction::Capture => "audio-device-in",
        Direction::Playback => "audio-device-out",
    };
    let thread = std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || {
            run_stream(
                direction,
                name.as_deref(),
                preferred_rate,
                ready_tx,
                events_rx,
                errors,
            )
        })
        .map_err(|e| AudioError::Device(format!("cannot start an audio thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(started)) => Ok(Opened {
            rate: started.rate,
            ring: started.ring,
            device_latency: started.device_latency,
            counters: started.counters,
            guard: DeviceGuard {
                events,
                thread: Some(thread),
                clock: started.clock,
            },
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(AudioError::Device(
                "the sound device's thread stopped while opening it".into(),
            ))
        }
    }
}

/// The life of one stream, on its own thread: open, report, run until told
/// to stop, close.
fn run_stream(
    direction: Direction,
    name: Option<&str>,
    preferred_rate: u32,
    ready: SyncSender<Result<Started, AudioError>>,
    events: mpsc::Receiver<Event>,
    errors: SyncSender<Event>,
) {
    let alsa_messages = quiet_alsa();
    let stream_name;
    match start(direction, name, preferred_rate, errors) {
        Ok((stream, started, name)) => {
            stream_name = name;
            if ready.send(Ok(started)).is_err() {
                return;
            }
            for event in events {
                match event {
                    Event::Stop => break,
                    Event::Error(e) if e.kind() == cpal::ErrorKind::Xrun => {
                        tracing::debug!("sound device {stream_name}: {e}");
                    }
                    Event::Error(e) => tracing::warn!("sound device {stream_name}: {e}"),
                }
            }
            drop(stream);
        }
        Err(e) => {
            stream_name = name.unwrap_or("default").to_owned();
            let _ = ready.send(Err(e));
        }
    }
    log_alsa_messages(&stream_name, alsa_messages);
}

fn start(
    direction: Direction,
    name: Option<&str>,
    preferred_rate: u32,
    errors: SyncSender<Event>,
) -> Result<(cpal::Stream, Started, String), AudioError> {
    let hosts = Hosts::connect();
    let candidate = pick(&hosts, direction, name)?;
    let device = &candidate.device;
    let device_error =
        |what: &str, e: cpal::Error| AudioError::Device(format!("{}: {what}: {e}", candidate.name));
    let ranges: Vec<SupportedStreamConfigRange> = match direction {
        Direction::Capture => device.supported_input_configs().map(Iterator::collect),
        Direction::Playback => device.supported_output_configs().map(Iterator::collect),
    }
    .map_err(|e| device_error("cannot read its configurations", e))?;
    let choice = choose_config(&ranges, preferred_rate, PERIOD).ok_or_else(|| {
        AudioError::Device(format!(
            "{} offers no {} configuration ipphone can use",
            candidate.name,
            direction.noun()
        ))
    })?;
    let config = StreamConfig {
        channels: choice.channels,
        sample_rate: choice.rate,
        buffer_size: BufferSize::Fixed(choice.period),
    };
    let counters = Arc::new(StreamCounters::default());
    let error_counters = counters.clone();
    let on_error = move |e: cpal::Error| {
        if e.kind() == cpal::ErrorKind::Xrun {
            error_counters.xruns.fetch_add(1, Ordering::Relaxed);
        }
        let _ = errors.try_send(Event::Error(e));
    };
    let capacity = ring_capacity(choice.rate);
    let channels = usize::from(choice.channels);
    let clock = Arc::new(CallbackClock::new(choice.period, choice.rate));
    let (stream, ring) = match direction {
        Direction::Capture => {
            let (producer, consumer) = rtrb::RingBuffer::new(capacity);
            let sink = CaptureSink {
                ring: producer,
                counters: counters.clone(),
                channels,
                clock: clock.clone(),
            };
            let stream = build_capture(device, config, choice.format, sink, on_error);
            (stream, Ring::Capture(consumer))
        }
        Direction::Playback => {
            let (producer, consumer) = rtrb::RingBuffer::new(capacity);
            let source = PlaybackSource {
                ring: consumer,
                counters: counters.clone(),
                channels,
                clock: clock.clone(),
            };
            let stream = build_playback(device, config, choice.format, source, on_error);
            (stream, Ring::Playback(producer))
        }
    };
    let stream = stream.map_err(|e| device_error("cannot open it", e))?;
    stream
        .play()
        .map_err(|e| device_error("cannot start it", e))?;
    tracing::debug!(
        "sound device {} open for {}: {} x{} at {} Hz, {} frames per period",
        candidate.name,
        direction.noun(),
        choice.format,
        choice.channels,
        choice.rate,
        choice.period
    );
    let device_latency = match direction {
        Direction::Capture => choice.period as usize,
        Direction::Playback => 2 * choice.period as usize,
    };
    let started = Started {
        rate: choice.rate,
        ring,
        device_latency,
        counters,
        clock,
    };
    Ok((stream, started, candidate.name))
}

/// The real-time side of a capture stream.
struct CaptureSink {
    ring: rtrb::Producer<i16>,
    counters: Arc<StreamCounters>,
    channels: usize,
    clock: Arc<CallbackClock>,
}

impl CaptureSink {
    /// Moves `data` (interleaved frames) into the ring as mono; what does not
    /// fit is counted as overrun. Runs in the device callback: no allocation,
    /// lock or log.
    fn push<T>(&mut self, data: &[T])
    where
        T: Sample,
        i16: FromSample<T>,
    {
        let frames = data.chunks_exact(self.channels);
        self.clock.tick(frames.len());
        let wanted = frames.len();
        let n = wanted.min(self.ring.slots());
        if let Ok(chunk) = self.ring.write_chunk_uninit(n) {
            chunk.fill_from_iter(frames.map(mono));
        }
        if wanted > n {
            self.counters
                .xruns
                .fetch_add((wanted - n) as u64, Ordering::Relaxed);
        }
    }
}

/// The real-time side of a playback stream.
struct PlaybackSource {
    ring: rtrb::Consumer<i16>,
    counters: Arc<StreamCounters>,
    channels: usize,
    clock: Arc<CallbackClock>,
}

impl PlaybackSource {
    /// Fills `data` (interleaved frames) from the ring, each sample on every
    /// channel; silence where the ring runs dry, counted as underrun. Runs in
    /// the device callback: no allocation, lock or log.
    fn pull<T>(&mut self, data: &mut [T])
    where
        T: Sample + FromSample<i16>,
    {
        self.clock.tick(data.len() / self.channels);
        apply_discard(&mut self.ring, &self.counters);
        let mut frames = data.chunks_exact_mut(self.channels);
        let wanted = frames.len();
        let have = wanted.min(self.ring.slots());
        if let Ok(chunk) = self.ring.read_chunk(have) {
            let (a, b) = chunk.as_slices();
            for (&sample, frame) in a.iter().chain(b).zip(frames.by_ref()) {
                frame.fill(T::from_sample(sample));
            }
            chunk.commit_all();
        }
        for frame in frames.by_ref() {
            frame.fill(T::EQUILIBRIUM);
        }
        frames.into_remainder().fill(T::EQUILIBRIUM);
        if wanted > have {
            self.counters
                .xruns
                .fetch_add((wanted - have) as u64, Ordering::Relaxed);
        }
    }
}

/// One frame's channels averaged into one sample.
fn mono<T>(frame: &[T]) -> i16
where
    T: Sample,
    i16: FromSample<T>,
{
    match frame {
        [one] => i16::from_sample(*one),
        _ => {
            let sum: i32 = frame.iter().map(|&s| i32::from(i16::from_sample(s))).sum();
            (sum / frame.len() as i32) as i16
        }
    }
}

/// Builds a capture stream of the sample type `format` names.
fn build_capture(
    device: &cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
    sink: CaptureSink,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error> {
    fn typed<T>(
        device: &cpal::Device,
        config: StreamConfig,
        mut sink: CaptureSink,
        on_error: impl FnMut(cpal::Error) + Send + 'static,
    ) -> Result<cpal::Stream, cpal::Error>
    where
        T: SizedSample,
        i16: FromSample<T>,
    {
        device.build_input_stream::<T, _, _>(
            config,
            move |data: &[T], _: &cpal::InputCallbackInfo| sink.push(data),
            on_error,
            Some(OPEN_TIMEOUT),
        )
    }
    use cpal::{I24, U24};
    match format {
        SampleFormat::I8 => typed::<i8>(device, config, sink, on_error),
        SampleFormat::I16 => typed::<i16>(device, config, sink, on_error),
        SampleFormat::I24 => typed::<I24>(device, config, sink, on_error),
        SampleFormat::I32 => typed::<i32>(device, config, sink, on_error),
        SampleFormat::I64 => typed::<i64>(device, config, sink, on_error),
        SampleFormat::U8 => typed::<u8>(device, config, sink, on_error),
        SampleFormat::U16 => typed::<u16>(device, config, sink, on_error),
        SampleFormat::U24 => typed::<U24>(device, config, sink, on_error),
        SampleFormat::U32 => typed::<u32>(device, config, sink, on_error),
        SampleFormat::U64 => typed::<u64>(device, config, sink, on_error),
        SampleFormat::F32 => typed::<f32>(device, config, sink, on_error),
        SampleFormat::F64 => typed::<f64>(device, config, sink, on_error),
        other => Err(unsupported_format(other)),
    }
}

/// Builds a playback stream of the sample type `format` names.
fn build_playback(
    device: &cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
    source: PlaybackSource,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error> {
    fn typed<T>(
        device: &cpal::Device,
        config: StreamConfig,
        mut source: PlaybackSource,
        on_error: impl FnMut(cpal::Error) + Send + 'static,
    ) -> Result<cpal::Stream, cpal::Error>
    where
        T: SizedSample + FromSample<i16>,
    {
        device.build_output_stream::<T, _, _>(
            config,
            move |data: &mut [T], _: &cpal::OutputCallbackInfo| source.pull(data),
            on_error,
            Some(OPEN_TIMEOUT),
        )
    }
    use cpal::{I24, U24};
    match format {
        SampleFormat::I8 => typed::<i8>(device, config, source, on_error),
        SampleFormat::I16 => typed::<i16>(device, config, source, on_error),
        SampleFormat::I24 => typed::<I24>(device, config, source, on_error),
        SampleFormat::I32 => typed::<i32>(device, config, source, on_error),
        SampleFormat::I64 => typed::<i64>(device, config, source, on_error),
        SampleFormat::U8 => typed::<u8>(device, config, source, on_error),
        SampleFormat::U16 => typed::<u16>(device, config, source, on_error),
        SampleFormat::U24 => typed::<U24>(device, config, source, on_error),
        SampleFormat::U32 => typed::<u32>(device, config, source, on_error),
        SampleFormat::U64 => typed::<u64>(device, config, source, on_error),
        SampleFormat::F32 => typed::<f32>(device, config, source, on_error),
        SampleFormat::F64 => typed::<f64>(device, config, source, on_error),
        other => Err(unsupported_format(other)),
    }
}

fn unsupported_format(format: SampleFormat) -> cpal::Error {
    cpal::Error::with_message(
        cpal::ErrorKind::UnsupportedConfig,
        format!("samples of type {format} are not supported"),
    )
}

/// alsa-lib's messages on this thread, kept from stderr.
type AlsaMessages = Option<Rc<RefCell<alsa::Output>>>;

/// Sends alsa-lib's messages on the calling thread into a buffer instead of
/// stderr: without a sound card it prints "cannot find card" lines for every
/// enumeration. alsa-lib's handler is per thread, which is one reason every
/// call into cpal runs on a thread of ours.
fn quiet_alsa() -> AlsaMessages {
    alsa::Output::local_error_handler().ok()
}

fn log_alsa_messages(context: &str, messages: AlsaMessages) {
    if let Some(messages) = messages {
        let text = messages.borrow().to_string();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::debug!("alsa-lib ({context}): {line}");
        }
    }
}

/// Runs `f` on a new thread whose alsa-lib messages are logged, not printed.
fn on_quiet_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T, AudioError> + Send + 'static,
) -> Result<T, AudioError> {
    let thread_name = name.to_owned();
    std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || {
            let messages = quiet_alsa();
            let result = f();
            log_alsa_messages(&thread_name, messages);
            result
        })
        .map_err(|e| AudioError::Device(format!("cannot start an audio thread: {e}")))?
        .join()
        .unwrap_or_else(|_| Err(AudioError::Device(format!("the {name} thread panicked"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_MS: Duration = Duration::from_millis(10);

    const NAMES: [(&str, &str); 6] = [
        ("pulse:a", "Null Output"),
        ("pulse:a.monitor", "Monitor of Null Output"),
        ("pulse:b.monitor", "Monitor of Null Output"),
        ("alsa:default", "Default ALSA Output"),
        ("alsa:hw:CARD=PCH,DEV=0", "HDA Intel PCH, ALC3246 Analog"),
        ("pulse:default", "Default"),
    ];

    #[test]
    fn a_whole_name_matches_exactly() {
        assert_eq!(find("pulse:a", &NAMES), Match::Found(0));
        assert_eq!(find("alsa:default", &NAMES), Match::Found(3));
    }

    #[test]
    fn a_name_without_its_host_matches_exactly() {
        assert_eq!(find("a", &NAMES), Match::Found(0));
        assert_eq!(find("a.monitor", &NAMES), Match::Found(1));
        assert_eq!(find("default", &NAMES), Match::Ambiguous(vec![3, 5]));
    }

    #[test]
    fn a_part_of_a_name_or_description_matches_when_unique() {
        assert_eq!(find("b.mon", &NAMES), Match::Found(2));
        assert_eq!(find("alc3246", &NAMES), Match::Found(4));
        assert_eq!(find("hw:", &NAMES), Match::Found(4));
        assert_eq!(find("monitor", &NAMES), Match::Ambiguous(vec![1, 2]));
        assert_eq!(find("usb", &NAMES), Match::None);
    }

    fn range(
        channels: u16,
        min: u32,
        max: u32,
        format: SampleFormat,
    ) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(
            channels,
            min,
            max,
            SupportedBufferSize::Range { min: 32, max: 8192 },
            format,
        )
    }

    #[test]
    fn a_sound_server_opens_mono_16_bit_at_the_preferred_rate() {
        let ranges = [
            range(1, 1, 384_000, SampleFormat::U8),
            range(1, 1, 384_000, SampleFormat::F32),
            range(1, 1, 384_000, SampleFormat::I16),
            range(2, 1, 384_000, SampleFormat::I16),
        ];
        let choice = choose_config(&ranges, 16_000, TEN_MS).expect("a configuration");
        assert_eq!(
            choice,
            Choice {
                format: SampleFormat::I16,
                channels: 1,
                rate: 16_000,
                period: 160
            }
        );
    }

    #[test]
    fn hardware_takes_the_closest_rate_it_has() {
        let ranges = [
            range(2, 44_100, 44_100, SampleFormat::I32),
            range(2, 48_000, 48_000, SampleFormat::I32),
            range(2, 48_000, 48_000, SampleFormat::F32),
        ];
        let choice = choose_config(&ranges, 16_000, TEN_MS).expect("a configuration");
        assert_eq!((choice.rate, choice.channels), (44_100, 2));
        assert_eq!(choice.format, SampleFormat::I32);
        assert_eq!(choice.period, 441);
        let choice = choose_config(&ranges, 96_000, TEN_MS).expect("a configuration");
        assert_eq!((choice.rate, choice.format), (48_000, SampleFormat::F32));
    }

    #[test]
    fn the_period_respects_the_device_limits() {
        let ranges = [SupportedStreamConfigRange::new(
            2,
            48_000,
            48_000,
            SupportedBufferSize::Range {
                min: 1024,
                max: 4096,
            },
            SampleFormat::I16,
        )];
        assert_eq!(
            choose_config(&ranges, 8_000, TEN_MS).map(|c| c.period),
            Some(1024)
        );
        let dsd = [range(1, 1, 96_000, SampleFormat::DsdU8)];
        assert_eq!(choose_config(&dsd, 8_000, TEN_MS), None);
    }

    fn counters() -> Arc<StreamCounters> {
        Arc::new(StreamCounters::default())
    }

    fn clock() -> Arc<CallbackClock> {
        Arc::new(CallbackClock::new(160, 8_000))
    }

    #[test]
    fn the_next_callback_is_predicted_from_the_last() {
        let clock = CallbackClock::new(160, 8_000);
        let now = clock.epoch;
        assert_eq!(clock.when(now, 1), now + TEN_MS * 2, "a period, before any");
        clock.tick(160);
        let last = clock.epoch + Duration::from_nanos(clock.last.load(Ordering::Relaxed) - 1);
        assert_eq!(clock.when(last, 160), last + TEN_MS * 2);
        assert_eq!(clock.when(last, 161), last + TEN_MS * 4);
        // A callback later than predicted: look again shortly.
        let late = last + TEN_MS * 3;
        assert_eq!(clock.when(late, 1), late + LATE_RETRY);
        // A server that calls back with 10 ms at a time.
        clock.tick(80);
        let last = clock.epoch + Duration::from_nanos(clock.last.load(Ordering::Relaxed) - 1);
        assert_eq!(clock.when(last, 100), last + TEN_MS * 2);
    }

    #[test]
    fn capture_averages_channels_and_counts_overruns() {
        let (ring, mut out) = rtrb::RingBuffer::new(3);
        let mut sink = CaptureSink {
            ring,
            counters: counters(),
            channels: 2,
            clock: clock(),
        };
        sink.push(&[0.5f32, -0.5, 0.5, 0.0, -1.0, -1.0, 0.25, 0.25]);
        let got: Vec<i16> = std::iter::from_fn(|| out.pop().ok()).collect();
        assert_eq!(got, [0, 8192, -32768]);
        assert_eq!(sink.counters.xruns.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn playback_copies_to_every_channel_and_plays_silence_when_dry() {
        let (mut input, ring) = rtrb::RingBuffer::new(8);
        for s in [16384i16, -32768] {
            input.push(s).expect("room in the ring");
        }
        let mut source = PlaybackSource {
            ring,
            counters: counters(),
            channels: 2,
            clock: clock(),
        };
        let mut out = [9u8; 7];
        source.pull(&mut out);
        assert_eq!(out, [192, 192, 0, 0, 128, 128, 128]);
        assert_eq!(source.counters.xruns.load(Ordering::Relaxed), 1);

        input.push(1).expect("room in the ring");
        let mut out = [9i16; 2];
        source.pull(&mut out);
        assert_eq!(out, [1, 1]);
    }

    #[test]
    fn playback_drops_what_the_speaker_asks_to_drop_first() {
        let (mut input, ring) = rtrb::RingBuffer::new(8);
        for s in 1..=5i16 {
            input.push(s).expect("room in the ring");
        }
        let mut source = PlaybackSource {
            ring,
            counters: counters(),
            channels: 1,
            clock: clock(),
        };
        source.counters.discard.store(3, Ordering::Relaxed);
        let mut out = [0i16; 2];
        source.pull(&mut out);
        assert_eq!(out, [4, 5]);
        assert_eq!(source.counters.discard.load(Ordering::Relaxed), 0);
    }
}
