//! Calls over SIP between two ipphone processes on loopback: answered
//! (audio checked both ways), busy, declined, cancelled while ringing,
//! unanswered, nothing listening, and no common codec, each with its
//! events and exit status.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(40);

/// One call at a time: real-time audio on a two-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn events(phone: &Phone) -> Vec<String> {
    phone
        .seen
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .filter(|e| e != "stats")
        .collect()
}

#[test]
fn speech_crosses_a_sip_call_both_ways() {
    let _one = serial();
    for codec in ["opus", "pcmu"] {
        let dir = scratch(&format!("sip-{codec}"));
        let (callee_heard, caller_heard) = (dir.join("callee.wav"), dir.join("caller.wav"));
        let (mut callee, port) = Phone::listen(&[
            "--auto-answer",
            "--calls",
            "1",
            "--mic",
            speech(SPEECH_2).to_str().unwrap(),
            "--speaker",
            callee_heard.to_str().unwrap(),
        ]);
        let mut caller = Phone::spawn(&[
            "call",
            &format!("sip:bob@127.0.0.1:{port}"),
            "--codec",
            codec,
            "--duration",
            "11",
            "--mic",
            speech(SPEECH).to_str().unwrap(),
            "--speaker",
            caller_heard.to_str().unwrap(),
        ]);
        assert_eq!(caller.exit_code(LONG), 0, "{codec}: caller");
        assert_eq!(callee.exit_code(LONG), 0, "{codec}: callee");
        assert_eq!(
            events(&caller),
            [
                "dialing",
                "trying",
                "ringing",
                "answered",
                "connected",
                "ended",
                "hangup"
            ],
            "{codec}"
        );
        assert_eq!(caller.last("hangup")["reason"], "duration");
        assert_eq!(callee.last("hangup")["reason"], "remote");
        assert!(events(&callee).starts_with(&[
            "listening".into(),
            "incoming".into(),
            "ringing".into(),
            "answered".into(),
            "connected".into()
        ]));
        let rate = if codec == "opus" { 16_000 } else { 8_000 };
        assert_speech_arrived(
            &align_pieces(&speech(SPEECH), &callee_heard),
            rate,
            0.65,
            0.25,
            200.0,
        );
        assert_speech_arrived(
            &align_pieces(&speech(SPEECH_2), &caller_heard),
            rate,
            0.6,
            0.25,
            200.0,
        );
    }
}

