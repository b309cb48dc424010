//! The article's slow link: 32 kbit/s each way, as a 56K modem really
//! carries, with a tail-drop queue of 250 ms, IP and UDP headers counted.
//! Real speech goes one way through ipphone's media path (encoder, RTP/RTCP
//! stream, emulated link, jitter buffer, decoder) on a virtual clock, RTCP
//! with delivery feedback both ways, the rate controller setting Opus.
//!
//! The sender starts at its clean-path rate, about 40 kbit/s on the wire,
//! which the link cannot carry: it must come under the cap within a few
//! seconds and stay there, with under 2 % of packets lost or late from then
//! on and the queue's delay bounded. On a clean path it keeps its rate; the
//! sender before adaptation, on the same link, loses far more.

use std::time::{Duration, Instant, SystemTime};

use ipphone_media::dsp::signal::test_speech;
use ipphone_media::rate::{RateConfig, RateController, Setting};
use ipphone_media::voice::{VoiceCodec, VoiceConfig, VoiceEncoder, VoiceReceiver};
use netsim::{Link, LinkConfig, Payload, RateLimit};
use proto::rtp::{Pt, SeqNo, Ssrc};
use proto::stream::{MediaStream, StreamConfig, StreamEvent};

/// Harvard sentences, 10.8 s, 16 kHz (Debian `codec2-examples`).
const SPEECH: &str = "/usr/share/codec2/raw/speech_orig_16k.wav";
const RATE: u64 = 16_000;
const IP_UDP: usize = 28;
const CAP: u64 = 32_000;

/// A datagram whose IP and UDP headers count against the link's rate.
#[derive(Clone)]
struct Datagram(Vec<u8>);

impl Payload for Datagram {
    fn wire_len(&self) -> usize {
        self.0.len() + IP_UDP
    }
}

/// One media packet: when it left, its size on the wire, what became of it.
#[derive(Debug, Clone, Copy)]
struct Fate {
    sent: Duration,
    wire: usize,
    delay: Option<Duration>,
    late: bool,
}

struct Run {
    packets: Vec<Fate>,
    rtcp_bytes: Vec<(Duration, usize)>,
    settings: Vec<(Duration, Setting)>,
    decreases: u32,
}

impl Run {
    /// Bit/s on the wire of the packets sent in `[from, to)`, RTCP included.
    fn rate(&self, from: Duration, to: Duration) -> f64 {
        let within = |t: Duration| t >= from && t < to;
        let media: usize = self
            .packets
            .iter()
            .filter(|p| within(p.sent))
            .map(|p| p.wire)
            .sum();
        let rtcp: usize = self
            .rtcp_bytes
            .iter()
            .filter(|r| within(r.0))
            .map(|r| r.1)
            .sum();
        (media + rtcp) as f64 * 8.0 / (to - from).as_secs_f64()
    }

    /// When the rate on the wire over the second before first fell under
    /// the cap.
    fn under_cap_at(&self) -> Option<Duration> {
        (10..400u64)
            .map(|tenths| Duration::from_millis(100 * tenths))
            .find(|&t| self.rate(t - Duration::from_secs(1), t) <= CAP as f64)
    }

    fn after(&self, from: Duration) -> impl Iterator<Item = &Fate> {
        self.packets.iter().filter(move |p| p.sent >= from)
    }

    /// Share of the packets sent from `from` on that were lost or late.
    fn lost_or_late(&self, from: Duration) -> f64 {
        let all = self.after(from).count();
        let bad = self
            .after(from)
            .filter(|p| p.delay.is_none() || p.late)
            .count();
        bad as f64 / all.max(1) as f64
    }
}

fn speech() -> Vec<i16> {
    match hound::WavReader::open(SPEECH) {
        Ok(reader) => reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("the WAV file decodes"),
        // Synthetic speech is enough for the rate; real speech is better.
        Err(_) => test_speech(RATE as u32, 10.8),
    }
}

