//! Two ipphone processes call each other over loopback with the article's raw
//! 8-bit PCM stream, WAV to WAV, both directions at once: what each side
//! recorded must be the speech the other sent.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn speech_crosses_both_ways() {
    let dir = scratch("tcp-pcm");
    let (caller_mic, callee_mic) = (speech(SPEECH), speech(SPEECH_2));
    let callee_heard = dir.join("callee-heard.wav");
    let caller_heard = dir.join("caller-heard.wav");

    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "tcp-pcm",
        "--calls",
        "1",
        "--mic",
        callee_mic.to_str().unwrap(),
        "--speaker",
        callee_heard.to_str().unwrap(),
    ]);
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--protocol",
        "tcp-pcm",
        "--duration",
        "11.5",
        "--mic",
        caller_mic.to_str().unwrap(),
        "--speaker",
        caller_heard.to_str().unwrap(),
    ]);
    assert_eq!(caller.exit_code(Duration::from_secs(40)), 0, "caller exit");
    assert_eq!(callee.exit_code(Duration::from_secs(10)), 0, "callee exit");
    let hangup = &caller
        .seen
        .iter()
        .find(|e| e["event"] == "hangup")
        .expect("caller hangup event");
    assert_eq!(hangup["reason"], "duration");
    let remote = &callee
        .seen
        .iter()
        .find(|e| e["event"] == "hangup")
        .expect("callee hangup event");
    assert_eq!(remote["reason"], "remote");
    // 8 kHz, one byte per sample, 11.5 s each way.
    let sent = hangup["bytes_sent"].as_u64().unwrap();
    assert!((85_000..=95_000).contains(&sent), "bytes sent {sent}");

    let up = align_speech(&caller_mic, &callee_heard);
    let down = align_speech(&callee_mic, &caller_heard);
    eprintln!(
        "tcp-pcm delay: caller->callee {:.1} ms (r={:.3}), callee->caller {:.1} ms (r={:.3})",
        ms(up.lag, 8_000),
        up.correlation,
        ms(down.lag, 8_000),
        down.correlation
    );
    // The delay is measured over the whole file; what arrived is judged
    // piece by piece, so a delay step on a busy machine is not distortion.
    for (sent, heard) in [(&caller_mic, &callee_heard), (&callee_mic, &caller_heard)] {
        assert_speech_arrived(&align_pieces(sent, heard), 8_000, 0.95, 0.3, 200.0);
    }
}
