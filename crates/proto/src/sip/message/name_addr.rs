//! Addresses with parameters: From, To (RFC 3261 §20.20, §20.39), Contact
//! (§20.10), Route and Record-Route (§20.34, §20.30) and the like.
//!
//! `( name-addr / addr-spec ) *( SEMI param )`: a display name (token words or
//! a quoted string) and a `<URI>`, or a bare URI. After a bare URI every
//! parameter belongs to the header field, not to the URI (§20), which is why
//! a bare URI may not contain `,`, `?` or `;`.

use std::fmt;
use std::str::FromStr;

use super::grammar::{
    Cursor, Param, find_param, is_token_char, is_wsp, parse_params, quote, trim_wsp,
};
use super::headers::HeaderError;
use super::uri::Uri;

/// A `q` value (RFC 3261 §20.10): 0 to 1 in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QValue(u16);

impl QValue {
    /// `thousandths` above 1000 are clamped to 1.
    pub fn from_thousandths(thousandths: u16) -> QValue {
        QValue(thousandths.min(1000))
    }

    pub fn thousandths(self) -> u16 {
        self.0
    }
}

impl FromStr for QValue {
    type Err = HeaderError;

    /// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = HeaderError::Malformed("q is not a number from 0 to 1");
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        let frac_value = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
        match int {
            "0" => Ok(QValue(frac_value)),
            "1" if frac_value == 0 => Ok(QValue(1000)),
            _ => Err(bad),
        }
    }
}

impl fmt::Display for QValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1000 {
            return f.write_str("1");
        }
        let digits = format!("{:03}", self.0);
        let digits = digits.trim_end_matches('0');
        if digits.is_empty() {
            f.write_str("0")
        } else {
            write!(f, "0.{digits}")
        }
    }
}

/// An address with header parameters. `tag`, `expires` and `q` are lifted
/// out of the parameter list; everything else stays in `params`, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameAddr {
    /// The display name, unquoted and unescaped; token words are joined by
    /// single spaces.
    pub display_name: Option<String>,
    pub uri: Uri,
    pub tag: Option<String>,
    /// Contact `expires`; values above 2^32-1 read as 2^32-1 (§10.2.1.1).
    pub expires: Option<u32>,
    pub q: Option<QValue>,
    pub params: Vec<Param>,
}

/// A Contact header field value: an address or `*` (REGISTER only, §10.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Contact {
    Wildcard,
    Address(Box<NameAddr>),
}

impl NameAddr {
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display_name: None,
            uri,
            tag: None,
            expires: None,
            q: None,
            params: Vec::new(),
        }
    }

    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// An extension parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// Parses what a server answering a malformed request can salvage: if
    /// the value is not well formed but holds a `<URI>` that is, that URI
    /// and the parameters after it (RFC 4475 §3.1.2.6, §3.1.2.14, §3.1.2.15).
    pub(crate) fn parse_lenient(s: &str) -> Result<NameAddr, HeaderError> {
        if let Ok(addr) = s.parse() {
            return Ok(addr);
        }
        let (_, after_open) = s
            .rsplit_once('<')
            .ok_or(HeaderError::Malformed("no <URI>"))?;
        let (inner, rest) = after_open
            .split_once('>')
            .ok_or(HeaderError::Malformed("no <URI>"))?;
        let mut addr = NameAddr::new(Uri::parse(trim_wsp(inner))?);
        let mut c = Cursor::new(trim_wsp(rest));
        if let Ok(params) = parse_params(&mut c, true) {
            addr.set_params(params)?;
        }
        Ok(addr)
    }

    fn set_params(&mut self, params: Vec<Param>) -> Result<(), HeaderError> {
        for param in params {
            let value = param.value.as_deref();
            if param.name.eq_ignore_ascii_case("tag") {
                let tag = value
                    .filter(|v| v.bytes().all(is_token_char))
                    .ok_or(HeaderError::Malformed("tag is not a token"))?;
                if self.tag.replace(tag.to_owned()).is_some() {
                    return Err(HeaderError::Malformed("tag given twice"));
                }
            } else if param.name.eq_ignore_ascii_case("expires") {
                let expires = value
                    .and_then(|v| super::grammar::parse_digits_saturating(v, u64::from(u32::MAX)))
                    .ok_or(HeaderError::Malformed("expires is not a number"))?;
                if self.expires.replace(expires as u32).is_some() {
                    return Err(HeaderError::Malformed("expires given twice"));
                }
            } else if param.name.eq_ignore_ascii_case("q") {
                let q = value
                    .ok_or(HeaderError::Malformed("q without a value"))?
                    .parse()?;
                if self.q.replace(q).is_some() {
                    return Err(HeaderError::Malformed("q given twice"));
                }
            } else {
                self.params.push(param);
            }
        }
        Ok(())
    }
}

