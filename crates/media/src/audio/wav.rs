//! WAV files as a microphone and as a speaker, paced in real time.
//!
//! The microphone reads the file as a sound card would deliver it: a few
//! milliseconds at a time, at the file's own sample rate (the shared layer
//! resamples), and silence once the file has ended. The speaker writes a
//! sample for each sample time from the moment it opens, silence wherever
//! nothing was played, so that a file sent and the file received line up and
//! their offset is the real delay of the call. Both do their work on the
//! thread that uses them, as their samples fall due (see `pace`).
//!
//! A recording is written to `NAME.part` and renamed when it is finished, so
//! the name never refers to a half-written file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::pace::{Paced, PacedTask};
use super::{AudioError, MicStream, SpeakerStream, StreamCounters, apply_discard, ring_capacity};

/// Checks that `path` opens as a WAV file ipphone can read.
pub fn check_readable(path: &Path) -> Result<(), AudioError> {
    open_reader(path).map(|_| ())
}

/// Reads all of `path` as mono 16-bit samples (channels averaged), with its
/// sample rate: for measuring recordings, not for calls.
pub fn read_mono(path: &Path) -> Result<(Vec<i16>, u32), AudioError> {
    let reader = open_reader(path)?;
    let rate = reader.spec().sample_rate;
    Ok((mono_samples(reader).collect(), rate))
}

/// Opens `path` as a microphone delivering its samples in real time.
pub fn open_mic(path: &Path) -> Result<MicStream, AudioError> {
    let reader = open_reader(path)?;
    let spec = reader.spec();
    let source: Box<dyn Source> = if spec.channels == 1
        && spec.bits_per_sample == 16
        && spec.sample_format == hound::SampleFormat::Int
    {
        // The usual file, read a block at a time: what `mono_samples` makes
        // of it sample by sample, exactly (an i16 scaled to [-1, 1) and back
        // is itself).
        let left = reader.len();
        Box::new(Pcm16 {
            // `WavReader::new` stops at the first sample of the data chunk.
            reader: reader.into_inner(),
            left,
            bytes: Vec::new(),
        })
    } else {
        Box::new(Samples(mono_samples(reader)))
    };
    Ok(open_source(spec.sample_rate, source))
}

/// A microphone that plays `samples` at `rate` Hz in real time, then silence.
pub fn open_clip(samples: Arc<[i16]>, rate: u32) -> MicStream {
    open_source(rate, Box::new(Clip { samples, at: 0 }))
}

/// Opens `path` for writing, as a speaker recording at `rate` Hz.
pub fn open_speaker(path: &Path, rate: u32) -> Result<SpeakerStream, AudioError> {
    let part = part_path(path);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let writer = hound::WavWriter::create(&part, spec).map_err(|e| AudioError::WavWrite {
        path: part.clone(),
        reason: e.to_string(),
    })?;
    let (ring, consumer) = rtrb::RingBuffer::<i16>::new(ring_capacity(rate));
    let counters = Arc::new(StreamCounters::default());
    let task = Recorder {
        consumer,
        counters: counters.clone(),
        writer,
        failed: None,
        part,
        target: path.to_owned(),
    };
    Ok(SpeakerStream {
        rate,
        ring,
        device_latency: 0,
        counters,
        driver: Box::new(Paced::new(rate, task)),
    })
}

/// Writes what the ring holds, and silence for what it lacks, as samples fall
/// due; finishing writes the header and moves the file into place.
struct Recorder {
    consumer: rtrb::Consumer<i16>,
    counters: Arc<StreamCounters>,
    writer: hound::WavWriter<std::io::BufWriter<File>>,
    failed: Option<hound::Error>,
    part: PathBuf,
    target: PathBuf,
}

