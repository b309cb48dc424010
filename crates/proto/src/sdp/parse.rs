//! A lenient SDP parser (RFC 8866 §5, §9).
//!
//! Lines may end in CRLF or a bare LF; blank lines, lines that are not
//! `<letter>=<value>`, and the lines a telephone has no use for (`u=`, `e=`,
//! `p=`, `r=`, `z=`, `k=`, further `t=`) are skipped. A known attribute whose
//! value does not parse is kept verbatim as [`Attribute::Other`]. Only what
//! makes a description unusable is an error: no origin, a malformed
//! connection, an `m=` line without port or transport, or no `m=` line.

use std::str::FromStr;

use thiserror::Error;

use super::model::{
    Attribute, Bandwidth, Connection, Direction, Fmtp, FmtpParam, MediaDescription, Origin,
    RtcpAttribute, Rtpmap, SessionDescription, Timing,
};
use crate::rtp::Pt;

/// Why a description cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("the session description has no o= line")]
    MissingOrigin,
    #[error(
        "malformed o= line {0:?}: expected `<user> <id> <version> <nettype> <addrtype> <address>`"
    )]
    BadOrigin(String),
    #[error("malformed c= line {0:?}: expected `<nettype> <addrtype> <address>`")]
    BadConnection(String),
    #[error("malformed m= line {0:?}: expected `<media> <port> <proto> <formats>`")]
    BadMedia(String),
    #[error("bad port in m= line {0:?}: expected 0-65535")]
    BadPort(String),
    #[error("the session description has no m= line: nothing to negotiate")]
    NoMedia,
}

impl SessionDescription {
    /// Parses a description; see the module documentation for what is forgiven.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut origin = None;
        let mut session_name = None;
        let mut info = None;
        let mut connection = None;
        let mut bandwidths = Vec::new();
        let mut timing = None;
        let mut attributes = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();

        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_alphabetic() {
                continue;
            }
            let kind = bytes[0];
            let value = &line[2..];
            if kind == b'm' {
                media.push(parse_media(value)?);
                continue;
            }
            if let Some(current) = media.last_mut() {
                match kind {
                    b'i' if current.info.is_none() => current.info = Some(value.to_owned()),
                    b'c' if current.connection.is_none() => {
                        current.connection = Some(parse_connection(value)?);
                    }
                    b'b' => current.bandwidths.extend(parse_bandwidth(value)),
                    b'a' => current.attributes.push(Attribute::parse(value)),
                    _ => {}
                }
                continue;
            }
            match kind {
                b'o' if origin.is_none() => origin = Some(parse_origin(value)?),
                b's' if session_name.is_none() => session_name = Some(value.to_owned()),
                b'i' if info.is_none() => info = Some(value.to_owned()),
                b'c' if connection.is_none() => connection = Some(parse_connection(value)?),
                b'b' => bandwidths.extend(parse_bandwidth(value)),
                b't' if timing.is_none() => timing = parse_timing(value),
                b'a' => attributes.push(Attribute::parse(value)),
                _ => {}
            }
        }

        let origin = origin.ok_or(SdpError::MissingOrigin)?;
        if media.is_empty() {
            return Err(SdpError::NoMedia);
        }
        Ok(SessionDescription {
            origin,
            session_name: session_name.unwrap_or_default(),
            info,
            connection,
            bandwidths,
            timing: timing.unwrap_or_default(),
            attributes,
            media,
        })
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(text: &str) -> Result<Self, SdpError> {
        SessionDescription::parse(text)
    }
}

