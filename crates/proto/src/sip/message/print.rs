//! Printing messages (RFC 3261 §7) and building the ones a transaction layer
//! sends: a response to a request (§8.2.6), a request from its parts
//! (§8.1.1), and the standard reason phrases (§21).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use super::grammar::is_token;
use super::headers::HeaderError;
use super::{
    CSeq, CallId, ContentType, Headers, Message, Method, NameAddr, Request, Response, SIP_VERSION,
    Uri, Via,
};

impl Request {
    /// A request with no header fields and no body; see also
    /// [`Request::builder`].
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Starts a request; see [`RequestBuilder`].
    pub fn builder(method: Method, uri: Uri) -> RequestBuilder {
        RequestBuilder {
            request: Request::new(method, uri),
        }
    }

    /// The message as sent: CRLF line ends, one field value per line, and a
    /// Content-Length computed from the body (any in `headers` is ignored).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "{} {} {SIP_VERSION}\r\n",
            one_line(self.method.as_str()),
            one_line(&self.uri.to_string())
        );
        finish(head, &self.headers, &self.body)
    }
}

impl Response {
    /// A response with no header fields and no body.
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Response {
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` (RFC 3261 §8.2.6.2): every Via in order, From,
    /// To, Call-ID and CSeq copied as they are, and Timestamp in a 100
    /// (§8.2.6.1). A To tag is not added: see [`Response::add_to_tag`].
    pub fn for_request(request: &Request, status: u16, reason: &str) -> Response {
        let mut response = Response::new(status, reason);
        let copied: &[&str] = if status == 100 {
            &["Via", "From", "To", "Call-ID", "CSeq", "Timestamp"]
        } else {
            &["Via", "From", "To", "Call-ID", "CSeq"]
        };
        for name in copied {
            let values: Vec<&str> = if *name == "Via" {
                request.headers.get_all(name).collect()
            } else {
                request.headers.get(name).into_iter().collect()
            };
            for value in values {
                response.headers.push(name, value);
            }
        }
        response
    }

    /// Adds `;tag=<tag>` to the To header field unless it has a tag already
    /// (§8.2.6.2); returns whether it did.
    pub fn add_to_tag(&mut self, tag: &str) -> Result<bool, HeaderError> {
        if !is_token(tag) {
            return Err(HeaderError::Malformed("tag is not a token"));
        }
        let to = self.headers.to()?;
        if to.tag.is_some() {
            return Ok(false);
        }
        let value = format!("{};tag={tag}", self.headers.get("To").unwrap_or_default());
        self.headers.set("To", value);
        Ok(true)
    }

    /// The message as sent; see [`Request::to_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "{SIP_VERSION} {:03} {}\r\n",
            self.status,
            one_line(&self.reason)
        );
        finish(head, &self.headers, &self.body)
    }
}

impl Message {
    /// The message as sent; see [`Request::to_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

/// The wire form, with a body that is not UTF-8 shown lossily: for logs.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// The wire form, with a body that is not UTF-8 shown lossily: for logs.
impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Request(r) => r.fmt(f),
            Message::Response(r) => r.fmt(f),
        }
    }
}

/// Appends the header fields, Content-Length, the empty line and the body.
fn finish(mut head: String, headers: &Headers, body: &[u8]) -> Vec<u8> {
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l") {
            continue;
        }
        head.push_str(&one_line(name));
        head.push(':');
        if !value.is_empty() {
            head.push(' ');
            head.push_str(&one_line(value));
        }
        head.push_str("\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// CR and LF would end the line early (and could smuggle a header field
/// in): they print as spaces.
fn one_line(s: &str) -> Cow<'_, str> {
    if s.contains(['\r', '\n']) {
        Cow::Owned(s.replace(['\r', '\n'], " "))
    } else {
        Cow::Borrowed(s)
    }
}

/// Builds a request field by field, in the order the calls are made. The
/// CSeq method is the request's; Max-Forwards defaults to 70 (§8.1.1.6).
///
/// ```
/// use ipphone_proto::sip::message::*;
///
/// let uri: Uri = "sip:bob@biloxi.example.com".parse().unwrap();
/// let from: NameAddr = "Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl".parse().unwrap();
/// let request = Request::builder(Method::Invite, uri.clone())
///     .via(&"SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKnashds8".parse().unwrap())
///     .from(&from)
///     .to(&NameAddr::new(uri))
///     .call_id(&CallId::new("3848276298220188511@atlanta.example.com").unwrap())
///     .cseq(1)
///     .body(&ContentType::sdp(), b"v=0\r\n".to_vec())
///     .build();
/// assert_eq!(Message::parse(&request.to_bytes()).unwrap(), Message::Request(request));
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    request: Request,
}

impl RequestBuilder {
    pub fn via(self, via: &Via) -> Self {
        self.header("Via", via.to_string())
    }

