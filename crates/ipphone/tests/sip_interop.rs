//! ipphone against real SIP peers, started by the tests: baresip calls
//! ipphone and ipphone calls baresip (PCMU and Opus, speech checked both
//! ways), two ipphones register with Kamailio and call each other through
//! it by address-of-record (digest authentication; a wrong password is
//! reported as such), and sipp's UAC, UAS and a CANCEL before the answer.

mod common;
mod peers;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::*;
use peers::sipp::CANCEL_UAC;
use peers::*;

const LONG: Duration = Duration::from_secs(40);
/// How long each side talks.
const TALK: Duration = Duration::from_secs(5);

/// One call at a time: real-time audio on a two-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The first `TALK` of a speech file, as the microphone file ipphone plays.
fn cut(path: &str, dir: &Path, name: &str) -> PathBuf {
    let (samples, rate) = read_wav(&speech(path));
    let n = (TALK.as_secs_f64() * f64::from(rate)) as usize;
    let out = dir.join(name);
    write_wav_mono(&out, rate, &samples[..n.min(samples.len())]);
    out
}

fn codec_arg(codec: Codec) -> &'static str {
    match codec {
        Codec::Pcmu => "pcmu",
        Codec::Pcma => "pcma",
        Codec::Opus => "opus",
    }
}

/// Finds `sent` in `heard`, piece by piece.
fn check(sent: &Path, heard: &Path, what: &str) {
    let (_, rate) = read_wav(heard);
    let pieces = align_pieces(sent, heard);
    eprintln!(
        "{what}: {} pieces, mean correlation {:.3}",
        pieces.len(),
        pieces.iter().map(|a| a.correlation).sum::<f64>() / pieces.len().max(1) as f64
    );
    assert_speech_arrived(&pieces, rate, 0.6, 0.2, 300.0);
}

fn ipphone_calls_baresip(codec: Codec) {
    let _one = serial();
    let dir = scratch(&format!("interop-to-baresip-{codec:?}"));
    let mic = cut(SPEECH, &dir, "mic.wav");
    let heard = dir.join("heard.wav");
    let mut baresip = Baresip::start(
        BaresipOptions::new("callee", codec, &speech(SPEECH_2))
            .length(TALK + Duration::from_secs(1)),
    );
    let mut caller = Phone::spawn(&[
        "call",
        &baresip.uri(),
        "--codec",
        codec_arg(codec),
        "--duration",
        "20",
        "--mic",
        mic.to_str().unwrap(),
        "--speaker",
        heard.to_str().unwrap(),
    ]);
    // baresip hangs up when its microphone file ends.
    assert_eq!(caller.exit_code(LONG), 0, "{}", baresip.log_tail(60));
    assert_eq!(caller.last("hangup")["reason"], "remote");
    baresip.wait_call_end(LONG);
    let recording = baresip
        .recording()
        .unwrap_or_else(|| panic!("baresip recorded nothing:\n{}", baresip.log_tail(60)));
    check(&mic, &recording, &format!("{codec:?} ipphone -> baresip"));
    check(
        baresip.speech(),
        &heard,
        &format!("{codec:?} baresip -> ipphone"),
    );
}

#[test]
fn ipphone_calls_baresip_with_pcmu() {
    ipphone_calls_baresip(Codec::Pcmu);
}

#[test]
fn ipphone_calls_baresip_with_opus() {
    ipphone_calls_baresip(Codec::Opus);
}

fn baresip_calls_ipphone(codec: Codec) {
    let _one = serial();
    let dir = scratch(&format!("interop-from-baresip-{codec:?}"));
    // ipphone sends continuous speech: with Opus it sends nothing in pauses
    // (DTX), and baresip's recorder leaves such gaps out of its file, which
    // would shift what follows; its own playout is not affected.
    let mic = cut(SPEECH, &dir, "mic.wav");
    let heard = dir.join("heard.wav");
    let (mut callee, port) = Phone::listen_on(
        "127.0.0.1:0",
        &[
            "--auto-answer",
            "--calls",
            "1",
            "--mic",
            mic.to_str().unwrap(),
            "--speaker",
            heard.to_str().unwrap(),
        ],
    );
    let mut baresip = Baresip::start(
        BaresipOptions::new("caller", codec, &speech(SPEECH_2))
            .length(TALK)
            .dial(&format!("sip:ipphone@127.0.0.1:{port}")),
    );
    baresip.wait_call_end(LONG);
    assert_eq!(callee.exit_code(LONG), 0, "{}", baresip.log_tail(60));
    assert_eq!(callee.last("hangup")["reason"], "remote");
    let recording = baresip
        .recording()
        .unwrap_or_else(|| panic!("baresip recorded nothing:\n{}", baresip.log_tail(60)));
    check(
        baresip.speech(),
        &heard,
        &format!("{codec:?} baresip -> ipphone"),
    );
    check(&mic, &recording, &format!("{codec:?} ipphone -> baresip"));
}

