//! `ipphone call` and `ipphone listen` over SIP: the event loop around the
//! sans-IO user agent ([`proto::sip::ua`]) and offer/answer
//! ([`proto::sdp`]), with the RTP media engine ([`crate::rtp_call`]) for
//! the audio once a call is up.
//!
//! One thread, one SIP port (UDP, and TCP beside it): messages in, the agent's timers,
//! its datagrams out, its events turned into media and into what the person
//! and the scripts see. The caller sends all its SIP to the address it
//! dialled (as to an outbound proxy), on a connected socket, so that
//! "nothing listens there" comes back at once as an ICMP error.
//!
//! Between events the loop sleeps ([`SipNet::wait`]) until a message
//! arrives, the call or the terminal has news (they wake it), or the next
//! thing falls due: the agent's timers, an answer or a hang-up by the clock,
//! the stats.

use std::io::{BufRead, ErrorKind, IsTerminal};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::Context;
use media::audio::AudioSpec;
use media::dsp::tones::ToneName;
use proto::sdp::codec::Codec as SdpCodec;
use proto::sdp::model::SessionDescription;
use proto::sdp::offer_answer::{LocalMedia, Negotiated, OfferAnswer};
use proto::sip::digest::Password;
use proto::sip::message::{Host, Message, SipUri, StreamItem, Uri};
use proto::sip::transaction::Timers;
use proto::sip::ua::{CallRef, EndReason, UaConfig, UaEvent, UserAgent};

use crate::call::{Call, CallEnd, MicSource, Waker};
use crate::cli::{CallArgs, ListenArgs, SipTransport, exit};
use crate::config::{Account, Config};
use crate::contacts::Screen;
use crate::events::{Event, HangupReason, Reporter};
use crate::phone::{Interrupt, report_end};
use crate::ring::Ringer;
use crate::rtp_call::{self, Codec, RtpSetup, Signalled};
use crate::screen::{Action, Guard};
use crate::sip_net::{Incoming, SipNet};
use crate::voicemail;

/// The longest the loop sleeps with nothing due: Ctrl-C sets a flag, and a
/// signal that lands on another thread does not cut the sleep short.
const MAX_WAIT: Duration = Duration::from_millis(250);
/// Past a deadline that is checked with `>`.
const JUST_AFTER: Duration = Duration::from_millis(1);
/// How long a caller hears the busy tone before it gives up.
const BUSY_TONE: Duration = Duration::from_secs(3);
/// How long a phone that hung up waits for its BYE to be answered.
const LINGER: Duration = Duration::from_secs(4);
const STATS_EVERY: Duration = Duration::from_secs(2);
const USER_AGENT: &str = concat!("ipphone/", env!("CARGO_PKG_VERSION"));

/// Whom `ipphone call` dials: `sip:user@host[:port]`, `user@host[:port]`
/// or `host:port`.
#[derive(Debug, Clone)]
pub struct Target {
    pub uri: SipUri,
    /// Where its requests go.
    pub addr: SocketAddr,
}

impl Target {
    pub fn parse(text: &str) -> Result<Self, String> {
        let uri = parse_uri(text)?;
        Self::direct(uri)
    }

    /// A target reached through an account's proxy: `bob` is
    /// `sip:bob@<domain>`.
    fn via_account(text: &str, account: &Account) -> Result<Self, String> {
        let uri = if is_bare_name(text) {
            parse_uri(&format!("{text}@{}", account.domain))?
        } else {
            parse_uri(text)?
        };
        let addr = account.proxy_addr().map_err(|e| format!("{e:#}"))?;
        Ok(Target { uri, addr })
    }

