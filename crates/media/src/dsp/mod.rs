//! Signal processing that is not a codec: test signals and measurement.

pub mod correlate;
pub mod signal;
pub mod stretch;
pub mod tones;
pub mod vad;
