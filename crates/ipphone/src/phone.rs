//! `ipphone listen` and `ipphone call`: the loops around a call that wait
//! for callers, dial, watch for Ctrl-C and report.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use media::audio::{AudioSpec, PlayoutConfig};

use crate::call::{Call, CallEnd, CallSetup, MicSource, Role};
use crate::cli::{AudioArgs, CallArgs, ListenArgs, Protocol, exit};
use crate::events::{Event, HangupReason, Reporter};
use crate::rtp_call::{self, RtpSetup};

/// How often the loops look at the clock, the listener and the signals.
const TICK: Duration = Duration::from_millis(20);
/// Where the tcp and rtp protocols wait for calls unless told.
const DEFAULT_BIND: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 5000);
/// How often `--json` reports traffic during a call.
const STATS_EVERY: Duration = Duration::from_secs(2);

/// Set by SIGINT and SIGTERM; cleared when a call has been hung up on it.
#[derive(Clone)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Catches SIGINT and SIGTERM. A second signal while the first is still
    /// being handled ends the process at once.
    pub fn install() -> anyhow::Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone())
                .context("installing the signal handler")?;
            signal_hook::flag::register(signal, flag.clone())
                .context("installing the signal handler")?;
        }
        Ok(Self(flag))
    }

    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

pub fn listen(args: ListenArgs, interrupt: &Interrupt) -> anyhow::Result<u8> {
    let report = Reporter::new(args.audio.json);
    check_audio(&args.audio)?;
    match args.protocol {
        Protocol::Sip => return crate::sip_phone::listen(&args, interrupt, &report),
        Protocol::Rtp => return listen_rtp(&args, interrupt, &report),
        Protocol::TcpPcm | Protocol::TcpMp3 => {}
    }
    let bind = args.bind.unwrap_or(DEFAULT_BIND);
    let listener = TcpListener::bind(bind).with_context(|| format!("cannot listen on {bind}"))?;
    let screening = crate::config::Config::load(args.config.as_deref())?.screening;
    // Callers known by their address get their name shown.
    let book = match crate::contacts::default_path() {
        Some(path) => crate::contacts::Book::load(&path)?,
        None => crate::contacts::Book::default(),
    };
    let local = listener
        .local_addr()
        .context("reading the listening address")?;
    report.emit(Event::Listening {
        addr: local.to_string(),
        protocol: args.protocol.name(),
    });
    let callers = accept_in_background(listener);

    let mut current: Option<(Call, Instant)> = None;
    let mut calls_done = 0u32;
    loop {
        match callers.recv_timeout(TICK) {
            Ok(Ok((stream, peer))) => {
                // Screening by address: a blocked caller is closed on at once.
                let action = screening.decide(&peer.ip().to_string(), peer.ip());
                if action != crate::screen::Action::Ring {
                    drop(stream);
                    report.emit(Event::Refused {
                        peer: peer.to_string(),
                        reason: "screened",
                    });
                    continue;
                }
                if current.is_some() {
                    // One call at a time: close at once, so the caller knows.
                    drop(stream);
                    report.emit(Event::Refused {
                        peer: peer.to_string(),
                        reason: "busy",
                    });
                } else {
                    report.emit(Event::Incoming {
                        peer: peer.to_string(),
                        from: None,
                        name: crate::contacts::name_for(&book, &peer.to_string()),
                    });
                    let speaker = numbered(&args.audio.speaker, calls_done + 1);
                    let setup = CallSetup {
                        role: Role::Callee,
                        protocol: args.protocol,
                        mic: MicSource::Spec(args.audio.mic.clone()),
                        speaker,
                        playout: PlayoutConfig::default(),
                    };
                    let call = Call::start(stream, setup);
                    report.emit(Event::Connected {
                        peer: peer.to_string(),
                        protocol: args.protocol.name(),
                        role: "callee",
                    });
                    current = Some((call, Instant::now()));
                }
            }
            Ok(Err(e)) => {
                // Out of file descriptors and the like: say so, keep serving.
                report.emit(Event::Error {
                    message: format!("accepting a call failed: {e}"),
                });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the listening socket stopped working")
            }
        }

        if interrupt.take() {
            match &current {
                Some((call, _)) => call.hang_up(HangupReason::Local),
                None => return Ok(exit::OK),
            }
        }
        if let Some((call, last_stats)) = &mut current {
            if call.is_finished() {
                let (call, _) = current.take().expect("a current call");
                report_end(&report, call.join());
                calls_done += 1;
                if args.calls.is_some_and(|n| calls_done >= n) {
                    return Ok(exit::OK);
                }
            } else if last_stats.elapsed() >= STATS_EVERY {
                *last_stats = Instant::now();
                report.emit(Event::Stats {
                    seconds: secs(call.elapsed()),
                    traffic: call.traffic(),
                    rtp: call.rtp_stats(),
                });
            }
        }
    }
}

