//! The audio formats ipphone negotiates: Opus (RFC 7587), G.711 µ-law and
//! A-law (RFC 3551 §4.5.14), telephone events (RFC 4733 §7) and redundant
//! audio (RFC 2198 §5, RFC 4102).

use std::fmt;

use super::model::{Fmtp, FmtpParam, RtpFormat};
use crate::rtp::Pt;

/// Encoding name of RFC 4733 telephone events.
pub const TELEPHONE_EVENT: &str = "telephone-event";

/// The events ipphone sends and understands: the 16 DTMF events (RFC 4733 §3.2).
pub const TELEPHONE_EVENTS: &str = "0-15";

/// Encoding name of RFC 2198 redundant audio (`audio/red`, RFC 4102).
pub const RED: &str = "red";

/// Dynamic payload type ipphone offers Opus with (WebRTC's choice too).
pub const OPUS_PT: Pt = Pt(111);

/// Dynamic payload type ipphone offers telephone-event/8000 with.
pub const TELEPHONE_EVENT_PT: Pt = Pt(101);

/// An audio codec ipphone can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus: RTP clock 48000 and `/2` in `rtpmap` whatever is sent (RFC 7587 §4.1, §7).
    Opus,
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

/// Opus format parameters (RFC 7587 §6.1). Each side's parameters describe
/// what it wants to *receive*: the far end's tell us how to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OpusParams {
    /// `useinbandfec=1`: the receiver can use in-band FEC, so send it.
    pub useinbandfec: bool,
    /// `usedtx=1`: the receiver prefers discontinuous transmission.
    pub usedtx: bool,
    /// `maxaveragebitrate`: the most the receiver wants, in bit/s.
    pub maxaveragebitrate: Option<u32>,
    /// `stereo=1`: the receiver prefers stereo.
    pub stereo: bool,
    /// `sprop-stereo=1`: the sender is likely to send stereo.
    pub sprop_stereo: bool,
    /// `maxplaybackrate`: the highest audio bandwidth worth sending, in Hz.
    pub maxplaybackrate: Option<u32>,
    /// `minptime`: the shortest packet duration the receiver wants, in ms.
    pub minptime: Option<u32>,
}

impl Codec {
    /// Every codec, in ipphone's default order of preference.
    pub const ALL: [Codec; 3] = [Codec::Opus, Codec::Pcmu, Codec::Pcma];

    /// The `rtpmap` encoding name, as ipphone writes it.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The RTP clock rate (not the sample rate the codec runs at).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Pcmu | Codec::Pcma => 8_000,
        }
    }

    /// The `rtpmap` channel count, if written.
    pub fn rtpmap_channels(self) -> Option<u16> {
        match self {
            Codec::Opus => Some(2),
            Codec::Pcmu | Codec::Pcma => None,
        }
    }

    /// The payload type ipphone offers the codec with.
    pub fn default_pt(self) -> Pt {
        match self {
            Codec::Opus => OPUS_PT,
            Codec::Pcmu => Pt(0),
            Codec::Pcma => Pt(8),
        }
    }

    /// Whether `format` is this codec. Encoding names compare without case;
    /// G.711 must be mono, Opus may omit its `/2` (which RFC 7587 requires,
    /// but some stacks leave out).
    pub fn matches(self, format: &RtpFormat) -> bool {
        if !format.encoding.eq_ignore_ascii_case(self.encoding_name())
            || format.clock_rate != self.clock_rate()
        {
            return false;
        }
        match self {
            Codec::Opus => matches!(format.channels, None | Some(2)),
            Codec::Pcmu | Codec::Pcma => matches!(format.channels, None | Some(1)),
        }
    }

    /// The codec `format` is, if ipphone has it.
    pub fn of(format: &RtpFormat) -> Option<Codec> {
        Codec::ALL.into_iter().find(|codec| codec.matches(format))
    }

    /// The format as ipphone offers it.
    pub fn rtp_format(self) -> RtpFormat {
        RtpFormat {
            pt: self.default_pt(),
            encoding: self.encoding_name().to_owned(),
            clock_rate: self.clock_rate(),
            channels: self.rtpmap_channels(),
        }
    }
}

/// Whether `format` is telephone-event (at any clock rate).
pub fn is_telephone_event(format: &RtpFormat) -> bool {
    format.encoding.eq_ignore_ascii_case(TELEPHONE_EVENT)
}

/// Whether `format` is RFC 2198 redundant audio (at any clock rate).
pub fn is_red(format: &RtpFormat) -> bool {
    format.encoding.eq_ignore_ascii_case(RED)
}

/// Whether a `red` format's `fmtp` carries only `pt`: the primary encoding
/// and at least one redundant copy of it, `pt/pt[/pt...]` (RFC 2198 §5, as
/// WebRTC writes it for Opus: `111/111`), with no more copies than
/// [`crate::rtp::red::MAX_BLOCKS`], what ipphone's receiver takes. A
/// redundant block in another encoding, or any other shape, is RED ipphone
/// does not send or decode.
pub fn red_protects(fmtp: &Fmtp, pt: Pt) -> bool {
    let [param] = fmtp.params.as_slice() else {
        return false;
    };
    if param.value.is_some() {
        return false;
    }
    let mut blocks = 0usize;
    for block in param.name.split('/') {
        if block.trim().parse::<u8>().ok() != Some(pt.0) {
            return false;
        }
        blocks += 1;
    }
    (2..=crate::rtp::red::MAX_BLOCKS + 1).contains(&blocks)
}

