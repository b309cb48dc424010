//! The quality grid: codec x loss x jitter x seed through [`crate::grid`],
//! scored with PESQ beside the codec's own offline round trip; the slow link
//! (32 kbit/s each way), the adapting sender beside the fixed one; and the
//! bitrate of half-silent conversation with DTX.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use media::dsp::correlate;
use media::voice::VoiceCodec;
use serde::Serialize;

use crate::grid::{self, PathSpec, Sender};

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
    /// Packets lost on the way whose frame a later packet's RFC 2198 copy
    /// brought in time.
    pub red_percent: f64,
    /// IP + UDP + RTP, the speech's direction.
    pub wire_kbps: f64,
    /// For the slow-link rows: what only they have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_link: Option<SlowLink>,
}

/// A slow-link row's own figures. The steady state is the last of the
/// three passes of the speech (the last 10.8 s of 32.4): PESQ, delay, and
/// the row's late, concealed, FEC and bitrate figures are of that part.
#[derive(Debug, Serialize)]
pub struct SlowLink {
    /// "adaptive" or "fixed".
    pub sender: &'static str,
    pub cap_kbps: f64,
    pub queue_ms: u64,
    /// Seconds until the media's rate on the wire (1 s average) first went
    /// under the cap; `None` if it never did.
    pub adapt_seconds: Option<f64>,
    /// The lowest and highest PESQ of the seeds.
    pub pesq_min: Option<f64>,
    pub pesq_max: Option<f64>,
    /// Packets lost on the link or late, of those sent in the steady state.
    pub late_lost_percent: f64,
    /// The same over the whole call, adaptation included.
    pub late_lost_all_percent: f64,
    /// 95th percentile of the one-way network delay (queue included), steady state.
    pub network_delay_p95_ms: f64,
    /// The sender's RTCP on the wire, same direction.
    pub rtcp_kbps: f64,
    /// Mean packet time, steady state.
    pub packet_ms: f64,
}

/// The slow link: 32 kbit/s each way, a 250 ms tail-drop queue, 20 ms of
/// propagation.
pub const SLOW_LINK_BPS: u64 = 32_000;
pub const SLOW_LINK_QUEUE: Duration = Duration::from_millis(250);
pub const SLOW_LINK_DELAY: Duration = Duration::from_millis(20);

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

/// One cell of the grid: a codec of [`Codecs::grid`] by name, a loss in
/// percent and a jitter in milliseconds; written `opus 24k,10,30`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub codec: String,
    pub loss_percent: f64,
    pub jitter_ms: u64,
}

impl std::str::FromStr for Cell {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let names = || {
            Codecs::grid()
                .list
                .into_iter()
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = s.split(',').map(str::trim);
        let (Some(codec), Some(loss), Some(jitter), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!("a cell is CODEC,LOSS%,JITTER_MS, e.g. \"opus 24k,10,0\"; not {s:?}");
        };
        if !Codecs::grid().list.iter().any(|(name, _)| name == codec) {
            bail!("no codec {codec:?} in the grid; it has {}", names());
        }
        Ok(Cell {
            codec: codec.to_owned(),
            loss_percent: loss.parse().context("a cell's loss is a percentage")?,
            jitter_ms: jitter.parse().context("a cell's jitter is in ms")?,
        })
    }
}

/// Runs the grid on `speech_16k` and scores it with `python` (which has
/// PyPI's `pesq` and `numpy`).
pub fn run_grid(
    speech_16k: &[i16],
    seeds: u64,
    python: &Path,
    work: &Path,
) -> anyhow::Result<Vec<GridRow>> {
    let all: Vec<Cell> = Codecs::grid()
        .list
        .into_iter()
        .flat_map(|(codec, _)| {
            LOSSES.into_iter().flat_map(move |loss| {
                let codec = codec.clone();
                JITTERS_MS.into_iter().map(move |jitter_ms| Cell {
                    codec: codec.clone(),
                    loss_percent: loss * 100.0,
                    jitter_ms,
                })
            })
        })
        .collect();
    let mut jobs = Vec::new();
    let pending = grid_cells(speech_16k, seeds, work, &all, &mut jobs)?;
    let slow = slow_link_calls(speech_16k, seeds, work, &mut jobs)?;
    let scores = pesq_scores(python, &jobs)?;
    let mut rows = cell_rows(pending, &scores);
    rows.extend(slow_link_rows(slow, &scores));
    Ok(rows)
}

