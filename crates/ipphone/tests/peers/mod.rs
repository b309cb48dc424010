//! Real SIP peers for the interop tests: baresip (a softphone), sipp (a SIP
//! traffic generator) and Kamailio (a registrar and proxy), each started as a
//! child process in its own scratch directory, on loopback ports, with every
//! wait bounded in time.
//!
//! A harness keeps its directory (configuration, logs, recordings) when the
//! test fails, or always with `IPPHONE_KEEP_PEERS=1`, and removes it when the
//! handle drops on success, so read what you need before dropping it.
#![allow(dead_code)]

pub mod baresip;
pub mod kamailio;
pub mod sipp;

use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

// Each test binary uses its own subset of the peers.
#[allow(unused_imports)]
pub use baresip::{Baresip, BaresipOptions, Codec};
#[allow(unused_imports)]
pub use kamailio::Kamailio;
#[allow(unused_imports)]
pub use sipp::{Scenario, Sipp, SippOptions};

/// The first port handed out; ports come from 21000-31999, below Linux's
/// ephemeral range (32768-60999) so that no socket bound to port 0 takes
/// them between the check and the peer's bind.
const PORT_BASE: u32 = 21_000;
const PORT_SPAN: u32 = 11_000;
/// Blocks are aligned to this, so that a block's first port is even (RTP).
const PORT_ALIGN: u32 = 8;

static NEXT_PORT: AtomicU32 = AtomicU32::new(u32::MAX);

/// The first of `count` consecutive ports that are free on 127.0.0.1 for both
/// UDP and TCP. Each call hands out a fresh block (several peers start in
/// parallel test threads); the start depends on the process id so that two
/// test binaries running at once rarely try the same ports.
pub fn free_ports(count: u16) -> u16 {
    let count = u32::from(count.max(1));
    let blocks = count.div_ceil(PORT_ALIGN) * PORT_ALIGN;
    let _ = NEXT_PORT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(7919) % (PORT_SPAN / PORT_ALIGN)) * PORT_ALIGN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..500 {
        let offset = NEXT_PORT.fetch_add(blocks, Ordering::SeqCst) % (PORT_SPAN - blocks);
        let first = PORT_BASE + offset - offset % PORT_ALIGN;
        let all_free = (first..first + count).all(|p| {
            let p = p as u16;
            UdpSocket::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
        });
        if all_free {
            return first as u16;
        }
    }
    panic!("no block of {count} free ports on 127.0.0.1 in {PORT_BASE}..");
}

/// A fresh directory for one peer's files, kept when the test fails.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> ScratchDir {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("ipphone-peer-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a peer's scratch directory");
        ScratchDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var_os("IPPHONE_KEEP_PEERS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// No peer outlives this, even when the test process is killed (Ctrl-C, a
/// CI timeout) before it could end them: each runs under coreutils'
/// `timeout`, which ends its process group then.
pub const MAX_LIFETIME: Duration = Duration::from_secs(300);

/// A peer's process: its own process group (so that Kamailio's workers die
/// with it) led by `timeout` ([`MAX_LIFETIME`]), standard input from
/// /dev/null, standard output and error into one log file. Ended on drop:
/// SIGTERM, then SIGKILL to the group if it lingers.
pub struct PeerProcess {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl PeerProcess {
    /// Starts `command` (its program, arguments and directory), logging to
    /// `log`; panics if it cannot start.
    pub fn spawn(name: &str, command: Command, log: &Path) -> PeerProcess {
        let out = File::create(log).expect("creating a peer's log file");
        let err = out.try_clone().expect("sharing a peer's log file");
        // `timeout` passes SIGTERM on to the peer and returns its exit code.
        let mut wrapped = Command::new("timeout");
        wrapped
            .arg("--kill-after=5")
            .arg(format!("{}", MAX_LIFETIME.as_secs()))
            .arg(command.get_program())
            .args(command.get_args());
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        let child = wrapped
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {name} ({command:?}): {e}; run scripts/test, which installs the peers"
                )
            });
        PeerProcess {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            status: None,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("waiting for a peer");
        }
        self.status
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_exit() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` until `needle` occurs `times` times in the log.
    /// Gives up early once the process has exited without writing it.
    pub fn wait_for_log(&mut self, needle: &str, times: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self.try_exit().is_some();
            if self.log().matches(needle).count() >= times {
                return true;
            }
            if exited || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends `signal` (a name such as `TERM`) to the process alone.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// Asks the process to end (SIGTERM), waits up to `grace`, then kills its
    /// whole process group. Returns the exit status if it ended by itself.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.try_exit() {
            return Some(s);
        }
        self.signal("TERM");
        let status = self.wait_exit(grace);
        self.kill_group();
        status
    }

    /// Kills the whole process group at once (SIGKILL).
    pub fn kill(&mut self) {
        self.kill_group();
    }

    fn kill_group(&mut self) {
        // The group outlives its leader when workers remain (Kamailio).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        // SIGTERM first: Kamailio's main process then reaps its workers, and
        // baresip hangs up. Both take milliseconds on loopback.
        self.terminate(Duration::from_secs(3));
    }
}

/// Writes `samples` as a 16-bit PCM mono WAV file at `rate` Hz, with the
/// canonical 44-byte header (no extra chunks, which baresip's aufile reads).
pub fn write_wav_mono(path: &Path, rate: u32, samples: &[i16]) {
    let data_len = u32::try_from(samples.len() * 2).expect("a WAV under 4 GiB");
    let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&rate.to_le_bytes());
    bytes.extend_from_slice(&(rate * 2).to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    File::create(path)
        .and_then(|mut f| f.write_all(&bytes))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Sends one SIP OPTIONS request over UDP to 127.0.0.1:`port` and waits up
/// to `timeout` for any response: a liveness probe for a SIP server.
pub fn sip_responds(port: u16, timeout: Duration) -> Option<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    let local = socket.local_addr().ok()?;
    socket.set_read_timeout(Some(timeout)).ok()?;
    let branch = format!("z9hG4bKprobe{}{}", std::process::id(), local.port());
    let request = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=probe{}\r\n\
         To: <sip:127.0.0.1:{port}>\r\n\
         Call-ID: {branch}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        local.port()
    );
    socket
        .send_to(request.as_bytes(), ("127.0.0.1", port))
        .ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.starts_with("SIP/2.0 ").then_some(text)
}