/// Fails early, before anyone is called or waits for us, when the audio
/// named on the command line cannot be used.
fn check_audio(audio: &AudioArgs) -> anyhow::Result<()> {
    media::audio::check_mic(&audio.mic).context("the microphone (--mic)")?;
    media::audio::check_speaker(&audio.speaker).context("the speaker (--speaker)")?;
    Ok(())
}

/// Accepts connections on a thread of their own, so that a caller is
/// answered the moment it connects, whatever the main loop is doing.
fn accept_in_background(
    listener: TcpListener,
) -> Receiver<std::io::Result<(TcpStream, SocketAddr)>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            loop {
                let accepted = listener.accept();
                if accepted.is_err() {
                    // Let a persistent error (EMFILE) not spin the thread.
                    std::thread::sleep(Duration::from_millis(100));
                }
                if tx.send(accepted).is_err() {
                    break;
                }
            }
        })
        .expect("spawning the accepting thread");
    rx
}

pub fn call(mut args: CallArgs, interrupt: &Interrupt) -> anyhow::Result<u8> {
    let report = Reporter::new(args.audio.json);
    // A name or a speed-dial number: the contact's first address.
    if !args.target.contains([':', '@', '.', '['])
        && let Some(path) = args.contacts.clone().or_else(crate::contacts::default_path)
    {
        let book = crate::contacts::Book::load(&path)?;
        match crate::contacts::resolve(&book, &args.target) {
            crate::contacts::Resolution::Found(contact) => {
                if let Some(address) = contact.addresses.first() {
                    eprintln!("calling {} at {}", contact.name, address.address);
                    args.target = address.address.clone();
                    args.protocol = address.protocol;
                }
            }
            crate::contacts::Resolution::Ambiguous(contacts) => {
                let names: Vec<&str> = contacts.iter().map(|c| c.name.as_str()).collect();
                // On a terminal, ask; otherwise say what the choices are.
                let chosen = std::io::IsTerminal::is_terminal(&std::io::stdin())
                    .then(|| choose(&args.target, &names))
                    .flatten();
                let Some(contact) = chosen.map(|i| &contacts[i]) else {
                    eprintln!(
                        "ipphone: {} could be {}: say which",
                        args.target,
                        names.join(", ")
                    );
                    return Ok(exit::USAGE);
                };
                let Some(address) = contact.addresses.first() else {
                    eprintln!("ipphone: {} has no address", contact.name);
                    return Ok(exit::USAGE);
                };
                eprintln!("calling {} at {}", contact.name, address.address);
                args.target = address.address.clone();
                args.protocol = address.protocol;
            }
            // Not a contact: a user of the SIP account, if there is one.
            crate::contacts::Resolution::NotFound => {}
        }
    }
    if let Some(at) = &args.at {
        let wait = match crate::redial::until(at) {
            Ok(wait) => wait,
            Err(message) => {
                eprintln!("ipphone: --at {at}: {message}");
                return Ok(exit::USAGE);
            }
        };
        report.emit(Event::Waiting {
            until: at.clone(),
            seconds: secs(wait),
        });
        if !crate::redial::sleep(wait, interrupt) {
            return Ok(exit::OK);
        }
    }
    let tries = args.redial.unwrap_or(0);
    let every = Duration::from_secs_f64(args.every.max(0.0));
    let mut attempt = 0;
    loop {
        let code = call_once(&args, interrupt, &report)?;
        // Busy, no answer, unreachable or refused: try again, if asked.
        let again = [exit::BUSY, exit::UNREACHABLE, exit::REFUSED].contains(&code);
        if !again || attempt >= tries {
            return Ok(code);
        }
        attempt += 1;
        report.emit(Event::Redial {
            attempt,
            of: tries,
            after: crate::redial::reason(code),
            in_seconds: secs(every),
        });
        if !crate::redial::sleep(every, interrupt) {
            return Ok(code);
        }
    }
}