impl PacedTask for Recorder {
    fn step(&mut self, samples: usize) {
        apply_discard(&mut self.consumer, &self.counters);
        let have = self.consumer.slots().min(samples);
        // Nothing more is written after a failure, as `finish` reports it.
        let mut block = self
            .failed
            .is_none()
            .then(|| self.writer.get_i16_writer(samples as u32));
        if let Ok(chunk) = self.consumer.read_chunk(have) {
            let (a, b) = chunk.as_slices();
            if let Some(block) = &mut block {
                for &s in a.iter().chain(b) {
                    block.write_sample(s);
                }
            }
            chunk.commit_all();
        }
        if let Some(mut block) = block {
            for _ in have..samples {
                block.write_sample(0i16);
            }
            if let Err(e) = block.flush() {
                self.failed = Some(e);
            }
        }
        if samples > have {
            self.counters
                .xruns
                .fetch_add((samples - have) as u64, Ordering::Relaxed);
        }
    }

    fn finish(self) {
        let finished = match self.failed {
            Some(e) => Err(e),
            None => self.writer.finalize(),
        };
        let moved = finished
            .map_err(|e| e.to_string())
            .and_then(|()| std::fs::rename(&self.part, &self.target).map_err(|e| e.to_string()));
        if let Err(reason) = moved {
            tracing::error!(
                "the recording {} could not be finished: {reason}; what was written is in {}",
                self.target.display(),
                self.part.display()
            );
        }
    }
}

fn open_source(rate: u32, source: Box<dyn Source>) -> MicStream {
    let (producer, ring) = rtrb::RingBuffer::new(ring_capacity(rate));
    let counters = Arc::new(StreamCounters::default());
    let task = Player {
        producer,
        counters: counters.clone(),
        source,
    };
    MicStream {
        rate,
        ring,
        counters,
        driver: Box::new(Paced::new(rate, task)),
    }
}

/// Moves the source's samples into the ring as they fall due; silence after
/// its end.
struct Player {
    producer: rtrb::Producer<i16>,
    counters: Arc<StreamCounters>,
    source: Box<dyn Source>,
}

impl PacedTask for Player {
    fn step(&mut self, samples: usize) {
        let free = self.producer.slots();
        let take = samples.min(free);
        let mut ended = false;
        if let Ok(mut chunk) = self.producer.write_chunk(take) {
            let (a, b) = chunk.as_mut_slices();
            for part in [a, b] {
                // Silence (the chunk's zeros) after the end.
                ended |= self.source.fill(part) < part.len();
            }
            chunk.commit_all();
        }
        if ended {
            self.counters.ended.store(true, Ordering::Relaxed);
        }
        if samples > free {
            self.counters
                .xruns
                .fetch_add((samples - free) as u64, Ordering::Relaxed);
        }
    }

    fn finish(self) {}
}

/// Where a microphone's samples come from.
trait Source: Send {
    /// Fills the start of `out` with the next samples; returns how many
    /// there were, fewer than `out` holds only at the end.
    fn fill(&mut self, out: &mut [i16]) -> usize;
}

/// Samples from an iterator (files in other formats).
struct Samples<I>(I);

impl<I: Iterator<Item = i16> + Send> Source for Samples<I> {
    fn fill(&mut self, out: &mut [i16]) -> usize {
        for (n, slot) in out.iter_mut().enumerate() {
            match self.0.next() {
                Some(s) => *slot = s,
                None => return n,
            }
        }
        out.len()
    }
}

/// Samples held in memory.
struct Clip {
    samples: Arc<[i16]>,
    at: usize,
}

impl Source for Clip {
    fn fill(&mut self, out: &mut [i16]) -> usize {
        let rest = &self.samples[self.at.min(self.samples.len())..];
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        n
    }
}

/// The data chunk of a mono 16-bit PCM file, read in blocks.
struct Pcm16 {
    reader: BufReader<File>,
    /// Samples of the data chunk not read yet.
    left: u32,
    bytes: Vec<u8>,
}

