//! vCard, sans IO: a parser and printer for vCard 4.0 (RFC 6350) that also
//! reads vCard 3.0 (RFC 2426), for importing and exporting the telephone
//! directory.
//!
//! The parser unfolds lines (RFC 6350 §3.2), takes CRLF or bare LF, splits a
//! content line into group, name, parameters and value (§3.3), decodes
//! quoted and RFC 6868 `^`-escaped parameter values, and reads vCard 3's
//! bare parameters (`TEL;CELL:`) as `TYPE` values. Property values are kept
//! as written: [`Property::text`] and [`Property::components`] resolve the
//! `\,` `\;` `\n` `\\` escapes of text values (§3.4) when asked.
//!
//! One malformed card does not spoil the others: [`parse`] returns one
//! [`Item`] per card, each either a card or why it could not be read, and
//! never panics on any input.

use std::fmt;

use thiserror::Error;

/// The longest line the printer writes, in octets without the CRLF
/// (RFC 6350 §3.2).
pub const MAX_LINE_OCTETS: usize = 75;

/// One card: its properties in order, `VERSION` included, `BEGIN` and `END`
/// left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VCard {
    pub properties: Vec<Property>,
}

/// A content line (RFC 6350 §3.3): `[group.]NAME[;PARAM=value...]:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The group, as written (`item1` in `item1.X-SIP`).
    pub group: Option<String>,
    /// The name, in upper case (names are case-insensitive, §3.3).
    pub name: String,
    pub params: Vec<Parameter>,
    /// The value as written, escapes and all, line folding removed.
    pub value: String,
}

/// A parameter: its name in upper case and its values, unquoted and with
/// RFC 6868 escapes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub values: Vec<String>,
}

/// What [`parse`] found at one place in the input: a card, or why there is
/// none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The line (from 1) of the card's `BEGIN:VCARD`, or of the stray text.
    pub line: usize,
    pub card: Result<VCard, VcardError>,
}

/// Why a card could not be read. Lines count from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum VcardError {
    #[error("line {0}: no ':' between the property's name and its value")]
    NoColon(usize),
    #[error("line {0}: malformed property name")]
    Name(usize),
    #[error("line {0}: malformed parameter")]
    Parameter(usize),
    #[error("no END:VCARD for the card that begins at line {0}")]
    Unterminated(usize),
    #[error("line {0}: text outside BEGIN:VCARD ... END:VCARD")]
    Outside(usize),
}

/// Reads every card in `input`. Text in any encoding other than UTF-8 is
/// read lossily (invalid sequences become U+FFFD); a leading byte-order
/// mark is skipped.
pub fn parse(input: &[u8]) -> Vec<Item> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut items = Vec::new();
    let mut open: Option<OpenCard> = None;
    let mut in_stray_text = false;
    for (line, text) in logical_lines(input) {
        if text.trim().is_empty() {
            continue;
        }
        let property = parse_line(&text, line);
        let Some(card) = open.as_mut() else {
            if property.as_ref().is_ok_and(Property::is_begin) {
                open = Some(OpenCard::new(line));
                in_stray_text = false;
            } else if !in_stray_text {
                items.push(Item {
                    line,
                    card: Err(VcardError::Outside(line)),
                });
                in_stray_text = true;
            }
            continue;
        };
        match property {
            Ok(p) if p.is_end() => {
                items.push(open.take().expect("a card is open").finish());
            }
            Ok(p) if p.is_begin() => {
                // A card without its END: report it and start the next.
                let unfinished = std::mem::replace(card, OpenCard::new(line));
                items.push(Item {
                    line: unfinished.line,
                    card: Err(VcardError::Unterminated(unfinished.line)),
                });
            }
            Ok(p) => card.properties.push(p),
            Err(e) => {
                card.error.get_or_insert(e);
            }
        }
    }
    if let Some(card) = open {
        items.push(Item {
            line: card.line,
            card: Err(VcardError::Unterminated(card.line)),
        });
    }
    items
}

/// Prints cards one after another.
pub fn print(cards: &[VCard]) -> String {
    cards.iter().map(VCard::to_string).collect()
}

