//! One call over the article's TCP stream formats: microphone to socket and
//! socket to speaker, both at once, until either side hangs up.
//!
//! A call runs on its own threads: the sender paces itself on the
//! microphone's clock and writes each piece of audio the moment it is
//! encoded (TCP_NODELAY); the receiver decodes whatever arrives and hands it
//! to the speaker at once. Whoever sees the end first records why.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use media::audio::{AudioSpec, Microphone, PlayoutConfig, Speaker};
use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};

use crate::cli::Protocol;
use crate::codec::{self, StreamDecoder};
use crate::events::{HangupReason, Traffic};

/// A send that cannot complete for this long means the far end has stopped
/// taking audio (its machine vanished, or it froze): the call is lost. A far
/// end that only listens, sending nothing (`nc -l | mpg123 -`), is fine.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a blocked read wakes up to look for a hang-up.
const POLL: Duration = Duration::from_millis(50);

/// Where a call's microphone audio comes from.
#[derive(Clone)]
pub enum MicSource {
    Spec(AudioSpec),
    /// Samples at a rate, played once and then silence (the demo's signal).
    Clip(Arc<[i16]>, u32),
}

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Caller,
    Callee,
}

impl MicSource {
    /// Opens the microphone, delivering samples at `rate` Hz.
    pub fn open(&self, rate: u32) -> Result<Microphone, media::audio::AudioError> {
        Ok(match self {
            MicSource::Spec(spec) => Microphone::open(spec, rate)?,
            MicSource::Clip(samples, clip_rate) => Microphone::new(
                media::audio::wav::open_clip(samples.clone(), *clip_rate),
                rate,
            ),
        })
    }
}

/// Everything a call needs besides its connection.
#[derive(Clone)]
pub struct CallSetup {
    pub role: Role,
    pub protocol: Protocol,
    pub mic: MicSource,
    pub speaker: AudioSpec,
    pub playout: PlayoutConfig,
}

/// How a call ended.
#[derive(Debug, Clone)]
pub struct CallEnd {
    pub reason: HangupReason,
    pub detail: Option<String>,
    pub duration: Duration,
    pub traffic: Traffic,
    pub rtp: Option<crate::rtp_call::RtpStats>,
}

/// A call in progress.
pub struct Call {
    shared: Arc<Shared>,
    thread: JoinHandle<CallEnd>,
}

pub struct Shared {
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub underruns: AtomicU64,
    pub dropped: AtomicU64,
    /// The first reason to end the call wins.
    end: Mutex<Option<(HangupReason, Option<String>)>>,
    ending: AtomicBool,
    pub speaker_rate: AtomicU64,
    /// An RTP call's figures, published by the call every half second.
    pub rtp: Mutex<Option<crate::rtp_call::RtpStats>>,
    /// DTMF digits received and not yet reported.
    digits: Mutex<String>,
    /// DTMF digits to send, typed during the call (RTP calls).
    pub digits_out: Mutex<String>,
    /// An RTP call sends no media while set: the far end holds the call
    /// (it asked us to only receive), or we do.
    pub paused: AtomicBool,
    /// Wakes the call's thread from its wait: a hang-up, digits to send.
    pub waker: Waker,
    /// Woken when the call has news for whoever runs it: it ended, or
    /// digits arrived.
    supervisor: OnceLock<Waker>,
    /// Set as the call's thread returns.
    finished: AtomicBool,
    started: Instant,
}

impl Shared {
    pub fn end(&self, reason: HangupReason, detail: Option<String>) {
        let mut end = self.end.lock().expect("call end lock poisoned");
        end.get_or_insert((reason, detail));
        self.ending.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub fn rtp_stats(&self) -> Option<crate::rtp_call::RtpStats> {
        *self.rtp.lock().expect("rtp stats lock poisoned")
    }

    /// Records a DTMF digit the far end sent, for the supervisor to report.
    pub fn push_digit(&self, digit: char) {
        let mut digits = self.digits.lock().expect("digits lock poisoned");
        // Bounded: a far end flooding events cannot grow this.
        if digits.len() < 64 {
            digits.push(digit);
        }
        if let Some(supervisor) = self.supervisor.get() {
            supervisor.wake();
        }
    }

    pub fn ending(&self) -> bool {
        self.ending.load(Ordering::Acquire)
    }

    fn traffic(&self) -> Traffic {
        let ms = |samples: u64| {
            let rate = self.speaker_rate.load(Ordering::Relaxed).max(1);
            samples * 1000 / rate
        };
        Traffic {
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            underrun_ms: ms(self.underruns.load(Ordering::Relaxed)),
            dropped_ms: ms(self.dropped.load(Ordering::Relaxed)),
        }
    }
}

impl Call {
    /// Starts a call on an established connection.
    pub fn start(stream: TcpStream, setup: CallSetup) -> Call {
        Call::spawn(move |shared| run(stream, setup, shared))
    }