    fn direct(uri: SipUri) -> Result<Self, String> {
        let port = uri.port.unwrap_or(5060);
        let addr = match &uri.host {
            Host::Ipv4(ip) => SocketAddr::new(IpAddr::V4(*ip), port),
            Host::Ipv6(ip) => SocketAddr::new(IpAddr::V6(*ip), port),
            Host::Domain(name) => (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot find {name}: {e}"))?
                .next()
                .ok_or_else(|| format!("{name} resolves to no address"))?,
        };
        Ok(Target { uri, addr })
    }

    /// `user@host` for messages.
    pub fn name(&self) -> String {
        match &self.uri.user {
            Some(user) => format!("{user}@{}", self.uri.host),
            None => self.uri.host.to_string(),
        }
    }
}

fn parse_uri(text: &str) -> Result<SipUri, String> {
    let with_scheme = if text.starts_with("sip:") || text.starts_with("sips:") {
        text.to_owned()
    } else {
        format!("sip:{text}")
    };
    let uri = SipUri::parse(&with_scheme)
        .map_err(|e| format!("{text} is not an address to call ({e})"))?;
    if uri.secure {
        return Err(format!("{text}: sips (SIP over TLS) is not supported yet"));
    }
    Ok(uri)
}

/// A name with no host: `bob`.
fn is_bare_name(text: &str) -> bool {
    !text.contains(['@', ':', '.', '['])
}

/// The account a call goes through: the one named, or the first one for a
/// bare name or an address at its domain.
fn account_for_call(config: &Config, args: &CallArgs) -> anyhow::Result<Option<Account>> {
    if let Some(name) = &args.account {
        return Ok(config.account(Some(name))?.cloned());
    }
    let Some(first) = config.account(None)? else {
        return Ok(None);
    };
    let at_domain = parse_uri(&args.target)
        .is_ok_and(|uri| uri.host.to_string().eq_ignore_ascii_case(&first.domain));
    Ok((is_bare_name(&args.target) || at_domain).then(|| first.clone()))
}

/// `ipphone call` over SIP.
pub fn call(args: &CallArgs, interrupt: &Interrupt, report: &Reporter) -> anyhow::Result<u8> {
    let config = Config::load(args.config.as_deref())?;
    let account = account_for_call(&config, args)?;
    let target = match &account {
        Some(account) => Target::via_account(&args.target, account),
        None => Target::parse(&args.target),
    };
    let target = match target {
        Ok(t) => t,
        Err(message) => {
            report.emit(Event::Error { message });
            return Ok(exit::UNREACHABLE);
        }
    };
    let credentials = match &account {
        Some(account) => account
            .password()?
            .map(|pw| (account.user.clone(), Password::new(pw))),
        None => None,
    };
    let tcp = args.transport == SipTransport::Tcp
        || target
            .uri
            .transport()
            .is_some_and(|t| t.eq_ignore_ascii_case("tcp"));
    let unspecified = unspecified_like(target.addr.ip());
    let socket = UdpSocket::bind((unspecified, 0)).context("opening the SIP socket")?;
    socket
        .connect(target.addr)
        .with_context(|| format!("cannot send to {}", target.addr))?;
    let socket = if tcp {
        // Over TCP the UDP socket only holds the port (and the TCP
        // listener beside it); the connection carries the call.
        UdpSocket::bind((socket.local_addr()?.ip(), 0)).context("opening the SIP socket")?
    } else {
        socket
    };
    let local = socket.local_addr().context("reading the SIP address")?;
    let mut net = SipNet::new(socket).context("opening the SIP socket")?;
    if tcp && let Err(e) = net.connect(target.addr) {
        let code = if e.kind() == ErrorKind::ConnectionRefused {
            exit::REFUSED
        } else {
            exit::UNREACHABLE
        };
        report.emit(Event::Error {
            message: format!(
                "cannot reach {} over TCP at {}: {e}",
                target.name(),
                target.addr
            ),
        });
        return Ok(code);
    }
    let (rtp, rtcp) = bind_media(local.ip())?;
    let rtp_port = rtp.local_addr()?.port();
    let seed = crate::phone::seed();
    let mut ua = UserAgent::new(UaConfig {
        local,
        user: account.as_ref().map_or_else(whoami, |a| a.user.clone()),
        display_name: account.as_ref().and_then(|a| a.display_name.clone()),
        domain: account.as_ref().map(|a| a.domain.clone()),
        only_user: None,
        user_agent: USER_AGENT.into(),
        tcp,
        outbound_proxy: Some(target.addr),
        credentials,
        timers: Timers::default(),
        seed,
    });
    let mut media = LocalMedia::new(local.ip(), rtp_port);
    if let Some(codec) = args.codec {
        media.codecs = vec![sdp_codec(codec)];
    }
    let mut oa = OfferAnswer::new(media, seed >> 1);
    let offer = oa.create_offer().context("making the SDP offer")?;
    report.emit(Event::Dialing {
        target: args.target.clone(),
        protocol: "sip",
    });
    let started = Instant::now();
    let call = ua.dial(
        started,
        Uri::Sip(target.uri.clone()),
        target.addr,
        offer.to_string().into_bytes(),
    );
    let mut rtp = Some((rtp, rtcp));
    let typed = std::io::stdin()
        .is_terminal()
        .then(|| terminal_input(net.waker().clone()));
    let mut ringback: Option<Ringer> = None;
    let mut live: Option<Call> = None;
    let mut outcome: Option<(u8, Option<CallEnd>)> = None;
    let mut hung_up_at: Option<Instant> = None;
    let mut last_stats = Instant::now();
    let mut incoming = Vec::new();
    loop {
        let now = Instant::now();
        // SIP in.
        net.poll(&mut incoming);
        for arrived in incoming.drain(..) {
            match arrived {
                Incoming::Datagram(from, data) => ua.handle_datagram(now, from, &data),
                Incoming::Stream(from, item) => ua.handle_stream_item(now, from, item),
                Incoming::Refused if outcome.is_none() && live.is_none() => {
                    let message = format!(
                        "{} refused the call: nothing accepts SIP at {}",
                        target.name(),
                        target.addr
                    );
                    report.emit(Event::Error {
                        message: message.clone(),
                    });
                    report.emit(Event::Hangup {
                        reason: HangupReason::Refused,
                        detail: Some(message),
                        seconds: 0.0,
                        traffic: Default::default(),
                        rtp: None,
                    });
                    return Ok(exit::REFUSED);
                }
                Incoming::Refused => {}
            }
        }
        if ua.poll_timeout().is_some_and(|t| t <= now) {
            ua.handle_timeout(now);
        }
        while let Some(event) = ua.poll_event() {
            match event {
                UaEvent::Progress {
                    status,
                    reason,
                    body,
                    ..
                } if status == 180 || status == 181 => {
                    // Ringback, unless the far end plays its own (early media).
                    if body.is_none() && ringback.is_none() {
                        ringback = Ringer::start(
                            &args.audio.speaker,
                            &tone_plan(&args.audio),
                            ToneName::Ringback,
                        );
                    }
                    report.emit(Event::Ringing { status, reason })
                }
                UaEvent::Progress { status, reason, .. } => {
                    report.emit(Event::Trying { status, reason })
                }
                UaEvent::Answered { body, .. } => {
                    // The tone stops, and lets go of the speaker, first.
                    drop(ringback.take());
                    report.emit(Event::Answered {
                        status: 200,
                        reason: "OK".into(),
                    });
                    let negotiated = String::from_utf8(body)
                        .ok()
                        .and_then(|text| SessionDescription::parse(&text).ok())
                        .ok_or_else(|| "the answer carries no usable SDP".to_owned())
                        .and_then(|sdp| oa.handle_answer(&sdp).map_err(|e| e.to_string()));
                    match negotiated {
                        Ok(negotiated) => {
                            let (rtp, rtcp) = rtp.take().expect("media sockets are used once");
                            match start_media(rtp, rtcp, &negotiated, args, seed) {
                                Ok(media) => {
                                    report.emit(Event::Connected {
                                        peer: target.name(),
                                        protocol: "sip",
                                        role: "caller",
                                    });
                                    media.wake_on_news(net.waker());
                                    live = Some(media);
                                }
                                Err(e) => {
                                    let _ = ua.hangup(now, call);
                                    report.emit(Event::Error {
                                        message: e.to_string(),
                                    });
                                    outcome = Some((exit::FAILURE, None));
                                    hung_up_at = Some(now);
                                }
                            }
                        }
                        Err(message) => {
                            let _ = ua.hangup(now, call);
                            report.emit(Event::Error {
                                message: format!("{}: {message}", target.name()),
                            });
                            outcome = Some((exit::FAILURE, None));
                            hung_up_at = Some(now);
                        }
                    }
                }
                UaEvent::Failed { status, reason, .. } => {
                    drop(ringback.take());
                    if status == 486 || status == 600 {
                        // A moment of the busy tone, so a person hears why.
                        let busy = Ringer::start(
                            &args.audio.speaker,
                            &tone_plan(&args.audio),
                            ToneName::Busy,
                        );
                        if busy.is_some() {
                            std::thread::sleep(BUSY_TONE);
                        }
                    }
                    report.emit(Event::Ended {
                        status,
                        reason: reason.clone(),
                    });
                    let (code, why, detail) = failure(status, &reason, &target, started);
                    report.emit(Event::Hangup {
                        reason: why,
                        detail: Some(detail),
                        seconds: 0.0,
                        traffic: Default::default(),
                        rtp: None,
                    });
                    outcome = Some((code, None));
                }
                UaEvent::Ended { reason, .. } => {
                    report.emit(Event::Ended {
                        status: 200,
                        reason: match reason {
                            EndReason::RemoteBye => "BYE from the other side".into(),
                            EndReason::NoAck => "no ACK for our answer".into(),
                            EndReason::Local | EndReason::Cancelled => "hung up".into(),
                        },
                    });
                    if let Some(media) = &live
                        && reason == EndReason::RemoteBye
                    {
                        media.hang_up(HangupReason::Remote);
                    }
                }
                UaEvent::Reoffer { call, offer } => {
                    answer_reoffer(&mut ua, now, call, &mut oa, &offer, live.as_ref(), report)
                }
                UaEvent::Malformed { source, error } => {
                    tracing::debug!("dropped a malformed SIP message from {source}: {error}");
                }
                _ => {}
            }
        }
        // Hanging up: Ctrl-C, --duration, or the media ended by itself.
        let media_done = live.as_ref().is_some_and(Call::is_finished);
        let signal = interrupt.take();
        let timeout = hung_up_at.is_none()
            && live.is_none()
            && outcome.is_none()
            && now.duration_since(started) > Duration::from_secs_f64(args.timeout.max(1.0));
        let over_time = args.duration.is_some_and(|d| {
            live.as_ref()
                .is_some_and(|m| m.elapsed().as_secs_f64() >= d)
        });
        if hung_up_at.is_none() && (signal || over_time || media_done || timeout) {
            hung_up_at = Some(now);
            drop(ringback.take());
            let _ = ua.hangup(now, call);
            if let Some(media) = &live {
                media.hang_up(if over_time {
                    HangupReason::Duration
                } else {
                    HangupReason::Local
                });
            }
            if live.is_none() && outcome.is_none() {
                let (why, detail) = if timeout {
                    (
                        HangupReason::Unanswered,
                        format!("{} did not answer in {:.0} s", target.name(), args.timeout),
                    )
                } else {
                    (HangupReason::Local, "cancelled".to_owned())
                };
                report.emit(Event::Hangup {
                    reason: why.clone(),
                    detail: Some(detail),
                    seconds: 0.0,
                    traffic: Default::default(),
                    rtp: None,
                });
                let code = if timeout { exit::UNREACHABLE } else { exit::OK };
                outcome = Some((code, None));
            }
        }
        if let Some(media) = &live
            && last_stats.elapsed() >= STATS_EVERY
        {
            last_stats = Instant::now();
            report.emit(Event::Stats {
                seconds: (media.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                traffic: media.traffic(),
                rtp: media.rtp_stats(),
            });
        }
        if let Some(media) = &live
            && let Some(Ok(Typed::Digits(digits))) = typed.as_ref().map(Receiver::try_recv)
        {
            media.send_digits(&digits);
        }
        if let Some(media) = &live {
            for digit in media.take_digits().chars() {
                report.emit(Event::Dtmf {
                    digit: digit.to_string(),
                });
            }
        }
        flush(&mut ua, &mut net);
        // The end: the media finished, and the signalling is done or has
        // had its time.
        let media_over = live.as_ref().is_none_or(Call::is_finished);
        let signalling_over = ua.is_settled()
            || hung_up_at.is_some_and(|at| now.duration_since(at) > LINGER)
            || (outcome.is_some() && live.is_none());
        if media_over && signalling_over && (outcome.is_some() || live.is_some()) {
            break;
        }
        let unanswered = (hung_up_at.is_none() && live.is_none() && outcome.is_none())
            .then(|| after(started + JUST_AFTER, args.timeout.max(1.0)))
            .flatten();
        let over_time = live.as_ref().and_then(|media| {
            let started = now.checked_sub(media.elapsed())?;
            after(started, args.duration?)
        });
        let deadline = [
            ua.poll_timeout(),
            unanswered,
            live.as_ref().map(|_| last_stats + STATS_EVERY),
            over_time,
            hung_up_at.map(|at| at + LINGER + JUST_AFTER),
            Some(now + MAX_WAIT),
        ];
        net.wait(deadline.into_iter().flatten().min().unwrap_or(now));
    }
    if let Some(media) = live {
        let end = media.join();
        let code = match end.reason {
            HangupReason::Error => exit::FAILURE,
            _ => exit::OK,
        };
        report_end(report, end);
        return Ok(code);
    }
    Ok(outcome.map_or(exit::FAILURE, |(code, _)| code))
}

/// What a final SIP failure means to a person and to the exit status.
fn failure(
    status: u16,
    reason: &str,
    target: &Target,
    started: Instant,
) -> (u8, HangupReason, String) {
    let who = target.name();
    match status {
        486 | 600 => (exit::BUSY, HangupReason::Busy, format!("{who} is busy")),
        603 | 403 => (
            exit::DECLINED,
            HangupReason::Declined,
            format!("{who} declined the call"),
        ),
        408 => (
            exit::UNREACHABLE,
            HangupReason::Unanswered,
            format!(
                "{who} did not answer (no response to INVITE after {:.0} s)",
                started.elapsed().as_secs_f64()
            ),
        ),
        480 | 487 => (
            exit::UNREACHABLE,
            HangupReason::Unanswered,
            format!("{who} did not answer ({status} {reason})"),
        ),
        404 | 410 | 484 => (
            exit::UNREACHABLE,
            HangupReason::Rejected,
            format!("{who} is not known there ({status} {reason})"),
        ),
        488 | 606 => (
            exit::FAILURE,
            HangupReason::Rejected,
            format!("{who} has no codec in common with us ({status} {reason})"),
        ),
        401 | 407 => (
            exit::FAILURE,
            HangupReason::Rejected,
            format!("{who}: {reason} ({status})"),
        ),
        _ => (
            exit::FAILURE,
            HangupReason::Rejected,
            format!("{who} refused the call: {status} {reason}"),
        ),
    }
}

/// `ipphone listen` over SIP: rings, answers (by itself with
/// `--auto-answer`, else when the person says so), takes one call at a time.
pub fn listen(args: &ListenArgs, interrupt: &Interrupt, report: &Reporter) -> anyhow::Result<u8> {
    let config = Config::load(args.config.as_deref())?;
    let account = config.account(args.account.as_deref())?.cloned();
    // Callers' names, and per-contact screening.
    let book = match crate::contacts::default_path() {
        Some(path) => crate::contacts::Book::load(&path)?,
        None => crate::contacts::Book::default(),
    };
    let bind = args.bind.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 5060)));
    let socket =
        UdpSocket::bind(bind).with_context(|| format!("cannot listen for SIP on {bind}"))?;
    let mut local = socket.local_addr()?;
    if local.ip().is_unspecified() {
        // Contact and Via need an address others can reach.
        local.set_ip(primary_address(local.ip()));
    }
    let mut net = SipNet::new(socket).context("listening for SIP")?;
    if !net.has_tcp() {
        tracing::warn!("TCP port {} is taken: SIP over UDP only", local.port());
    }
    let seed = crate::phone::seed();
    let credentials = match &account {
        Some(account) => account
            .password()?
            .map(|pw| (account.user.clone(), Password::new(pw))),
        None => None,
    };
    let user = match (&args.user, &account) {
        (Some(user), _) => user.clone(),
        (None, Some(account)) => account.user.clone(),
        (None, None) => whoami(),
    };
    let mut ua = UserAgent::new(UaConfig {
        local,
        user,
        display_name: account.as_ref().and_then(|a| a.display_name.clone()),
        domain: account.as_ref().map(|a| a.domain.clone()),
        only_user: args.user.clone(),
        user_agent: USER_AGENT.into(),
        tcp: false,
        outbound_proxy: None,
        credentials,
        timers: Timers::default(),
        seed,
    });
    report.emit(Event::Listening {
        addr: net.local_addr()?.to_string(),
        protocol: "sip",
    });
    let mut registration = None;
    if let Some(account) = &account {
        let aor = parse_uri(&format!("{}@{}", account.user, account.domain))
            .map_err(anyhow::Error::msg)?;
        let registrar = account.registrar_addr()?;
        registration = Some(ua.register(Instant::now(), registrar, aor, account.expires));
    }
    let mut registered_once = false;
    let answers = std::io::stdin()
        .is_terminal()
        .then(|| terminal_input(net.waker().clone()));
    let mut ringing: Option<Ringing> = None;
    let mut live: Option<(CallRef, Call, OfferAnswer, Option<Leaving>)> = None;
    let mut calls_done = 0u32;
    let mut last_stats = Instant::now();
    let mut incoming = Vec::new();
    let mut guard = Guard::default();
    loop {
        let now = Instant::now();
        receive(&mut ua, &mut net, &mut incoming, now, Some(&mut guard));
        if ua.poll_timeout().is_some_and(|t| t <= now) {
            ua.handle_timeout(now);
        }
        while let Some(event) = ua.poll_event() {
            match event {
                UaEvent::Incoming {
                    call,
                    from,
                    offer,
                    source,
                    ..
                } => {
                    let peer = source.to_string();
                    let caller_id = match &from.uri {
                        Uri::Sip(u) => {
                            format!("{}@{}", u.user.as_deref().unwrap_or_default(), u.host)
                        }
                        other => other.to_string(),
                    };
                    let contact = crate::contacts::contact_for(&book, &from.uri.to_string());
                    let screen = contact.and_then(|c| c.screen);
                    // A contact's own rule first, then the screening rules.
                    let action = match screen {
                        Some(Screen::Block) => Action::Reject,
                        Some(Screen::Allow) => Action::Ring,
                        Some(Screen::Voicemail) => Action::Voicemail,
                        None => config.screening.decide(&caller_id, source.ip()),
                    };
                    if action == Action::Reject {
                        let _ = ua.reject(now, call, config.screening.reject_status);
                        report.emit(Event::Refused {
                            peer: format!("{} ({peer})", from.uri),
                            reason: "screened",
                        });
                        continue;
                    }
                    if ringing.is_some() || live.is_some() {
                        let _ = ua.reject(now, call, 486);
                        report.emit(Event::Refused {
                            peer,
                            reason: "busy",
                        });
                        continue;
                    }
                    let caller = match &from.display_name {
                        Some(name) => format!("\"{name}\" <{}>", from.uri),
                        None => from.uri.to_string(),
                    };
                    report.emit(Event::Incoming {
                        peer: peer.clone(),
                        from: Some(caller),
                        name: contact.map(|c| c.name.clone()),
                    });
                    let (rtp, rtcp) = bind_media(local.ip())?;
                    let mut media = LocalMedia::new(local.ip(), rtp.local_addr()?.port());
                    if let Some(codec) = args.codec {
                        media.codecs = vec![sdp_codec(codec)];
                    }
                    let mut oa =
                        OfferAnswer::new(media, seed.rotate_left(7) ^ u64::from(calls_done));
                    let answer = offer
                        .and_then(|o| String::from_utf8(o).ok())
                        .and_then(|text| SessionDescription::parse(&text).ok())
                        .ok_or_else(|| "the call offers no usable SDP".to_owned())
                        .and_then(|sdp| oa.handle_offer(&sdp).map_err(|e| e.to_string()));
                    match answer {
                        Ok(answer) => {
                            // The answering machine takes it at once: no ringing.
                            if action != Action::Voicemail {
                                let _ = ua.ring(now, call);
                                report.emit(Event::Ringing {
                                    status: 180,
                                    reason: "Ringing".into(),
                                });
                            }
                            if args.auto_answer.is_none() && action != Action::Voicemail {
                                eprintln!(
                                    "{}",
                                    if answers.is_some() {
                                        "answer? [y]es / [n]o / [v]oicemail (digits during a call go as DTMF)"
                                    } else {
                                        "ringing (no terminal to answer on: use --auto-answer)"
                                    }
                                );
                            }
                            ringing = Some(Ringing {
                                call,
                                oa,
                                from: from.uri.to_string(),
                                to_voicemail: action == Action::Voicemail,
                                ringer: if args.auto_answer == Some(0.0)
                                    || action == Action::Voicemail
                                {
                                    None
                                } else {
                                    Ringer::start(
                                        &args.audio.speaker,
                                        &tone_plan(&args.audio),
                                        ToneName::Ringtone,
                                    )
                                },
                                since: now,
                                sdp: answer.sdp.to_string().into_bytes(),
                                negotiated: answer.negotiated,
                                sockets: Some((rtp, rtcp)),
                                peer,
                            });
                        }
                        Err(message) => {
                            let _ = ua.reject(now, call, 488);
                            report.emit(Event::Ended {
                                status: 488,
                                reason: "Not Acceptable Here".into(),
                            });
                            report.emit(Event::Error {
                                message: format!("refused a call from {peer}: {message}"),
                            });
                        }
                    }
                }
                UaEvent::Ended { call, reason } => {
                    if ringing.as_ref().is_some_and(|r| r.call == call) {
                        ringing = None;
                        report.emit(Event::Ended {
                            status: 487,
                            reason: "the caller hung up before the answer".into(),
                        });
                        report.emit(Event::Hangup {
                            reason: HangupReason::Remote,
                            detail: Some("the caller gave up".into()),
                            seconds: 0.0,
                            traffic: Default::default(),
                            rtp: None,
                        });
                        calls_done += 1;
                    }
                    if let Some((live_call, media, _, _)) = &live
                        && *live_call == call
                    {
                        report.emit(Event::Ended {
                            status: 200,
                            reason: match reason {
                                EndReason::RemoteBye => "BYE from the other side".into(),
                                EndReason::NoAck => "no ACK for our answer".into(),
                                _ => "hung up".into(),
                            },
                        });
                        media.hang_up(if reason == EndReason::RemoteBye {
                            HangupReason::Remote
                        } else {
                            HangupReason::Lost
                        });
                    }
                }
                UaEvent::Reoffer { call, offer } => match &mut live {
                    Some((live_call, media, oa, _)) if *live_call == call => {
                        answer_reoffer(&mut ua, now, call, oa, &offer, Some(&*media), report)
                    }
                    _ => {
                        let _ = ua.reject_reoffer(now, call, 488);
                    }
                },
                UaEvent::Registered { expires, .. } if !registered_once => {
                    registered_once = true;
                    let account = account.as_ref().expect("registered with an account");
                    report.emit(Event::Registered {
                        aor: format!("sip:{}@{}", account.user, account.domain),
                        expires,
                    });
                }
                UaEvent::RegistrationFailed { status, reason, .. } => {
                    let account = account.as_ref().expect("registered with an account");
                    report.emit(Event::Error {
                        message: format!(
                            "registering sip:{}@{} failed: {reason} ({status})",
                            account.user, account.domain
                        ),
                    });
                    if !registered_once {
                        flush(&mut ua, &mut net);
                        return Ok(exit::FAILURE);
                    }
                }
                UaEvent::Malformed { source, error } => {
                    tracing::debug!("dropped a malformed SIP message from {source}: {error}");
                }
                _ => {}
            }
        }
        // Answering or turning away the ringing call.
        let decision = ringing.as_ref().and_then(|r| {
            let rang = now.duration_since(r.since).as_secs_f64();
            if r.to_voicemail {
                return Some(Decision::Voicemail);
            }
            if args.auto_answer.is_some_and(|after| rang >= after) {
                return Some(Decision::Answer);
            }
            if let Some(Ok(Typed::Decision(decision))) = answers.as_ref().map(Receiver::try_recv) {
                return Some(decision);
            }
            args.voicemail
                .is_some_and(|after| rang >= after)
                .then_some(Decision::Voicemail)
        });
        if decision == Some(Decision::Voicemail) {
            let mut r = ringing.take().expect("a ringing call");
            drop(r.ringer.take());
            let (rtp, rtcp) = r.sockets.take().expect("media sockets are used once");
            let started = voicemail::new_recording(&r.from).and_then(|file| {
                let mic = voicemail::greeting(args.greeting.as_deref())?;
                let (setup, rtcp) = media_setup(
                    &r.negotiated,
                    mic,
                    AudioSpec::Wav(file.clone()),
                    String::new(),
                    rtcp,
                    seed,
                )?;
                Ok((file, rtp_call::start_with_rtcp(rtp, rtcp, setup)))
            });
            match started {
                Ok((file, media)) => {
                    let _ = ua.accept(now, r.call, r.sdp);
                    report.emit(Event::Voicemail {
                        from: r.from.clone(),
                    });
                    report.emit(Event::Connected {
                        peer: r.peer,
                        protocol: "sip",
                        role: "callee",
                    });
                    let leaving = Leaving {
                        time: voicemail::now(),
                        from: r.from,
                        file,
                    };
                    media.wake_on_news(net.waker());
                    live = Some((r.call, media, r.oa, Some(leaving)));
                }
                Err(e) => {
                    let _ = ua.reject(now, r.call, 480);
                    report.emit(Event::Error {
                        message: format!("the answering machine cannot take the call: {e:#}"),
                    });
                }
            }
        } else if let Some(decision) = decision {
            let yes = decision == Decision::Answer;
            let mut r = ringing.take().expect("a ringing call");
            // The ringtone stops, and lets go of the speaker, first.
            drop(r.ringer.take());
            if yes {
                let (rtp, rtcp) = r.sockets.take().expect("media sockets are used once");
                let speaker = crate::phone::numbered(&args.audio.speaker, calls_done + 1);
                match start_listener_media(rtp, rtcp, &r.negotiated, args, speaker, seed) {
                    Ok(media) => {
                        let _ = ua.accept(now, r.call, r.sdp);
                        report.emit(Event::Answered {
                            status: 200,
                            reason: "OK".into(),
                        });
                        report.emit(Event::Connected {
                            peer: r.peer,
                            protocol: "sip",
                            role: "callee",
                        });
                        media.wake_on_news(net.waker());
                        live = Some((r.call, media, r.oa, None));
                    }
                    Err(e) => {
                        let _ = ua.reject(now, r.call, 500);
                        report.emit(Event::Error {
                            message: format!("cannot take the call: {e}"),
                        });
                    }
                }
            } else {
                let _ = ua.reject(now, r.call, 603);
                report.emit(Event::Ended {
                    status: 603,
                    reason: "Decline".into(),
                });
                calls_done += 1;
            }
        }
        if interrupt.take() {
            match (&live, &ringing) {
                (Some((call, media, _, _)), _) => {
                    let _ = ua.hangup(now, *call);
                    media.hang_up(HangupReason::Local);
                }
                (None, Some(r)) => {
                    let _ = ua.reject(now, r.call, 603);
                    report.emit(Event::Ended {
                        status: 603,
                        reason: "Decline".into(),
                    });
                    ringing = None;
                    calls_done += 1;
                }
                (None, None) => {
                    if let Some(reg) = registration.take() {
                        ua.unregister(now, reg);
                    }
                    linger(&mut ua, &mut net);
                    return Ok(exit::OK);
                }
            }
        }
        if let Some((_, media, _, _)) = &live
            && let Some(Ok(Typed::Digits(digits))) = answers.as_ref().map(Receiver::try_recv)
        {
            media.send_digits(&digits);
        }
        if let Some((call, media, _, leaving)) = &live {
            // A message has its length limit.
            if leaving.is_some()
                && media.elapsed().as_secs_f64() > args.max_message
                && !media.is_finished()
            {
                media.hang_up(HangupReason::Duration);
            }
            if media.is_finished() {
                // The media ended by itself (RTCP BYE, silence): end the dialog too.
                let _ = ua.hangup(now, *call);
                let (_, media, _, leaving) = live.take().expect("a live call");
                let end = media.join();
                let failed = end.reason == HangupReason::Error;
                if let Some(leaving) = leaving {
                    let message = voicemail::Message {
                        time: leaving.time,
                        from: leaving.from,
                        seconds: (end.duration.as_secs_f64() * 10.0).round() / 10.0,
                        file: leaving.file,
                    };
                    if let Err(e) = voicemail::record(&message) {
                        report.emit(Event::Error {
                            message: format!("cannot index the message: {e:#}"),
                        });
                    }
                    report.emit(Event::Message {
                        from: message.from.clone(),
                        seconds: message.seconds,
                        file: message.file.display().to_string(),
                    });
                }
                report_end(report, end);
                calls_done += 1;
                if failed {
                    flush(&mut ua, &mut net);
                    return Ok(exit::FAILURE);
                }
            } else if last_stats.elapsed() >= STATS_EVERY {
                last_stats = Instant::now();
                report.emit(Event::Stats {
                    seconds: (media.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                    traffic: media.traffic(),
                    rtp: media.rtp_stats(),
                });
                for digit in media.take_digits().chars() {
                    report.emit(Event::Dtmf {
                        digit: digit.to_string(),
                    });
                }
            }
        }
        flush(&mut ua, &mut net);
        if live.is_none() && ringing.is_none() && args.calls.is_some_and(|n| calls_done >= n) {
            // Let the last BYE or 200 be answered, then go.
            if let Some(reg) = registration.take() {
                ua.unregister(now, reg);
            }
            linger(&mut ua, &mut net);
            return Ok(exit::OK);
        }
        let answer_due = ringing.as_ref().and_then(|r| {
            [args.auto_answer, args.voicemail]
                .into_iter()
                .flatten()
                .filter_map(|secs| after(r.since, secs))
                .min()
        });
        let message_full = live.as_ref().and_then(|(_, media, _, leaving)| {
            leaving.as_ref()?;
            let started = now.checked_sub(media.elapsed())?;
            after(started + JUST_AFTER, args.max_message)
        });
        let deadline = [
            ua.poll_timeout(),
            answer_due,
            live.as_ref().map(|_| last_stats + STATS_EVERY),
            message_full,
            Some(now + MAX_WAIT),
        ];
        net.wait(deadline.into_iter().flatten().min().unwrap_or(now));
    }
}