/// Asks at the terminal which of `names` was meant; `None` if no answer.
fn choose(query: &str, names: &[&str]) -> Option<usize> {
    eprintln!("{query} could be:");
    for (i, name) in names.iter().enumerate() {
        eprintln!("  {}) {name}", i + 1);
    }
    eprint!("which one? ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ok()?;
    let n: usize = line.trim().parse().ok()?;
    (1..=names.len()).contains(&n).then(|| n - 1)
}

fn call_once(args: &CallArgs, interrupt: &Interrupt, report: &Reporter) -> anyhow::Result<u8> {
    if args.protocol == Protocol::Sip {
        check_audio(&args.audio)?;
        return crate::sip_phone::call(args, interrupt, report);
    }
    if !has_port(&args.target) {
        eprintln!(
            "ipphone: {} is not an address to call: give host:port",
            args.target
        );
        return Ok(exit::USAGE);
    }
    check_audio(&args.audio)?;
    report.emit(Event::Dialing {
        target: args.target.clone(),
        protocol: args.protocol.name(),
    });
    if args.protocol == Protocol::Rtp {
        return call_rtp(args, interrupt, report);
    }
    let timeout = Duration::from_secs_f64(args.timeout.max(0.1));
    let stream = match connect(&args.target, timeout, interrupt) {
        Ok(s) => s,
        Err(failure) => {
            report.emit(Event::Error {
                message: failure.message,
            });
            return Ok(failure.code);
        }
    };
    let peer = stream
        .peer_addr()
        .map_or_else(|_| args.target.clone(), |a| a.to_string());
    // The call starts at once, so that both ends' audio clocks start together;
    // it counts as connected when the far end's audio arrives, and as busy if
    // the far end closes before sending any.
    let setup = CallSetup {
        role: Role::Caller,
        protocol: args.protocol,
        mic: MicSource::Spec(args.audio.mic.clone()),
        speaker: args.audio.speaker.clone(),
        playout: PlayoutConfig::default(),
    };
    let call = Call::start(stream, setup);
    let connected = Event::Connected {
        peer,
        protocol: args.protocol.name(),
        role: "caller",
    };
    let end = supervise(
        call,
        Some(connected),
        args.duration.map(Duration::from_secs_f64),
        interrupt,
        report,
    );
    let code = exit_code(&end);
    report_end(report, end);
    Ok(code)
}

fn exit_code(end: &CallEnd) -> u8 {
    match end.reason {
        HangupReason::Error => exit::FAILURE,
        HangupReason::Busy => exit::BUSY,
        HangupReason::Refused => exit::REFUSED,
        _ => exit::OK,
    }
}

/// `ipphone call --protocol rtp`: media straight to `host:port`, no signalling.
fn call_rtp(args: &CallArgs, interrupt: &Interrupt, report: &Reporter) -> anyhow::Result<u8> {
    let peer = match args.target.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(peer)) => peer,
        Ok(None) | Err(_) => {
            report.emit(Event::Error {
                message: format!("cannot find {}", args.target),
            });
            return Ok(exit::UNREACHABLE);
        }
    };
    let bind: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()?;
    let socket = UdpSocket::bind(bind).context("opening a UDP socket")?;
    let setup = RtpSetup {
        codec: args.codec.unwrap_or(rtp_call::Codec::Opus),
        mic: MicSource::Spec(args.audio.mic.clone()),
        speaker: args.audio.speaker.clone(),
        peer: Some(peer),
        seed: seed(),
        dtmf: args.dtmf.clone().unwrap_or_default(),
        signalled: None,
    };
    let call = rtp_call::start(socket, setup);
    let connected = Event::Connected {
        peer: peer.to_string(),
        protocol: "rtp",
        role: "caller",
    };
    let end = supervise(
        call,
        Some(connected),
        args.duration.map(Duration::from_secs_f64),
        interrupt,
        report,
    );
    let code = exit_code(&end);
    report_end(report, end);
    Ok(code)
}

/// `ipphone listen --protocol rtp`: answers the first address that sends
/// media, until it says BYE or is hung up on; then waits for the next.
fn listen_rtp(args: &ListenArgs, interrupt: &Interrupt, report: &Reporter) -> anyhow::Result<u8> {
    let mut calls_done = 0u32;
    loop {
        let bind = args.bind.unwrap_or(DEFAULT_BIND);
        let socket = UdpSocket::bind(bind).with_context(|| format!("cannot listen on {bind}"))?;
        let local = socket
            .local_addr()
            .context("reading the listening address")?;
        report.emit(Event::Listening {
            addr: local.to_string(),
            protocol: "rtp",
        });
        let setup = RtpSetup {
            codec: args.codec.unwrap_or(rtp_call::Codec::Opus),
            mic: MicSource::Spec(args.audio.mic.clone()),
            speaker: numbered(&args.audio.speaker, calls_done + 1),
            peer: None,
            seed: seed(),
            dtmf: String::new(),
            signalled: None,
        };
        let call = rtp_call::start(socket, setup);
        // Waiting: nothing has arrived yet, and Ctrl-C means exit.
        while call.traffic().bytes_received == 0 && !call.is_finished() {
            if interrupt.take() {
                call.hang_up(HangupReason::Local);
                call.join();
                return Ok(exit::OK);
            }
            std::thread::sleep(TICK);
        }
        report.emit(Event::Incoming {
            peer: "rtp".into(),
            from: None,
            name: None,
        });
        let end = supervise(call, None, None, interrupt, report);
        let failed = end.reason == HangupReason::Error;
        report_end(report, end);
        if failed {
            return Ok(exit::FAILURE);
        }
        calls_done += 1;
        if args.calls.is_some_and(|n| calls_done >= n) {
            return Ok(exit::OK);
        }
    }
}

