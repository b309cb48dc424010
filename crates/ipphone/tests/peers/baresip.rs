//! baresip 1.0 (Debian `baresip`) as a headless softphone: a WAV file as its
//! microphone (module `aufile`), what it hears recorded by module `sndfile`
//! (`dump-*-dec.wav`), a silent `aubridge` device as its speaker, commands by
//! UDP through module `cons`, SIP on 127.0.0.1.
//!
//! Addresses: by default baresip puts the host's primary interface address
//! in its SDP (its network code skips loopback; on the test machine that is
//! eth0's 192.0.2.2). The harness sets `net_interface 127.0.0.1`, which makes
//! it bind and advertise 127.0.0.1 (`c=IN IP4 127.0.0.1`), so its RTP stays on
//! loopback like everything else.
//!
//! Ports: `sip_listen` takes the port for UDP and TCP and the next one for
//! TLS; each baresip gets a block of 8 (SIP, TLS, `cons`, spare, then four
//! for RTP and RTCP).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use media::codec::resample::Resampler;

use super::{PeerProcess, ScratchDir, free_ports, write_wav_mono};

/// How long baresip may take to start (load modules, bind sockets).
const STARTUP: Duration = Duration::from_secs(10);

/// An audio codec baresip offers, in baresip's `audio_codecs` spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
    /// Opus as baresip 1.0 offers it: stereo, 48 kHz, 28 kbit/s.
    Opus,
}

impl Codec {
    /// The account's `audio_codecs` entry (a bare `opus` is not found).
    pub fn baresip_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000/1",
            Codec::Pcma => "PCMA/8000/1",
            Codec::Opus => "opus/48000/2",
        }
    }

    /// The encoding name in SDP `a=rtpmap`.
    pub fn sdp_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }
}

/// What one baresip is and does; build with [`BaresipOptions::new`], start
/// with [`Baresip::start`].
#[derive(Debug, Clone)]
pub struct BaresipOptions {
    user: String,
    codecs: Vec<Codec>,
    speech: PathBuf,
    length: Option<Duration>,
    registrar: Option<(String, String)>,
    auto_answer: bool,
    dial: Option<String>,
    config: Vec<(String, String)>,
    account_params: Vec<String>,
    sip_trace: bool,
}

impl BaresipOptions {
    /// A phone for `user` offering `codec` and playing `speech` (any WAV the
    /// media crate reads; it is converted to what `aufile` needs). It answers
    /// calls at once and dials nobody.
    pub fn new(user: &str, codec: Codec, speech: &Path) -> BaresipOptions {
        BaresipOptions {
            user: user.to_owned(),
            codecs: vec![codec],
            speech: speech.to_owned(),
            length: None,
            registrar: None,
            auto_answer: true,
            dial: None,
            config: Vec::new(),
            account_params: Vec::new(),
            sip_trace: true,
        }
    }

    /// Offers these codecs, in this order of preference.
    pub fn codecs(mut self, codecs: &[Codec]) -> Self {
        assert!(!codecs.is_empty(), "baresip needs at least one codec");
        self.codecs = codecs.to_vec();
        self
    }

    /// Cuts or pads (with silence) the microphone to exactly `length`. A call
    /// ends when the microphone file ends, so this is how long a call lasts.
    pub fn length(mut self, length: Duration) -> Self {
        self.length = Some(length);
        self
    }

    /// Registers as `sip:USER@DOMAIN` (DOMAIN is `host:port`, where REGISTER
    /// is sent) with digest password `password`, every 600 s.
    pub fn register(mut self, domain: &str, password: &str) -> Self {
        self.registrar = Some((domain.to_owned(), password.to_owned()));
        self
    }

    /// Lets incoming calls ring (180) without answering them.
    pub fn ring_only(mut self) -> Self {
        self.auto_answer = false;
        self
    }

    /// Dials `uri` as soon as it has started (`-e "/dial URI"`).
    pub fn dial(mut self, uri: &str) -> Self {
        self.dial = Some(uri.to_owned());
        self
    }

    /// Adds a line to baresip's `config` (e.g. `jitter_buffer_delay`,
    /// `opus_inbandfec`); later lines win.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a parameter to the account line (e.g. `ptime=40`).
    pub fn account_param(mut self, param: &str) -> Self {
        self.account_params.push(param.to_owned());
        self
    }

    /// Whether to print SIP messages into the log (`-s`; on by default).
    pub fn sip_trace(mut self, on: bool) -> Self {
        self.sip_trace = on;
        self
    }
}

/// A running baresip, ended when dropped as by [`Baresip::stop`].
pub struct Baresip {
    process: PeerProcess,
    user: String,
    sip_port: u16,
    cons_port: u16,
    mic: PathBuf,
    snd: PathBuf,
    registered_as: Option<String>,
    // Last: the directory goes after the process has died.
    dir: ScratchDir,
}

impl Baresip {
    /// A phone that answers calls to `sip:callee@127.0.0.1:PORT` at once;
    /// returns it and PORT.
    pub fn answering(codec: Codec, speech: &Path) -> (Baresip, u16) {
        let phone = Baresip::start(BaresipOptions::new("callee", codec, speech));
        let port = phone.sip_port();
        (phone, port)
    }