/// `secs` seconds after `start`, if that is a time at all.
fn after(start: Instant, secs: f64) -> Option<Instant> {
    let wait = Duration::try_from_secs_f64(secs.max(0.0)).ok()?;
    start.checked_add(wait)
}

/// Answers the far end's new offer in a call (hold, resume): the same
/// stream, its direction followed by the media. What cannot be taken (a
/// new codec or address) is refused with 488, and the call goes on.
fn answer_reoffer(
    ua: &mut UserAgent,
    now: Instant,
    call: CallRef,
    oa: &mut OfferAnswer,
    offer: &[u8],
    media: Option<&Call>,
    report: &Reporter,
) {
    let before = oa.negotiated().cloned();
    let answer = std::str::from_utf8(offer)
        .ok()
        .and_then(|text| SessionDescription::parse(text).ok())
        .ok_or_else(|| "no usable SDP".to_owned())
        .and_then(|sdp| oa.handle_offer(&sdp).map_err(|e| e.to_string()));
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            tracing::debug!("refusing a re-offer: {e}");
            let _ = ua.reject_reoffer(now, call, 488);
            return;
        }
    };
    let same_stream = before.as_ref().is_none_or(|b| {
        b.remote_rtp == answer.negotiated.remote_rtp && b.codec == answer.negotiated.codec
    });
    if !same_stream {
        // Moving the media elsewhere mid-call is not supported yet.
        let _ = ua.reject_reoffer(now, call, 488);
        return;
    }
    let _ = ua.accept_reoffer(now, call, answer.sdp.to_string().into_bytes());
    let sending = answer.negotiated.sending();
    if let Some(media) = media {
        media.set_sending(sending);
    }
    let was_sending = before.as_ref().is_none_or(Negotiated::sending);
    if sending != was_sending {
        report.emit(Event::Hold {
            held: !sending,
            by: "remote",
        });
    }
}

