//! The header fields of a message (RFC 3261 §7.3, §20): an ordered list of
//! (name, value) pairs with case-insensitive names, compact forms mapped to
//! their full names, and typed accessors for the fields a phone acts on.
//!
//! The parser stores one entry per value: a comma-separated list such as
//! `Via: a, b` becomes two `Via` entries (§7.3.1 makes the two spellings
//! equivalent), while fields whose values contain commas of their own
//! (credentials, challenges, dates, free text, anything unknown) are never
//! split.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::Method;
use super::content_type::ContentType;
use super::cseq::CSeq;
use super::grammar::{is_token, split_list};
use super::name_addr::{Contact, NameAddr};
use super::scalar::{CallId, Expires, MaxForwards};
use super::uri::UriError;
use super::via::Via;

/// Why a header field value does not parse as its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("no {0} header field")]
    Missing(&'static str),
    #[error("{0}")]
    Malformed(&'static str),
    #[error("{0}")]
    Uri(#[from] UriError),
}

/// How the parser treats a header field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A comma-separated list: one entry per element.
    List,
    /// One value; a second occurrence makes the message invalid.
    Single,
    /// Kept whole and may repeat: credentials, challenges, dates, text,
    /// and every field this table does not know.
    Raw,
}

struct Known {
    name: &'static str,
    compact: Option<u8>,
    kind: Kind,
}

const fn known(name: &'static str, compact: Option<u8>, kind: Kind) -> Known {
    Known {
        name,
        compact,
        kind,
    }
}

/// Header fields by their canonical spelling, with compact forms (RFC 3261
/// §7.3.3 and the IANA registry: RFC 3265, 3515, 3892, 3841, 4028, 4474).
const KNOWN: &[Known] = &[
    known("Accept", None, Kind::List),
    known("Accept-Contact", Some(b'a'), Kind::List),
    known("Accept-Encoding", None, Kind::List),
    known("Accept-Language", None, Kind::List),
    known("Alert-Info", None, Kind::List),
    known("Allow", None, Kind::List),
    known("Allow-Events", Some(b'u'), Kind::List),
    known("Authentication-Info", None, Kind::Raw),
    known("Authorization", None, Kind::Raw),
    known("Call-ID", Some(b'i'), Kind::Single),
    known("Call-Info", None, Kind::List),
    known("Contact", Some(b'm'), Kind::List),
    known("Content-Disposition", None, Kind::Single),
    known("Content-Encoding", Some(b'e'), Kind::List),
    known("Content-Language", None, Kind::List),
    known("Content-Length", Some(b'l'), Kind::Single),
    known("Content-Type", Some(b'c'), Kind::Single),
    known("CSeq", None, Kind::Single),
    known("Date", None, Kind::Single),
    known("Error-Info", None, Kind::List),
    known("Event", Some(b'o'), Kind::Single),
    known("Expires", None, Kind::Single),
    known("From", Some(b'f'), Kind::Single),
    known("Identity", Some(b'y'), Kind::Raw),
    known("Identity-Info", Some(b'n'), Kind::Raw),
    known("In-Reply-To", None, Kind::List),
    known("Max-Forwards", None, Kind::Single),
    known("MIME-Version", None, Kind::Single),
    known("Min-Expires", None, Kind::Single),
    known("Min-SE", None, Kind::Single),
    known("Organization", None, Kind::Raw),
    known("P-Asserted-Identity", None, Kind::List),
    known("P-Preferred-Identity", None, Kind::List),
    known("Path", None, Kind::List),
    known("Priority", None, Kind::Single),
    known("Proxy-Authenticate", None, Kind::Raw),
    known("Proxy-Authorization", None, Kind::Raw),
    known("Proxy-Require", None, Kind::List),
    known("RAck", None, Kind::Single),
    known("Reason", None, Kind::List),
    known("Record-Route", None, Kind::List),
    known("Refer-To", Some(b'r'), Kind::Single),
    known("Referred-By", Some(b'b'), Kind::Single),
    known("Reject-Contact", Some(b'j'), Kind::List),
    known("Reply-To", None, Kind::Single),
    known("Request-Disposition", Some(b'd'), Kind::List),
    known("Require", None, Kind::List),
    known("Retry-After", None, Kind::Raw),
    known("Route", None, Kind::List),
    known("RSeq", None, Kind::Single),
    known("Security-Client", None, Kind::List),
    known("Security-Server", None, Kind::List),
    known("Security-Verify", None, Kind::List),
    known("Server", None, Kind::Raw),
    known("Service-Route", None, Kind::List),
    known("Session-Expires", Some(b'x'), Kind::Single),
    known("Subject", Some(b's'), Kind::Raw),
    known("Subscription-State", None, Kind::Single),
    known("Supported", Some(b'k'), Kind::List),
    known("Timestamp", None, Kind::Raw),
    known("To", Some(b't'), Kind::Single),
    known("Unsupported", None, Kind::List),
    known("User-Agent", None, Kind::Raw),
    known("Via", Some(b'v'), Kind::List),
    known("Warning", None, Kind::List),
    known("WWW-Authenticate", None, Kind::Raw),
];

fn lookup(name: &str) -> Option<&'static Known> {
    if let [c] = name.as_bytes() {
        let c = c.to_ascii_lowercase();
        return KNOWN.iter().find(|k| k.compact == Some(c));
    }
    KNOWN.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// The canonical spelling of a header field name: compact forms expanded
/// (`i` → `Call-ID`), known names in their RFC case (`cseq` → `CSeq`),
/// anything else as given.
pub fn canonical_name(name: &str) -> Cow<'_, str> {
    match lookup(name) {
        Some(k) => Cow::Borrowed(k.name),
        None => Cow::Borrowed(name),
    }
}

