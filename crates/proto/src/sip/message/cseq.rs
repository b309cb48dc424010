//! The CSeq header field (RFC 3261 §20.16): a sequence number and a method.

use std::fmt;
use std::str::FromStr;

use super::Method;
use super::grammar::{Cursor, is_token_char, parse_digits, trim_wsp};
use super::headers::HeaderError;

/// `CSeq: 1*DIGIT LWS Method`; the number must fit in 32 bits (§8.1.1.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn new(seq: u32, method: Method) -> Self {
        CSeq { seq, method }
    }
}

impl FromStr for CSeq {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut c = Cursor::new(trim_wsp(s));
        let digits = c.take_while(|b| b.is_ascii_digit());
        let seq = parse_digits(digits, u64::from(u32::MAX))
            .ok_or(HeaderError::Malformed("CSeq number is not a 32-bit number"))?
            as u32;
        if !c.skip_ws() {
            return Err(HeaderError::Malformed(
                "CSeq number and method not separated",
            ));
        }
        let method = c.take_while(is_token_char).parse()?;
        if !c.is_empty() {
            return Err(HeaderError::Malformed("CSeq method is not a token"));
        }
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_values() {
        assert_eq!("0009   INVITE".parse(), Ok(CSeq::new(9, Method::Invite)));
        assert_eq!(
            "29344 RE%47IST%45R".parse::<CSeq>().unwrap().method,
            Method::Other("RE%47IST%45R".into())
        );
        assert_eq!(
            CSeq::new(4294967295, Method::Bye).to_string(),
            "4294967295 BYE"
        );
        for bad in [
            "36893488147419103232 REGISTER",
            "4294967296 INVITE",
            "INVITE",
            "1",
            "1INVITE",
            "1 INVITE x",
            "-1 INVITE",
            "1 IN<VITE",
        ] {
            assert!(bad.parse::<CSeq>().is_err(), "{bad}");
        }
    }
}
