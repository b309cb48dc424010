//! The SDP data model (RFC 8866 §5) and its printer.
//!
//! Only what a telephone reads is typed: origin, connection, bandwidth,
//! timing, media lines and the attributes of RFC 8866 §6 that shape an audio
//! stream (`rtpmap`, `fmtp`, `ptime`, `maxptime`, the direction attributes),
//! `rtcp` (RFC 3605) and `rtcp-mux` (RFC 5761). Every other attribute is kept
//! verbatim, in its place, so a description prints back as it came.

use std::fmt;
use std::net::IpAddr;

use crate::rtp::Pt;

/// A whole session description: the session-level lines and its media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`: who made it, and which version of it this is.
    pub origin: Origin,
    /// `s=`, verbatim (RFC 8866 asks for `-` rather than nothing).
    pub session_name: String,
    /// `i=` at session level.
    pub info: Option<String>,
    /// Session-level `c=`: the default for media without their own.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` (the first one; a telephone call is `0 0`).
    pub timing: Timing,
    /// Session-level attributes, in order; a direction here is the default
    /// for every medium.
    pub attributes: Vec<Attribute>,
    /// The `m=` sections, in order: their index is what offer and answer pair up.
    pub media: Vec<MediaDescription>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`
/// (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `-` when there is no user id.
    pub username: String,
    /// A numeric string; kept as text, since some peers exceed 64 bits.
    pub session_id: String,
    /// Incremented each time the description changes (RFC 3264 §8).
    pub session_version: u64,
    pub nettype: String,
    pub addrtype: String,
    pub address: String,
}

/// `c=<nettype> <addrtype> <connection-address>` (RFC 8866 §5.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    pub nettype: String,
    pub addrtype: String,
    /// An IP literal or a name, with a multicast `/ttl/count` suffix if any.
    pub address: String,
}

/// `b=<bwtype>:<bandwidth>` (RFC 8866 §5.8), in kbit/s for `AS` and `CT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bandwidth {
    pub bwtype: String,
    pub bandwidth: u64,
}

/// `t=<start-time> <stop-time>` (RFC 8866 §5.9), NTP seconds; `0 0` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
}

/// One `m=` section (RFC 8866 §5.14) with its own lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, `image`, `text`, `message`, ...
    pub media: String,
    /// 0 means the stream is rejected or disabled (RFC 3264 §5.1, §6).
    pub port: u16,
    /// The `/<number of ports>` suffix, if present.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `udptl`, ...
    pub proto: String,
    /// The formats, in preference order: payload type numbers for RTP.
    pub formats: Vec<String>,
    /// `i=` at media level.
    pub info: Option<String>,
    /// Media-level `c=`, overriding the session's.
    pub connection: Option<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    pub attributes: Vec<Attribute>,
}