    /// Runs `body` as a call on its own thread: it carries the audio until
    /// [`Shared::ending`] says stop, recording why it ended with
    /// [`Shared::end`] if it ends by itself.
    pub fn spawn(body: impl FnOnce(&Arc<Shared>) + Send + 'static) -> Call {
        let shared = Arc::new(Shared {
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            end: Mutex::new(None),
            ending: AtomicBool::new(false),
            speaker_rate: AtomicU64::new(0),
            rtp: Mutex::new(None),
            digits: Mutex::new(String::new()),
            digits_out: Mutex::new(String::new()),
            paused: AtomicBool::new(false),
            waker: Waker::new(),
            supervisor: OnceLock::new(),
            finished: AtomicBool::new(false),
            started: Instant::now(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("call".into())
            .spawn(move || {
                body(&s);
                let (reason, detail) = s
                    .end
                    .lock()
                    .expect("call end lock poisoned")
                    .clone()
                    .unwrap_or((HangupReason::Local, None));
                let end = CallEnd {
                    reason,
                    detail,
                    duration: s.started.elapsed(),
                    traffic: s.traffic(),
                    rtp: s.rtp_stats(),
                };
                s.finished.store(true, Ordering::Release);
                if let Some(supervisor) = s.supervisor.get() {
                    supervisor.wake();
                }
                end
            })
            .expect("spawning the call thread");
        Call { shared, thread }
    }

    /// Has `waker` woken when the call ends or digits arrive, so that the
    /// thread running it can sleep until then.
    pub fn wake_on_news(&self, waker: &Waker) {
        let _ = self.shared.supervisor.set(waker.clone());
        // It may have ended before it knew whom to tell.
        if self.is_finished() {
            waker.wake();
        }
    }

    /// Hangs up; the call ends with `reason` unless it had already ended.
    pub fn hang_up(&self, reason: HangupReason) {
        self.shared.end(reason, None);
    }

    /// True once the call's thread is done ([`Call::join`] then returns at
    /// once).
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire) || self.thread.is_finished()
    }

    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    pub fn traffic(&self) -> Traffic {
        self.shared.traffic()
    }

    pub fn rtp_stats(&self) -> Option<crate::rtp_call::RtpStats> {
        self.shared.rtp_stats()
    }

    /// Stops (or resumes) sending media, as a hold asks; RTP calls only.
    pub fn set_sending(&self, sending: bool) {
        self.shared.paused.store(!sending, Ordering::Relaxed);
    }

    /// Sends `digits` as RFC 4733 events, after any still queued (RTP
    /// calls; bounded, extra digits are dropped).
    pub fn send_digits(&self, digits: &str) {
        if let Ok(mut queue) = self.shared.digits_out.lock() {
            for digit in digits
                .chars()
                .filter(|c| "0123456789*#ABCDabcd".contains(*c))
            {
                if queue.len() < 64 {
                    queue.push(digit);
                }
            }
        }
        self.shared.waker.wake();
    }

    /// The DTMF digits received since the last call.
    pub fn take_digits(&self) -> String {
        std::mem::take(&mut *self.shared.digits.lock().expect("digits lock poisoned"))
    }

    /// Waits for the call's threads to finish and the audio to be closed
    /// (a recording is complete on disk when this returns).
    pub fn join(self) -> CallEnd {
        self.thread.join().unwrap_or_else(|_| CallEnd {
            reason: HangupReason::Error,
            detail: Some("the call thread failed".into()),
            duration: self.shared.started.elapsed(),
            traffic: self.shared.traffic(),
            rtp: self.shared.rtp_stats(),
        })
    }
}

/// Wakes a thread that waits in [`wait`]: an eventfd it watches, written
/// from another thread. Never from an audio callback: a write is a system
/// call.
#[derive(Clone)]
pub struct Waker(Option<Arc<OwnedFd>>);

impl Waker {
    /// A waker; without one to be had (no file descriptors left), a waker
    /// that does nothing, and the waiting threads see news at their next
    /// deadline instead.
    pub fn new() -> Self {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK);
        if let Err(e) = &fd {
            tracing::warn!("cannot make an eventfd ({e}): wake-ups come late");
        }
        Waker(fd.ok().map(Arc::new))
    }

    pub fn wake(&self) {
        if let Some(fd) = &self.0 {
            // Only full (2^64 - 2 wake-ups unread) can fail: awake anyway.
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.0.as_deref().map(AsFd::as_fd)
    }

    /// Takes the wake-ups: the eventfd reads as ready until then.
    fn clear(&self) {
        if let Some(fd) = &self.0 {
            let _ = rustix::io::read(fd, &mut [0u8; 8]);
        }
    }
}

impl Default for Waker {
    fn default() -> Self {
        Self::new()
    }
}

/// Sleeps until one of `fds` is ready (as their flags ask), `waker` is woken,
/// `deadline` passes (at once if it has), or a signal arrives; ready flags
/// are left in `fds`. poll(2) with a timeout to the nanosecond (ppoll), so a
/// deadline is kept to the timer slack, about 50 µs.
pub fn wait<'a>(fds: &mut Vec<PollFd<'a>>, waker: &'a Waker, deadline: Option<Instant>) {
    let watched = fds.len();
    for fd in fds.iter_mut() {
        // A wait cut short by a signal leaves the flags as they were.
        fd.clear_revents();
    }
    if let Some(fd) = waker.fd() {
        fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
    }
    let timeout = deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        })
    });
    // EINTR (a signal) is a wake-up like any other.
    let _ = rustix::event::poll(fds, timeout.as_ref());
    if fds.len() > watched {
        let woken = !fds[watched].revents().is_empty();
        fds.truncate(watched);
        if woken {
            waker.clear();
        }
    }
}

