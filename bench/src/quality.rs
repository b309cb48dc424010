//! The quality grid: codec x loss x jitter x seed through [`crate::grid`],
//! scored with PESQ beside the codec's own offline round trip, and the
//! bitrate of half-silent conversation with DTX.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use media::dsp::correlate;
use media::voice::VoiceCodec;
use serde::Serialize;

use crate::grid::{self, PathSpec};

/// One row of the grid: the mean over seeds of one codec on one path.
#[derive(Debug, Serialize)]
pub struct GridRow {
    pub codec: String,
    pub loss_percent: f64,
    pub jitter_ms: u64,
    pub seeds: usize,
    /// P.862.2 wideband for Opus, P.862 narrowband for PCMU.
    pub pesq: Option<f64>,
    pub pesq_kind: &'static str,
    /// The codec's own round trip of the same speech, same run.
    pub pesq_offline: Option<f64>,
    pub delay_ms: f64,
    pub late_percent: f64,
    pub concealed_percent: f64,
    pub fec_percent: f64,
    /// IP + UDP + RTP, the speech's direction.
    pub wire_kbps: f64,
}

/// The bitrate of speech with pauses.
#[derive(Debug, Serialize)]
pub struct ConversationRow {
    pub codec: String,
    pub speech_seconds: f64,
    pub silence_percent: f64,
    pub packets_per_second: f64,
    pub wire_kbps: f64,
}

pub struct Codecs {
    pub list: Vec<(String, VoiceCodec)>,
}

impl Codecs {
    pub fn grid() -> Self {
        Self {
            list: vec![
                ("opus 16k".into(), VoiceCodec::Opus { bitrate: 16_000 }),
                ("opus 24k".into(), VoiceCodec::Opus { bitrate: 24_000 }),
                ("pcmu".into(), VoiceCodec::Pcmu),
            ],
        }
    }
}

pub const LOSSES: [f64; 4] = [0.0, 0.05, 0.10, 0.20];
pub const JITTERS_MS: [u64; 3] = [0, 30, 60];

/// Runs the grid on `speech_16k` and scores it with `python` (which has
/// PyPI's `pesq` and `numpy`).
pub fn run_grid(
    speech_16k: &[i16],
    seeds: u64,
    python: &Path,
    work: &Path,
) -> anyhow::Result<Vec<GridRow>> {
    let mut jobs = Vec::new();
    let mut cells = Vec::new();
    for (name, codec) in Codecs::grid().list {
        let rate = codec.sample_rate();
        let speech = resample(speech_16k, rate);
        let mode = if rate == 16_000 { "wb" } else { "nb" };
        let reference = work.join(format!("ref-{rate}.wav"));
        write_wav(&reference, &speech, rate)?;
        let offline = grid::offline_round_trip(codec, &speech);
        let offline_path = work.join(format!("offline-{}.wav", slug(&name)));
        let lag = correlate::align(&speech, &offline, rate as usize / 10).map_or(0, |a| a.lag);
        write_wav(&offline_path, &trim(&offline, lag, speech.len()), rate)?;
        let offline_job = jobs.len();
        jobs.push(job(&reference, &offline_path, mode));
        for loss in LOSSES {
            for jitter_ms in JITTERS_MS {
                let path = PathSpec {
                    loss,
                    jitter: Duration::from_millis(jitter_ms),
                };
                let mut runs = Vec::new();
                for seed in 1..=seeds {
                    let out = grid::call(codec, &speech, path, seed);
                    let a = correlate::align(&speech, &out.played, rate as usize / 2)
                        .context("a grid call played nothing like the speech")?;
                    let file = work.join(format!(
                        "{}-{}-{}-{}.wav",
                        slug(&name),
                        (loss * 100.0) as u32,
                        jitter_ms,
                        seed
                    ));
                    write_wav(&file, &trim(&out.played, a.lag, speech.len()), rate)?;
                    runs.push((jobs.len(), a.lag_ms(rate), out));
                    jobs.push(job(&reference, &file, mode));
                }
                cells.push((name.clone(), mode, loss, jitter_ms, offline_job, runs));
            }
        }
    }
    let scores = pesq_scores(python, &jobs)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    let mut rows = Vec::new();
    for (codec, mode, loss, jitter_ms, offline_job, runs) in cells {
        let pesq: Vec<f64> = runs.iter().filter_map(|r| scores[r.0]).collect();
        let percent = |f: &dyn Fn(&grid::Outcome) -> u64| {
            mean(
                &runs
                    .iter()
                    .map(|r| f(&r.2) as f64 * 100.0 / r.2.packets_sent.max(1) as f64)
                    .collect::<Vec<_>>(),
            )
        };
        rows.push(GridRow {
            codec,
            loss_percent: loss * 100.0,
            jitter_ms,
            seeds: runs.len(),
            pesq: (!pesq.is_empty()).then(|| round(mean(&pesq), 2)),
            pesq_kind: if mode == "wb" {
                "P.862.2 WB"
            } else {
                "P.862 NB"
            },
            pesq_offline: scores[offline_job].map(|s| round(s, 2)),
            delay_ms: round(mean(&runs.iter().map(|r| r.1).collect::<Vec<_>>()), 1),
            late_percent: round(percent(&|o| o.late), 2),
            concealed_percent: round(percent(&|o| o.concealed), 2),
            fec_percent: round(percent(&|o| o.fec_recovered), 2),
            wire_kbps: round(
                mean(
                    &runs
                        .iter()
                        .map(|r| r.2.wire_bytes as f64 * 8.0 / r.2.seconds / 1000.0)
                        .collect::<Vec<_>>(),
                ),
                1,
            ),
        });
    }
    Ok(rows)
}

