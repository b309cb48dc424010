//! SIP messages (RFC 3261 §7, §20, §25): parse and print.
//!
//! - [`Message::parse`] reads one UDP datagram (§18.3: Content-Length
//!   honoured, trailing octets dropped); [`StreamFramer`] cuts a TCP or TLS
//!   byte stream into messages and RFC 5626 keepalives.
//! - A parsed message is valid: start line, every header field this module
//!   types (Via, From, To, Contact, Route, Record-Route, CSeq, Call-ID,
//!   Max-Forwards, Content-Type, Expires, Date, Allow, Supported, Require,
//!   Proxy-Require, Unsupported), the mandatory fields, single-valued fields
//!   given once and a CSeq method equal to the request method.
//!   [`Response::for_malformed_request`] answers what fails with the 400 (or
//!   505) that RFC 4475 asks for, when the request carries enough to answer.
//! - [`Headers`] keeps the fields as (name, value) strings in order; the
//!   typed values ([`Via`], [`NameAddr`], [`CSeq`]...) parse from and print
//!   to those strings. Authentication fields stay raw for the digest module.
//! - Printing ([`Message::to_bytes`]) is canonical: CRLF line ends, one
//!   field value per line, and a Content-Length that matches the body.
//!
//! Files: `uri` (SIP and other URIs), `headers` (the field list, names and
//! compact forms), one file per typed field (`via`, `name_addr`, `cseq`,
//! `content_type`, `date`, `scalar` for the one-word fields), `parse`,
//! `print` (with the response and request builders) and `framer`.

mod content_type;
mod cseq;
mod date;
mod framer;
mod grammar;
mod headers;
mod method;
mod name_addr;
mod parse;
mod print;
mod scalar;
mod uri;
mod via;

pub use content_type::ContentType;
pub use cseq::CSeq;
pub use date::SipDate;
pub use framer::{FramingError, MAX_MESSAGE_LEN, PING, PONG, StreamFramer, StreamItem};
pub use grammar::Param;
pub use headers::{HeaderError, Headers, canonical_name};
pub use method::Method;
pub use name_addr::{Contact, NameAddr, QValue};
pub use parse::ParseError;
pub use print::{RequestBuilder, reason_phrase};
pub use scalar::{CallId, ContentLength, Expires, MaxForwards};
pub use uri::{AbsoluteUri, Host, SipUri, Uri, UriError, percent_decode};
pub use via::{MAGIC_COOKIE, Rport, Transport, Via};

/// The only protocol version spoken (RFC 3261 §7.1).
pub const SIP_VERSION: &str = "SIP/2.0";

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// 100 to 699.
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Request(_) => None,
            Message::Response(r) => Some(r),
        }
    }
}

impl From<Request> for Message {
    fn from(request: Request) -> Self {
        Message::Request(request)
    }
}

impl From<Response> for Message {
    fn from(response: Response) -> Self {
        Message::Response(response)
    }
}
