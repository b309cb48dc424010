//! Voice activity detection for DTX (RFC 7587 §3.1.3): a frame's energy
//! against the noise floor, which is the quietest frame of the last two
//! seconds.
//!
//! Opus's own detector (SILK's, in `ropus`) takes a microphone's faint
//! steady noise for sound worth sending, so DTX rarely starts in a real
//! pause. This one only asks whether a frame stands out from the background:
//! speech starts 6 dB above the floor and goes on while it stays 3 dB above
//! (word endings and soft consonants fade into the background slowly), and
//! after that 100 ms of hangover are still called active. The first frame
//! that stands out is speech, so an onset is never held back.

/// Speech starts this far above the noise floor, in dB: low, since a
/// syllable clipped at its start is worse than a noise burst sent.
const ONSET_DB: f32 = 6.0;
/// Speech goes on while it stays this far above the noise floor, in dB: a
/// background that fluctuates (breath, a room's rumble) keeps the stream
/// going, and only a steady one ends it. At 5 dB, DTX cut into the pauses
/// of the codec2 and LibriVox recordings, whose background varies by a few
/// dB, and their PESQ-WB through Opus fell by 0.04 to 0.1.
const CONTINUE_DB: f32 = 3.0;
/// Quieter frames are never speech, whatever the floor (about 6 LSB RMS).
const QUIETEST_SPEECH_DBFS: f32 = -75.0;
/// How long frames are still called active after speech falls back to the
/// background.
const HANGOVER_MS: u32 = 100;
/// The floor is the minimum frame energy over `FLOOR_SPANS` spans of
/// `FLOOR_SPAN_MS` (minimum statistics): it falls at once when the room gets
/// quieter and rises within two seconds when it gets louder, since speech
/// pauses for breath more often than that.
const FLOOR_SPAN_MS: u32 = 250;
const FLOOR_SPANS: usize = 8;
/// The floor assumed until two seconds have been heard: a quiet room, so
/// that the first words of a call are speech even if nothing quieter came
/// before them.
const FIRST_FLOOR_DBFS: f32 = -70.0;
/// Energy of digital silence, as a level: below anything a 16-bit sample
/// can carry.
const SILENT_DBFS: f32 = -100.0;

/// What [`Vad::classify`] made of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// The frame stands out from the background.
    Speech,
    /// Background within [`HANGOVER_MS`] of speech: still worth sending.
    Hangover,
    /// Background: a pause that DTX need not send.
    Silence,
}

impl Activity {
    /// Whether the frame should be sent: speech or its hangover.
    pub fn is_active(self) -> bool {
        self != Activity::Silence
    }
}

/// A voice activity detector for one mono stream at one sample rate; frames
/// may be of any length (10 to 60 ms for Opus) and change between calls.
#[derive(Debug, Clone)]
pub struct Vad {
    /// Minimum frame energy (dBFS) in each of the last spans, oldest first
    /// after `span`.
    minima: [f32; FLOOR_SPANS],
    /// The span being filled, and how many samples it has had.
    span: usize,
    span_samples: u32,
    span_len: u32,
    /// Samples of hangover left.
    hangover: u32,
    hangover_len: u32,
    activity: Activity,
}

