//! Single-valued header fields that hold one word or one number: Call-ID
//! (RFC 3261 §20.8), Max-Forwards (§20.22), Content-Length (§20.14) and
//! Expires (§20.19).

use std::fmt;
use std::str::FromStr;

use super::grammar::{is_word_char, parse_digits, parse_digits_saturating, trim_wsp};
use super::headers::HeaderError;

/// A Call-ID: `word [ "@" word ]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId(String);

impl CallId {
    pub fn new(id: &str) -> Result<CallId, HeaderError> {
        id.parse()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CallId {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = trim_wsp(s);
        let (local, host) = match s.split_once('@') {
            Some((local, host)) => (local, Some(host)),
            None => (s, None),
        };
        let word = |w: &str| !w.is_empty() && w.bytes().all(is_word_char);
        if word(local) && host.is_none_or(word) {
            Ok(CallId(s.to_owned()))
        } else {
            Err(HeaderError::Malformed("Call-ID is not word[@word]"))
        }
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Max-Forwards: 0 to 255 (leading zeros allowed, RFC 4475 §3.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MaxForwards(pub u8);

impl FromStr for MaxForwards {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_digits(trim_wsp(s), 255)
            .map(|v| MaxForwards(v as u8))
            .ok_or(HeaderError::Malformed(
                "Max-Forwards is not a number from 0 to 255",
            ))
    }
}

impl fmt::Display for MaxForwards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Content-Length in octets. Negative, non-numeric and overlarge values are
/// errors (RFC 4475 §3.1.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentLength(pub u32);

impl FromStr for ContentLength {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_digits(trim_wsp(s), u64::from(u32::MAX))
            .map(|v| ContentLength(v as u32))
            .ok_or(HeaderError::Malformed("Content-Length is not a number"))
    }
}

impl fmt::Display for ContentLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Expires in seconds. Values above 2^32-1 are read as 2^32-1, as RFC 3261
/// §10.2.1.1 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Expires(pub u32);

impl FromStr for Expires {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_digits_saturating(trim_wsp(s), u64::from(u32::MAX))
            .map(|v| Expires(v as u32))
            .ok_or(HeaderError::Malformed("Expires is not a number"))
    }
}

impl fmt::Display for Expires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids() {
        for id in [
            "wsinv.ndaksdj@192.0.2.1",
            "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
            "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
            "SSG9559905523997077@hlau_4100",
        ] {
            assert_eq!(CallId::new(id).unwrap().to_string(), id);
        }
        assert_eq!(
            CallId::new("  transports.kijh4akdnaqjkwendsasfdj ")
                .unwrap()
                .as_str(),
            "transports.kijh4akdnaqjkwendsasfdj"
        );
        for bad in ["", "a b", "a@", "@b", "a@b@c", "a;b"] {
            assert!(CallId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!("0068".parse(), Ok(MaxForwards(68)));
        assert!("300".parse::<MaxForwards>().is_err());
        assert!("-1".parse::<MaxForwards>().is_err());
        assert_eq!("150".parse(), Ok(ContentLength(150)));
        assert!("-999".parse::<ContentLength>().is_err());
        assert!("five".parse::<ContentLength>().is_err());
        assert!("99999999999".parse::<ContentLength>().is_err());
        assert_eq!(
            format!("1{}", "0".repeat(100)).parse(),
            Ok(Expires(u32::MAX))
        );
        assert!("soon".parse::<Expires>().is_err());
    }
}
