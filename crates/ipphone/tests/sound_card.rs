//! A call between two sound devices: a private PulseAudio daemon with two
//! null sinks stands in for two sound cards. `paplay` speaks real speech into
//! sink `mouth`, whose monitor is the caller's microphone; the callee's
//! speaker is sink `ear`, recorded from its monitor by `parecord`. Both
//! ipphone processes talk tcp-pcm over loopback, and what `ear` played must
//! be the speech `mouth` heard.
//!
//! The sound devices are found through `PULSE_SERVER`, one per process, so
//! the call runs in a child process: the parent starts the daemon and re-runs
//! this test binary on the `#[ignore]`d child test with the environment set.

mod common;

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use media::audio::{MicStream, device};
use media::dsp::{correlate, tones};

/// Set in the child process: the test to run there.
const CHILD: &str = "IPPHONE_TEST_CHILD";
/// The rate of the recordings: the call's own (tcp-pcm is 8 kHz).
const RATE: u32 = 8_000;

#[test]
fn speech_crosses_a_call_between_two_sound_devices() {
    let pulse = PrivatePulse::start("sound-card", &["mouth", "ear"]);
    let out = run_child("child_call_between_sound_devices", &pulse.env());
    report(&out, "child_call_between_sound_devices");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ALSA lib"),
        "alsa-lib's messages reached stderr:\n{stderr}"
    );
}

