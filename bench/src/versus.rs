//! SIP calls beside baresip 1.0, in the same run: ipphone calls ipphone,
//! baresip calls baresip, ipphone calls baresip (and baresip echoing to
//! ipphone, for baresip's delay), on a clean loopback and under random
//! loss from nftables, scored with PESQ on codec2's speech.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use media::audio::wav::read_mono;
use media::codec::resample::Resampler;
use media::dsp::correlate;
use serde::Serialize;

use crate::peer::{
    Baresip, BaresipSpec, CALLEE_SIP_PORT, CALLER_ADDR, Codec, Counted, Ipphone, Nft, Phone,
    Source, baresip_callee_rtp_port, baresip_caller_ports, callee_addr, drive,
};
use crate::quality;

/// Silence put before every recording so that a recording which starts
/// late (baresip's starts at its first packet) still aligns at a lag >= 0.
const PAD_MS: usize = 200;
/// Losses of the loss table, in percent of the RTP packets to the callee.
pub const LOSSES: [u32; 3] = [5, 10, 20];

pub struct Setup<'a> {
    /// 16 kHz mono speech.
    pub ipphone: &'a Path,
    pub python: &'a Path,
    pub speech: &'a Path,
    pub work: PathBuf,
    pub runs: usize,
    pub loss_runs: usize,
    /// Calls under loss at once (each in its own slot).
    pub parallel: usize,
    /// Whether nft may count and drop (a private network namespace).
    pub nft: bool,
}

impl Setup<'_> {
    /// The speech at `codec`'s rate, written by [`run`].
    fn mic(&self, codec: Codec) -> PathBuf {
        self.work.join(format!("ref-{}.wav", codec.name()))
    }
}

/// One direction of one kind of clean call, mean over its runs.
#[derive(Debug, Serialize)]
pub struct SipRow {
    pub call: &'static str,
    pub direction: &'static str,
    pub codec: &'static str,
    pub runs: usize,
    pub pesq: Option<f64>,
    /// The worst run's PESQ: a glitch of one run shows here.
    pub pesq_min: Option<f64>,
    pub pesq_kind: &'static str,
    /// File-to-file delay, where the recording can show it.
    pub delay_ms: Option<f64>,
    /// IP + UDP + RTP of this direction, counted by nftables.
    pub wire_kbps: Option<f64>,
    /// The sending phone's process (both directions of its call), % of a core.
    pub cpu_percent: Option<f64>,
}

/// One pair of phones under one loss, caller to callee.
#[derive(Debug, Serialize)]
pub struct LossRow {
    pub phones: &'static str,
    pub codec: &'static str,
    pub loss_percent: u32,
    /// Share of the RTP to the callee that nftables dropped.
    pub measured_loss_percent: f64,
    pub runs: usize,
    pub pesq: Option<f64>,
    pub pesq_min: Option<f64>,
    pub pesq_max: Option<f64>,
    pub pesq_kind: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pair {
    IpphoneIpphone,
    BaresipBaresip,
    IpphoneBaresip,
    /// ipphone calls a baresip that plays back what it hears.
    IpphoneBaresipEcho,
}

impl Pair {
    fn name(self) -> &'static str {
        match self {
            Pair::IpphoneIpphone => "ipphone calls ipphone",
            Pair::BaresipBaresip => "baresip calls baresip",
            Pair::IpphoneBaresip => "ipphone calls baresip",
            Pair::IpphoneBaresipEcho => "ipphone calls baresip, which echoes",
        }
    }
}

struct Outcome {
    caller_heard: Option<PathBuf>,
    callee_heard: Option<PathBuf>,
    caller_cpu: Option<f64>,
    callee_cpu: Option<f64>,
    seconds: f64,
    counted: Option<Counted>,
}

/// One clean call and its two recordings, made ready for PESQ.
struct CleanRun {
    outcome: Outcome,
    /// What the callee heard.
    up: Option<Scored>,
    /// What the caller heard.
    down: Option<Scored>,
}

/// A recording made ready for PESQ.
struct Scored {
    job: usize,
    delay_ms: f64,
}

