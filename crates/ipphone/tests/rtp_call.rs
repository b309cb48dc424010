//! Media-only calls over RTP between two ipphone processes: Opus and G.711,
//! on a clean path and through the impairing relay, checked on the audio.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(40);

/// One call at a time: real-time audio on a two-core machine, judged by its
/// timing, should not compete with three other calls.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A call from SPEECH to SPEECH_2 and back; returns both recordings and
/// both phones' last events.
fn call(
    codec: &str,
    relay: &[&str],
    name: &str,
) -> (Phone, Phone, std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch(name);
    let (callee_heard, caller_heard) = (dir.join("callee.wav"), dir.join("caller.wav"));
    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "rtp",
        "--codec",
        codec,
        "--calls",
        "1",
        "--mic",
        speech(SPEECH_2).to_str().unwrap(),
        "--speaker",
        callee_heard.to_str().unwrap(),
    ]);
    let mut target = port;
    let _relay = (!relay.is_empty()).then(|| {
        target = free_udp_port();
        let child = ipphone()
            .args([
                "relay",
                "--listen",
                &format!("127.0.0.1:{target}"),
                "--to",
                &format!("127.0.0.1:{port}"),
            ])
            .args(relay)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        Relay(child)
    });
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{target}"),
        "--protocol",
        "rtp",
        "--codec",
        codec,
        "--duration",
        "11",
        "--mic",
        speech(SPEECH).to_str().unwrap(),
        "--speaker",
        caller_heard.to_str().unwrap(),
    ]);
    assert_eq!(caller.exit_code(LONG), 0, "caller");
    assert_eq!(callee.exit_code(LONG), 0, "callee");
    (caller, callee, callee_heard, caller_heard)
}

fn report(label: &str, sent: &Path, heard: &Path) {
    let a = align_speech(sent, heard);
    let (_, rate) = read_wav(heard);
    eprintln!(
        "{label}: delay {:.1} ms, correlation {:.3}",
        ms(a.lag, rate),
        a.correlation
    );
}

#[test]
fn opus_on_a_clean_path() {
    let _one = serial();
    let (caller, callee, callee_heard, caller_heard) = call("opus", &[], "rtp-opus");
    assert_eq!(caller.last("hangup")["reason"], "duration");
    // The far end's RTCP BYE ends the listener's call.
    assert_eq!(callee.last("hangup")["reason"], "remote");
    let rtp = &callee.last("hangup")["rtp"];
    assert!(rtp["packets_received"].as_u64().unwrap() > 400, "{rtp}");
    assert_eq!(rtp["lost"], 0, "{rtp}");
    // Half-silent speech with DTX costs far less than 64 kbit/s.
    let kbps = caller.last("hangup")["rtp"]["kbps_received"]
        .as_f64()
        .unwrap();
    assert!(kbps < 20.0, "the DTX side sent {kbps} kbit/s");
    report("opus caller->callee", &speech(SPEECH), &callee_heard);
    report("opus callee->caller", &speech(SPEECH_2), &caller_heard);
    // Opus keeps how speech sounds, not its exact waveform (0.75-0.95 per
    // piece on these recordings), and time-stretching by the jitter buffer
    // shifts the audio inside a piece: the bars are set accordingly.
    assert_speech_arrived(
        &align_pieces(&speech(SPEECH), &callee_heard),
        16_000,
        0.75,
        0.25,
        200.0,
    );
    assert_speech_arrived(
        &align_pieces(&speech(SPEECH_2), &caller_heard),
        16_000,
        0.65,
        0.25,
        200.0,
    );
}

#[test]
fn pcmu_and_pcma_on_a_clean_path() {
    let _one = serial();
    for codec in ["pcmu", "pcma"] {
        let (_, _, callee_heard, caller_heard) = call(codec, &[], &format!("rtp-{codec}"));
        report(codec, &speech(SPEECH), &callee_heard);
        // G.711 keeps the waveform (about 0.99 per piece), but a piece in
        // which the jitter buffer stretched time lines up at 0.6-0.9; a
        // loaded machine stretches more often.
        assert_speech_arrived(
            &align_pieces(&speech(SPEECH), &callee_heard),
            8_000,
            0.8,
            0.3,
            200.0,
        );
        assert_speech_arrived(
            &align_pieces(&speech(SPEECH_2), &caller_heard),
            8_000,
            0.8,
            0.3,
            200.0,
        );
    }
}

#[test]
fn opus_through_loss_and_jitter() {
    let _one = serial();
    let (caller, callee, callee_heard, _) = call(
        "opus",
        &["--loss", "10", "--jitter", "30", "--seed", "7"],
        "rtp-lossy",
    );
    let rtp = &callee.last("hangup")["rtp"];
    assert!(rtp["lost"].as_i64().unwrap() > 20, "{rtp}");
    // The far end reports the loss, and each packet then carries a copy
    // of the one before it (RFC 2198), which brings most lost frames back.
    assert!(
        rtp["red_recovered"].as_u64().unwrap() > 10,
        "redundant copies brought lost frames back: {rtp}"
    );
    // The caller talks all along (the callee's shorter speech leaves its
    // side mostly pauses, with too little to lose to keep copies on).
    let sent = &caller.last("hangup")["rtp"];
    assert!(sent["redundancy"].as_u64().unwrap() >= 1, "{sent}");
    report("opus 10% loss 30 ms jitter", &speech(SPEECH), &callee_heard);
    // Every lost frame is concealed and the output keeps time: the speech is
    // all there, within a bounded delay, end to end.
    let pieces = align_pieces(&speech(SPEECH), &callee_heard);
    assert_speech_arrived(&pieces, 16_000, 0.6, 0.2, 150.0);
}

#[test]
fn nothing_listening_is_refused() {
    let _one = serial();
    let port = free_udp_port();
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--protocol",
        "rtp",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 3);
    assert_eq!(caller.last("hangup")["reason"], "refused");
}

#[test]
fn stun_and_garbage_before_the_call_are_ignored() {
    let _one = serial();
    let (mut callee, port) = Phone::listen(&[
        "--protocol",
        "rtp",
        "--calls",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut stun = [0u8; 20];
    stun[1] = 1;
    for datagram in [&stun[..], b"hello", &[0x80; 3], &[0xff; 200]] {
        junk.send_to(datagram, ("127.0.0.1", port)).unwrap();
    }
    let mut caller = Phone::spawn(&[
        "call",
        &format!("127.0.0.1:{port}"),
        "--protocol",
        "rtp",
        "--codec",
        "pcmu",
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
        callee.last("hangup")["rtp"]["packets_received"]
            .as_u64()
            .unwrap()
            > 30
    );
}

#[test]
fn dtmf_digits_arrive_once_each_in_order() {
    let _one = serial();
    for codec in ["opus", "pcmu"] {
        let (mut callee, port) = Phone::listen(&[
            "--protocol",
            "rtp",
            "--codec",
            codec,
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
            "--protocol",
            "rtp",
            "--codec",
            codec,
            "--dtmf",
            "159#*0",
            "--duration",
            "3",
            "--mic",
            "null",
            "--speaker",
            "null",
        ]);
        assert_eq!(caller.exit_code(LONG), 0);
        assert_eq!(callee.exit_code(LONG), 0);
        let digits: String = callee
            .seen
            .iter()
            .filter(|e| e["event"] == "dtmf")
            .map(|e| e["digit"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(digits, "159#*0", "{codec}");
        // The events share the stream's sequence numbers: no audio counts as lost.
        assert_eq!(callee.last("hangup")["rtp"]["lost"], 0, "{codec}");
    }
}