#[test]
#[ignore = "run by speech_crosses_a_call_between_two_sound_devices in a child process"]
fn child_call_between_sound_devices() {
    if std::env::var(CHILD).as_deref() != Ok("child_call_between_sound_devices") {
        println!("runs only as a child of speech_crosses_a_call_between_two_sound_devices");
        return;
    }
    let dir = scratch("sound-card");
    let speech_path = speech(SPEECH);
    let heard_path = dir.join("ear.wav");

    // Our own taps on both monitors, opened together so that their
    // timelines agree: the mouth-to-ear delay is the difference of where the
    // speech lies in each.
    let taps = Taps::start(["mouth.monitor", "ear.monitor"]);
    // An independent recording of what the callee's speaker played.
    let mut parecord = Command::new("parecord")
        .args(["--device=ear.monitor", "--channels=1", "--format=s16le"])
        .arg(format!("--rate={RATE}"))
        .arg("--file-format=wav")
        .arg(&heard_path)
        .stdin(Stdio::null())
        .spawn()
        .expect("starting parecord (Debian package pulseaudio-utils)");

    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-pcm",
        "--calls",
        "1",
        "--mic",
        "null",
        "--speaker",
        "pulse:ear",
    ]);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--protocol",
        "tcp-pcm",
        "--duration",
        "14",
        "--mic",
        "mouth.monitor",
        "--speaker",
        "null",
    ]);
    caller.wait_for("connected", Duration::from_secs(20));
    let spoken = Command::new("paplay")
        .arg("--device=mouth")
        .arg(&speech_path)
        .status()
        .expect("running paplay (Debian package pulseaudio-utils)");
    assert!(spoken.success(), "paplay failed: {spoken}");
    assert_eq!(caller.exit_code(Duration::from_secs(30)), 0, "caller exit");
    assert_eq!(callee.exit_code(Duration::from_secs(10)), 0, "callee exit");
    std::thread::sleep(Duration::from_millis(300));
    let recordings = taps.stop();
    stop_gently(&mut parecord);

    let (speech, speech_rate) = read_wav(&speech_path);
    let reference = resample(&speech, speech_rate, RATE);
    let (heard, heard_rate) = read_wav(&heard_path);
    assert_eq!(heard_rate, RATE, "parecord's rate");
    let heard = Pieces::find(&reference, &heard, "the callee's speaker (parecord)");
    let [mouth, ear] = recordings;
    let mouth = Pieces::find(&reference, &mouth, "the caller's microphone (our tap)");
    let ear = Pieces::find(&reference, &ear, "the callee's speaker (our tap)");

    let hangup = caller
        .seen
        .iter()
        .find(|e| e["event"] == "hangup")
        .expect("the caller's hangup event")
        .clone();
    let callee_hangup = callee
        .seen
        .iter()
        .find(|e| e["event"] == "hangup")
        .expect("the callee's hangup event")
        .clone();
    // Where the first piece heard at both ends lies in each tap: the taps
    // share one timeline.
    let delay = mouth
        .lags
        .iter()
        .find_map(|&(n, at_mouth)| {
            let at_ear = ear.lags.iter().find(|&&(m, _)| m == n)?.1;
            Some((at_ear - at_mouth) as f64 * 1000.0 / f64::from(RATE))
        })
        .expect("no piece of the speech was heard whole at both ends");
    println!(
        "mouth to ear (caller's capture device, tcp-pcm over loopback, callee's playout and \
         playback device): {delay:.1} ms; callee underruns {} ms, dropped {} ms; caller sent \
         {} bytes",
        callee_hangup["underrun_ms"], callee_hangup["dropped_ms"], hangup["bytes_sent"],
    );
    assert_eq!(hangup["reason"], "duration", "{hangup}");
    for pieces in [&heard, &mouth, &ear] {
        pieces.check();
    }
    assert!(
        (0.0..500.0).contains(&delay),
        "mouth to ear took {delay:.1} ms"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sip_call_rings_on_the_sound_card_until_it_is_cancelled() {
    let pulse = PrivatePulse::start("ringing", &["bell", "back"]);
    let out = run_child("child_rings_on_the_sound_card", &pulse.env());
    report(&out, "child_rings_on_the_sound_card");
}

#[test]
#[ignore = "run by a_sip_call_rings_on_the_sound_card_until_it_is_cancelled in a child process"]
fn child_rings_on_the_sound_card() {
    if std::env::var(CHILD).as_deref() != Ok("child_rings_on_the_sound_card") {
        println!(
            "runs only as a child of a_sip_call_rings_on_the_sound_card_until_it_is_cancelled"
        );
        return;
    }
    // The callee's bell rings to the US plan; the caller hears the UK
    // ringback on its own speaker.
    let taps = Taps::start(["bell.monitor", "back.monitor"]);
    let (mut callee, port) = Phone::listen(&[
        "--calls",
        "1",
        "--tones",
        "us",
        "--mic",
        "null",
        "--speaker",
        "pulse:bell",
    ]);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("sip:bob@127.0.0.1:{port}"),
        "--tones",
        "uk",
        "--mic",
        "null",
        "--speaker",
        "pulse:back",
    ]);
    callee.wait_for("ringing", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(2_500));
    caller.signal("INT");
    assert_eq!(caller.exit_code(Duration::from_secs(20)), 0);
    assert_eq!(callee.exit_code(Duration::from_secs(20)), 0);
    std::thread::sleep(Duration::from_millis(1_000));
    let [bell, back] = taps.stop();
    let onset = bell
        .iter()
        .position(|s| s.unsigned_abs() > 1_000)
        .expect("nothing rang on the speaker");
    let rate = RATE as usize;
    let ring = &bell[onset..(onset + rate * 3 / 2).min(bell.len())];
    // Measured over 100 ms blocks and averaged: a capture glitch breaks the
    // phase, which would skew one long measurement.
    let power = |f: f64| {
        let blocks: Vec<f64> = ring
            .chunks_exact(rate / 10)
            .map(|b| tones::goertzel(b, RATE, f))
            .collect();
        blocks.iter().sum::<f64>() / blocks.len().max(1) as f64
    };
    let (f440, f480, f1000) = (power(440.0), power(480.0), power(1_000.0));
    println!("ringtone: 440 Hz {f440:.5}, 480 Hz {f480:.5}, 1000 Hz {f1000:.7}");
    assert!(f440 > 0.002 && f480 > 0.002, "not the ringtone");
    assert!(f1000 < f440 / 100.0, "not a clean ringtone");
    // It stopped with the call: the last half second is quiet.
    let tail = &bell[bell.len().saturating_sub(rate / 2)..];
    assert!(
        tail.iter().all(|s| s.unsigned_abs() < 300),
        "still ringing after the caller gave up"
    );
    // The caller heard the UK ringback (400 + 450 Hz) until it gave up.
    let onset = back
        .iter()
        .position(|s| s.unsigned_abs() > 1_000)
        .expect("no ringback on the caller's speaker");
    let ringback = &back[onset..(onset + rate * 4 / 10).min(back.len())];
    let power = |f: f64| {
        let blocks: Vec<f64> = ringback
            .chunks_exact(rate / 20)
            .map(|b| tones::goertzel(b, RATE, f))
            .collect();
        blocks.iter().sum::<f64>() / blocks.len().max(1) as f64
    };
    let (f400, f450, f1000) = (power(400.0), power(450.0), power(1_000.0));
    println!("ringback: 400 Hz {f400:.5}, 450 Hz {f450:.5}, 1000 Hz {f1000:.7}");
    assert!(f400 > 0.002 && f450 > 0.002, "not the UK ringback");
    assert!(f1000 < f400 / 100.0);
    let tail = &back[back.len().saturating_sub(rate / 2)..];
    assert!(
        tail.iter().all(|s| s.unsigned_abs() < 300),
        "the ringback went on after the caller hung up"
    );
}