struct Prepared {
    jobs: Vec<serde_json::Value>,
    references: Vec<(Codec, PathBuf)>,
}

impl Prepared {
    fn reference(&self, codec: Codec) -> &Path {
        &self
            .references
            .iter()
            .find(|r| r.0 == codec)
            .expect("both refs")
            .1
    }

    /// Aligns `recording` with the speech by cross-correlation, trims it to
    /// the speech's length and queues it for PESQ.
    fn add(&mut self, codec: Codec, recording: &Path, out: &Path) -> anyhow::Result<Scored> {
        let rate = pesq_rate(codec);
        let (reference, _) = read_mono(self.reference(codec))?;
        let (heard, from) = read_mono(recording)?;
        let mut padded = vec![0i16; PAD_MS * rate as usize / 1000];
        Resampler::new(from, rate).process(&heard, &mut padded);
        let a = correlate::align(&reference, &padded, 2 * rate as usize)
            .with_context(|| format!("nothing in {} is the speech", recording.display()))?;
        quality::write_wav(out, &quality::trim(&padded, a.lag, reference.len()), rate)?;
        self.jobs.push(quality::job(
            self.reference(codec),
            out,
            if codec == Codec::Opus { "wb" } else { "nb" },
        ));
        Ok(Scored {
            job: self.jobs.len() - 1,
            delay_ms: a.lag_ms(rate) - PAD_MS as f64,
        })
    }
}

fn pesq_rate(codec: Codec) -> u32 {
    match codec {
        Codec::Opus => 16_000,
        Codec::Pcmu => 8_000,
    }
}

fn pesq_kind(codec: Codec) -> &'static str {
    match codec {
        Codec::Opus => "P.862.2 WB",
        Codec::Pcmu => "P.862 NB",
    }
}