impl FromStr for NameAddr {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut c = Cursor::new(trim_wsp(s));
        let (display_name, uri) = name_or_addr(&mut c)?;
        let mut addr = NameAddr::new(uri);
        addr.display_name = display_name;
        addr.set_params(parse_params(&mut c, false)?)?;
        if !c.is_empty() {
            return Err(HeaderError::Malformed("junk after the address"));
        }
        Ok(addr)
    }
}

/// `name-addr / addr-spec`.
fn name_or_addr(c: &mut Cursor<'_>) -> Result<(Option<String>, Uri), HeaderError> {
    let display_name = if c.peek() == Some(b'"') {
        let name = c.quoted_string()?;
        c.skip_ws();
        Some(name)
    } else {
        // Token words followed by '<' are a display name; anything else is
        // the bare addr-spec (whose scheme is also a token, so look ahead).
        let mut probe = c.clone();
        let mut words = Vec::new();
        while let Some(word) = probe.token() {
            words.push(word);
            probe.skip_ws();
        }
        if !words.is_empty() && probe.peek() == Some(b'<') {
            *c = probe;
            Some(words.join(" "))
        } else {
            None
        }
    };
    if c.eat(b'<') {
        let inner = c.take_while(|b| b != b'>');
        if !c.eat(b'>') {
            return Err(HeaderError::Malformed("'<' without '>'"));
        }
        return Ok((display_name, Uri::parse(inner)?));
    }
    if display_name.is_some() {
        return Err(HeaderError::Malformed("display name without <URI>"));
    }
    // A bare addr-spec ends at the header parameters. It may not contain
    // ',', '?' or ';' (RFC 3261 §20), nor white space.
    let text = c.take_while(|b| !is_wsp(b) && b != b';' && b != b',');
    if text.contains('?') {
        return Err(HeaderError::Malformed("a URI with headers must be in <>"));
    }
    Ok((None, Uri::parse(text)?))
}

