//! The call history: a call hung up by SIGTERM still leaves its record (and
//! a finished recording); each side records its own direction; `ipphone
//! history` shows what was written.

mod common;

use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(40);

fn records(state: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(state.join("ipphone/history.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
        .collect()
}

#[test]
fn sigterm_mid_call_leaves_a_record_and_a_finished_recording() {
    let dir = scratch("history");
    let (caller_state, callee_state) = (dir.join("caller-state"), dir.join("callee-state"));
    let heard = dir.join("heard.wav");
    let (mut callee, port) = Phone::listen_with_env(
        &[
            "--auto-answer",
            "--calls",
            "1",
            "--mic",
            "null",
            "--speaker",
            heard.to_str().unwrap(),
        ],
        &[("XDG_STATE_HOME", &callee_state)],
    );
    let mut caller = Phone::spawn_with_env(
        &[
            "call",
            &format!("sip:bob@127.0.0.1:{port}"),
            "--duration",
            "60",
            "--mic",
            speech(SPEECH).to_str().unwrap(),
            "--speaker",
            "null",
        ],
        &[("XDG_STATE_HOME", &caller_state)],
    );
    caller.wait_for("connected", LONG);
    std::thread::sleep(Duration::from_secs(3));
    caller.signal("TERM");
    assert_eq!(caller.exit_code(LONG), 0);
    assert_eq!(callee.exit_code(LONG), 0);

    let out = records(&caller_state);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["direction"], "out");
    assert_eq!(out[0]["outcome"], "answered");
    assert_eq!(out[0]["peer"], format!("sip:bob@127.0.0.1:{port}"));
    let seconds = out[0]["seconds"].as_f64().unwrap();
    assert!((2.5..10.0).contains(&seconds), "{seconds}");
    assert!(out[0]["quality"]["packets_received"].is_u64(), "{out:?}");
    let inbound = records(&callee_state);
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    assert_eq!(inbound[0]["direction"], "in");
    assert_eq!(inbound[0]["outcome"], "answered");
    // The callee's recording was finished, and holds the speech.
    assert!(!dir.join("heard.wav.part").exists());
    let (samples, _) = read_wav(&heard);
    assert!(samples.iter().any(|s| s.unsigned_abs() > 1_000));

    let shown = ipphone()
        .args(["history", "--file"])
        .arg(caller_state.join("ipphone/history.jsonl"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("-> sip:bob@127.0.0.1") && shown.contains("answered"),
        "{shown}"
    );
}

#[test]
fn an_unanswered_call_is_missed_at_one_end_and_unanswered_at_the_other() {
    let dir = scratch("history-missed");
    let (caller_state, callee_state) = (dir.join("caller-state"), dir.join("callee-state"));
    // Rings without a terminal to answer on: the caller gives up.
    let (mut callee, port) = Phone::listen_with_env(
        &["--calls", "1", "--mic", "null", "--speaker", "null"],
        &[("XDG_STATE_HOME", &callee_state)],
    );
    let mut caller = Phone::spawn_with_env(
        &[
            "call",
            &format!("127.0.0.1:{port}"),
            "--timeout",
            "2",
            "--mic",
            "null",
            "--speaker",
            "null",
        ],
        &[("XDG_STATE_HOME", &caller_state)],
    );
    assert_eq!(caller.exit_code(LONG), 5);
    assert_eq!(callee.exit_code(LONG), 0);
    let out = records(&caller_state);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["outcome"], "unanswered");
    let inbound = records(&callee_state);
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    assert_eq!(inbound[0]["outcome"], "missed");
    assert_eq!(inbound[0]["status"], 487);
}
