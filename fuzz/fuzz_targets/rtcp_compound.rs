//! Fuzzes the RTCP compound parser. Beyond not panicking: the iterator and
//! `parse_compound` agree, and a parsed compound that can be written back
//! (padding dropped, whole words) parses again to the same packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::rtp::rtcp::{Compound, is_rfc3550_compound, parse_compound, write_compound};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_compound(data);
    let iterated: Result<Vec<_>, _> = Compound::new(data).collect();
    if !data.is_empty() {
        assert_eq!(parsed, iterated);
    }
    let Ok(packets) = parsed else {
        return;
    };
    let _ = is_rfc3550_compound(&packets);
    let len: usize = packets.iter().map(|p| p.encoded_len()).sum();
    let mut out = vec![0u8; len];
    if let Ok(n) = write_compound(&packets, &mut out) {
        assert_eq!(n, len);
        let again = parse_compound(&out).expect("written packets parse");
        assert_eq!(again.len(), packets.len());
        let mut out2 = vec![0u8; len];
        write_compound(&again, &mut out2).expect("and write again");
        assert_eq!(out, out2, "writing is a fixed point after one round");
    }
});
