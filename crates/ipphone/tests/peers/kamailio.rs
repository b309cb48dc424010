//! Kamailio 5.6 (Debian `kamailio`) as registrar, location service and
//! record-routing proxy on 127.0.0.1 UDP, with digest authentication
//! (RFC 3261 22, qop=auth) against a fixed user table and no database: the
//! passwords live in an `htable` filled by the configuration itself.
//!
//! REGISTER is challenged with 401 (realm = the To host), any other initial
//! request with 407 (realm = the From host); the authenticated user must be
//! the one registering or calling (403 otherwise). Requests to a registered
//! address-of-record are relayed to its contact; unknown users get 404.

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::{PeerProcess, ScratchDir, free_ports, sip_responds};

const STARTUP: Duration = Duration::from_secs(10);
const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";

/// A running Kamailio, ended when dropped as by [`Kamailio::stop`].
pub struct Kamailio {
    process: PeerProcess,
    port: u16,
    // Last: the directory goes after the processes have died.
    dir: ScratchDir,
}

impl Kamailio {
    /// Starts Kamailio knowing `users` as (name, password) and waits until it
    /// answers SIP. Names and passwords are letters, digits, `.`, `_`, `-`.
    pub fn start(users: &[(&str, &str)]) -> Kamailio {
        let dir = ScratchDir::new("kamailio");
        let port = free_ports(1);
        let cfg = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg, config(port, users)).expect("writing kamailio.cfg");
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).expect("creating Kamailio's run directory");

        let mut command = Command::new(kamailio_binary());
        command
            .arg("-f")
            .arg(&cfg)
            // Foreground, log to stderr, own pid file and runtime directory.
            .args(["-DD", "-E"])
            .arg("-P")
            .arg(run.join("kamailio.pid"))
            .arg("-Y")
            .arg(&run)
            .arg("-w")
            .arg(&run)
            // 32 MB shared, 8 MB per process: plenty for a handful of phones.
            .args(["-m", "32", "-M", "8"])
            .current_dir(dir.path());
        let log = dir.path().join("kamailio.log");
        let mut process = PeerProcess::spawn("kamailio", command, &log);

        let deadline = Instant::now() + STARTUP;
        loop {
            if sip_responds(port, Duration::from_millis(200)).is_some() {
                break;
            }
            if process.try_exit().is_some() || Instant::now() >= deadline {
                panic!(
                    "Kamailio did not answer SIP on 127.0.0.1:{port} within {STARTUP:?} (log {}):\n{}",
                    log.display(),
                    process.log_tail(40)
                );
            }
        }
        Kamailio { process, port, dir }
    }

    /// Its UDP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The domain of its users, as written after `@` in an address-of-record
    /// (`127.0.0.1:PORT`); requests to it reach this Kamailio.
    pub fn domain(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The digest realm of its challenges: the host part of the domain.
    pub fn realm(&self) -> &'static str {
        "127.0.0.1"
    }

    /// `sip:USER@127.0.0.1:PORT`.
    pub fn aor(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.domain())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its log: one `request`/`reply` line per SIP message it handled.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Waits up to `timeout` for `needle` to appear `times` times in the log.
    pub fn wait_for(&mut self, needle: &str, times: usize, timeout: Duration) -> bool {
        self.process.wait_for_log(needle, times, timeout)
    }

    /// Ends it (SIGTERM, then SIGKILL to its group after 5 s).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.process.terminate(Duration::from_secs(5))
    }
}

fn kamailio_binary() -> &'static str {
    // Debian installs it in /usr/sbin, which a non-root PATH may lack.
    if Path::new("/usr/sbin/kamailio").exists() {
        "/usr/sbin/kamailio"
    } else {
        "kamailio"
    }
}

fn config(port: u16, users: &[(&str, &str)]) -> String {
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let table: String = users
        .iter()
        .map(|(user, password)| {
            assert!(
                plain(user) && plain(password),
                "Kamailio user {user:?}: use letters, digits, '.', '_', '-'"
            );
            format!("    $sht(users=>{user}) = \"{password}\";\n")
        })
        .collect();
    CONFIG
        .replace("@PORT@", &port.to_string())
        .replace("@MODULES@", MODULES)
        .replace("@USERS@", &table)
}

/// The configuration; `@PORT@`, `@MODULES@` and `@USERS@` are filled in.
const CONFIG: &str = r#"#!KAMAILIO
# Written by the ipphone test harness: registrar + location + proxy, digest
# authentication from an in-memory table, UDP on loopback only.
debug=2
log_stderror=yes
children=2
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:@PORT@
alias="127.0.0.1:@PORT@"
mpath="@MODULES@"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "htable.so"

modparam("usrloc", "db_mode", 0)
modparam("htable", "htable", "users=>size=4;")
modparam("rr", "enable_full_lr", 1)

event_route[htable:mod-init] {
@USERS@}

request_route {
    xlog("L_INFO", "request $rm $ru from $si:$sp call-id $ci\n");
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (!sanity_check()) {
        exit;
    }
    # Within a dialog: follow the Route set this proxy recorded.
    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (is_method("ACK")) {
            if (t_check_trans()) {
                t_relay();
            }
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            t_relay();
        }
        exit;
    }
    t_check_trans();
    if (is_method("REGISTER")) {
        if (!is_present_hf("Authorization") || $sht(users=>$au) == $null
                || !pv_www_authenticate("$td", "$sht(users=>$au)", "0")) {
            www_challenge("$td", "1");
            exit;
        }
        if ($au != $tU) {
            sl_send_reply("403", "Forbidden: authenticated as another user");
            exit;
        }
        consume_credentials();
        if (!save("location")) {
            sl_reply_error();
        }
        exit;
    }
    if (is_method("ACK")) {
        exit;
    }
    if (!is_present_hf("Proxy-Authorization") || $sht(users=>$au) == $null
            || !pv_proxy_authenticate("$fd", "$sht(users=>$au)", "0")) {
        proxy_challenge("$fd", "1");
        exit;
    }
    if ($au != $fU) {
        sl_send_reply("403", "Forbidden: authenticated as another user");
        exit;
    }
    consume_credentials();
    record_route();
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    t_on_reply("LOG_REPLY");
    t_relay();
}

onreply_route[LOG_REPLY] {
    xlog("L_INFO", "reply $rs $rr for $rm call-id $ci\n");
}
"#;
