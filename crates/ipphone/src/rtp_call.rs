//! A media-only call over RTP/UDP: Opus or G.711, an adaptive jitter buffer,
//! loss concealment and FEC, RTCP reports, no signalling.
//!
//! One thread runs the call as a small event loop around the sans-IO parts:
//! the microphone's frames are encoded by the [`VoiceEncoder`] and handed to
//! the [`MediaStream`]; datagrams from the socket go into it, and the media it
//! extracts into the [`VoiceReceiver`] (jitter buffer and decoder); whenever
//! the speaker's queue runs low (or soon will, and the packet is already
//! here), the receiver gives the next frame, decoded
//! (or concealed, or rebuilt from the next packet's FEC) and time-stretched
//! as the buffer asks. The bench drives the same two on a virtual clock. The caller sends
//! to the address it dialled; the listener answers the first address that
//! sends, and from then on only it (symmetric RTP).
//!
//! Between events the thread sleeps in poll(2) on its sockets, until the
//! first of: a datagram, a hang-up or digits from another thread (its
//! waker), the microphone's next frame, the speaker's queue reaching its low
//! mark (both told by the audio's clock), the stream's RTCP and DTMF timers,
//! the next stats. Nothing is looked at on a fixed tick.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use clap::ValueEnum;
use media::audio::{AudioSpec, PlayoutConfig, Speaker};
use media::dsp::tones::{Tone, dtmf};
use media::rate::{RateConfig, RateController};
use media::voice::{VoiceCodec, VoiceConfig, VoiceCounts, VoiceEncoder, VoiceReceiver};
use proto::rtp::dtmf::{
    DtmfReceiver, DtmfSender, TelephoneEvent, digit_for_event, event_for_digit,
};
use proto::rtp::{Pt, SeqNo, Ssrc};
use proto::stream::{MediaStream, StreamConfig, StreamEvent};
use rustix::event::{PollFd, PollFlags};
use serde::Serialize;

use crate::call::{Call, MicSource, Shared, ready, wait};
use crate::events::HangupReason;

/// Audio frames of 20 ms: the usual packetisation (RFC 3551, RFC 7587).
const FRAME_MS: u32 = 20;
/// The speaker is given the next frame when less than this is queued. A
/// WAV speaker plays in 5 ms steps, so a frame is queued behind 3 to 8 ms,
/// 5.5 on average: what the bench's media grid models with its speaker that
/// plays continuously and asks below 6 ms. Every millisecond here is one of
/// the call's mouth-to-ear delay.
const LOW_WATER: Duration = Duration::from_millis(8);
/// How long before the speaker runs low a frame whose packet has arrived is
/// pulled, in the wake-up that brought the packet. On a clean path a packet
/// waits 5 to 10 ms for its moment (the jitter buffer's margin and the
/// arrivals' spread), so every frame is pulled on arrival and the speaker's
/// own wake-up, a third of the loop's, does not come. The buffer decides as
/// it would have at that moment unless another packet arrives in between,
/// which on a path of 20 ms frames takes 5 ms of jitter. Where packets wait
/// longer (jitter, a frame held for FEC), the speaker's clock pulls as
/// before, when the most is known.
const PULL_AHEAD: Duration = Duration::from_millis(15);
/// How long the loop waits before trying a socket that failed again.
const RETRY: Duration = Duration::from_millis(2);
/// How often the call's figures are published.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// A far end that sends nothing at all for this long is gone: even with DTX
/// a phone sends a packet every 400 ms and RTCP every few seconds.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(15);
const OPUS_BITRATE: u32 = 24_000;
/// RTCP about once a second, with delivery feedback, so that the far end's
/// rate controller hears of a queue within a few seconds (RFC 3550's 5 s
/// minimum is for large sessions; AVPF, RFC 4585, drops it).
const RTCP_INTERVAL: Duration = Duration::from_secs(1);

/// The codec of an RTP call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Opus (RFC 7587), wideband, 24 kbit/s, in-band FEC and DTX.
    Opus,
    /// G.711 u-law (PCMU), 64 kbit/s.
    Pcmu,
    /// G.711 A-law (PCMA), 64 kbit/s.
    Pcma,
}