/// Runs the clean calls (one at a time) and, with nft, the calls under
/// loss (`parallel` at once); returns both tables.
pub fn run(setup: &Setup) -> anyhow::Result<(Vec<SipRow>, Vec<LossRow>)> {
    std::fs::create_dir_all(&setup.work)?;
    let mut prepared = Prepared {
        jobs: Vec::new(),
        references: Vec::new(),
    };
    for codec in [Codec::Opus, Codec::Pcmu] {
        let path = setup.mic(codec);
        let speech = crate::speech_at(setup.speech, pesq_rate(codec))?;
        quality::write_wav(&path, &speech, pesq_rate(codec))?;
        prepared.references.push((codec, path));
    }

    // Clean: every kind of call, each codec, `runs` times, one at a time.
    let pairs = [
        Pair::IpphoneIpphone,
        Pair::BaresipBaresip,
        Pair::IpphoneBaresip,
        Pair::IpphoneBaresipEcho,
    ];
    let mut clean: Vec<(Pair, Codec, Vec<CleanRun>)> = Vec::new();
    for codec in [Codec::Opus, Codec::Pcmu] {
        for pair in pairs {
            clean.push((pair, codec, Vec::new()));
        }
    }
    for run in 0..setup.runs {
        for (pair, codec, outcomes) in &mut clean {
            let dir = setup.work.join(format!(
                "clean-{}-{}-{run}",
                codec.name(),
                slug(pair.name())
            ));
            eprintln!("bench: {} ({}), run {}", pair.name(), codec.name(), run + 1);
            let o = call(setup, *pair, *codec, 1, 0, &dir)?;
            let up = o
                .callee_heard
                .as_deref()
                .map(|r| prepared.add(*codec, r, &dir.join("up-pesq.wav")))
                .transpose()?;
            let down = o
                .caller_heard
                .as_deref()
                .map(|r| prepared.add(*codec, r, &dir.join("down-pesq.wav")))
                .transpose()?;
            outcomes.push(CleanRun {
                outcome: o,
                up,
                down,
            });
        }
    }

    // Loss: caller to callee, `loss_runs` times per cell, several at once.
    // Runs of one cell go at different times, and baresip's and ipphone's
    // run of a cell side by side, so that a stall of the machine spoils one
    // run of a cell, and both phones' alike.
    let mut cells = Vec::new();
    if setup.nft {
        for run in 0..setup.loss_runs {
            for loss in LOSSES {
                for codec in [Codec::Opus, Codec::Pcmu] {
                    for pair in [Pair::IpphoneIpphone, Pair::BaresipBaresip] {
                        cells.push((pair, codec, loss, run));
                    }
                }
            }
        }
    }
    // Popped from the end: the first cell first.
    let queue = Mutex::new(cells.iter().enumerate().rev().collect::<Vec<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for slot in 1..=setup.parallel.max(1) as u8 {
            let (queue, done) = (&queue, &done);
            s.spawn(move || {
                loop {
                    let Some((i, &(pair, codec, loss, run))) = queue.lock().expect("queue").pop()
                    else {
                        break;
                    };
                    eprintln!(
                        "bench: {} ({}), {loss} % loss, run {}",
                        pair.name(),
                        codec.name(),
                        run + 1
                    );
                    let dir = setup.work.join(format!(
                        "loss-{}-{}-{loss}-{run}",
                        codec.name(),
                        slug(pair.name())
                    ));
                    let result = call(setup, pair, codec, slot, loss, &dir);
                    done.lock().expect("results").push((i, dir, result));
                }
            });
        }
    });
    let mut done = done.into_inner().expect("results");
    done.sort_by_key(|d| d.0);
    let mut lossy = Vec::new();
    for (i, dir, result) in done {
        let (pair, codec, loss, _) = cells[i];
        let o = result?;
        let heard = o
            .callee_heard
            .as_deref()
            .context("the callee recorded nothing")?;
        let scored = prepared.add(codec, heard, &dir.join("up-pesq.wav"))?;
        let counted = o.counted.unwrap_or_default();
        lossy.push((pair, codec, loss, counted, scored.job));
    }

    let scores = quality::pesq_scores(setup.python, &prepared.jobs)?;
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    let round_opt = |x: Option<f64>, places: i32| x.map(|x| round(x, places));

    let mut rows = Vec::new();
    let mut ipphone_one_way = Vec::new();
    for (pair, codec, outcomes) in &clean {
        let pesq = |pick: &dyn Fn(&CleanRun) -> Option<usize>| {
            let all: Vec<f64> = outcomes
                .iter()
                .filter_map(|o| pick(o).and_then(|j| scores[j]))
                .collect();
            (
                round_opt(mean(&all), 2),
                round_opt(all.iter().copied().reduce(f64::min), 2),
            )
        };
        let delay = |pick: &dyn Fn(&CleanRun) -> Option<f64>| {
            round_opt(
                mean(&outcomes.iter().filter_map(pick).collect::<Vec<_>>()),
                1,
            )
        };
        let kbps = |bytes: &dyn Fn(&Counted) -> u64| {
            round_opt(
                mean(
                    &outcomes
                        .iter()
                        .filter_map(|o| {
                            o.outcome
                                .counted
                                .map(|c| bytes(&c) as f64 * 8.0 / o.outcome.seconds / 1000.0)
                        })
                        .collect::<Vec<_>>(),
                ),
                1,
            )
        };
        let cpu = |f: &dyn Fn(&Outcome) -> Option<f64>| {
            round_opt(
                mean(
                    &outcomes
                        .iter()
                        .filter_map(|o| f(&o.outcome))
                        .collect::<Vec<_>>(),
                ),
                2,
            )
        };
        let row = |direction, (pesq, pesq_min), delay_ms, wire_kbps, cpu_percent| SipRow {
            call: pair.name(),
            direction,
            codec: codec.name(),
            runs: outcomes.len(),
            pesq,
            pesq_min,
            pesq_kind: pesq_kind(*codec),
            delay_ms,
            wire_kbps,
            cpu_percent,
        };
        let up_pesq = pesq(&|o| o.up.as_ref().map(|s| s.job));
        let down_pesq = pesq(&|o| o.down.as_ref().map(|s| s.job));
        let up_delay = delay(&|o| o.up.as_ref().map(|s| s.delay_ms));
        let down_delay = delay(&|o| o.down.as_ref().map(|s| s.delay_ms));
        let up_kbps = kbps(&|c| c.to_callee_bytes);
        let down_kbps = kbps(&|c| c.to_caller_bytes);
        let caller_cpu = cpu(&|o| o.caller_cpu);
        let callee_cpu = cpu(&|o| o.callee_cpu);
        match pair {
            Pair::IpphoneIpphone => {
                ipphone_one_way.push((*codec, up_delay));
                rows.push(row(
                    "caller to callee",
                    up_pesq,
                    up_delay,
                    up_kbps,
                    caller_cpu,
                ));
                rows.push(row(
                    "callee to caller",
                    down_pesq,
                    down_delay,
                    down_kbps,
                    callee_cpu,
                ));
            }
            Pair::BaresipBaresip => {
                rows.push(row("caller to callee", up_pesq, None, up_kbps, caller_cpu));
                rows.push(row(
                    "callee to caller",
                    down_pesq,
                    None,
                    down_kbps,
                    callee_cpu,
                ));
            }
            Pair::IpphoneBaresip => {
                rows.push(row(
                    "ipphone to baresip",
                    up_pesq,
                    None,
                    up_kbps,
                    caller_cpu,
                ));
                rows.push(row(
                    "baresip to ipphone",
                    down_pesq,
                    down_delay,
                    down_kbps,
                    callee_cpu,
                ));
            }
            Pair::IpphoneBaresipEcho => {
                rows.push(row(
                    "round trip, ipphone to baresip and back",
                    down_pesq,
                    down_delay,
                    down_kbps,
                    callee_cpu,
                ));
                let own = ipphone_one_way
                    .iter()
                    .find(|o| o.0 == *codec)
                    .and_then(|o| o.1);
                if let (Some(rt), Some(own)) = (down_delay, own) {
                    rows.push(row(
                        "baresip one way (round trip less ipphone's one way)",
                        (None, None),
                        Some(round(rt - own, 1)),
                        None,
                        None,
                    ));
                }
            }
        }
    }

    let mut loss_rows = Vec::new();
    for loss in LOSSES {
        for codec in [Codec::Opus, Codec::Pcmu] {
            for pair in [Pair::BaresipBaresip, Pair::IpphoneIpphone] {
                let runs: Vec<_> = lossy
                    .iter()
                    .filter(|l| l.0 == pair && l.1 == codec && l.2 == loss)
                    .collect();
                if runs.is_empty() {
                    continue;
                }
                let pesq: Vec<f64> = runs.iter().filter_map(|l| scores[l.4]).collect();
                let measured: Vec<f64> = runs
                    .iter()
                    .map(|l| {
                        l.3.dropped_packets as f64 * 100.0 / l.3.to_callee_packets.max(1) as f64
                    })
                    .collect();
                loss_rows.push(LossRow {
                    phones: match pair {
                        Pair::BaresipBaresip => "baresip to baresip",
                        _ => "ipphone to ipphone",
                    },
                    codec: codec.name(),
                    loss_percent: loss,
                    measured_loss_percent: round(mean(&measured).unwrap_or(f64::NAN), 1),
                    runs: runs.len(),
                    pesq: round_opt(mean(&pesq), 2),
                    pesq_min: round_opt(pesq.iter().copied().reduce(f64::min), 2),
                    pesq_max: round_opt(pesq.iter().copied().reduce(f64::max), 2),
                    pesq_kind: pesq_kind(codec),
                });
            }
        }
    }
    Ok((rows, loss_rows))
}