/// Where the half-second pieces of the speech lie in a recording.
///
/// A recording is checked piece by piece rather than as a whole because
/// cpal's PulseAudio client loses audio when the server is short of CPU (it
/// asks the server to hold no more than one period for it), and every loss
/// shifts what follows and spoils one correlation of the whole. The same
/// happens upstream of us: when the machine is loaded, the server's null
/// sinks glitch under `paplay` itself, and every recording (ours and
/// `parecord`'s) shows the same slips. A piece with a slip inside it still
/// lines up at about 0.5; a piece that never arrived correlates near 0.05.
/// So the test asks that nearly every piece arrives (correlation above 0.3
/// where it should be) and that half arrive whole (above 0.9), and reports
/// the rest.
struct Pieces {
    what: String,
    /// (piece number, where it starts in the recording minus where it
    /// starts in the speech), for each piece found whole.
    lags: Vec<(usize, i64)>,
    /// (start in seconds, best correlation) of the pieces not found whole.
    spoilt: Vec<(f64, Option<f64>)>,
    /// How many pieces arrived at all, whole or with a slip inside.
    arrived: usize,
    loud: usize,
}

impl Pieces {
    fn find(reference: &[i16], received: &[i16], what: &str) -> Self {
        let whole = correlate::align(reference, received, received.len())
            .unwrap_or_else(|| panic!("{what}: the recording is silent"));
        let piece = RATE as usize / 2;
        let search = RATE as usize / 4;
        let mut lags = Vec::new();
        let mut spoilt = Vec::new();
        let mut arrived = 0;
        let mut loud = 0;
        let mut anchor = whole.lag as i64;
        for (n, part) in reference.chunks_exact(piece).enumerate() {
            if part.iter().all(|s| s.abs() < 1_000) {
                continue;
            }
            loud += 1;
            let start = (n * piece) as i64 + anchor;
            let from = (start - search as i64).clamp(0, received.len() as i64) as usize;
            let to = (start + (piece + search) as i64).clamp(0, received.len() as i64) as usize;
            match correlate::align(part, &received[from..to], 2 * search) {
                Some(found) if found.correlation > 0.9 => {
                    anchor = (from + found.lag) as i64 - (n * piece) as i64;
                    lags.push((n, anchor));
                    arrived += 1;
                }
                found => {
                    let correlation = found.map(|f| f.correlation);
                    if correlation.is_some_and(|c| c > 0.3) {
                        arrived += 1;
                    }
                    spoilt.push((n as f64 / 2.0, correlation));
                }
            }
        }
        let pieces = Self {
            what: what.to_owned(),
            lags,
            spoilt,
            arrived,
            loud,
        };
        println!(
            "{what}: correlation {:.4} with the speech as a whole; {} of {} half-seconds \
             arrived, {} whole; slips {:?} ms; pieces (start s, correlation) not found whole: \
             {:?}",
            whole.correlation,
            pieces.arrived,
            pieces.loud,
            pieces.lags.len(),
            pieces.slips(),
            pieces.spoilt,
        );
        pieces
    }

    /// Jumps in the lag from one piece found whole to the next.
    fn slips(&self) -> Vec<f64> {
        self.lags
            .windows(2)
            .filter(|w| w[0].1.abs_diff(w[1].1) > u64::from(RATE / 1000))
            .map(|w| (w[1].1 - w[0].1) as f64 * 1000.0 / f64::from(RATE))
            .collect()
    }

    fn check(&self) {
        assert!(
            self.loud >= 10
                && self.arrived * 8 >= self.loud * 7
                && self.lags.len() * 2 >= self.loud,
            "{}: of {} half-seconds of the speech, {} arrived and {} whole; slips {:?} ms, \
             pieces not found whole {:?}",
            self.what,
            self.loud,
            self.arrived,
            self.lags.len(),
            self.slips(),
            self.spoilt
        );
    }
}

/// Recordings of several sound devices through ipphone's own backend, on
/// one thread, so that their sample counts share one timeline.
struct Taps<const N: usize> {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<[Vec<i16>; N]>,
}

