//! `ipphone demo`: a whole call on this machine, with nothing to set up.
//!
//! Two phones on loopback call each other, each sending a generated
//! speech-like signal; what each one hears is recorded, lined up against what
//! the other sent, and the delay and faithfulness of each direction reported.
//!
//! Over SIP (the default) the two phones are two user agents
//! ([`proto::sip::ua`]) on their own loopback sockets: INVITE, 100/180/200,
//! ACK with an SDP offer/answer (RFC 3261 §13, RFC 3264), the RTP media the
//! real phones use ([`crate::sip_phone`]), and a BYE at the end (§15).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use media::audio::{AudioSpec, PlayoutConfig};
use media::dsp::{correlate, signal};
use proto::sdp::codec::Codec as SdpCodec;
use proto::sdp::model::SessionDescription;
use proto::sdp::offer_answer::{LocalMedia, Negotiated, OfferAnswer};
use proto::sip::message::{SipUri, Uri};
use proto::sip::transaction::Timers;
use proto::sip::ua::{CallRef, EndReason, UaConfig, UaEvent, UserAgent};
use serde::Serialize;

use crate::call::{Call, CallEnd, CallSetup, MicSource, Role};
use crate::cli::{DemoArgs, Protocol, exit};
use crate::codec;
use crate::events::{Event, HangupReason, Reporter};
use crate::phone::{Interrupt, report_end};
use crate::rtp_call::{self, Codec, RtpSetup};
use crate::sip_phone::{bind_media, media_setup};

/// How long after the signal ends the caller hangs up: enough for the last
/// of it to arrive.
const TAIL: Duration = Duration::from_millis(700);
/// The largest delay the demo looks for.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// How long the SIP phones have to set the call up on loopback.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the caller waits for the answer to its BYE.
const LINGER: Duration = Duration::from_secs(2);
/// How often the demo's loops wake (SIP timers, progress, hanging up).
const TICK: Duration = Duration::from_millis(5);
const USER_AGENT: &str = concat!("ipphone/", env!("CARGO_PKG_VERSION"), " (demo)");

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
    let report = Reporter::without_history(args.json);
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

    let voices = Voices {
        rate,
        caller: &caller_voice,
        callee: &callee_voice,
        caller_heard: &caller_heard,
    };
    let (caller, callee, mut sip) = match args.protocol {
        Protocol::Sip => {
            let (caller, callee, sip) = start_sip(&args, &report, &voices)?;
            (caller, callee, Some(sip))
        }
        Protocol::Rtp => {
            let (caller, callee) = start_rtp(&args, &report, &voices)?;
            (caller, callee, None)
        }
        Protocol::TcpPcm | Protocol::TcpMp3 => {
            let (caller, callee) = start_tcp(&args, &report, &voices)?;
            (caller, callee, None)
        }
    };

    let started = Instant::now();
    let length = Duration::from_secs_f64(seconds) + TAIL;
    let mut next_progress = Duration::from_secs(1);
    while !caller.is_finished() {
        let hang_up = if interrupt.take() {
            Some(HangupReason::Local)
        } else if started.elapsed() >= length {
            Some(HangupReason::Duration)
        } else {
            None
        };
        if let Some(reason) = hang_up {
            caller.hang_up(reason);
            if let Some(sip) = &mut sip {
                sip.hang_up();
            }
        }
        if let Some(sip) = &mut sip {
            sip.drive(&report, &caller, &callee);
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
        std::thread::sleep(TICK);
    }
    if let Some(sip) = sip {
        sip.finish(&report, &caller, &callee);
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

/// What the two phones say, and where the caller's ear records.
struct Voices<'a> {
    rate: u32,
    caller: &'a Arc<[i16]>,
    callee: &'a Arc<[i16]>,
    caller_heard: &'a Path,
}

/// Two phones on a loopback TCP connection.
fn start_tcp(
    args: &DemoArgs,
    report: &Reporter,
    voices: &Voices<'_>,
) -> anyhow::Result<(Call, Call)> {
    let rate = voices.rate;
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
        name: None,
    });
    let callee = Call::start(incoming, setup(Role::Callee, voices.callee, &args.out));
    let caller = Call::start(
        outgoing,
        setup(Role::Caller, voices.caller, voices.caller_heard),
    );
    report.emit(Event::Connected {
        peer: addr.to_string(),
        protocol: args.protocol.name(),
        role: "caller",
    });
    Ok((caller, callee))
}