/// One call of `pair` in call slot `slot` with `loss_percent` dropped on
/// the way to the callee (counters only if nft is usable).
fn call(
    setup: &Setup,
    pair: Pair,
    codec: Codec,
    slot: u8,
    loss_percent: u32,
    dir: &Path,
) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir)?;
    let nft = if setup.nft {
        Some(Nft::install(slot, loss_percent)?)
    } else {
        None
    };
    let callee_ip = callee_addr(slot);
    // The microphone: the speech at the codec's rate (16 kHz for Opus, 8 for
    // PCMU), the very file PESQ compares with, so that no phone's own
    // resampler is measured.
    let mic = setup.mic(codec);
    let file = || Source::File {
        path: mic.clone(),
        rate: pesq_rate(codec),
    };
    let caller_wav = dir.join("caller-heard.wav");
    let callee_wav = dir.join("callee-heard.wav");
    let baresip = |name: &str, spec: BaresipSpec| -> anyhow::Result<Phone> {
        let d = dir.join(name);
        std::fs::create_dir_all(&d)?;
        Ok(Phone::Baresip(Baresip::start(&d, &spec)?))
    };
    let callee_spec = |source| BaresipSpec {
        user: "callee",
        addr: callee_ip,
        sip_port: CALLEE_SIP_PORT,
        rtp_port: baresip_callee_rtp_port(slot),
        codec,
        source,
        dial: None,
    };
    let mut callee = match pair {
        Pair::IpphoneIpphone => Phone::Ipphone(Ipphone::listen(
            setup.ipphone,
            callee_ip,
            codec,
            &mic,
            &callee_wav,
        )?),
        Pair::BaresipBaresip | Pair::IpphoneBaresip => baresip("callee", callee_spec(file()))?,
        Pair::IpphoneBaresipEcho => baresip("callee", callee_spec(Source::Echo))?,
    };
    let uri = |user: &str| format!("sip:{user}@{callee_ip}:{CALLEE_SIP_PORT}");
    let ipphone_caller = |user: &str, seconds: u64| -> anyhow::Result<Phone> {
        Ok(Phone::Ipphone(Ipphone::call(
            setup.ipphone,
            &uri(user),
            codec,
            Duration::from_secs(seconds),
            &mic,
            &caller_wav,
        )?))
    };
    let mut caller = match pair {
        // The speech is 10.8 s; baresip ends its call when its file ends.
        Pair::IpphoneIpphone => ipphone_caller("ipphone", 11)?,
        Pair::IpphoneBaresip => ipphone_caller("callee", 14)?,
        Pair::IpphoneBaresipEcho => ipphone_caller("callee", 11)?,
        Pair::BaresipBaresip => baresip(
            "caller",
            BaresipSpec {
                user: "caller",
                addr: CALLER_ADDR,
                sip_port: baresip_caller_ports(slot).0,
                rtp_port: baresip_caller_ports(slot).1,
                codec,
                source: file(),
                dial: Some(uri("callee")),
            },
        )?,
    };
    let seconds = drive(&mut caller, &mut callee, Duration::from_secs(40))
        .with_context(|| format!("{} ({}) in {}", pair.name(), codec.name(), dir.display()))?;
    let counted = nft.as_ref().map(Nft::counted).transpose()?;
    let heard = |phone: &Phone, wav: &Path| match phone {
        Phone::Ipphone(_) => wav.exists().then(|| wav.to_owned()),
        Phone::Baresip(b) => b.recording(),
    };
    Ok(Outcome {
        caller_heard: heard(&caller, &caller_wav),
        callee_heard: heard(&callee, &callee_wav),
        caller_cpu: caller.cpu_percent(),
        callee_cpu: callee.cpu_percent(),
        seconds,
        counted,
    })
}