impl Attribute {
    /// Parses the text after `a=`. Never fails: what is not understood is
    /// kept as [`Attribute::Other`].
    pub fn parse(text: &str) -> Attribute {
        let (name, value) = match text.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (text, None),
        };
        let typed = match (name, value) {
            ("rtpmap", Some(value)) => parse_rtpmap(value).map(Attribute::Rtpmap),
            ("fmtp", Some(value)) => parse_fmtp(value).map(Attribute::Fmtp),
            ("ptime", Some(value)) => value.trim().parse().ok().map(Attribute::Ptime),
            ("maxptime", Some(value)) => value.trim().parse().ok().map(Attribute::MaxPtime),
            ("rtcp", Some(value)) => parse_rtcp(value).map(Attribute::Rtcp),
            ("rtcp-mux", None) => Some(Attribute::RtcpMux),
            ("sendrecv", None) => Some(Attribute::Direction(Direction::SendRecv)),
            ("sendonly", None) => Some(Attribute::Direction(Direction::SendOnly)),
            ("recvonly", None) => Some(Attribute::Direction(Direction::RecvOnly)),
            ("inactive", None) => Some(Attribute::Direction(Direction::Inactive)),
            _ => None,
        };
        typed.unwrap_or_else(|| Attribute::Other {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        })
    }
}

fn parse_origin(value: &str) -> Result<Origin, SdpError> {
    let bad = || SdpError::BadOrigin(value.to_owned());
    let tokens: Vec<&str> = value.split_ascii_whitespace().collect();
    // Some stacks put spaces in the username: the last five fields are fixed.
    let Some(split) = tokens.len().checked_sub(5).filter(|&n| n > 0) else {
        return Err(bad());
    };
    let (user, fields) = tokens.split_at(split);
    let session_version = fields[1].parse().map_err(|_| bad())?;
    Ok(Origin {
        username: user.join(" "),
        session_id: fields[0].to_owned(),
        session_version,
        nettype: fields[2].to_owned(),
        addrtype: fields[3].to_owned(),
        address: fields[4].to_owned(),
    })
}

fn parse_connection(value: &str) -> Result<Connection, SdpError> {
    let mut tokens = value.split_ascii_whitespace();
    match (tokens.next(), tokens.next(), tokens.next(), tokens.next()) {
        (Some(nettype), Some(addrtype), Some(address), None) => Ok(Connection {
            nettype: nettype.to_owned(),
            addrtype: addrtype.to_owned(),
            address: address.to_owned(),
        }),
        _ => Err(SdpError::BadConnection(value.to_owned())),
    }
}

fn parse_bandwidth(value: &str) -> Option<Bandwidth> {
    let (bwtype, bandwidth) = value.split_once(':')?;
    Some(Bandwidth {
        bwtype: bwtype.to_owned(),
        bandwidth: bandwidth.trim().parse().ok()?,
    })
}

fn parse_timing(value: &str) -> Option<Timing> {
    let mut tokens = value.split_ascii_whitespace();
    Some(Timing {
        start: tokens.next()?.parse().ok()?,
        stop: tokens.next()?.parse().ok()?,
    })
}

fn parse_media(value: &str) -> Result<MediaDescription, SdpError> {
    let mut tokens = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(SdpError::BadMedia(value.to_owned()));
    };
    let bad_port = || SdpError::BadPort(value.to_owned());
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(count.parse().map_err(|_| bad_port())?)),
        None => (port, None),
    };
    Ok(MediaDescription {
        media: media.to_owned(),
        port: port.parse().map_err(|_| bad_port())?,
        port_count,
        proto: proto.to_owned(),
        formats: tokens.map(str::to_owned).collect(),
        info: None,
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
    })
}

/// The payload type at the front of an `rtpmap` or `fmtp` value, and the rest.
fn split_pt(value: &str) -> Option<(Pt, &str)> {
    let value = value.trim_start();
    let end = value
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(value.len());
    let pt: u8 = value[..end].parse().ok()?;
    (pt <= 127).then(|| (Pt(pt), value[end..].trim()))
}

