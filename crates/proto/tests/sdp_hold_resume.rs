//! Two phones negotiate a call, one holds it and resumes it (RFC 3264 §8.4,
//! RFC 6337 §5), each description crossing the "wire" as text.

use ipphone_proto::sdp::{
    Codec, Direction, LocalMedia, Negotiated, NegotiationError, OfferAnswer, SessionDescription,
};

fn wire(sdp: &SessionDescription) -> SessionDescription {
    let text = sdp.to_string();
    assert!(text.ends_with("\r\n"));
    SessionDescription::parse(&text).expect("our own descriptions parse")
}

/// `offerer` offers `offer`, `answerer` answers; both outcomes.
fn exchange(
    offerer: &mut OfferAnswer,
    answerer: &mut OfferAnswer,
    offer: SessionDescription,
) -> (Negotiated, Negotiated, SessionDescription) {
    let answer = answerer.handle_offer(&wire(&offer)).expect("answerable");
    let ours = offerer
        .handle_answer(&wire(&answer.sdp))
        .expect("acceptable");
    (ours, answer.negotiated, answer.sdp)
}

fn phones() -> (OfferAnswer, OfferAnswer) {
    let alice = OfferAnswer::new(LocalMedia::new("192.0.2.1".parse().unwrap(), 40000), 1000);
    let bob = OfferAnswer::new(LocalMedia::new("192.0.2.2".parse().unwrap(), 50000), 2000);
    (alice, bob)
}

#[test]
fn hold_and_resume() {
    let (mut alice, mut bob) = phones();
    let offer = alice.create_offer().unwrap();
    assert_eq!(offer.origin.session_version, 1000);
    let (a, b, answer) = exchange(&mut alice, &mut bob, offer);
    assert_eq!(answer.origin.session_version, 2000);
    for n in [&a, &b] {
        assert_eq!(n.codec, Codec::Opus);
        assert!(n.rtcp_mux);
        assert_eq!(
            (n.our_direction, n.their_direction),
            (Direction::SendRecv, Direction::SendRecv)
        );
    }
    assert_eq!(
        a.remote_rtp.socket_addr(),
        Some("192.0.2.2:50000".parse().unwrap())
    );
    assert_eq!(
        b.remote_rtp.socket_addr(),
        Some("192.0.2.1:40000".parse().unwrap())
    );

    // Alice holds: sendonly, a new version; Bob answers recvonly.
    let hold = alice.hold().unwrap();
    assert_eq!(hold.origin.session_version, 1001);
    assert_eq!(hold.media[0].direction(), Some(Direction::SendOnly));
    let (a, b, answer) = exchange(&mut alice, &mut bob, hold);
    assert_eq!(answer.origin.session_version, 2001);
    assert_eq!(answer.media[0].direction(), Some(Direction::RecvOnly));
    assert_eq!(
        (a.our_direction, a.their_direction),
        (Direction::SendOnly, Direction::RecvOnly)
    );
    assert_eq!(
        (b.our_direction, b.their_direction),
        (Direction::RecvOnly, Direction::SendOnly)
    );
    assert!(!b.sending() && b.receiving());

    // Bob holds too while held: his sendonly offer meets Alice's hold: inactive.
    let hold_too = bob.hold().unwrap();
    assert_eq!(hold_too.origin.session_version, 2002);
    let (b, a, answer) = exchange(&mut bob, &mut alice, hold_too);
    assert_eq!(answer.media[0].direction(), Some(Direction::Inactive));
    assert_eq!(a.our_direction, Direction::Inactive);
    assert_eq!(b.our_direction, Direction::Inactive);

    // Both resume, one after the other.
    let resume = bob.resume().unwrap();
    let (b, a, _) = exchange(&mut bob, &mut alice, resume);
    assert_eq!(
        (a.our_direction, b.our_direction),
        (Direction::SendOnly, Direction::RecvOnly)
    );
    let resume = alice.resume().unwrap();
    let (a, b, answer) = exchange(&mut alice, &mut bob, resume);
    assert_eq!(answer.media[0].direction(), Some(Direction::SendRecv));
    assert_eq!(
        (a.our_direction, b.our_direction),
        (Direction::SendRecv, Direction::SendRecv)
    );
    assert!(a.sending() && a.receiving());
}

#[test]
fn a_session_refresh_keeps_the_version() {
    let (mut alice, mut bob) = phones();
    let first = alice.create_offer().unwrap();
    let (_, _, first_answer) = exchange(&mut alice, &mut bob, first.clone());
    // An unchanged re-offer (a session timer refresh) is the same version,
    // and so is the unchanged answer (RFC 3264 §8).
    let again = alice.create_offer().unwrap();
    assert_eq!(again, first);
    let (_, _, answer) = exchange(&mut alice, &mut bob, again);
    assert_eq!(answer, first_answer);
    // A new port is a change.
    alice.local_mut().rtp_port = 40002;
    let moved = alice.create_offer().unwrap();
    assert_eq!(
        moved.origin.session_version,
        first.origin.session_version + 1
    );
    let (_, b, _) = exchange(&mut alice, &mut bob, moved);
    assert_eq!(b.remote_rtp.port, 40002);
}

#[test]
fn a_refused_reoffer_leaves_the_call_as_it_was() {
    let (mut alice, mut bob) = phones();
    let offer = alice.create_offer().unwrap();
    let (before, _, _) = exchange(&mut alice, &mut bob, offer);
    let hold = alice.hold().unwrap();
    // Glare: Bob offers at the same time, and Alice refuses (491).
    let bobs = bob.create_offer().unwrap();
    assert_eq!(
        alice.handle_offer(&bobs),
        Err(NegotiationError::OfferPending)
    );
    // Bob refuses Alice's offer likewise; both drop their offers.
    assert_eq!(bob.handle_offer(&hold), Err(NegotiationError::OfferPending));
    alice.cancel_offer();
    bob.cancel_offer();
    assert_eq!(alice.negotiated(), Some(&before));
    // A refused offer never happened (RFC 3261 §14.1): the retry is one
    // version past the last agreed description, as the refused one was.
    let retry = alice.create_offer().unwrap();
    assert_eq!(retry.origin.session_version, hold.origin.session_version);
    assert_eq!(retry.media[0].direction(), Some(Direction::SendOnly));
    alice.cancel_offer();
    // Refused again, Alice gives up holding: back to the agreed description.
    let unchanged = alice.resume().unwrap();
    assert_eq!(
        unchanged.origin.session_version,
        hold.origin.session_version - 1
    );
    alice.cancel_offer();
    let retry = alice.hold().unwrap();
    let (a, _, _) = exchange(&mut alice, &mut bob, retry);
    assert_eq!(a.our_direction, Direction::SendOnly);
}
