//! The real SIP peers of the interop tests, proven with each other alone:
//! baresip calls baresip (G.711 and Opus) with speech checked both ways,
//! sipp's UAC calls sipp's UAS, sipp cancels a ringing call, and two
//! baresips register with Kamailio (a wrong password is refused) and call
//! each other through it by address-of-record.

mod common;
mod peers;

use std::time::{Duration, Instant};

use common::*;
use peers::sipp::{CANCEL_UAC, RINGING_UAS};
use peers::*;

/// How long each side talks; a call lasts this long (the microphone files
/// end together, both send BYE).
const TALK: Duration = Duration::from_secs(4);
const SETUP: Duration = Duration::from_secs(10);
const CALL_END: Duration = Duration::from_secs(15);

#[test]
fn baresip_calls_baresip_with_pcmu() {
    baresip_call(Codec::Pcmu);
}

#[test]
fn baresip_calls_baresip_with_opus() {
    baresip_call(Codec::Opus);
}

fn baresip_call(codec: Codec) {
    let start = Instant::now();
    let mut callee =
        Baresip::start(BaresipOptions::new("callee", codec, &speech(SPEECH_2)).length(TALK));
    let mut caller = Baresip::start(
        BaresipOptions::new("caller", codec, &speech(SPEECH))
            .length(TALK)
            .dial(&callee.uri()),
    );
    caller.wait_established(SETUP);
    callee.wait_established(SETUP);
    let established = start.elapsed();
    caller.wait_call_end(CALL_END);
    callee.wait_call_end(CALL_END);
    let ended = start.elapsed();

    for phone in [&caller, &callee] {
        assert_loopback_only(phone);
        let log = phone.log();
        let encoder = format!("Set audio encoder: {}", codec.sdp_name());
        assert!(
            log.contains(&encoder),
            "no {encoder:?} in {}:\n{}",
            phone.log_path().display(),
            phone.log_tail(60)
        );
    }
    let to_callee = check_speech(&caller, &callee);
    let to_caller = check_speech(&callee, &caller);
    eprintln!(
        "{codec:?}: established after {established:?}, ended after {ended:?}; \
         caller->callee {to_callee}, callee->caller {to_caller}"
    );
}

#[test]
fn sipp_uac_calls_sipp_uas() {
    let start = Instant::now();
    let uas = Sipp::spawn(SippOptions::new(Scenario::Uas));
    let uac =
        Sipp::run(SippOptions::new(Scenario::Uac).remote(&format!("127.0.0.1:{}", uas.port())));
    uac.assert_success();
    let uas = uas.wait();
    uas.assert_success();
    assert_eq!(uac.stat("SuccessfulCall"), Some(1), "{uac}");
    assert_eq!(uas.stat("SuccessfulCall"), Some(1), "{uas}");
    eprintln!("sipp uac -> uas: one call in {:?}", start.elapsed());
}

#[test]
fn sipp_cancels_a_call_ringing_at_sipp() {
    let start = Instant::now();
    let uas = Sipp::spawn(SippOptions::new(Scenario::xml("ringing_uas", RINGING_UAS)));
    let uac = Sipp::run(
        SippOptions::new(Scenario::xml("cancel_uac", CANCEL_UAC))
            .remote(&format!("127.0.0.1:{}", uas.port())),
    );
    uac.assert_success();
    uas.wait().assert_success();
    assert_same_branch(&uac.messages);
    eprintln!("sipp CANCEL -> sipp ringing: {:?}", start.elapsed());
}

#[test]
fn sipp_cancels_a_call_ringing_at_baresip() {
    let start = Instant::now();
    let mut phone =
        Baresip::start(BaresipOptions::new("ringing", Codec::Pcmu, &speech(SPEECH_2)).ring_only());
    let uac = Sipp::run(
        SippOptions::new(Scenario::xml("cancel_uac", CANCEL_UAC))
            .remote(&format!("127.0.0.1:{}", phone.sip_port()))
            .service("ringing"),
    );
    uac.assert_success();
    assert_same_branch(&uac.messages);
    assert!(
        phone.wait_for("SIP/2.0 487", 1, Duration::from_secs(2)),
        "baresip sent no 487:\n{}",
        phone.log_tail(60)
    );
    assert!(!phone.log().contains("Call established"));
    eprintln!("sipp CANCEL -> baresip ringing: {:?}", start.elapsed());
}