fn parse_rtpmap(value: &str) -> Option<Rtpmap> {
    let (pt, rest) = split_pt(value)?;
    let mut parts = rest.split('/');
    let encoding = parts.next().filter(|e| !e.is_empty())?;
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = match parts.next() {
        Some(channels) => Some(channels.parse().ok()?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(Rtpmap {
        pt,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

fn parse_fmtp(value: &str) -> Option<Fmtp> {
    let (pt, rest) = split_pt(value)?;
    let params = rest
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((name, value)) => FmtpParam {
                name: name.trim().to_owned(),
                value: Some(value.trim().to_owned()),
            },
            None => FmtpParam {
                name: p.to_owned(),
                value: None,
            },
        })
        .collect();
    Some(Fmtp { pt, params })
}

fn parse_rtcp(value: &str) -> Option<RtcpAttribute> {
    let mut tokens = value.split_ascii_whitespace();
    let port = tokens.next()?.parse().ok()?;
    let connection = match (tokens.next(), tokens.next(), tokens.next(), tokens.next()) {
        (None, ..) => None,
        (Some(nettype), Some(addrtype), Some(address), None) => Some(Connection {
            nettype: nettype.to_owned(),
            addrtype: addrtype.to_owned(),
            address: address.to_owned(),
        }),
        _ => return None,
    };
    Some(RtcpAttribute { port, connection })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::header::tests::XorShift;
    use crate::sdp::fixtures::BARESIP_OFFER;
    use crate::sdp::model::RtpFormat;

    /// RFC 8866 §5's example description.
    const RFC8866_EXAMPLE: &str = "v=0\r\n\
        o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\n\
        s=Call to John Smith\r\n\
        i=SDP Offer #1\r\n\
        u=http://www.jdoe.example.com/home.html\r\n\
        e=Jane Doe <jane@jdoe.example.com>\r\n\
        p=+1 617 555-6011\r\n\
        c=IN IP4 198.51.100.1\r\n\
        t=0 0\r\n\
        m=audio 49170 RTP/AVP 0\r\n\
        m=audio 49180 RTP/AVP 0\r\n\
        m=video 51372 RTP/AVP 99\r\n\
        c=IN IP6 2001:db8::2\r\n\
        a=rtpmap:99 h263-1998/90000\r\n";

    #[test]
    fn rfc8866_example() {
        let sdp = SessionDescription::parse(RFC8866_EXAMPLE).unwrap();
        assert_eq!(
            sdp.origin,
            Origin {
                username: "jdoe".into(),
                session_id: "3724394400".into(),
                session_version: 3724394405,
                nettype: "IN".into(),
                addrtype: "IP4".into(),
                address: "198.51.100.1".into(),
            }
        );
        assert_eq!(sdp.session_name, "Call to John Smith");
        assert_eq!(sdp.info.as_deref(), Some("SDP Offer #1"));
        assert_eq!(sdp.timing, Timing { start: 0, stop: 0 });
        assert_eq!(sdp.media.len(), 3);
        let video = &sdp.media[2];
        assert_eq!(
            (video.media.as_str(), video.port, video.proto.as_str()),
            ("video", 51372, "RTP/AVP")
        );
        assert_eq!(video.formats, ["99"]);
        let v6 = sdp.media_connection(video).unwrap();
        assert_eq!(v6.ip(), Some("2001:db8::2".parse().unwrap()));
        let audio = &sdp.media[0];
        assert_eq!(
            sdp.media_connection(audio).unwrap().ip(),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(sdp.media_direction(audio), Direction::SendRecv);
        // PT 0 has no rtpmap: the static table names it.
        assert_eq!(
            audio.rtp_formats(),
            [RtpFormat {
                pt: Pt(0),
                encoding: "PCMU".into(),
                clock_rate: 8000,
                channels: None,
            }]
        );
        assert_eq!(
            video.rtp_format(Pt(99)).unwrap().describe(),
            "h263-1998/90000"
        );
        // u=, e= and p= are not kept; everything else prints back as it came.
        let printed = sdp.to_string();
        let expected: String = RFC8866_EXAMPLE
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with(['u', 'e', 'p']))
            .collect();
        assert_eq!(printed, expected);
    }

    #[test]
    fn baresip_offer_round_trips_byte_for_byte() {
        let sdp = SessionDescription::parse(BARESIP_OFFER).unwrap();
        assert_eq!(sdp.to_string(), BARESIP_OFFER);
        let audio = &sdp.media[0];
        assert_eq!(
            audio.rtpmap(Pt(96)),
            Some(&Rtpmap {
                pt: Pt(96),
                encoding: "opus".into(),
                clock_rate: 48000,
                channels: Some(2),
            })
        );
        let fmtp = audio.fmtp(Pt(96)).unwrap();
        assert_eq!(fmtp.param("maxaveragebitrate"), Some("28000"));
        assert_eq!(fmtp.param("STEREO"), Some("1"));
        assert_eq!(audio.fmtp(Pt(101)).unwrap().param("0-15"), Some(""));
        assert_eq!(audio.ptime(), Some(20));
        assert_eq!(audio.direction(), Some(Direction::SendRecv));
        assert!(!audio.rtcp_mux());
        assert_eq!(
            audio.attribute("crypto"),
            Some("1 AES_CM_128_HMAC_SHA1_80 inline:vXMep/SIW4iMD21StWgrmy024dJZfOAM7qFFJfsJ")
        );
        assert_eq!(audio.attribute("rtcp-rsize"), Some(""));
        assert_eq!(
            sdp.attributes,
            [Attribute::Other {
                name: "tool".into(),
                value: Some("baresip 1.0.0".into()),
            }]
        );
    }

    #[test]
    fn bare_lf_and_junk_lines_are_forgiven() {
        let text = "v=0\n\
            o=- 1 2 IN IP6 ::1\n\
            \n\
            this is not SDP\n\
            s=\n\
            c=IN IP6 ::1\n\
            t=0 0\r\n\
            x=unknown\n\
            a=sendonly\n\
            m=audio 5004/2 RTP/AVP 0\n\
            b=AS:64\n\
            b=AS:notanumber\n\
            a=ptime:twenty\n\
            a=rtpmap:0 PCMU\n\
            a=rtcp:5005 IN IP6 ::2\n\
            a=rtcp-mux\n\
            a=maxptime:40\n\
            a=inactive\n";
        let sdp = SessionDescription::parse(text).unwrap();
        assert_eq!(sdp.session_name, "");
        let audio = &sdp.media[0];
        assert_eq!((audio.port, audio.port_count), (5004, Some(2)));
        assert_eq!(
            audio.bandwidths,
            [Bandwidth {
                bwtype: "AS".into(),
                bandwidth: 64,
            }]
        );
        assert_eq!(audio.ptime(), None);
        assert_eq!(audio.attribute("ptime"), Some("twenty"));
        assert_eq!(audio.rtpmap(Pt(0)), None);
        assert_eq!(audio.attribute("rtpmap"), Some("0 PCMU"));
        let rtcp = audio.rtcp().unwrap();
        assert_eq!(rtcp.port, 5005);
        assert_eq!(
            rtcp.connection.as_ref().unwrap().ip(),
            Some("::2".parse().unwrap())
        );
        assert!(audio.rtcp_mux());
        assert_eq!(audio.maxptime(), Some(40));
        // The medium's own direction beats the session's.
        assert_eq!(sdp.media_direction(audio), Direction::Inactive);
        assert_eq!(sdp.attributes, [Attribute::Direction(Direction::SendOnly)]);
        // Printed with CRLF, and parsed again to the same description.
        let printed = sdp.to_string();
        assert!(printed.split_inclusive('\n').all(|l| l.ends_with("\r\n")));
        assert_eq!(SessionDescription::parse(&printed), Ok(sdp));
    }

    #[test]
    fn unusable_descriptions_are_typed_errors() {
        let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
        assert_eq!(SessionDescription::parse(head), Err(SdpError::NoMedia));
        assert_eq!(
            SessionDescription::parse(&format!("{head}m=audio 70000 RTP/AVP 0\r\n")),
            Err(SdpError::BadPort("audio 70000 RTP/AVP 0".into()))
        );
        assert_eq!(
            SessionDescription::parse(&format!("{head}m=audio 5004/x RTP/AVP 0\r\n")),
            Err(SdpError::BadPort("audio 5004/x RTP/AVP 0".into()))
        );
        assert_eq!(
            SessionDescription::parse(&format!("{head}m=audio 5004\r\n")),
            Err(SdpError::BadMedia("audio 5004".into()))
        );
        assert_eq!(
            SessionDescription::parse(&format!("{head}m=audio 5004 RTP/AVP 0\r\nc=IN IP4\r\n")),
            Err(SdpError::BadConnection("IN IP4".into()))
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\ns=-\r\nm=audio 5004 RTP/AVP 0\r\n"),
            Err(SdpError::MissingOrigin)
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\no=- 1 two IN IP4 x\r\nm=audio 1 RTP/AVP 0\r\n"),
            Err(SdpError::BadOrigin("- 1 two IN IP4 x".into()))
        );
        assert_eq!(SessionDescription::parse(""), Err(SdpError::MissingOrigin));
    }

    #[test]
    fn attributes_parse_typed_or_verbatim() {
        assert_eq!(
            Attribute::parse("rtpmap:101 telephone-event/8000"),
            Attribute::Rtpmap(Rtpmap {
                pt: Pt(101),
                encoding: "telephone-event".into(),
                clock_rate: 8000,
                channels: None,
            })
        );
        assert_eq!(
            Attribute::parse("fmtp:111 minptime=10; useinbandfec=1"),
            Attribute::Fmtp(Fmtp {
                pt: Pt(111),
                params: vec![
                    FmtpParam::new("minptime", 10),
                    FmtpParam::new("useinbandfec", 1)
                ],
            })
        );
        // RFC 3605's example.
        assert_eq!(
            Attribute::parse("rtcp:53020 IN IP4 126.16.64.4"),
            Attribute::Rtcp(RtcpAttribute {
                port: 53020,
                connection: Some(Connection::new("126.16.64.4".parse().unwrap())),
            })
        );
        assert_eq!(
            Attribute::parse("rtcp:53020"),
            Attribute::Rtcp(RtcpAttribute {
                port: 53020,
                connection: None,
            })
        );
        for verbatim in [
            "rtpmap:128 foo/8000",
            "rtpmap:96 opus/48000/2/1",
            "fmtp:abc x=1",
            "rtcp:53020 IN IP4",
            "sendrecv:yes",
            "rtcp-mux:1",
            "ice-ufrag:F7gI",
            "ssrc:2736692082 cname:sip:b@example.com",
            "",
        ] {
            let attribute = Attribute::parse(verbatim);
            assert!(matches!(attribute, Attribute::Other { .. }), "{verbatim}");
            assert_eq!(attribute.to_string(), verbatim);
        }
    }

    #[test]
    fn random_descriptions_never_panic_and_reprint_stably() {
        let lines = [
            "v=0",
            "o=- 1 2 IN IP4 192.0.2.1",
            "o=a b",
            "s= ",
            "i=x",
            "c=IN IP4 192.0.2.1",
            "c=IN",
            "t=0 0",
            "t=x",
            "b=AS:64",
            "b=CT",
            "m=audio 5004 RTP/AVP 0 8 96",
            "m=video 0 RTP/AVP 31",
            "m=audio 99999 RTP/AVP 0",
            "m=x",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:96 opus",
            "a=fmtp:96 a=1;;b ; =c",
            "a=fmtp:96",
            "a=ptime:20",
            "a=ptime:",
            "a=maxptime:40",
            "a=sendonly",
            "a=inactive",
            "a=rtcp:5 IN IP6 ::1",
            "a=rtcp-mux",
            "a=crypto:1 AES_CM inline:x",
            "a=",
            "a=\u{e9}:\u{e9}",
            "q",
            "",
            "\r",
            "a=x\r",
        ];
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
        for _ in 0..20_000 {
            let count = (rng.next_u64() % 12) as usize;
            let mut text = String::new();
            for _ in 0..count {
                text.push_str(lines[(rng.next_u64() % lines.len() as u64) as usize]);
                text.push_str(if rng.next_u64() & 1 == 0 {
                    "\r\n"
                } else {
                    "\n"
                });
            }
            if let Ok(sdp) = SessionDescription::parse(&text) {
                let printed = sdp.to_string();
                assert_eq!(
                    SessionDescription::parse(&printed).as_ref(),
                    Ok(&sdp),
                    "{text:?}"
                );
            }
        }
    }
}
