//! ipphone's benchmark harness: real calls between real processes on
//! loopback, measured on the audio itself, beside the peers they replace.
//!
//! `bench/run` builds ipphone in release mode and runs this; it writes
//! `bench/RESULTS.md` (a table) and `bench/results.json`.
//!
//! Scenarios (the article's TCP formats):
//! - ipphone to ipphone with `tcp-pcm` and `tcp-mp3`, WAV to WAV, both
//!   directions: file-to-file delay by cross-correlation, correlation with
//!   the speech sent, payload bitrate, CPU of one phone.
//! - the article's own MP3 sender (raw audio through a `lame` pipe into the
//!   socket) into ipphone: the delay the article complained of.
//! - the article's raw-PCM sender (a Perl script) into ipphone.
//!
//! The media grid ([`quality`]): codec x loss x jitter x seed through
//! ipphone's RTP media path on the emulator's virtual clock, scored with
//! PESQ, and the bitrate of half-silent speech.
//!
//! And SIP calls beside baresip 1.0 in the same run ([`versus`]): ipphone
//! to ipphone, baresip to baresip, ipphone to baresip, clean and under
//! random loss from nftables, with PESQ, wire bitrate, CPU and delay.

mod grid;
mod peer;
mod quality;
mod versus;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use media::audio::wav::read_mono;
use media::codec::resample::Resampler;
use media::dsp::correlate;
use serde::Serialize;

const SPEECH: &str = "/usr/share/codec2/raw/speech_orig_16k.wav";
const SPEECH_2: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav";

#[derive(Debug, Serialize)]
struct Row {
    scenario: String,
    direction: String,
    protocol: &'static str,
    runs: usize,
    delay_ms_mean: f64,
    delay_ms_min: f64,
    delay_ms_max: f64,
    correlation_mean: f64,
    payload_kbps: Option<f64>,
    cpu_percent: Option<f64>,
}

struct Options {
    ipphone: PathBuf,
    out: PathBuf,
    runs: usize,
    seeds: u64,
    python: PathBuf,
    /// `calls`, `grid`, `sip`, or all of them.
    only: Option<String>,
    /// Grid cells to run on their own (`--cell "opus 24k,10,0"`): printed,
    /// nothing else run and no results file rewritten.
    cells: Vec<quality::Cell>,
    /// Runs of each clean SIP call (ipphone and baresip).
    sip_runs: usize,
    /// Runs of each SIP call under loss.
    loss_runs: usize,
    /// SIP calls under loss at once.
    parallel: usize,
    /// The bench runs in a network namespace of its own (bench/run makes
    /// one): only then may it add nftables rules.
    private_net: bool,
}