    pub fn max_forwards(self, hops: u8) -> Self {
        self.header("Max-Forwards", hops.to_string())
    }

    pub fn from(self, from: &NameAddr) -> Self {
        self.header("From", from.to_string())
    }

    pub fn to(self, to: &NameAddr) -> Self {
        self.header("To", to.to_string())
    }

    pub fn call_id(self, call_id: &CallId) -> Self {
        self.header("Call-ID", call_id.to_string())
    }

    /// CSeq with this sequence number and the request's method.
    pub fn cseq(self, seq: u32) -> Self {
        let cseq = CSeq::new(seq, self.request.method.clone());
        self.header("CSeq", cseq.to_string())
    }

    pub fn contact(self, contact: &NameAddr) -> Self {
        self.header("Contact", contact.to_string())
    }

    pub fn route(self, route: &NameAddr) -> Self {
        self.header("Route", route.to_string())
    }

    /// Any other header field, as given.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.request.headers.push(name, value);
        self
    }

    pub fn body(mut self, content_type: &ContentType, body: Vec<u8>) -> Self {
        self.request
            .headers
            .set("Content-Type", content_type.to_string());
        self.request.body = body;
        self
    }

    pub fn build(mut self) -> Request {
        if !self.request.headers.contains("Max-Forwards") {
            self.request.headers.push("Max-Forwards", "70");
        }
        self.request
    }
}

/// The reason phrase RFC 3261 §21 and its extensions give a status code,
/// or the class's name for a code they do not define.
pub fn reason_phrase(status: u16) -> &'static str {
    defined_reason_phrase(status).unwrap_or(match status {
        100..=199 => "Provisional",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        _ => "Global Failure",
    })
}

fn defined_reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        439 => "First Hop Lacks Outbound Support",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3261 §24.2, F1, with its Content-Length counting CRLF line ends.
    const INVITE: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n\
        Max-Forwards: 70\r\n\
        To: Bob <sip:bob@biloxi.com>\r\n\
        From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:alice@pc33.atlanta.com>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 146\r\n\
        \r\n\
        v=0\r\n\
        o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.com\r\n\
        s=-\r\n\
        c=IN IP4 pc33.atlanta.com\r\n\
        t=0 0\r\n\
        m=audio 49172 RTP/AVP 0\r\n\
        a=rtpmap:0 PCMU/8000\r\n";

    fn invite() -> Request {
        match Message::parse(INVITE.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!("an INVITE"),
        }
    }

    #[test]
    fn canonical_printing_is_byte_exact_for_canonical_input() {
        assert_eq!(String::from_utf8(invite().to_bytes()).unwrap(), INVITE);
        assert_eq!(invite().to_string(), INVITE);
    }

    #[test]
    fn content_length_follows_the_body() {
        let mut r = invite();
        r.headers.push("Content-Length", "9999");
        r.body.truncate(5);
        let printed = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            printed.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"),
            "{printed}"
        );
        assert_eq!(printed.matches("Content-Length").count(), 1);
        r.headers.push("Subject", "two\r\nX-Injected: yes");
        r.method = Method::Other("A\r\nB".into());
        let printed = String::from_utf8(r.to_bytes()).unwrap();
        assert!(!printed.contains("\r\nX-Injected"));
        assert!(printed.starts_with("A  B sip:"));
    }

    #[test]
    fn responses_copy_what_section_8_2_6_2_says() {
        let mut request = invite();
        request
            .headers
            .push_front("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2");
        request.headers.push("Timestamp", "54");
        let mut ringing = Response::for_request(&request, 180, reason_phrase(180));
        assert_eq!(
            ringing.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["Via", "Via", "From", "To", "Call-ID", "CSeq"]
        );
        assert!(ringing.add_to_tag("a6c85cf").unwrap());
        assert!(!ringing.add_to_tag("other").unwrap());
        assert_eq!(
            ringing.headers.get("To"),
            Some("Bob <sip:bob@biloxi.com>;tag=a6c85cf")
        );
        assert!(ringing.add_to_tag("not a token").is_err());
        let printed = ringing.to_bytes();
        assert!(printed.starts_with(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP proxy"));
        assert_eq!(
            Message::parse(&printed).unwrap(),
            Message::Response(ringing)
        );
        let trying = Response::for_request(&request, 100, "Trying");
        assert_eq!(trying.headers.get("Timestamp"), Some("54"));
        assert_eq!(
            Response::new(200, "OK").add_to_tag("x"),
            Err(HeaderError::Missing("To"))
        );
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(486), "Busy Here");
        assert_eq!(reason_phrase(481), "Call/Transaction Does Not Exist");
        assert_eq!(reason_phrase(499), "Client Error");
        assert_eq!(reason_phrase(699), "Global Failure");
    }
}
