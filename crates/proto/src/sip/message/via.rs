//! The Via header field (RFC 3261 §20.42, §18.2.1), with `rport` (RFC 3581)
//! and IPv6 sent-by and `received` values (RFC 5118 §4.5, §4.7, §4.9).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::grammar::{Cursor, Param, find_param, is_token_char, parse_params, trim_wsp};
use super::headers::HeaderError;
use super::uri::{Host, parse_port};

/// The RFC 3261 branch prefix (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The transport of a Via's sent-protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    /// SIP over WebSocket (RFC 7118).
    Ws,
    Wss,
    /// Any other token, as written (RFC 4475 §3.1.1.10).
    Other(String),
}

impl Transport {
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(t) => t,
        }
    }

    /// Whether the transport is reliable (everything but UDP, §17.1.1.2).
    pub fn is_reliable(&self) -> bool {
        *self != Transport::Udp
    }
}

impl FromStr for Transport {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Sctp,
            Transport::Ws,
            Transport::Wss,
        ];
        if let Some(t) = known
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
        {
            return Ok(t);
        }
        if !s.is_empty() && s.bytes().all(is_token_char) {
            Ok(Transport::Other(s.to_owned()))
        } else {
            Err(HeaderError::Malformed("Via transport is not a token"))
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `rport` parameter (RFC 3581 §3, §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rport {
    /// `;rport` without a value: a client asks for symmetric response routing.
    Requested,
    /// `;rport=N`: the source port the server saw.
    Port(u16),
}

/// One Via header field value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Via {
    /// The protocol version, `2.0` in every message this phone accepts.
    pub version: String,
    pub transport: Transport,
    pub host: Host,
    pub port: Option<u16>,
    pub branch: Option<String>,
    /// `received`, bracketed or not (RFC 5118 §4.5).
    pub received: Option<IpAddr>,
    pub rport: Option<Rport>,
    pub maddr: Option<Host>,
    pub ttl: Option<u8>,
    /// Every other parameter, in order.
    pub params: Vec<Param>,
}

impl Via {
    /// `SIP/2.0/<transport> host[:port]` without parameters.
    pub fn new(transport: Transport, host: Host, port: Option<u16>) -> Self {
        Via {
            version: "2.0".to_owned(),
            transport,
            host,
            port,
            branch: None,
            received: None,
            rport: None,
            maddr: None,
            ttl: None,
            params: Vec::new(),
        }
    }

    pub fn with_branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }

    /// Adds a valueless `rport` (RFC 3581 §3).
    pub fn with_rport(mut self) -> Self {
        self.rport = Some(Rport::Requested);
        self
    }

    /// Whether the branch starts with the RFC 3261 magic cookie. A bare
    /// `z9hG4bK` carries no transaction identifier (RFC 4475 §3.2.1) and
    /// does not count.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch
            .as_deref()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// An extension parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// Parses leniently, as a server answering a malformed request must:
    /// empty parameters (`;;`) are skipped.
    pub(crate) fn parse_lenient(s: &str) -> Result<Via, HeaderError> {
        parse(s, true)
    }
}

impl FromStr for Via {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s, false)
    }
}