#[derive(Serialize)]
struct Results<'a> {
    calls: &'a [Row],
    grid: &'a [quality::GridRow],
    conversation: &'a [quality::ConversationRow],
    sip: &'a [versus::SipRow],
    sip_loss: &'a [versus::LossRow],
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    for path in [SPEECH, SPEECH_2] {
        if !Path::new(path).exists() {
            bail!(
                "{path} is missing: bench/run installs it (Debian codec2-examples, pocketsphinx-testdata)"
            );
        }
    }
    let work = std::env::temp_dir().join(format!("ipphone-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    if !options.cells.is_empty() {
        let speech = speech_at(Path::new(SPEECH), 16_000)?;
        let grid = quality::run_cells(
            &speech,
            options.seeds,
            &options.python,
            &work,
            &options.cells,
        )?;
        if std::env::var_os("IPPHONE_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&work);
        } else {
            eprintln!("bench: kept {}", work.display());
        }
        print!("{}", quality::markdown(&grid, &[]));
        return Ok(());
    }
    let mut rows = Vec::new();
    let only = |part: &str| options.only.as_deref().is_none_or(|o| o == part);
    let calls = only("calls");
    for (protocol, codec) in [
        ("tcp-pcm", None),
        ("tcp-mp3", None),
        ("rtp", Some("opus")),
        ("rtp", Some("pcmu")),
    ] {
        if calls {
            rows.extend(ipphone_to_ipphone(&options, &work, protocol, codec)?);
        }
    }
    if calls {
        rows.push(article_mp3_sender(&options, &work)?);
        rows.push(article_pcm_sender(&options, &work)?);
    }
    let (grid, talk) = if !only("grid") {
        (Vec::new(), Vec::new())
    } else {
        let speech = speech_at(Path::new(SPEECH), 16_000)?;
        (
            quality::run_grid(&speech, options.seeds, &options.python, &work)?,
            quality::run_conversation(&speech),
        )
    };
    let nft = options.private_net && peer::Nft::usable();
    if options.private_net && !nft {
        eprintln!("bench: nft is not usable here: no wire bitrates, no calls under loss");
    }
    let (sip, sip_loss) = if only("sip") {
        versus::run(&versus::Setup {
            ipphone: &options.ipphone,
            python: &options.python,
            speech: Path::new(SPEECH),
            work: work.join("sip"),
            runs: options.sip_runs,
            loss_runs: options.loss_runs,
            parallel: options.parallel,
            nft,
        })?
    } else {
        (Vec::new(), Vec::new())
    };
    if std::env::var_os("IPPHONE_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("bench: kept {}", work.display());
    }

    std::fs::create_dir_all(&options.out)?;
    std::fs::write(
        options.out.join("results.json"),
        serde_json::to_string_pretty(&Results {
            calls: &rows,
            grid: &grid,
            conversation: &talk,
            sip: &sip,
            sip_loss: &sip_loss,
        })? + "\n",
    )?;
    let table = markdown(&rows)
        + &quality::markdown(&grid, &talk)
        + &versus::markdown(&sip, &sip_loss, nft);
    std::fs::write(options.out.join("RESULTS.md"), &table)?;
    print!("{table}");
    Ok(())
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        ipphone: "target/release/ipphone".into(),
        out: "bench".into(),
        runs: 3,
        seeds: 5,
        python: "python3".into(),
        only: None,
        cells: Vec::new(),
        sip_runs: 2,
        loss_runs: 3,
        parallel: 6,
        private_net: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--ipphone" => options.ipphone = value()?.into(),
            "--out" => options.out = value()?.into(),
            "--runs" => options.runs = value()?.parse().context("--runs takes a number")?,
            "--seeds" => options.seeds = value()?.parse().context("--seeds takes a number")?,
            "--python" => options.python = value()?.into(),
            "--only" => options.only = Some(value()?),
            "--cell" => options.cells.push(value()?.parse()?),
            "--sip-runs" => {
                options.sip_runs = value()?.parse().context("--sip-runs takes a number")?
            }
            "--loss-runs" => {
                options.loss_runs = value()?.parse().context("--loss-runs takes a number")?
            }
            "--parallel" => {
                options.parallel = value()?.parse().context("--parallel takes a number")?
            }
            "--private-net" => options.private_net = true,
            other => bail!(
                "unknown argument {other}; use --ipphone PATH --out DIR --runs N --seeds N \
                 --python PATH --only calls|grid|sip --cell CODEC,LOSS%,JITTER_MS --sip-runs N --loss-runs N --parallel N \
                 --private-net"
            ),
        }
    }
    Ok(options)
}