    /// A phone that dials `target` (a SIP URI) as soon as it has started.
    pub fn dialing(target: &str, codec: Codec, speech: &Path) -> Baresip {
        Baresip::start(BaresipOptions::new("caller", codec, speech).dial(target))
    }

    /// Starts baresip and waits until it is ready (not until it has
    /// registered or connected a call: see the `wait_*` methods).
    pub fn start(options: BaresipOptions) -> Baresip {
        // The ports were free when chosen, but another process may take one
        // before baresip binds it: then a new block is tried.
        for _ in 0..2 {
            match Baresip::start_once(&options) {
                Ok(phone) => return phone,
                Err(log) if log.contains("in use") => continue,
                Err(log) => panic!("baresip did not start within {STARTUP:?}:\n{log}"),
            }
        }
        Baresip::start_once(&options)
            .unwrap_or_else(|log| panic!("baresip did not start within {STARTUP:?}:\n{log}"))
    }

    fn start_once(options: &BaresipOptions) -> Result<Baresip, String> {
        let options = options.clone();
        let dir = ScratchDir::new(&format!("baresip-{}", options.user));
        let base = free_ports(8);
        let (sip_port, cons_port) = (base, base + 2);
        let snd = dir.path().join("snd");
        std::fs::create_dir_all(&snd).expect("creating baresip's snd_path");

        let mic = dir.path().join("mic.wav");
        let mic_rate = write_mic(&options.speech, options.length, &mic);

        let config = config_file(&options, dir.path(), sip_port, cons_port, &mic, mic_rate);
        std::fs::write(dir.path().join("config"), config).expect("writing baresip's config");
        let (account, registered_as) = account_line(&options, sip_port);
        std::fs::write(dir.path().join("accounts"), format!("{account}\n"))
            .expect("writing baresip's accounts");

        let mut command = Command::new("baresip");
        command.arg("-f").arg(dir.path()).current_dir(dir.path());
        if options.sip_trace {
            command.arg("-s");
        }
        if let Some(uri) = &options.dial {
            command.arg("-e").arg(format!("/dial {uri}"));
        }
        let log = dir.path().join("baresip.log");
        let mut process = PeerProcess::spawn("baresip", command, &log);
        if !process.wait_for_log("baresip is ready.", 1, STARTUP) {
            return Err(format!("(log {})\n{}", log.display(), process.log_tail(40)));
        }
        Ok(Baresip {
            process,
            user: options.user,
            sip_port,
            cons_port,
            mic,
            snd,
            registered_as,
            dir,
        })
    }

