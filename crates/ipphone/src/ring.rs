//! Tones on the local speaker: the ringtone of an incoming call, and the
//! ringback and busy tones a caller hears before the far end's audio.
//!
//! A WAV speaker is the call's recording and `null` is silence, so only a
//! sound-card speaker plays them; they never go to the far end. A tone runs
//! on a thread of its own, which closes the device when the tone stops,
//! before the call opens it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use media::audio::{AudioSpec, PlayoutConfig, Speaker};
use media::dsp::tones::{Tone, ToneName, ToneSpec, plan};

const RATE: u32 = 8_000;
/// How much tone is kept queued ahead on the device.
const AHEAD: Duration = Duration::from_millis(100);

/// A ringing speaker; stops (and releases the device) when dropped.
pub struct Ringer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ringer {
    /// Plays tone `name` of `country`'s plan (`off`: none) on `speaker`,
    /// if it is a sound card.
    pub fn start(speaker: &AudioSpec, country: &str, name: ToneName) -> Option<Ringer> {
        let tone = plan(country, name)?;
        Ringer::play(speaker, tone)
    }

    fn play(speaker: &AudioSpec, tone: ToneSpec) -> Option<Ringer> {
        if !matches!(speaker, AudioSpec::Default | AudioSpec::Device(_)) {
            return None;
        }
        let spec = speaker.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ring".into())
            .spawn(move || ring(&spec, tone, &stopping))
            .ok()?;
        Some(Ringer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ringer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn ring(spec: &AudioSpec, tone: ToneSpec, stop: &AtomicBool) {
    let mut speaker = match Speaker::open(spec, RATE, PlayoutConfig::default()) {
        Ok(speaker) => speaker,
        Err(e) => {
            tracing::warn!("cannot ring on the speaker: {e}");
            return;
        }
    };
    let mut tone = Tone::new(tone, RATE);
    let mut frame = [0i16; RATE as usize / 50];
    while !stop.load(Ordering::Relaxed) {
        while speaker.queued_time() < AHEAD {
            tone.fill(&mut frame);
            speaker.push(&frame);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