/// The tone plan to use: `--tones`, else the locale's.
fn tone_plan(audio: &crate::cli::AudioArgs) -> String {
    audio
        .tones
        .clone()
        .unwrap_or_else(|| crate::tones::default_country().to_owned())
}

/// Lets what is under way finish (a BYE answered, an unregistration), for
/// [`LINGER`] at most.
fn linger(ua: &mut UserAgent, net: &mut SipNet) {
    let deadline = Instant::now() + LINGER;
    let mut incoming = Vec::new();
    flush(ua, net);
    while !ua.is_settled() && Instant::now() < deadline {
        let now = Instant::now();
        receive(ua, net, &mut incoming, now, None);
        if ua.poll_timeout().is_some_and(|t| t <= now) {
            ua.handle_timeout(now);
        }
        while ua.poll_event().is_some() {}
        flush(ua, net);
        net.wait(ua.poll_timeout().map_or(deadline, |t| t.min(deadline)));
    }
}

/// What arrived, into the agent, past the guard if there is one.
fn receive(
    ua: &mut UserAgent,
    net: &mut SipNet,
    incoming: &mut Vec<Incoming>,
    now: Instant,
    mut guard: Option<&mut Guard>,
) {
    net.poll(incoming);
    for arrived in incoming.drain(..) {
        match arrived {
            Incoming::Datagram(from, data) => {
                if guard.as_mut().is_none_or(|g| g.admit(now, from, &data)) {
                    ua.handle_datagram(now, from, &data);
                }
            }
            Incoming::Stream(from, item) => {
                let admitted = match (&item, guard.as_mut()) {
                    (StreamItem::Message(Message::Request(r)), Some(g)) => {
                        g.admit_request(now, from, r.headers.get("User-Agent").map(str::as_bytes))
                    }
                    _ => true,
                };
                if admitted {
                    ua.handle_stream_item(now, from, item);
                }
            }
            Incoming::Refused => {}
        }
    }
}