impl FromStr for Contact {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if trim_wsp(s) == "*" {
            Ok(Contact::Wildcard)
        } else {
            s.parse().map(|addr| Contact::Address(Box::new(addr)))
        }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(f, "{} ", quote(name))?;
        }
        write!(f, "<{}>", self.uri)?;
        if let Some(tag) = &self.tag {
            write!(f, ";tag={tag}")?;
        }
        if let Some(expires) = self.expires {
            write!(f, ";expires={expires}")?;
        }
        if let Some(q) = self.q {
            write!(f, ";q={q}")?;
        }
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Wildcard => f.write_str("*"),
            Contact::Address(addr) => addr.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::SipUri;

    fn addr(s: &str) -> NameAddr {
        let a: NameAddr = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(a.to_string().parse::<NameAddr>().unwrap(), a, "{s}");
        a
    }

    #[test]
    fn torture_addresses() {
        // RFC 4475 §3.1.1.1, after unfolding.
        let a = addr("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
        assert_eq!(a.display_name, None);
        assert_eq!(a.tag.as_deref(), Some("1918181833n"));
        let a = addr(r#""J Rosenberg \\\""       <sip:jdrosen@example.com>   ;   tag = 98asjd8"#);
        assert_eq!(a.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(a.tag.as_deref(), Some("98asjd8"));
        let a = addr(
            r#""Quoted string \"\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33"#,
        );
        assert_eq!(a.display_name.as_deref(), Some(r#"Quoted string """#));
        assert_eq!(a.q, Some(QValue::from_thousandths(330)));
        assert_eq!(
            a.params,
            [
                Param::new("newparam", Some("newvalue")),
                Param::new("secondparam", None)
            ]
        );
        // §3.1.1.2: token words with every token character, a quoted-pair NUL.
        let a = addr(
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u{440}\u{430}\"",
        );
        assert_eq!(
            a.display_name.as_deref(),
            Some("token1~` token2'+_ token3*%!.-")
        );
        assert_eq!(a.params[0].name, "fromParam''~+*_!.-%");
        let a = addr("\"BEL:\\\x07 NUL:\\\0 DEL:\\\x7f\" <sip:x@example.com>");
        assert_eq!(a.display_name.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
        // §3.1.1.6: no space before '<'.
        assert_eq!(
            addr("caller<sip:caller@example.com>;tag=323")
                .display_name
                .as_deref(),
            Some("caller")
        );
        // §3.3.4: other schemes.
        assert!(addr("isbn:2983792873").uri.as_sip().is_none());
        assert!(
            addr("<http://www.example.com>;tag=3234233")
                .uri
                .as_sip()
                .is_none()
        );
        // §3.3.12 and §3.3.13: where the parameter goes.
        let a = addr("sip:+19725552222@gw1.example.net;unknownparam");
        assert!(a.uri.as_sip().unwrap().params.is_empty());
        assert_eq!(a.params, [Param::new("unknownparam", None)]);
        let a = addr("<sip:+19725552222@gw1.example.net;unknownparam>");
        assert!(a.params.is_empty());
        assert!(a.uri.as_sip().unwrap().has_param("unknownparam"));
        // §3.3.14: headers inside <>.
        let a = addr("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>");
        assert_eq!(a.uri.as_sip().unwrap().headers.len(), 1);
        let a = addr("<sip:user@host>;expires=280297596632815");
        assert_eq!(a.expires, Some(u32::MAX));
    }

    #[test]
    fn malformed_addresses() {
        for bad in [
            "",
            "\"Mr. J. User <sip:j.user@example.com>",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:a@b",
            "Name sip:a@b",
            "<sip:a@b> junk",
            "<sip:a@b>;tag=1;tag=2",
            "<sip:a@b>;tag=\"x\"",
            "<sip:a@b>;q=2",
            "<sip:a@b>;expires=soon",
            "*",
        ] {
            assert!(bad.parse::<NameAddr>().is_err(), "{bad:?}");
        }
        assert_eq!("*".parse::<Contact>().unwrap(), Contact::Wildcard);
        assert_eq!(Contact::Wildcard.to_string(), "*");
    }

    #[test]
    fn lenient_salvage() {
        let a = NameAddr::parse_lenient("\"Mr. J. User <sip:j.user@example.com>").unwrap();
        assert_eq!(a.uri.to_string(), "sip:j.user@example.com");
        let a = NameAddr::parse_lenient("\"Watson, Thomas\" < sip:t.watson@example.org >").unwrap();
        assert_eq!(a.uri.to_string(), "sip:t.watson@example.org");
        let a =
            NameAddr::parse_lenient("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").unwrap();
        assert_eq!(a.tag.as_deref(), Some("43"));
        assert!(NameAddr::parse_lenient("no address at all").is_err());
    }

    #[test]
    fn q_values_and_building() {
        for (text, q) in [
            ("0", 0),
            ("0.", 0),
            ("0.5", 500),
            ("0.33", 330),
            ("0.001", 1),
            ("1", 1000),
            ("1.000", 1000),
        ] {
            assert_eq!(text.parse::<QValue>().unwrap().thousandths(), q, "{text}");
        }
        for bad in ["1.5", "2", "0.0001", "", ".5", "0.a"] {
            assert!(bad.parse::<QValue>().is_err(), "{bad}");
        }
        assert_eq!(QValue::from_thousandths(330).to_string(), "0.33");
        assert_eq!(QValue::from_thousandths(0).to_string(), "0");
        let uri = Uri::Sip(SipUri::parse("sip:alice@atlanta.com").unwrap());
        let a = NameAddr::new(uri)
            .with_display_name("Alice \"A\"")
            .with_tag("1928301774");
        assert_eq!(
            a.to_string(),
            r#""Alice \"A\"" <sip:alice@atlanta.com>;tag=1928301774"#
        );
    }
}
