//! RFC 4475's torture messages thrown at a running `ipphone listen`: it
//! answers the malformed requests the RFC says deserve a 400 (505 for the
//! bad version), never crashes, and still answers OPTIONS and takes a call
//! afterwards.
//!
//! The messages name foreign hosts in their Via, Contact and SDP, so the
//! whole exchange runs in a private network namespace of the test's own
//! (`unshare -n`, then `ip link set lo up`): nothing can leave the machine.
//! The parent re-runs this test binary on the `#[ignore]`d child test
//! inside the namespace.

mod common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const CHILD: &str = "IPPHONE_TORTURE_CHILD";

#[test]
fn torture_messages_get_their_answers_and_the_phone_carries_on() {
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new("unshare")
        .args(["-n", "--"])
        .arg(exe)
        .args([
            "child_in_a_private_namespace",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("running unshare (util-linux); the tests run as root");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- child stdout ---\n{stdout}--- child stderr ---\n{stderr}");
    assert!(out.status.success(), "the child failed: {}", out.status);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child did not run"
    );
}

#[test]
#[ignore = "run by torture_messages_get_their_answers_and_the_phone_carries_on in a namespace"]
fn child_in_a_private_namespace() {
    if std::env::var(CHILD).is_err() {
        println!("runs only inside the private namespace its parent makes");
        return;
    }
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("running ip (iproute2)");
    assert!(up.success());
    // Make sure this really is a namespace of its own: no other interface.
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(links.lines().count(), 1, "not a private namespace: {links}");

    let (mut phone, port) = Phone::listen_on(
        "127.0.0.1:0",
        &["--calls", "1", "--mic", "null", "--speaker", "null"],
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let to = format!("127.0.0.1:{port}");
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto/tests/data/rfc4475");
    let mut answers: Vec<(String, Option<u16>)> = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&data)
        .expect("the RFC 4475 messages")
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in &names {
        let bytes = std::fs::read(path).unwrap();
        socket.send_to(&bytes, &to).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut buf = [0u8; 65_536];
        // The first response to this message (matched by Call-ID: earlier
        // INVITEs that were refused keep retransmitting their answers, as
        // nobody ACKs them); a valid INVITE gets 100 first.
        let call_id = call_id(&bytes);
        let deadline = Instant::now() + Duration::from_millis(150);
        let mut status = None;
        while Instant::now() < deadline {
            let Ok(n) = socket.recv(&mut buf) else {
                continue;
            };
            if status.is_none() && call_id.is_some() && call_id == call_id_of(&buf[..n]) {
                let text = String::from_utf8_lossy(&buf[..n]);
                status = text
                    .strip_prefix("SIP/2.0 ")
                    .and_then(|t| t.get(..3))
                    .and_then(|c| c.parse::<u16>().ok());
            }
        }
        answers.push((name, status));
    }
    println!("answers: {answers:?}");
    let status_of = |name: &str| {
        answers
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} was not sent"))
            .1
    };
    for bad in [
        "badinv01",
        "clerr",
        "ncl",
        "quotbal",
        "ltgtruri",
        "lwsruri",
        "lwsstart",
        "trws",
        "escruri",
        "baddate",
        "regbadct",
        "badaspec",
        "mismatch01",
        "mismatch02",
    ] {
        assert_eq!(status_of(bad), Some(400), "{bad}: {answers:?}");
    }
    assert_eq!(status_of("badvers"), Some(505));
    // Responses sent to a phone are not answered.
    assert_eq!(status_of("scalarlg"), None);
    assert_eq!(status_of("bigcode"), None);
    // The valid INVITEs ring (100 Trying first); wsinv names a dialog (a
    // To tag) this phone never had: 481.
    assert_eq!(status_of("esc01"), Some(100), "{answers:?}");
    assert_eq!(status_of("wsinv"), Some(481), "{answers:?}");
    assert_eq!(status_of("inv2543"), Some(100), "{answers:?}");

    // Still alive, still a phone.
    assert!(phone.child.try_wait().unwrap().is_none(), "ipphone exited");
    let options = format!(
        "OPTIONS sip:ipphone@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bKlast1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=t1\r\nTo: <sip:ipphone@127.0.0.1>\r\n\
         Call-ID: after-torture\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        socket.local_addr().unwrap().port()
    );
    socket.send_to(options.as_bytes(), &to).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ok = false;
    let mut buf = [0u8; 65_536];
    while Instant::now() < deadline && !ok {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            ok = text.starts_with("SIP/2.0 200") && text.contains("after-torture");
        }
    }
    assert!(ok, "no 200 for OPTIONS after the torture");
    phone.signal("INT");
    let code = phone.exit_code(Duration::from_secs(20));
    // Ringing calls were turned down on Ctrl-C; the phone exits cleanly.
    assert!(code == 0, "exit {code}");
}

/// The Call-ID of a message, by its header line (full or compact form).
fn call_id(bytes: &[u8]) -> Option<String> {
    call_id_of(bytes)
}

fn call_id_of(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        (name == "call-id" || name == "i").then(|| value.trim().to_owned())
    })
}
