//! The lexical rules the header parsers share (RFC 3261 §25.1): tokens,
//! quoted strings, separators with their optional white space, generic
//! parameters and the splitting of comma-separated header field values.
//!
//! Everything here works on `&str` and only ever stops at ASCII bytes, so
//! every position it slices at is a character boundary; it still slices with
//! `get` so that a mistake is an error rather than a panic.

use std::fmt;

use super::headers::HeaderError;

/// `token` characters: `alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" /
/// "`" / "'" / "~"`.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// A non-empty string of token characters.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// `word` characters (Call-ID): token characters plus
/// `( ) < > : \ " / [ ] ? { }`.
pub(crate) fn is_word_char(b: u8) -> bool {
    is_token_char(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

/// `WSP`: space or horizontal tab.
pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims spaces and tabs (not other Unicode white space) from both ends.
pub(crate) fn trim_wsp(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// A header parameter or URI parameter: `name [= value]`, kept as written.
/// A quoted value keeps its quotes (see [`Param::unquoted_value`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

impl Param {
    pub fn new(name: impl Into<String>, value: Option<&str>) -> Self {
        Param {
            name: name.into(),
            value: value.map(str::to_owned),
        }
    }

    /// The value with the quotes of a quoted string removed and its escapes
    /// resolved; other values as written.
    pub fn unquoted_value(&self) -> Option<String> {
        let value = self.value.as_deref()?;
        if value.starts_with('"') {
            let mut cursor = Cursor::new(value);
            if let Ok(text) = cursor.quoted_string()
                && cursor.is_empty()
            {
                return Some(text);
            }
        }
        Some(value.to_owned())
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={}", self.name, value),
            None => f.write_str(&self.name),
        }
    }
}

/// The first parameter called `name` (compared case-insensitively).
pub(crate) fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Writes `s` as a `quoted-string`. Characters that `qdtext` does not allow
/// are written as quoted pairs; CR and LF, which cannot be written at all
/// (RFC 3261 §25.1), become spaces.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Splits a comma-separated header field value into its elements. Commas
/// inside quoted strings and inside `<...>` do not split. Elements are
/// trimmed; empty ones are dropped, but a value that is entirely empty
/// gives one empty element (an empty `Supported:` says something).
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let bytes = value.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_quotes = true,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                b',' if !in_angle => {
                    if let Some(part) = value.get(start..i) {
                        parts.push(trim_wsp(part));
                    }
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if let Some(part) = value.get(start..) {
        parts.push(trim_wsp(part));
    }
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        parts.push("");
    }
    parts
}

/// A read position in a header field value.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    #[cfg(test)]
    pub(crate) fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Skips spaces and tabs; true if there were any.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_wsp) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Consumes `b` if it is next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `SWS b SWS` (RFC 3261 §25.1 `SEMI`, `EQUAL`, `SLASH`, `COLON`...):
    /// consumes it and returns true, or consumes nothing and returns false.
    pub(crate) fn eat_separator(&mut self, b: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.eat(b) {
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// The longest run of bytes matching `f` (possibly empty).
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// A `token`, or `None` (consuming nothing) if none starts here.
    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token_char);
        (!t.is_empty()).then_some(t)
    }

    /// A `quoted-string` starting here, returned with its escapes resolved.
    pub(crate) fn quoted_string(&mut self) -> Result<String, HeaderError> {
        let raw = self.quoted_string_raw()?;
        let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        let mut out = Vec::with_capacity(inner.len());
        let mut bytes = inner.bytes();
        while let Some(b) = bytes.next() {
            if b == b'\\' {
                // quoted_string_raw checked that an escaped byte follows.
                if let Some(escaped) = bytes.next() {
                    out.push(escaped);
                }
            } else {
                out.push(b);
            }
        }
        String::from_utf8(out).map_err(|_| HeaderError::Malformed("bad quoted string"))
    }

    /// A `quoted-string` starting here, returned as written, quotes included.
    pub(crate) fn quoted_string_raw(&mut self) -> Result<&'a str, HeaderError> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(HeaderError::Malformed("expected a quoted string"));
        }
        loop {
            let Some(b) = self.peek() else {
                self.pos = start;
                return Err(HeaderError::Malformed("unterminated quoted string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                b'\\' => match self.peek() {
                    Some(e) if e <= 0x7f && e != b'\r' && e != b'\n' => self.pos += 1,
                    _ => {
                        self.pos = start;
                        return Err(HeaderError::Malformed("bad escape in quoted string"));
                    }
                },
                // qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
                b' ' | b'\t' => {}
                b if b < 0x20 || b == 0x7f => {
                    self.pos = start;
                    return Err(HeaderError::Malformed("control character in quoted string"));
                }
                _ => {}
            }
        }
        Ok(self.s.get(start..self.pos).unwrap_or(""))
    }
}

