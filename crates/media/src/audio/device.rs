//! The sound card, through cpal: ALSA, and PulseAudio (or PipeWire's
//! PulseAudio server) through cpal's pure-Rust client. (Being written.)

use super::{AudioError, MicStream, SpeakerStream};

/// One sound device as `ipphone devices` lists it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub host: String,
    pub name: String,
    pub input: bool,
    pub output: bool,
    pub default: bool,
}

/// Every sound device of every host cpal can reach.
pub fn list() -> Result<Vec<DeviceInfo>, AudioError> {
    Err(AudioError::NoDevice(
        "sound card support is not built yet".into(),
    ))
}

pub fn open_mic(_name: Option<&str>, _preferred_rate: u32) -> Result<MicStream, AudioError> {
    Err(AudioError::NoDevice(
        "sound card support is not built yet".into(),
    ))
}

pub fn open_speaker(
    _name: Option<&str>,
    _preferred_rate: u32,
) -> Result<SpeakerStream, AudioError> {
    Err(AudioError::NoDevice(
        "sound card support is not built yet".into(),
    ))
}