/// What happens to a ringing call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Answer,
    Decline,
    Voicemail,
}

/// A message being left on the answering machine.
struct Leaving {
    time: f64,
    from: String,
    file: std::path::PathBuf,
}

struct Ringing {
    call: CallRef,
    oa: OfferAnswer,
    /// The caller's address.
    from: String,
    /// A contact marked for the answering machine: no ringing.
    to_voicemail: bool,
    /// The ringtone; dropping it stops it and frees the speaker.
    ringer: Option<Ringer>,
    since: Instant,
    sdp: Vec<u8>,
    negotiated: Negotiated,
    sockets: Option<(UdpSocket, Option<UdpSocket>)>,
    peer: String,
}

/// What is typed at the terminal.
enum Typed {
    /// y, n or v while a call rings.
    Decision(Decision),
    /// Keypad digits during a call, to send as DTMF.
    Digits(String),
}

/// Reads the terminal, a line at a time, on a thread of its own.
fn terminal_input(waker: Waker) -> Receiver<Typed> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("terminal".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let line = line.trim();
                let typed = match line.to_ascii_lowercase().as_str() {
                    "y" | "yes" | "a" | "answer" => Typed::Decision(Decision::Answer),
                    "n" | "no" | "r" | "reject" => Typed::Decision(Decision::Decline),
                    "v" | "m" | "voicemail" | "message" => Typed::Decision(Decision::Voicemail),
                    _ if !line.is_empty()
                        && line.chars().all(|c| "0123456789*#ABCDabcd".contains(c)) =>
                    {
                        Typed::Digits(line.to_owned())
                    }
                    _ => continue,
                };
                if tx.send(typed).is_err() {
                    break;
                }
                waker.wake();
            }
        })
        .expect("spawning the terminal thread");
    rx
}

