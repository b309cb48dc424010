//! Fuzzes the RTP packet parser and the media-port demultiplexer. Beyond not
//! panicking: a parsed packet writes back to exactly its encoded length and
//! parses again to the same packet, and its payload can be read as a
//! telephone event, and as RFC 2198 redundancy (which, parsed, writes back
//! to the same bytes), without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::rtp::dtmf::TelephoneEvent;
use proto::rtp::header::{Demux, RtpPacket, demux};
use proto::rtp::red::{self, RedPayload};

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
    if let Ok(payload) = RedPayload::parse(packet.payload) {
        let blocks: Vec<_> = payload.redundant().copied().collect();
        let mut out = vec![0u8; packet.payload.len()];
        let n = red::write(&blocks, payload.primary.pt, payload.primary.data, &mut out)
            .expect("parsed blocks fit their headers");
        assert_eq!(&out[..n], packet.payload);
    }
    let mut out = vec![0u8; packet.encoded_len()];
    let n = packet
        .write(&mut out)
        .expect("a parsed packet can be written");
    assert_eq!(n, out.len());
    assert_eq!(RtpPacket::parse(&out), Ok(packet));
});