/// Escapes a text value (RFC 6350 §3.4): backslash, comma, semicolon and
/// newline.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Resolves the escapes of a text value: `\n` and `\N` are a newline,
/// `\\` `\,` `\;` the character itself; `\:` too, as some vCard 3 writers
/// escape colons. Any other backslash is kept.
pub fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(c @ ('\\' | ',' | ';' | ':')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

impl VCard {
    /// An empty card with its `VERSION`.
    pub fn new(version: &str) -> Self {
        VCard {
            properties: vec![Property::new("VERSION", version)],
        }
    }

    pub fn push(&mut self, property: Property) {
        self.properties.push(property);
    }

    /// The properties called `name` (case-insensitive), in order.
    pub fn properties_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Property> {
        self.properties
            .iter()
            .filter(move |p| p.name.eq_ignore_ascii_case(name))
    }

    /// The first property called `name`.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// `4.0`, `3.0`...: the value of `VERSION`.
    pub fn version(&self) -> Option<&str> {
        self.property("VERSION").map(|p| p.value.trim())
    }
}

impl fmt::Display for VCard {
    /// CRLF line ends, lines folded at 75 octets without splitting a
    /// character (RFC 6350 §3.2).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BEGIN:VCARD\r\n")?;
        for property in &self.properties {
            write_folded(f, &property.to_string())?;
        }
        f.write_str("END:VCARD\r\n")
    }
}

impl Property {
    /// A property with a value given as it is to be written: escape text
    /// with [`escape_text`] first, or use [`Property::from_text`].
    pub fn new(name: &str, value: &str) -> Self {
        Property {
            group: None,
            name: name.to_ascii_uppercase(),
            params: Vec::new(),
            value: value.to_owned(),
        }
    }

    /// A property whose value is `text`, escaped.
    pub fn from_text(name: &str, text: &str) -> Self {
        Property::new(name, &escape_text(text))
    }

    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        self.params.push(Parameter {
            name: name.to_ascii_uppercase(),
            values: vec![value.to_owned()],
        });
        self
    }

    /// The values of every parameter called `name` (case-insensitive).
    pub fn param_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.params
            .iter()
            .filter(move |p| p.name.eq_ignore_ascii_case(name))
            .flat_map(|p| p.values.iter().map(String::as_str))
    }

    /// Whether `TYPE` lists `kind`, case-insensitively; a quoted
    /// `TYPE="work,voice"` (RFC 6350 §8's example) counts as two.
    pub fn has_type(&self, kind: &str) -> bool {
        self.param_values("TYPE")
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(kind))
    }

    /// The value read as one text value, escapes resolved.
    pub fn text(&self) -> String {
        unescape_text(&self.value)
    }

    /// The value read as a structured value (`N`, `ADR`, `ORG`): the
    /// components between unescaped semicolons, escapes resolved.
    pub fn components(&self) -> Vec<String> {
        let mut parts = Vec::new();
        let mut start = 0;
        let mut escaped = false;
        for (i, b) in self.value.bytes().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b';' => {
                    parts.push(unescape_text(&self.value[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(unescape_text(&self.value[start..]));
        parts
    }

    fn is_begin(&self) -> bool {
        self.name == "BEGIN" && self.value.trim().eq_ignore_ascii_case("VCARD")
    }

    fn is_end(&self) -> bool {
        self.name == "END" && self.value.trim().eq_ignore_ascii_case("VCARD")
    }
}

impl fmt::Display for Property {
    /// The content line, unfolded and without its CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(group) = &self.group {
            write!(f, "{group}.")?;
        }
        f.write_str(&self.name)?;
        for param in &self.params {
            write!(f, ";{}=", param.name)?;
            for (i, value) in param.values.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                let value = caret_encode(value);
                if value.contains([',', ';', ':']) {
                    write!(f, "\"{value}\"")?;
                } else {
                    f.write_str(&value)?;
                }
            }
        }
        write!(f, ":{}", self.value)
    }
}

struct OpenCard {
    line: usize,
    properties: Vec<Property>,
    /// The first malformed line; the card is reported with it at its END.
    error: Option<VcardError>,
}