impl Codec {
    /// The rate the audio is coded at.
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Opus => 16_000,
            Codec::Pcmu | Codec::Pcma => 8_000,
        }
    }

    /// The RTP clock: 48 kHz for Opus whatever it codes at (RFC 7587 §4.1).
    fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Pcmu | Codec::Pcma => 8_000,
        }
    }

    fn voice(self) -> VoiceCodec {
        match self {
            Codec::Opus => VoiceCodec::Opus {
                bitrate: OPUS_BITRATE,
            },
            Codec::Pcmu => VoiceCodec::Pcmu,
            Codec::Pcma => VoiceCodec::Pcma,
        }
    }

    fn payload_type(self) -> Pt {
        match self {
            Codec::Opus => Pt(111),
            Codec::Pcmu => Pt(0),
            Codec::Pcma => Pt(8),
        }
    }
}

/// Everything an RTP call needs besides its socket.
#[derive(Clone)]
pub struct RtpSetup {
    pub codec: Codec,
    pub mic: MicSource,
    pub speaker: AudioSpec,
    /// Where to send; `None` for a listener, which answers the first sender.
    pub peer: Option<SocketAddr>,
    pub seed: u64,
    /// Digits to send as RFC 4733 events once the far end is heard.
    pub dtmf: String,
    /// For a call set up by SIP: what the offer/answer settled. `None` for
    /// `--protocol rtp`, which uses the static choices.
    pub signalled: Option<Signalled>,
}

/// What SDP negotiated for the media of a SIP call.
#[derive(Debug, Clone)]
pub struct Signalled {
    /// Payload type to send the codec with (the far end's number).
    pub pt: Pt,
    /// Payload type the codec arrives with (our number).
    pub recv_pt: Pt,
    /// telephone-event, to send with and to receive, if both have it.
    pub event_pt: Option<Pt>,
    pub event_recv_pt: Option<Pt>,
    /// Redundant audio (RFC 2198, `red`) for the codec, to send with and to
    /// receive, if both have it: under loss each packet also carries the
    /// frame before it.
    pub red_pt: Option<Pt>,
    pub red_recv_pt: Option<Pt>,
    /// Where RTCP goes when it does not share the RTP port (no rtcp-mux).
    pub rtcp_peer: Option<SocketAddr>,
}

/// The payload type of RFC 4733 telephone events, at the audio's clock rate.
const EVENT_PT: Pt = Pt(101);
/// The payload type of RFC 2198 redundancy in a call with no signalling
/// (WebRTC's usual number for it). Such a call sends it only once the far
/// end's delivery feedback shows it is an ipphone, which takes it.
const RED_PT: Pt = Pt(63);
/// How long a digit sounds on our own speaker as it is sent.
const KEYPAD_MS: usize = 100;
/// How long each digit of `--dtmf` is held, and the pause after it.
const DIGIT_ON: Duration = Duration::from_millis(120);
const DIGIT_GAP: Duration = Duration::from_millis(80);

/// What `--json` stats carry for an RTP call.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct RtpStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub lost: i64,
    pub late: u64,
    pub concealed: u64,
    pub fec_recovered: u64,
    /// Lost packets whose frame a later packet's redundant copy (RFC 2198)
    /// brought in time: played as sent, not concealed.
    pub red_recovered: u64,
    /// Copies of earlier frames each packet we send carries now (0 to 2).
    pub redundancy: u64,
    /// Interarrival jitter of the far end's stream (RFC 3550 A.8), in ms.
    pub jitter_ms: f64,
    /// The jitter buffer's target delay, in ms.
    pub buffer_ms: f64,
    pub rtt_ms: Option<f64>,
    /// Payload and headers (IP, UDP, RTP), each way, in kbit/s so far.
    pub kbps_sent: f64,
    pub kbps_received: f64,
}

/// Starts an RTP call on `socket`.
pub fn start(socket: UdpSocket, setup: RtpSetup) -> Call {
    start_with_rtcp(socket, None, setup)
}

/// Starts an RTP call whose RTCP has a port of its own (`rtcp`, the RTP
/// port + 1) because the far end does not multiplex it.
pub fn start_with_rtcp(socket: UdpSocket, rtcp: Option<UdpSocket>, setup: RtpSetup) -> Call {
    Call::spawn(move |shared| {
        if let Err(e) = run(socket, rtcp, setup, shared) {
            shared.end(HangupReason::Error, Some(e));
        }
    })
}

