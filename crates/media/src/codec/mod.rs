//! Codecs and sample-rate conversion.
//!
//! Codecs write into caller-provided buffers and never block.

pub mod error;
pub mod g711;
mod libopus;
pub mod mp3;
pub mod opus;
pub mod resample;