/// A seed for tags, SSRCs and sequence numbers: different on every call.
pub fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}

/// Runs a call to its end: hangs up on a signal or when `duration` passes,
/// and reports traffic on the way. `connected` is reported when the far
/// end's first audio arrives.
pub fn supervise(
    call: Call,
    mut connected: Option<Event>,
    duration: Option<Duration>,
    interrupt: &Interrupt,
    report: &Reporter,
) -> CallEnd {
    let mut last_stats = Instant::now();
    while !call.is_finished() {
        if call.traffic().bytes_received > 0
            && let Some(event) = connected.take()
        {
            report.emit(event);
        }
        for digit in call.take_digits().chars() {
            report.emit(Event::Dtmf {
                digit: digit.to_string(),
            });
        }
        if interrupt.take() {
            call.hang_up(HangupReason::Local);
        }
        if duration.is_some_and(|d| call.elapsed() >= d) {
            call.hang_up(HangupReason::Duration);
        }
        if last_stats.elapsed() >= STATS_EVERY {
            last_stats = Instant::now();
            report.emit(Event::Stats {
                seconds: secs(call.elapsed()),
                traffic: call.traffic(),
                rtp: call.rtp_stats(),
            });
        }
        std::thread::sleep(TICK);
    }
    // Digits that came in the last moments of the call.
    for digit in call.take_digits().chars() {
        report.emit(Event::Dtmf {
            digit: digit.to_string(),
        });
    }
    call.join()
}

pub fn report_end(report: &Reporter, end: CallEnd) {
    report.emit(Event::Hangup {
        reason: end.reason,
        detail: end.detail,
        seconds: secs(end.duration),
        traffic: end.traffic,
        rtp: end.rtp,
    });
}

/// `host:port`, `[v6]:port`: something that names a port to call.
fn has_port(target: &str) -> bool {
    target
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

struct DialFailure {
    code: u8,
    message: String,
}

/// Connects to `target` (`host:port`), trying each address it resolves to.
fn connect(
    target: &str,
    timeout: Duration,
    interrupt: &Interrupt,
) -> Result<TcpStream, DialFailure> {
    let addrs: Vec<SocketAddr> = match target.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return Err(DialFailure {
                code: exit::UNREACHABLE,
                message: format!("cannot find {target}: {e}"),
            });
        }
    };
    let mut last = DialFailure {
        code: exit::UNREACHABLE,
        message: format!("{target} resolves to no address"),
    };
    for addr in addrs {
        if interrupt.take() {
            return Err(DialFailure {
                code: exit::FAILURE,
                message: "dialling cancelled".into(),
            });
        }
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => {
                last = match e.kind() {
                    ErrorKind::ConnectionRefused => DialFailure {
                        code: exit::REFUSED,
                        message: format!(
                            "{target} refused the call: nothing is listening at {addr}"
                        ),
                    },
                    ErrorKind::TimedOut | ErrorKind::WouldBlock => DialFailure {
                        code: exit::UNREACHABLE,
                        message: format!(
                            "{target} did not answer within {:.0} s",
                            timeout.as_secs_f64()
                        ),
                    },
                    _ => DialFailure {
                        code: exit::UNREACHABLE,
                        message: format!("cannot reach {target}: {e}"),
                    },
                };
            }
        }
    }
    Err(last)
}

/// The speaker for the `n`th call of a listener: a recording gets its own
/// file per call (`out.wav`, `out-2.wav`, ...), so no call overwrites another.
pub fn numbered(spec: &AudioSpec, n: u32) -> AudioSpec {
    match spec {
        AudioSpec::Wav(path) if n > 1 => AudioSpec::Wav(with_suffix(path, n)),
        other => other.clone(),
    }
}

fn with_suffix(path: &Path, n: u32) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!("{stem}-{n}{ext}"))
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}