/// Runs some cells of the grid alone (no slow link), scored as
/// [`run_grid`] scores them.
pub fn run_cells(
    speech_16k: &[i16],
    seeds: u64,
    python: &Path,
    work: &Path,
    cells: &[Cell],
) -> anyhow::Result<Vec<GridRow>> {
    let mut jobs = Vec::new();
    let pending = grid_cells(speech_16k, seeds, work, cells, &mut jobs)?;
    let scores = pesq_scores(python, &jobs)?;
    Ok(cell_rows(pending, &scores))
}

/// The calls of some grid cells, waiting for their PESQ scores: (codec,
/// mode, loss, jitter, the offline round trip's job, and per seed the job,
/// the delay and the outcome).
type Pending = Vec<(
    String,
    &'static str,
    f64,
    u64,
    usize,
    Vec<(usize, f64, grid::Outcome)>,
)>;

/// Runs `wanted`'s calls, queueing their PESQ jobs (and each codec's
/// offline round trip) in `jobs`.
fn grid_cells(
    speech_16k: &[i16],
    seeds: u64,
    work: &Path,
    wanted: &[Cell],
    jobs: &mut Vec<serde_json::Value>,
) -> anyhow::Result<Pending> {
    let mut cells = Vec::new();
    for (name, codec) in Codecs::grid().list {
        if !wanted.iter().any(|c| c.codec == name) {
            continue;
        }
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
        for cell in wanted.iter().filter(|c| c.codec == name) {
            let (loss, jitter_ms) = (cell.loss_percent / 100.0, cell.jitter_ms);
            let path = PathSpec::lossy(loss, Duration::from_millis(jitter_ms));
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
    Ok(cells)
}

fn cell_rows(cells: Pending, scores: &[Option<f64>]) -> Vec<GridRow> {
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
            red_percent: round(percent(&|o| o.red_recovered), 2),
            wire_kbps: round(
                mean(
                    &runs
                        .iter()
                        .map(|r| r.2.wire_bytes as f64 * 8.0 / r.2.seconds / 1000.0)
                        .collect::<Vec<_>>(),
                ),
                1,
            ),
            slow_link: None,
        });
    }
    rows
}

/// One slow-link call, waiting for its PESQ score.
struct SlowRun {
    job: usize,
    delay_ms: f64,
    outcome: grid::Outcome,
}

/// Runs the slow link with both senders and queues their PESQ jobs: Opus
/// 24k, the speech three times over, PESQ of the last pass.
fn slow_link_calls(
    speech_16k: &[i16],
    seeds: u64,
    work: &Path,
    jobs: &mut Vec<serde_json::Value>,
) -> anyhow::Result<Vec<(Sender, Vec<SlowRun>)>> {
    let codec = VoiceCodec::Opus { bitrate: 24_000 };
    let rate = codec.sample_rate();
    let reference = work.join("ref-slow-link.wav");
    write_wav(&reference, speech_16k, rate)?;
    let talk: Vec<i16> = speech_16k.repeat(3);
    let path = PathSpec::slow_link(SLOW_LINK_BPS, SLOW_LINK_QUEUE, SLOW_LINK_DELAY);
    let mut out = Vec::new();
    for sender in [Sender::Adaptive, Sender::Fixed] {
        let mut runs = Vec::new();
        for seed in 1..=seeds {
            let outcome = grid::call_with(codec, &talk, path, seed, sender);
            // The last pass, found where it was played.
            let from = (2 * speech_16k.len()).min(outcome.played.len());
            let a = correlate::align(speech_16k, &outcome.played[from..], rate as usize / 2)
                .context("a slow-link call played nothing like the speech")?;
            let file = work.join(format!("slow-link-{sender:?}-{seed}.wav"));
            write_wav(
                &file,
                &trim(&outcome.played[from..], a.lag, speech_16k.len()),
                rate,
            )?;
            runs.push(SlowRun {
                job: jobs.len(),
                delay_ms: a.lag_ms(rate),
                outcome,
            });
            jobs.push(job(&reference, &file, "wb"));
        }
        out.push((sender, runs));
    }
    Ok(out)
}

