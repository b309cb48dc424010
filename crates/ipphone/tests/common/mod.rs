//! Shared by the integration tests: running ipphone processes, reading their
//! events and recordings, and finding the speech samples.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use media::codec::resample::Resampler;
use media::dsp::correlate::{self, Alignment};
use serde_json::Value;

/// Real speech, from Debian's codec2-examples: 10.8 s, 16 kHz mono.
pub const SPEECH: &str = "/usr/share/codec2/raw/speech_orig_16k.wav";
/// Another voice, from Debian's pocketsphinx-testdata (LibriVox, public domain).
pub const SPEECH_2: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav";

/// A path to a speech sample, or a failure that says how to get it.
pub fn speech(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.exists(),
        "{path} is missing: run the README's test command (scripts/test), which installs the speech samples"
    );
    p
}

/// A fresh directory for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ipphone-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

pub fn ipphone() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipphone"));
    for_tests(&mut c);
    c
}

/// The user's own configuration (SIP accounts) stays out of the tests.
fn for_tests(c: &mut Command) {
    c.env("RUST_LOG", "warn").env(
        "XDG_CONFIG_HOME",
        std::env::temp_dir().join("ipphone-test-no-config"),
    );
}

/// A running ipphone whose `--json` events are read line by line.
pub struct Phone {
    pub child: Child,
    events: Receiver<Value>,
    pub seen: Vec<Value>,
}

impl Phone {
    /// Starts `ipphone ARGS --json`.
    pub fn spawn(args: &[&str]) -> Phone {
        Phone::spawn_with_env(args, &[])
    }

    /// Starts `ipphone ARGS --json` with `env` added to its environment.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &Path)]) -> Phone {
        let mut command = ipphone();
        for (k, v) in env {
            command.env(k, v);
        }
        Phone::start(command, args)
    }

    /// Starts `command ARGS --json`, where `command` runs ipphone.
    pub fn start(mut command: Command, args: &[&str]) -> Phone {
        let mut child = command
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting ipphone");
        let stdout = child.stdout.take().expect("piped stdout");
        Phone {
            child,
            events: read_events(stdout),
            seen: Vec::new(),
        }
    }

    /// The latest event named `event` seen so far; fails the test if none.
    pub fn last(&self, event: &str) -> Value {
        self.seen
            .iter()
            .rev()
            .find(|e| e["event"] == event)
            .cloned()
            .unwrap_or_else(|| panic!("no {event} in {:?}", self.seen))
    }

    /// Waits for the event named `name`, failing the test after `timeout`.
    pub fn wait_for(&mut self, name: &str, timeout: Duration) -> Value {
        self.try_wait_for(name, timeout)
            .unwrap_or_else(|| panic!("no {name:?} event within {timeout:?}; saw {:?}", self.seen))
    }

    pub fn try_wait_for(&mut self, name: &str, timeout: Duration) -> Option<Value> {
        self.try_wait_for_where(name, timeout, |_| true)
    }

    /// Waits for an event named `name` for which `pred` holds, seen before
    /// or arriving within `timeout`.
    pub fn wait_for_where(
        &mut self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.try_wait_for_where(name, timeout, pred)
            .unwrap_or_else(|| {
                panic!(
                    "no such {name:?} event within {timeout:?}; saw {:?}",
                    self.seen
                )
            })
    }

    pub fn try_wait_for_where(
        &mut self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(v) = self.seen.iter().find(|v| v["event"] == name && pred(v)) {
            return Some(v.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["event"] == name && pred(&v) {
                        return Some(v);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Starts a listener on a free loopback port; returns it and the port.
    pub fn listen(args: &[&str]) -> (Phone, u16) {
        Phone::listen_on("127.0.0.1:0", args)
    }

    /// Starts a listener bound to `bind`; returns it and the port it got.
    pub fn listen_on(bind: &str, args: &[&str]) -> (Phone, u16) {
        Phone::listen_on_with_env(bind, args, &[])
    }

    /// Starts a listener on a free loopback port with `env` added to its
    /// environment; returns it and the port.
    pub fn listen_with_env(args: &[&str], env: &[(&str, &Path)]) -> (Phone, u16) {
        Phone::listen_on_with_env("127.0.0.1:0", args, env)
    }

    fn listen_on_with_env(bind: &str, args: &[&str], env: &[(&str, &Path)]) -> (Phone, u16) {
        let mut all = vec!["listen", "--bind", bind];
        all.extend_from_slice(args);
        Phone::listening(Phone::spawn_with_env(&all, env))
    }

    /// A started listener, once it listens, and its port.
    pub fn listening(mut phone: Phone) -> (Phone, u16) {
        let ev = phone.wait_for("listening", Duration::from_secs(20));
        let addr = ev["addr"].as_str().expect("listening addr");
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        (phone, port)
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn exit_code(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for ipphone") {
                // Collect the remaining events.
                while let Ok(v) = self.events.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(v);
                }
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "ipphone did not exit within {timeout:?}; events {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill -{signal} failed");
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_events(stdout: ChildStdout) -> Receiver<Value> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
                Err(e) => panic!("ipphone printed a line on stdout that is not JSON ({e}): {line}"),
            }
        }
    });
    rx
}