impl Vad {
    /// A detector for audio at `sample_rate` Hz, starting in silence.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            minima: [FIRST_FLOOR_DBFS; FLOOR_SPANS],
            span: 0,
            span_samples: 0,
            span_len: sample_rate * FLOOR_SPAN_MS / 1000,
            hangover: 0,
            hangover_len: sample_rate * HANGOVER_MS / 1000,
            activity: Activity::Silence,
        }
    }

    /// Classifies the next frame of the stream and learns the background
    /// from it.
    pub fn classify(&mut self, frame: &[i16]) -> Activity {
        if frame.is_empty() {
            return self.activity;
        }
        let level = Self::level_dbfs(frame);
        let above = level - self.noise_floor_dbfs();
        let threshold = match self.activity {
            Activity::Silence => ONSET_DB,
            Activity::Speech | Activity::Hangover => CONTINUE_DB,
        };
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.activity = if above >= threshold && level >= QUIETEST_SPEECH_DBFS {
            self.hangover = self.hangover_len;
            Activity::Speech
        } else if self.hangover > 0 {
            self.hangover = self.hangover.saturating_sub(len);
            Activity::Hangover
        } else {
            Activity::Silence
        };
        self.learn(level, len);
        self.activity
    }

    /// The background's level now, in dBFS (a full-scale sine is -3).
    pub fn noise_floor_dbfs(&self) -> f32 {
        self.minima.iter().copied().fold(f32::INFINITY, f32::min)
    }

    /// The frame's variance (its power without a microphone's DC offset),
    /// in dB relative to full scale. Per frame, not through a filter whose
    /// ringing would carry a loud frame into the quiet one after it.
    fn level_dbfs(frame: &[i16]) -> f32 {
        let n = frame.len() as f64;
        let (sum, squares) = frame.iter().fold((0.0f64, 0.0f64), |(s, q), &x| {
            let x = f64::from(x);
            (s + x, q + x * x)
        });
        let variance = (squares / n - (sum / n).powi(2)).max(0.0);
        let power = variance / f64::from(i16::MAX).powi(2);
        if power > 0.0 {
            ((10.0 * power.log10()) as f32).max(SILENT_DBFS)
        } else {
            SILENT_DBFS
        }
    }

    fn learn(&mut self, level: f32, len: u32) {
        let minimum = &mut self.minima[self.span];
        *minimum = minimum.min(level);
        self.span_samples += len;
        if self.span_samples >= self.span_len {
            self.span_samples -= self.span_len;
            self.span = (self.span + 1) % FLOOR_SPANS;
            self.minima[self.span] = f32::INFINITY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::signal::test_speech;

    /// White noise at about `dbfs`, seeded.
    fn noise(samples: usize, dbfs: f64, seed: u32) -> Vec<i16> {
        let mut state = seed.max(1);
        // Uniform noise of peak `a` has an RMS of a / sqrt(3).
        let peak = 32_767.0 * 10f64.powf(dbfs / 20.0) * 3f64.sqrt();
        (0..samples)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let u = f64::from(state) / f64::from(u32::MAX) * 2.0 - 1.0;
                (u * peak).round() as i16
            })
            .collect()
    }

    /// Speech-like sound on a microphone's -60 dBFS noise (the pauses
    /// between its words are digital silence otherwise).
    fn talk(rate: u32, seconds: f64, seed: u32) -> Vec<i16> {
        let speech = test_speech(rate, seconds);
        let noise = noise(speech.len(), -60.0, seed);
        speech
            .iter()
            .zip(noise)
            .map(|(&s, n)| s.saturating_add(n))
            .collect()
    }

    fn classify_all(vad: &mut Vad, pcm: &[i16], frame: usize) -> Vec<Activity> {
        pcm.chunks_exact(frame).map(|f| vad.classify(f)).collect()
    }

    #[test]
    fn faint_noise_is_silence_and_speech_is_speech() {
        let mut vad = Vad::new(16_000);
        let quiet = classify_all(&mut vad, &noise(48_000, -60.0, 7), 320);
        let floor = vad.noise_floor_dbfs();
        assert!((-63.0..-59.0).contains(&floor), "floor {floor:.1} dBFS");
        // Above the first floor (-70 dBFS), the noise starts as speech, and
        // is silence once the floor has learnt it, within two seconds.
        let last_active = quiet.iter().rposition(|a| a.is_active()).unwrap_or(0);
        assert!(last_active < 100 + 5, "active until frame {last_active}");

        let talk = classify_all(&mut vad, &talk(16_000, 4.0, 9), 320);
        let active = talk.iter().filter(|a| a.is_active()).count();
        eprintln!(
            "floor {floor:.1} dBFS; {active} of {} speech frames active",
            talk.len()
        );
        assert!(
            active * 10 > talk.len() * 7,
            "{active} of {} active",
            talk.len()
        );
        // Pauses between words within the hangover stay active.
        assert!(
            talk[..10].iter().all(|a| a.is_active()),
            "{:?}",
            &talk[..10]
        );
    }

    #[test]
    fn an_onset_is_speech_in_its_first_frame() {
        for frame in [160, 320, 960] {
            let mut vad = Vad::new(16_000);
            let mut pcm = noise(64_000, -60.0, 3);
            let speech = talk(16_000, 1.0, 5);
            // Speech from the middle of a frame on.
            let start = 64_000 - frame / 2;
            pcm.truncate(start);
            pcm.extend_from_slice(&speech);
            let activity = classify_all(&mut vad, &pcm, frame);
            let onset = start / frame;
            assert_eq!(activity[onset - 1], Activity::Silence, "{frame}");
            assert_eq!(activity[onset], Activity::Speech, "{frame}");
        }
    }

    #[test]
    fn hangover_lasts_100_ms_after_speech() {
        let mut vad = Vad::new(48_000);
        let mut pcm = noise(96_000 * 2, -60.0, 5);
        pcm.extend(talk(48_000, 0.5, 7));
        pcm.extend(noise(48_000, -60.0, 9));
        let activity = classify_all(&mut vad, &pcm, 960);
        let end = (96_000 * 2 + 24_000) / 960;
        let last_speech = activity
            .iter()
            .rposition(|&a| a == Activity::Speech)
            .expect("speech found");
        assert!(last_speech + 1 >= end, "speech ends at {last_speech}");
        assert_eq!(
            activity[last_speech + 1..last_speech + 6],
            [Activity::Hangover; 5]
        );
        assert!(
            activity[last_speech + 6..]
                .iter()
                .all(|&a| a == Activity::Silence)
        );
    }

    #[test]
    fn a_louder_room_becomes_the_floor_within_two_seconds() {
        let mut vad = Vad::new(16_000);
        classify_all(&mut vad, &noise(32_000, -65.0, 11), 320);
        let louder = classify_all(&mut vad, &noise(64_000, -45.0, 13), 320);
        // At first the step up counts as speech; not for long.
        assert_eq!(louder[0], Activity::Speech);
        assert!(louder[120..].iter().all(|&a| a == Activity::Silence));
        // Digital silence is never speech, nor a floor that makes dither so.
        let mut vad = Vad::new(8_000);
        let zeros = classify_all(&mut vad, &[0; 32_000], 160);
        assert!(zeros.iter().all(|&a| a == Activity::Silence));
        let dither = classify_all(&mut vad, &noise(8_000, -90.0, 17), 160);
        assert!(dither.iter().all(|&a| a == Activity::Silence));
    }
}