fn slow_link_rows(calls: Vec<(Sender, Vec<SlowRun>)>, scores: &[Option<f64>]) -> Vec<GridRow> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    let mut rows = Vec::new();
    for (sender, runs) in calls {
        let over =
            |f: &dyn Fn(&SlowRun) -> f64| round(mean(&runs.iter().map(f).collect::<Vec<_>>()), 2);
        // The steady state: what was sent during the last pass.
        let steady = |r: &SlowRun| Duration::from_secs_f64(r.outcome.seconds * 2.0 / 3.0);
        let percent = |r: &SlowRun, bad: &dyn Fn(&grid::PacketFate) -> bool| {
            let sent: Vec<_> = r.outcome.sent_after(steady(r)).collect();
            100.0 * sent.iter().filter(|p| bad(p)).count() as f64 / sent.len().max(1) as f64
        };
        let kbps =
            |r: &SlowRun, bytes: u64| bytes as f64 * 8.0 / (r.outcome.seconds / 3.0) / 1000.0;
        let adapt: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.outcome.under_rate_at(SLOW_LINK_BPS))
            .map(|d| d.as_secs_f64())
            .collect();
        let pesq: Vec<f64> = runs.iter().filter_map(|r| scores[r.job]).collect();
        rows.push(GridRow {
            codec: match sender {
                Sender::Adaptive => "opus 24k, adaptive".into(),
                Sender::Fixed => "opus 24k, fixed".into(),
            },
            loss_percent: 0.0,
            jitter_ms: 0,
            seeds: runs.len(),
            pesq: (!pesq.is_empty()).then(|| round(mean(&pesq), 2)),
            pesq_kind: "P.862.2 WB",
            pesq_offline: None,
            delay_ms: round(
                mean(&runs.iter().map(|r| r.delay_ms).collect::<Vec<_>>()),
                1,
            ),
            late_percent: over(&|r| percent(r, &|p| p.late)),
            concealed_percent: over(&|r| percent(r, &|p| p.delay.is_none() || p.late)),
            fec_percent: 0.0,
            red_percent: 0.0,
            wire_kbps: round(
                mean(
                    &runs
                        .iter()
                        .map(|r| {
                            kbps(
                                r,
                                r.outcome
                                    .sent_after(steady(r))
                                    .map(|p| u64::from(p.wire_bytes))
                                    .sum(),
                            )
                        })
                        .collect::<Vec<_>>(),
                ),
                1,
            ),
            slow_link: Some(SlowLink {
                sender: match sender {
                    Sender::Adaptive => "adaptive",
                    Sender::Fixed => "fixed",
                },
                cap_kbps: SLOW_LINK_BPS as f64 / 1000.0,
                queue_ms: SLOW_LINK_QUEUE.as_millis() as u64,
                adapt_seconds: (adapt.len() == runs.len()).then(|| round(mean(&adapt), 1)),
                pesq_min: pesq.iter().copied().reduce(f64::min).map(|x| round(x, 2)),
                pesq_max: pesq.iter().copied().reduce(f64::max).map(|x| round(x, 2)),
                late_lost_percent: over(&|r| percent(r, &|p| p.delay.is_none() || p.late)),
                late_lost_all_percent: over(&|r| {
                    let all = &r.outcome.packets;
                    let bad = all.iter().filter(|p| p.delay.is_none() || p.late).count();
                    100.0 * bad as f64 / all.len().max(1) as f64
                }),
                network_delay_p95_ms: round(
                    mean(
                        &runs
                            .iter()
                            .map(|r| {
                                let mut d: Vec<Duration> = r
                                    .outcome
                                    .sent_after(steady(r))
                                    .filter_map(|p| p.delay)
                                    .collect();
                                d.sort();
                                d.get(d.len() * 95 / 100)
                                    .map_or(0.0, |x| x.as_secs_f64() * 1000.0)
                            })
                            .collect::<Vec<_>>(),
                    ),
                    1,
                ),
                rtcp_kbps: round(
                    mean(
                        &runs
                            .iter()
                            .map(|r| {
                                r.outcome.rtcp_wire_bytes as f64 * 8.0 / r.outcome.seconds / 1000.0
                            })
                            .collect::<Vec<_>>(),
                    ),
                    1,
                ),
                packet_ms: round(
                    mean(
                        &runs
                            .iter()
                            .map(|r| {
                                let sent: Vec<_> = r.outcome.sent_after(steady(r)).collect();
                                r.outcome.seconds / 3.0 * 1000.0 / sent.len().max(1) as f64
                            })
                            .collect::<Vec<_>>(),
                    ),
                    1,
                ),
            }),
        });
    }
    rows
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
        let out = grid::call(codec, &speech, PathSpec::lossy(0.0, Duration::ZERO), 1);
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

