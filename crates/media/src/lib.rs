//! ipphone's media layer: where samples come from and go to, and what is done
//! to them on the way.
//!
//! - [`audio`]: one backend interface (sound card, WAV file, null) behind
//!   lock-free rings, and the shared code above the rings that resamples and
//!   paces the audio for a call.
//! - [`codec`]: the codecs a call speaks and the resampler.
//! - [`dsp`]: test signals and measurement (cross-correlation delay).
//! - [`voice`]: a call's audio on either side of RTP: encoder, and jitter
//!   buffer with decoder, concealment and time-stretching.
//! - [`rate`]: the sender's rate adaptation: Opus bitrate, packet time and
//!   FEC from the far end's reports.
//!
//! This is the only ipphone crate that talks to C libraries (ALSA, LAME).

pub mod audio;
pub mod codec;
pub mod dsp;
pub mod rate;
pub mod voice;
