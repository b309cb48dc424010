//! SIP request methods (RFC 3261 §7.1, §27.4 and the extensions a phone
//! meets: RFC 3262, 3311, 3428, 3515, 6086, 6665).

use std::fmt;
use std::str::FromStr;

use super::grammar::is_token;
use super::headers::HeaderError;

/// A request method. Methods are case-sensitive tokens (RFC 3261 §7.1):
/// `invite` is an unknown method, not INVITE. [`Method::Other`] never holds
/// the name of a known method when produced by [`str::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Other(String),
}

impl Method {
    const KNOWN: [(Method, &'static str); 13] = [
        (Method::Invite, "INVITE"),
        (Method::Ack, "ACK"),
        (Method::Bye, "BYE"),
        (Method::Cancel, "CANCEL"),
        (Method::Options, "OPTIONS"),
        (Method::Register, "REGISTER"),
        (Method::Info, "INFO"),
        (Method::Update, "UPDATE"),
        (Method::Prack, "PRACK"),
        (Method::Subscribe, "SUBSCRIBE"),
        (Method::Notify, "NOTIFY"),
        (Method::Refer, "REFER"),
        (Method::Message, "MESSAGE"),
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Method::Other(name) => name,
            known => Self::KNOWN
                .iter()
                .find(|(m, _)| m == known)
                .map_or("", |(_, name)| name),
        }
    }
}

impl FromStr for Method {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((method, _)) = Self::KNOWN.iter().find(|(_, name)| *name == s) {
            return Ok(method.clone());
        }
        if is_token(s) {
            Ok(Method::Other(s.to_owned()))
        } else {
            Err(HeaderError::Malformed("method is not a token"))
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_tokens() {
        for (m, name) in Method::KNOWN {
            assert_eq!(name.parse::<Method>().unwrap(), m);
            assert_eq!(m.to_string(), name);
        }
        assert_eq!("invite".parse(), Ok(Method::Other("invite".into())));
        assert_eq!(
            "RE%47IST%45R".parse(),
            Ok(Method::Other("RE%47IST%45R".into()))
        );
        assert_eq!(
            "!interesting-Method0123456789_*+`.%indeed'~"
                .parse::<Method>()
                .unwrap()
                .as_str(),
            "!interesting-Method0123456789_*+`.%indeed'~"
        );
        assert!("IN VITE".parse::<Method>().is_err());
        assert!("".parse::<Method>().is_err());
    }
}
