//! SIP and SIPS URIs (RFC 3261 §19.1, §25.1; IPv6 references per RFC 5118),
//! with any other scheme kept as an opaque absolute URI (RFC 3261 §19.1.6:
//! `tel:`, `http:` or a scheme nobody knows still parses).
//!
//! Components are kept as written, %-escapes included, so a URI prints back
//! exactly as it came; [`SipUri::equivalent`] applies the comparison rules of
//! §19.1.4 and [`percent_decode`] gives the octets behind an escaped part.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use thiserror::Error;

use super::grammar::{Param, find_param};

/// Why a string is not a URI this module accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum UriError {
    #[error("empty URI")]
    Empty,
    #[error("missing or malformed URI scheme")]
    Scheme,
    #[error("malformed user part")]
    User,
    #[error("malformed password")]
    Password,
    #[error("malformed host")]
    Host,
    #[error("malformed port")]
    Port,
    #[error("malformed URI parameter")]
    Param,
    #[error("malformed URI header")]
    Header,
    #[error("malformed %-escape")]
    Escape,
    #[error("character not allowed in a URI")]
    Char,
}

/// A Request-URI or the URI of a name-addr: SIP/SIPS, or any other scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Uri {
    Sip(SipUri),
    /// Any other absolute URI, kept opaque (RFC 3261 §19.1.6, §20).
    Absolute(AbsoluteUri),
}

/// A `sip:` or `sips:` URI (RFC 3261 §19.1.1). String components are kept as
/// written, escapes and case included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    /// `uri-parameters`, in order.
    pub params: Vec<Param>,
    /// `headers` after `?`, in order, as (hname, hvalue).
    pub headers: Vec<(String, String)>,
}

/// A URI of a scheme other than sip and sips, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AbsoluteUri {
    scheme: String,
    rest: String,
}

/// The host of a SIP URI or of a Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name, as written.
    Domain(String),
    Ipv4(Ipv4Addr),
    /// Written as an IPv6 reference, `[...]`.
    Ipv6(Ipv6Addr),
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let (scheme, rest) = s.split_once(':').ok_or(UriError::Scheme)?;
        if !is_scheme(scheme) {
            return Err(UriError::Scheme);
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_after_scheme(rest, scheme.len() == 4).map(Uri::Sip);
        }
        if rest.is_empty() {
            return Err(UriError::Empty);
        }
        if !rest.bytes().all(is_uric) {
            return Err(UriError::Char);
        }
        check_escapes(rest)?;
        Ok(Uri::Absolute(AbsoluteUri {
            scheme: scheme.to_owned(),
            rest: rest.to_owned(),
        }))
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(uri) => Some(uri),
            Uri::Absolute(_) => None,
        }
    }

    pub fn as_sip_mut(&mut self) -> Option<&mut SipUri> {
        match self {
            Uri::Sip(uri) => Some(uri),
            Uri::Absolute(_) => None,
        }
    }

    /// The scheme, lower case for sip and sips, as written otherwise.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(uri) if uri.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Absolute(uri) => &uri.scheme,
        }
    }

    /// URI equivalence: RFC 3261 §19.1.4 for SIP and SIPS URIs; for other
    /// schemes a case-insensitive scheme and an identical remainder.
    pub fn equivalent(&self, other: &Uri) -> bool {
        match (self, other) {
            (Uri::Sip(a), Uri::Sip(b)) => a.equivalent(b),
            (Uri::Absolute(a), Uri::Absolute(b)) => {
                a.scheme.eq_ignore_ascii_case(&b.scheme) && a.rest == b.rest
            }
            _ => false,
        }
    }
}

impl AbsoluteUri {
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Everything after the scheme's colon.
    pub fn opaque(&self) -> &str {
        &self.rest
    }
}

