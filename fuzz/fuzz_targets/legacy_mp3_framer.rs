//! Fuzzes the tcp-mp3 framer: arbitrary bytes pushed in arbitrary pieces.
//! Beyond not panicking, it must keep its promises: every frame handed out
//! is a whole frame behind a valid header, its buffer stays bounded, and
//! polling it dry always makes room for more bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::legacy::mp3::{Expect, FRAMER_CAPACITY, FrameHeader, Framer, MAX_FRAME_LEN};

fuzz_target!(|input: (Vec<u16>, Vec<u8>)| {
    let (pieces, bytes) = input;
    let mut framer = Framer::new(Expect::TCP_MP3);
    let mut rest = &bytes[..];
    let mut sizes = pieces.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().map_or(rest.len(), |&s| usize::from(s).max(1));
        let piece = &rest[..size.min(rest.len())];
        let taken = framer.push(piece);
        rest = &rest[taken..];
        while let Some(frame) = framer.poll_frame() {
            let header = FrameHeader::parse(frame.bytes).expect("a frame starts with its header");
            assert_eq!(header, frame.header);
            assert_eq!(frame.bytes.len(), header.frame_len());
        }
        if taken < piece.len() {
            // Polled dry, the framer must have room again (see `Framer`).
            let more = framer.push(rest);
            assert!(more >= rest.len().min(FRAMER_CAPACITY - 2 * MAX_FRAME_LEN - 4));
            rest = &rest[more..];
        }
    }
});
