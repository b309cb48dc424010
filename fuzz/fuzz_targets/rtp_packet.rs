//! Fuzzes the RTP packet parser and the media-port demultiplexer. Beyond not
//! panicking: a parsed packet writes back to exactly its encoded length and
//! parses again to the same packet, and its payload can be read as a
//! telephone event without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::rtp::dtmf::TelephoneEvent;
use proto::rtp::header::{Demux, RtpPacket, demux};

fuzz_target!(|data: &[u8]| {
    let kind = demux(data);
    let Ok(packet) = RtpPacket::parse(data) else {
        return;
    };
    assert_ne!(
        kind,
        Demux::Other,
        "a parsable RTP packet is at least 12 bytes"
    );
    if let Some(extension) = packet.extension {
        for element in extension.elements().flatten() {
            assert!(element.data.len() <= extension.data.len());
        }
    }
    let _ = TelephoneEvent::parse(packet.payload);
    let mut out = vec![0u8; packet.encoded_len()];
    let n = packet
        .write(&mut out)
        .expect("a parsed packet can be written");
    assert_eq!(n, out.len());
    assert_eq!(RtpPacket::parse(&out), Ok(packet));
});