impl OpenCard {
    fn new(line: usize) -> Self {
        OpenCard {
            line,
            properties: Vec::new(),
            error: None,
        }
    }

    fn finish(self) -> Item {
        Item {
            line: self.line,
            card: match self.error {
                Some(e) => Err(e),
                None => Ok(VCard {
                    properties: self.properties,
                }),
            },
        }
    }
}

/// Unfolds physical lines into logical ones, each with the number of its
/// first physical line: a line that begins with a space or a tab continues
/// the one before, less that one character (RFC 6350 §3.2). Unfolding works
/// on octets, so a character split by a careless folder is whole again
/// before the line is decoded.
fn logical_lines(input: &[u8]) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current: Option<(usize, Vec<u8>)> = None;
    for (i, physical) in input.split(|&b| b == b'\n').enumerate() {
        let physical = physical.strip_suffix(b"\r").unwrap_or(physical);
        match physical.first() {
            Some(b' ' | b'\t') => match current.as_mut() {
                Some((_, text)) => text.extend_from_slice(&physical[1..]),
                None => current = Some((i + 1, physical[1..].to_vec())),
            },
            _ => {
                if let Some((line, text)) = current.replace((i + 1, physical.to_vec())) {
                    lines.push((line, String::from_utf8_lossy(&text).into_owned()));
                }
            }
        }
    }
    if let Some((line, text)) = current {
        lines.push((line, String::from_utf8_lossy(&text).into_owned()));
    }
    lines
}

fn parse_line(text: &str, line: usize) -> Result<Property, VcardError> {
    let bytes = text.as_bytes();
    let name_end = bytes
        .iter()
        .position(|&b| b == b';' || b == b':')
        .ok_or(VcardError::NoColon(line))?;
    let (group, name) = match text[..name_end].split_once('.') {
        Some((group, name)) => (Some(group), name),
        None => (None, &text[..name_end]),
    };
    let is_token = |s: &str| !s.is_empty() && s.bytes().all(is_name_char);
    if !is_token(name) || group.is_some_and(|g| !is_token(g)) {
        return Err(VcardError::Name(line));
    }
    let mut params = Vec::new();
    let mut pos = name_end;
    while bytes[pos] == b';' {
        pos += 1;
        let start = pos;
        while pos < bytes.len() && is_name_char(bytes[pos]) {
            pos += 1;
        }
        let param_name = &text[start..pos];
        match bytes.get(pos) {
            None => return Err(VcardError::NoColon(line)),
            Some(b'=') if !param_name.is_empty() => {
                pos += 1;
                let mut values = Vec::new();
                loop {
                    let value;
                    if bytes.get(pos) == Some(&b'"') {
                        let close = text[pos + 1..]
                            .find('"')
                            .ok_or(VcardError::Parameter(line))?;
                        value = &text[pos + 1..pos + 1 + close];
                        pos += close + 2;
                    } else {
                        let start = pos;
                        while pos < bytes.len() && !matches!(bytes[pos], b',' | b';' | b':') {
                            pos += 1;
                        }
                        value = &text[start..pos];
                    }
                    values.push(caret_decode(value));
                    match bytes.get(pos) {
                        None => return Err(VcardError::NoColon(line)),
                        Some(b',') => pos += 1,
                        Some(b';' | b':') => break,
                        Some(_) => return Err(VcardError::Parameter(line)),
                    }
                }
                params.push(Parameter {
                    name: param_name.to_ascii_uppercase(),
                    values,
                });
            }
            // vCard 3 (and 2.1) writers leave out `TYPE=`: `TEL;CELL:...`.
            Some(b';' | b':') if !param_name.is_empty() => params.push(Parameter {
                name: "TYPE".to_owned(),
                values: vec![param_name.to_owned()],
            }),
            Some(_) => return Err(VcardError::Parameter(line)),
        }
    }
    Ok(Property {
        group: group.map(str::to_owned),
        name: name.to_ascii_uppercase(),
        params,
        value: text[pos + 1..].to_owned(),
    })
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// RFC 6868: `^n` is a newline, `^'` a double quote, `^^` a caret; any
/// other caret stays.
fn caret_decode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let decoded = match (c, chars.peek()) {
            ('^', Some('n')) => '\n',
            ('^', Some('\'')) => '"',
            ('^', Some('^')) => '^',
            _ => {
                out.push(c);
                continue;
            }
        };
        chars.next();
        out.push(decoded);
    }
    out
}