fn run(
    socket: UdpSocket,
    rtcp_socket: Option<UdpSocket>,
    setup: RtpSetup,
    shared: &Arc<Shared>,
) -> Result<(), String> {
    let published = &shared.rtp;
    let codec = setup.codec;
    let rate = codec.sample_rate();
    let frame = (rate * FRAME_MS / 1000) as usize;
    shared
        .speaker_rate
        .store(u64::from(rate), Ordering::Relaxed);
    let voice = VoiceConfig {
        codec: codec.voice(),
        frame_ms: FRAME_MS,
    };
    let mut encoder = VoiceEncoder::new(voice).map_err(|e| e.to_string())?;
    let mut receiver = VoiceReceiver::new(voice).map_err(|e| e.to_string())?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("cannot use the socket: {e}"))?;
    if let Some(rtcp) = &rtcp_socket {
        rtcp.set_nonblocking(true)
            .map_err(|e| format!("cannot use the RTCP socket: {e}"))?;
    }
    let signalled = setup.signalled.clone();
    let send_pt = signalled.as_ref().map_or(codec.payload_type(), |s| s.pt);
    let recv_pt = signalled
        .as_ref()
        .map_or(codec.payload_type(), |s| s.recv_pt);
    let event_pt = signalled.as_ref().map_or(Some(EVENT_PT), |s| s.event_pt);
    let event_recv_pt = signalled
        .as_ref()
        .map_or(Some(EVENT_PT), |s| s.event_recv_pt);
    let rtcp_peer = signalled.as_ref().and_then(|s| s.rtcp_peer);
    let (red_pt, red_recv_pt) = signalled
        .as_ref()
        .map_or((Some(RED_PT), Some(RED_PT)), |s| (s.red_pt, s.red_recv_pt));
    // SDP said whether the far end takes redundancy; without SDP, its
    // delivery feedback will.
    let mut red_ok = signalled.is_some() && red_pt.is_some();
    // A SIP call knows its peer from SDP, but answers where the media
    // really comes from (symmetric RTP, for peers behind NAT): once.
    let mut may_relatch = signalled.is_some();
    if let Some(peer) = setup.peer.filter(|_| signalled.is_none()) {
        // A connected socket hears the ICMP "port unreachable" of a far end
        // with nothing listening, and only its peer's packets.
        socket
            .connect(peer)
            .map_err(|e| format!("cannot send to {peer}: {e}"))?;
    }

    // A listener's call starts when its caller's first packet arrives: only
    // then do the microphone and speaker start, so that a recording's clock
    // starts with the call.
    let mut datagram = vec![0u8; 2_048];
    let mut first: Option<(usize, SocketAddr)> = None;
    let waker = &shared.waker;
    let mut fds = vec![PollFd::new(&socket, PollFlags::IN)];
    if let Some(rtcp) = &rtcp_socket {
        fds.push(PollFd::new(rtcp, PollFlags::IN));
    }
    if setup.peer.is_none() {
        let mut rtp_only = vec![PollFd::new(&socket, PollFlags::IN)];
        while !shared.ending() {
            match socket.recv_from(&mut datagram) {
                Ok((n, from))
                    if proto::rtp::header::demux(&datagram[..n])
                        == proto::rtp::header::Demux::Rtp =>
                {
                    first = Some((n, from));
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => wait(&mut rtp_only, waker, None),
                Err(_) => std::thread::sleep(RETRY),
            }
        }
        if first.is_none() {
            return Ok(());
        }
    }
    let mut mic = setup.mic.open(rate).map_err(|e| e.to_string())?;
    let mut speaker =
        Speaker::open(&setup.speaker, rate, PlayoutConfig::default()).map_err(|e| e.to_string())?;

    let start = Instant::now();
    let seed = setup.seed;
    let mut stream = MediaStream::new(
        StreamConfig {
            clock_rate: codec.clock_rate(),
            pt: send_pt,
            ssrc: Ssrc(mix(seed, 1) as u32),
            first_seq: SeqNo(mix(seed, 2) as u16),
            first_timestamp: mix(seed, 3) as u32,
            cname: format!("ipphone-{:08x}@{}", mix(seed, 4) as u32, hostname()),
            rtcp_interval: RTCP_INTERVAL,
            feedback: true,
            seed: mix(seed, 5),
        },
        start,
    );
    stream.set_red(red_pt, red_recv_pt);
    let mut peer = setup.peer.or(first.map(|(_, from)| from));
    // The far end's reports set our bitrate, packet time and FEC (Opus;
    // G.711 has nothing to adapt).
    let mut rate_control = RateController::new(RateConfig {
        ip_udp_bytes: peer.map_or(28, |p| ip_udp_overhead(p) as u32),
        ..RateConfig::new(OPUS_BITRATE)
    });
    let mut last_heard = start;
    if let Some((n, _)) = first {
        shared.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
        stream.handle_datagram(start, SystemTime::now(), &datagram[..n]);
    }
    let mut pcm = vec![0i16; frame];
    let mut stretched = Vec::with_capacity(frame * 2);
    let mut packet = vec![0u8; 1_500];
    let mut counts = Counts::default();
    let mut last_publish = start;
    let mut dtmf_out = DtmfSender::new(codec.clock_rate());
    let mut dtmf_in = DtmfReceiver::new();
    let mut digits = setup
        .dtmf
        .chars()
        .filter_map(event_for_digit)
        .collect::<std::collections::VecDeque<_>>();
    let mut next_digit: Option<Instant> = None;
    // A digit being sent sounds briefly on our own speaker, as a keypad does.
    let mut keypad: Option<(Tone, usize)> = None;

    // Whether the sockets had something at the last wait; at first, look.
    let mut rtp_ready = true;
    let mut rtcp_ready = true;
    while !shared.ending() {
        // Digits typed during the call.
        if let Ok(mut typed) = shared.digits_out.try_lock()
            && !typed.is_empty()
        {
            digits.extend(typed.chars().filter_map(event_for_digit));
            typed.clear();
        }
        let now = Instant::now();
        let wall = SystemTime::now();

        // Our side: every complete microphone frame goes out at once; its
        // length is the encoder's packet time, which the rate control sets.
        loop {
            pcm.resize(encoder.config().frame_samples(), 0);
            if !mic.try_read(&mut pcm) {
                break;
            }
            let ticks = encoder.config().frame_ticks();
            let n = encoder
                .encode(&pcm, &mut packet)
                .map_err(|e| format!("encoding failed: {e}"))?;
            if n == 0 || shared.paused.load(Ordering::Relaxed) {
                // DTX silence, or on hold: the timestamp moves on, nothing goes.
                stream.skip(ticks);
            } else {
                stream.send_media(&packet[..n], ticks);
            }
        }

        // RTCP on a port of its own, when the far end does not multiplex.
        if let Some(rtcp) = rtcp_socket.as_ref().filter(|_| rtcp_ready) {
            for _ in 0..16 {
                match rtcp.recv_from(&mut datagram) {
                    Ok((n, _)) => {
                        stream.handle_datagram(now, wall, &datagram[..n]);
                    }
                    Err(_) => break,
                }
            }
        }
        // Their side: datagrams into the stream, its media into the buffer.
        let budget = if rtp_ready { 64 } else { 0 };
        for _ in 0..budget {
            match socket.recv_from(&mut datagram) {
                Ok((n, from)) => {
                    if *peer.get_or_insert(from) != from {
                        if may_relatch
                            && proto::rtp::header::demux(&datagram[..n])
                                == proto::rtp::header::Demux::Rtp
                        {
                            may_relatch = false;
                            peer = Some(from);
                        } else {
                            // Another caller: this call has its peer.
                            continue;
                        }
                    }
                    last_heard = now;
                    counts.bytes_received += n as u64 + ip_udp_overhead(from);
                    shared.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                    stream.handle_datagram(now, wall, &datagram[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // ICMP port unreachable before the far end ever answered:
                // nothing listens there. Later, a passing error; keep going.
                Err(e)
                    if e.kind() == ErrorKind::ConnectionRefused && counts.bytes_received == 0 =>
                {
                    shared.end(
                        HangupReason::Refused,
                        Some("nothing listens at that address".into()),
                    );
                    break;
                }
                Err(_) => break,
            }
        }
        // Whether the far end said how our stream reaches it.
        let mut reported = false;
        // Whether this wake-up brought audio.
        let mut arrived = false;
        while let Some(event) = stream.poll_event() {
            match event {
                StreamEvent::Media {
                    seq,
                    timestamp,
                    pt,
                    payload,
                    redundant,
                    ..
                } if pt == recv_pt => {
                    arrived = true;
                    if redundant {
                        receiver.insert_redundant(seq, timestamp, &payload);
                    } else {
                        receiver.insert(now, seq, timestamp, &payload);
                    }
                }
                StreamEvent::Media {
                    pt,
                    timestamp,
                    payload,
                    ..
                } if Some(pt) == event_recv_pt => {
                    if let Ok(event) = TelephoneEvent::parse(&payload)
                        && let Some(received) = dtmf_in.handle_packet(timestamp as u32, &event)
                        && let Some(digit) = received.digit()
                    {
                        shared.push_digit(digit);
                    }
                }
                StreamEvent::Media { .. } => {}
                StreamEvent::Report {
                    fraction_lost,
                    net_loss,
                    rtt,
                    ..
                } => {
                    rate_control.on_report(now, fraction_lost, net_loss, rtt);
                    reported = true;
                }
                StreamEvent::Feedback(delivery) => {
                    red_ok = red_pt.is_some();
                    rate_control.on_feedback(now, &delivery);
                    reported = true;
                }
                StreamEvent::Bye { reason } => {
                    shared.end(HangupReason::Remote, reason.filter(|r| !r.is_empty()));
                }
            }
        }
        if reported {
            let setting = rate_control.setting().with_red(red_ok);
            let _ = encoder.adapt(&setting);
            stream.set_redundancy(setting.redundancy);
        }
        // Our digits, one after another, once the far end is heard.
        if counts.bytes_received > 0 && !digits.is_empty() && !dtmf_out.is_busy() {
            let due = *next_digit.get_or_insert(now + DIGIT_GAP);
            if now >= due {
                let event = digits.pop_front().expect("a digit is queued");
                let _ = dtmf_out.start(now, event, DIGIT_ON, stream.timestamp());
                keypad = digit_for_event(event).and_then(dtmf).map(|spec| {
                    let length = rate as usize * KEYPAD_MS / 1000;
                    (Tone::new(spec, rate), length)
                });
                next_digit = Some(now + DIGIT_ON + DIGIT_GAP * 2);
            }
        }
        dtmf_out.handle_timeout(now);
        while let Some(packet) = dtmf_out.poll_transmit() {
            let payload = packet.event.to_bytes();
            if let Some(pt) = event_pt {
                stream.send_other(pt, packet.marker, packet.timestamp, &payload);
            }
        }
        stream.handle_timeout(now, wall);
        if let Some(to) = peer {
            while let Some(t) = stream.poll_transmit() {
                counts.bytes_sent += t.data.len() as u64 + ip_udp_overhead(to);
                shared
                    .bytes_sent
                    .fetch_add(t.data.len() as u64, Ordering::Relaxed);
                let sent = match (&rtcp_socket, rtcp_peer) {
                    (Some(rtcp), Some(rtcp_to)) if t.rtcp => rtcp.send_to(&t.data, rtcp_to),
                    _ => socket.send_to(&t.data, to),
                };
                if let Err(e) = sent
                    && e.kind() == ErrorKind::ConnectionRefused
                    && counts.bytes_received == 0
                {
                    let detail = "nothing listens at that address".to_owned();
                    shared.end(HangupReason::Refused, Some(detail));
                }
            }
        }

        // The speaker's clock pulls the next frame when it runs low. In a
        // wake-up that brought audio, a frame whose packet is here is pulled
        // at once when that moment is near, for the moment it names, which
        // saves a wake-up. (Not in others: woken for the microphone just
        // before the next packet comes, the buffer would decide without it,
        // and an acceleration waits for the next packet to be here.)
        loop {
            let at = if speaker.queued_time() < LOW_WATER {
                now
            } else {
                let low_at = speaker.low_at(LOW_WATER, now);
                if !arrived || low_at > now + PULL_AHEAD || !receiver.next_ready() {
                    break;
                }
                low_at
            };
            stretched.clear();
            let produced = receiver.pull(at, &mut stretched);
            if let Some((tone, left)) = &mut keypad {
                let n = produced.min(*left);
                let mut beep = [0i16; 2_048];
                let n = n.min(beep.len());
                tone.fill(&mut beep[..n]);
                for (out, b) in stretched.iter_mut().zip(&beep[..n]) {
                    *out = out.saturating_add(*b);
                }
                *left -= n;
                if *left == 0 {
                    keypad = None;
                }
            }
            speaker.push(&stretched[..produced]);
        }
        shared
            .underruns
            .store(speaker.underruns(), Ordering::Relaxed);

        // A listener waits for its caller as long as it takes.
        if peer.is_some() && now.duration_since(last_heard) > SILENCE_TIMEOUT {
            let detail = format!("nothing received for {} s", SILENCE_TIMEOUT.as_secs());
            shared.end(HangupReason::Lost, Some(detail));
        }
        if now.duration_since(last_publish) >= PUBLISH_EVERY {
            last_publish = now;
            publish(published, &stream, &receiver, &counts, start.elapsed());
        }

        // Sleep until the first thing due, or a datagram, or the waker.
        let now = Instant::now();
        let digit_due = (counts.bytes_received > 0 && !digits.is_empty() && !dtmf_out.is_busy())
            .then(|| next_digit.unwrap_or(now + DIGIT_GAP));
        let deadline = [
            Some(mic.ready_at(encoder.config().frame_samples(), now)),
            Some(speaker.low_at(LOW_WATER, now)),
            stream.poll_timeout(),
            dtmf_out.poll_timeout(),
            digit_due,
            Some(last_publish + PUBLISH_EVERY),
            peer.map(|_| last_heard + SILENCE_TIMEOUT + Duration::from_millis(1)),
        ]
        .into_iter()
        .flatten()
        .min();
        wait(&mut fds, waker, deadline);
        rtp_ready = ready(&fds[0]);
        rtcp_ready = fds.get(1).is_some_and(ready);
    }

    // Hanging up: say goodbye (RTCP BYE), unless the far end already did.
    stream.close(SystemTime::now(), "hung up");
    if let Some(to) = peer {
        while let Some(t) = stream.poll_transmit() {
            let _ = match (&rtcp_socket, rtcp_peer) {
                (Some(rtcp), Some(rtcp_to)) if t.rtcp => rtcp.send_to(&t.data, rtcp_to),
                _ => socket.send_to(&t.data, to),
            };
        }
    }
    publish(published, &stream, &receiver, &counts, start.elapsed());
    tracing::debug!(
        "jitter buffer at hang-up: {:?}; {:?}",
        receiver.jitter().stats(),
        receiver.counts()
    );
    Ok(())
}

#[derive(Default)]
struct Counts {
    bytes_sent: u64,
    bytes_received: u64,
}

fn publish(
    published: &std::sync::Mutex<Option<RtpStats>>,
    stream: &MediaStream,
    receiver: &VoiceReceiver,
    counts: &Counts,
    elapsed: Duration,
) {
    let s = stream.stats();
    let clock = f64::from(stream.config().clock_rate);
    let seconds = elapsed.as_secs_f64().max(0.001);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let VoiceCounts {
        late,
        concealed,
        fec_recovered,
        red_recovered,
        ..
    } = receiver.counts();
    let stats = RtpStats {
        packets_sent: s.packets_sent,
        packets_received: s.packets_received,
        lost: s.lost,
        late,
        concealed,
        fec_recovered,
        red_recovered,
        redundancy: stream.redundancy() as u64,
        jitter_ms: round(f64::from(s.jitter) * 1000.0 / clock),
        buffer_ms: round(receiver.jitter().target_delay().as_secs_f64() * 1000.0),
        rtt_ms: s.rtt.map(|r| round(r.as_secs_f64() * 1000.0)),
        kbps_sent: round(counts.bytes_sent as f64 * 8.0 / seconds / 1000.0),
        kbps_received: round(counts.bytes_received as f64 * 8.0 / seconds / 1000.0),
    };
    if let Ok(mut slot) = published.lock() {
        *slot = Some(stats);
    }
}

/// IP and UDP headers of one datagram: what it costs on the wire besides RTP.
fn ip_udp_overhead(to: SocketAddr) -> u64 {
    if to.is_ipv4() { 28 } else { 48 }
}

/// Independent values from one seed (SplitMix64).
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map_or_else(|_| "localhost".into(), |h| h.trim().to_owned())
}