/// Speech with pauses, about half silence, as one side of a conversation
/// is: two seconds of talk, two of listening (with a microphone's faint
/// noise floor, not digital zero), repeated through the speech.
pub fn conversation(speech_16k: &[i16]) -> Vec<i16> {
    let piece = 32_000;
    let mut out = Vec::new();
    let mut noise = 0x2545_f491_u32;
    for chunk in speech_16k.chunks(piece) {
        out.extend_from_slice(chunk);
        for _ in 0..piece {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            // About -60 dBFS of white noise.
            out.push(((noise >> 16) as i16 as i32 * 33 / 32_768) as i16);
        }
    }
    out
}

pub fn run_conversation(speech_16k: &[i16]) -> Vec<ConversationRow> {
    let talk = conversation(speech_16k);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let mut rows = Vec::new();
    for (name, codec) in [
        (
            "opus 24k, DTX".to_string(),
            VoiceCodec::Opus { bitrate: 24_000 },
        ),
        ("pcmu".to_string(), VoiceCodec::Pcmu),
    ] {
        let speech = resample(&talk, codec.sample_rate());
        let out = grid::call(
            codec,
            &speech,
            PathSpec {
                loss: 0.0,
                jitter: Duration::ZERO,
            },
            1,
        );
        rows.push(ConversationRow {
            codec: name,
            speech_seconds: round(out.seconds),
            silence_percent: round(
                100.0 * (talk.len() - speech_16k.len()) as f64 / talk.len() as f64,
            ),
            packets_per_second: round(out.packets_sent as f64 / out.seconds),
            wire_kbps: round(out.wire_bytes as f64 * 8.0 / out.seconds / 1000.0),
        });
    }
    rows
}

fn job(reference: &Path, degraded: &Path, mode: &str) -> serde_json::Value {
    serde_json::json!({ "reference": reference, "degraded": degraded, "mode": mode })
}

fn pesq_scores(python: &Path, jobs: &[serde_json::Value]) -> anyhow::Result<Vec<Option<f64>>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pesq_score.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} (bench/run sets up PESQ)", python.display()))?;
    serde_json::to_writer(child.stdin.take().context("python's stdin")?, jobs)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("PESQ scoring failed ({})", out.status);
    }
    let scores: Vec<Option<f64>> = serde_json::from_slice(&out.stdout)?;
    if scores.len() != jobs.len() {
        bail!("PESQ scored {} of {} files", scores.len(), jobs.len());
    }
    Ok(scores)
}

fn resample(speech_16k: &[i16], rate: u32) -> Vec<i16> {
    if rate == 16_000 {
        return speech_16k.to_vec();
    }
    let mut out = Vec::new();
    media::codec::resample::Resampler::new(16_000, rate).process(speech_16k, &mut out);
    out
}

/// `len` samples of `played` from `lag` on, padded with silence.
fn trim(played: &[i16], lag: usize, len: usize) -> Vec<i16> {
    let mut out: Vec<i16> = played.iter().skip(lag).take(len).copied().collect();
    out.resize(len, 0);
    out
}

fn write_wav(path: &Path, samples: &[i16], rate: u32) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()?;
    Ok(())
}

fn slug(name: &str) -> String {
    name.replace([' ', ','], "-")
}

pub fn markdown(grid: &[GridRow], talk: &[ConversationRow]) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
    let mut s = String::from(
        "\n## The media path under loss and jitter\n\n\
         ipphone's own RTP media path (the encoder, RTP/RTCP stream, jitter buffer, decoder, \
         FEC, concealment and time-stretching a call runs) on the seeded network emulator's \
         virtual clock: codec2's speech_orig_16k.wav (10.8 s) one way, RTCP both ways, the \
         receiver's speaker pulling frames as the call loop does. Loss is random; jitter J \
         spreads each packet's one-way delay uniformly over [0, J] (packets overtake each \
         other). Means over the seeds. PESQ is PyPI `pesq` against the sent speech; offline \
         is the codec's own encoder-to-decoder round trip of the same speech, same run. Delay is \
         file to file by cross-correlation, network delay and the speaker's 10 ms queue \
         included, sound cards excluded. Late: packets that came after their time was played; \
         concealed: packets never played (lost or late), their time filled by FEC or \
         concealment; FEC: of those, rebuilt from the next packet. Bitrate is IP+UDP+RTP of the \
         speech's direction.\n\n\
         | codec | loss % | jitter ms | seeds | PESQ | kind | offline PESQ | delay ms | late % | concealed % | FEC % | kbit/s on the wire |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in grid {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.codec,
            r.loss_percent,
            r.jitter_ms,
            r.seeds,
            opt(r.pesq),
            r.pesq_kind,
            opt(r.pesq_offline),
            r.delay_ms,
            r.late_percent,
            r.concealed_percent,
            r.fec_percent,
            r.wire_kbps
        ));
    }
    s.push_str(
        "\n## Bitrate of conversation (speech with pauses)\n\n\
         The same speech cut into 2 s pieces with 2 s of faint noise (about -60 dBFS) after \
         each, as one side of a conversation; clean path. IP+UDP+RTP, RTCP excluded.\n\n\
         | codec | seconds | silence % | packets/s | kbit/s on the wire |\n|---|---|---|---|---|\n",
    );
    for r in talk {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.codec, r.speech_seconds, r.silence_percent, r.packets_per_second, r.wire_kbps
        ));
    }
    s
}