fn caret_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '^' => out.push_str("^^"),
            '\n' => out.push_str("^n"),
            '"' => out.push_str("^'"),
            c => out.push(c),
        }
    }
    out
}

/// Writes `line` and its CRLF, folded: 75 octets on the first line, a
/// space and 74 on each continuation.
fn write_folded(f: &mut fmt::Formatter<'_>, line: &str) -> fmt::Result {
    let mut rest = line;
    let mut limit = MAX_LINE_OCTETS;
    while rest.len() > limit {
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        f.write_str(&rest[..cut])?;
        f.write_str("\r\n ")?;
        rest = &rest[cut..];
        limit = MAX_LINE_OCTETS - 1;
    }
    f.write_str(rest)?;
    f.write_str("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards(input: &str) -> Vec<VCard> {
        parse(input.as_bytes())
            .into_iter()
            .map(|item| item.card.expect("a card"))
            .collect()
    }

    fn one(input: &str) -> VCard {
        let mut cards = cards(input);
        assert_eq!(cards.len(), 1);
        cards.remove(0)
    }

    fn round_trips(card: &VCard) {
        let printed = card.to_string();
        for line in printed.split("\r\n") {
            assert!(line.len() <= MAX_LINE_OCTETS, "{line:?} is too long");
        }
        assert_eq!(&one(&printed), card, "{printed}");
    }

    /// RFC 6350 §8, the example of a complete card (with the folded ADR and
    /// KEY lines it shows).
    const RFC_6350_EXAMPLE: &str = "BEGIN:VCARD\r
VERSION:4.0\r
FN:Simon Perreault\r
N:Perreault;Simon;;;ing. jr,M.Sc.\r
BDAY:--0203\r
ANNIVERSARY:19960415\r
GENDER:M\r
LANG;PREF=1:fr\r
LANG;PREF=2:en\r
ORG;TYPE=work:Viagenie\r
ADR;TYPE=work:;Suite D2-630;2875 Laurier;\r
 Quebec;QC;G1V 2M2;Canada\r
TEL;VALUE=uri;TYPE=\"work,voice\";PREF=1:tel:+1-418-656-9254;ext=102\r
TEL;VALUE=uri;TYPE=\"work,cell,voice,video,text\":tel:+1-418-262-6501\r
EMAIL;TYPE=work:simon.perreault@viagenie.ca\r
GEO;TYPE=work:geo:46.772673,-71.282945\r
KEY;TYPE=work;VALUE=uri:\r
 http://www.viagenie.ca/simon.perreault/simon.asc\r
TZ:-0500\r
URL;TYPE=home:http://nomis80.org\r
END:VCARD\r
";

    #[test]
    fn rfc_6350_example() {
        let card = one(RFC_6350_EXAMPLE);
        assert_eq!(card.version(), Some("4.0"));
        assert_eq!(card.property("fn").unwrap().text(), "Simon Perreault");
        assert_eq!(
            card.property("N").unwrap().components(),
            ["Perreault", "Simon", "", "", "ing. jr,M.Sc."]
        );
        assert_eq!(
            card.property("ADR").unwrap().components(),
            [
                "",
                "Suite D2-630",
                "2875 Laurier",
                "Quebec",
                "QC",
                "G1V 2M2",
                "Canada"
            ]
        );
        let tels: Vec<_> = card.properties_named("TEL").collect();
        assert_eq!(tels.len(), 2);
        assert_eq!(tels[0].value, "tel:+1-418-656-9254;ext=102");
        assert_eq!(
            tels[0].param_values("TYPE").collect::<Vec<_>>(),
            ["work,voice"]
        );
        assert!(tels[0].has_type("voice") && tels[1].has_type("CELL"));
        assert!(!tels[0].has_type("cell"));
        assert_eq!(tels[0].param_values("pref").collect::<Vec<_>>(), ["1"]);
        assert_eq!(
            card.property("KEY").unwrap().value,
            "http://www.viagenie.ca/simon.perreault/simon.asc"
        );
        round_trips(&card);
    }

    /// RFC 6350 §3.2: both foldings of the NOTE it shows read the same.
    #[test]
    fn rfc_6350_folding() {
        let expected = "This is a long description that exists on a long line.";
        for folded in [
            "NOTE:This is a long description\r\n  that exists on a long line.",
            "NOTE:This is a long descrip\r\n tion that exists o\r\n n a long line.",
            "NOTE:This is a long description\n\t that exists on a long line.",
        ] {
            let input = format!("BEGIN:VCARD\r\n{folded}\r\nEND:VCARD\r\n");
            assert_eq!(one(&input).property("NOTE").unwrap().text(), expected);
        }
    }

    /// A vCard 3 export from a phone: LF line ends, `TYPE=` lists and bare
    /// types, an Apple-style group with a SIP address, escapes.
    #[test]
    fn vcard_3_phone_export() {
        let input = "BEGIN:VCARD\nVERSION:3.0\nN:Doe;John;;;\nFN:John Doe\n\
            TEL;TYPE=CELL:+1 555 123 4567\nTEL;TYPE=WORK,VOICE:(555) 987-6543\n\
            TEL;HOME;VOICE:555-0000\nitem1.X-SIP:sip:john@example.com\n\
            item1.X-ABLabel:SIP\nORG:Doe\\, Inc.;Sales\nEND:VCARD\n";
        let card = one(input);
        assert_eq!(card.version(), Some("3.0"));
        let tels: Vec<_> = card.properties_named("TEL").collect();
        assert!(tels[0].has_type("cell"));
        assert_eq!(
            tels[1].param_values("TYPE").collect::<Vec<_>>(),
            ["WORK", "VOICE"]
        );
        assert!(tels[2].has_type("home") && tels[2].has_type("voice"));
        assert_eq!(tels[2].params.len(), 2);
        let sip = card.property("X-SIP").unwrap();
        assert_eq!(sip.group.as_deref(), Some("item1"));
        assert_eq!(sip.value, "sip:john@example.com");
        assert_eq!(
            card.property("ORG").unwrap().components(),
            ["Doe, Inc.", "Sales"]
        );
        round_trips(&card);
    }

    #[test]
    fn text_escapes() {
        let card = one("BEGIN:VCARD\nNOTE:a\\,b\\;c\\nd\\Ne\\\\f\\:g\\xh\\\nEND:VCARD\n");
        assert_eq!(
            card.property("NOTE").unwrap().text(),
            "a,b;c\nd\ne\\f:g\\xh\\"
        );
        let text = "Smith, Jane; \\ \"Jay\"\nsecond line";
        let property = Property::from_text("NOTE", text);
        assert_eq!(
            property.value,
            "Smith\\, Jane\\; \\\\ \"Jay\"\\nsecond line"
        );
        assert_eq!(property.text(), text);
        assert_eq!(escape_text("a\r\nb\rc"), "a\\nb\\nc");
    }

    /// RFC 6868 §4 examples, and quoting on output.
    #[test]
    fn parameter_values() {
        let card = one("BEGIN:VCARD\r\n\
            ADR;LABEL=\"123 Main St^nAnytown, CA 91921-1234\":;;123 Main St;;;;\r\n\
            FN;X-NOTE=\"He said ^'hello^' ^^ ^x\":x\r\n\
            X-A;P=\"a:b;c\",d;Q=:v:w\r\nEND:VCARD\r\n");
        let adr = card.property("ADR").unwrap();
        assert_eq!(
            adr.param_values("label").collect::<Vec<_>>(),
            ["123 Main St\nAnytown, CA 91921-1234"]
        );
        let fn_ = card.property("FN").unwrap();
        assert_eq!(
            fn_.param_values("X-NOTE").collect::<Vec<_>>(),
            ["He said \"hello\" ^ ^x"]
        );
        let x = card.property("X-A").unwrap();
        assert_eq!(x.param_values("P").collect::<Vec<_>>(), ["a:b;c", "d"]);
        assert_eq!(x.param_values("Q").collect::<Vec<_>>(), [""]);
        assert_eq!(x.value, "v:w");
        assert_eq!(x.to_string(), "X-A;P=\"a:b;c\",d;Q=:v:w");
        round_trips(&card);
    }

    #[test]
    fn printing_folds_without_splitting_characters() {
        let mut card = VCard::new("4.0");
        card.push(Property::from_text("FN", &"Zoë Ångström ".repeat(20)));
        card.push(Property::from_text("NOTE", &"€".repeat(100)));
        card.push(Property::new("X-EMPTY", ""));
        let printed = card.to_string();
        assert!(printed.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Zoë"));
        assert!(printed.ends_with("END:VCARD\r\n"));
        assert!(printed.lines().count() > 8);
        round_trips(&card);
    }

    #[test]
    fn many_cards_and_errors_each_in_their_place() {
        let input = "garbage\nmore garbage\r\n\
            BEGIN:VCARD\nFN:One\nEND:VCARD\n\
            \n\
            begin:vcard\nFN:Two\nthis line has no colon\nEND:VCARD\n\
            BEGIN:VCARD\nFN:Three\n\
            BEGIN:VCARD\nFN:Four\nX;=v:x\nEND:VCARD\n\
            BEGIN:VCARD\nBAD NAME:x\nEND:VCARD\n\
            BEGIN:VCARD\nFN:Five\nEND:VCARD\n\
            BEGIN:VCARD\nFN:Six\n";
        let items = parse(input.as_bytes());
        let summary: Vec<_> = items
            .iter()
            .map(|item| {
                (
                    item.line,
                    item.card
                        .as_ref()
                        .map(|c| c.property("FN").unwrap().text())
                        .map_err(|e| *e),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, Err(VcardError::Outside(1))),
                (3, Ok("One".to_owned())),
                (7, Err(VcardError::NoColon(9))),
                (11, Err(VcardError::Unterminated(11))),
                (13, Err(VcardError::Parameter(15))),
                (17, Err(VcardError::Name(18))),
                (20, Ok("Five".to_owned())),
                (23, Err(VcardError::Unterminated(23))),
            ]
        );
        assert_eq!(
            VcardError::NoColon(9).to_string(),
            "line 9: no ':' between the property's name and its value"
        );
    }

    #[test]
    fn byte_order_mark_crlf_and_invalid_utf8() {
        let input = b"\xEF\xBB\xBFBEGIN:VCARD\r\nFN:Bad \xFF byte\r\nFN:Split \xC3\r\n \xA9\r\nEND:VCARD\r\n";
        let items = parse(input);
        assert_eq!(items.len(), 1);
        let card = items[0].card.clone().unwrap();
        round_trips(&card);
        let names: Vec<_> = card.properties_named("FN").map(Property::text).collect();
        assert_eq!(names, ["Bad \u{FFFD} byte", "Split é"]);
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let inputs: &[&[u8]] = &[
            b"",
            b"\r",
            b"\n\n\n",
            b" ",
            b":",
            b";",
            b"\"",
            b"BEGIN:VCARD",
            b"BEGIN:VCARD\nX;P=\"unterminated:v\nEND:VCARD",
            b"BEGIN:VCARD\nX;P=\"a\"b:v\nEND:VCARD",
            b"BEGIN:VCARD\nX;P=a,\nEND:VCARD",
            b"BEGIN:VCARD\nX;P\nEND:VCARD",
            b"BEGIN:VCARD\n.X:v\nX.:v\na.b.c:v\n;:\nEND:VCARD",
            b"BEGIN:VCARD\nX;P=^\nX;P=\"^\":v\nEND:VCARD",
            b"END:VCARD\nEND:VCARD",
            b"\xFF\xFE\x00B\x00E",
        ];
        for input in inputs {
            for item in parse(input) {
                if let Ok(card) = item.card {
                    round_trips(&card);
                }
            }
        }
        // Every prefix of a real card parses without panicking.
        let full = RFC_6350_EXAMPLE.as_bytes();
        for end in 0..full.len() {
            for item in parse(&full[..end]) {
                if let Ok(card) = item.card {
                    round_trips(&card);
                }
            }
        }
    }
}
