//! The phones of the SIP bench as real processes: ipphone (`listen` and
//! `call`) and baresip 1.0 headless, each sampled for CPU time, and the
//! nftables rules that count and drop their RTP inside the bench's private
//! network namespace.
//!
//! Addresses: the callee of call slot K answers on 127.0.1.K; callers use
//! 127.0.0.1. Every 127/8 address is local on `lo`, so nothing needs adding,
//! and a rule on the destination address picks out one direction of one call.
//! baresip binds RTP on every address (only its SDP carries
//! `net_interface`), so each baresip gets RTP ports of its own.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a phone may take to start.
const STARTUP: Duration = Duration::from_secs(10);
/// The callee's SIP port (its address is the slot's own).
pub const CALLEE_SIP_PORT: u16 = 5060;
/// The caller's address.
pub const CALLER_ADDR: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The callee's address in call slot `slot` (1-based).
pub fn callee_addr(slot: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, slot)
}

/// The RTP port of a baresip answering in call slot `slot` (RTCP on the
/// next one).
pub fn baresip_callee_rtp_port(slot: u8) -> u16 {
    30_000 + 4 * u16::from(slot)
}

/// The SIP and RTP ports of a baresip calling from call slot `slot`.
pub fn baresip_caller_ports(slot: u8) -> (u16, u16) {
    (6_000 + 10 * u16::from(slot), 20_000 + 4 * u16::from(slot))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Opus,
    Pcmu,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "pcmu",
        }
    }

    fn baresip_name(self) -> &'static str {
        match self {
            Codec::Opus => "opus/48000/2",
            Codec::Pcmu => "PCMU/8000/1",
        }
    }
}

/// A child process whose CPU time is sampled from /proc while it lives,
/// with the moments (and CPU times) its call connected and ended.
struct Sampled {
    child: Child,
    clock: crate::CpuClock,
    /// CPU time so far, ns.
    nanos: u64,
    exited: bool,
    connected: Option<(Instant, u64)>,
    ended: Option<(Instant, u64)>,
}

impl Sampled {
    fn new(child: Child) -> Self {
        Self {
            child,
            clock: crate::CpuClock::default(),
            nanos: 0,
            exited: false,
            connected: None,
            ended: None,
        }
    }