/// The `fmtp` parameters of a `red` format carrying `pt` and one redundant
/// copy of it: `pt/pt` (RFC 2198 §5).
pub fn red_params(pt: Pt) -> Vec<FmtpParam> {
    vec![FmtpParam {
        name: format!("{pt}/{pt}"),
        value: None,
    }]
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rtp_format().fmt(f)
    }
}

impl OpusParams {
    /// The parameters of an Opus `fmtp`; unknown and malformed ones are
    /// ignored (RFC 7587 §6.1 defaults then apply).
    pub fn from_fmtp(fmtp: &Fmtp) -> Self {
        let flag = |name| fmtp.param(name).is_some_and(|v| v.trim() == "1");
        let number = |name| fmtp.param(name).and_then(|v| v.trim().parse().ok());
        OpusParams {
            useinbandfec: flag("useinbandfec"),
            usedtx: flag("usedtx"),
            maxaveragebitrate: number("maxaveragebitrate"),
            stereo: flag("stereo"),
            sprop_stereo: flag("sprop-stereo"),
            maxplaybackrate: number("maxplaybackrate"),
            minptime: number("minptime"),
        }
    }

    /// The `fmtp` parameters that differ from the defaults.
    pub fn to_params(&self) -> Vec<FmtpParam> {
        let mut params = Vec::new();
        if let Some(rate) = self.maxplaybackrate {
            params.push(FmtpParam::new("maxplaybackrate", rate));
        }
        if self.stereo {
            params.push(FmtpParam::new("stereo", 1));
        }
        if self.sprop_stereo {
            params.push(FmtpParam::new("sprop-stereo", 1));
        }
        if let Some(rate) = self.maxaveragebitrate {
            params.push(FmtpParam::new("maxaveragebitrate", rate));
        }
        if let Some(ms) = self.minptime {
            params.push(FmtpParam::new("minptime", ms));
        }
        if self.useinbandfec {
            params.push(FmtpParam::new("useinbandfec", 1));
        }
        if self.usedtx {
            params.push(FmtpParam::new("usedtx", 1));
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::model::Attribute;

    fn format(encoding: &str, clock_rate: u32, channels: Option<u16>) -> RtpFormat {
        RtpFormat {
            pt: Pt(96),
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        }
    }

    #[test]
    fn codecs_match_by_name_rate_and_channels() {
        assert_eq!(
            Codec::of(&format("OPUS", 48000, Some(2))),
            Some(Codec::Opus)
        );
        assert_eq!(Codec::of(&format("opus", 48000, None)), Some(Codec::Opus));
        assert_eq!(Codec::of(&format("opus", 16000, Some(2))), None);
        assert_eq!(Codec::of(&format("pcmu", 8000, Some(1))), Some(Codec::Pcmu));
        assert_eq!(Codec::of(&format("PCMA", 8000, None)), Some(Codec::Pcma));
        assert_eq!(Codec::of(&format("PCMA", 8000, Some(2))), None);
        assert_eq!(Codec::of(&format("G729", 8000, None)), None);
        assert!(is_telephone_event(&format("Telephone-Event", 48000, None)));
        assert_eq!(Codec::Opus.to_string(), "opus/48000/2");
        assert_eq!(Codec::Pcma.to_string(), "PCMA/8000");
    }

    #[test]
    fn red_fmtp_names_one_codec_twice_or_more() {
        let fmtp = |value: &str| match Attribute::parse(&format!("fmtp:63 {value}")) {
            Attribute::Fmtp(fmtp) => fmtp,
            other => panic!("an fmtp attribute, not {other:?}"),
        };
        assert!(red_protects(&fmtp("111/111"), Pt(111)));
        assert!(red_protects(&fmtp("0/0/0"), Pt(0)));
        assert!(red_protects(&fmtp("96 / 96"), Pt(96)));
        // The primary and four copies, the most a packet may carry here.
        assert!(red_protects(&fmtp("0/0/0/0/0"), Pt(0)));
        assert!(!red_protects(&fmtp("0/0/0/0/0/0"), Pt(0)));
        for other in [
            "111",
            "111/0",
            "0/111",
            "111/111;x=1",
            "a=111/111",
            "111//111",
            "",
            "/",
        ] {
            assert!(!red_protects(&fmtp(other), Pt(111)), "{other}");
        }
        assert!(!red_protects(&fmtp("111/111"), Pt(96)));
        let written = Fmtp {
            pt: Pt(63),
            params: red_params(Pt(111)),
        };
        assert_eq!(written.to_string(), "63 111/111");
        assert!(red_protects(&written, Pt(111)));
        assert!(is_red(&format("RED", 8000, None)));
        assert_eq!(Codec::of(&format("red", 48000, Some(2))), None);
    }

    #[test]
    fn opus_params_read_and_write_rfc_7587_names() {
        let Attribute::Fmtp(fmtp) = Attribute::parse(
            "fmtp:96 stereo=1; sprop-stereo=1;maxaveragebitrate=28000;useinbandfec=0;\
             MaxPlaybackRate=16000;minptime=10;usedtx=1;cbr=1",
        ) else {
            panic!("an fmtp attribute");
        };
        let params = OpusParams::from_fmtp(&fmtp);
        assert_eq!(
            params,
            OpusParams {
                useinbandfec: false,
                usedtx: true,
                maxaveragebitrate: Some(28000),
                stereo: true,
                sprop_stereo: true,
                maxplaybackrate: Some(16000),
                minptime: Some(10),
            }
        );
        let again = Fmtp {
            pt: Pt(96),
            params: params.to_params(),
        };
        assert_eq!(OpusParams::from_fmtp(&again), params);
        assert_eq!(
            again.to_string(),
            "96 maxplaybackrate=16000;stereo=1;sprop-stereo=1;maxaveragebitrate=28000;minptime=10;usedtx=1"
        );
    }
}