/// Two ipphones call each other for the length of the speech; both
/// directions are measured.
fn ipphone_to_ipphone(
    options: &Options,
    work: &Path,
    protocol: &'static str,
    codec: Option<&'static str>,
) -> anyhow::Result<Vec<Row>> {
    let label: &'static str = match codec {
        Some("opus") => "rtp opus",
        Some("pcmu") => "rtp pcmu",
        _ => protocol,
    };
    let codec_args: Vec<&str> = codec.map_or(vec![], |c| vec!["--codec", c]);
    let mut up = Samples::default();
    let mut down = Samples::default();
    for run in 0..options.runs {
        let callee_heard = work.join(format!("{protocol}-{run}-callee.wav"));
        let caller_heard = work.join(format!("{protocol}-{run}-caller.wav"));
        let (mut callee, port) = listen(options, protocol, &codec_args, SPEECH_2, &callee_heard)?;
        let caller = Command::new(&options.ipphone)
            .args([
                "call",
                &format!("127.0.0.1:{port}"),
                "--protocol",
                protocol,
                "--duration",
                "11",
            ])
            .args(&codec_args)
            .args(["--mic", SPEECH, "--speaker"])
            .arg(&caller_heard)
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let (output, cpu) = run_measuring_cpu(caller)?;
        callee.wait()?;
        let hangup = last_event(&output, "hangup").context("the caller reported no hangup")?;
        let seconds = hangup["seconds"].as_f64().unwrap_or(1.0).max(0.1);
        let kbps = hangup["bytes_sent"].as_f64().unwrap_or(0.0) * 8.0 / seconds / 1000.0;
        let a = align(Path::new(SPEECH), &callee_heard)?;
        up.push(a, Some(kbps), Some(cpu));
        let b = align(Path::new(SPEECH_2), &caller_heard)?;
        down.push(b, None, None);
    }
    Ok(vec![
        up.row("ipphone to ipphone", "caller to callee", label),
        down.row("ipphone to ipphone", "callee to caller", label),
    ])
}

