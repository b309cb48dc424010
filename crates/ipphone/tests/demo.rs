//! `ipphone demo`, the README's first command: a whole call on this machine
//! that reports how the audio crossed, and leaves the recording behind.

mod common;

use common::*;

#[test]
fn the_demo_call_carries_its_test_signal_both_ways() {
    for protocol in ["rtp", "tcp-pcm"] {
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
        let summary: serde_json::Value = String::from_utf8_lossy(&run.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "summary")
            .expect("a summary event");
        for direction in summary["directions"].as_array().unwrap() {
            let r = direction["correlation"].as_f64().unwrap();
            let delay = direction["delay_ms"].as_f64().unwrap();
            assert!(r > 0.5 && delay < 200.0, "{protocol}: {direction}");
            assert!(direction["bytes"].as_u64().unwrap() > 1_000);
        }
        let (heard, _) = read_wav(&out);
        assert!(
            heard.iter().any(|&s| s.abs() > 3_000),
            "{protocol}: the recording has the signal"
        );
    }
}