#[test]
fn baresips_register_with_kamailio_and_call_through_it() {
    let start = Instant::now();
    let mut kamailio = Kamailio::start(&[("alice", "alice-pw"), ("bob", "bob-pw")]);
    let domain = kamailio.domain();
    let mut bob = Baresip::start(
        BaresipOptions::new("bob", Codec::Opus, &speech(SPEECH_2))
            .length(TALK)
            .register(&domain, "bob-pw"),
    );
    let mut mallory = Baresip::start(
        BaresipOptions::new("alice", Codec::Pcmu, &speech(SPEECH_2)).register(&domain, "guess"),
    );
    bob.wait_registered(SETUP);
    let registered = start.elapsed();
    // Kamailio challenges again; baresip gives up and reports the 401.
    mallory.expect("401 Unauthorized (kamailio", SETUP);
    assert!(
        !mallory.log().contains("binding]"),
        "{}",
        mallory.log_tail(60)
    );
    mallory.stop();

    let mut alice = Baresip::start(
        BaresipOptions::new("alice", Codec::Opus, &speech(SPEECH))
            .length(TALK)
            .register(&domain, "alice-pw"),
    );
    alice.wait_registered(SETUP);
    // Dialled at the console (module cons), once registered.
    alice.command(&format!("/dial {}", kamailio.aor("bob")));
    alice.wait_established(SETUP);
    bob.wait_established(SETUP);
    let established = start.elapsed();
    alice.wait_call_end(CALL_END);
    bob.wait_call_end(CALL_END);

    // Through the proxy: the INVITE was challenged (407) and Record-Routed.
    let log = alice.log();
    assert!(
        log.contains("407 Proxy Authentication Required"),
        "{}",
        alice.log_tail(80)
    );
    assert!(
        log.contains("Record-Route: <sip:127.0.0.1:"),
        "{}",
        alice.log_tail(80)
    );
    assert!(
        kamailio.wait_for("request INVITE sip:bob@", 2, Duration::from_secs(1)),
        "{}",
        kamailio.log_tail(40)
    );
    let to_bob = check_speech(&alice, &bob);
    let to_alice = check_speech(&bob, &alice);
    eprintln!(
        "Kamailio: bob registered after {registered:?}, call established after {established:?}; \
         alice->bob {to_bob}, bob->alice {to_alice}"
    );
    bob.stop();
    alice.stop();
}

/// Finds what `from` played in what `to` recorded, piece by piece; returns a
/// summary for the test's output.
fn check_speech(from: &Baresip, to: &Baresip) -> String {
    let heard = to.recording().unwrap_or_else(|| {
        panic!(
            "no finished recording in {}:\n{}",
            to.dir().display(),
            to.log_tail(60)
        )
    });
    let (_, rate) = read_wav(&heard);
    let pieces = align_pieces(from.speech(), &heard);
    // The recording starts with the first packet decoded, so the lag is the
    // codec's delay plus any packets lost before it, not the call's delay.
    assert_speech_arrived(&pieces, rate, 0.8, 0.5, 200.0);
    let mean = pieces.iter().map(|a| a.correlation).sum::<f64>() / pieces.len() as f64;
    let lag = pieces.iter().map(|a| ms(a.lag, rate)).fold(0.0, f64::max);
    format!(
        "{} pieces, mean correlation {mean:.3}, max lag {lag:.1} ms",
        pieces.len()
    )
}

/// baresip put only 127.0.0.1 in its SDP and received RTP from there.
fn assert_loopback_only(phone: &Baresip) {
    let log = phone.log();
    let connections: Vec<&str> = log.lines().filter(|l| l.starts_with("c=IN IP4 ")).collect();
    assert!(
        !connections.is_empty(),
        "no SDP in {}",
        phone.log_path().display()
    );
    for c in connections {
        assert_eq!(
            c.trim(),
            "c=IN IP4 127.0.0.1",
            "in {}",
            phone.log_path().display()
        );
    }
    assert!(
        log.contains("incoming rtp for 'audio' established, receiving from 127.0.0.1:"),
        "{}",
        phone.log_tail(60)
    );
}

/// The CANCEL and the ACK for the 487 carry the INVITE's Via branch
/// (RFC 3261 9.1, 17.1.1.3), in sipp's message log.
fn assert_same_branch(messages: &str) {
    let branch_of = |method: &str| {
        let start = messages
            .find(&format!("{method} sip:"))
            .unwrap_or_else(|| panic!("no {method} sent:\n{messages}"));
        let via = &messages[start..]
            .lines()
            .find(|l| l.trim_start().starts_with("Via:"))
            .expect("a Via header");
        via.split("branch=")
            .nth(1)
            .and_then(|b| b.split([';', ' ', '\r']).next())
            .expect("a branch")
            .to_owned()
    };
    let invite = branch_of("INVITE");
    assert_eq!(branch_of("CANCEL"), invite, "{messages}");
    assert_eq!(branch_of("ACK"), invite, "{messages}");
}