fn slug(name: &str) -> String {
    name.replace([' ', ','], "-")
}

pub fn markdown(rows: &[SipRow], loss: &[LossRow], nft: bool) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| x.to_string());
    let mut s = String::from(
        "\n## SIP calls beside baresip 1.0, clean loopback\n\n\
         Real processes in the same run, one call at a time, both phones of a call on the \
         loopback of the bench's own network namespace, each playing codec2's \
         speech_orig_16k.wav (10.8 s) as its microphone, at the codec's rate (16 kHz for \
         Opus, 8 kHz for PCMU, resampled once by the bench, so no phone's own resampler is \
         measured). ipphone: `ipphone listen --auto-answer` and `ipphone call sip:...` as \
         built for this run, with its defaults (Opus wideband at 16 kHz from 24 kbit/s, \
         DTX, its rate control, and RFC 2198 redundancy or in-band FEC under loss). baresip: Debian's baresip 1.0, headless (module `aufile` as \
         microphone, `sndfile` recording what it decodes), its default jitter buffer, Opus \
         stereo at 48 kHz with `opus_bitrate 28000`, the value of the configuration it writes \
         for a new user (no FEC, no DTX). PESQ: PyPI `pesq`, P.862.2 wideband at 16 kHz for \
         Opus, P.862 narrowband at 8 kHz for PCMU, of what the receiving phone recorded, \
         resampled, aligned with the speech by cross-correlation and cut to its length; \
         mean and worst run (a stall of one run on this shared two-core machine shows in \
         the worst). Delay is file to file, where a recording can show it: ipphone's \
         speaker file starts when its call connects (the caller's on the 200, the callee's \
         as it sends the 200, and each microphone at the same moment), so the lag of the \
         correlation peak is the delay, less than a millisecond of SIP on loopback aside. \
         baresip's recording starts at the first packet it decodes and leaves out the time \
         between packets, so it cannot show one (\"-\"), nor a stall or an underrun at \
         playout time, which ipphone's file does show. For baresip's delay, ipphone \
         calls a baresip that plays what it hears back into the call (module `aubridge`, \
         its player feeding its source): that round trip less ipphone's own one-way delay \
         (ipphone calls ipphone, same codec, same run) is baresip's receive and send paths, \
         up to one 20 ms frame of the bridge's hand-over included. Bitrate on the wire: \
         nftables counts the RTP packets (RTP version 2 and not an RTCP type; SIP \
         excluded) arriving at each phone's address, IP and UDP headers included, divided \
         by the time the caller was connected: independent of the phones' own figures. \
         CPU: the sending phone's process, which also receives, from its call's connection \
         to its end (each thread's run time in /proc/PID/task/*/schedstat, to the nanosecond), as a percentage of one core; in the echo row, \
         baresip's.\n\n\
         | call | direction | codec | runs | PESQ mean | min | kind | delay ms | kbit/s on the wire | CPU % |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.call,
            r.direction,
            r.codec,
            r.runs,
            opt(r.pesq),
            opt(r.pesq_min),
            if r.pesq.is_some() { r.pesq_kind } else { "" },
            opt(r.delay_ms),
            opt(r.wire_kbps),
            opt(r.cpu_percent)
        ));
    }
    s.push_str(
        "\n## baresip and ipphone under random loss\n\n\
         The phones and settings above, the same speech, caller to callee: nftables, in the \
         bench's private network namespace, drops a random share of the RTP packets \
         arriving at the callee (`numgen random mod 100 < L` on the input hook; RTCP, SIP \
         and the other direction untouched). The kernel's random numbers are not seeded, so \
         each run is another pattern: the share actually dropped is shown, and the spread \
         over runs. Several calls run at once, each on addresses of its own. PESQ of what \
         the callee recorded, as above: for ipphone, its speaker file, played in real time \
         (redundant copies, concealment, FEC and time-stretching in it); for baresip, its `sndfile` \
         recording, in which it conceals one frame per gap and leaves the rest of a gap \
         out. Its player reads the same decoded audio from a queue, so what it plays also \
         closes up behind a gap, unless the queue runs dry; the file is taken as what it \
         plays. That file is blind to what happens at playout time (a stall of the \
         machine, an underrun), ipphone's is not. baresip's Opus has no FEC here (its SDP \
         offers none). ipphone's SDP agrees on RFC 2198 redundancy with itself: once the \
         callee reports the loss, each packet also carries a copy of the one before it; \
         the callee's reports, untouched, arrive.\n\n",
    );
    if !nft {
        s.push_str(
            "Not measured in this run: nftables was not usable (bench/run runs the bench in \
             a private network namespace as root, with Debian's nftables).\n",
        );
        return s;
    }
    s.push_str(
        "| phones | codec | loss % | measured loss % | runs | PESQ mean | min | max | kind |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in loss {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.phones,
            r.codec,
            r.loss_percent,
            r.measured_loss_percent,
            r.runs,
            opt(r.pesq),
            opt(r.pesq_min),
            opt(r.pesq_max),
            r.pesq_kind
        ));
    }
    s
}
