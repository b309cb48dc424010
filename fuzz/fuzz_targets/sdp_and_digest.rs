//! Fuzzes the SDP parser, the offer/answer logic and the digest header
//! parsers with arbitrary text. Beyond not panicking: a parsed description
//! prints and parses back to itself; any parsable offer is either answered
//! with one `m=` line per offered one (which parses back too) or refused
//! with an error; a parsed challenge reprints to itself, and the credentials
//! that answer it read back and verify.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use proto::sdp::{LocalMedia, OfferAnswer, SessionDescription};
use proto::sip::digest::{Challenge, Credentials, DigestRequest, Password};

const HERE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(sdp) = SessionDescription::parse(&text) {
        let printed = sdp.to_string();
        let again = SessionDescription::parse(&printed).expect("a printed description parses");
        assert_eq!(again, sdp);
        assert_eq!(again.to_string(), printed, "printing is a fixed point");

        let mut callee = OfferAnswer::new(LocalMedia::new(HERE, 5004), 1);
        if let Ok(answer) = callee.handle_offer(&sdp) {
            assert_eq!(answer.sdp.media.len(), sdp.media.len());
            let reparsed =
                SessionDescription::parse(&answer.sdp.to_string()).expect("an answer parses");
            assert_eq!(reparsed, answer.sdp);
        }

        let mut caller = OfferAnswer::new(LocalMedia::new(HERE, 6004), 2);
        caller
            .create_offer()
            .expect("the default capabilities make an offer");
        let _ = caller.handle_answer(&sdp);
    }

    if let Ok(challenge) = Challenge::parse(&text) {
        assert_eq!(
            Challenge::parse(&challenge.to_string()).as_ref(),
            Ok(&challenge)
        );
        let request = DigestRequest {
            method: "REGISTER",
            uri: "sip:example.com",
            body: data,
        };
        let password = Password::new("secret");
        if let Ok(credentials) = challenge.respond(&request, "alice", &password, "c0ffee", 1) {
            let parsed = Credentials::parse(&credentials.to_string()).expect("credentials parse");
            assert_eq!(parsed, credentials);
            assert_eq!(parsed.verify(&challenge, &request, &password), Ok(()));
        }
    }
    let _ = Credentials::parse(&text);
});
