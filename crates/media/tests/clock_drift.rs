//! Two sound cards never run at exactly the same rate. A call's receiving
//! side (jitter buffer, decoder, time-stretching: `media::voice`, the very
//! code the call loop runs) must absorb the difference for a whole call:
//! a far end 0.5 % fast must not build up delay, one 0.5 % slow must not
//! run dry, and the speech must still arrive.
//!
//! The sender's frames come every 20 ms of *its* clock; the speaker pulls
//! frames on ours. Virtual time, one minute of speech.

use std::time::{Duration, Instant};

use ipphone_media::dsp::correlate;
use ipphone_media::dsp::signal::test_speech_seeded;
use ipphone_media::voice::{VoiceCodec, VoiceConfig, VoiceEncoder, VoiceReceiver};

const SECONDS: f64 = 60.0;
/// Network delay: a fixed 10 ms.
const NETWORK: Duration = Duration::from_millis(10);

struct Outcome {
    played: Vec<i16>,
    /// The jitter buffer's level near the end of the call.
    late_level: Duration,
    concealed: u64,
    accelerated: u64,
    expanded: u64,
}

/// Sends `seconds` of speech from a sender whose clock runs `speed` times
/// ours, and plays what arrives on our clock.
fn call(codec: VoiceCodec, speed: f64) -> (Vec<i16>, Outcome) {
    let config = VoiceConfig {
        codec,
        frame_ms: 20,
    };
    let rate = codec.sample_rate();
    let frame = config.frame_samples();
    let speech = test_speech_seeded(rate, SECONDS, 3);
    let mut encoder = VoiceEncoder::new(config).unwrap();
    let mut receiver = VoiceReceiver::new(config).unwrap();
    let t0 = Instant::now();
    let frames = speech.len() / frame;
    // When each frame arrives, on our clock.
    let arrival = |n: usize| Duration::from_secs_f64((n + 1) as f64 * 0.020 / speed) + NETWORK;
    let mut played = Vec::with_capacity(speech.len() * 11 / 10);
    let mut payload = [0u8; 1_500];
    let mut next = 0;
    let mut seq = 0u64;
    let step = Duration::from_millis(1);
    let mut now = Duration::ZERO;
    let end = arrival(frames) + Duration::from_millis(200);
    let mut late_level = Duration::ZERO;
    while now < end {
        while next < frames && arrival(next) <= now {
            let pcm = &speech[next * frame..(next + 1) * frame];
            let n = encoder.encode(pcm, &mut payload).unwrap();
            if n > 0 {
                let ts = next as u64 * u64::from(config.frame_ticks());
                receiver.insert(t0 + now, seq, ts, &payload[..n]);
                seq += 1;
            }
            next += 1;
        }
        let consumed = now.as_millis() as usize * rate as usize / 1000;
        while played.len() < consumed + rate as usize / 100 {
            receiver.pull(t0 + now, &mut played);
        }
        if (SECONDS - 5.0..SECONDS - 4.0).contains(&now.as_secs_f64()) {
            late_level = late_level.max(receiver.jitter().stats().level);
        }
        now += step;
    }
    let stats = receiver.jitter().stats();
    let outcome = Outcome {
        played,
        late_level,
        concealed: receiver.counts().concealed,
        accelerated: stats.accelerated,
        expanded: stats.expanded,
    };
    (speech, outcome)
}

/// Two seconds of speech at several points of the call are found in what
/// was played, each at about the delay of the first: the speech spoken at
/// sample `n` of the sender's clock was spoken at `n / speed` of ours, and
/// should be played a constant delay after that.
fn check(codec: VoiceCodec, speed: f64) -> Outcome {
    let (speech, out) = call(codec, speed);
    let rate = codec.sample_rate() as usize;
    let piece = rate / 2;
    let mut delays = Vec::new();
    for at in [2usize, 20, 40, 55] {
        // The best of three half-second pieces: a piece in which the buffer
        // stretched time lines up less well, without anything being lost.
        let best = (0..3)
            .map(|k| {
                let from = rate * at + k * piece;
                let spoken = (from as f64 / speed) as usize;
                let window_start = spoken.saturating_sub(rate / 10);
                let window =
                    &out.played[window_start..(spoken + piece + rate).min(out.played.len())];
                let found = correlate::align(&speech[from..from + piece], window, rate / 2)
                    .unwrap_or_else(|| panic!("nothing at {at} s"));
                let delay_ms =
                    (found.lag as f64 - (spoken - window_start) as f64) * 1000.0 / rate as f64;
                (delay_ms, found.correlation)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("three pieces");
        assert!(
            best.1 > 0.6,
            "{codec:?} at {speed}: the speech at {at} s is damaged: {best:?}"
        );
        delays.push((at, best.0, best.1));
    }
    println!(
        "{codec:?} at {speed}: (s, delay ms, correlation) {delays:.2?}; level near the end {:?}, \
         accelerated {}, expanded {}, concealed {}",
        out.late_level, out.accelerated, out.expanded, out.concealed,
    );
    // Left alone, 0.5 % of a minute would move the delay by 300 ms. It must
    // stay within a few frames of where it started.
    let first = delays[0].1;
    for &(at, delay, _) in &delays {
        assert!(
            (delay - first).abs() < 60.0,
            "{codec:?} at {speed}: the delay moved from {first:.1} to {delay:.1} ms by {at} s"
        );
    }
    assert!(
        out.late_level <= Duration::from_millis(100),
        "{:?}",
        out.late_level
    );
    assert_eq!(out.concealed, 0, "nothing was lost");
    out
}

#[test]
fn a_fast_far_end_is_absorbed_by_accelerating() {
    let out = check(VoiceCodec::Opus { bitrate: 24_000 }, 1.005);
    assert!(out.accelerated > 0);
    let out = check(VoiceCodec::Pcmu, 1.005);
    assert!(out.accelerated > 0);
}

#[test]
fn a_slow_far_end_does_not_run_the_speaker_dry() {
    check(VoiceCodec::Opus { bitrate: 24_000 }, 0.995);
    check(VoiceCodec::Pcmu, 0.995);
}