/// Parses `*( SEMI generic-param )` up to the end of the cursor or the first
/// byte that cannot continue it. `gen-value = token / host / quoted-string`;
/// the host form is read as a run of token characters, `[`, `]` and `:`.
/// With `lenient`, empty parameters (`;;`) are skipped instead of rejected.
pub(crate) fn parse_params(
    cursor: &mut Cursor<'_>,
    lenient: bool,
) -> Result<Vec<Param>, HeaderError> {
    let mut params = Vec::new();
    while cursor.eat_separator(b';') {
        let Some(name) = cursor.token() else {
            if lenient && matches!(cursor.peek(), None | Some(b';')) {
                continue;
            }
            return Err(HeaderError::Malformed("empty parameter"));
        };
        let value = if cursor.eat_separator(b'=') {
            Some(gen_value(cursor)?.to_owned())
        } else {
            None
        };
        params.push(Param {
            name: name.to_owned(),
            value,
        });
    }
    Ok(params)
}

/// `gen-value`, as written.
pub(crate) fn gen_value<'a>(cursor: &mut Cursor<'a>) -> Result<&'a str, HeaderError> {
    if cursor.peek() == Some(b'"') {
        return cursor.quoted_string_raw();
    }
    let value = cursor.take_while(|b| is_token_char(b) || matches!(b, b'[' | b']' | b':'));
    if value.is_empty() {
        Err(HeaderError::Malformed(
            "parameter without a value after '='",
        ))
    } else {
        Ok(value)
    }
}

/// Parses a run of decimal digits of any length, saturating at `max`.
/// `None` if `s` is empty or has anything but digits.
pub(crate) fn parse_digits_saturating(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: u64 = 0;
    for b in s.bytes() {
        value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
        if value > max {
            return Some(max);
        }
    }
    Some(value)
}

/// Parses a run of decimal digits (leading zeros allowed) into a number no
/// larger than `max`; `None` if it is not all digits or too large.
pub(crate) fn parse_digits(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: u64 = 0;
    for b in s.bytes() {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        if value > max {
            return None;
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_words() {
        assert!(is_token("!interesting-Method0123456789_*+`.%indeed'~"));
        assert!(!is_token("IN VITE"));
        assert!(!is_token(""));
        assert!(
            "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
                .bytes()
                .all(|b| b == b'@' || is_word_char(b))
        );
    }

    #[test]
    fn quoted_strings_round_trip() {
        let mut c = Cursor::new(r#""J Rosenberg \\\"" rest"#);
        assert_eq!(c.quoted_string().unwrap(), r#"J Rosenberg \""#);
        assert_eq!(c.rest(), " rest");
        let text = "BEL:\x07 NUL:\0 DEL:\x7f \"q\" \\ tab\there";
        let quoted = quote(text);
        let mut c = Cursor::new(&quoted);
        assert_eq!(c.quoted_string().unwrap(), text);
        assert!(c.is_empty());
        assert_eq!(quote("a\r\nb"), "\"a  b\"");
        assert!(Cursor::new("\"open").quoted_string().is_err());
        assert!(Cursor::new("\"bad \\\r\"").quoted_string().is_err());
        assert!(Cursor::new("\"nul \0\"").quoted_string().is_err());
    }

    #[test]
    fn lists_split_outside_quotes_and_angles() {
        assert_eq!(
            split_list(r#" "Doe, J" <sip:a@b;x=1,2>;q=0.5 , <sip:c@d> ,, "#),
            [r#""Doe, J" <sip:a@b;x=1,2>;q=0.5"#, "<sip:c@d>"]
        );
        assert_eq!(split_list(r#""a\", b", c"#), [r#""a\", b""#, "c"]);
        assert_eq!(split_list("   "), [""]);
        assert_eq!(split_list(",,"), [""]);
    }

    #[test]
    fn generic_params() {
        let mut c = Cursor::new(" ;  tag    = 1918181833n ; lr;x=\"a;b\";maddr=[2001:db8::1]");
        let params = parse_params(&mut c, false).unwrap();
        assert!(c.is_empty());
        assert_eq!(
            params,
            [
                Param::new("tag", Some("1918181833n")),
                Param::new("lr", None),
                Param::new("x", Some("\"a;b\"")),
                Param::new("maddr", Some("[2001:db8::1]")),
            ]
        );
        assert_eq!(params[2].unquoted_value().as_deref(), Some("a;b"));
        assert!(parse_params(&mut Cursor::new(";;"), false).is_err());
        assert!(parse_params(&mut Cursor::new(";a="), false).is_err());
        let lenient = parse_params(&mut Cursor::new(";;a;;"), true).unwrap();
        assert_eq!(lenient, [Param::new("a", None)]);
    }

    #[test]
    fn digits() {
        assert_eq!(parse_digits("0068", 255), Some(68));
        assert_eq!(parse_digits("256", 255), None);
        assert_eq!(parse_digits("-1", 255), None);
        assert_eq!(parse_digits("", 255), None);
        assert_eq!(
            parse_digits("36893488147419103232", u64::from(u32::MAX)),
            None
        );
        assert_eq!(
            parse_digits_saturating("280297596632815", u64::from(u32::MAX)),
            Some(u64::from(u32::MAX))
        );
    }
}
