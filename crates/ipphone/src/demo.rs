//! `ipphone demo`: a whole call on this machine, with nothing to set up.
//!
//! Two phones on loopback call each other, each sending a generated
//! speech-like signal; what each one hears is recorded, lined up against what
//! the other sent, and the delay and faithfulness of each direction reported.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use media::audio::{AudioSpec, PlayoutConfig};
use media::dsp::{correlate, signal};
use serde::Serialize;

use crate::call::{Call, CallEnd, CallSetup, MicSource, Role};
use crate::cli::{DemoArgs, Protocol, exit};
use crate::codec;
use crate::events::{Event, HangupReason, Reporter};
use crate::phone::{Interrupt, report_end};
use crate::rtp_call::{self, RtpSetup};

/// How long after the signal ends the caller hangs up: enough for the last
/// of it to arrive.
const TAIL: Duration = Duration::from_millis(700);
/// The largest delay the demo looks for.
const MAX_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
struct Direction {
    from: &'static str,
    to: &'static str,
    bytes: u64,
    delay_ms: Option<f64>,
    correlation: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Summary {
    event: &'static str,
    protocol: &'static str,
    seconds: f64,
    directions: [Direction; 2],
    recording: String,
}

pub fn run(args: DemoArgs, interrupt: &Interrupt) -> anyhow::Result<u8> {
    let report = Reporter::new(args.json);
    if args.protocol == Protocol::Sip {
        eprintln!("ipphone: the demo does not make its call over SIP yet: use --protocol rtp");
        return Ok(crate::cli::exit::USAGE);
    }
    let rate = match args.protocol {
        Protocol::Rtp | Protocol::Sip => args.codec.sample_rate(),
        tcp => codec::rate(tcp),
    };
    let seconds = args.seconds.clamp(0.5, 600.0);
    let caller_voice: Arc<[i16]> = signal::test_speech_seeded(rate, seconds, 7).into();
    let callee_voice: Arc<[i16]> = signal::test_speech_seeded(rate, seconds, 11).into();
    let scratch = std::env::temp_dir().join(format!("ipphone-demo-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).context("creating a scratch directory")?;
    let caller_heard = scratch.join("caller-heard.wav");

    let (caller, callee, addr) = if args.protocol == Protocol::Rtp {
        start_rtp(
            &args,
            &report,
            rate,
            &caller_voice,
            &callee_voice,
            &caller_heard,
        )?
    } else {
        start_tcp(
            &args,
            &report,
            rate,
            &caller_voice,
            &callee_voice,
            &caller_heard,
        )?
    };
    report.emit(Event::Connected {
        peer: addr.to_string(),
        protocol: args.protocol.name(),
        role: "caller",
    });

    let started = Instant::now();
    let length = Duration::from_secs_f64(seconds) + TAIL;
    let mut next_progress = Duration::from_secs(1);
    while !caller.is_finished() {
        if interrupt.take() {
            caller.hang_up(HangupReason::Local);
        }
        if started.elapsed() >= length {
            caller.hang_up(HangupReason::Duration);
        }
        if started.elapsed() >= next_progress && !args.json {
            let t = caller.traffic();
            eprintln!(
                "  {:4.1} s  sent {:>7} bytes  received {:>7} bytes",
                started.elapsed().as_secs_f64(),
                t.bytes_sent,
                t.bytes_received
            );
            next_progress += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let caller_end = caller.join();
    let callee_end = callee.join();
    let failed = [&caller_end, &callee_end]
        .iter()
        .any(|e| e.reason == HangupReason::Error);
    let duration = caller_end.duration.as_secs_f64();
    let bytes_up = caller_end.traffic.bytes_sent;
    let bytes_down = callee_end.traffic.bytes_sent;
    report_end(&report, caller_end);
    if failed {
        let CallEnd { detail, .. } = callee_end;
        report.emit(Event::Error {
            message: detail.unwrap_or_else(|| "the demo call failed".into()),
        });
        return Ok(exit::FAILURE);
    }

    let up = measure(&caller_voice, &args.out, rate)?;
    let down = measure(&callee_voice, &caller_heard, rate)?;
    let _ = std::fs::remove_dir_all(&scratch);
    let summary = Summary {
        event: "summary",
        protocol: args.protocol.name(),
        seconds: (duration * 10.0).round() / 10.0,
        directions: [
            Direction {
                from: "caller",
                to: "callee",
                bytes: bytes_up,
                delay_ms: up.map(|a| a.0),
                correlation: up.map(|a| a.1),
            },
            Direction {
                from: "callee",
                to: "caller",
                bytes: bytes_down,
                delay_ms: down.map(|a| a.0),
                correlation: down.map(|a| a.1),
            },
        ],
        recording: args.out.display().to_string(),
    };
    print_summary(&summary);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).expect("the summary serialises")
        );
    }
    let heard = summary
        .directions
        .iter()
        .all(|d| d.correlation.is_some_and(|c| c > 0.5));
    Ok(if heard { exit::OK } else { exit::FAILURE })
}

/// Two phones on a loopback TCP connection.
fn start_tcp(
    args: &DemoArgs,
    report: &Reporter,
    rate: u32,
    caller_voice: &Arc<[i16]>,
    callee_voice: &Arc<[i16]>,
    caller_heard: &Path,
) -> anyhow::Result<(Call, Call, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("opening a loopback port")?;
    let addr = listener.local_addr()?;
    report.emit(Event::Listening {
        addr: addr.to_string(),
        protocol: args.protocol.name(),
    });
    let setup = |role, voice: &Arc<[i16]>, speaker: &Path| CallSetup {
        role,
        protocol: args.protocol,
        mic: MicSource::Clip(voice.clone(), rate),
        speaker: AudioSpec::Wav(speaker.to_owned()),
        playout: PlayoutConfig::default(),
    };
    report.emit(Event::Dialing {
        target: addr.to_string(),
        protocol: args.protocol.name(),
    });
    let outgoing = TcpStream::connect(addr).context("calling the answering phone")?;
    let (incoming, peer) = listener.accept().context("answering")?;
    report.emit(Event::Incoming {
        peer: peer.to_string(),
        from: None,
    });
    let callee = Call::start(incoming, setup(Role::Callee, callee_voice, &args.out));
    let caller = Call::start(outgoing, setup(Role::Caller, caller_voice, caller_heard));
    Ok((caller, callee, addr))
}

/// Two phones on loopback UDP ports, talking RTP.
fn start_rtp(
    args: &DemoArgs,
    report: &Reporter,
    rate: u32,
    caller_voice: &Arc<[i16]>,
    callee_voice: &Arc<[i16]>,
    caller_heard: &Path,
) -> anyhow::Result<(Call, Call, SocketAddr)> {
    let answering = UdpSocket::bind("127.0.0.1:0").context("opening a loopback port")?;
    let addr = answering.local_addr()?;
    report.emit(Event::Listening {
        addr: addr.to_string(),
        protocol: "rtp",
    });
    let setup = |voice: &Arc<[i16]>, speaker: &Path, peer| RtpSetup {
        codec: args.codec,
        mic: MicSource::Clip(voice.clone(), rate),
        speaker: AudioSpec::Wav(speaker.to_owned()),
        peer,
        seed: u64::from(std::process::id()) ^ (u64::from(rate) << 32),
        dtmf: String::new(),
        signalled: None,
    };
    let callee = rtp_call::start(answering, setup(callee_voice, &args.out, None));
    report.emit(Event::Dialing {
        target: addr.to_string(),
        protocol: "rtp",
    });
    let calling = UdpSocket::bind("127.0.0.1:0").context("opening a loopback port")?;
    let mut caller_setup = setup(caller_voice, caller_heard, Some(addr));
    caller_setup.seed = caller_setup.seed.rotate_left(17) ^ 0x5bd1_e995;
    let caller = rtp_call::start(calling, caller_setup);
    Ok((caller, callee, addr))
}

/// Lines up a recording against what was sent: (delay in ms, correlation).
fn measure(sent: &[i16], recording: &Path, rate: u32) -> anyhow::Result<Option<(f64, f64)>> {
    let (received, _) = media::audio::wav::read_mono(recording)?;
    let max_lag = (MAX_DELAY.as_secs_f64() * f64::from(rate)) as usize;
    Ok(correlate::align(sent, &received, max_lag).map(|a| {
        let ms = (a.lag_ms(rate) * 10.0).round() / 10.0;
        (ms, (a.correlation * 1000.0).round() / 1000.0)
    }))
}

fn print_summary(s: &Summary) {
    eprintln!();
    eprintln!("demo call over {}: {:.1} s", s.protocol, s.seconds);
    for d in &s.directions {
        match (d.delay_ms, d.correlation) {
            (Some(ms), Some(c)) => eprintln!(
                "  {} -> {}: {} bytes, delay {ms:.1} ms, correlation {c:.3}",
                d.from, d.to, d.bytes
            ),
            _ => eprintln!(
                "  {} -> {}: {} bytes, nothing recognisable arrived",
                d.from, d.to, d.bytes
            ),
        }
    }
    eprintln!("  what the answering phone heard: {}", s.recording);
}