fn parse(s: &str, lenient: bool) -> Result<Via, HeaderError> {
    let mut c = Cursor::new(trim_wsp(s));
    let name = c
        .token()
        .ok_or(HeaderError::Malformed("Via without a protocol name"))?;
    if !name.eq_ignore_ascii_case("SIP") {
        return Err(HeaderError::Malformed("Via protocol is not SIP"));
    }
    if !c.eat_separator(b'/') {
        return Err(HeaderError::Malformed("Via protocol without a version"));
    }
    let version = c.token().ok_or(HeaderError::Malformed(
        "Via protocol version is not a token",
    ))?;
    if !c.eat_separator(b'/') {
        return Err(HeaderError::Malformed("Via protocol without a transport"));
    }
    let transport = c
        .token()
        .ok_or(HeaderError::Malformed("Via transport is not a token"))?
        .parse()?;
    if !c.skip_ws() {
        return Err(HeaderError::Malformed(
            "Via transport and sent-by not separated",
        ));
    }
    let host_text = if c.peek() == Some(b'[') {
        let text = c.take_while(|b| b != b']');
        if !c.eat(b']') {
            return Err(HeaderError::Malformed(
                "Via sent-by IPv6 reference not closed",
            ));
        }
        format!("{text}]")
    } else {
        c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            .to_owned()
    };
    let host = Host::parse(&host_text)?;
    let port = if c.eat_separator(b':') {
        let digits = c.take_while(|b| b.is_ascii_digit());
        Some(parse_port(digits).ok_or(HeaderError::Malformed("Via sent-by port is malformed"))?)
    } else {
        None
    };
    let mut via = Via::new(transport, host, port);
    via.version = version.to_owned();
    for param in parse_params(&mut c, lenient)? {
        let value = param.value.as_deref();
        let name = param.name.as_str();
        let duplicate = HeaderError::Malformed("Via parameter given twice");
        if name.eq_ignore_ascii_case("branch") {
            let branch = value
                .filter(|v| !v.starts_with('"') && v.bytes().all(is_token_char))
                .ok_or(HeaderError::Malformed("Via branch is not a token"))?;
            if via.branch.replace(branch.to_owned()).is_some() {
                return Err(duplicate);
            }
        } else if name.eq_ignore_ascii_case("received") {
            let addr = value
                .and_then(Host::parse_ip)
                .ok_or(HeaderError::Malformed("Via received is not an IP address"))?;
            if via.received.replace(addr).is_some() {
                return Err(duplicate);
            }
        } else if name.eq_ignore_ascii_case("rport") {
            let rport = match value {
                None => Rport::Requested,
                Some(v) => Rport::Port(
                    parse_port(v).ok_or(HeaderError::Malformed("Via rport is not a port"))?,
                ),
            };
            if via.rport.replace(rport).is_some() {
                return Err(duplicate);
            }
        } else if name.eq_ignore_ascii_case("maddr") {
            let maddr = value
                .ok_or(HeaderError::Malformed("Via maddr without a value"))
                .and_then(|v| Host::parse(v).map_err(HeaderError::from))?;
            if via.maddr.replace(maddr).is_some() {
                return Err(duplicate);
            }
        } else if name.eq_ignore_ascii_case("ttl") {
            let ttl = value
                .and_then(|v| super::grammar::parse_digits(v, 255))
                .ok_or(HeaderError::Malformed(
                    "Via ttl is not a number from 0 to 255",
                ))?;
            if via.ttl.replace(ttl as u8).is_some() {
                return Err(duplicate);
            }
        } else {
            via.params.push(param);
        }
    }
    if !c.is_empty() {
        return Err(HeaderError::Malformed("junk in Via"));
    }
    Ok(via)
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/{}/{} {}", self.version, self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if let Some(branch) = &self.branch {
            write!(f, ";branch={branch}")?;
        }
        if let Some(received) = self.received {
            write!(f, ";received={received}")?;
        }
        match self.rport {
            Some(Rport::Requested) => f.write_str(";rport")?,
            Some(Rport::Port(port)) => write!(f, ";rport={port}")?,
            None => {}
        }
        if let Some(maddr) = &self.maddr {
            write!(f, ";maddr={maddr}")?;
        }
        if let Some(ttl) = self.ttl {
            write!(f, ";ttl={ttl}")?;
        }
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn via(s: &str) -> Via {
        let v: Via = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(v.to_string().parse::<Via>().unwrap(), v, "{s}");
        v
    }

    #[test]
    fn torture_vias() {
        // RFC 4475 §3.1.1.1, after unfolding.
        let v = via("SIP  /   2.0 /UDP     192.0.2.2;branch=390skdjuw");
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.host, Host::Ipv4(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(v.branch.as_deref(), Some("390skdjuw"));
        assert!(!v.has_rfc3261_branch());
        let v = via("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8");
        assert_eq!(v.host, Host::Domain("spindle.example.com".into()));
        assert!(v.has_rfc3261_branch());
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"
        );
        // §3.1.1.2: a branch made of every token character.
        let v = via("SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~");
        assert_eq!(v.branch.as_deref(), Some("z9hG4bK-.!%66*_+`'~"));
        // §3.1.1.10 and §3.1.1.11.
        assert_eq!(
            via("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en").transport,
            Transport::Other("UNKNOWN".into())
        );
        let v = via(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport",
        );
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport, Some(Rport::Requested));
        // §3.2.1: a bare magic cookie is not an RFC 3261 branch.
        assert!(!via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK").has_rfc3261_branch());
    }

    #[test]
    fn rfc3581_and_rfc5118() {
        let v = via("SIP/2.0/UDP 192.0.2.1:5060;received=198.51.100.7;rport=40123;branch=z9hG4bKx");
        assert_eq!(v.received, Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))));
        assert_eq!(v.rport, Some(Rport::Port(40123)));
        let v6: Ipv6Addr = "2001:db8::9:255".parse().unwrap();
        for text in [
            "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111",
            "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3",
        ] {
            let v = via(text);
            assert_eq!(v.host, Host::Ipv6("2001:db8::9:1".parse().unwrap()));
            assert_eq!(v.received, Some(IpAddr::V6(v6)));
        }
        let v = via("SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111");
        assert_eq!(v.port, Some(6050));
        let v = via("SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19");
        assert_eq!(v.host, Host::Ipv6("::ffff:192.0.2.10".parse().unwrap()));
        let v = via("SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200");
        assert_eq!(v.received, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200))));
    }

    #[test]
    fn other_parameters_are_kept() {
        let v = via("SIP/2.0/UDP h:5 ; maddr=239.255.255.1;ttl=15;x=\"a b\";flag;keep");
        assert_eq!(v.maddr, Some(Host::Ipv4(Ipv4Addr::new(239, 255, 255, 1))));
        assert_eq!(v.ttl, Some(15));
        assert_eq!(v.params.len(), 3);
        assert!(v.param("FLAG").is_some());
        let built = Via::new(
            Transport::Udp,
            Host::Domain("pc33.example.com".into()),
            Some(5060),
        )
        .with_branch("z9hG4bK776asdhds")
        .with_rport();
        assert_eq!(
            built.to_string(),
            "SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bK776asdhds;rport"
        );
    }

    #[test]
    fn malformed_vias() {
        for bad in [
            "",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP 192.0.2.15;;",
            ";",
            "HTTP/1.1/TCP host",
            "SIP/2.0 host",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP host:",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP host;branch",
            "SIP/2.0/UDP host;branch=a;branch=b",
            "SIP/2.0/UDP host;received=example.com",
            "SIP/2.0/UDP host;rport=x",
            "SIP/2.0/UDP host;ttl=256",
            "SIP/2.0/UDP host junk",
            "SIP/2.0/UDP host, SIP/2.0/UDP other",
        ] {
            assert!(bad.parse::<Via>().is_err(), "{bad:?}");
        }
        assert_eq!(
            Via::parse_lenient("SIP/2.0/UDP 192.0.2.15;;").unwrap().host,
            Host::Ipv4(Ipv4Addr::new(192, 0, 2, 15))
        );
    }
}