#[test]
fn a_second_caller_is_busy_and_the_first_call_goes_on() {
    let _one = serial();
    let (mut callee, port) = Phone::listen(&[
        "--auto-answer",
        "--calls",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    let target = format!("127.0.0.1:{port}");
    let mut first = Phone::spawn(&[
        "call",
        &target,
        "--duration",
        "4",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    first.wait_for("connected", LONG);
    let mut second = Phone::spawn(&["call", &target, "--mic", "null", "--speaker", "null"]);
    assert_eq!(second.exit_code(LONG), 4, "busy");
    let ended = second.last("ended");
    assert_eq!(ended["status"], 486, "{ended}");
    assert_eq!(second.last("hangup")["reason"], "busy");
    assert_eq!(first.exit_code(LONG), 0);
    assert_eq!(first.last("hangup")["reason"], "duration");
    assert_eq!(callee.exit_code(LONG), 0);
    assert_eq!(callee.last("refused")["reason"], "busy");
}

#[test]
fn hanging_up_while_it_rings_cancels_the_call() {
    let _one = serial();
    // No --auto-answer and no terminal: it rings until the caller gives up.
    let (mut callee, port) = Phone::listen(&["--calls", "1", "--mic", "null", "--speaker", "null"]);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("sip:alice@127.0.0.1:{port}"),
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    caller.wait_for("ringing", LONG);
    callee.wait_for("ringing", LONG);
    caller.signal("INT");
    assert_eq!(caller.exit_code(LONG), 0);
    assert_eq!(callee.exit_code(LONG), 0);
    let ended = callee.last("ended");
    assert_eq!(ended["status"], 487, "{ended}");
    assert_eq!(callee.last("hangup")["reason"], "remote");
}

#[test]
fn an_unanswered_call_gives_up_after_its_timeout() {
    let _one = serial();
    let (mut callee, port) = Phone::listen(&["--calls", "1", "--mic", "null", "--speaker", "null"]);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--timeout",
        "2",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 5, "unanswered");
    assert_eq!(caller.last("hangup")["reason"], "unanswered");
    assert_eq!(callee.exit_code(LONG), 0);
}

#[test]
fn nothing_listening_is_refused_at_once() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    drop(socket);
    let started = std::time::Instant::now();
    let mut caller = Phone::spawn(&[
        "call",
        &format!("sip:nobody@127.0.0.1:{port}"),
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 3, "refused");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn no_common_codec_is_refused_with_488() {
    let _one = serial();
    let (mut callee, port) = Phone::listen(&[
        "--auto-answer",
        "--codec",
        "pcma",
        "--calls",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--codec",
        "opus",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 1);
    assert_eq!(caller.last("ended")["status"], 488);
    let detail = caller.last("hangup")["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("no codec in common"), "{detail}");
    callee.signal("INT");
    assert_eq!(callee.exit_code(LONG), 0);
    let error = callee.last("error")["message"].as_str().unwrap().to_owned();
    assert!(error.contains("opus"), "{error}");
}

#[test]
fn only_calls_for_its_user_are_taken() {
    let _one = serial();
    let (mut callee, port) = Phone::listen(&[
        "--user",
        "bob",
        "--auto-answer",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    let mut wrong = Phone::spawn(&[
        "call",
        &format!("sip:mallory@127.0.0.1:{port}"),
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(wrong.exit_code(LONG), 5);
    assert_eq!(wrong.last("ended")["status"], 404);
    let mut right = Phone::spawn(&[
        "call",
        &format!("sip:bob@127.0.0.1:{port}"),
        "--duration",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(right.exit_code(LONG), 0);
    // The answered call ends at the callee too before Ctrl-C: during a
    // call, Ctrl-C hangs up and goes back to waiting; only idle, it exits.
    callee.wait_for("hangup", LONG);
    callee.signal("INT");
    assert_eq!(callee.exit_code(LONG), 0);
    assert!(!events(&callee).contains(&"refused".to_owned()));
}

#[test]
fn a_call_over_ipv6() {
    let _one = serial();
    let (mut callee, port) = Phone::listen_on(
        "[::1]:0",
        &[
            "--auto-answer",
            "--calls",
            "1",
            "--mic",
            "null",
            "--speaker",
            "null",
        ],
    );
    let mut caller = Phone::spawn(&[
        "call",
        &format!("sip:bob@[::1]:{port}"),
        "--duration",
        "2",
        "--mic",
        speech(SPEECH).to_str().unwrap(),
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 0);
    assert_eq!(callee.exit_code(LONG), 0);
    assert_eq!(caller.last("hangup")["reason"], "duration");
    let rtp = &callee.last("hangup")["rtp"];
    assert!(rtp["packets_received"].as_u64().unwrap() > 50, "{rtp}");
}

#[test]
fn a_call_with_its_signalling_over_tcp() {
    let _one = serial();
    let dir = scratch("sip-tcp");
    let heard = dir.join("callee.wav");
    let (mut callee, port) = Phone::listen(&[
        "--auto-answer",
        "--calls",
        "1",
        "--mic",
        "null",
        "--speaker",
        heard.to_str().unwrap(),
    ]);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("sip:bob@127.0.0.1:{port}"),
        "--transport",
        "tcp",
        "--duration",
        "11",
        "--mic",
        speech(SPEECH).to_str().unwrap(),
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 0);
    assert_eq!(callee.exit_code(LONG), 0);
    assert_eq!(caller.last("hangup")["reason"], "duration");
    assert_eq!(callee.last("hangup")["reason"], "remote");
    assert_speech_arrived(
        &align_pieces(&speech(SPEECH), &heard),
        16_000,
        0.65,
        0.25,
        200.0,
    );
}

#[test]
fn tcp_to_a_closed_port_is_refused_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("sip:nobody@127.0.0.1:{port};transport=tcp"),
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 3);
}

/// A listener on a terminal (a pseudo-terminal that `script` makes) asks
/// whether to answer; what is typed decides.
fn answered_at_the_terminal(answer: &str) -> (i32, Phone) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!(
        "{} listen --bind 127.0.0.1:{port} --calls 1 --mic null --speaker null",
        env!("CARGO_BIN_EXE_ipphone")
    );
    let mut terminal = Command::new("script")
        .args(["-q", "-c", &listen, "/dev/null"])
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("ipphone-test-no-config"),
        )
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("ipphone-test-state"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running script (util-linux)");
    std::thread::sleep(Duration::from_millis(500));
    let mut caller = Phone::spawn(&[
        "call",
        &format!("sip:bob@127.0.0.1:{port}"),
        "--duration",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    caller.wait_for("ringing", LONG);
    let mut stdin = terminal.stdin.take().unwrap();
    stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    let code = caller.exit_code(LONG);
    let deadline = std::time::Instant::now() + LONG;
    while terminal.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = terminal.kill();
    let _ = terminal.wait();
    (code, caller)
}

#[test]
fn the_person_at_the_terminal_answers_or_declines() {
    let _one = serial();
    let (code, caller) = answered_at_the_terminal("y");
    assert_eq!(code, 0);
    assert_eq!(caller.last("hangup")["reason"], "duration");
    let (code, caller) = answered_at_the_terminal("n");
    assert_eq!(code, 6, "declined");
    assert_eq!(caller.last("ended")["status"], 603);
}

#[test]
fn digits_typed_during_a_call_arrive_as_dtmf() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let _one = serial();
    let (mut callee, port) = Phone::listen(&[
        "--auto-answer",
        "--calls",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    // The caller on a (pseudo-)terminal, where the digits are typed.
    let call = format!(
        "{} call sip:bob@127.0.0.1:{port} --duration 5 --mic null --speaker null",
        env!("CARGO_BIN_EXE_ipphone")
    );
    let mut terminal = Command::new("script")
        .args(["-q", "-c", &call, "/dev/null"])
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("ipphone-test-no-config"),
        )
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("ipphone-test-state"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running script (util-linux)");
    callee.wait_for("connected", LONG);
    std::thread::sleep(Duration::from_millis(500));
    let mut stdin = terminal.stdin.take().unwrap();
    stdin.write_all(b"42#\n").unwrap();
    assert_eq!(callee.exit_code(LONG), 0);
    let _ = terminal.wait();
    let digits: String = callee
        .seen
        .iter()
        .filter(|e| e["event"] == "dtmf")
        .filter_map(|e| e["digit"].as_str())
        .collect();
    assert_eq!(digits, "42#");
}

/// Two phones whose SDP agreed on RFC 2198 redundancy, in a namespace of
/// their own where nftables drops one media packet in ten each way: the
/// far end's reports turn copies on, and the copies bring most lost frames
/// back, so the speech arrives whole.
#[test]
fn redundancy_negotiated_in_sdp_brings_back_lost_packets() {
    let _one = serial();
    let Some(net) = PrivateNet::new() else {
        panic!("no private network namespace: the tests run as root, with util-linux");
    };
    let dir = scratch("sip-red");
    let (callee_heard, caller_heard) = (dir.join("callee.wav"), dir.join("caller.wav"));
    let (mut callee, port) = Phone::listening(Phone::start(
        net.ipphone(),
        &[
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--auto-answer",
            "--calls",
            "1",
            "--mic",
            speech(SPEECH_2).to_str().unwrap(),
            "--speaker",
            callee_heard.to_str().unwrap(),
        ],
    ));
    // Everything but SIP (to or from the listener's port): RTP and RTCP.
    // SIP is let through by rules of its own: nft folds `sport != P dport
    // != P` into one comparison of both ports at once, which would drop
    // SIP sent from P to any other port (the 200 OK, then 1.5 s of
    // retransmissions before the caller's speech starts).
    let rules = dir.join("lossy.nft");
    let script = format!(
        "table inet lossy {{\n\
         chain out {{\n\
         type filter hook output priority 0; policy accept;\n\
         udp sport {port} accept\n\
         udp dport {port} accept\n\
         meta l4proto udp numgen random mod 10 == 0 drop\n\
         }}\n}}\n"
    );
    std::fs::write(&rules, &script).unwrap();
    assert!(
        net.run("nft", &["-f", rules.to_str().unwrap()]),
        "nft refused {script}"
    );
    let mut caller = Phone::start(
        net.ipphone(),
        &[
            "call",
            &format!("sip:bob@127.0.0.1:{port}"),
            "--codec",
            "opus",
            "--duration",
            "11",
            "--mic",
            speech(SPEECH).to_str().unwrap(),
            "--speaker",
            caller_heard.to_str().unwrap(),
        ],
    );
    assert_eq!(caller.exit_code(LONG), 0, "caller");
    assert_eq!(callee.exit_code(LONG), 0, "callee");
    // The caller talks all along; the callee's shorter speech leaves its
    // side mostly DTX pauses, which have little to lose.
    let heard = &callee.last("hangup")["rtp"];
    assert!(heard["lost"].as_i64().unwrap() > 20, "{heard}");
    assert!(
        heard["red_recovered"].as_u64().unwrap() > 10,
        "copies brought lost frames back: {heard}"
    );
    let sent = &caller.last("hangup")["rtp"];
    assert!(sent["redundancy"].as_u64().unwrap() >= 1, "{sent}");
    let pieces = align_pieces(&speech(SPEECH), &callee_heard);
    assert_speech_arrived(&pieces, 16_000, 0.6, 0.2, 150.0);
}