impl SipUri {
    /// `sip:host`, with nothing else.
    pub fn new(host: Host) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Sets the user part, %-escaping what the grammar does not allow.
    pub fn with_user(mut self, user: &str) -> Self {
        self.user = Some(percent_encode(user.as_bytes(), is_user_char));
        self
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Self {
        self.set_param(name, value);
        self
    }

    /// Parses a whole `sip:` or `sips:` URI.
    pub fn parse(s: &str) -> Result<SipUri, UriError> {
        match Uri::parse(s)? {
            Uri::Sip(uri) => Ok(uri),
            Uri::Absolute(_) => Err(UriError::Scheme),
        }
    }

    fn parse_after_scheme(rest: &str, secure: bool) -> Result<SipUri, UriError> {
        // userinfo ends at the first '@': no character after it may be an
        // unescaped '@' (params, headers and hosts exclude it).
        let (user, password, rest) = match rest.split_once('@') {
            Some((userinfo, rest)) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                if user.is_empty() || !user.bytes().all(|b| b == b'%' || is_user_char(b)) {
                    return Err(UriError::User);
                }
                check_escapes(user).map_err(|_| UriError::User)?;
                if let Some(password) = password {
                    if !password.bytes().all(|b| b == b'%' || is_password_char(b)) {
                        return Err(UriError::Password);
                    }
                    check_escapes(password).map_err(|_| UriError::Password)?;
                }
                (Some(user.to_owned()), password.map(str::to_owned), rest)
            }
            None => (None, None, rest),
        };

        let (hostport, rest) = split_at_any(rest, b";?");
        let (host, port) = parse_hostport(hostport)?;

        let (params_text, headers_text) = match rest.split_once('?') {
            Some((params, headers)) => (params, Some(headers)),
            None => (rest, None),
        };
        let mut params = Vec::new();
        if !params_text.is_empty() {
            // params_text starts with ';' (split_at_any stopped there).
            for item in params_text.get(1..).unwrap_or("").split(';') {
                let (name, value) = match item.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (item, None),
                };
                if !is_param_text(name) || value.is_some_and(|v| !is_param_text(v)) {
                    return Err(UriError::Param);
                }
                params.push(Param {
                    name: name.to_owned(),
                    value: value.map(str::to_owned),
                });
            }
        }
        let mut headers = Vec::new();
        if let Some(text) = headers_text {
            for item in text.split('&') {
                let (name, value) = item.split_once('=').ok_or(UriError::Header)?;
                let ok = |s: &str, allow_empty: bool| {
                    (allow_empty || !s.is_empty())
                        && s.bytes().all(|b| b == b'%' || is_header_char(b))
                        && check_escapes(s).is_ok()
                };
                if !ok(name, false) || !ok(value, true) {
                    return Err(UriError::Header);
                }
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// The user part with its escapes resolved: octets, since `%00` is a
    /// legal user (RFC 4475 §3.1.1.4) and need not be UTF-8.
    pub fn decoded_user(&self) -> Option<Vec<u8>> {
        self.user.as_deref().map(percent_decode)
    }

    /// The first URI parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    /// Replaces the parameter `name` (or appends it), keeping its position.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(param) => param.value = value,
            None => self.params.push(Param {
                name: name.to_owned(),
                value,
            }),
        }
        let mut seen = false;
        self.params.retain(|p| {
            if !p.name.eq_ignore_ascii_case(name) {
                return true;
            }
            !std::mem::replace(&mut seen, true)
        });
    }

    pub fn remove_param(&mut self, name: &str) {
        self.params.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    /// The `transport` parameter's value.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport")?.value.as_deref()
    }

    /// Whether the URI carries `lr` (a loose router, RFC 3261 §19.1.1).
    pub fn lr(&self) -> bool {
        self.has_param("lr")
    }

    pub fn maddr(&self) -> Option<&str> {
        self.param("maddr")?.value.as_deref()
    }

    /// The `user` parameter (`phone`, `ip`...).
    pub fn user_param(&self) -> Option<&str> {
        self.param("user")?.value.as_deref()
    }

    /// The same URI without parameters that may not appear in the Request-URI
    /// or a Route when taken from a To/From (RFC 3261 §19.1.1 table 1), and
    /// without headers. Useful to build an address-of-record.
    pub fn without_headers(&self) -> SipUri {
        SipUri {
            headers: Vec::new(),
            ..self.clone()
        }
    }

    /// URI comparison (RFC 3261 §19.1.4): scheme, user and password
    /// case-sensitively and host case-insensitively after resolving escapes
    /// of unreserved characters; ports both absent or equal; parameters
    /// present in both must match, and `user`, `ttl`, `method`, `maddr` and
    /// `transport` must be in both or neither; headers must match as sets.
    pub fn equivalent(&self, other: &SipUri) -> bool {
        if self.secure != other.secure
            || self.port != other.port
            || !self.host.equivalent(&other.host)
            || normalize_opt(&self.user) != normalize_opt(&other.user)
            || normalize_opt(&self.password) != normalize_opt(&other.password)
        {
            return false;
        }
        const MUST_MATCH: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
        let value = |p: &Param| {
            p.value
                .as_deref()
                .map(|v| normalize(v).to_ascii_lowercase())
        };
        for p in &self.params {
            match other.param(&p.name) {
                Some(q) if value(p) != value(q) => return false,
                None if MUST_MATCH.iter().any(|m| p.name.eq_ignore_ascii_case(m)) => {
                    return false;
                }
                _ => {}
            }
        }
        for q in &other.params {
            if self.param(&q.name).is_none()
                && MUST_MATCH.iter().any(|m| q.name.eq_ignore_ascii_case(m))
            {
                return false;
            }
        }
        let headers = |uri: &SipUri| {
            let mut h: Vec<(String, String)> = uri
                .headers
                .iter()
                .map(|(n, v)| (normalize(n).to_ascii_lowercase(), normalize(v)))
                .collect();
            h.sort();
            h
        };
        headers(self) == headers(other)
    }
}

