//! Hanging up, busy, refused and vanished peers, signals and exit codes:
//! every way a call can end gets a clear report, and a listener keeps serving.
//! Over the article's tcp-pcm (SIP's own ways to end are in `sip_call.rs`).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(30);

fn hangup(phone: &Phone) -> serde_json::Value {
    phone
        .seen
        .iter()
        .rev()
        .find(|e| e["event"] == "hangup")
        .cloned()
        .expect("a hangup event")
}

#[test]
fn second_caller_is_busy_and_first_call_goes_on() {
    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-pcm",
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
        "--protocol",
        "tcp-pcm",
        &target,
        "--duration",
        "3",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    first.wait_for("connected", LONG);
    let mut second = Phone::spawn(&[
        "call",
        "--protocol",
        "tcp-pcm",
        &target,
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(second.exit_code(LONG), 4, "busy exit code");
    assert_eq!(hangup(&second)["reason"], "busy");
    assert!(
        second.seen.iter().all(|e| e["event"] != "connected"),
        "a busy call never connects"
    );
    let refused = callee.wait_for("refused", LONG);
    assert_eq!(refused["reason"], "busy");
    assert_eq!(first.exit_code(LONG), 0);
    assert_eq!(hangup(&first)["reason"], "duration");
    assert_eq!(callee.exit_code(LONG), 0);
}

#[test]
fn caller_that_vanishes_does_not_stop_the_listener() {
    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-pcm",
        "--calls",
        "2",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    let target = format!("127.0.0.1:{port}");
    let mut first = Phone::spawn(&[
        "call",
        "--protocol",
        "tcp-pcm",
        &target,
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    first.wait_for("connected", LONG);
    first.signal("KILL");
    let ended = callee.wait_for("hangup", LONG);
    assert!(
        ["remote", "lost"].contains(&ended["reason"].as_str().unwrap()),
        "{ended}"
    );

    let mut second = Phone::spawn(&[
        "call",
        "--protocol",
        "tcp-pcm",
        &target,
        "--duration",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(second.exit_code(LONG), 0);
    assert!(hangup(&second)["bytes_received"].as_u64().unwrap() > 4_000);
    assert_eq!(
        callee.exit_code(LONG),
        0,
        "listener exits after its two calls"
    );
}

#[test]
fn sigterm_hangs_up_a_call_then_exits_when_idle() {
    let dir = scratch("sigterm");
    let heard = dir.join("heard.wav");
    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-pcm",
        "--mic",
        "null",
        "--speaker",
        heard.to_str().unwrap(),
    ]);
    let target = format!("127.0.0.1:{port}");
    let mut caller = Phone::spawn(&[
        "call",
        "--protocol",
        "tcp-pcm",
        &target,
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    caller.wait_for("connected", LONG);
    callee.wait_for("connected", LONG);
    std::thread::sleep(Duration::from_millis(700));
    callee.signal("TERM");
    assert_eq!(callee.wait_for("hangup", LONG)["reason"], "local");
    // The recording of the call that was hung up on is complete on disk.
    let (recorded, rate) = read_wav(&heard);
    assert!(
        recorded.len() as u32 >= rate / 2,
        "{} samples",
        recorded.len()
    );
    assert_eq!(
        caller.exit_code(LONG),
        0,
        "the caller exits 0 when the far end hangs up"
    );
    assert_eq!(hangup(&caller)["reason"], "remote");

    // Back to waiting: a new caller is answered.
    let mut again = Phone::spawn(&[
        "call",
        "--protocol",
        "tcp-pcm",
        &target,
        "--duration",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(again.exit_code(LONG), 0);
    assert_eq!(hangup(&again)["reason"], "duration");
    // Idle now: SIGTERM ends the listener cleanly.
    std::thread::sleep(Duration::from_millis(300));
    callee.signal("TERM");
    assert_eq!(callee.exit_code(LONG), 0);
}

#[test]
fn refused_unreachable_and_bad_usage_have_their_own_exit_codes() {
    // A port nobody listens on: bind one, note it, close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut refused = Phone::spawn(&[
        "call",
        "--protocol",
        "tcp-pcm",
        &format!("127.0.0.1:{port}"),
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(refused.exit_code(LONG), 3);
    let error = refused
        .seen
        .iter()
        .find(|e| e["event"] == "error")
        .expect("an error event");
    assert!(
        error["message"].as_str().unwrap().contains("refused"),
        "{error}"
    );

    let mut unknown = Phone::spawn(&[
        "call",
        "--protocol",
        "tcp-pcm",
        "no-such-host.invalid:5000",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(unknown.exit_code(LONG), 5);

    for args in [
        &["call"][..],
        &["call", "--protocol", "tcp-pcm", "no-port-here"],
        &["listen", "--calls", "many"],
        &["call", "h:1", "--protocol", "carrier-pigeon"],
    ] {
        let out = ipphone().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn unreadable_microphone_files_are_reported_before_dialling() {
    let dir = scratch("bad-mic");
    let not_wav = dir.join("notes.wav");
    std::fs::write(&not_wav, "this is not audio").unwrap();
    let missing = dir.join("missing.wav");
    for (file, says) in [(&not_wav, "not a WAV file"), (&missing, "No such file")] {
        let out = ipphone()
            .args([
                "call",
                "--protocol",
                "tcp-pcm",
                "127.0.0.1:9",
                "--mic",
                file.to_str().unwrap(),
                "--speaker",
                "null",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(says) && stderr.contains(file.to_str().unwrap()),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn listener_survives_garbage_and_answers_the_next_caller() {
    let dir = scratch("garbage-pcm");
    let heard = dir.join("heard.wav");
    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-pcm",
        "--calls",
        "2",
        "--mic",
        "null",
        "--speaker",
        heard.to_str().unwrap(),
    ]);
    // A raw client, as the article's script is: whatever bytes it sends are
    // 8-bit samples, and closing the socket is its hang-up.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut seed = 7u32;
    let garbage: Vec<u8> = (0..8_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as u8
        })
        .collect();
    raw.write_all(&garbage).unwrap();
    let mut got = [0u8; 800];
    raw.read_exact(&mut got).unwrap();
    assert!(
        got.iter().all(|&b| b == 128),
        "a null microphone sends 8-bit silence (128)"
    );
    drop(raw);
    assert_eq!(callee.wait_for("hangup", LONG)["reason"], "remote");

    let mut caller = Phone::spawn(&[
        "call",
        "--protocol",
        "tcp-pcm",
        &format!("127.0.0.1:{port}"),
        "--duration",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 0);
    assert_eq!(callee.exit_code(LONG), 0);
    assert!(
        dir.join("heard-2.wav").exists(),
        "the second call has its own recording"
    );
}

#[test]
fn calls_work_over_ipv6() {
    let (mut callee, port) = Phone::listen_on(
        "[::1]:0",
        &[
            "--protocol",
            "tcp-pcm",
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
        "--protocol",
        "tcp-pcm",
        &format!("[::1]:{port}"),
        "--duration",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 0);
    assert!(hangup(&caller)["bytes_received"].as_u64().unwrap() > 4_000);
    assert_eq!(callee.exit_code(LONG), 0);
}

/// With no sound card and no sound server, ipphone says so plainly before
/// it calls anyone, and alsa-lib's own complaints stay out of the way.
#[test]
fn a_missing_sound_device_is_reported_before_dialling() {
    let nowhere = scratch("no-sound");
    let quiet = |args: &[&str]| {
        ipphone()
            .args(args)
            .env("PULSE_SERVER", format!("unix:{}/native", nowhere.display()))
            .env("XDG_RUNTIME_DIR", &nowhere)
            .output()
            .unwrap()
    };
    // A listener that would answer, to show the call is never made.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let target = format!("127.0.0.1:{}", server.local_addr().unwrap().port());
    for args in [
        &[
            "call",
            "--protocol",
            "tcp-pcm",
            &target,
            "--mic",
            "default",
            "--speaker",
            "null",
        ][..],
        &[
            "call",
            "--protocol",
            "tcp-pcm",
            &target,
            "--mic",
            "null",
            "--speaker",
            "no-such-device",
        ],
        &[
            "listen",
            "--protocol",
            "tcp-pcm",
            "--bind",
            "127.0.0.1:0",
            "--mic",
            "no-such-device",
            "--speaker",
            "null",
        ],
        &["devices"],
    ] {
        let out = quiet(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("no sound card"), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("ALSA lib") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
    assert!(server.accept().is_err(), "nobody was called");
}
