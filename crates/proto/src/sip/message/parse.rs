//! Parsing a message (RFC 3261 §7, §18.3): start line, header section with
//! folding and compact forms, validation of the fields a phone acts on, and
//! the body by Content-Length. Also the 400 (or 505) a UAS sends back for a
//! request that does not parse (RFC 3261 §21.4.1, RFC 4475 §3.1.2).

use std::str;

use thiserror::Error;

use super::grammar::{is_token, is_wsp, split_list, trim_wsp};
use super::headers::{HeaderError, Headers, Kind, OptionTag, kind, known_name};
use super::name_addr::{Contact, NameAddr};
use super::scalar::{CallId, ContentLength, Expires, MaxForwards};
use super::uri::{Uri, UriError};
use super::{CSeq, ContentType, Message, Method, Request, Response, SIP_VERSION, SipDate, Via};

/// Why bytes are not a valid SIP message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("no message, only line ends (a keepalive) or nothing")]
    Empty,
    #[error("the header section does not end with an empty line")]
    Unterminated,
    #[error("the header section is not UTF-8")]
    NotUtf8,
    #[error("malformed start line")]
    StartLine,
    #[error("unsupported protocol version {0}")]
    Version(String),
    #[error("status code not between 100 and 699")]
    Status,
    #[error("malformed Request-URI: {0}")]
    RequestUri(UriError),
    #[error("Request-URI with headers (RFC 3261 section 19.1.1)")]
    RequestUriHeaders,
    #[error("malformed header line {0}")]
    HeaderLine(usize),
    #[error("malformed {name} header field: {error}")]
    Header {
        name: &'static str,
        error: HeaderError,
    },
    #[error("missing {0} header field")]
    Missing(&'static str),
    #[error("more than one {0} header field")]
    Duplicate(&'static str),
    #[error("Content-Length {declared} but only {available} body bytes")]
    BodyTooShort { declared: usize, available: usize },
    #[error("CSeq method {cseq} does not match the request method {method}")]
    MethodMismatch { method: Method, cseq: Method },
}

impl Message {
    /// Parses one datagram. Leading CRLFs are skipped. The body is what
    /// follows the header section, cut to Content-Length (RFC 4475
    /// §3.1.1.8); a shorter body is an error; without Content-Length the
    /// whole rest is the body (§18.3, RFC 4475 §3.4.1). Content-Length
    /// itself is not kept among the header fields: it describes the body,
    /// and the printer writes it from the body's length.
    pub fn parse(datagram: &[u8]) -> Result<Message, ParseError> {
        let data = skip_line_ends(datagram);
        if data.is_empty() {
            return Err(ParseError::Empty);
        }
        let (head_end, body_start) = find_head_end(data, 0).ok_or(ParseError::Unterminated)?;
        let head = data.get(..head_end).ok_or(ParseError::Unterminated)?;
        let head = str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
        let (start_line, fields) = split_fields(head, false)?;
        let start = parse_start_line(start_line)?;

        let mut headers = Headers::new();
        let mut content_length = None;
        for field in fields {
            let name = super::canonical_name(field.name).into_owned();
            if name == "Content-Length" {
                let length =
                    field
                        .value
                        .parse::<ContentLength>()
                        .map_err(|error| ParseError::Header {
                            name: "Content-Length",
                            error,
                        })?;
                if content_length.replace(length.0 as usize).is_some() {
                    return Err(ParseError::Duplicate("Content-Length"));
                }
                continue;
            }
            headers.push(&name, field.value);
        }
        validate(&headers)?;

        let rest = data.get(body_start..).unwrap_or(&[]);
        let body = match content_length {
            Some(declared) => rest
                .get(..declared)
                .ok_or(ParseError::BodyTooShort {
                    declared,
                    available: rest.len(),
                })?
                .to_vec(),
            None => rest.to_vec(),
        };
        match start {
            StartLine::Request(method, uri) => {
                if uri.as_sip().is_some_and(|u| !u.headers.is_empty()) {
                    return Err(ParseError::RequestUriHeaders);
                }
                let cseq = headers.cseq().map_err(|error| ParseError::Header {
                    name: "CSeq",
                    error,
                })?;
                if cseq.method != method {
                    return Err(ParseError::MethodMismatch {
                        method,
                        cseq: cseq.method,
                    });
                }
                Ok(Message::Request(Request {
                    method,
                    uri,
                    headers,
                    body,
                }))
            }
            StartLine::Response(status, reason) => Ok(Message::Response(Response {
                status,
                reason,
                headers,
                body,
            })),
        }
    }
}

impl Response {
    /// The response a UAS sends to a request that failed to parse with
    /// `error`: 505 for an unknown protocol version, 400 otherwise (RFC 3261
    /// §8.2.2, §21.4.1, RFC 4475 §3.1.2), with the error in the reason
    /// phrase. Via, From, To, Call-ID and CSeq are copied from the request
    /// (§8.2.6.2), parsed leniently, and `to_tag` is added to a To without a
    /// tag. `None` when no response is due or possible: `bytes` hold a
    /// response or an ACK, or lack a usable Via, From, To, Call-ID or CSeq.
    pub fn for_malformed_request(
        bytes: &[u8],
        error: &ParseError,
        to_tag: &str,
    ) -> Option<Response> {
        let data = skip_line_ends(bytes);
        let head = match find_head_end(data, 0) {
            Some((end, _)) => data.get(..end)?,
            None => data,
        };
        let head = String::from_utf8_lossy(head);
        let (start_line, fields) = split_fields(&head, true).ok()?;
        if start_line
            .get(..4)
            .is_some_and(|s| s.eq_ignore_ascii_case("SIP/"))
        {
            return None;
        }
        let method = start_line.split(' ').next()?;
        if !is_token(method) || method == "ACK" {
            return None;
        }

        let mut vias = Vec::new();
        let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
        for field in &fields {
            let value = field.value.as_str();
            match &*super::canonical_name(field.name) {
                "Via" => {
                    // Elements of nothing but separators (RFC 4475
                    // §3.1.2.1) are dropped.
                    let empty = |p: &&str| p.bytes().all(|b| b == b';' || is_wsp(b));
                    for part in split_list(value).into_iter().filter(|p| !empty(p)) {
                        vias.push(match part.parse::<Via>() {
                            Ok(_) => part.to_owned(),
                            Err(_) => Via::parse_lenient(part).ok()?.to_string(),
                        });
                    }
                }
                "From" => {
                    from.get_or_insert(value);
                }
                "To" => {
                    to.get_or_insert(value);
                }
                "Call-ID" => {
                    call_id.get_or_insert(value);
                }
                "CSeq" => {
                    cseq.get_or_insert(value);
                }
                _ => {}
            }
        }
        if vias.is_empty() {
            return None;
        }
        let from = match from?.parse::<NameAddr>() {
            Ok(_) => from?.to_owned(),
            Err(_) => NameAddr::parse_lenient(from?).ok()?.to_string(),
        };
        let to = match to?.parse::<NameAddr>() {
            Ok(addr) if addr.tag.is_some() => to?.to_owned(),
            Ok(_) => format!("{};tag={to_tag}", to?),
            Err(_) => {
                let mut addr = NameAddr::parse_lenient(to?).ok()?;
                addr.tag.get_or_insert_with(|| to_tag.to_owned());
                addr.to_string()
            }
        };
        let call_id = trim_wsp(call_id?);
        if call_id.is_empty() || call_id.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return None;
        }
        // Any number of digits: an overlarge CSeq is one reason to answer
        // 400 (RFC 4475 §3.1.2.4), and the answer must echo it.
        let cseq = trim_wsp(cseq?);
        let (number, cseq_method) = cseq.split_once([' ', '\t'])?;
        if number.is_empty()
            || !number.bytes().all(|b| b.is_ascii_digit())
            || !is_token(trim_wsp(cseq_method))
            || trim_wsp(cseq_method) == "ACK"
        {
            return None;
        }

        let mut headers = Headers::new();
        for via in vias {
            headers.push("Via", via);
        }
        headers.push("From", from);
        headers.push("To", to);
        headers.push("Call-ID", call_id);
        headers.push("CSeq", cseq);
        let (status, reason) = match error {
            ParseError::Version(_) => (505, "Version Not Supported".to_owned()),
            _ => (400, format!("Bad Request ({})", reason_text(error))),
        };
        Some(Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        })
    }
}