    /// Samples the CPU time; returns whether the process is still running.
    fn poll(&mut self) -> bool {
        if self.exited {
            return false;
        }
        if let Some(t) = self.clock.sample(self.child.id()) {
            self.nanos = t;
        }
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            self.exited = true;
        }
        !self.exited
    }

    fn mark(&mut self, connected: bool, ended: bool) {
        let now = (Instant::now(), self.nanos);
        if connected && self.connected.is_none() {
            self.connected = Some(now);
        }
        if ended && self.ended.is_none() {
            self.ended = Some(now);
        }
    }

    /// CPU time from the call's connection to its end, as a percentage of
    /// one core.
    fn cpu_percent(&self) -> Option<f64> {
        let ((from, a), (to, b)) = (self.connected?, self.ended?);
        let seconds = to.duration_since(from).as_secs_f64();
        (seconds > 1.0).then(|| (b - a) as f64 / 1e9 / seconds * 100.0)
    }

    /// SIGTERM, then SIGKILL: called once the call is over and its
    /// recording written (ipphone then lingers up to 5 s to finish its BYE
    /// transaction, which no measurement needs).
    fn stop(&mut self) {
        for (signal, grace) in [("-TERM", 500), ("-KILL", 2000)] {
            self.poll();
            if self.exited {
                return;
            }
            let _ = Command::new("kill")
                .args([signal, &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_millis(grace);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    self.exited = true;
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Sampled {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a baresip plays into the call.
#[derive(Debug, Clone)]
pub enum Source {
    /// A mono WAV file at `rate` (module `aufile`); the call ends with it.
    File { path: PathBuf, rate: u32 },
    /// What it hears, played back through module `aubridge`'s one device
    /// (player and source of one name): an echo with baresip's own receive
    /// path (jitter buffer, decoder, player) and send path in it.
    Echo,
}

pub struct BaresipSpec {
    pub user: &'static str,
    pub addr: Ipv4Addr,
    pub sip_port: u16,
    pub rtp_port: u16,
    pub codec: Codec,
    pub source: Source,
    pub dial: Option<String>,
}

/// A running baresip 1.0 with its configuration directory.
pub struct Baresip {
    process: Sampled,
    log: PathBuf,
    snd: PathBuf,
}

impl Baresip {
    /// Writes its configuration into `dir` and starts it; returns once it
    /// is ready (and, for a caller, has been told to dial).
    pub fn start(dir: &Path, spec: &BaresipSpec) -> anyhow::Result<Baresip> {
        let snd = dir.join("snd");
        std::fs::create_dir_all(&snd)?;
        std::fs::write(dir.join("config"), config(spec, &snd))?;
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{}@{}:{}>;regint=0;answermode=auto;audio_codecs={}\n",
                spec.user,
                spec.addr,
                spec.sip_port,
                spec.codec.baresip_name()
            ),
        )?;
        let log = dir.join("baresip.log");
        let out = File::create(&log)?;
        let mut command = Command::new("baresip");
        command.arg("-f").arg(dir).current_dir(dir);
        if let Some(uri) = &spec.dial {
            command.arg("-e").arg(format!("/dial {uri}"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting baresip (bench/run installs Debian's baresip)")?;
        let mut phone = Baresip {
            process: Sampled::new(child),
            log,
            snd,
        };
        let deadline = Instant::now() + STARTUP;
        while !phone.log_has("baresip is ready.") {
            if !phone.process.poll() || Instant::now() > deadline {
                bail!("baresip did not start:\n{}", phone.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(phone)
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn log_has(&self, needle: &str) -> bool {
        self.log_text().contains(needle)
    }

    /// The newest finished `dump-*-dec.wav`: what it decoded, from the first
    /// packet on, without the gaps between packets (module `sndfile`).
    pub fn recording(&self) -> Option<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let newest = std::fs::read_dir(&self.snd)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                .max();
            if let Some(path) = &newest
                && wav_is_complete(path)
            {
                return newest;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn config(spec: &BaresipSpec, snd: &Path) -> String {
    let device = format!("bench-{}-{}", spec.user, spec.rtp_port);
    let mut lines: Vec<(&str, String)> = vec![
        ("poll_method", "epoll".into()),
        ("sip_listen", format!("{}:{}", spec.addr, spec.sip_port)),
        ("net_interface", spec.addr.to_string()),
        ("snd_path", snd.display().to_string()),
        // rtp_listen takes an even port in [min, max): exactly this one.
        (
            "rtp_ports",
            format!("{}-{}", spec.rtp_port, spec.rtp_port + 1),
        ),
        ("call_local_timeout", "120".into()),
        // The value in the configuration baresip 1.0 writes for a new user
        // (without it, libopus picks about 100 kbit/s for 48 kHz stereo).
        ("opus_bitrate", "28000".into()),
        ("module_path", "/usr/lib/baresip/modules".into()),
    ];
    match &spec.source {
        Source::File { path, rate } => {
            lines.push(("audio_player", format!("aubridge,{device}")));
            lines.push(("audio_source", format!("aufile,{}", path.display())));
            // aufile needs the file's exact rate and channels.
            lines.push(("ausrc_srate", rate.to_string()));
            lines.push(("ausrc_channels", "1".into()));
        }
        Source::Echo => {
            lines.push(("audio_player", format!("aubridge,{device}")));
            lines.push(("audio_source", format!("aubridge,{device}")));
        }
    }
    lines.push(("audio_alert", format!("aubridge,{device}-alert")));
    for module in [
        "g711.so",
        "opus.so",
        "aufile.so",
        "aubridge.so",
        "sndfile.so",
    ] {
        lines.push(("module", module.into()));
    }
    lines.push(("module_tmp", "account.so".into()));
    // menu runs `-e /dial` and prints the call's progress into the log.
    lines.push(("module_app", "menu.so".into()));
    lines.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect()
}

/// Whether the RIFF size in the header counts the whole file: true once
/// libsndfile has closed it.
fn wav_is_complete(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    bytes.len() > 44
        && &bytes[..4] == b"RIFF"
        && u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize + 8 == bytes.len()
}

/// A running `ipphone listen` or `ipphone call` with `--json`.
pub struct Ipphone {
    process: Sampled,
    events: Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Ipphone {
    /// `ipphone listen` on `addr`:5060 for one call, answered at once.
    pub fn listen(
        ipphone: &Path,
        addr: Ipv4Addr,
        codec: Codec,
        mic: &Path,
        speaker: &Path,
    ) -> anyhow::Result<Ipphone> {
        let mut command = Command::new(ipphone);
        command
            .args(["listen", "--bind"])
            .arg(format!("{addr}:{CALLEE_SIP_PORT}"))
            .args(["--auto-answer", "--calls", "1", "--codec", codec.name()]);
        let mut phone = Ipphone::spawn(command, mic, speaker)?;
        let deadline = Instant::now() + STARTUP;
        while !phone.has("listening") {
            if !phone.poll() || Instant::now() > deadline {
                bail!("ipphone listen did not start: {:?}", phone.seen);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(phone)
    }

    /// `ipphone call URI` for at most `duration`.
    pub fn call(
        ipphone: &Path,
        uri: &str,
        codec: Codec,
        duration: Duration,
        mic: &Path,
        speaker: &Path,
    ) -> anyhow::Result<Ipphone> {
        let mut command = Command::new(ipphone);
        command
            .args(["call", uri, "--codec", codec.name(), "--duration"])
            .arg(duration.as_secs_f64().to_string());
        Ipphone::spawn(command, mic, speaker)
    }

    fn spawn(mut command: Command, mic: &Path, speaker: &Path) -> anyhow::Result<Ipphone> {
        let mut child = command
            .arg("--mic")
            .arg(mic)
            .arg("--speaker")
            .arg(speaker)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ipphone")?;
        let stdout = child.stdout.take().context("ipphone's stdout")?;
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Ok(Ipphone {
            process: Sampled::new(child),
            events,
            seen: Vec::new(),
        })
    }

    fn poll(&mut self) -> bool {
        let running = self.process.poll();
        self.seen.extend(self.events.try_iter());
        running
    }

    fn has(&self, event: &str) -> bool {
        self.seen.iter().any(|e| e["event"] == event)
    }
}

/// Either phone, as one call drives it.
pub enum Phone {
    Ipphone(Ipphone),
    Baresip(Baresip),
}

impl Phone {
    /// Samples CPU, reads new events; notes when the call connected and
    /// ended. Returns whether the process still runs.
    fn poll(&mut self) -> bool {
        match self {
            Phone::Ipphone(p) => {
                let running = p.poll();
                // `ended`: the SIP call is over (the process may linger for
                // its BYE transaction); `hangup` ends the media.
                let ended = p.has("ended") || p.has("hangup") || !running;
                p.process.mark(p.has("connected"), ended);
                running
            }
            Phone::Baresip(p) => {
                let running = p.process.poll();
                let log = p.log_text();
                let ended = log.contains("terminated (duration")
                    || log.contains("session closed")
                    || !running;
                p.process.mark(log.contains("Call established"), ended);
                running
            }
        }
    }

    fn process(&self) -> &Sampled {
        match self {
            Phone::Ipphone(p) => &p.process,
            Phone::Baresip(p) => &p.process,
        }
    }

    fn stop(&mut self) {
        match self {
            Phone::Ipphone(p) => p.process.stop(),
            Phone::Baresip(p) => p.process.stop(),
        }
    }

    /// Its CPU time during the call, in % of one core.
    pub fn cpu_percent(&self) -> Option<f64> {
        self.process().cpu_percent()
    }
}

/// Runs a call between two started phones until both have seen it end (or
/// `limit` passes), then stops whatever still runs. Returns how long the
/// caller was connected.
pub fn drive(caller: &mut Phone, callee: &mut Phone, limit: Duration) -> anyhow::Result<f64> {
    let start = Instant::now();
    loop {
        let a = caller.poll();
        let b = callee.poll();
        let ended = |p: &Phone| p.process().ended.is_some();
        if (ended(caller) && ended(callee)) || (!a && !b) {
            break;
        }
        if start.elapsed() > limit {
            caller.stop();
            callee.stop();
            bail!("the call did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // baresip closes its recording as the call ends: let it finish.
    std::thread::sleep(Duration::from_millis(100));
    caller.poll();
    callee.poll();
    caller.stop();
    callee.stop();
    match (caller.process().connected, caller.process().ended) {
        (Some((from, _)), Some((to, _))) => Ok(to.duration_since(from).as_secs_f64()),
        _ => bail!("the call never connected"),
    }
}

/// nftables in the bench's private network namespace: one table per call
/// slot, on the input hook (a drop on output would be reported to the
/// sender as EPERM). It counts RTP (version 2, not an RTCP packet type; SIP
/// excluded), IP and UDP headers included, by where it goes: to the slot's
/// callee (its address, or the port of a baresip callee, to which ipphone
/// sends at 127.0.0.1 after latching onto the address baresip sends from),
/// and to 127.0.0.1, the callers. It drops a random share of the former.
pub struct Nft {
    table: String,
}

/// What the counters of one call saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counted {
    /// RTP towards the callee, before the drop rule.
    pub to_callee_bytes: u64,
    pub to_callee_packets: u64,
    pub dropped_packets: u64,
    /// RTP towards 127.0.0.1 (the callers): one call's only if it runs alone.
    pub to_caller_bytes: u64,
}

impl Nft {
    /// Whether nft works here (installed, allowed to add a table).
    pub fn usable() -> bool {
        let ok = nft(&["add", "table", "ip", "ipphone_bench_probe"]).is_ok();
        let _ = nft(&["delete", "table", "ip", "ipphone_bench_probe"]);
        ok
    }

    /// Counts the slot's RTP and drops `loss_percent` of what goes to its
    /// callee.
    pub fn install(slot: u8, loss_percent: u32) -> anyhow::Result<Nft> {
        let table = format!("ipphone_bench_{slot}");
        let _ = nft(&["delete", "table", "ip", &table]);
        let rtp = "@th,64,2 2 @th,72,8 != 200-207";
        let callee = callee_addr(slot);
        let port = baresip_callee_rtp_port(slot);
        // `goto`: a packet is counted once, whichever way it matched.
        let script = format!(
            "table ip {table} {{\n\
             chain to_callee {{\n\
             counter\n\
             numgen random mod 100 < {loss_percent} counter drop\n\
             }}\n\
             chain input {{\n\
             type filter hook input priority 0; policy accept;\n\
             ip daddr {callee} udp dport != {CALLEE_SIP_PORT} {rtp} goto to_callee\n\
             udp dport {port} {rtp} goto to_callee\n\
             ip daddr {CALLER_ADDR} {rtp} counter\n\
             }}\n}}\n"
        );
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running nft")?;
        child
            .stdin
            .take()
            .context("nft's stdin")?
            .write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "nft refused the rules: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Nft { table })
    }

    /// Reads the counters.
    pub fn counted(&self) -> anyhow::Result<Counted> {
        let out = nft(&["-j", "list", "table", "ip", &self.table])?;
        let json: serde_json::Value = serde_json::from_str(&out)?;
        let mut counted = Counted::default();
        let mut found = 0;
        for item in json["nftables"].as_array().into_iter().flatten() {
            let rule = &item["rule"];
            let Some(expr) = rule["expr"].as_array() else {
                continue;
            };
            let Some(c) = expr.iter().find_map(|e| e.get("counter")) else {
                continue;
            };
            let (packets, bytes) = (
                c["packets"].as_u64().unwrap_or(0),
                c["bytes"].as_u64().unwrap_or(0),
            );
            let drops = expr.iter().any(|e| e.get("drop").is_some());
            match (rule["chain"].as_str(), drops) {
                (Some("to_callee"), false) => {
                    counted.to_callee_packets = packets;
                    counted.to_callee_bytes = bytes;
                }
                (Some("to_callee"), true) => counted.dropped_packets = packets,
                (Some("input"), _) => counted.to_caller_bytes = bytes,
                _ => continue,
            }
            found += 1;
        }
        if found != 3 {
            bail!("nft listed {found} of the 3 counters");
        }
        Ok(counted)
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "ip", &self.table]);
    }
}

fn nft(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("nft")
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .context("running nft")?;
    if !out.status.success() {
        bail!(
            "nft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