    /// The port of its SIP listener (UDP and TCP) on 127.0.0.1.
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// Where it takes calls directly: `sip:USER@127.0.0.1:PORT` (the user
    /// part must match, or baresip answers 404).
    pub fn uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.user, self.sip_port)
    }

    /// Its address-of-record when it registers (`sip:USER@DOMAIN`).
    pub fn aor(&self) -> Option<&str> {
        self.registered_as.as_deref()
    }

    /// The WAV it plays as its microphone, as played (converted, cut or
    /// padded): the reference to find in the other side's recording.
    pub fn speech(&self) -> &Path {
        &self.mic
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its standard output and error (with `-s`, every SIP message).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The end of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Runs a command line as typed at its console (`/dial URI`, `/hangup`,
    /// `/accept`), over UDP to module `cons`.
    pub fn command(&self, line: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket for baresip's console");
        socket
            .send_to(
                format!("{line}\n").as_bytes(),
                ("127.0.0.1", self.cons_port),
            )
            .expect("sending a command to baresip");
    }

    /// Waits up to `timeout` for `needle` to appear `times` times in the log.
    pub fn wait_for(&mut self, needle: &str, times: usize, timeout: Duration) -> bool {
        self.process.wait_for_log(needle, times, timeout)
    }

    /// Like [`Baresip::wait_for`] once, but fails the test with the log.
    pub fn expect(&mut self, needle: &str, timeout: Duration) {
        if !self.wait_for(needle, 1, timeout) {
            panic!(
                "baresip {} did not log {needle:?} within {timeout:?} (log {}):\n{}",
                self.user,
                self.log_path().display(),
                self.log_tail(60)
            );
        }
    }

    /// Waits for a 200 to its REGISTER.
    pub fn wait_registered(&mut self, timeout: Duration) {
        self.expect("binding]", timeout);
    }

    /// Waits for a call to be established (either direction).
    pub fn wait_established(&mut self, timeout: Duration) {
        self.expect("Call established:", timeout);
    }

    /// Waits for an established call to end (BYE sent or received).
    pub fn wait_call_end(&mut self, timeout: Duration) {
        self.expect("terminated (duration", timeout);
    }

    /// What it heard in its last call (`dump-*-dec.wav`: decoded audio, at
    /// the codec's rate and channels: 8 kHz mono for G.711, 48 kHz stereo
    /// for Opus), once `sndfile` has finished the file. Call after
    /// [`Baresip::wait_call_end`].
    pub fn recording(&self) -> Option<PathBuf> {
        self.finished_dump("-dec.wav")
    }

    /// What it sent in its last call (`dump-*-enc.wav`, before the encoder).
    pub fn sent_recording(&self) -> Option<PathBuf> {
        self.finished_dump("-enc.wav")
    }

    /// Ends it politely (SIGTERM: BYE for a call, un-REGISTER), waiting up to
    /// 5 s before killing it. Returns its exit status if it ended by itself.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.process.terminate(Duration::from_secs(5))
    }

    /// Kills it at once (SIGKILL): no BYE, no un-REGISTER, its RTP just stops,
    /// as when a phone loses power.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// The newest dump file ending in `suffix`, once its WAV header counts
    /// all its bytes (libsndfile writes the sizes when it closes the file).
    fn finished_dump(&self, suffix: &str) -> Option<PathBuf> {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let newest = std::fs::read_dir(&self.snd)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .max();
            if let Some(path) = &newest
                && wav_is_complete(path)
            {
                return newest;
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Writes the microphone file: mono 16-bit at a rate baresip's resampler
/// takes to both 8 and 48 kHz (8, 16 or 48 kHz; others are resampled to
/// 48 kHz). Returns its rate, which `ausrc_srate` must match exactly.
fn write_mic(speech: &Path, length: Option<Duration>, out: &Path) -> u32 {
    let (mut samples, rate) = media::audio::wav::read_mono(speech)
        .unwrap_or_else(|e| panic!("reading {}: {e}", speech.display()));
    let rate = if [8_000, 16_000, 48_000].contains(&rate) {
        rate
    } else {
        let mut resampled = Vec::new();
        Resampler::new(rate, 48_000).process(&samples, &mut resampled);
        samples = resampled;
        48_000
    };
    if let Some(length) = length {
        let n = (length.as_secs_f64() * f64::from(rate)).round() as usize;
        samples.resize(n, 0);
    }
    write_wav_mono(out, rate, &samples);
    rate
}

fn config_file(
    options: &BaresipOptions,
    dir: &Path,
    sip_port: u16,
    cons_port: u16,
    mic: &Path,
    mic_rate: u32,
) -> String {
    let rtp = cons_port + 2;
    let device = format!("silent-{}-{sip_port}", options.user);
    let mut lines = vec![
        ("poll_method".to_owned(), "epoll".to_owned()),
        ("sip_listen".into(), format!("127.0.0.1:{sip_port}")),
        // Bind and advertise loopback, not the primary interface.
        ("net_interface".into(), "127.0.0.1".into()),
        ("audio_player".into(), format!("aubridge,{device}")),
        ("audio_alert".into(), format!("aubridge,{device}-alert")),
        ("audio_source".into(), format!("aufile,{}", mic.display())),
        ("ausrc_srate".into(), mic_rate.to_string()),
        ("ausrc_channels".into(), "1".into()),
        ("snd_path".into(), dir.join("snd").display().to_string()),
        // rtp_listen takes an even port in [min, max): RTP+RTCP in the block.
        ("rtp_ports".into(), format!("{}-{}", rtp, rtp + 3)),
        ("cons_listen".into(), format!("127.0.0.1:{cons_port}")),
        ("call_local_timeout".into(), "120".into()),
        ("module_path".into(), "/usr/lib/baresip/modules".into()),
    ];
    for module in [
        "g711.so",
        "opus.so",
        "aufile.so",
        "aubridge.so",
        "sndfile.so",
        "cons.so",
    ] {
        lines.push(("module".into(), module.into()));
    }
    lines.push(("module_tmp".into(), "account.so".into()));
    // menu gives -e and cons their commands (/dial, /hangup, /accept).
    lines.push(("module_app".into(), "menu.so".into()));
    lines.extend(options.config.iter().cloned());
    lines
        .iter()
        .map(|(k, v)| format!("{k}\t{v}\n"))
        .collect::<String>()
}

fn account_line(options: &BaresipOptions, sip_port: u16) -> (String, Option<String>) {
    let codecs: Vec<&str> = options.codecs.iter().map(|c| c.baresip_name()).collect();
    let answer = if options.auto_answer {
        "auto"
    } else {
        "manual"
    };
    let (address, registration, aor) = match &options.registrar {
        Some((domain, password)) => {
            let aor = format!("sip:{}@{domain}", options.user);
            (
                format!("<{aor}>"),
                format!(";auth_pass={password};regint=600"),
                Some(aor),
            )
        }
        None => (
            format!("<sip:{}@127.0.0.1:{sip_port}>", options.user),
            ";regint=0".to_owned(),
            None,
        ),
    };
    let mut line = format!(
        "{address}{registration};answermode={answer};audio_codecs={}",
        codecs.join(",")
    );
    for p in &options.account_params {
        line.push(';');
        line.push_str(p);
    }
    (line, aor)
}

/// Whether the RIFF size in the header matches the file: true once
/// libsndfile has closed it.
fn wav_is_complete(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    bytes.len() > 44
        && &bytes[..4] == b"RIFF"
        && u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize + 8 == bytes.len()
}