/// Sends `speech` over a path of `link` each way; `adaptive` as a call
/// does, or at a fixed rate with 5 s RTCP as before adaptation.
fn run(speech: &[i16], link: LinkConfig, adaptive: bool) -> Run {
    let codec = VoiceCodec::Opus { bitrate: 24_000 };
    let config = VoiceConfig {
        codec,
        frame_ms: 20,
    };
    let mut encoder = VoiceEncoder::new(config).expect("valid settings");
    let mut receiver = VoiceReceiver::new(config).expect("valid settings");
    let mut controller = RateController::new(RateConfig::new(24_000));
    let t0 = Instant::now();
    let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let stream = |n: u32| StreamConfig {
        clock_rate: 48_000,
        pt: Pt(111),
        ssrc: Ssrc(0x1000 + n),
        first_seq: SeqNo(65_000 + n as u16),
        first_timestamp: 7_919 * n,
        cname: format!("slow-{n}@link"),
        rtcp_interval: Duration::from_secs(if adaptive { 1 } else { 5 }),
        feedback: adaptive,
        seed: u64::from(n),
    };
    let (mut sender, mut far) = (
        MediaStream::new(stream(1), t0),
        MediaStream::new(stream(2), t0),
    );
    let mut forward = Link::<Datagram>::new(link.clone(), 1).expect("valid link");
    let mut back = Link::<Datagram>::new(link, 2).expect("valid link");

    let mut out = Run {
        packets: Vec::new(),
        rtcp_bytes: Vec::new(),
        settings: Vec::new(),
        decreases: 0,
    };
    let mut on_link: Vec<Option<usize>> = Vec::new();
    let mut payload = [0u8; 1_500];
    let mut played = Vec::new();
    let mut mic = 0usize;
    let end = Duration::from_millis(speech.len() as u64 * 1000 / RATE + 500);
    let mut elapsed = Duration::ZERO;
    while elapsed <= end {
        let (now, wall) = (t0 + elapsed, wall0 + elapsed);
        loop {
            let frame = encoder.config().frame_samples();
            let done = Duration::from_micros((mic + frame) as u64 * 1_000_000 / RATE);
            if mic + frame > speech.len() || done > elapsed {
                break;
            }
            let ticks = encoder.config().frame_ticks();
            let n = encoder
                .encode(&speech[mic..mic + frame], &mut payload)
                .expect("encodes");
            if n == 0 {
                sender.skip(ticks);
            } else {
                sender.send_media(&payload[..n], ticks);
            }
            mic += frame;
        }
        sender.handle_timeout(now, wall);
        while let Some(t) = sender.poll_transmit() {
            let index = if t.rtcp {
                out.rtcp_bytes.push((elapsed, t.data.len() + IP_UDP));
                None
            } else {
                out.packets.push(Fate {
                    sent: elapsed,
                    wire: t.data.len() + IP_UDP,
                    delay: None,
                    late: false,
                });
                Some(out.packets.len() - 1)
            };
            let seq = forward.send(now, Datagram(t.data)) as usize;
            on_link.resize(on_link.len().max(seq + 1), None);
            on_link[seq] = index;
        }
        while let Some(d) = forward.poll_deliver(now) {
            let index = on_link[d.seq as usize];
            if let Some(i) = index {
                out.packets[i].delay = Some(d.at - d.sent_at);
            }
            far.handle_datagram(now, wall, &d.packet.0);
            while let Some(event) = far.poll_event() {
                if let StreamEvent::Media {
                    seq,
                    timestamp,
                    payload,
                    ..
                } = event
                {
                    let late = receiver.counts().late;
                    receiver.insert(now, seq, timestamp, &payload);
                    if let Some(i) = index {
                        out.packets[i].late = receiver.counts().late > late;
                    }
                }
            }
        }
        far.handle_timeout(now, wall);
        while let Some(t) = far.poll_transmit() {
            back.send(now, Datagram(t.data));
        }
        while let Some(d) = back.poll_deliver(now) {
            sender.handle_datagram(now, wall, &d.packet.0);
        }
        while let Some(event) = sender.poll_event() {
            match event {
                StreamEvent::Report {
                    fraction_lost,
                    net_loss,
                    rtt,
                    ..
                } if adaptive => controller.on_report(now, fraction_lost, net_loss, rtt),
                StreamEvent::Report { fraction_lost, .. } => {
                    encoder.set_expected_loss(fraction_lost);
                    continue;
                }
                StreamEvent::Feedback(delivery) => controller.on_feedback(now, &delivery),
                _ => continue,
            }
            let setting = controller.setting();
            encoder.adapt(&setting).expect("valid setting");
            out.settings.push((elapsed, setting));
        }
        // The speaker takes 16 samples a millisecond, 10 ms ahead.
        let consumed = elapsed.as_millis() as usize * 16;
        while played.len() < consumed + 160 {
            receiver.pull(now, &mut played);
        }
        elapsed += Duration::from_millis(1);
    }
    out.decreases = controller.status().decreases;
    out
}

