//! `ipphone demo`, the README's first command: a whole call on this machine
//! that reports how the audio crossed, and leaves the recording behind.

mod common;

use common::*;
use serde_json::Value;

// One demo at a time: two at once on a small machine disturb each other's
// real-time audio.
#[test]
fn the_demo_call_carries_its_test_signal_both_ways() {
    for protocol in ["sip", "rtp", "tcp-pcm"] {
        let events = demo(protocol);
        let summary = events
            .iter()
            .find(|e| e["event"] == "summary")
            .expect("a summary event");
        assert_eq!(summary["protocol"], protocol);
        for direction in summary["directions"].as_array().unwrap() {
            let r = direction["correlation"].as_f64().unwrap();
            let delay = direction["delay_ms"].as_f64().unwrap();
            assert!(r > 0.5 && delay < 200.0, "{protocol}: {direction}");
            assert!(direction["bytes"].as_u64().unwrap() > 1_000);
        }
        if protocol == "sip" {
            assert_sip_steps(&events);
        }
    }
}

/// The SIP demo call goes as a real one does: INVITE, 100, 180, 200 with
/// the SDP answer, and a BYE that is answered.
fn assert_sip_steps(events: &[Value]) {
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let position = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no {name} event in {names:?}"))
    };
    let steps = [
        "listening",
        "dialing",
        "incoming",
        "trying",
        "ringing",
        "answered",
        "connected",
        "ended",
        "hangup",
        "summary",
    ];
    for pair in steps.windows(2) {
        assert!(
            position(pair[0]) < position(pair[1]),
            "{} before {}: {names:?}",
            pair[0],
            pair[1]
        );
    }
    let event = |name: &str| &events[position(name)];
    assert_eq!(event("ringing")["status"], 180);
    assert_eq!(event("answered")["status"], 200);
    assert_eq!(event("connected")["protocol"], "sip");
    assert_eq!(event("connected")["role"], "caller");
    // The BYE reached the answering phone, and was answered in time.
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "ended" && e["reason"] == "BYE from the other side"),
        "{names:?}"
    );
    assert!(!names.contains(&"error"), "{events:?}");
    // Opus, negotiated in SDP, carried the call: G.711 would take 80 kbit/s
    // with its headers.
    let hangup = event("hangup");
    assert!(
        hangup["rtp"]["kbps_sent"].as_f64().unwrap() < 40.0,
        "{hangup}"
    );
}

/// Runs `ipphone demo` over `protocol` and returns its JSON events, having
/// checked that it succeeded and that the recording has the signal.
fn demo(protocol: &str) -> Vec<Value> {
    let dir = scratch(&format!("demo-{protocol}"));
    let out = dir.join("heard.wav");
    let run = ipphone()
        .args([
            "demo",
            "--seconds",
            "2",
            "--json",
            "--protocol",
            protocol,
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{protocol}: {stderr}");
    let (heard, _) = read_wav(&out);
    assert!(
        heard.iter().any(|&s| s.abs() > 3_000),
        "{protocol}: the recording has the signal"
    );
    String::from_utf8_lossy(&run.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}
