//! sipp 3.6 (Debian `sip-tester`) running a built-in scenario (`uac`, `uas`)
//! or one of ours written as XML, over UDP on 127.0.0.1, bounded by a call
//! count (`-m`) and a global timeout (`-timeout`, failing when reached).
//!
//! sipp binds its SIP port, an audio port and the one two above it (video),
//! and a UDP control port (`-cp`, 8888 by default, on 0.0.0.0): each sipp
//! gets a block of 8 free ports for all of them.
//!
//! Exit codes (sipp(1)): 0 all calls succeeded, 1 at least one failed,
//! 97 stopped by a command, 99 ended without any call, 255 fatal error,
//! 254 a socket could not be bound.

use std::fmt;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{PeerProcess, ScratchDir, free_ports};

/// Extra time given to sipp beyond its own `-timeout` before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// Which scenario sipp plays.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// `-sn uac`: INVITE, 100/180/183 optional, 200, ACK, BYE, 200.
    Uac,
    /// `-sn uas`: the answering side of `uac`.
    Uas,
    /// Our own scenario: a name (for its file) and its XML.
    Xml { name: String, xml: String },
}

impl Scenario {
    pub fn xml(name: &str, xml: &str) -> Scenario {
        Scenario::Xml {
            name: name.to_owned(),
            xml: xml.to_owned(),
        }
    }
}

/// How to run sipp; build with [`SippOptions::new`].
#[derive(Debug, Clone)]
pub struct SippOptions {
    scenario: Scenario,
    remote: Option<String>,
    service: Option<String>,
    calls: u32,
    timeout: Duration,
    args: Vec<String>,
}

impl SippOptions {
    /// One call (`-m 1`) of `scenario`, 20 s at most.
    pub fn new(scenario: Scenario) -> SippOptions {
        SippOptions {
            scenario,
            remote: None,
            service: None,
            calls: 1,
            timeout: Duration::from_secs(20),
            args: Vec::new(),
        }
    }

    /// The peer to call, `host:port`.
    pub fn remote(mut self, remote: &str) -> Self {
        self.remote = Some(remote.to_owned());
        self
    }

    /// The user part of the Request-URI (`-s`; sipp's default is `service`).
    pub fn service(mut self, user: &str) -> Self {
        self.service = Some(user.to_owned());
        self
    }

    /// Stops after this many calls (`-m`).
    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// Fails after this long (`-timeout` with `-timeout_error`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Any other sipp argument (e.g. `-key`, `-set`, `-aa`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }
}

/// A running sipp, ended when dropped (SIGTERM, then SIGKILL).
pub struct Sipp {
    process: PeerProcess,
    port: u16,
    files: Files,
    timeout: Duration,
    // Last: the directory goes after the process has died.
    dir: ScratchDir,
}

struct Files {
    screen: PathBuf,
    errors: PathBuf,
    messages: PathBuf,
    stats: PathBuf,
}

impl Sipp {
    /// Starts sipp and returns once its SIP socket is bound (a UAS is then
    /// ready for calls).
    pub fn spawn(options: SippOptions) -> Sipp {
        // The ports were free when chosen, but another process may take one
        // before sipp binds it: then sipp exits at once, and a new block is
        // tried.
        for _ in 0..3 {
            let mut sipp = Sipp::spawn_once(&options);
            let lost_port = sipp.process.try_exit().is_some()
                && std::fs::read_to_string(&sipp.files.errors)
                    .is_ok_and(|e| e.contains("Unable to bind"));
            if !lost_port {
                return sipp;
            }
        }
        Sipp::spawn_once(&options)
    }

    fn spawn_once(options: &SippOptions) -> Sipp {
        let name = match &options.scenario {
            Scenario::Uac => "uac".to_owned(),
            Scenario::Uas => "uas".to_owned(),
            Scenario::Xml { name, .. } => name.clone(),
        };
        let dir = ScratchDir::new(&format!("sipp-{name}"));
        let base = free_ports(8);
        let (port, media, control) = (base, base + 2, base + 6);
        let path = |suffix: &str| dir.path().join(format!("{name}_{suffix}"));
        let files = Files {
            screen: path("screen.log"),
            errors: path("errors.log"),
            messages: path("messages.log"),
            stats: path("stats.csv"),
        };

        let mut command = Command::new("sipp");
        match &options.scenario {
            Scenario::Uac => {
                command.args(["-sn", "uac"]);
            }
            Scenario::Uas => {
                command.args(["-sn", "uas"]);
            }
            Scenario::Xml { xml, .. } => {
                let file = dir.path().join(format!("{name}.xml"));
                std::fs::write(&file, xml).expect("writing a sipp scenario");
                command.arg("-sf").arg(file);
            }
        }
        command
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string()])
            .args(["-mp", &media.to_string()])
            .args(["-cp", &control.to_string()])
            .args(["-m", &options.calls.to_string()])
            .args(["-timeout", &format!("{}ms", options.timeout.as_millis())])
            .args(["-timeout_error", "-nostdin"])
            .args(["-trace_screen", "-screen_file"])
            .arg(&files.screen)
            .args(["-trace_err", "-error_file"])
            .arg(&files.errors)
            .args(["-trace_msg", "-message_file"])
            .arg(&files.messages)
            .args(["-trace_stat", "-stf"])
            .arg(&files.stats)
            .args(&options.args)
            // pcaps for `play_pcap_audio` are looked up under ./pcap/.
            .current_dir(dir.path());
        if let Some(service) = &options.service {
            command.args(["-s", service]);
        }
        if let Some(remote) = &options.remote {
            command.arg(remote);
        }
        let log = dir.path().join(format!("{name}.log"));
        let mut process = PeerProcess::spawn("sipp", command, &log);

        // Ready once the SIP port is taken (or sipp has already given up).
        let deadline = Instant::now() + Duration::from_secs(5);
        while UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && process.try_exit().is_none()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        Sipp {
            process,
            port,
            files,
            timeout: options.timeout,
            dir,
        }
    }

    /// Runs sipp to its end (bounded by its timeout) and returns the outcome.
    pub fn run(options: SippOptions) -> SippOutcome {
        Sipp::spawn(options).wait()
    }

    /// Its SIP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `sip:USER@127.0.0.1:PORT`.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits for sipp to end by itself (its `-timeout` plus 5 s at most; then
    /// it is killed and the outcome has no exit code).
    pub fn wait(mut self) -> SippOutcome {
        let status = self.process.wait_exit(self.timeout + GRACE);
        if status.is_none() {
            self.process.terminate(Duration::from_secs(1));
        }
        let read = |p: &Path| {
            std::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        SippOutcome {
            code: status.and_then(|s| s.code()),
            log: self.process.log(),
            screen: read(&self.files.screen),
            errors: read(&self.files.errors),
            messages: read(&self.files.messages),
            stats: read(&self.files.stats),
            dir: self.dir.path().to_owned(),
        }
    }
}

