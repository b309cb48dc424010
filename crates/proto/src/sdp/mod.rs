//! SDP (RFC 4566/8866) and the offer/answer model (RFC 3264).
//!
//! - [`model`]: the description's types, printed with CRLF by `Display`.
//! - [`parse`]: a lenient parser that never panics (LF or CRLF, unknown
//!   lines skipped, unknown attributes kept verbatim).
//! - [`codec`]: the formats ipphone negotiates (Opus, PCMU, PCMA,
//!   telephone-event, RFC 2198 redundancy) and Opus's format parameters
//!   (RFC 7587).
//! - [`offer_answer`]: offers, answers, hold and resume for one audio
//!   stream, ending in a [`Negotiated`] the media stream is set up from.

pub mod codec;
pub mod model;
pub mod offer_answer;
pub mod parse;

pub use codec::{Codec, OpusParams};
pub use model::{
    Attribute, Bandwidth, Connection, Direction, Fmtp, FmtpParam, MediaDescription, Origin,
    RtcpAttribute, RtpFormat, Rtpmap, SessionDescription, Timing,
};
pub use offer_answer::{
    Answer, Host, LocalMedia, Negotiated, NegotiationError, OfferAnswer, RedFormat,
    TelephoneEventFormat, TransportAddr,
};
pub use parse::SdpError;

/// Descriptions from real peers, shared by the tests of this module.
#[cfg(test)]
pub(crate) mod fixtures {
    /// baresip 1.0's offer with Opus (FACTS.md: stereo, sprop-stereo,
    /// maxaveragebitrate 28000), G.711, telephone-event and best-effort SDES
    /// (`mediaenc=srtp`: `a=crypto` in RTP/AVP). Lines and order as baresip
    /// 1.0.0 writes them; Opus on its first dynamic payload type, 96.
    pub(crate) const BARESIP_OFFER: &str = "v=0\r\n\
        o=- 1975181172 1106161735 IN IP4 192.168.1.23\r\n\
        s=-\r\n\
        c=IN IP4 192.168.1.23\r\n\
        t=0 0\r\n\
        a=tool:baresip 1.0.0\r\n\
        m=audio 16796 RTP/AVP 96 0 8 101\r\n\
        a=rtpmap:96 opus/48000/2\r\n\
        a=fmtp:96 stereo=1;sprop-stereo=1;maxaveragebitrate=28000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n\
        a=sendrecv\r\n\
        a=label:1\r\n\
        a=rtcp-rsize\r\n\
        a=ssrc:2736692082 cname:sip:b@example.com\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:vXMep/SIW4iMD21StWgrmy024dJZfOAM7qFFJfsJ\r\n\
        a=minptime:20\r\n\
        a=ptime:20\r\n";
}