impl Source for Pcm16 {
    fn fill(&mut self, out: &mut [i16]) -> usize {
        let wanted = out.len().min(self.left as usize);
        self.bytes.resize(wanted * 2, 0);
        // As many whole samples as can be read: a read error or a file
        // shorter than its header says ends it, as it ends `mono_samples`.
        let mut got = 0;
        while got < self.bytes.len() {
            match self.reader.read(&mut self.bytes[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let n = got / 2;
        for (slot, pair) in out.iter_mut().zip(self.bytes[..n * 2].chunks_exact(2)) {
            *slot = i16::from_le_bytes([pair[0], pair[1]]);
        }
        self.left = if n < wanted { 0 } else { self.left - n as u32 };
        n
    }
}

fn open_reader(path: &Path) -> Result<hound::WavReader<BufReader<File>>, AudioError> {
    let reader = hound::WavReader::open(path).map_err(|e| AudioError::WavRead {
        path: path.to_owned(),
        reason: match e {
            hound::Error::IoError(io) => io.to_string(),
            other => format!("not a WAV file ipphone can read ({other})"),
        },
    })?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate < 4_000 || spec.sample_rate > 192_000 {
        return Err(AudioError::WavRead {
            path: path.to_owned(),
            reason: format!(
                "{} channels at {} Hz is not audio ipphone can use",
                spec.channels, spec.sample_rate
            ),
        });
    }
    Ok(reader)
}

/// The file's samples as mono 16-bit: channels averaged, any sample format.
fn mono_samples(reader: hound::WavReader<BufReader<File>>) -> impl Iterator<Item = i16> + Send {
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    let as_f32: Box<dyn Iterator<Item = f32> + Send> = match spec.sample_format {
        hound::SampleFormat::Float => Box::new(reader.into_samples::<f32>().map_while(Result::ok)),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            Box::new(
                reader
                    .into_samples::<i32>()
                    .map_while(Result::ok)
                    .map(move |s| s as f32 * scale),
            )
        }
    };
    let mut frames = as_f32;
    std::iter::from_fn(move || {
        let mut sum = 0.0;
        for i in 0..channels {
            match frames.next() {
                Some(s) => sum += s,
                None if i == 0 => return None,
                None => break,
            }
        }
        Some(
            ((sum / channels as f32) * 32768.0)
                .round()
                .clamp(-32768.0, 32767.0) as i16,
        )
    })
}

/// Writes `samples` to `path` as a mono 16-bit WAV, through `NAME.part`
/// renamed when complete, so `path` is never half-written.
pub fn write_mono(path: &Path, rate: u32, samples: &[i16]) -> Result<(), AudioError> {
    let part = part_path(path);
    let failed = |reason: String| AudioError::WavWrite {
        path: path.to_owned(),
        reason,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let result = (|| {
        let mut writer = hound::WavWriter::create(&part, spec).map_err(|e| e.to_string())?;
        for &s in samples {
            writer.write_sample(s).map_err(|e| e.to_string())?;
        }
        writer.finalize().map_err(|e| e.to_string())?;
        std::fs::rename(&part, path).map_err(|e| e.to_string())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result.map_err(failed)
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".part");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ipphone-wav-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).expect("create");
        for &s in samples {
            w.write_sample(s).expect("write");
        }
        w.finalize().expect("finalize");
    }

    #[test]
    fn microphone_delivers_in_real_time_then_silence() {
        let path = scratch("mic").join("ramp.wav");
        let samples: Vec<i16> = (0..8_000).map(|i| (i % 1000) as i16 + 1).collect();
        write_wav(&path, 8_000, 1, &samples);
        let mut mic = open_mic(&path).expect("open");
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        mic.driver.advance(Instant::now());
        let available = mic.ring.slots();
        let elapsed = start.elapsed().as_secs_f64();
        // A sound card delivers as time passes, not all at once.
        assert!(
            available as f64 <= (elapsed + 0.05) * 8_000.0,
            "{available} after {elapsed}"
        );
        assert!(
            available as f64 >= (elapsed - 0.1) * 8_000.0,
            "{available} after {elapsed}"
        );
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while got.len() < 10_000 && Instant::now() < deadline {
            mic.driver.advance(Instant::now());
            while let Ok(s) = mic.ring.pop() {
                got.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(&got[..8_000], &samples[..], "the file's samples in order");
        assert!(
            got[8_000..].iter().all(|&s| s == 0),
            "silence after the end"
        );
        assert!(mic.counters.ended.load(Ordering::Relaxed));
    }

    #[test]
    fn stereo_files_are_mixed_to_mono() {
        let path = scratch("stereo").join("stereo.wav");
        write_wav(&path, 16_000, 2, &[1000, 3000, -200, -400, 7, 9]);
        let mut mic = open_mic(&path).expect("open");
        assert_eq!(mic.rate, 16_000);
        std::thread::sleep(Duration::from_millis(50));
        mic.driver.advance(Instant::now());
        let got: Vec<i16> = std::iter::from_fn(|| mic.ring.pop().ok()).take(3).collect();
        assert_eq!(got, [2000, -300, 8]);
    }

    #[test]
    fn a_mono_16_bit_file_is_read_in_blocks_as_sample_by_sample() {
        let dir = scratch("blocks");
        let path = dir.join("ramp.wav");
        let samples: Vec<i16> = (0..1_000).map(|i| (i * 65 - 32_768) as i16).collect();
        write_wav(&path, 16_000, 1, &samples);
        // A file cut short of what its header says ends where it is cut.
        let bytes = std::fs::read(&path).expect("read");
        let cut = dir.join("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() - 501]).expect("write");
        for path in [&path, &cut] {
            let expected: Vec<i16> = mono_samples(open_reader(path).expect("open")).collect();
            let reader = open_reader(path).expect("open");
            let left = reader.len();
            let mut source = Pcm16 {
                reader: reader.into_inner(),
                left,
                bytes: Vec::new(),
            };
            let mut got = Vec::new();
            for size in (1..).cycle() {
                let mut block = vec![7i16; size % 97];
                let n = source.fill(&mut block);
                got.extend_from_slice(&block[..n]);
                if n < block.len() {
                    break;
                }
            }
            assert_eq!(got, expected, "{}", path.display());
        }
    }

    #[test]
    fn not_a_wav_file_is_a_clear_error() {
        let path = scratch("bad").join("text.wav");
        std::fs::write(&path, "hello").expect("write");
        let err = check_readable(&path).expect_err("not a WAV file");
        assert!(err.to_string().contains("not a WAV file"), "{err}");
        let err = check_readable(&path.with_file_name("missing.wav")).expect_err("missing");
        assert!(err.to_string().contains("missing.wav"), "{err}");
    }

    #[test]
    fn speaker_records_silence_for_gaps_and_finishes_the_file() {
        let dir = scratch("speaker");
        let path = dir.join("heard.wav");
        let mut speaker = open_speaker(&path, 8_000).expect("open");
        assert!(!path.exists(), "only the .part file exists while recording");
        std::thread::sleep(Duration::from_millis(100));
        speaker.driver.advance(Instant::now());
        for _ in 0..800 {
            speaker.ring.push(1234).expect("room in the ring");
        }
        std::thread::sleep(Duration::from_millis(250));
        drop(speaker);
        assert!(!part_path(&path).exists());
        let mut r = hound::WavReader::open(&path).expect("finished WAV");
        let got: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
        let first = got
            .iter()
            .position(|&s| s == 1234)
            .expect("the played samples");
        // About 100 ms of silence before what was played, as a clock would have it.
        assert!((600..=1_200).contains(&first), "played at sample {first}");
        assert_eq!(got[first..].iter().take_while(|&&s| s == 1234).count(), 800);
        assert!(
            got.len() >= first + 800 + 400,
            "silence goes on after the audio: {}",
            got.len()
        );
    }
}