/// How a sipp run ended, with everything it wrote.
#[derive(Debug, Clone)]
pub struct SippOutcome {
    /// Its exit code; `None` if it had to be killed.
    pub code: Option<i32>,
    /// Its standard output and error.
    pub log: String,
    /// The final screens (scenario counts, statistics).
    pub screen: String,
    /// Unexpected messages and other errors.
    pub errors: String,
    /// Every SIP message sent and received.
    pub messages: String,
    /// The statistics, CSV (`-trace_stat`).
    pub stats: String,
    /// Where these files were (removed on success).
    pub dir: PathBuf,
}

impl SippOutcome {
    /// Exit code 0: every call went through the scenario.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Fails the test, showing everything sipp wrote, unless it succeeded.
    pub fn assert_success(&self) {
        assert!(self.success(), "sipp failed:\n{self}");
    }

    /// A cumulative statistic by its CSV column name (e.g. `SuccessfulCall`,
    /// `FailedCall`), from the last line of the statistics file.
    pub fn stat(&self, column: &str) -> Option<u64> {
        let mut lines = self.stats.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines.next()?.split(';').collect();
        let last: Vec<&str> = lines.next_back()?.split(';').collect();
        let i = header.iter().position(|h| *h == format!("{column}(C)"))?;
        last.get(i)?.trim().parse().ok()
    }
}

impl fmt::Display for SippOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "exit code {:?} (files in {})",
            self.code,
            self.dir.display()
        )?;
        writeln!(f, "--- output\n{}", self.log.trim_end())?;
        writeln!(f, "--- errors\n{}", self.errors.trim_end())?;
        writeln!(f, "--- screen\n{}", self.screen.trim_end())?;
        write!(f, "--- messages\n{}", self.messages.trim_end())
    }
}

/// A UAC that cancels its INVITE before the answer (RFC 3261 9.1): INVITE,
/// 100 optional, 180 optional (waited for at most 1 s after a 100), CANCEL,
/// 200 for the CANCEL, 487 for the INVITE, ACK. The CANCEL and the ACK carry
/// the INVITE's branch. A UAS that sends no provisional response at all, or
/// answers 200, fails it.
pub const CANCEL_UAC: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC cancelling before the answer">
  <send retrans="500" start_txn="invite">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000

    ]]>
  </send>

  <recv response="100" optional="true" response_txn="invite"/>
  <recv response="180" response_txn="invite" timeout="1000" ontimeout="cancel"/>

  <label id="cancel"/>
  <send retrans="500" start_txn="cancel">
    <![CDATA[

      CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <!-- A late 180 or 183 (sent before the UAS saw the CANCEL) is fine. -->
  <recv response="180" optional="true" response_txn="invite"/>
  <recv response="183" optional="true" response_txn="invite"/>
  <recv response="200" response_txn="cancel"/>
  <recv response="487" response_txn="invite"/>

  <send ack_txn="invite">
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-8]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <!-- Absorbs a retransmitted 487 should the ACK be lost. -->
  <timewait milliseconds="500"/>
</scenario>
"#;

/// A UAS that rings and never answers, until the caller cancels: INVITE,
/// 100, 180, then CANCEL, 200 for it, 487 for the INVITE, ACK. The partner
/// of a caller that gives up (RFC 3261 9.2).
pub const RINGING_UAS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAS ringing until cancelled">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" check_it="true" assign_to="invite_cseq"/>
    </action>
  </recv>

  <send>
    <![CDATA[

      SIP/2.0 100 Trying
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>

  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>

  <recv request="CANCEL"/>

  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>

  <send>
    <![CDATA[

      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$invite_cseq] INVITE
      Content-Length: 0

    ]]>
  </send>

  <recv request="ACK"/>

  <timewait milliseconds="500"/>
</scenario>
"#;
