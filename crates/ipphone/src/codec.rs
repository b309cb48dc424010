//! The audio format each call protocol puts on the wire, behind one
//! encoder and one decoder interface.

use media::codec::mp3::{Mp3Decoder, Mp3Encoder};
use proto::legacy::pcm;

use crate::cli::Protocol;

/// Turns the microphone's samples into bytes for the wire.
pub trait StreamEncoder: Send {
    /// Samples handed to [`encode`](Self::encode) at a time: 10 ms.
    fn frame_samples(&self) -> usize;
    /// Appends the bytes ready to send (possibly none) to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), String>;
}

/// Turns bytes from the wire back into samples. Any byte sequence is
/// accepted: what cannot be decoded is skipped.
pub trait StreamDecoder: Send {
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<i16>);
}

/// The sample rate the protocol carries.
pub fn rate(protocol: Protocol) -> u32 {
    match protocol {
        Protocol::TcpPcm => pcm::SAMPLE_RATE,
        Protocol::TcpMp3 => media::codec::mp3::SAMPLE_RATE,
        Protocol::Rtp | Protocol::Sip => {
            unreachable!("RTP calls do not use the TCP stream formats")
        }
    }
}

pub fn encoder(protocol: Protocol) -> Box<dyn StreamEncoder> {
    match protocol {
        Protocol::TcpPcm => Box::new(RawPcm),
        Protocol::TcpMp3 => Box::new(Mp3Out(None)),
        Protocol::Rtp | Protocol::Sip => {
            unreachable!("RTP calls do not use the TCP stream formats")
        }
    }
}

pub fn decoder(protocol: Protocol) -> Box<dyn StreamDecoder> {
    match protocol {
        Protocol::TcpPcm => Box::new(RawPcm),
        Protocol::TcpMp3 => Box::new(Mp3Decoder::new()),
        Protocol::Rtp | Protocol::Sip => {
            unreachable!("RTP calls do not use the TCP stream formats")
        }
    }
}

struct RawPcm;

impl StreamEncoder for RawPcm {
    fn frame_samples(&self) -> usize {
        (pcm::SAMPLE_RATE / 100) as usize
    }

    fn encode(&mut self, samples: &[i16], out: &mut Vec<u8>) -> Result<(), String> {
        let start = out.len();
        out.resize(start + samples.len(), 0);
        pcm::encode(samples, &mut out[start..]);
        Ok(())
    }
}

impl StreamDecoder for RawPcm {
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<i16>) {
        let start = out.len();
        out.resize(start + bytes.len(), 0);
        pcm::decode(bytes, &mut out[start..]);
    }
}

/// LAME is set up on first use, on the sending thread.
struct Mp3Out(Option<Mp3Encoder>);

impl StreamEncoder for Mp3Out {
    fn frame_samples(&self) -> usize {
        (media::codec::mp3::SAMPLE_RATE / 100) as usize
    }

    fn encode(&mut self, samples: &[i16], out: &mut Vec<u8>) -> Result<(), String> {
        let encoder = match &mut self.0 {
            Some(e) => e,
            None => self.0.insert(Mp3Encoder::new().map_err(|e| e.to_string())?),
        };
        encoder.encode(samples, out).map_err(|e| e.to_string())
    }
}

impl StreamDecoder for Mp3Decoder {
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<i16>) {
        Mp3Decoder::decode(self, bytes, out);
    }
}
