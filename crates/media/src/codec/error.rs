//! Errors shared by the codecs.

use thiserror::Error;

/// Why a codec could not be set up, encode or decode.
///
/// The C libraries' own errors are kept as text: their error types do not
/// implement `std::error::Error` without features that ipphone does not need.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The codec library refused the settings or could not allocate: a bug or
    /// a broken build, since ipphone only asks for fixed, supported settings.
    #[error("could not set up the {codec} codec: {reason}")]
    Setup { codec: &'static str, reason: String },
    /// The codec library failed while encoding.
    #[error("{codec} encoding failed: {reason}")]
    Encode { codec: &'static str, reason: String },
    /// The caller handed a frame of the wrong length: a bug in ipphone.
    #[error("{codec} takes frames of {expected} samples, not {got}")]
    FrameLength {
        codec: &'static str,
        expected: usize,
        got: usize,
    },
    /// The caller's output buffer is too small: a bug in ipphone.
    #[error("{codec} needs room for {needed} but the buffer holds {available}")]
    BufferTooSmall {
        codec: &'static str,
        needed: usize,
        available: usize,
    },
    /// A packet from the network did not decode: malformed, or from a
    /// stream the decoder was not set up for. Drop it and conceal.
    #[error("{codec} decoding failed: {reason}")]
    Decode { codec: &'static str, reason: String },
}