/// The article's MP3 telephone sending: raw audio, at the pace of a sound
/// card, into `lame -r -s 16 -m m -b 32 - -`, whose output goes into the
/// socket as it comes out of the pipe.
fn article_mp3_sender(options: &Options, work: &Path) -> anyhow::Result<Row> {
    let mut samples = Samples::default();
    for run in 0..options.runs {
        let heard = work.join(format!("lame-{run}.wav"));
        let (mut callee, port) = listen(options, "tcp-mp3", &[], "null", &heard)?;
        let mut socket = TcpStream::connect(("127.0.0.1", port))?;
        let mut lame = Command::new("lame")
            .args(["-r", "-s", "16", "-m", "m", "-b", "32", "--quiet", "-", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting lame (bench/run installs it)")?;
        let speech = speech_at(Path::new(SPEECH), 16_000)?;
        let pcm: Vec<u8> = speech.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut stdin = lame.stdin.take().context("lame's stdin")?;
        let feeder = std::thread::spawn(move || paced_write(&mut stdin, &pcm, 32_000));
        let mut stdout = lame.stdout.take().context("lame's stdout")?;
        let mut buf = [0u8; 4096];
        loop {
            let n = stdout.read(&mut buf)?;
            if n == 0 {
                break;
            }
            socket.write_all(&buf[..n])?;
        }
        let _ = feeder.join();
        lame.wait()?;
        std::thread::sleep(Duration::from_millis(300));
        drop(socket);
        callee.wait()?;
        samples.push(align(Path::new(SPEECH), &heard)?, None, None);
    }
    Ok(samples.row("the article's lame pipe to ipphone", "one way", "tcp-mp3"))
}

/// The article's raw telephone sending: a Perl script that copies a "sound
/// card" (a file read at 8000 bytes a second) into the socket.
fn article_pcm_sender(options: &Options, work: &Path) -> anyhow::Result<Row> {
    const PERL: &str = r#"
use strict; use IO::Socket::INET; use Time::HiRes qw(sleep time);
my ($addr, $mic) = @ARGV;
my $sock = IO::Socket::INET->new(PeerAddr => $addr, Proto => 'tcp') or die "connect: $!";
open(my $in, '<', $mic) or die; binmode $in;
my $start = time; my $sent = 0; my $buf;
while (my $n = sysread($in, $buf, 80)) {
    syswrite($sock, $buf) or last; $sent += $n;
    my $wait = $start + $sent / 8000 - time; sleep($wait) if $wait > 0;
}
"#;
    let mut samples = Samples::default();
    let speech = speech_at(Path::new(SPEECH), 8_000)?;
    let mut raw = vec![0u8; speech.len()];
    proto::legacy::pcm::encode(&speech, &mut raw);
    let mic = work.join("speech.u8");
    std::fs::write(&mic, &raw)?;
    for run in 0..options.runs {
        let heard = work.join(format!("perl-{run}.wav"));
        let (mut callee, port) = listen(options, "tcp-pcm", &[], "null", &heard)?;
        let status = Command::new("perl")
            .args(["-e", PERL, &format!("127.0.0.1:{port}")])
            .arg(&mic)
            .status()
            .context("running perl")?;
        if !status.success() {
            bail!("the Perl sender failed");
        }
        callee.wait()?;
        samples.push(align(Path::new(SPEECH), &heard)?, None, None);
    }
    Ok(samples.row("the article's Perl script to ipphone", "one way", "tcp-pcm"))
}

#[derive(Default)]
struct Samples {
    delays: Vec<f64>,
    correlations: Vec<f64>,
    kbps: Vec<f64>,
    cpu: Vec<f64>,
}

impl Samples {
    fn push(&mut self, (delay_ms, correlation): (f64, f64), kbps: Option<f64>, cpu: Option<f64>) {
        self.delays.push(delay_ms);
        self.correlations.push(correlation);
        self.kbps.extend(kbps);
        self.cpu.extend(cpu);
    }

    fn row(&self, scenario: &str, direction: &str, protocol: &'static str) -> Row {
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
        Row {
            scenario: scenario.into(),
            direction: direction.into(),
            protocol,
            runs: self.delays.len(),
            delay_ms_mean: round(mean(&self.delays).unwrap_or(f64::NAN), 1),
            delay_ms_min: round(self.delays.iter().copied().fold(f64::INFINITY, f64::min), 1),
            delay_ms_max: round(
                self.delays
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max),
                1,
            ),
            correlation_mean: round(mean(&self.correlations).unwrap_or(f64::NAN), 3),
            payload_kbps: mean(&self.kbps).map(|x| round(x, 1)),
            cpu_percent: mean(&self.cpu).map(|x| round(x, 2)),
        }
    }
}

/// Starts `ipphone listen` for one call on a free loopback port.
fn listen(
    options: &Options,
    protocol: &str,
    extra: &[&str],
    mic: &str,
    speaker: &Path,
) -> anyhow::Result<(Child, u16)> {
    let mut child = Command::new(&options.ipphone)
        .args([
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--calls",
            "1",
            "--protocol",
            protocol,
            "--mic",
            mic,
        ])
        .args(extra)
        .arg("--speaker")
        .arg(speaker)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ipphone listen")?;
    let mut stdout = child.stdout.take().context("listener stdout")?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte)? == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let event: serde_json::Value =
        serde_json::from_slice(&line).context("the listener's first event")?;
    let port = event["addr"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .context("the listening port")?;
    // Keep reading so the listener never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    Ok((child, port))
}

/// Waits for `child`, sampling its CPU time; returns its stdout and the CPU
/// it used as a percentage of one core over its life.
fn run_measuring_cpu(mut child: Child) -> anyhow::Result<(String, f64)> {
    let pid = child.id();
    let mut stdout = child.stdout.take().context("caller stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut clock = CpuClock::default();
    let mut nanos = 0u64;
    while child.try_wait()?.is_none() {
        nanos = clock.sample(pid).unwrap_or(nanos);
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let output = reader.join().unwrap_or_default();
    Ok((output, nanos as f64 / 1e9 / elapsed * 100.0))
}

/// A process's CPU time in nanoseconds: the run time of each of its threads
/// (/proc/PID/task/TID/schedstat), remembered per thread so that one that
/// has ended still counts. /proc/PID/stat counts whole 10 ms ticks, which
/// over an 11 s call is up to 0.2 % of a core either way.
#[derive(Default)]
pub struct CpuClock {
    threads: std::collections::HashMap<u32, u64>,
}

impl CpuClock {
    /// Reads the process's threads; `None` once it is gone.
    pub fn sample(&mut self, pid: u32) -> Option<u64> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let run = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split(' ').next()?.parse().ok());
            if let Some(run) = run {
                self.threads.insert(tid, run);
            }
        }
        Some(self.threads.values().sum())
    }
}