impl Host {
    /// Parses a host name, an IPv4 address or a bracketed IPv6 reference.
    /// An IPv6 reference with one colon too many before an embedded IPv4
    /// address (`[2001:db8:::192.0.2.1]`) is read as the address it was
    /// meant to be (RFC 5118 §4.10).
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::Host)?;
            return parse_ipv6(inner).map(Host::Ipv6).ok_or(UriError::Host);
        }
        if s.is_empty() {
            return Err(UriError::Host);
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s.parse().map(Host::Ipv4).map_err(|_| UriError::Host);
        }
        let labels = s.strip_suffix('.').unwrap_or(s);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if labels.split('.').all(label_ok) {
            Ok(Host::Domain(s.to_owned()))
        } else {
            Err(UriError::Host)
        }
    }

    /// Parses a bare or bracketed IP address, as Via `received` may carry
    /// either (RFC 5118 §4.5).
    pub fn parse_ip(s: &str) -> Option<std::net::IpAddr> {
        if let Some(inner) = s.strip_prefix('[') {
            return parse_ipv6(inner.strip_suffix(']')?).map(Into::into);
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Some(v4.into());
        }
        parse_ipv6(s).map(Into::into)
    }

    /// Host comparison: names case-insensitively (a trailing dot ignored),
    /// addresses by value. A name never equals an address (RFC 3261 §19.1.4).
    pub fn equivalent(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a
                .trim_end_matches('.')
                .eq_ignore_ascii_case(b.trim_end_matches('.')),
            _ => self == other,
        }
    }
}

impl From<Ipv4Addr> for Host {
    fn from(addr: Ipv4Addr) -> Self {
        Host::Ipv4(addr)
    }
}

impl From<Ipv6Addr> for Host {
    fn from(addr: Ipv6Addr) -> Self {
        Host::Ipv6(addr)
    }
}

impl From<std::net::IpAddr> for Host {
    fn from(addr: std::net::IpAddr) -> Self {
        match addr {
            std::net::IpAddr::V4(a) => Host::Ipv4(a),
            std::net::IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

impl FromStr for Uri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

impl FromStr for SipUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SipUri::parse(s)
    }
}

impl FromStr for Host {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Host::parse(s)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(uri) => uri.fmt(f),
            Uri::Absolute(uri) => write!(f, "{}:{}", uri.scheme, uri.rest),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for param in &self.params {
            write!(f, ";{param}")?;
        }
        for (i, (name, value)) in self.headers.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{name}={value}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::Ipv4(addr) => write!(f, "{addr}"),
            Host::Ipv6(addr) => write!(f, "[{addr}]"),
        }
    }
}

/// Resolves `%HH` escapes into octets; anything else (including a `%` not
/// followed by two hex digits) is copied as it is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Escapes every octet for which `keep` is false as `%HH`.
pub(crate) fn percent_encode(bytes: &[u8], keep: fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if keep(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits before the first byte in `stops`.
fn split_at_any<'a>(s: &'a str, stops: &[u8]) -> (&'a str, &'a str) {
    match s.bytes().position(|b| stops.contains(&b)) {
        Some(i) => (s.get(..i).unwrap_or(""), s.get(i..).unwrap_or("")),
        None => (s, ""),
    }
}

/// `hostport = host [ ":" port ]`.
pub(crate) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(UriError::Host)?;
        let host = s.get(..=end).ok_or(UriError::Host)?;
        match s.get(end + 1..).unwrap_or("") {
            "" => (host, None),
            rest => (host, Some(rest.strip_prefix(':').ok_or(UriError::Host)?)),
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    let host = Host::parse(host)?;
    let port = match port {
        Some(p) => Some(parse_port(p).ok_or(UriError::Port)?),
        None => None,
    };
    Ok((host, port))
}

pub(crate) fn parse_port(s: &str) -> Option<u16> {
    super::grammar::parse_digits(s, u64::from(u16::MAX)).map(|p| p as u16)
}

fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    if let Ok(addr) = s.parse() {
        return Some(addr);
    }
    // RFC 5118 §4.10: RFC 3261's ABNF let "::" before an IPv4 tail be
    // written ":::"; accept that one spelling and nothing looser.
    let i = s.find(":::")?;
    let (head, tail) = (s.get(..i)?, s.get(i + 3..)?);
    if head.contains("::") || tail.parse::<Ipv4Addr>().is_err() {
        return None;
    }
    format!("{head}::{tail}").parse().ok()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// Every `%` must start a `%HH` escape.
fn check_escapes(s: &str) -> Result<(), UriError> {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(UriError::Escape);
        }
    }
    Ok(())
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `unreserved = alphanum / mark`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// `reserved = ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+" / "$" / ","`.
fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b','
    )
}

