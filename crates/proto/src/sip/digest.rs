//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! The client side reads a `WWW-Authenticate` or `Proxy-Authenticate` value
//! into a [`Challenge`] and answers it with [`Challenge::respond`], whose
//! [`Credentials`] print as the `Authorization` or `Proxy-Authorization`
//! value. The server side ([`Credentials::parse`], [`Credentials::verify`])
//! exists for tests and for a phone that challenges its callers.
//!
//! Algorithms: MD5 (RFC 2617), SHA-256 and SHA-512-256 (RFC 7616 §6.1,
//! RFC 8760), each also in its `-sess` form. Quality of protection: `auth`,
//! `auth-int`, and none at all (the RFC 2069 form). Not done: `userhash`
//! and `username*` (RFC 7616 §3.4.4).

use std::fmt;

use md5::{Digest, Md5};
use sha2::{Sha256, Sha512_256};
use thiserror::Error;

/// The hash a challenge asks for (RFC 7616 §6.1, RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

/// Quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// Authentication of the method and request-URI.
    Auth,
    /// `auth` plus the message body.
    AuthInt,
}

/// A digest challenge: the value of `WWW-Authenticate` (401) or
/// `Proxy-Authenticate` (407).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    /// Returned unchanged in the credentials.
    pub opaque: Option<String>,
    /// `None` when the challenge names none: MD5, and the credentials name none either.
    pub algorithm: Option<Algorithm>,
    /// `None` without a `qop` parameter (RFC 2069 compatibility); otherwise
    /// the options offered that are understood, which may be none.
    pub qop: Option<Vec<Qop>>,
    /// The nonce expired but the credentials were right: retry with the new
    /// nonce without asking the user again (RFC 7616 §3.3).
    pub stale: bool,
}

/// A password. `Debug` never shows it, and its bytes are overwritten when
/// it is dropped.
#[derive(Clone)]
pub struct Password(Vec<u8>);

/// The request being authorised (RFC 3261 §22.4: the method of the
/// request, its Request-URI, and its body for `auth-int`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRequest<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
}

/// Digest credentials: the value of `Authorization` or `Proxy-Authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// Lowercase hex digest.
    pub response: String,
    pub algorithm: Option<Algorithm>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<Qop>,
    /// The nonce count, printed as 8 hex digits.
    pub nc: Option<u32>,
}

/// Why a header value could not be read, answered or verified.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigestError {
    #[error("the authentication scheme is {0:?}, not Digest")]
    NotDigest(String),
    #[error("malformed digest parameters at byte {0}")]
    Malformed(usize),
    #[error("the {0} parameter is missing")]
    MissingParam(&'static str),
    #[error(
        "digest algorithm {0:?} is not supported (MD5, SHA-256, SHA-512-256 and their -sess forms are)"
    )]
    UnsupportedAlgorithm(String),
    #[error("qop {0:?} is not supported (auth and auth-int are)")]
    UnsupportedQop(String),
    #[error("the challenge offers no qop ipphone supports (auth, auth-int)")]
    NoUsableQop,
    #[error("nonce count {0:?} is not 8 hex digits")]
    BadNonceCount(String),
    #[error("the credentials' {0} does not match the challenge")]
    Mismatch(&'static str),
    #[error("wrong response digest: wrong password, or the request was altered")]
    BadResponse,
}

impl Algorithm {
    /// The token as RFC 7616 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Reads the token, ignoring case.
    pub fn from_token(token: &str) -> Option<Self> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// Whether A1 includes the nonce and cnonce (RFC 7616 §3.4.2).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Lowercase hex of the hash of `parts` joined by `:`.
    fn hex(self, parts: &[&[u8]]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex_digest::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex_digest::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex_digest::<Sha512_256>(parts),
        }
    }
}

impl Qop {
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if token.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

impl Password {
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into().into_bytes())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the writes from being optimised away as dead stores.
        std::hint::black_box(&self.0);
    }
}