/// The canonical name as a `'static` string, for known fields only.
pub(crate) fn known_name(name: &str) -> Option<&'static str> {
    lookup(name).map(|k| k.name)
}

pub(crate) fn kind(name: &str) -> Kind {
    lookup(name).map_or(Kind::Raw, |k| k.kind)
}

/// The canonical name, and the value split into list elements if the field
/// is a list.
fn split_value(name: &str, value: String) -> (String, Vec<String>) {
    let name = canonical_name(name).into_owned();
    if kind(&name) == Kind::List && value.contains(',') {
        let values = split_list(&value).into_iter().map(str::to_owned).collect();
        (name, values)
    } else {
        (name, vec![value])
    }
}

/// The header fields of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every (name, value) pair in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The first value of `name` (any case, full or compact form).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name).into_owned();
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a value. The name is stored in its canonical spelling. The
    /// value of a list field (Via, Contact, Route, Allow, Supported...) is
    /// split at its top-level commas into one entry per element, as the
    /// parser stores it; any other value is stored whole.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        let (name, values) = split_value(name, value.into());
        self.entries
            .extend(values.into_iter().map(|v| (name.clone(), v)));
    }

    /// Inserts a value (split like [`Headers::push`]) before all others: a
    /// proxy's or a client's own Via.
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        let (name, values) = split_value(name, value.into());
        let entries = values.into_iter().map(|v| (name.clone(), v));
        self.entries.splice(0..0, entries);
    }

    /// Replaces every value of `name` by `value` (split like
    /// [`Headers::push`]), at the position of the first one, or appends it.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let (name, values) = split_value(name, value.into());
        let Some(first) = self
            .entries
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        else {
            self.entries
                .extend(values.into_iter().map(|v| (name.clone(), v)));
            return;
        };
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        let entries = values.into_iter().map(|v| (name.clone(), v));
        self.entries.splice(first..first, entries);
    }

    /// Removes every value of `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let name = canonical_name(name);
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        before - self.entries.len()
    }

    /// Appends a typed value.
    pub fn push_typed(&mut self, name: &str, value: &impl fmt::Display) {
        self.push(name, value.to_string());
    }

    /// The first value of `name` parsed as `T`; `Ok(None)` if absent.
    pub fn typed<T: FromStr<Err = HeaderError>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, HeaderError> {
        self.get(name).map(str::parse).transpose()
    }

    /// Every value of `name` parsed as `T`. Values of list fields are split
    /// at commas first (an entry pushed as `"a, b"` gives two), and empty
    /// elements are skipped.
    pub fn typed_all<T: FromStr<Err = HeaderError>>(
        &self,
        name: &str,
    ) -> Result<Vec<T>, HeaderError> {
        let list = kind(name) == Kind::List;
        let mut out = Vec::new();
        for value in self.get_all(name) {
            let parts = if list { split_list(value) } else { vec![value] };
            for part in parts.into_iter().filter(|p| !p.is_empty()) {
                out.push(part.parse()?);
            }
        }
        Ok(out)
    }

    fn required<T: FromStr<Err = HeaderError>>(
        &self,
        name: &'static str,
    ) -> Result<T, HeaderError> {
        self.typed(name)?.ok_or(HeaderError::Missing(name))
    }

    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        self.required("From")
    }

    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        self.required("To")
    }

    pub fn call_id(&self) -> Result<CallId, HeaderError> {
        self.required("Call-ID")
    }

    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        self.required("CSeq")
    }

    /// Every Via, topmost first.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        self.typed_all("Via")
    }

    pub fn top_via(&self) -> Result<Via, HeaderError> {
        self.vias()?
            .into_iter()
            .next()
            .ok_or(HeaderError::Missing("Via"))
    }

    pub fn contacts(&self) -> Result<Vec<Contact>, HeaderError> {
        self.typed_all("Contact")
    }

    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.typed_all("Route")
    }

    pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.typed_all("Record-Route")
    }

    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        Ok(self.typed::<MaxForwards>("Max-Forwards")?.map(|m| m.0))
    }

    pub fn content_type(&self) -> Result<Option<ContentType>, HeaderError> {
        self.typed("Content-Type")
    }

    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        Ok(self.typed::<Expires>("Expires")?.map(|e| e.0))
    }

    /// The methods of every Allow header field.
    pub fn allow(&self) -> Result<Vec<Method>, HeaderError> {
        self.typed_all("Allow")
    }

    /// The option tags of every Supported header field.
    pub fn supported(&self) -> Result<Vec<String>, HeaderError> {
        self.option_tags("Supported")
    }

    /// The option tags of every Require header field.
    pub fn require(&self) -> Result<Vec<String>, HeaderError> {
        self.option_tags("Require")
    }

    fn option_tags(&self, name: &str) -> Result<Vec<String>, HeaderError> {
        Ok(self
            .typed_all::<OptionTag>(name)?
            .into_iter()
            .map(|t| t.0)
            .collect())
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a str, &'a str),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// An option tag (RFC 3261 §19.2): a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OptionTag(pub(crate) String);

impl FromStr for OptionTag {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_token(s) {
            Ok(OptionTag(s.to_owned()))
        } else {
            Err(HeaderError::Malformed("option tag is not a token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_canonical_and_case_insensitive() {
        for (given, canonical) in [
            ("i", "Call-ID"),
            ("M", "Contact"),
            ("f", "From"),
            ("t", "To"),
            ("v", "Via"),
            ("l", "Content-Length"),
            ("c", "Content-Type"),
            ("k", "Supported"),
            ("s", "Subject"),
            ("e", "Content-Encoding"),
            ("o", "Event"),
            ("r", "Refer-To"),
            ("b", "Referred-By"),
            ("u", "Allow-Events"),
            ("x", "Session-Expires"),
            ("cseq", "CSeq"),
            ("CALL-ID", "Call-ID"),
            ("www-authenticate", "WWW-Authenticate"),
            ("X-Custom", "X-Custom"),
            ("C%6Fntact", "C%6Fntact"),
        ] {
            assert_eq!(canonical_name(given), canonical, "{given}");
        }
    }

    #[test]
    fn get_set_push_remove_keep_order() {
        let mut h = Headers::new();
        h.push("v", "SIP/2.0/UDP a");
        h.push("X-A", "1");
        h.push("Via", "SIP/2.0/UDP b");
        h.push("x-a", "2");
        assert_eq!(h.get("VIA"), Some("SIP/2.0/UDP a"));
        assert_eq!(
            h.get_all("v").collect::<Vec<_>>(),
            ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
        );
        assert_eq!(h.get_all("X-a").count(), 2);
        h.push_front("Via", "SIP/2.0/TCP first");
        assert_eq!(h.iter().next(), Some(("Via", "SIP/2.0/TCP first")));
        h.set("x-A", "3");
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [
                ("Via", "SIP/2.0/TCP first"),
                ("Via", "SIP/2.0/UDP a"),
                ("x-A", "3"),
                ("Via", "SIP/2.0/UDP b"),
            ]
        );
        h.set("Subject", "new");
        assert_eq!(h.get("s"), Some("new"));
        assert_eq!(h.remove("via"), 3);
        assert_eq!(h.len(), 2);
        assert!(!h.contains("Via"));
        assert_eq!(h.remove("Via"), 0);
    }

    #[test]
    fn typed_accessors() {
        let mut h = Headers::new();
        h.push(
            "Via",
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b",
        );
        h.push("Allow", "INVITE, ACK,BYE");
        h.push("k", "");
        h.push("Require", "100rel");
        h.push("Max-Forwards", "070");
        h.push("f", "Alice <sip:alice@example.com>;tag=1");
        assert_eq!(h.vias().unwrap().len(), 2);
        assert_eq!(h.top_via().unwrap().branch.as_deref(), Some("z9hG4bK1"));
        assert_eq!(
            h.allow().unwrap(),
            [Method::Invite, Method::Ack, Method::Bye]
        );
        assert!(h.supported().unwrap().is_empty());
        assert_eq!(h.require().unwrap(), ["100rel"]);
        assert_eq!(h.max_forwards().unwrap(), Some(70));
        assert_eq!(h.from().unwrap().tag.as_deref(), Some("1"));
        assert_eq!(h.to(), Err(HeaderError::Missing("To")));
        assert_eq!(h.expires(), Ok(None));
        h.push("Require", "a b");
        assert!(h.require().is_err());
    }
}