fn last_event(output: &str, name: &str) -> Option<serde_json::Value> {
    output
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == name)
}

fn speech_at(path: &Path, rate: u32) -> anyhow::Result<Vec<i16>> {
    let (samples, from) = read_mono(path)?;
    let mut out = Vec::new();
    Resampler::new(from, rate).process(&samples, &mut out);
    Ok(out)
}

/// (delay in ms, correlation) of a recording against the speech sent.
fn align(sent: &Path, recording: &Path) -> anyhow::Result<(f64, f64)> {
    let (heard, rate) = read_mono(recording)?;
    let reference = speech_at(sent, rate)?;
    let a = correlate::align(&reference, &heard, rate as usize * 3).with_context(|| {
        format!(
            "nothing in {} lines up with the speech",
            recording.display()
        )
    })?;
    Ok((a.lag_ms(rate), a.correlation))
}

fn paced_write(out: &mut impl Write, bytes: &[u8], bytes_per_second: u64) {
    let start = Instant::now();
    let piece = (bytes_per_second / 100) as usize;
    for (i, chunk) in bytes.chunks(piece).enumerate() {
        if out.write_all(chunk).is_err() {
            return;
        }
        let due = start + Duration::from_millis(10 * (i as u64 + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

fn markdown(rows: &[Row]) -> String {
    // Which Opus encoder ran, in ipphone and in the grid: libopus where the
    // system has it, else the built-in ropus (see crates/media/src/codec/libopus.rs).
    let encoder = media::codec::opus::EncoderKind::preferred()
        .map_or_else(|e| e.to_string(), |kind| kind.describe());
    let mut s = format!(
        "# ipphone benchmark results\n\n\
         Written by `bench/run` (see bench/README.md). Real processes on loopback, real speech \
         (codec2's speech_orig_16k.wav, LibriVox from pocketsphinx-testdata). Delay is file to \
         file: the lag of the cross-correlation peak between the speech sent and the recording \
         made at the far end, whose clock starts when the call connects. Payload is what the protocol itself carries: TCP payload for the tcp formats, whole RTP packets (RTP header included; no IP/UDP headers) for rtp. CPU is one ipphone process (both directions of its call, WAV pacing and resampling included) as a percentage of one core. For rtp, the answering phone starts its microphone when the caller's first packet arrives, while the caller's recording starts at once: the callee-to-caller figure includes that start-up (about 40 ms), the caller-to-callee figure is the call's delay. Correlation over the whole file drops when the jitter buffer time-stretches (the delay moves by a few ms mid-call); PESQ comes with the RTP bench.\n\n\
         Opus encoder in this run: {encoder}.\n\n\
         | scenario | direction | protocol | runs | delay ms (mean) | min | max | correlation | payload kbit/s | CPU % |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| x.to_string());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.scenario,
            r.direction,
            r.protocol,
            r.runs,
            r.delay_ms_mean,
            r.delay_ms_min,
            r.delay_ms_max,
            r.correlation_mean,
            opt(r.payload_kbps),
            opt(r.cpu_percent)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock counts a thread's run time, and still counts it once the
    /// thread has ended.
    #[test]
    fn cpu_clock_counts_threads_that_have_ended() {
        let mut clock = CpuClock::default();
        let pid = std::process::id();
        let before = clock.sample(pid).expect("our own process");
        let busy = std::thread::spawn(|| {
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_millis(200) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            x
        });
        std::thread::sleep(Duration::from_millis(150));
        let during = clock.sample(pid).expect("our own process");
        busy.join().unwrap();
        let after = clock.sample(pid).expect("our own process");
        assert!(
            during >= before + 10_000_000,
            "{before} ns, then {during} ns"
        );
        assert!(
            after >= during,
            "{during} ns, then {after} ns once it ended"
        );
    }
}