impl Challenge {
    /// Parses a challenge header value: `Digest` and its parameters in any
    /// order, unknown ones ignored. A second challenge in the same value is
    /// not read.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let params = digest_params(value)?;
        let find = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let algorithm = match find("algorithm") {
            Some(token) => Some(
                Algorithm::from_token(token)
                    .ok_or_else(|| DigestError::UnsupportedAlgorithm(token.to_owned()))?,
            ),
            None => None,
        };
        Ok(Challenge {
            realm: find("realm")
                .ok_or(DigestError::MissingParam("realm"))?
                .to_owned(),
            nonce: find("nonce")
                .ok_or(DigestError::MissingParam("nonce"))?
                .to_owned(),
            opaque: find("opaque").map(str::to_owned),
            algorithm,
            qop: find("qop").map(|list| {
                list.split(',')
                    .filter_map(|token| Qop::from_token(token.trim()))
                    .collect()
            }),
            stale: find("stale").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }

    /// The first of several challenges (one per header field, in the order
    /// they came) that can be answered: servers list their preferred
    /// algorithm first (RFC 7616 §3.7, RFC 8760 §2.4).
    pub fn first_supported<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        values
            .into_iter()
            .filter_map(|value| Challenge::parse(value).ok())
            .find(|challenge| match &challenge.qop {
                None => true,
                Some(options) => !options.is_empty(),
            })
    }

    /// The algorithm in force: MD5 when none is named.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }

    /// Answers the challenge for `request`. `cnonce` should be fresh and
    /// random (from the caller's RNG); `nc` counts the requests made with
    /// this nonce, from 1. `auth` is preferred to `auth-int`; without a
    /// `qop` in the challenge the RFC 2069 form is used.
    pub fn respond(
        &self,
        request: &DigestRequest<'_>,
        username: &str,
        password: &Password,
        cnonce: &str,
        nc: u32,
    ) -> Result<Credentials, DigestError> {
        let qop = match &self.qop {
            None => None,
            Some(options) if options.contains(&Qop::Auth) => Some(Qop::Auth),
            Some(options) if options.contains(&Qop::AuthInt) => Some(Qop::AuthInt),
            Some(_) => return Err(DigestError::NoUsableQop),
        };
        let algorithm = self.algorithm();
        // RFC 2069 has no cnonce; a -sess algorithm needs one anyway.
        let cnonce = (qop.is_some() || algorithm.is_session()).then(|| cnonce.to_owned());
        let mut credentials = Credentials {
            username: username.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: request.uri.to_owned(),
            response: String::new(),
            algorithm: self.algorithm,
            cnonce,
            opaque: self.opaque.clone(),
            qop,
            nc: qop.map(|_| nc),
        };
        credentials.response = credentials.expected_response(request, password);
        Ok(credentials)
    }
}

