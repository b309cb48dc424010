//! Fuzzes the tcp-mp3 decoder (framer, nanomp3, downmix, resampler) with
//! arbitrary bytes in arbitrary pieces: it must never panic, and its output
//! must stay in proportion to its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media::codec::mp3::Mp3Decoder;

fuzz_target!(|input: (Vec<u16>, Vec<u8>)| {
    let (pieces, bytes) = input;
    let mut decoder = Mp3Decoder::new();
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    let mut sizes = pieces.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().map_or(rest.len(), |&s| usize::from(s).max(1));
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        decoder.decode(piece, &mut out);
        rest = tail;
    }
    let stats = decoder.stats();
    // Each frame starts at its own byte, and none makes more than 1152
    // samples at 16 kHz (576 at 8 kHz, or MPEG-2 layer II's 1152 at 16 kHz).
    assert!(stats.frames <= bytes.len() as u64);
    assert!(out.len() as u64 <= (stats.frames + 1) * 1152);
});