/// Sends what the agent has to send.
fn flush(ua: &mut UserAgent, net: &mut SipNet) {
    while let Some(t) = ua.poll_transmit() {
        net.send(t);
    }
}

fn start_media(
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    negotiated: &Negotiated,
    args: &CallArgs,
    seed: u64,
) -> anyhow::Result<Call> {
    let (setup, rtcp) = media_setup(
        negotiated,
        MicSource::Spec(args.audio.mic.clone()),
        args.audio.speaker.clone(),
        args.dtmf.clone().unwrap_or_default(),
        rtcp,
        seed,
    )?;
    Ok(rtp_call::start_with_rtcp(rtp, rtcp, setup))
}

fn start_listener_media(
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    negotiated: &Negotiated,
    args: &ListenArgs,
    speaker: media::audio::AudioSpec,
    seed: u64,
) -> anyhow::Result<Call> {
    let (setup, rtcp) = media_setup(
        negotiated,
        MicSource::Spec(args.audio.mic.clone()),
        speaker,
        String::new(),
        rtcp,
        seed,
    )?;
    Ok(rtp_call::start_with_rtcp(rtp, rtcp, setup))
}

pub(crate) fn media_setup(
    negotiated: &Negotiated,
    mic: MicSource,
    speaker: media::audio::AudioSpec,
    dtmf: String,
    rtcp: Option<UdpSocket>,
    seed: u64,
) -> anyhow::Result<(RtpSetup, Option<UdpSocket>)> {
    let peer = negotiated
        .remote_rtp
        .socket_addr()
        .context("the other side names its media by host name, which ipphone cannot use yet")?;
    let codec = match negotiated.codec {
        SdpCodec::Opus => Codec::Opus,
        SdpCodec::Pcmu => Codec::Pcmu,
        SdpCodec::Pcma => Codec::Pcma,
    };
    let rtcp_peer = (!negotiated.rtcp_mux)
        .then(|| negotiated.remote_rtcp.socket_addr())
        .flatten();
    let setup = RtpSetup {
        codec,
        mic,
        speaker,
        peer: Some(peer),
        seed,
        dtmf,
        signalled: Some(Signalled {
            pt: negotiated.pt,
            recv_pt: negotiated.recv_pt,
            event_pt: negotiated.telephone_event.map(|t| t.pt),
            event_recv_pt: negotiated.telephone_event.map(|t| t.recv_pt),
            red_pt: negotiated.red.map(|r| r.pt),
            red_recv_pt: negotiated.red.map(|r| r.recv_pt),
            rtcp_peer,
        }),
    };
    Ok((setup, if negotiated.rtcp_mux { None } else { rtcp }))
}

