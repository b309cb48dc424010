//! The Content-Type header field (RFC 3261 §20.15): a media type with
//! parameters.

use std::fmt;
use std::str::FromStr;

use super::grammar::{Cursor, Param, find_param, parse_params, trim_wsp};
use super::headers::HeaderError;

/// `m-type "/" m-subtype *( ";" m-parameter )`. Type and subtype are
/// compared case-insensitively by [`ContentType::is`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentType {
    pub mtype: String,
    pub subtype: String,
    pub params: Vec<Param>,
}

impl ContentType {
    pub fn new(mtype: &str, subtype: &str) -> Self {
        ContentType {
            mtype: mtype.to_owned(),
            subtype: subtype.to_owned(),
            params: Vec::new(),
        }
    }

    /// `application/sdp`.
    pub fn sdp() -> Self {
        ContentType::new("application", "sdp")
    }

    /// Whether this is `mtype/subtype`, ignoring case.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }
}

impl FromStr for ContentType {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut c = Cursor::new(trim_wsp(s));
        let mtype = c
            .token()
            .ok_or(HeaderError::Malformed("media type is not a token"))?;
        if !c.eat_separator(b'/') {
            return Err(HeaderError::Malformed("media type without '/'"));
        }
        let subtype = c
            .token()
            .ok_or(HeaderError::Malformed("media subtype is not a token"))?;
        let params = parse_params(&mut c, false)?;
        if params.iter().any(|p| p.value.is_none()) {
            return Err(HeaderError::Malformed(
                "media type parameter without a value",
            ));
        }
        if !c.is_empty() {
            return Err(HeaderError::Malformed("junk after the media type"));
        }
        Ok(ContentType {
            mtype: mtype.to_owned(),
            subtype: subtype.to_owned(),
            params,
        })
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.mtype, self.subtype)?;
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        let ct: ContentType = "multipart/mixed;boundary=7a9cbec02ceef655".parse().unwrap();
        assert!(ct.is("Multipart", "MIXED"));
        assert_eq!(
            ct.param("BOUNDARY").unwrap().value.as_deref(),
            Some("7a9cbec02ceef655")
        );
        assert_eq!(ct.to_string(), "multipart/mixed;boundary=7a9cbec02ceef655");
        let ct: ContentType = "text/plain ; charset = \"utf-8\"".parse().unwrap();
        assert_eq!(
            ct.param("charset").unwrap().unquoted_value().as_deref(),
            Some("utf-8")
        );
        assert_eq!(ct.to_string().parse::<ContentType>().unwrap(), ct);
        assert!("application/sdp".parse::<ContentType>().unwrap() == ContentType::sdp());
        for bad in [
            "application",
            "application/",
            "/sdp",
            "a/b;c",
            "a/b c",
            "a/b;;c=d",
        ] {
            assert!(bad.parse::<ContentType>().is_err(), "{bad}");
        }
    }
}