/// Whether `fd` was found ready by the last [`wait`].
pub fn ready(fd: &PollFd<'_>) -> bool {
    !fd.revents().is_empty()
}

fn run(stream: TcpStream, setup: CallSetup, shared: &Arc<Shared>) {
    let rate = codec::rate(setup.protocol);
    match open_audio(&setup, rate) {
        Ok((mic, speaker)) => converse(stream, &setup, mic, speaker, shared),
        Err(e) => {
            let _ = stream.shutdown(Shutdown::Both);
            shared.end(HangupReason::Error, Some(e.to_string()));
        }
    }
}

fn open_audio(
    setup: &CallSetup,
    rate: u32,
) -> Result<(Microphone, Speaker), media::audio::AudioError> {
    let mic = setup.mic.open(rate)?;
    let speaker = Speaker::open(&setup.speaker, rate, setup.playout)?;
    Ok((mic, speaker))
}

fn converse(
    stream: TcpStream,
    setup: &CallSetup,
    mut mic: Microphone,
    speaker: Speaker,
    shared: &Arc<Shared>,
) {
    let (protocol, role) = (setup.protocol, setup.role);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    shared
        .speaker_rate
        .store(u64::from(codec::rate(protocol)), Ordering::Relaxed);
    let reader = match stream.try_clone() {
        Ok(r) => r,
        Err(e) => {
            shared.end(
                HangupReason::Error,
                Some(format!("cannot use the connection: {e}")),
            );
            return;
        }
    };
    let receiver = {
        let shared = shared.clone();
        let decoder = codec::decoder(protocol);
        std::thread::Builder::new()
            .name("call-receive".into())
            .spawn(move || receive(reader, role, decoder, speaker, &shared))
            .expect("spawning the receiving thread")
    };

    let mut encoder = codec::encoder(protocol);
    let mut frame = vec![0i16; encoder.frame_samples()];
    let mut bytes = Vec::with_capacity(4096);
    let mut writer = &stream;
    while !shared.ending() {
        if !mic.read(&mut frame, || shared.ending()) {
            if !shared.ending() {
                shared.end(
                    HangupReason::Error,
                    Some("the microphone stopped delivering audio".into()),
                );
            }
            break;
        }
        bytes.clear();
        if let Err(e) = encoder.encode(&frame, &mut bytes) {
            shared.end(HangupReason::Error, Some(format!("encoding failed: {e}")));
            break;
        }
        if bytes.is_empty() {
            continue;
        }
        match writer.write_all(&bytes) {
            Ok(()) => {
                shared
                    .bytes_sent
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                let (reason, detail) = match e.kind() {
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {
                        (HangupReason::Remote, None)
                    }
                    _ => (HangupReason::Lost, Some(format!("sending failed: {e}"))),
                };
                // Give the receiver a moment to see the far end's close first.
                std::thread::sleep(POLL);
                shared.end(reason, detail);
                break;
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    let _ = receiver.join();
}

fn receive(
    mut reader: TcpStream,
    role: Role,
    mut decoder: Box<dyn StreamDecoder>,
    mut speaker: Speaker,
    shared: &Shared,
) {
    let mut buf = [0u8; 4096];
    let mut pcm = Vec::with_capacity(4096);
    while !shared.ending() {
        match reader.read(&mut buf) {
            Ok(0) => {
                // A listener that is in another call closes at once, before
                // any audio: that is the article's busy signal.
                let busy =
                    role == Role::Caller && shared.bytes_received.load(Ordering::Relaxed) == 0;
                shared.end(
                    if busy {
                        HangupReason::Busy
                    } else {
                        HangupReason::Remote
                    },
                    None,
                );
                break;
            }
            Ok(n) => {
                shared.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                pcm.clear();
                decoder.decode(&buf[..n], &mut pcm);
                speaker.play(&pcm);
                shared
                    .underruns
                    .store(speaker.underruns(), Ordering::Relaxed);
                shared.dropped.store(speaker.dropped(), Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                // Nothing yet: look for a hang-up, then wait again.
            }
            Err(e) => {
                let reason = match e.kind() {
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                        HangupReason::Remote
                    }
                    _ => HangupReason::Lost,
                };
                shared.end(reason, Some(format!("receiving failed: {e}")));
                break;
            }
        }
    }
}