fn slow_link() -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(20),
        rate: Some(RateLimit {
            bits_per_second: CAP,
            // 250 ms of queue at 32 kbit/s.
            queue_bytes: 1_000,
        }),
        ..LinkConfig::default()
    }
}

fn three_times(speech: &[i16]) -> Vec<i16> {
    speech.iter().chain(speech).chain(speech).copied().collect()
}

#[test]
fn adapts_to_a_32_kbit_link_within_seconds_and_stays_under_it() {
    let speech = three_times(&speech());
    let run = run(&speech, slow_link(), true);
    let under = run.under_cap_at().expect("comes under the cap");
    let settled = under + Duration::from_secs(2);
    let end = run.packets.last().expect("packets").sent;
    let rate = run.rate(settled, end);
    let lost = run.lost_or_late(settled);
    let delays: Vec<Duration> = run.after(settled).filter_map(|p| p.delay).collect();
    let worst = delays.iter().max().copied().unwrap_or_default();
    let mean = delays.iter().sum::<Duration>() / delays.len().max(1) as u32;
    eprintln!(
        "under the cap at {under:?}; from {settled:?}: {rate:.0} bit/s, {:.2} % lost or late, \
         delay mean {mean:?} worst {worst:?}; {} decreases; before: {:.2} % lost or late",
        lost * 100.0,
        run.decreases,
        run.lost_or_late(Duration::ZERO) * 100.0,
    );
    assert!(under <= Duration::from_secs(5), "{under:?}");
    assert!(rate <= CAP as f64, "{rate}");
    assert!(rate >= 0.8 * CAP as f64, "uses the link: {rate}");
    assert!(lost < 0.02, "{lost}");
    // 20 ms of propagation and a 40 ms packet's serialization (about
    // 30 ms); the queue (250 ms) never comes near full.
    assert!(worst < Duration::from_millis(150), "{worst:?}");
    assert!(mean < Duration::from_millis(100), "{mean:?}");
    // Longer packets carry the speech: fewer headers.
    let (_, last) = run.settings.last().expect("settings");
    assert!(last.frame_ms >= 40, "{last:?}");
}

#[test]
fn the_sender_before_adaptation_overflows_the_same_link() {
    let speech = speech();
    let run = run(&speech, slow_link(), false);
    let lost = run.lost_or_late(Duration::from_secs(3));
    let rate = run.rate(Duration::from_secs(3), Duration::from_secs(10));
    eprintln!(
        "{rate:.0} bit/s offered, {:.1} % lost or late",
        lost * 100.0
    );
    assert!(rate > CAP as f64, "{rate}");
    assert!(lost > 0.1, "{lost}");
}

#[test]
fn a_clean_path_keeps_the_default_rate() {
    let speech = speech();
    let clean = LinkConfig {
        delay: Duration::from_millis(20),
        ..LinkConfig::default()
    };
    let run = run(&speech, clean, true);
    assert!(run.settings.len() >= 8, "reports every second");
    for (t, s) in &run.settings {
        assert_eq!((s.bitrate, s.frame_ms), (24_000, 20), "at {t:?}");
    }
    assert_eq!(run.decreases, 0);
    assert_eq!(run.lost_or_late(Duration::ZERO), 0.0);
}