impl Credentials {
    /// Parses an `Authorization` or `Proxy-Authorization` value.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let params = digest_params(value)?;
        let find = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let required = |name: &'static str| {
            find(name)
                .map(str::to_owned)
                .ok_or(DigestError::MissingParam(name))
        };
        let algorithm = match find("algorithm") {
            Some(token) => Some(
                Algorithm::from_token(token)
                    .ok_or_else(|| DigestError::UnsupportedAlgorithm(token.to_owned()))?,
            ),
            None => None,
        };
        let qop = match find("qop") {
            Some(token) => Some(
                Qop::from_token(token)
                    .ok_or_else(|| DigestError::UnsupportedQop(token.to_owned()))?,
            ),
            None => None,
        };
        let nc = match find("nc") {
            Some(hex) if hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Some(
                u32::from_str_radix(hex, 16).map_err(|_| DigestError::BadNonceCount(hex.into()))?,
            ),
            Some(other) => return Err(DigestError::BadNonceCount(other.to_owned())),
            None => None,
        };
        Ok(Credentials {
            username: required("username")?,
            realm: required("realm")?,
            nonce: required("nonce")?,
            uri: required("uri")?,
            response: required("response")?,
            algorithm,
            cnonce: find("cnonce").map(str::to_owned),
            opaque: find("opaque").map(str::to_owned),
            qop,
            nc,
        })
    }

    /// Server side: checks these credentials against the `challenge` we
    /// sent, the request they came with and the user's password.
    pub fn verify(
        &self,
        challenge: &Challenge,
        request: &DigestRequest<'_>,
        password: &Password,
    ) -> Result<(), DigestError> {
        if self.realm != challenge.realm {
            return Err(DigestError::Mismatch("realm"));
        }
        if self.nonce != challenge.nonce {
            return Err(DigestError::Mismatch("nonce"));
        }
        if self.opaque != challenge.opaque {
            return Err(DigestError::Mismatch("opaque"));
        }
        if self.algorithm.unwrap_or(Algorithm::Md5) != challenge.algorithm() {
            return Err(DigestError::Mismatch("algorithm"));
        }
        match (&challenge.qop, self.qop) {
            (None, None) => {}
            (Some(offered), Some(qop)) if offered.contains(&qop) => {}
            _ => return Err(DigestError::Mismatch("qop")),
        }
        if self.qop.is_some() && (self.cnonce.is_none() || self.nc.is_none()) {
            return Err(DigestError::MissingParam("cnonce and nc"));
        }
        if self.uri != request.uri {
            return Err(DigestError::Mismatch("uri"));
        }
        let expected = self.expected_response(request, password);
        if constant_time_eq(
            expected.as_bytes(),
            self.response.to_ascii_lowercase().as_bytes(),
        ) {
            Ok(())
        } else {
            Err(DigestError::BadResponse)
        }
    }

    /// The response digest these parameters call for (RFC 7616 §3.4.1-3.4.3,
    /// RFC 2069 when there is no qop).
    fn expected_response(&self, request: &DigestRequest<'_>, password: &Password) -> String {
        let algorithm = self.algorithm.unwrap_or(Algorithm::Md5);
        let cnonce = self.cnonce.as_deref().unwrap_or("");
        let mut ha1 =
            algorithm.hex(&[self.username.as_bytes(), self.realm.as_bytes(), &password.0]);
        if algorithm.is_session() {
            ha1 = algorithm.hex(&[ha1.as_bytes(), self.nonce.as_bytes(), cnonce.as_bytes()]);
        }
        let ha2 = match self.qop {
            Some(Qop::AuthInt) => {
                let body = algorithm.hex(&[request.body]);
                algorithm.hex(&[
                    request.method.as_bytes(),
                    request.uri.as_bytes(),
                    body.as_bytes(),
                ])
            }
            _ => algorithm.hex(&[request.method.as_bytes(), request.uri.as_bytes()]),
        };
        match self.qop {
            Some(qop) => {
                let nc = format!("{:08x}", self.nc.unwrap_or(0));
                algorithm.hex(&[
                    ha1.as_bytes(),
                    self.nonce.as_bytes(),
                    nc.as_bytes(),
                    cnonce.as_bytes(),
                    qop.as_str().as_bytes(),
                    ha2.as_bytes(),
                ])
            }
            None => algorithm.hex(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        }
    }
}

/// `Digest realm="..", nonce="..", ...`
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest realm={}", Quoted(&self.realm))?;
        write!(f, ", nonce={}", Quoted(&self.nonce))?;
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", Quoted(opaque))?;
        }
        if let Some(algorithm) = self.algorithm {
            write!(f, ", algorithm={}", algorithm.as_str())?;
        }
        if let Some(qop) = &self.qop {
            let list: Vec<&str> = qop.iter().map(|q| q.as_str()).collect();
            write!(f, ", qop=\"{}\"", list.join(","))?;
        }
        if self.stale {
            f.write_str(", stale=TRUE")?;
        }
        Ok(())
    }
}

