//! Errors shared by the codecs.

use thiserror::Error;

/// Why a codec could not be set up or could not encode.
///
/// The C libraries' own errors are kept as text: their error types do not
/// implement `std::error::Error` without features that ipphone does not need.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The codec library refused the settings or could not allocate: a bug or
    /// a broken build, since ipphone only asks for fixed, supported settings.
    #[error("could not set up the {codec} encoder: {reason}")]
    Setup { codec: &'static str, reason: String },
    /// The codec library failed while encoding.
    #[error("{codec} encoding failed: {reason}")]
    Encode { codec: &'static str, reason: String },
}