#[test]
fn baresip_calls_ipphone_with_pcmu() {
    baresip_calls_ipphone(Codec::Pcmu);
}

#[test]
fn baresip_calls_ipphone_with_opus() {
    baresip_calls_ipphone(Codec::Opus);
}

fn account_file(dir: &Path, user: &str, password: &str, kamailio: &Kamailio) -> PathBuf {
    let path = dir.join(format!("{user}.toml"));
    std::fs::write(
        &path,
        format!(
            "[[account]]\nuser = \"{user}\"\ndomain = \"127.0.0.1\"\n\
             registrar = \"{}\"\npassword = \"{password}\"\nexpires = 60\n",
            kamailio.domain()
        ),
    )
    .unwrap();
    path
}

#[test]
fn two_ipphones_register_with_kamailio_and_call_by_address_of_record() {
    let _one = serial();
    let dir = scratch("interop-kamailio");
    let kamailio = Kamailio::start(&[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let bob_config = account_file(&dir, "bob", "bob-pw", &kamailio);
    let alice_config = account_file(&dir, "alice", "alice-pw", &kamailio);
    let mic = cut(SPEECH_2, &dir, "bob-mic.wav");
    let heard = dir.join("bob-heard.wav");
    let (mut bob, _) = Phone::listen_on(
        "127.0.0.1:0",
        &[
            "--config",
            bob_config.to_str().unwrap(),
            "--auto-answer",
            "--calls",
            "1",
            "--mic",
            mic.to_str().unwrap(),
            "--speaker",
            heard.to_str().unwrap(),
        ],
    );
    let registered = bob.wait_for("registered", LONG);
    assert_eq!(registered["aor"], "sip:bob@127.0.0.1");
    let alice_mic = cut(SPEECH, &dir, "alice-mic.wav");
    let alice_heard = dir.join("alice-heard.wav");
    let mut alice = Phone::spawn(&[
        "call",
        &kamailio.aor("bob"),
        "--config",
        alice_config.to_str().unwrap(),
        "--account",
        "alice",
        "--duration",
        "6",
        "--mic",
        alice_mic.to_str().unwrap(),
        "--speaker",
        alice_heard.to_str().unwrap(),
    ]);
    assert_eq!(alice.exit_code(LONG), 0, "{}", kamailio.log_tail(40));
    assert_eq!(bob.exit_code(LONG), 0, "{}", kamailio.log_tail(40));
    assert_eq!(alice.last("hangup")["reason"], "duration");
    assert_eq!(bob.last("hangup")["reason"], "remote");
    // Kamailio challenged the INVITE and relayed it to bob's registration.
    let log = kamailio.log();
    assert!(log.contains("request INVITE sip:bob@"), "{log}");
    check(&alice_mic, &heard, "alice -> kamailio -> bob");
    check(&mic, &alice_heard, "bob -> kamailio -> alice");
}

#[test]
fn a_wrong_password_is_reported_as_such() {
    let dir = scratch("interop-kamailio-password");
    let kamailio = Kamailio::start(&[("bob", "bob-pw")]);
    let config = account_file(&dir, "bob", "guess", &kamailio);
    let (mut bob, _) = Phone::listen_on(
        "127.0.0.1:0",
        &[
            "--config",
            config.to_str().unwrap(),
            "--mic",
            "null",
            "--speaker",
            "null",
        ],
    );
    assert_eq!(bob.exit_code(LONG), 1);
    let message = bob.last("error")["message"].as_str().unwrap().to_owned();
    assert!(message.contains("rejected the password"), "{message}");
}

#[test]
fn sipp_calls_ipphone() {
    let _one = serial();
    let (mut callee, port) = Phone::listen_on(
        "127.0.0.1:0",
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
    let uac = Sipp::run(
        SippOptions::new(Scenario::Uac)
            .remote(&format!("127.0.0.1:{port}"))
            .service("ipphone"),
    );
    uac.assert_success();
    assert_eq!(uac.stat("SuccessfulCall"), Some(1), "{uac}");
    assert_eq!(callee.exit_code(LONG), 0);
    assert_eq!(callee.last("hangup")["reason"], "remote");
}

#[test]
fn ipphone_calls_sipp() {
    let _one = serial();
    let uas = Sipp::spawn(SippOptions::new(Scenario::Uas));
    let mut caller = Phone::spawn(&[
        "call",
        &format!("sip:service@127.0.0.1:{}", uas.port()),
        "--codec",
        "pcmu",
        "--duration",
        "2",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 0);
    let uas = uas.wait();
    uas.assert_success();
    assert_eq!(uas.stat("SuccessfulCall"), Some(1), "{uas}");
}

#[test]
fn sipp_cancels_while_ipphone_rings() {
    let _one = serial();
    // No --auto-answer: it rings until sipp gives up.
    let (mut callee, port) = Phone::listen_on(
        "127.0.0.1:0",
        &["--calls", "1", "--mic", "null", "--speaker", "null"],
    );
    let uac = Sipp::run(
        SippOptions::new(Scenario::xml("cancel_uac", CANCEL_UAC))
            .remote(&format!("127.0.0.1:{port}"))
            .service("ipphone"),
    );
    uac.assert_success();
    assert_eq!(callee.exit_code(LONG), 0);
    assert_eq!(callee.last("ended")["status"], 487);
}

#[test]
fn baresip_puts_ipphone_on_hold_and_back() {
    let _one = serial();
    let (mut callee, port) = Phone::listen_on(
        "127.0.0.1:0",
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
    let mut baresip = Baresip::start(
        BaresipOptions::new("caller", Codec::Pcmu, &speech(SPEECH))
            .length(Duration::from_secs(8))
            .dial(&format!("sip:ipphone@127.0.0.1:{port}")),
    );
    baresip.wait_established(LONG);
    callee.wait_for("connected", LONG);
    std::thread::sleep(Duration::from_secs(1));
    baresip.command("/hold");
    let held = callee.wait_for("hold", Duration::from_secs(10));
    assert_eq!(held["held"], true, "{}", baresip.log_tail(40));
    assert_eq!(held["by"], "remote");
    baresip.command("/resume");
    let resumed =
        callee.try_wait_for_where("hold", Duration::from_secs(10), |e| e["held"] == false);
    assert!(resumed.is_some(), "{}", baresip.log_tail(40));
    baresip.wait_call_end(LONG);
    assert_eq!(callee.exit_code(LONG), 0);
    assert_eq!(callee.last("hangup")["reason"], "remote");
}

#[test]
fn ipphone_calls_baresip_over_tcp() {
    let _one = serial();
    let dir = scratch("interop-tcp");
    let mic = cut(SPEECH, &dir, "mic.wav");
    let mut baresip = Baresip::start(
        BaresipOptions::new("callee", Codec::Pcmu, &speech(SPEECH_2))
            .length(TALK + Duration::from_secs(1)),
    );
    let mut caller = Phone::spawn(&[
        "call",
        &format!("{};transport=tcp", baresip.uri()),
        "--codec",
        "pcmu",
        "--duration",
        "20",
        "--mic",
        mic.to_str().unwrap(),
        "--speaker",
        "null",
    ]);
    assert_eq!(caller.exit_code(LONG), 0, "{}", baresip.log_tail(60));
    assert_eq!(caller.last("hangup")["reason"], "remote");
    baresip.wait_call_end(LONG);
    assert!(
        baresip.log().contains("SIP/2.0/TCP"),
        "{}",
        baresip.log_tail(60)
    );
    let recording = baresip
        .recording()
        .unwrap_or_else(|| panic!("baresip recorded nothing:\n{}", baresip.log_tail(60)));
    check(&mic, &recording, "PCMU over SIP/TCP: ipphone -> baresip");
}