/// Two phones on loopback UDP ports, talking RTP.
fn start_rtp(
    args: &DemoArgs,
    report: &Reporter,
    voices: &Voices<'_>,
) -> anyhow::Result<(Call, Call)> {
    let rate = voices.rate;
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
    let callee = rtp_call::start(answering, setup(voices.callee, &args.out, None));
    report.emit(Event::Dialing {
        target: addr.to_string(),
        protocol: "rtp",
    });
    let calling = UdpSocket::bind("127.0.0.1:0").context("opening a loopback port")?;
    let mut caller_setup = setup(voices.caller, voices.caller_heard, Some(addr));
    caller_setup.seed = caller_setup.seed.rotate_left(17) ^ 0x5bd1_e995;
    let caller = rtp_call::start(calling, caller_setup);
    report.emit(Event::Connected {
        peer: addr.to_string(),
        protocol: "rtp",
        role: "caller",
    });
    Ok((caller, callee))
}

/// Two SIP phones on loopback: the caller dials, the callee rings and
/// answers at once, and when the caller has the answer both start their
/// media as negotiated.
fn start_sip(
    args: &DemoArgs,
    report: &Reporter,
    voices: &Voices<'_>,
) -> anyhow::Result<(Call, Call, SipPair)> {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let seed = crate::phone::seed();
    let mut callee = Agent::bind("callee", None, seed.rotate_left(29) ^ 0x9e37_79b9)?;
    let callee_addr = callee.addr();
    let mut caller = Agent::bind("caller", Some(callee_addr), seed)?;
    report.emit(Event::Listening {
        addr: callee_addr.to_string(),
        protocol: "sip",
    });

    let (rtp, rtcp) = bind_media(loopback)?;
    let mut local = LocalMedia::new(loopback, rtp.local_addr()?.port());
    local.codecs = vec![sdp_codec(args.codec)];
    let mut offer_answer = OfferAnswer::new(local, seed >> 1);
    let offer = offer_answer
        .create_offer()
        .context("making the SDP offer")?;
    let target = SipUri::parse(&format!("sip:callee@{callee_addr}"))
        .context("naming the answering phone")?;
    let peer_name = format!("callee@{}", target.host);
    report.emit(Event::Dialing {
        target: target.to_string(),
        protocol: "sip",
    });
    let call = caller.ua.dial(
        Instant::now(),
        Uri::Sip(target),
        callee_addr,
        offer.to_string().into_bytes(),
    );

    let mut buf = vec![0u8; 65_536];
    let mut answering: Option<Answering> = None;
    let mut answer: Option<Negotiated> = None;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    while answer.is_none() {
        let now = Instant::now();
        if now > deadline {
            bail!(
                "the demo's SIP call was not answered in {} s",
                SETUP_TIMEOUT.as_secs()
            );
        }
        caller.receive(now, &mut buf);
        callee.receive(now, &mut buf);
        while let Some(event) = callee.ua.poll_event() {
            match event {
                UaEvent::Incoming {
                    call,
                    from,
                    offer,
                    source,
                    ..
                } => {
                    let from = match &from.display_name {
                        Some(name) => format!("\"{name}\" <{}>", from.uri),
                        None => from.uri.to_string(),
                    };
                    report.emit(Event::Incoming {
                        peer: source.to_string(),
                        from: Some(from),
                        name: None,
                    });
                    let (rtp, rtcp) = bind_media(loopback)?;
                    let local = LocalMedia::new(loopback, rtp.local_addr()?.port());
                    let mut offer_answer = OfferAnswer::new(local, seed.rotate_left(7));
                    let reply = offer
                        .and_then(|o| String::from_utf8(o).ok())
                        .and_then(|text| SessionDescription::parse(&text).ok())
                        .context("the demo's INVITE carries no usable SDP")?;
                    let reply = offer_answer
                        .handle_offer(&reply)
                        .context("answering the demo's SDP offer")?;
                    callee.ua.ring(now, call)?;
                    callee
                        .ua
                        .accept(now, call, reply.sdp.to_string().into_bytes())?;
                    answering = Some(Answering {
                        negotiated: reply.negotiated,
                        rtp,
                        rtcp,
                    });
                }
                UaEvent::Malformed { source, error } => {
                    tracing::debug!("dropped a malformed SIP message from {source}: {error}");
                }
                _ => {}
            }
        }
        while let Some(event) = caller.ua.poll_event() {
            match event {
                UaEvent::Progress { status, reason, .. } if status == 180 || status == 181 => {
                    report.emit(Event::Ringing { status, reason })
                }
                UaEvent::Progress { status, reason, .. } => {
                    report.emit(Event::Trying { status, reason })
                }
                UaEvent::Answered { body, .. } => {
                    report.emit(Event::Answered {
                        status: 200,
                        reason: "OK".into(),
                    });
                    let sdp = String::from_utf8(body)
                        .ok()
                        .and_then(|text| SessionDescription::parse(&text).ok())
                        .context("the demo's answer carries no usable SDP")?;
                    answer = Some(
                        offer_answer
                            .handle_answer(&sdp)
                            .context("taking the demo's SDP answer")?,
                    );
                }
                UaEvent::Failed { status, reason, .. } => {
                    report.emit(Event::Ended {
                        status,
                        reason: reason.clone(),
                    });
                    bail!("the answering phone refused the demo call: {status} {reason}");
                }
                UaEvent::Malformed { source, error } => {
                    tracing::debug!("dropped a malformed SIP message from {source}: {error}");
                }
                _ => {}
            }
        }
        caller.flush();
        callee.flush();
        std::thread::sleep(TICK);
    }

    let answer = answer.expect("the loop ends with the answer");
    let answering = answering.expect("the callee answered before the caller had the answer");
    let (setup, callee_rtcp) = media_setup(
        &answering.negotiated,
        MicSource::Clip(voices.callee.clone(), voices.rate),
        AudioSpec::Wav(args.out.clone()),
        String::new(),
        answering.rtcp,
        seed.rotate_left(41) ^ 0x5bd1_e995,
    )?;
    let callee_media = rtp_call::start_with_rtcp(answering.rtp, callee_rtcp, setup);
    let (setup, rtcp) = media_setup(
        &answer,
        MicSource::Clip(voices.caller.clone(), voices.rate),
        AudioSpec::Wav(voices.caller_heard.to_owned()),
        String::new(),
        rtcp,
        seed,
    )?;
    let caller_media = rtp_call::start_with_rtcp(rtp, rtcp, setup);
    report.emit(Event::Connected {
        peer: peer_name,
        protocol: "sip",
        role: "caller",
    });
    let sip = SipPair {
        caller,
        callee,
        call,
        hung_up: false,
        bye_answered_after: None,
        buf,
    };
    Ok((caller_media, callee_media, sip))
}

