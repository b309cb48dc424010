//! Fuzzes the SIP message layer with arbitrary bytes, as a datagram and as a
//! stream cut into pieces. Beyond not panicking: whatever parses prints and
//! parses back to the same message, and every typed header field of it
//! prints and parses back to the same value; an answer to what does not
//! parse is a 400 or a 505; the framer hands out messages no longer than
//! its limit, agrees with the datagram parser on each, and, polled dry,
//! always has room for more bytes unless it has failed.
#![no_main]

use std::fmt::Debug;
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use proto::sip::message::{
    CSeq, Contact, ContentType, HeaderError, Headers, Message, NameAddr, Response, StreamFramer,
    StreamItem, Uri, Via,
};

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Ok(message) => round_trip(&message),
        Err(error) => {
            if let Some(answer) = Response::for_malformed_request(data, &error, "fuzz") {
                assert!(matches!(answer.status, 400 | 505));
                let _ = answer.to_bytes();
            }
        }
    }

    // The typed parsers on their own, on text the message parser would not
    // have let through.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(uri) = Uri::parse(text) {
            assert_eq!(Uri::parse(&uri.to_string()), Ok(uri));
        }
        typed::<Via>(text);
        typed::<NameAddr>(text);
        typed::<Contact>(text);
        typed::<CSeq>(text);
        typed::<ContentType>(text);
    }

    // The first byte picks the piece size.
    let piece = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut framer = StreamFramer::with_limit(LIMIT);
    let mut rest = data;
    while !rest.is_empty() {
        let taken = framer.push(&rest[..piece.min(rest.len())]);
        rest = &rest[taken..];
        while let Some(item) = framer.poll() {
            match item {
                Ok(StreamItem::Message(message)) => round_trip(&message),
                Ok(StreamItem::Malformed { bytes, error }) => {
                    assert!(bytes.len() <= LIMIT);
                    assert_eq!(Message::parse(&bytes), Err(error));
                }
                Ok(StreamItem::Ping | StreamItem::Pong) | Err(_) => {}
            }
        }
        if taken == 0 {
            assert!(framer.has_failed(), "a framer polled dry has room");
            break;
        }
    }
});

fn round_trip(message: &Message) {
    let printed = message.to_bytes();
    let again = Message::parse(&printed).expect("a printed message parses");
    assert_eq!(&again, message);
    assert_eq!(again.to_bytes(), printed, "printing is a fixed point");
    let headers = message.headers();
    all(headers.vias());
    all(headers.from().map(|a| vec![a]));
    all(headers.to().map(|a| vec![a]));
    all(headers.contacts());
    all(headers.routes());
    all(headers.record_routes());
    all(headers.cseq().map(|c| vec![c]));
    all(headers.content_type().map(|c| c.into_iter().collect()));
    all(headers.allow());
    no_panic(headers);
}

/// A parsed message's typed fields all parse (the parser checked them) and
/// print to text that parses back to the same values.
fn all<T>(values: Result<Vec<T>, HeaderError>)
where
    T: FromStr<Err = HeaderError> + ToString + PartialEq + Debug,
{
    for value in values.expect("a parsed message's typed fields parse") {
        assert_eq!(value.to_string().parse::<T>().as_ref(), Ok(&value));
    }
}

fn typed<T>(text: &str)
where
    T: FromStr<Err = HeaderError> + ToString + PartialEq + Debug,
{
    if let Ok(value) = text.parse::<T>() {
        assert_eq!(value.to_string().parse::<T>().as_ref(), Ok(&value));
    }
}

fn no_panic(headers: &Headers) {
    let _ = headers.max_forwards();
    let _ = headers.expires();
    let _ = headers.supported();
    let _ = headers.require();
    let _ = headers.call_id();
}
