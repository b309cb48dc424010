//! Auto-dial: a caller that finds the far end busy tries again until it
//! answers; `ipphone redial` calls the last address dialled; `call --at`
//! waits before dialling.

mod common;

use std::time::{Duration, Instant};

use common::*;

const LONG: Duration = Duration::from_secs(60);

fn events(phone: &Phone, name: &str) -> Vec<serde_json::Value> {
    phone
        .seen
        .iter()
        .filter(|e| e["event"] == name)
        .cloned()
        .collect()
}

#[test]
fn busy_twice_then_answered() {
    let (mut callee, port) = Phone::listen(&[
        "--auto-answer",
        "--calls",
        "2",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    let target = format!("sip:bob@127.0.0.1:{port}");
    // Someone else keeps bob busy for a few seconds.
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
    let mut caller = Phone::spawn(&[
        "call",
        &target,
        "--redial",
        "6",
        "--every",
        "1.5",
        "--duration",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 0);
    let redials = events(&caller, "redial");
    assert!(redials.len() >= 2, "{:?}", caller.seen);
    assert!(redials.iter().all(|r| r["after"] == "busy"), "{redials:?}");
    assert_eq!(caller.last("hangup")["reason"], "duration");
    assert_eq!(first.exit_code(LONG), 0);
    assert_eq!(callee.exit_code(LONG), 0);
}

#[test]
fn redial_calls_the_last_address_dialled() {
    let dir = scratch("redial");
    let state = dir.join("state");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    drop(socket);
    let target = format!("sip:bob@127.0.0.1:{port}");
    // Nobody there yet: refused, and remembered.
    let mut first = Phone::spawn_with_env(
        &["call", &target, "--mic", "null", "--speaker", "null"],
        &[("XDG_STATE_HOME", &state)],
    );
    assert_eq!(first.exit_code(LONG), 3);
    let (mut callee, _) = Phone::listen_on(
        &format!("127.0.0.1:{port}"),
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
    let mut again = Phone::spawn_with_env(
        &[
            "redial",
            "--duration",
            "1",
            "--mic",
            "null",
            "--speaker",
            "null",
        ],
        &[("XDG_STATE_HOME", &state)],
    );
    assert_eq!(again.exit_code(LONG), 0);
    assert_eq!(again.last("dialing")["target"], target.as_str());
    assert_eq!(again.last("hangup")["reason"], "duration");
    assert_eq!(callee.exit_code(LONG), 0);
}

#[test]
fn at_waits_before_dialling() {
    let (mut callee, port) = Phone::listen(&[
        "--auto-answer",
        "--calls",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    let started = Instant::now();
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--at",
        "+2",
        "--duration",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    let waiting = caller.wait_for("waiting", LONG);
    assert_eq!(waiting["seconds"], 2.0);
    caller.wait_for("dialing", LONG);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(caller.exit_code(LONG), 0);
    assert_eq!(callee.exit_code(LONG), 0);
}