/// The answering phone's half of the call while the caller waits for the
/// answer.
struct Answering {
    negotiated: Negotiated,
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
}

/// The two SIP phones of a call that is up: kept going (ACK, BYE) by the
/// demo's loop.
struct SipPair {
    caller: Agent,
    callee: Agent,
    /// The call, as the caller knows it.
    call: CallRef,
    hung_up: bool,
    /// The caller's datagram count when the callee answered the BYE: the
    /// BYE is complete once the caller has read past it.
    bye_answered_after: Option<u64>,
    buf: Vec<u8>,
}

impl SipPair {
    /// One turn of both agents: datagrams in, timers, events, datagrams out.
    fn drive(&mut self, report: &Reporter, caller_media: &Call, callee_media: &Call) {
        let now = Instant::now();
        self.caller.receive(now, &mut self.buf);
        self.callee.receive(now, &mut self.buf);
        while let Some(event) = self.callee.ua.poll_event() {
            if let UaEvent::Ended { reason, .. } = event {
                report.emit(Event::Ended {
                    status: 200,
                    reason: describe(reason).into(),
                });
                if reason == EndReason::RemoteBye {
                    callee_media.hang_up(HangupReason::Remote);
                    self.bye_answered_after = Some(self.caller.received);
                } else {
                    callee_media.hang_up(HangupReason::Lost);
                }
            }
        }
        while let Some(event) = self.caller.ua.poll_event() {
            if let UaEvent::Ended { reason, .. } = event {
                report.emit(Event::Ended {
                    status: 200,
                    reason: describe(reason).into(),
                });
                if reason == EndReason::RemoteBye {
                    caller_media.hang_up(HangupReason::Remote);
                }
            }
        }
        self.caller.flush();
        self.callee.flush();
    }

    /// The caller hangs up: BYE.
    fn hang_up(&mut self) {
        if !self.hung_up {
            self.hung_up = true;
            if let Err(e) = self.caller.ua.hangup(Instant::now(), self.call) {
                tracing::debug!("hanging up the demo call: {e}");
            }
        }
    }

