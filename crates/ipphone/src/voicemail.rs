//! The answering machine: a call nobody answers (or a contact marked so)
//! hears a greeting and leaves a message, recorded to a WAV file in
//! `$XDG_DATA_HOME/ipphone/messages/` (else `~/.local/share/...`), listed by
//! `ipphone messages`.
//!
//! The recording is the call's own WAV speaker, so it is written to
//! `NAME.part` and renamed when the call ends: a message file is always
//! whole. Each finished message is then added, one JSON line, to
//! `index.jsonl` beside the recordings.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use media::dsp::tones::{Tone, ToneSpec};
use serde::{Deserialize, Serialize};

use crate::call::MicSource;

/// The rate of the generated greeting.
const RATE: u32 = 8_000;

/// One message left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// When it was left (Unix seconds).
    pub time: f64,
    /// The caller, as its From header named it.
    pub from: String,
    pub seconds: f64,
    pub file: PathBuf,
}

/// Where messages are kept.
pub fn directory() -> Option<PathBuf> {
    Some(crate::xdg::dir(crate::xdg::Base::Data)?.join("messages"))
}

/// A new message's recording: named after the time and the caller.
pub fn new_recording(from: &str) -> anyhow::Result<PathBuf> {
    let dir = directory().context("no place for messages: set HOME or XDG_DATA_HOME")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let caller: String = from
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Ok(dir.join(format!("{stamp}-{caller}.wav")))
}

/// The greeting: the WAV given, or a generated one (a short pause, then
/// the beep after which the caller speaks).
pub fn greeting(file: Option<&Path>) -> anyhow::Result<MicSource> {
    if let Some(file) = file {
        let (samples, rate) = media::audio::wav::read_mono(file)
            .with_context(|| format!("reading the greeting {}", file.display()))?;
        return Ok(MicSource::Clip(samples.into(), rate));
    }
    let mut pcm = vec![0i16; RATE as usize * 3 / 10];
    let mut beep = vec![0i16; RATE as usize / 2];
    Tone::new(
        ToneSpec {
            frequencies: vec![1_000.0],
            cadence: Vec::new(),
            level: 0.3,
            modulation: None,
        },
        RATE,
    )
    .fill(&mut beep);
    pcm.extend_from_slice(&beep);
    let samples: Arc<[i16]> = pcm.into();
    Ok(MicSource::Clip(samples, RATE))
}

/// Adds a finished message to the index.
pub fn record(message: &Message) -> anyhow::Result<()> {
    let dir = directory().context("no place for messages")?;
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    let mut index = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("index.jsonl"))?;
    index.write_all(&line)?;
    index.sync_data()?;
    Ok(())
}

/// `ipphone messages`: the messages left, oldest first.
pub fn list(json: bool) -> anyhow::Result<u8> {
    let Some(dir) = directory() else {
        anyhow::bail!("no place for messages: set HOME or XDG_DATA_HOME");
    };
    let text = std::fs::read_to_string(dir.join("index.jsonl")).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let mut count = 0;
    for message in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Message>(l).ok())
    {
        count += 1;
        if json {
            writeln!(out, "{}", serde_json::to_string(&message)?)?;
        } else {
            writeln!(
                out,
                "{}  {:>5.1} s  {}",
                message.from,
                message.seconds,
                message.file.display()
            )?;
        }
    }
    if count == 0 && !json {
        eprintln!("no messages");
    }
    Ok(crate::cli::exit::OK)
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_secs_f64() * 1000.0).round() / 1000.0)
}