/// An RTP socket on an even port with the next port free for RTCP (RFC
/// 3550 §11), or just an RTP socket if no such pair turns up.
pub(crate) fn bind_media(ip: IpAddr) -> anyhow::Result<(UdpSocket, Option<UdpSocket>)> {
    for _ in 0..32 {
        let rtp = UdpSocket::bind((ip, 0)).context("opening the RTP socket")?;
        let port = rtp.local_addr()?.port();
        if port % 2 == 0
            && port < u16::MAX
            && let Ok(rtcp) = UdpSocket::bind((ip, port + 1))
        {
            return Ok((rtp, Some(rtcp)));
        }
    }
    Ok((
        UdpSocket::bind((ip, 0)).context("opening the RTP socket")?,
        None,
    ))
}

fn sdp_codec(codec: Codec) -> SdpCodec {
    match codec {
        Codec::Opus => SdpCodec::Opus,
        Codec::Pcmu => SdpCodec::Pcmu,
        Codec::Pcma => SdpCodec::Pcma,
    }
}

fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// The address this machine would use towards the world: a UDP socket
/// connected (nothing is sent) to a documentation address tells.
fn primary_address(family: IpAddr) -> IpAddr {
    let probe: SocketAddr = match family {
        IpAddr::V4(_) => "192.0.2.1:9".parse().expect("an address"),
        IpAddr::V6(_) => "[2001:db8::1]:9".parse().expect("an address"),
    };
    UdpSocket::bind((unspecified_like(family), 0))
        .and_then(|s| {
            s.connect(probe)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(match family {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        })
}

/// The user part we call from: $USER, or `ipphone`.
fn whoami() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| {
            !u.is_empty()
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .unwrap_or_else(|| "ipphone".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_in_every_form() {
        let t = Target::parse("sip:bob@127.0.0.1:5070").unwrap();
        assert_eq!(t.addr, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(t.name(), "bob@127.0.0.1");
        let t = Target::parse("bob@127.0.0.1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:5060".parse().unwrap());
        let t = Target::parse("127.0.0.1:5080").unwrap();
        assert_eq!(t.addr.port(), 5080);
        assert_eq!(t.uri.user, None);
        let t = Target::parse("sip:alice@[::1]:5062").unwrap();
        assert_eq!(t.addr, "[::1]:5062".parse().unwrap());
        assert!(Target::parse("sips:bob@127.0.0.1").is_err());
        assert!(Target::parse("bob@").is_err());
    }
}