/// The error as reason-phrase text: characters outside `reserved`,
/// `unreserved` and space dropped.
fn reason_text(error: &ParseError) -> String {
    error
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || " -_.!~*'();/?:@&=+$,".contains(*c))
        .collect()
}

/// What a start line says.
enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

/// `Request-Line = Method SP Request-URI SP SIP-Version` or `Status-Line =
/// SIP-Version SP Status-Code SP Reason-Phrase`. Exactly one space between
/// elements (RFC 4475 §3.1.2.9, §3.1.2.10); a missing space after the
/// status code of an empty reason phrase is forgiven (§3.1.1.13).
fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if line
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("SIP/"))
    {
        let (version, rest) = line.split_once(' ').ok_or(ParseError::StartLine)?;
        check_version(version)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::Status);
        }
        let status: u16 = code.parse().map_err(|_| ParseError::Status)?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::Status);
        }
        if reason.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ParseError::StartLine);
        }
        return Ok(StartLine::Response(status, reason.to_owned()));
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine);
    };
    let method = method.parse().map_err(|_| ParseError::StartLine)?;
    if uri.is_empty() || version.is_empty() {
        return Err(ParseError::StartLine);
    }
    check_version(version)?;
    let uri = Uri::parse(uri).map_err(ParseError::RequestUri)?;
    Ok(StartLine::Request(method, uri))
}

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT`; only 2.0 is spoken.
fn check_version(version: &str) -> Result<(), ParseError> {
    let numbers = version.get(4..).ok_or(ParseError::StartLine)?;
    let well_formed = numbers.split_once('.').is_some_and(|(major, minor)| {
        [major, minor]
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if !well_formed {
        return Err(ParseError::StartLine);
    }
    if version.eq_ignore_ascii_case(SIP_VERSION) {
        Ok(())
    } else {
        Err(ParseError::Version(version.to_owned()))
    }
}

/// Every typed field parses, the single-valued ones appear once, and the
/// mandatory ones (RFC 3261 §8.1.1; Max-Forwards excepted for RFC 2543
/// peers, RFC 4475 §3.4.1) are there.
fn validate(headers: &Headers) -> Result<(), ParseError> {
    let mut seen: Vec<&'static str> = Vec::new();
    for (name, value) in headers {
        let Some(known) = known_name(name) else {
            continue;
        };
        let checked = match known {
            "Via" => value.parse::<Via>().map(drop),
            "From" | "To" | "Route" | "Record-Route" => value.parse::<NameAddr>().map(drop),
            "Contact" => value.parse::<Contact>().map(drop),
            "CSeq" => value.parse::<CSeq>().map(drop),
            "Call-ID" => value.parse::<CallId>().map(drop),
            "Max-Forwards" => value.parse::<MaxForwards>().map(drop),
            "Content-Type" => value.parse::<ContentType>().map(drop),
            "Expires" => value.parse::<Expires>().map(drop),
            "Date" => value.parse::<SipDate>().map(drop),
            "Allow" if !value.is_empty() => value.parse::<Method>().map(drop),
            "Supported" if !value.is_empty() => value.parse::<OptionTag>().map(drop),
            "Require" | "Proxy-Require" | "Unsupported" => value.parse::<OptionTag>().map(drop),
            _ => Ok(()),
        };
        checked.map_err(|error| ParseError::Header { name: known, error })?;
        if kind(known) == Kind::Single {
            if seen.contains(&known) {
                return Err(ParseError::Duplicate(known));
            }
            seen.push(known);
        }
    }
    for required in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if !headers.contains(required) {
            return Err(ParseError::Missing(required));
        }
    }
    Ok(())
}

/// One header field, unfolded.
pub(crate) struct Field<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: String,
}

/// Splits the header section (start line included, empty line excluded)
/// into the start line and the fields. Lines end in CRLF or a bare LF;
/// a line starting with white space continues the previous one, and the
/// fold becomes a single space (RFC 3261 §7.3.1). With `lenient`, lines that
/// are not fields are skipped instead of rejected.
pub(crate) fn split_fields(
    head: &str,
    lenient: bool,
) -> Result<(&str, Vec<Field<'_>>), ParseError> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or("");
    if start_line.contains('\r') && !lenient {
        return Err(ParseError::StartLine);
    }
    let mut fields: Vec<Field<'_>> = Vec::new();
    // The line after the last terminator is empty (head ends in a line end).
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        if line.is_empty() {
            continue;
        }
        let bad = ParseError::HeaderLine(line_no);
        if line.contains('\r') {
            if lenient {
                continue;
            }
            return Err(bad);
        }
        if line.bytes().next().is_some_and(is_wsp) {
            match fields.last_mut() {
                Some(field) => {
                    field.value.push(' ');
                    field.value.push_str(trim_wsp(line));
                }
                None if lenient => {}
                None => return Err(bad),
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            if lenient {
                continue;
            }
            return Err(bad);
        };
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            if lenient {
                continue;
            }
            return Err(bad);
        }
        fields.push(Field {
            name,
            value: value.to_owned(),
        });
    }
    for field in &mut fields {
        let trimmed = trim_wsp(&field.value);
        if trimmed.len() != field.value.len() {
            field.value = trimmed.to_owned();
        }
    }
    Ok((start_line, fields))
}

/// Skips CRLFs (and bare LFs) before a start line (RFC 3261 §7.5).
pub(crate) fn skip_line_ends(data: &[u8]) -> &[u8] {
    let mut rest = data;
    while let Some(after) = rest
        .strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
    {
        rest = after;
    }
    rest
}

/// Finds the empty line that ends the header section, searching from
/// `from`: returns (end of the header section, start of the body). The
/// header section ends just after the line end of its last line.
pub(crate) fn find_head_end(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < data.len() {
        if data[i] == b'\n' {
            match (data.get(i + 1), data.get(i + 2)) {
                (Some(b'\n'), _) => return Some((i + 1, i + 2)),
                (Some(b'\r'), Some(b'\n')) => return Some((i + 1, i + 3)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// The Content-Length a stream framer goes by: the fields are read
/// leniently, so a message whose other fields are broken can still be cut
/// out and answered. `Err(None)` if there is none, `Err(Some(()))` if it is
/// malformed or given twice with different values.
pub(crate) fn framing_length(head: &[u8]) -> Result<usize, Option<()>> {
    let head = String::from_utf8_lossy(head);
    let (_, fields) = split_fields(&head, true).map_err(|_| Some(()))?;
    let mut length = None;
    for field in &fields {
        if super::canonical_name(field.name) == "Content-Length" {
            let n = field
                .value
                .parse::<ContentLength>()
                .map_err(|_| Some(()))?
                .0 as usize;
            if length.replace(n).is_some_and(|previous| previous != n) {
                return Err(Some(()));
            }
        }
    }
    length.ok_or(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKhjhs8ass877\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:bob@example.com>\r\n\
        From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 63104 OPTIONS\r\n\
        Contact: <sip:alice@pc33.example.com>\r\n\
        Accept: application/sdp\r\n\
        Content-Length: 0\r\n\
        \r\n";

    fn parse(bytes: &[u8]) -> Message {
        Message::parse(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
    }

    fn replace(from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(OPTIONS.to_vec())
            .unwrap()
            .replace(from, to)
            .into_bytes()
    }

    #[test]
    fn a_plain_request() {
        let Message::Request(r) = parse(OPTIONS) else {
            panic!("a request")
        };
        assert_eq!(r.method, Method::Options);
        assert_eq!(r.uri.to_string(), "sip:bob@example.com");
        assert_eq!(r.headers.len(), 8, "Content-Length is framing, not kept");
        assert_eq!(r.headers.cseq().unwrap(), CSeq::new(63104, Method::Options));
        assert!(r.body.is_empty());
    }

    #[test]
    fn compact_forms_and_folding() {
        let bytes = b"\r\n\r\nINVITE sip:bob@example.com SIP/2.0\r\n\
            v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,\r\n SIP/2.0/TCP b.example.com\r\n\
            t: <sip:bob@example.com>\r\n\
            f: <sip:alice@example.com>\r\n ;tag=1\r\n\
            i: fold@example.com\r\n\
            CSeq: 1\r\n\tINVITE\r\n\
            m: <sip:alice@a.example.com>\r\n\
            k: 100rel, timer\r\n\
            s: folded\r\n   subject\r\n\
            c: application/sdp\r\n\
            l: 4\r\n\
            \r\n\
            v=0\r\nextra";
        let Message::Request(r) = parse(bytes) else {
            panic!("a request")
        };
        assert_eq!(r.headers.vias().unwrap().len(), 2);
        assert_eq!(
            r.headers.get("From"),
            Some("<sip:alice@example.com> ;tag=1")
        );
        assert_eq!(r.headers.from().unwrap().tag.as_deref(), Some("1"));
        assert_eq!(r.headers.get("Subject"), Some("folded subject"));
        assert_eq!(r.headers.supported().unwrap(), ["100rel", "timer"]);
        assert!(
            r.headers
                .content_type()
                .unwrap()
                .unwrap()
                .is("application", "sdp")
        );
        assert_eq!(r.body, b"v=0\r");
    }

    #[test]
    fn bare_lf_line_ends_are_accepted() {
        let lf = String::from_utf8(OPTIONS.to_vec())
            .unwrap()
            .replace("\r\n", "\n");
        assert_eq!(parse(lf.as_bytes()), parse(OPTIONS));
    }

    #[test]
    fn udp_bodies_by_content_length() {
        let body = replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Length: 3\r\n\r\nabcdef",
        );
        assert_eq!(parse(&body).body(), b"abc");
        let short = replace("Content-Length: 0\r\n\r\n", "Content-Length: 9\r\n\r\nabc");
        assert_eq!(
            Message::parse(&short),
            Err(ParseError::BodyTooShort {
                declared: 9,
                available: 3
            })
        );
        let none = replace("Content-Length: 0\r\n\r\n", "\r\nall of it");
        assert_eq!(parse(&none).body(), b"all of it");
        let twice = replace("Content-Length: 0\r\n", "Content-Length: 0\r\nl: 0\r\n");
        assert_eq!(
            Message::parse(&twice),
            Err(ParseError::Duplicate("Content-Length"))
        );
    }

    #[test]
    fn malformed_messages_are_errors() {
        let cases: Vec<(Vec<u8>, ParseError)> = vec![
            (b"".to_vec(), ParseError::Empty),
            (b"\r\n\r\n".to_vec(), ParseError::Empty),
            (
                OPTIONS[..OPTIONS.len() - 2].to_vec(),
                ParseError::Unterminated,
            ),
            (
                replace("OPTIONS sip", "OPTIONS  sip"),
                ParseError::StartLine,
            ),
            (
                replace("SIP/2.0\r\n", "SIP/2.0 \r\n"),
                ParseError::StartLine,
            ),
            (
                replace("SIP/2.0\r\n", "SIP/3.0\r\n"),
                ParseError::Version("SIP/3.0".into()),
            ),
            (replace("SIP/2.0\r\n", "SIP/2\r\n"), ParseError::StartLine),
            (
                replace("sip:bob@example.com SIP", "sip:bob@example.com?a=b SIP"),
                ParseError::RequestUriHeaders,
            ),
            (replace("Accept:", "Accept"), ParseError::HeaderLine(9)),
            (replace("Accept:", "Acc ept:"), ParseError::HeaderLine(9)),
            (replace("Accept:", "Acc\rept:"), ParseError::HeaderLine(9)),
            (
                replace("Max-Forwards: 70", "Max-Forwards: 256"),
                ParseError::Header {
                    name: "Max-Forwards",
                    error: HeaderError::Malformed("Max-Forwards is not a number from 0 to 255"),
                },
            ),
            (
                replace("Call-ID: a84b4c76e66710\r\n", ""),
                ParseError::Missing("Call-ID"),
            ),
            (
                replace("Max-Forwards: 70", "Max-Forwards: 70\r\nMax-Forwards: 69"),
                ParseError::Duplicate("Max-Forwards"),
            ),
            (
                replace("63104 OPTIONS", "63104 INVITE"),
                ParseError::MethodMismatch {
                    method: Method::Options,
                    cseq: Method::Invite,
                },
            ),
            (
                replace("OPTIONS sip", "OPTIONS <sip"),
                ParseError::RequestUri(UriError::Scheme),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                Message::parse(&bytes),
                Err(expected),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let mut latin1 = replace("Alice", "Al\u{e9}ce");
        let pos = latin1.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
        latin1.splice(pos..pos + 2, [0xe9]);
        assert_eq!(Message::parse(&latin1), Err(ParseError::NotUtf8));
    }

    #[test]
    fn responses() {
        let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>;tag=2\r\n\
            From: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let Message::Response(r) = parse(ok) else {
            panic!("a response")
        };
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        let text = String::from_utf8(ok.to_vec()).unwrap();
        let no_space = text.replace("200 OK", "100");
        assert_eq!(parse(no_space.as_bytes()).as_response().unwrap().reason, "");
        for (bad, err) in [
            ("200 OK", "99 Low"),
            ("200 OK", "700 High"),
            ("200 OK", "2000 OK"),
            ("200 OK", "20x OK"),
        ]
        .map(|(a, b)| (text.replace(a, b), ParseError::Status))
        {
            assert_eq!(Message::parse(bad.as_bytes()), Err(err));
        }
        assert_eq!(
            Message::parse(text.replace("SIP/2.0 200", "SIP/2.1 200").as_bytes()),
            Err(ParseError::Version("SIP/2.1".into()))
        );
        assert_eq!(
            Message::parse(text.replace("200 OK", "200 O\u{1}K").as_bytes()),
            Err(ParseError::StartLine)
        );
    }

    #[test]
    fn head_end_and_line_ends() {
        assert_eq!(find_head_end(b"A\r\n\r\nbody", 0), Some((3, 5)));
        assert_eq!(find_head_end(b"A\n\nbody", 0), Some((2, 3)));
        assert_eq!(find_head_end(b"A\r\nB\r\n", 0), None);
        assert_eq!(skip_line_ends(b"\r\n\nX"), b"X");
        assert_eq!(skip_line_ends(b"\r\n\rX"), b"\rX");
        assert_eq!(framing_length(b"X\r\nl: 5\r\nContent-Length: 5\r\n"), Ok(5));
        assert_eq!(
            framing_length(b"X\r\nl: 5\r\nContent-Length: 6\r\n"),
            Err(Some(()))
        );
        assert_eq!(
            framing_length(b"X\r\nContent-Length: -1\r\n"),
            Err(Some(()))
        );
        assert_eq!(framing_length(b"X\r\nTo: x\r\n"), Err(None));
    }

    #[test]
    fn answers_to_malformed_requests() {
        let bad = replace("63104 OPTIONS", "63104 INVITE");
        let err = Message::parse(&bad).unwrap_err();
        let r = Response::for_malformed_request(&bad, &err, "t1").unwrap();
        assert_eq!(r.status, 400);
        assert!(
            r.reason.starts_with("Bad Request (CSeq method INVITE"),
            "{}",
            r.reason
        );
        assert_eq!(r.headers.get("To"), Some("<sip:bob@example.com>;tag=t1"));
        assert_eq!(r.headers.get("CSeq"), Some("63104 INVITE"));
        let again = parse(&r.to_bytes());
        assert_eq!(again, Message::Response(r));

        let version = replace("SIP/2.0\r\n", "SIP/7.0\r\n");
        let err = Message::parse(&version).unwrap_err();
        let r = Response::for_malformed_request(&version, &err, "t1").unwrap();
        assert_eq!(
            (r.status, r.reason.as_str()),
            (505, "Version Not Supported")
        );

        let ack = replace("OPTIONS", "ACK");
        let ack = String::from_utf8(ack)
            .unwrap()
            .replace("Max-Forwards: 70", "Max-Forwards: x");
        let err = Message::parse(ack.as_bytes()).unwrap_err();
        assert_eq!(
            Response::for_malformed_request(ack.as_bytes(), &err, "t"),
            None
        );
        let no_call_id = replace("Call-ID: a84b4c76e66710\r\n", "");
        assert_eq!(
            Response::for_malformed_request(&no_call_id, &ParseError::Missing("Call-ID"), "t"),
            None
        );
        assert_eq!(
            Response::for_malformed_request(b"SIP/2.0 200 OK\r\n\r\n", &ParseError::Status, "t"),
            None
        );
        assert_eq!(
            Response::for_malformed_request(b"", &ParseError::Empty, "t"),
            None
        );
    }
}