/// `uric`, plus `[`, `]` and `#` that real absolute URIs carry.
fn is_uric(b: u8) -> bool {
    is_unreserved(b) || is_reserved(b) || matches!(b, b'%' | b'[' | b']' | b'#')
}

/// `user = 1*( unreserved / escaped / user-unreserved )` minus the `%`.
fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

/// `paramchar = param-unreserved / unreserved / escaped`, non-empty.
fn is_param_text(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$' | b'%')
        })
        && check_escapes(s).is_ok()
}

/// `hnv-unreserved / unreserved` (escapes checked separately).
fn is_header_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

/// Resolves escapes of characters outside `reserved` (those are equivalent
/// to their escapes, RFC 3261 §19.1.4) and upper-cases the hex of the rest.
fn normalize(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            let b = h << 4 | l;
            if b.is_ascii() && !is_reserved(b) && b != b'%' && !b.is_ascii_control() {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
            i += 3;
            continue;
        }
        // Non-ASCII bytes cannot occur: every URI character set is ASCII.
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

fn normalize_opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(normalize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        SipUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn rfc3261_examples_parse_and_print_back() {
        // RFC 3261 §19.1.3.
        for text in [
            "sip:alice@atlanta.com",
            "sip:alice:secretword@atlanta.com;transport=tcp",
            "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            "sips:1212@gateway.com",
            "sip:alice@192.0.2.4",
            "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
            "sip:alice;day=tuesday@atlanta.com",
        ] {
            assert_eq!(sip(text).to_string(), text);
        }
        let u = sip("sip:alice:secretword@atlanta.com:5061;transport=tcp;lr");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secretword"));
        assert_eq!(u.host, Host::Domain("atlanta.com".into()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.lr());
        let u = sip("sip:alice;day=tuesday@atlanta.com");
        assert_eq!(u.user.as_deref(), Some("alice;day=tuesday"));
        assert!(u.params.is_empty());
        let u = sip("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com");
        assert_eq!(u.user, None);
        assert_eq!(u.headers, [("to".into(), "alice%40atlanta.com".into())]);
    }

    #[test]
    fn torture_uris() {
        // RFC 4475 §3.1.1.2: every legal oddity in the user and password.
        let u = sip(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(
            u.user.as_deref(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password.as_deref(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        // §3.1.1.3 and §3.1.1.4: escapes.
        let u = sip("sip:sips%3Auser%40example.com@example.net");
        assert_eq!(u.decoded_user().unwrap(), b"sips:user@example.com");
        let u = sip("sip:null-%00-null@example.com");
        assert_eq!(u.decoded_user().unwrap(), b"null-\0-null");
        let u = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert_eq!(u.params.len(), 2);
        assert!(u.equivalent(&sip("sip:caller@host5.example.net;lr;name=value%25%34%31")));
        // §3.1.1.9: the user part holds a parameter and an escaped '@'.
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert!(u.params.is_empty());
    }

    #[test]
    fn ipv6_references() {
        // RFC 5118 §4.1, §4.3, §4.4, §4.9, §4.10.
        let u = sip("sip:[2001:db8::10]");
        assert_eq!(u.host, Host::Ipv6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, None);
        let u = sip("sip:[2001:db8::10:5070]");
        assert_eq!(u.host, Host::Ipv6("2001:db8::10:5070".parse().unwrap()));
        assert_eq!(u.port, None);
        let u = sip("sip:[2001:db8::10]:5070;lr");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.to_string(), "sip:[2001:db8::10]:5070;lr");
        let u = sip("sip:ted@[::ffff:192.0.2.2]");
        assert_eq!(u.host, Host::Ipv6("::ffff:192.0.2.2".parse().unwrap()));
        let three = sip("sip:user@[2001:db8:::192.0.2.1]");
        assert_eq!(three, sip("sip:user@[2001:db8::192.0.2.1]"));
        assert_eq!(three.to_string(), "sip:user@[2001:db8::c000:201]");
        // §4.2: an IPv6 address without its brackets.
        assert_eq!(SipUri::parse("sip:2001:db8::10"), Err(UriError::Host));
        assert_eq!(SipUri::parse("sip:[2001:db8::10"), Err(UriError::Host));
        assert_eq!(SipUri::parse("sip:[::1:::2]"), Err(UriError::Host));
        assert_eq!(SipUri::parse("sip:[::1]x"), Err(UriError::Host));
    }

    #[test]
    fn other_schemes_are_opaque() {
        for text in [
            "tel:+1-201-555-0123",
            "nobodyKnowsThisScheme:totallyopaquecontent",
            "soap.beep://192.0.2.103:3002",
            "isbn:2983792873",
            "http://www.example.com",
            "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        ] {
            let uri = Uri::parse(text).unwrap();
            assert!(uri.as_sip().is_none());
            assert_eq!(uri.to_string(), text);
        }
        assert_eq!(Uri::parse("tel:").unwrap_err(), UriError::Empty);
        assert_eq!(Uri::parse("1tel:1").unwrap_err(), UriError::Scheme);
        assert_eq!(Uri::parse("no-colon").unwrap_err(), UriError::Scheme);
        assert_eq!(Uri::parse("x:a b").unwrap_err(), UriError::Char);
        assert_eq!(Uri::parse("x:a%g0").unwrap_err(), UriError::Escape);
        assert_eq!(Uri::parse("SIP:a@b").unwrap().scheme(), "sip");
    }

    #[test]
    fn malformed_uris() {
        for (text, err) in [
            ("sip:", UriError::Host),
            ("sip:@example.com", UriError::User),
            ("sip:a b@example.com", UriError::User),
            ("sip:u%4@example.com", UriError::User),
            ("sip:u:p ss@example.com", UriError::Password),
            ("sip:example.com:", UriError::Port),
            ("sip:example.com:65536", UriError::Port),
            ("sip:example.com:5x", UriError::Port),
            ("sip:exa mple.com", UriError::Host),
            ("sip:example..com", UriError::Host),
            ("sip:192.0.2.300", UriError::Host),
            ("sip:example.com;;lr", UriError::Param),
            ("sip:example.com;a=", UriError::Param),
            ("sip:example.com; lr", UriError::Param),
            ("sip:example.com?a", UriError::Header),
            ("sip:example.com?=b", UriError::Header),
            ("sip:example.com?a=<b>", UriError::Header),
            ("<sip:user@example.com>", UriError::Scheme),
        ] {
            assert_eq!(SipUri::parse(text), Err(err), "{text}");
        }
    }

    #[test]
    fn rfc3261_comparison_rules() {
        // RFC 3261 §19.1.4: equivalent pairs.
        for (a, b) in [
            (
                "sip:%61lice@atlanta.com;transport=TCP",
                "sip:alice@AtLanTa.CoM;Transport=tcp",
            ),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ] {
            assert!(sip(a).equivalent(&sip(b)), "{a} == {b}");
            assert!(sip(b).equivalent(&sip(a)), "{b} == {a}");
        }
        // ...and pairs that are not.
        for (a, b) in [
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            (
                "sip:bob@biloxi.com",
                "sip:bob@biloxi.com:6000;transport=tcp",
            ),
            (
                "sip:carol@chicago.com",
                "sip:carol@chicago.com?Subject=next%20meeting",
            ),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;security=off",
            ),
            ("sip:user%40x@example.com", "sip:user@x@example.com"),
            ("sips:bob@biloxi.com", "sip:bob@biloxi.com"),
        ] {
            let (Ok(a), Ok(b)) = (SipUri::parse(a), SipUri::parse(b)) else {
                // "user@x@example.com" does not even parse: not equivalent.
                continue;
            };
            assert!(!a.equivalent(&b), "{a} != {b}");
            assert!(!b.equivalent(&a), "{b} != {a}");
        }
    }

    #[test]
    fn builders_and_accessors() {
        let mut u = SipUri::new(Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
            .with_user("a b@c")
            .with_port(5060)
            .with_param("transport", Some("tcp"));
        assert_eq!(u.to_string(), "sip:a%20b%40c@192.0.2.1:5060;transport=tcp");
        assert_eq!(u.decoded_user().unwrap(), b"a b@c");
        u.set_param("TRANSPORT", Some("udp"));
        u.set_param("lr", None);
        assert_eq!(
            u.to_string(),
            "sip:a%20b%40c@192.0.2.1:5060;transport=udp;lr"
        );
        u.remove_param("lr");
        assert!(!u.lr());
        assert_eq!(sip(&u.to_string()), u);
        assert_eq!(percent_decode("%4"), b"%4");
    }
}