/// Reads a WAV file as mono 16-bit samples and its rate.
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    media::audio::wav::read_mono(path).unwrap_or_else(|e| panic!("{e}"))
}

pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    let mut out = Vec::new();
    Resampler::new(from, to).process(samples, &mut out);
    out
}

/// Lines up what was received against the speech that was sent, at the
/// received file's rate, looking up to 1 s ahead.
pub fn align_speech(sent: &Path, received: &Path) -> Alignment {
    let (speech, speech_rate) = read_wav(sent);
    let (heard, rate) = read_wav(received);
    let reference = resample(&speech, speech_rate, rate);
    correlate::align(&reference, &heard, rate as usize)
        .expect("the recording lines up with the speech")
}

/// Lines up each half second of the speech sent on its own: a call may
/// change its delay mid-way (an underrun on a busy machine adds a little),
/// which one alignment over the whole file would count as distortion.
/// Silent pieces are skipped.
pub fn align_pieces(sent: &Path, received: &Path) -> Vec<Alignment> {
    let (speech, speech_rate) = read_wav(sent);
    let (heard, rate) = read_wav(received);
    let reference = resample(&speech, speech_rate, rate);
    let piece = rate as usize / 2;
    reference
        .chunks_exact(piece)
        .enumerate()
        .filter(|(_, p)| p.iter().any(|&s| s.abs() > 1_000))
        .filter_map(|(i, p)| {
            let from = (i * piece).min(heard.len());
            correlate::align(p, &heard[from..], rate as usize / 2)
        })
        .collect()
}

/// Checks that every piece of speech arrived (correlation above `min` on
/// average, no piece below `floor`) and no later than `max_ms`. A piece in
/// which the delay stepped (an underrun refilled, a trim) lines up at about
/// 0.5, so `floor` tells a step from a piece that did not arrive at all.
/// The lag is judged where a piece lines up (above 0.5): in a piece that
/// lost a run of frames the best match can be anywhere, and says nothing
/// of when the rest of it came.
pub fn assert_speech_arrived(pieces: &[Alignment], rate: u32, min: f64, floor: f64, max_ms: f64) {
    assert!(pieces.len() >= 4, "too little speech to judge: {pieces:?}");
    let mean = pieces.iter().map(|a| a.correlation).sum::<f64>() / pieces.len() as f64;
    assert!(mean > min, "mean correlation {mean:.3}: {pieces:?}");
    for a in pieces {
        assert!(
            a.correlation > floor,
            "a piece barely arrived: {a:?} of {pieces:?}"
        );
        assert!(
            a.correlation <= 0.5 || ms(a.lag, rate) < max_ms,
            "a piece arrived late: {a:?} of {pieces:?}"
        );
    }
    let lined_up = pieces.iter().filter(|a| a.correlation > 0.5).count();
    assert!(
        lined_up * 2 >= pieces.len(),
        "too few pieces line up to judge their delay: {pieces:?}"
    );
}

/// Milliseconds of a lag at a rate.
pub fn ms(samples: usize, rate: u32) -> f64 {
    samples as f64 * 1000.0 / f64::from(rate)
}

/// A network namespace of the test's own, with only a loopback, that lasts
/// as long as this value: what runs in it cannot reach beyond the machine,
/// and nftables rules there touch nothing else. Needs root (the tests run
/// as root); `None` without it.
pub struct PrivateNet {
    holder: Child,
}

impl PrivateNet {
    pub fn new() -> Option<PrivateNet> {
        let holder = Command::new("unshare")
            .args(["-n", "sleep", "300"])
            .stdin(Stdio::null())
            .spawn()
            .ok()?;
        let net = PrivateNet { holder };
        // unshare has entered the namespace once the holder's differs from ours.
        let ours = std::fs::read_link("/proc/self/ns/net").ok()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(net.ns())
            .ok()
            .is_none_or(|ns| ns == ours)
        {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        net.run("ip", &["link", "set", "lo", "up"]).then_some(net)
    }

    fn ns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.holder.id()))
    }

    /// `program ARGS` to run inside the namespace.
    pub fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.ns().display()))
            .arg(program)
            .args(args);
        c
    }

    /// Runs `program ARGS` in the namespace to its end; whether it succeeded.
    pub fn run(&self, program: &str, args: &[&str]) -> bool {
        self.command(Path::new(program), args)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// ipphone, inside the namespace, as [`ipphone`] sets it up.
    pub fn ipphone(&self) -> Command {
        let mut c = self.command(Path::new(env!("CARGO_BIN_EXE_ipphone")), &[]);
        for_tests(&mut c);
        c
    }
}

impl Drop for PrivateNet {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