/// `Digest username="..", realm="..", ...` (RFC 3261 §25.1 `dig-resp`:
/// `qop`, `nc` and `algorithm` unquoted).
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest username={}", Quoted(&self.username))?;
        write!(f, ", realm={}", Quoted(&self.realm))?;
        write!(f, ", nonce={}", Quoted(&self.nonce))?;
        write!(f, ", uri={}", Quoted(&self.uri))?;
        write!(f, ", response={}", Quoted(&self.response))?;
        if let Some(algorithm) = self.algorithm {
            write!(f, ", algorithm={}", algorithm.as_str())?;
        }
        if let Some(cnonce) = &self.cnonce {
            write!(f, ", cnonce={}", Quoted(cnonce))?;
        }
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", Quoted(opaque))?;
        }
        if let Some(qop) = self.qop {
            write!(f, ", qop={}", qop.as_str())?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        Ok(())
    }
}

/// A quoted-string with `"` and `\` escaped (RFC 3261 §25.1).
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}

/// The `name=value` parameters after the `Digest` scheme, values unquoted.
/// Stops at a token not followed by `=`: the scheme of a next challenge.
fn digest_params(value: &str) -> Result<Vec<(String, String)>, DigestError> {
    let value = value.trim_start();
    let scheme_end = value
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(value.len());
    let scheme = &value[..scheme_end];
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest(scheme.to_owned()));
    }
    let bytes = value.as_bytes();
    let mut pos = scheme_end;
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b',') {
            pos += 1;
        }
        if pos == bytes.len() {
            break;
        }
        let start = pos;
        while pos < bytes.len() && is_token_byte(bytes[pos]) {
            pos += 1;
        }
        if pos == start {
            return Err(DigestError::Malformed(pos));
        }
        let name = &value[start..pos];
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if bytes.get(pos) != Some(&b'=') {
            break;
        }
        pos += 1;
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let param_value = if bytes.get(pos) == Some(&b'"') {
            pos += 1;
            let mut unquoted = String::new();
            let mut chars = value[pos..].char_indices();
            loop {
                match chars.next() {
                    None => return Err(DigestError::Malformed(value.len())),
                    Some((i, '"')) => {
                        pos += i + 1;
                        break;
                    }
                    Some((_, '\\')) => match chars.next() {
                        Some((_, escaped)) => unquoted.push(escaped),
                        None => return Err(DigestError::Malformed(value.len())),
                    },
                    Some((_, c)) => unquoted.push(c),
                }
            }
            unquoted
        } else {
            // A token; leniently, anything up to the next comma or space
            // (some servers leave base64 nonces unquoted).
            let start = pos;
            while pos < bytes.len()
                && bytes[pos] != b','
                && bytes[pos] != b'"'
                && !bytes[pos].is_ascii_whitespace()
            {
                pos += 1;
            }
            if pos == start {
                return Err(DigestError::Malformed(pos));
            }
            value[start..pos].to_owned()
        };
        if !params.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            params.push((name.to_owned(), param_value));
        }
    }
    Ok(params)
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn hex_digest<D: Digest>(parts: &[&[u8]]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    const GET_INDEX: DigestRequest<'static> = DigestRequest {
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
    };

    /// RFC 7616 §3.9.1, as the header value arrives after unfolding.
    fn rfc7616_challenge(algorithm: &str) -> String {
        format!(
            "Digest\n    realm=\"http-auth@example.org\",\n    qop=\"auth, auth-int\",\n    \
             algorithm={algorithm},\n    nonce=\"{RFC7616_NONCE}\",\n    opaque=\"{RFC7616_OPAQUE}\""
        )
    }

    #[test]
    fn rfc7616_md5_example() {
        let challenge = Challenge::parse(&rfc7616_challenge("MD5")).unwrap();
        assert_eq!(
            challenge,
            Challenge {
                realm: "http-auth@example.org".into(),
                nonce: RFC7616_NONCE.into(),
                opaque: Some(RFC7616_OPAQUE.into()),
                algorithm: Some(Algorithm::Md5),
                qop: Some(vec![Qop::Auth, Qop::AuthInt]),
                stale: false,
            }
        );
        let password = Password::new("Circle of Life");
        let credentials = challenge
            .respond(&GET_INDEX, "Mufasa", &password, RFC7616_CNONCE, 1)
            .unwrap();
        assert_eq!(credentials.response, "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            credentials.to_string(),
            format!(
                "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
                 nonce=\"{RFC7616_NONCE}\", uri=\"/dir/index.html\", \
                 response=\"8ca523f5e9506fed4657c9700eebdbec\", algorithm=MD5, \
                 cnonce=\"{RFC7616_CNONCE}\", opaque=\"{RFC7616_OPAQUE}\", qop=auth, nc=00000001"
            )
        );
        assert_eq!(
            roundtrip(&challenge, &GET_INDEX, &credentials, &password),
            Ok(())
        );
    }

    #[test]
    fn rfc7616_sha256_example() {
        let challenge = Challenge::parse(&rfc7616_challenge("SHA-256")).unwrap();
        assert_eq!(challenge.algorithm(), Algorithm::Sha256);
        let password = Password::new("Circle of Life");
        let credentials = challenge
            .respond(&GET_INDEX, "Mufasa", &password, RFC7616_CNONCE, 1)
            .unwrap();
        assert_eq!(
            credentials.response,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(credentials.to_string().contains("algorithm=SHA-256,"));
        assert_eq!(
            roundtrip(&challenge, &GET_INDEX, &credentials, &password),
            Ok(())
        );
    }

    #[test]
    fn rfc2617_example() {
        // RFC 2617 §3.5: no algorithm named, so none in the credentials.
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(challenge.algorithm, None);
        let password = Password::new("Circle Of Life");
        let credentials = challenge
            .respond(&GET_INDEX, "Mufasa", &password, "0a4f113b", 1)
            .unwrap();
        assert_eq!(credentials.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(credentials.qop, Some(Qop::Auth));
        assert!(!credentials.to_string().contains("algorithm"));
        assert_eq!(
            roundtrip(&challenge, &GET_INDEX, &credentials, &password),
            Ok(())
        );
    }

    #[test]
    fn rfc2069_form_without_qop() {
        // RFC 2069 §2.4 with its erratum's corrected response.
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(challenge.qop, None);
        let password = Password::new("CircleOfLife");
        let credentials = challenge
            .respond(&GET_INDEX, "Mufasa", &password, "unused", 7)
            .unwrap();
        assert_eq!(credentials.response, "1949323746fe6a43ef61f9606e7febea");
        assert_eq!(
            (credentials.cnonce.as_deref(), credentials.nc),
            (None, None)
        );
        let text = credentials.to_string();
        assert!(!text.contains("qop") && !text.contains("nc=") && !text.contains("cnonce"));
        assert_eq!(
            roundtrip(&challenge, &GET_INDEX, &credentials, &password),
            Ok(())
        );
    }

    #[test]
    fn session_algorithms_and_sha512_256() {
        // Expected values computed independently (Python hashlib).
        let password = Password::new("secret\"pass");
        let register = DigestRequest {
            method: "REGISTER",
            uri: "sip:atlanta.com",
            body: b"",
        };
        for (algorithm, expected) in [
            ("MD5-sess", "f267e4e5a1f4e8ffd40bfb02fd93ffda"),
            (
                "sha-256-SESS",
                "4604198e29fc17b2fd38bb34115eea09eddd686a45b25d2473c4ee9a84a643ad",
            ),
            (
                "SHA-512-256",
                "3c05c23c78e7e1caa8381311bda740612d14c0f3c37d54c7e5fbf83bca748497",
            ),
        ] {
            let challenge = Challenge::parse(&format!(
                "Digest realm=\"atlanta.com\", nonce=\"nonce123\", algorithm={algorithm}, qop=\"auth\""
            ))
            .unwrap();
            let credentials = challenge
                .respond(&register, "alice", &password, "c0ffee", 2)
                .unwrap();
            assert_eq!(credentials.response, expected, "{algorithm}");
            assert_eq!(
                roundtrip(&challenge, &register, &credentials, &password),
                Ok(())
            );
        }
    }

    #[test]
    fn auth_int_hashes_the_body() {
        let challenge = Challenge::parse(
            "Digest realm=\"biloxi.com\", nonce=\"n\", algorithm=SHA-256, qop=\"auth-int\"",
        )
        .unwrap();
        let invite = DigestRequest {
            method: "INVITE",
            uri: "sip:bob@biloxi.com",
            body: b"v=0\r\n",
        };
        let password = Password::new("pw");
        let credentials = challenge
            .respond(&invite, "bob", &password, "cn", 10)
            .unwrap();
        assert_eq!(credentials.qop, Some(Qop::AuthInt));
        assert_eq!(
            credentials.response,
            "891b76439fe3137ba9d396ba1d9fac1e3b307b7a1d5e27de581736d377263eac"
        );
        let altered = DigestRequest {
            body: b"v=1\r\n",
            ..invite
        };
        assert_eq!(
            credentials.verify(&challenge, &altered, &password),
            Err(DigestError::BadResponse)
        );
        assert_eq!(credentials.verify(&challenge, &invite, &password), Ok(()));
    }

    #[test]
    fn the_server_side_refuses_what_does_not_match() {
        let challenge = Challenge::parse(&rfc7616_challenge("SHA-256")).unwrap();
        let password = Password::new("Circle of Life");
        let good = challenge
            .respond(&GET_INDEX, "Mufasa", &password, RFC7616_CNONCE, 1)
            .unwrap();
        let wrong = Password::new("circle of life");
        assert_eq!(
            good.verify(&challenge, &GET_INDEX, &wrong),
            Err(DigestError::BadResponse)
        );
        let mut other_nonce = challenge.clone();
        other_nonce.nonce = "fresh".into();
        assert_eq!(
            good.verify(&other_nonce, &GET_INDEX, &password),
            Err(DigestError::Mismatch("nonce"))
        );
        let mut md5 = challenge.clone();
        md5.algorithm = None;
        assert_eq!(
            good.verify(&md5, &GET_INDEX, &password),
            Err(DigestError::Mismatch("algorithm"))
        );
        let elsewhere = DigestRequest {
            uri: "/other",
            ..GET_INDEX
        };
        assert_eq!(
            good.verify(&challenge, &elsewhere, &password),
            Err(DigestError::Mismatch("uri"))
        );
        let mut upper = good.clone();
        upper.response = upper.response.to_ascii_uppercase();
        assert_eq!(upper.verify(&challenge, &GET_INDEX, &password), Ok(()));
    }

    #[test]
    fn challenges_parse_in_any_order_with_escapes_and_unknown_params() {
        // RFC 3261 §22.4's example shape, reordered, with extras.
        let challenge = Challenge::parse(
            "digest stale=TRUE ,algorithm=md5,domain=\"sip:ss1.carrier.com\", \
             nonce=\"f84f1cec41e6cbe5aea9c8e88d359\",opaque=\"\", \
             realm=\"at\\\"lanta\\\\com\", qop=\"auth-foo, auth\", charset=UTF-8",
        )
        .unwrap();
        assert_eq!(challenge.realm, "at\"lanta\\com");
        assert_eq!(challenge.nonce, "f84f1cec41e6cbe5aea9c8e88d359");
        assert_eq!(challenge.opaque.as_deref(), Some(""));
        assert_eq!(challenge.algorithm, Some(Algorithm::Md5));
        assert_eq!(challenge.qop, Some(vec![Qop::Auth]));
        assert!(challenge.stale);
        // Printing escapes again, and reads back the same.
        let printed = challenge.to_string();
        assert!(
            printed.contains("realm=\"at\\\"lanta\\\\com\""),
            "{printed}"
        );
        assert_eq!(Challenge::parse(&printed), Ok(challenge));

        let stale_false = Challenge::parse("Digest realm=\"r\", nonce=abc==, stale=false").unwrap();
        assert!(!stale_false.stale);
        assert_eq!(stale_false.nonce, "abc==");
        // A second challenge in the same value is not mixed into the first.
        let two = Challenge::parse(
            "Digest realm=\"a\", nonce=\"1\", algorithm=SHA-256, Digest realm=\"b\", nonce=\"2\"",
        )
        .unwrap();
        assert_eq!((two.realm.as_str(), two.nonce.as_str()), ("a", "1"));
    }

    #[test]
    fn bad_challenges_are_typed_errors() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(DigestError::NotDigest("Basic".into()))
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\""),
            Err(DigestError::MissingParam("nonce"))
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"x\""),
            Err(DigestError::MissingParam("realm"))
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"1\", realm=\"x"),
            Err(DigestError::Malformed(26))
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", algorithm=SHA-1"),
            Err(DigestError::UnsupportedAlgorithm("SHA-1".into()))
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", =y"),
            Err(DigestError::Malformed(_))
        ));
        let odd_qop =
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", qop=\"auth-conf\"").unwrap();
        assert_eq!(odd_qop.qop, Some(vec![]));
        assert_eq!(
            odd_qop.respond(&GET_INDEX, "u", &Password::new("p"), "c", 1),
            Err(DigestError::NoUsableQop)
        );
        assert_eq!(
            Credentials::parse(
                "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"0\", nc=1"
            ),
            Err(DigestError::BadNonceCount("1".into()))
        );
        assert_eq!(
            Credentials::parse("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\""),
            Err(DigestError::MissingParam("response"))
        );
    }

    #[test]
    fn the_first_answerable_challenge_is_chosen() {
        let values = [
            "Basic realm=\"x\"",
            "Digest realm=\"x\", nonce=\"1\", algorithm=SHA-512, qop=\"auth\"",
            "Digest realm=\"x\", nonce=\"2\", qop=\"auth-conf\"",
            "Digest realm=\"x\", nonce=\"3\", algorithm=SHA-256, qop=\"auth\"",
            "Digest realm=\"x\", nonce=\"4\", algorithm=MD5, qop=\"auth\"",
        ];
        let chosen = Challenge::first_supported(values).unwrap();
        assert_eq!(
            (chosen.nonce.as_str(), chosen.algorithm()),
            ("3", Algorithm::Sha256)
        );
        assert_eq!(Challenge::first_supported(values.into_iter().take(3)), None);
    }

    #[test]
    fn passwords_never_print() {
        let password = Password::new("Circle of Life");
        assert_eq!(format!("{password:?}"), "Password(<hidden>)");
        let challenge = Challenge::parse(&rfc7616_challenge("MD5")).unwrap();
        let credentials = challenge
            .respond(&GET_INDEX, "Mufasa", &password, RFC7616_CNONCE, 1)
            .unwrap();
        assert!(!format!("{credentials:?}{credentials}").contains("Circle"));
    }

    #[test]
    fn random_values_never_panic() {
        use crate::rtp::header::tests::XorShift;
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let alphabet = b"Digest realm=\"\\, nonce qop=auth-int algorithm=MD5-sess\xc3\xa9 \t";
        for _ in 0..20_000 {
            let len = (rng.next_u64() % 64) as usize;
            let mut bytes: Vec<u8> = b"Digest ".to_vec();
            for _ in 0..len {
                bytes.push(alphabet[(rng.next_u64() % alphabet.len() as u64) as usize]);
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(challenge) = Challenge::parse(&text) {
                assert_eq!(
                    Challenge::parse(&challenge.to_string()),
                    Ok(challenge.clone())
                );
                if let Ok(credentials) =
                    challenge.respond(&GET_INDEX, "u\"ser", &Password::new("p"), "c", 1)
                {
                    assert_eq!(
                        Credentials::parse(&credentials.to_string()),
                        Ok(credentials)
                    );
                }
            }
            let _ = Credentials::parse(&text);
        }
    }

    /// Prints the credentials, parses them as a server would, and verifies.
    fn roundtrip(
        challenge: &Challenge,
        request: &DigestRequest<'_>,
        credentials: &Credentials,
        password: &Password,
    ) -> Result<(), DigestError> {
        let parsed = Credentials::parse(&credentials.to_string())?;
        assert_eq!(&parsed, credentials);
        parsed.verify(challenge, request, password)
    }
}
