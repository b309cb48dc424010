//! The article's raw stream: unsigned 8-bit PCM at 8 kHz, mono.
//!
//! A byte is one sample; 128 is silence. There is no framing, so any byte
//! sequence is a valid stream and decoding cannot fail.

/// Sample rate of the raw stream, in Hz.
pub const SAMPLE_RATE: u32 = 8_000;

/// Converts one linear 16-bit sample to the stream's unsigned 8-bit form.
///
/// Rounds to the nearest 8-bit step rather than truncating, so that quiet
/// speech does not pick up a constant offset.
pub fn encode_sample(sample: i16) -> u8 {
    let rounded = (i32::from(sample) + 128).clamp(i32::from(i16::MIN), i32::from(i16::MAX));
    ((rounded >> 8) + 128) as u8
}

/// Converts one byte of the stream to a linear 16-bit sample.
pub fn decode_sample(byte: u8) -> i16 {
    (i16::from(byte) - 128) << 8
}

/// Encodes `pcm` into `out`, one byte per sample. `out` must be as long as `pcm`.
pub fn encode(pcm: &[i16], out: &mut [u8]) {
    debug_assert_eq!(pcm.len(), out.len(), "one byte per sample");
    for (byte, &sample) in out.iter_mut().zip(pcm) {
        *byte = encode_sample(sample);
    }
}

/// Decodes `bytes` into `out`, one sample per byte. `out` must be as long as `bytes`.
pub fn decode(bytes: &[u8], out: &mut [i16]) {
    debug_assert_eq!(bytes.len(), out.len(), "one sample per byte");
    for (sample, &byte) in out.iter_mut().zip(bytes) {
        *sample = decode_sample(byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_128() {
        assert_eq!(encode_sample(0), 128);
        assert_eq!(decode_sample(128), 0);
    }

    #[test]
    fn every_byte_round_trips() {
        for byte in 0..=255u8 {
            assert_eq!(encode_sample(decode_sample(byte)), byte);
        }
    }

    #[test]
    fn extremes_clamp_instead_of_wrapping() {
        assert_eq!(encode_sample(i16::MAX), 255);
        assert_eq!(encode_sample(i16::MIN), 0);
        assert_eq!(encode_sample(32_700), 255);
    }

    #[test]
    fn rounds_to_nearest_step() {
        assert_eq!(encode_sample(127), 128);
        assert_eq!(encode_sample(128), 129);
        assert_eq!(encode_sample(-128), 128);
        assert_eq!(encode_sample(-129), 127);
    }
}