impl<const N: usize> Taps<N> {
    fn start(names: [&str; N]) -> Self {
        let mut mics: [MicStream; N] = names.map(|name| {
            device::open_mic(Some(name), RATE).unwrap_or_else(|e| panic!("opening {name}: {e}"))
        });
        for mic in &mics {
            assert_eq!(mic.rate, RATE, "PulseAudio takes any rate");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut recorded: [Vec<i16>; N] = std::array::from_fn(|_| Vec::new());
            // Start every recording at the same moment.
            for mic in &mut mics {
                while mic.ring.pop().is_ok() {}
            }
            while !stopping.load(Ordering::Relaxed) {
                for (mic, out) in mics.iter_mut().zip(&mut recorded) {
                    while let Ok(s) = mic.ring.pop() {
                        out.push(s);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            recorded
        });
        Self { stop, thread }
    }

    fn stop(self) -> [Vec<i16>; N] {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the recording thread")
    }
}

/// Stops a PulseAudio client as Ctrl-C would, so that it finishes its file.
fn stop_gently(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs this test binary on the single test `name`, with `env` added.
fn run_child(name: &str, env: &[(String, String)]) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, name)
    .env_remove("PULSE_RUNTIME_PATH")
    .env_remove("PULSE_COOKIE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running the test binary again")
}

/// Prints a child's output and fails unless its one test ran and passed.
fn report(out: &Output, name: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- {name} stdout ---\n{stdout}--- {name} stderr ---\n{stderr}");
    assert!(out.status.success(), "{name} failed ({})", out.status);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{name} did not run: {stdout}"
    );
}

/// A PulseAudio daemon of the test's own, on its own socket, with a null sink
/// per name; killed when dropped, even when the test panics.
struct PrivatePulse {
    dir: PathBuf,
    socket: PathBuf,
    child: Child,
}

impl PrivatePulse {
    /// Starts the daemon or fails the test saying why.
    fn start(tag: &str, sinks: &[&str]) -> Self {
        let dir = unique_dir(tag);
        let socket = dir.join("native");
        let config = dir.join("default.pa");
        let mut script = format!(
            "load-module module-native-protocol-unix auth-anonymous=1 socket={}\n",
            socket.display()
        );
        // Telephone-rate mono sinks: nothing to resample for an 8 kHz call,
        // which matters because cpal's fixed buffer sizes drive a null sink
        // to render every half millisecond.
        for sink in sinks {
            script += &format!(
                "load-module module-null-sink sink_name={sink} rate={RATE} channels=1 \
                 format=s16le\n"
            );
        }
        script += "load-module module-always-sink\n";
        std::fs::write(&config, script).expect("writing the PulseAudio configuration");
        // Clients send the cookie they find, and PulseAudio rejects an empty
        // one as a protocol error even when it lets anyone in.
        std::fs::create_dir_all(dir.join(".config/pulse")).expect("a config directory");
        std::fs::write(dir.join(".config/pulse/cookie"), [0x5a; 256]).expect("writing a cookie");
        let log = std::fs::File::create(dir.join("pulseaudio.log")).expect("a log file");
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
            ])
            .args(["--disallow-exit", "--log-target=stderr", "-F"])
            .arg(&config)
            .env("HOME", &dir)
            .env("XDG_RUNTIME_DIR", &dir)
            .env("XDG_CONFIG_HOME", dir.join(".config"))
            .env_remove("PULSE_SERVER")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => panic!(
                "cannot start pulseaudio ({e}): this test needs the Debian packages \
                 `pulseaudio` and `pulseaudio-utils` installed"
            ),
        };
        let mut pulse = Self { dir, socket, child };
        pulse.wait_ready();
        pulse
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "pulseaudio exited ({status}) before it answered on {}:\n{}",
                    self.socket.display(),
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "pulseaudio did not answer on {} within 15 s:\n{}",
                    self.socket.display(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The environment of a client of this daemon and of no other.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "PULSE_SERVER".into(),
                format!("unix:{}", self.socket.display()),
            ),
            ("XDG_RUNTIME_DIR".into(), self.dir.display().to_string()),
            ("HOME".into(), self.dir.display().to_string()),
        ]
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("pulseaudio.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for PrivatePulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new empty directory, unique to this process and tag. Kept short: a
/// socket path must fit in 108 bytes.
fn unique_dir(tag: &str) -> PathBuf {
    let dir = Path::new("/tmp").join(format!("ipphone-pa-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}