pub(crate) fn job(reference: &Path, degraded: &Path, mode: &str) -> serde_json::Value {
    serde_json::json!({ "reference": reference, "degraded": degraded, "mode": mode })
}

pub(crate) fn pesq_scores(
    python: &Path,
    jobs: &[serde_json::Value],
) -> anyhow::Result<Vec<Option<f64>>> {
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
pub(crate) fn trim(played: &[i16], lag: usize, len: usize) -> Vec<i16> {
    let mut out: Vec<i16> = played.iter().skip(lag).take(len).copied().collect();
    out.resize(len, 0);
    out
}

pub(crate) fn write_wav(path: &Path, samples: &[i16], rate: u32) -> anyhow::Result<()> {
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
         file to file by cross-correlation, network delay and the speaker's 6 ms queue \
         included, sound cards excluded. Late: packets that came after their time was played; \
         concealed: packets never played (lost or late), their time filled by FEC or \
         concealment; FEC: of those, rebuilt from the next packet's in-band FEC; RED: packets \
         lost on the way whose frame came, as sent, in the next packet's RFC 2198 copy (the \
         sender adds copies once the receiver reports loss on a path with no queue). Bitrate \
         is IP+UDP+RTP of the speech's direction, copies included.\n\n\
         | codec | loss % | jitter ms | seeds | PESQ | kind | offline PESQ | delay ms | late % | concealed % | FEC % | RED % | kbit/s on the wire |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in grid.iter().filter(|r| r.slow_link.is_none()) {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
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
            r.red_percent,
            r.wire_kbps
        ));
    }
    s.push_str(&slow_link_markdown(grid));
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

fn slow_link_markdown(grid: &[GridRow]) -> String {
    let rows: Vec<(&GridRow, &SlowLink)> = grid
        .iter()
        .filter_map(|r| r.slow_link.as_ref().map(|l| (r, l)))
        .collect();
    let Some((_, first)) = rows.first() else {
        return String::new();
    };
    let opt =
        |v: Option<f64>, places: usize| v.map_or("never".to_string(), |x| format!("{x:.places$}"));
    let mut s = format!(
        "\n## Slow link: {} kbit/s each way\n\n\
         The article's slow link, as a 56K modem really carries it: {} kbit/s each way, IP and \
         UDP headers counted, a {} ms tail-drop queue, 20 ms of propagation; the same media path \
         and clock as above, codec2's speech three times over (32.4 s) one way. *Adaptive* is \
         ipphone's sender: RTCP about every second with delivery feedback (one-way delay, rate \
         received), and the rate controller setting Opus's bitrate, packet time and FEC. *Fixed* \
         is the sender before it: Opus 24k in 20 ms packets (about 40 kbit/s on the wire), RTCP \
         every 5 s. Steady state is the last pass of the speech (the last 10.8 s): PESQ-WB, \
         file-to-file delay, late+lost (packets sent then that were dropped by the queue or came \
         too late to play), the 95th percentile of the network's one-way delay, and the media's \
         rate on the wire. Adapted: when the media's rate on the wire (1 s average) first went \
         under the cap. RTCP is the sender's, over the whole call. Means over the seeds.\n\n\
         | sender | seeds | PESQ-WB | min | max | delay ms | late+lost % | late+lost % whole call | network delay p95 ms | packet ms | media kbit/s on the wire | RTCP kbit/s | adapted after s |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        first.cap_kbps, first.cap_kbps, first.queue_ms
    );
    for (r, l) in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.codec,
            r.seeds,
            opt(r.pesq, 2),
            opt(l.pesq_min, 2),
            opt(l.pesq_max, 2),
            r.delay_ms,
            l.late_lost_percent,
            l.late_lost_all_percent,
            l.network_delay_p95_ms,
            l.packet_ms,
            r.wire_kbps,
            l.rtcp_kbps,
            opt(l.adapt_seconds, 1),
        ));
    }
    s
}