    /// Hangs up if the caller has not, and waits (a while at most) for the
    /// BYE to be answered.
    fn finish(mut self, report: &Reporter, caller_media: &Call, callee_media: &Call) {
        self.hang_up();
        let deadline = Instant::now() + LINGER;
        while !self.bye_complete() && Instant::now() < deadline {
            self.drive(report, caller_media, callee_media);
            std::thread::sleep(TICK);
        }
        if !self.bye_complete() {
            report.emit(Event::Error {
                message: format!("the demo's BYE was not answered in {} s", LINGER.as_secs()),
            });
        }
        // The callee's media ends with the BYE; it must not outlive a lost one.
        callee_media.hang_up(HangupReason::Remote);
    }

    fn bye_complete(&self) -> bool {
        self.bye_answered_after
            .is_some_and(|n| self.caller.received > n)
    }
}

/// A SIP user agent on its own loopback socket.
struct Agent {
    ua: UserAgent,
    socket: UdpSocket,
    /// Datagrams read so far.
    received: u64,
}

impl Agent {
    fn bind(user: &str, proxy: Option<SocketAddr>, seed: u64) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("opening a loopback SIP port")?;
        socket.set_nonblocking(true)?;
        let ua = UserAgent::new(UaConfig {
            local: socket.local_addr()?,
            user: user.into(),
            display_name: None,
            domain: None,
            only_user: None,
            user_agent: USER_AGENT.into(),
            tcp: false,
            outbound_proxy: proxy,
            credentials: None,
            timers: Timers::default(),
            seed,
        });
        Ok(Agent {
            ua,
            socket,
            received: 0,
        })
    }

    fn addr(&self) -> SocketAddr {
        self.ua.config().local
    }

    /// Hands the agent what arrived and fires its due timers.
    fn receive(&mut self, now: Instant, buf: &mut [u8]) {
        while let Ok((n, from)) = self.socket.recv_from(buf) {
            self.received += 1;
            self.ua.handle_datagram(now, from, &buf[..n]);
        }
        if self.ua.poll_timeout().is_some_and(|t| t <= now) {
            self.ua.handle_timeout(now);
        }
    }

    /// Sends what the agent has to send.
    fn flush(&mut self) {
        while let Some(t) = self.ua.poll_transmit() {
            if let Err(e) = self.socket.send_to(&t.data, t.to) {
                tracing::debug!("sending SIP to {} failed: {e}", t.to);
            }
        }
    }
}

fn describe(reason: EndReason) -> &'static str {
    match reason {
        EndReason::RemoteBye => "BYE from the other side",
        EndReason::NoAck => "no ACK for our answer",
        EndReason::Local | EndReason::Cancelled => "hung up",
    }
}

fn sdp_codec(codec: Codec) -> SdpCodec {
    match codec {
        Codec::Opus => SdpCodec::Opus,
        Codec::Pcmu => SdpCodec::Pcmu,
        Codec::Pcma => SdpCodec::Pcma,
    }
}

/// Lines up a recording against what was sent: (delay in ms, correlation).
///
/// The delay is where the whole signal lines up. The correlation is the
/// median over half-second pieces, each lined up on its own near that
/// delay: the jitter buffer may stretch time by a few milliseconds mid-call
/// (more so on a loaded machine), which would spoil one correlation of the
/// whole file without anything being lost.
fn measure(sent: &[i16], recording: &Path, rate: u32) -> anyhow::Result<Option<(f64, f64)>> {
    let (received, _) = media::audio::wav::read_mono(recording)?;
    let max_lag = (MAX_DELAY.as_secs_f64() * f64::from(rate)) as usize;
    let Some(whole) = correlate::align(sent, &received, max_lag) else {
        return Ok(None);
    };
    let piece = rate as usize / 2;
    let search = rate as usize / 20;
    let mut pieces: Vec<f64> = sent
        .chunks_exact(piece)
        .enumerate()
        .filter(|(_, p)| p.iter().any(|&s| s.unsigned_abs() > 1_000))
        .filter_map(|(i, p)| {
            let from = (i * piece + whole.lag).saturating_sub(search);
            let to = (i * piece + whole.lag + piece + search).min(received.len());
            (from < to)
                .then(|| correlate::align(p, &received[from..to], 2 * search))
                .flatten()
                .map(|a| a.correlation)
        })
        .collect();
    pieces.sort_by(f64::total_cmp);
    let correlation = pieces
        .get(pieces.len() / 2)
        .copied()
        .unwrap_or(whole.correlation);
    let ms = (whole.lag_ms(rate) * 10.0).round() / 10.0;
    Ok(Some((ms, (correlation * 1000.0).round() / 1000.0)))
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
