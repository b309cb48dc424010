//! The answering machine: a call nobody answers hears the greeting, and the
//! caller's speech is recorded, whole, to a message that `ipphone messages`
//! lists.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn an_unanswered_call_leaves_a_message() {
    let dir = scratch("voicemail");
    let data = dir.join("data");
    let greeting_heard = dir.join("greeting.wav");
    let (mut callee, port) = Phone::listen_with_env(
        &[
            "--voicemail=1",
            "--calls",
            "1",
            "--mic",
            "null",
            "--speaker",
            "null",
        ],
        &[("XDG_DATA_HOME", &data)],
    );
    let mut caller = Phone::spawn_with_env(
        &[
            "call",
            &format!("sip:bob@127.0.0.1:{port}"),
            "--duration",
            "11",
            "--mic",
            speech(SPEECH).to_str().unwrap(),
            "--speaker",
            greeting_heard.to_str().unwrap(),
        ],
        &[("USER", Path::new("alice"))],
    );
    assert_eq!(caller.exit_code(LONG), 0);
    assert_eq!(callee.exit_code(LONG), 0);
    let message = callee.last("message");
    assert!(
        message["from"].as_str().unwrap().contains("alice"),
        "{message}"
    );
    let file = std::path::PathBuf::from(message["file"].as_str().unwrap());
    assert!(file.starts_with(data.join("ipphone/messages")), "{file:?}");
    assert!(!file.with_extension("wav.part").exists());
    // The message holds what the caller said after the machine answered,
    // about a second into its speech.
    let (recorded, rate) = read_wav(&file);
    let (said, said_rate) = read_wav(&speech(SPEECH));
    let said = resample(&said, said_rate, rate);
    // Half-second pieces, each looked for on its own: time-stretching on a
    // loaded machine shifts the audio a little inside a longer stretch.
    let piece = rate as usize / 2;
    let mut found: Vec<f64> = said[rate as usize * 3..rate as usize * 8]
        .chunks_exact(piece)
        .filter(|p| p.iter().any(|s| s.unsigned_abs() > 1_000))
        .filter_map(|p| media::dsp::correlate::align(p, &recorded, recorded.len()))
        .map(|a| a.correlation)
        .collect();
    found.sort_by(f64::total_cmp);
    assert!(found.len() >= 5, "{found:?}");
    assert!(
        found[found.len() / 2] > 0.6,
        "the caller's speech: {found:?}"
    );
    // The caller heard the greeting's beep.
    let (heard, heard_rate) = read_wav(&greeting_heard);
    let beep = heard
        .chunks_exact(heard_rate as usize / 10)
        .map(|b| media::dsp::tones::goertzel(b, heard_rate, 1_000.0))
        .fold(0.0, f64::max);
    assert!(beep > 0.002, "no beep: {beep}");
    // And the message is listed.
    let out = ipphone()
        .args(["messages", "--json"])
        .env("XDG_DATA_HOME", &data)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("alice"), "{listed}");
}

#[test]
fn unknown_callers_can_be_sent_straight_to_the_machine() {
    let dir = scratch("voicemail-policy");
    let data = dir.join("data");
    let config = dir.join("config.toml");
    std::fs::write(&config, "[screening]\nunknown = \"voicemail\"\n").unwrap();
    let (mut callee, port) = Phone::listen_with_env(
        &[
            "--config",
            config.to_str().unwrap(),
            "--calls",
            "1",
            "--mic",
            "null",
            "--speaker",
            "null",
        ],
        &[("XDG_DATA_HOME", &data)],
    );
    let mut caller = Phone::spawn(&[
        "call",
        &format!("sip:bob@127.0.0.1:{port}"),
        "--duration",
        "3",
        "--mic",
        speech(SPEECH).to_str().unwrap(),
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 0);
    assert_eq!(callee.exit_code(LONG), 0);
    callee.last("voicemail");
    assert!(
        callee.seen.iter().all(|e| e["event"] != "ringing"),
        "it rang"
    );
    let file = callee.last("message")["file"].as_str().unwrap().to_owned();
    assert!(Path::new(&file).exists());
}