/// Which way media flows, from the point of view of the description's author
/// (RFC 8866 §6.7, RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// One `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]` (RFC 8866 §6.6).
    Rtpmap(Rtpmap),
    /// `a=fmtp:<pt> <parameters>` (RFC 8866 §6.15).
    Fmtp(Fmtp),
    /// `a=ptime:<ms>` (RFC 8866 §6.4).
    Ptime(u32),
    /// `a=maxptime:<ms>` (RFC 8866 §6.5).
    MaxPtime(u32),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive` (RFC 8866 §6.7).
    Direction(Direction),
    /// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
    Rtcp(RtcpAttribute),
    /// `a=rtcp-mux` (RFC 5761 §5.1.1).
    RtcpMux,
    /// Anything else (`a=crypto`, `a=ssrc`, `a=ice-ufrag`, ...), or a known
    /// attribute whose value did not parse: kept as it came.
    Other { name: String, value: Option<String> },
}

/// A payload type's encoding (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rtpmap {
    pub pt: Pt,
    /// The encoding name as written (`opus`, `PCMU`, `telephone-event`);
    /// compare it case-insensitively.
    pub encoding: String,
    /// The RTP clock rate, which is not the sample rate (Opus: always 48000).
    pub clock_rate: u32,
    /// The encoding parameters: for audio, the number of channels.
    pub channels: Option<u16>,
}

/// Format parameters of one payload type (RFC 8866 §6.15).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fmtp {
    pub pt: Pt,
    /// The `;`-separated parameters: `name=value`, or a bare value such as
    /// telephone-event's `0-15`.
    pub params: Vec<FmtpParam>,
}

/// One `fmtp` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FmtpParam {
    pub name: String,
    /// `None` for a parameter without `=`.
    pub value: Option<String>,
}

/// Where the far end wants RTCP when it is not on RTP port + 1 (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtcpAttribute {
    pub port: u16,
    pub connection: Option<Connection>,
}

/// A payload type in an `m=` line resolved to its encoding: from its
/// `rtpmap`, or from the static table of RFC 3551 §6 when it has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtpFormat {
    pub pt: Pt,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

impl SessionDescription {
    /// The direction of `media`: its own attribute, else the session's, else
    /// `sendrecv` (RFC 8866 §6.7).
    pub fn media_direction(&self, media: &MediaDescription) -> Direction {
        media
            .direction()
            .or_else(|| find_direction(&self.attributes))
            .unwrap_or_default()
    }

    /// The connection `media` is reached at: its own `c=`, else the session's.
    pub fn media_connection<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }
}

impl Origin {
    /// An origin for an IPv4 or IPv6 address.
    pub fn new(username: &str, session_id: u64, session_version: u64, address: IpAddr) -> Self {
        let connection = Connection::new(address);
        Origin {
            username: username.to_owned(),
            session_id: session_id.to_string(),
            session_version,
            nettype: connection.nettype,
            addrtype: connection.addrtype,
            address: connection.address,
        }
    }
}

impl Connection {
    /// `IN IP4 <addr>` or `IN IP6 <addr>`.
    pub fn new(address: IpAddr) -> Self {
        Connection {
            nettype: "IN".to_owned(),
            addrtype: if address.is_ipv4() { "IP4" } else { "IP6" }.to_owned(),
            address: address.to_string(),
        }
    }

    /// The address as an IP literal, if it is one of the type it claims
    /// (`IN IP4` or `IN IP6`); `None` for names and anything else.
    pub fn ip(&self) -> Option<IpAddr> {
        if !self.nettype.eq_ignore_ascii_case("IN") {
            return None;
        }
        let ip: IpAddr = self.address.parse().ok()?;
        let ip4 = self.addrtype.eq_ignore_ascii_case("IP4");
        let ip6 = self.addrtype.eq_ignore_ascii_case("IP6");
        (ip4 && ip.is_ipv4() || ip6 && ip.is_ipv6()).then_some(ip)
    }
}

impl MediaDescription {
    /// This section's own direction attribute, if it has one.
    pub fn direction(&self) -> Option<Direction> {
        find_direction(&self.attributes)
    }

    /// Replaces any direction attribute with `direction`.
    pub fn set_direction(&mut self, direction: Direction) {
        self.attributes
            .retain(|a| !matches!(a, Attribute::Direction(_)));
        self.attributes.push(Attribute::Direction(direction));
    }

    /// The `rtpmap` of `pt`.
    pub fn rtpmap(&self, pt: Pt) -> Option<&Rtpmap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtpmap(map) if map.pt == pt => Some(map),
            _ => None,
        })
    }

    /// The `fmtp` of `pt`.
    pub fn fmtp(&self, pt: Pt) -> Option<&Fmtp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp(fmtp) if fmtp.pt == pt => Some(fmtp),
            _ => None,
        })
    }

    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(ms) => Some(*ms),
            _ => None,
        })
    }

    pub fn maxptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::MaxPtime(ms) => Some(*ms),
            _ => None,
        })
    }

    pub fn rtcp(&self) -> Option<&RtcpAttribute> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(rtcp) => Some(rtcp),
            _ => None,
        })
    }

    pub fn rtcp_mux(&self) -> bool {
        self.attributes.contains(&Attribute::RtcpMux)
    }

    /// The value of the first other attribute called `name` (`Some("")`
    /// for a flag without a value).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Other { name: n, value } if n == name => {
                Some(value.as_deref().unwrap_or(""))
            }
            _ => None,
        })
    }

    /// The formats that are RTP payload types (0-127), in `m=` order.
    pub fn payload_types(&self) -> impl Iterator<Item = Pt> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok().filter(|&pt| pt <= 127).map(Pt))
    }

    /// What `pt` stands for: its `rtpmap`, or its static assignment.
    pub fn rtp_format(&self, pt: Pt) -> Option<RtpFormat> {
        if let Some(map) = self.rtpmap(pt) {
            return Some(RtpFormat {
                pt,
                encoding: map.encoding.clone(),
                clock_rate: map.clock_rate,
                channels: map.channels,
            });
        }
        let (encoding, clock_rate, channels) = static_payload_type(pt)?;
        Some(RtpFormat {
            pt,
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        })
    }

    /// Every payload type of the `m=` line that can be resolved, in order.
    pub fn rtp_formats(&self) -> Vec<RtpFormat> {
        self.payload_types()
            .filter_map(|pt| self.rtp_format(pt))
            .collect()
    }
}

impl Direction {
    /// Whether the author of the description sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the author of the description receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction with these two abilities.
    pub fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The same flow seen from the other end: `sendonly` becomes
    /// `recvonly` and back (RFC 3264 §6.1).
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// What both allow: sending only if both send, receiving only if both receive.
    pub fn intersect(self, other: Direction) -> Self {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

impl Fmtp {
    /// The value of parameter `name` (names compare case-insensitively, RFC
    /// 6838 §4.3); `Some("")` for a parameter present without `=`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref().unwrap_or(""))
    }
}

impl FmtpParam {
    pub fn new(name: &str, value: impl fmt::Display) -> Self {
        FmtpParam {
            name: name.to_owned(),
            value: Some(value.to_string()),
        }
    }
}

impl RtpFormat {
    /// `G729/8000`, `opus/48000/2`: how a person names a format.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

/// The audio and video payload types with a static assignment (RFC 3551 §6,
/// table 4 and 5): encoding, clock rate, channels.
pub fn static_payload_type(pt: Pt) -> Option<(&'static str, u32, Option<u16>)> {
    Some(match pt.0 {
        0 => ("PCMU", 8000, None),
        3 => ("GSM", 8000, None),
        4 => ("G723", 8000, None),
        5 => ("DVI4", 8000, None),
        6 => ("DVI4", 16000, None),
        7 => ("LPC", 8000, None),
        8 => ("PCMA", 8000, None),
        9 => ("G722", 8000, None),
        10 => ("L16", 44100, Some(2)),
        11 => ("L16", 44100, None),
        12 => ("QCELP", 8000, None),
        13 => ("CN", 8000, None),
        14 => ("MPA", 90000, None),
        15 => ("G728", 8000, None),
        16 => ("DVI4", 11025, None),
        17 => ("DVI4", 22050, None),
        18 => ("G729", 8000, None),
        25 => ("CelB", 90000, None),
        26 => ("JPEG", 90000, None),
        28 => ("nv", 90000, None),
        31 => ("H261", 90000, None),
        32 => ("MPV", 90000, None),
        33 => ("MP2T", 90000, None),
        34 => ("H263", 90000, None),
        _ => return None,
    })
}

fn find_direction(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

/// Prints the description as RFC 8866 orders it, every line ending in CRLF.
impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\n")?;
        write!(f, "o={}\r\n", self.origin)?;
        write!(f, "s={}\r\n", self.session_name)?;
        if let Some(info) = &self.info {
            write!(f, "i={info}\r\n")?;
        }
        if let Some(connection) = &self.connection {
            write!(f, "c={connection}\r\n")?;
        }
        for bandwidth in &self.bandwidths {
            write!(f, "b={bandwidth}\r\n")?;
        }
        write!(f, "t={} {}\r\n", self.timing.start, self.timing.stop)?;
        for attribute in &self.attributes {
            write!(f, "a={attribute}\r\n")?;
        }
        for media in &self.media {
            write!(f, "{media}")?;
        }
        Ok(())
    }
}

/// Prints the `m=` section, every line ending in CRLF.
impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        write!(f, "\r\n")?;
        if let Some(info) = &self.info {
            write!(f, "i={info}\r\n")?;
        }
        if let Some(connection) = &self.connection {
            write!(f, "c={connection}\r\n")?;
        }
        for bandwidth in &self.bandwidths {
            write!(f, "b={bandwidth}\r\n")?;
        }
        for attribute in &self.attributes {
            write!(f, "a={attribute}\r\n")?;
        }
        Ok(())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.nettype,
            self.addrtype,
            self.address
        )
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.nettype, self.addrtype, self.address)
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.bwtype, self.bandwidth)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The attribute after `a=`.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::Rtpmap(map) => write!(f, "rtpmap:{map}"),
            Attribute::Fmtp(fmtp) => write!(f, "fmtp:{fmtp}"),
            Attribute::Ptime(ms) => write!(f, "ptime:{ms}"),
            Attribute::MaxPtime(ms) => write!(f, "maxptime:{ms}"),
            Attribute::Direction(direction) => write!(f, "{direction}"),
            Attribute::Rtcp(rtcp) => {
                write!(f, "rtcp:{}", rtcp.port)?;
                if let Some(connection) = &rtcp.connection {
                    write!(f, " {connection}")?;
                }
                Ok(())
            }
            Attribute::RtcpMux => f.write_str("rtcp-mux"),
            Attribute::Other { name, value: None } => f.write_str(name),
            Attribute::Other {
                name,
                value: Some(value),
            } => write!(f, "{name}:{value}"),
        }
    }
}

/// `<pt> <encoding>/<clock rate>[/<channels>]`
impl fmt::Display for Rtpmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.pt, self.encoding, self.clock_rate)?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}

/// `<pt> <name>=<value>;...`
impl fmt::Display for Fmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.pt)?;
        for (i, param) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ";" })?;
            f.write_str(&param.name)?;
            if let Some(value) = &param.value {
                write!(f, "={value}")?;
            }
        }
        Ok(())
    }
}

/// `<encoding>/<clock rate>[/<channels>]`
impl fmt::Display for RtpFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.encoding, self.clock_rate)?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}
