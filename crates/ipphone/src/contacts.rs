//! The telephone directory: contacts in a TOML file at the XDG path
//! (`$XDG_CONFIG_HOME/ipphone/contacts.toml`, else
//! `~/.config/ipphone/contacts.toml`), the `ipphone contacts` commands,
//! vCard import and export (RFC 6350, reading RFC 2426 too), and lookups: by
//! name for `ipphone call NAME`, by address for an incoming caller.
//!
//! ```toml
//! [[contact]]
//! name = "Bob Smith"
//! speed_dial = 2                 # 1-99, one contact each; optional
//! screen = "allow"               # allow | block | voicemail; optional
//! addresses = [                  # the first is the one `call` dials
//!     "sip:bob@example.com",     # a SIP address: protocol sip
//!     "+15551234567",            # a telephone number, called through the account
//!     { address = "192.0.2.1:5000", protocol = "tcp-pcm" },
//! ]
//! ```
//!
//! ipphone rewrites the file whole (comments are not kept), through
//! `contacts.toml.part`, synced and renamed, so it is never half-written. A
//! file that does not parse is reported with its line and column and never
//! written over.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::{Subcommand, ValueEnum};
use proto::sip::message::{Host, SipUri, Uri, percent_decode};
use proto::vcard::{self, Property, VCard};
use serde::Deserialize;
use toml::Spanned;

use crate::cli::{Protocol, exit};

/// The largest contacts file or vCard file ipphone reads.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// `ipphone contacts ...`.
#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Add a contact, or another address to the contact of that name.
    Add {
        /// The contact's name.
        name: String,
        /// `sip:user@host[:port]`, `user@host`, a telephone number or a user of the account; `host:port` for the other protocols.
        address: String,
        /// A speed-dial number, 1-99: `ipphone call N`.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=99))]
        speed_dial: Option<u8>,
        /// The address's call protocol.
        #[arg(long, value_enum, default_value = "sip")]
        protocol: Protocol,
        /// What to do with the contact's incoming calls.
        #[arg(long, value_enum, value_name = "RULE")]
        screen: Option<Screen>,
    },
    /// List the contacts.
    List {
        /// One JSON object per contact on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Change a contact.
    Edit {
        /// The contact's name (any case).
        name: String,
        /// Rename it.
        #[arg(long = "name", value_name = "NEW")]
        new_name: Option<String>,
        /// Add an address (repeatable).
        #[arg(long, value_name = "A")]
        add_address: Vec<String>,
        /// Remove an address (repeatable).
        #[arg(long, value_name = "A")]
        remove_address: Vec<String>,
        /// The call protocol of the addresses added.
        #[arg(long, value_enum, default_value = "sip")]
        protocol: Protocol,
        /// A speed-dial number 1-99, or `none`.
        #[arg(long, value_name = "N|none", value_parser = parse_speed_dial)]
        speed_dial: Option<Setting<u8>>,
        /// allow, block, voicemail, or `none`.
        #[arg(long, value_name = "RULE|none", value_parser = parse_screen)]
        screen: Option<Setting<Screen>>,
    },
    /// Remove a contact.
    Remove {
        /// The contact's name (any case).
        name: String,
    },
    /// Add the contacts of a vCard file (versions 3 and 4; one or many cards).
    Import {
        #[arg(value_name = "FILE.vcf")]
        file: PathBuf,
    },
    /// Write every contact as vCard 4.
    Export {
        /// The file to write [default: stdout].
        #[arg(long, value_name = "FILE.vcf")]
        out: Option<PathBuf>,
    },
}

/// A value an edit sets or clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting<T> {
    Set(T),
    Clear,
}

/// What happens to a contact's incoming calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Screen {
    /// Ring, even when other calls are turned away.
    Allow,
    /// Turn the call away.
    Block,
    /// Send the call to voicemail.
    Voicemail,
}

/// The directory: contacts in the file's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    pub contacts: Vec<Contact>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Unique, ignoring case.
    pub name: String,
    /// At least one; the first is the one to call.
    pub addresses: Vec<Address>,
    /// 1-99, unique.
    pub speed_dial: Option<u8>,
    pub screen: Option<Screen>,
}

/// Where to call a contact, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// For sip: a `sip:`/`sips:` URI, a telephone number (`+15551234567`)
    /// or a bare user of the account (`bob`); for the others `host:port`.
    pub address: String,
    pub protocol: Protocol,
}

/// What `ipphone call NAME` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Found(Contact),
    /// Several contacts fit equally well, sorted by name.
    Ambiguous(Vec<Contact>),
    NotFound,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// New contacts.
    pub added: usize,
    /// Existing contacts (same name) that gained an address or a setting.
    pub updated: usize,
    /// Cards that brought nothing new.
    pub unchanged: usize,
    /// Cards left out, each with where and why.
    pub skipped: Vec<String>,
    /// Things left out of cards that were imported.
    pub notes: Vec<String>,
}

/// Runs an `ipphone contacts` command on the file at `path` (the XDG path
/// when `None`). Returns the exit code: 0 done, 1 failed, 2 bad usage.
pub fn run(command: ContactsCommand, path: Option<&Path>) -> anyhow::Result<u8> {
    let path = match path {
        Some(path) => path.to_owned(),
        None => default_path().context(
            "no place for the contacts file: neither XDG_CONFIG_HOME nor HOME is set \
             (name one with --contacts FILE)",
        )?,
    };
    run_in(
        command,
        &path,
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    )
}

/// `$XDG_CONFIG_HOME/ipphone/contacts.toml`, else
/// `$HOME/.config/ipphone/contacts.toml`.
pub fn default_path() -> Option<PathBuf> {
    default_path_from(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The contact `query` means: a speed-dial number if it is 1-99; else the
/// name, ignoring case; else the only name (or word of a name) it begins;
/// else the only name within a typo or two of it, or holding its letters in
/// order.
pub fn resolve(book: &Book, query: &str) -> Resolution {
    let query = query.trim();
    if (1..=2).contains(&query.len()) && query.bytes().all(|b| b.is_ascii_digit()) {
        let number: u8 = query.parse().expect("one or two digits");
        return match book.contacts.iter().find(|c| c.speed_dial == Some(number)) {
            Some(contact) => Resolution::Found(contact.clone()),
            None => Resolution::NotFound,
        };
    }
    let query = query.to_lowercase();
    if query.is_empty() {
        return Resolution::NotFound;
    }
    if let Some(contact) = book.contact(&query) {
        return Resolution::Found(contact.clone());
    }
    let prefixed: Vec<&Contact> = book
        .contacts
        .iter()
        .filter(|c| {
            let name = c.name.to_lowercase();
            name.starts_with(&query) || name.split_whitespace().any(|w| w.starts_with(&query))
        })
        .collect();
    if prefixed.len() > 1 {
        // "bob" means Bob Smith rather than Bobby Brown.
        let whole_word: Vec<&Contact> = prefixed
            .iter()
            .copied()
            .filter(|c| c.name.to_lowercase().split_whitespace().any(|w| w == query))
            .collect();
        if whole_word.len() == 1 {
            return Resolution::Found(whole_word[0].clone());
        }
    }
    if !prefixed.is_empty() {
        return one_or_many(prefixed);
    }
    let scored: Vec<(usize, &Contact)> = book
        .contacts
        .iter()
        .filter_map(|c| fuzzy_score(&query, &c.name.to_lowercase()).map(|s| (s, c)))
        .collect();
    match scored.iter().map(|(s, _)| *s).min() {
        Some(best) => one_or_many(
            scored
                .into_iter()
                .filter(|(s, _)| *s == best)
                .map(|(_, c)| c)
                .collect(),
        ),
        None => Resolution::NotFound,
    }
}

/// The name of the contact calling from `address` (a SIP URI, with or
/// without `<>` and display name, `user@host`, `tel:`, or the `ip[:port]` of
/// a TCP or RTP peer). See [`contact_for`].
pub fn name_for(book: &Book, address: &str) -> Option<String> {
    contact_for(book, address).map(|c| c.name.clone())
}

/// The contact calling from `address`: first one with that user at that
/// host (the host compared as RFC 3261 §19.1.4 does; scheme, port and
/// parameters ignored), else one with that telephone number or account user
/// at any host. A `host:port` peer matches the contact addresses at that IP
/// address.
pub fn contact_for<'a>(book: &'a Book, address: &str) -> Option<&'a Contact> {
    let caller = Peer::parse(address)?;
    let strong = book
        .contacts
        .iter()
        .find(|c| c.addresses.iter().any(|a| caller.is(a, false)));
    strong.or_else(|| {
        book.contacts
            .iter()
            .find(|c| c.addresses.iter().any(|a| caller.is(a, true)))
    })
}

impl Book {
    /// Reads the book at `path`; a missing file is an empty book.
    pub fn load(path: &Path) -> anyhow::Result<Book> {
        match read_bounded(path) {
            Ok(bytes) => Book::parse_bytes(&bytes).with_context(|| {
                format!(
                    "{} (fix it by hand; ipphone leaves it as it is)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Book::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Reads a book from TOML. Errors name the line and column.
    pub fn parse(text: &str) -> anyhow::Result<Book> {
        let file: FileRepr = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => at(text, span.start, e.message()),
            None => anyhow!("{}", e.message()),
        })?;
        let mut book = Book::default();
        let mut names = HashSet::new();
        for repr in file.contact {
            let name = repr.name.get_ref().trim().to_owned();
            let name_at = repr.name.span().start;
            check_name(&name).map_err(|e| at(text, name_at, &e))?;
            if !names.insert(name.to_lowercase()) {
                return Err(at(text, name_at, &format!("{name} is in the file twice")));
            }
            if repr.addresses.is_empty() {
                return Err(at(text, name_at, &format!("{name} has no address")));
            }
            let mut addresses = Vec::new();
            for spanned in &repr.addresses {
                let address_at = spanned.span().start;
                let (address, protocol) = match spanned.get_ref() {
                    AddressRepr::Text(address) => (address, None),
                    AddressRepr::Table { address, protocol } => (address, protocol.as_deref()),
                };
                let protocol = match protocol {
                    None => Protocol::Sip,
                    Some(p) => Protocol::from_str(p, true).map_err(|_| {
                        at(
                            text,
                            address_at,
                            &format!("unknown protocol {p}: sip, tcp-pcm, tcp-mp3 or rtp"),
                        )
                    })?,
                };
                let address =
                    Address::new(address, protocol).map_err(|e| at(text, address_at, &e))?;
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
            let speed_dial = match &repr.speed_dial {
                None => None,
                Some(n) => {
                    let number = u8::try_from(*n.get_ref())
                        .ok()
                        .filter(|n| (1..=99).contains(n))
                        .ok_or_else(|| at(text, n.span().start, "speed_dial is 1-99"))?;
                    if let Some(other) = book.speed_dial_owner(number) {
                        return Err(at(
                            text,
                            n.span().start,
                            &format!("speed dial {number} is {}'s already", other.name),
                        ));
                    }
                    Some(number)
                }
            };
            book.contacts.push(Contact {
                name,
                addresses,
                speed_dial,
                screen: repr.screen,
            });
        }
        Ok(book)
    }

    /// The book as TOML, in the shape of the module's example.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# ipphone's telephone directory: see `ipphone contacts --help`.\n\
             # ipphone rewrites this file whole; comments are not kept.\n",
        );
        for contact in &self.contacts {
            let _ = write!(
                out,
                "\n[[contact]]\nname = {}\n",
                toml_string(&contact.name)
            );
            if let Some(n) = contact.speed_dial {
                let _ = writeln!(out, "speed_dial = {n}");
            }
            if let Some(screen) = contact.screen {
                let _ = writeln!(out, "screen = \"{}\"", screen.name());
            }
            let addresses: Vec<String> = contact
                .addresses
                .iter()
                .map(|a| match a.protocol {
                    Protocol::Sip => toml_string(&a.address),
                    p => format!(
                        "{{ address = {}, protocol = \"{}\" }}",
                        toml_string(&a.address),
                        p.name()
                    ),
                })
                .collect();
            if let [one] = addresses.as_slice() {
                let _ = writeln!(out, "addresses = [{one}]");
            } else {
                out.push_str("addresses = [\n");
                for a in addresses {
                    let _ = writeln!(out, "    {a},");
                }
                out.push_str("]\n");
            }
        }
        out
    }

    /// Writes the book to `path` through `path.part`, synced and renamed.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        write_atomically(path, self.to_toml().as_bytes())
    }

    /// The contact called `name`, ignoring case.
    pub fn contact(&self, name: &str) -> Option<&Contact> {
        self.position(name).map(|i| &self.contacts[i])
    }

    /// Adds the contacts of vCard text, merging cards into the contacts of
    /// the same name.
    pub fn import_vcards(&mut self, input: &[u8]) -> ImportReport {
        let mut report = ImportReport::default();
        for item in vcard::parse(input) {
            let card = match item.card {
                Ok(card) => card,
                Err(e @ vcard::VcardError::Outside(_)) => {
                    report.skipped.push(e.to_string());
                    continue;
                }
                Err(e) => {
                    report
                        .skipped
                        .push(format!("card at line {}: {e}", item.line));
                    continue;
                }
            };
            match contact_of_card(&card, &mut report.notes) {
                Ok(contact) => self.merge(contact, &mut report),
                Err(why) => report
                    .skipped
                    .push(format!("card at line {}: {why}", item.line)),
            }
        }
        report
    }

    /// Every contact as a vCard 4 card, in order. Importing them into an
    /// empty book gives this book back.
    pub fn to_vcards(&self) -> String {
        let cards: Vec<VCard> = self.contacts.iter().map(card_of_contact).collect();
        vcard::print(&cards)
    }

    fn position(&self, name: &str) -> Option<usize> {
        let name = name.trim().to_lowercase();
        self.contacts
            .iter()
            .position(|c| c.name.to_lowercase() == name)
    }

    fn speed_dial_owner(&self, number: u8) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.speed_dial == Some(number))
    }

    fn parse_bytes(bytes: &[u8]) -> anyhow::Result<Book> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Book::parse(text),
            Err(e) => {
                let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
                Err(at(valid, valid.len(), "not UTF-8"))
            }
        }
    }

    fn merge(&mut self, contact: Contact, report: &mut ImportReport) {
        let speed_dial = contact.speed_dial.filter(|&n| {
            let owner = self
                .speed_dial_owner(n)
                .filter(|o| !o.name.eq_ignore_ascii_case(&contact.name));
            if let Some(owner) = owner {
                report.notes.push(format!(
                    "{}: speed dial {n} is {}'s already; left out",
                    contact.name, owner.name
                ));
            }
            owner.is_none()
        });
        let Some(i) = self.position(&contact.name) else {
            report.added += 1;
            self.contacts.push(Contact {
                speed_dial,
                ..contact
            });
            return;
        };
        let existing = &mut self.contacts[i];
        let before = existing.clone();
        for address in contact.addresses {
            if !existing.addresses.contains(&address) {
                existing.addresses.push(address);
            }
        }
        existing.speed_dial = existing.speed_dial.or(speed_dial);
        existing.screen = existing.screen.or(contact.screen);
        if *existing == before {
            report.unchanged += 1;
        } else {
            report.updated += 1;
        }
    }
}

impl Address {
    /// Checks `text` as an address for `protocol` and puts it in its usual
    /// form: for sip, `user@host` and `host[:port]` gain `sip:`, `tel:` URIs
    /// and written-out numbers become `+15551234567`; for the others it must
    /// be `host:port`.
    pub fn new(text: &str, protocol: Protocol) -> Result<Address, String> {
        let text = text.trim();
        let address = match protocol {
            Protocol::Sip => sip_address(text)?,
            _ => host_port(text)
                .map(|_| text.to_owned())
                .ok_or_else(|| format!("{text} is not host:port, as {} needs", protocol.name()))?,
        };
        Ok(Address { address, protocol })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            Protocol::Sip => f.write_str(&self.address),
            p => write!(f, "{} ({})", self.address, p.name()),
        }
    }
}

impl Screen {
    pub fn name(self) -> &'static str {
        match self {
            Screen::Allow => "allow",
            Screen::Block => "block",
            Screen::Voicemail => "voicemail",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    #[serde(default)]
    contact: Vec<ContactRepr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactRepr {
    name: Spanned<String>,
    addresses: Vec<Spanned<AddressRepr>>,
    speed_dial: Option<Spanned<i64>>,
    screen: Option<Screen>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AddressRepr {
    Text(String),
    Table {
        address: String,
        protocol: Option<String>,
    },
}

fn run_in(
    command: ContactsCommand,
    path: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let mut book = Book::load(path)?;
    match command {
        ContactsCommand::Add {
            name,
            address,
            speed_dial,
            protocol,
            screen,
        } => {
            let name = name.trim().to_owned();
            if let Err(e) = check_name(&name) {
                return usage(err, &e);
            }
            let address = match Address::new(&address, protocol) {
                Ok(address) => address,
                Err(e) => return usage(err, &e),
            };
            if let Some(n) = speed_dial
                && let Some(owner) = book.speed_dial_owner(n)
                && !owner.name.eq_ignore_ascii_case(&name)
            {
                bail!(
                    "speed dial {n} is {}'s already (free it with: ipphone contacts edit \"{}\" --speed-dial none)",
                    owner.name,
                    owner.name
                );
            }
            let message = match book.position(&name) {
                None => {
                    let message = format!("added {name}: {address}");
                    book.contacts.push(Contact {
                        name,
                        addresses: vec![address],
                        speed_dial,
                        screen,
                    });
                    message
                }
                Some(i) => {
                    let contact = &mut book.contacts[i];
                    let before = contact.clone();
                    let message = if contact.addresses.contains(&address) {
                        format!("{} has {address} already", contact.name)
                    } else {
                        let message = format!("added {address} to {}", contact.name);
                        contact.addresses.push(address);
                        message
                    };
                    contact.speed_dial = speed_dial.or(contact.speed_dial);
                    contact.screen = screen.or(contact.screen);
                    if *contact == before {
                        writeln!(err, "{message}")?;
                        return Ok(exit::OK);
                    }
                    message
                }
            };
            book.save(path)?;
            writeln!(err, "{message}")?;
        }
        ContactsCommand::List { json } => list(&book, path, json, out, err)?,
        ContactsCommand::Edit {
            name,
            new_name,
            add_address,
            remove_address,
            protocol,
            speed_dial,
            screen,
        } => {
            if new_name.is_none()
                && add_address.is_empty()
                && remove_address.is_empty()
                && speed_dial.is_none()
                && screen.is_none()
            {
                return usage(
                    err,
                    "nothing to change: give --name, --add-address, --remove-address, \
                     --speed-dial or --screen",
                );
            }
            let Some(i) = book.position(&name) else {
                bail!("{}", not_found(&book, &name));
            };
            let mut contact = book.contacts[i].clone();
            for text in &remove_address {
                let found = contact.addresses.iter().position(|a| {
                    a.address == text.trim()
                        || Address::new(text, a.protocol).is_ok_and(|n| n.address == a.address)
                });
                match found {
                    Some(j) => {
                        contact.addresses.remove(j);
                    }
                    None => bail!("{} has no address {text}", contact.name),
                }
            }
            for text in &add_address {
                let address = match Address::new(text, protocol) {
                    Ok(address) => address,
                    Err(e) => return usage(err, &e),
                };
                if !contact.addresses.contains(&address) {
                    contact.addresses.push(address);
                }
            }
            if contact.addresses.is_empty() {
                bail!(
                    "that would leave {} with no address (to remove the contact: ipphone contacts remove \"{}\")",
                    contact.name,
                    contact.name
                );
            }
            if let Some(new_name) = new_name {
                let new_name = new_name.trim().to_owned();
                if let Err(e) = check_name(&new_name) {
                    return usage(err, &e);
                }
                if book.position(&new_name).is_some_and(|j| j != i) {
                    bail!("there is a contact called {new_name} already");
                }
                contact.name = new_name;
            }
            match speed_dial {
                Some(Setting::Set(n)) => {
                    if let Some(owner) = book
                        .speed_dial_owner(n)
                        .filter(|o| o.name != book.contacts[i].name)
                    {
                        bail!("speed dial {n} is {}'s already", owner.name);
                    }
                    contact.speed_dial = Some(n);
                }
                Some(Setting::Clear) => contact.speed_dial = None,
                None => {}
            }
            match screen {
                Some(Setting::Set(rule)) => contact.screen = Some(rule),
                Some(Setting::Clear) => contact.screen = None,
                None => {}
            }
            let message = format!("changed {}", contact.name);
            book.contacts[i] = contact;
            book.save(path)?;
            writeln!(err, "{message}")?;
        }
        ContactsCommand::Remove { name } => {
            let Some(i) = book.position(&name) else {
                bail!("{}", not_found(&book, &name));
            };
            let removed = book.contacts.remove(i);
            book.save(path)?;
            writeln!(err, "removed {}", removed.name)?;
        }
        ContactsCommand::Import { file } => {
            let input =
                read_bounded(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let before = book.clone();
            let report = book.import_vcards(&input);
            if book != before {
                book.save(path)?;
            }
            let imported = report.added + report.updated + report.unchanged;
            writeln!(
                err,
                "imported {imported} card{} from {} ({} new, {} updated, {} already known), skipped {}",
                plural(imported),
                file.display(),
                report.added,
                report.updated,
                report.unchanged,
                report.skipped.len()
            )?;
            for why in &report.skipped {
                writeln!(err, "  skipped: {why}")?;
            }
            for note in &report.notes {
                writeln!(err, "  note: {note}")?;
            }
            if imported == 0 && !report.skipped.is_empty() {
                return Ok(exit::FAILURE);
            }
        }
        ContactsCommand::Export { out: file } => {
            let text = book.to_vcards();
            match file {
                Some(file) => {
                    write_atomically(&file, text.as_bytes())?;
                    writeln!(
                        err,
                        "exported {} contact{} to {}",
                        book.contacts.len(),
                        plural(book.contacts.len()),
                        file.display()
                    )?;
                }
                None => out.write_all(text.as_bytes())?,
            }
        }
    }
    Ok(exit::OK)
}

fn list(
    book: &Book,
    path: &Path,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut contacts: Vec<&Contact> = book.contacts.iter().collect();
    contacts.sort_by_key(|c| c.name.to_lowercase());
    if json {
        for c in contacts {
            let addresses: Vec<_> = c
                .addresses
                .iter()
                .map(|a| serde_json::json!({"address": a.address, "protocol": a.protocol.name()}))
                .collect();
            let object = serde_json::json!({
                "name": c.name,
                "addresses": addresses,
                "speed_dial": c.speed_dial,
                "screen": c.screen.map(Screen::name),
            });
            writeln!(out, "{object}")?;
        }
        return Ok(());
    }
    if contacts.is_empty() {
        writeln!(err, "no contacts in {}", path.display())?;
        return Ok(());
    }
    let width = contacts
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    writeln!(out, "{:<width$}  DIAL  SCREEN     ADDRESS", "NAME")?;
    for c in contacts {
        let dial = c.speed_dial.map(|n| n.to_string()).unwrap_or_default();
        let screen = c.screen.map_or("", Screen::name);
        for (j, address) in c.addresses.iter().enumerate() {
            if j == 0 {
                writeln!(out, "{:<width$}  {dial:>4}  {screen:<9}  {address}", c.name)?;
            } else {
                writeln!(out, "{:<width$}  {:>4}  {:<9}  {address}", "", "", "")?;
            }
        }
    }
    Ok(())
}

fn usage(err: &mut dyn Write, message: &str) -> anyhow::Result<u8> {
    writeln!(err, "ipphone: {message}")?;
    Ok(exit::USAGE)
}

fn not_found(book: &Book, name: &str) -> String {
    match resolve(book, name) {
        Resolution::Found(c) => format!("no contact called {name}; did you mean {}?", c.name),
        Resolution::Ambiguous(cs) => {
            let names: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
            format!(
                "no contact called {name}; did you mean one of: {}?",
                names.join(", ")
            )
        }
        Resolution::NotFound => format!("no contact called {name} (ipphone contacts list)"),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn parse_speed_dial(s: &str) -> Result<Setting<u8>, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Setting::Clear);
    }
    s.parse::<u8>()
        .ok()
        .filter(|n| (1..=99).contains(n))
        .map(Setting::Set)
        .ok_or_else(|| "a speed dial is 1-99, or none".to_owned())
}

fn parse_screen(s: &str) -> Result<Setting<Screen>, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Setting::Clear);
    }
    Screen::from_str(s, true)
        .map(Setting::Set)
        .map_err(|_| "a screening rule is allow, block, voicemail, or none".to_owned())
}

fn default_path_from(xdg_config_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    Some(
        crate::xdg::dir_from(crate::xdg::Base::Config, xdg_config_home, home)?
            .join("contacts.toml"),
    )
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a contact needs a name".to_owned());
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{name:?}: a name is one line of text"));
    }
    if name.chars().count() > 200 {
        return Err("a name is at most 200 characters".to_owned());
    }
    Ok(())
}

/// A SIP address in its usual form (see [`Address::new`]).
fn sip_address(text: &str) -> Result<String, String> {
    let invalid = || {
        format!(
            "{text} is not a SIP address: sip:user@host[:port], user@host, host:port, \
             a telephone number or a user name of the account"
        )
    };
    if text.is_empty() {
        return Err("an empty address".to_owned());
    }
    if let Some(number) = strip_prefix_ignore_case(text, "tel:") {
        let number = number.split(';').next().unwrap_or_default();
        return telephone_number(number).ok_or_else(invalid);
    }
    if let Some(number) = telephone_number(text) {
        return Ok(number);
    }
    if has_sip_scheme(text) {
        return match Uri::parse(text) {
            Ok(Uri::Sip(_)) => Ok(text.to_owned()),
            _ => Err(invalid()),
        };
    }
    if is_bare_user(text) {
        // A user of the account's domain: check its characters as a SIP user.
        return SipUri::parse(&format!("sip:{text}@example.com"))
            .map(|_| text.to_owned())
            .map_err(|_| invalid());
    }
    let uri = format!("sip:{text}");
    match SipUri::parse(&uri) {
        Ok(_) => Ok(uri),
        Err(_) => Err(invalid()),
    }
}

/// `+1 (555) 123-4567` as `+15551234567`: digits, `*` and `#`, with a
/// leading `+`; spaces, dashes, dots and brackets are only for reading
/// (RFC 3966 §5.1.1). None if there is anything else or no digit.
fn telephone_number(text: &str) -> Option<String> {
    let text = text.trim();
    let (plus, rest) = match text.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", text),
    };
    let mut number = String::from(plus);
    for c in rest.chars() {
        match c {
            '0'..='9' | '*' | '#' => number.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    // An IPv4 address is a host, not a number with dots.
    if !number.bytes().any(|b| b.is_ascii_digit()) || text.parse::<IpAddr>().is_ok() {
        return None;
    }
    Some(number)
}

/// A name with no host: `bob`, called at the account's domain.
fn is_bare_user(text: &str) -> bool {
    !text.contains(['@', ':', '.', '['])
}

fn has_sip_scheme(text: &str) -> bool {
    strip_prefix_ignore_case(text, "sip:").is_some()
        || strip_prefix_ignore_case(text, "sips:").is_some()
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The host of `host:port` (IPv6 in brackets), if it is one.
fn host_port(text: &str) -> Option<Host> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip().into());
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok().filter(|&p| p != 0)?;
    Host::parse(host).ok()
}

/// A caller, as [`contact_for`] reads it.
enum Peer {
    Sip { user: Option<String>, host: Host },
    Number(String),
    Ip(IpAddr),
}

impl Peer {
    fn parse(address: &str) -> Option<Peer> {
        let mut text = address.trim();
        if let Some(start) = text.find('<') {
            text = text[start + 1..].split('>').next()?;
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Some(Peer::Ip(addr.ip()));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(Peer::Ip(ip));
        }
        if let Some(number) = strip_prefix_ignore_case(text, "tel:") {
            return telephone_number(number.split(';').next()?).map(Peer::Number);
        }
        let uri = if has_sip_scheme(text) {
            Uri::parse(text).ok()?.as_sip()?.clone()
        } else {
            SipUri::parse(&format!("sip:{text}")).ok()?
        };
        Some(Peer::Sip {
            user: uri.user.as_deref().map(decoded),
            host: uri.host,
        })
    }

    /// Whether the caller is at `address`: by user and host, or (`loose`)
    /// by telephone number or account user alone.
    fn is(&self, address: &Address, loose: bool) -> bool {
        let ip_host = |ip: &IpAddr| -> Host { (*ip).into() };
        match (self, address.protocol) {
            (Peer::Ip(ip), Protocol::Sip) => {
                !loose
                    && sip_uri_of(address)
                        .is_some_and(|uri| uri.user.is_none() && uri.host.equivalent(&ip_host(ip)))
            }
            (Peer::Ip(ip), _) => {
                !loose && host_port(&address.address).is_some_and(|h| h.equivalent(&ip_host(ip)))
            }
            (_, p) if p != Protocol::Sip => false,
            (Peer::Sip { user, host }, _) if !loose => sip_uri_of(address).is_some_and(|uri| {
                uri.host.equivalent(host) && uri.user.as_deref().map(decoded) == *user
            }),
            (
                Peer::Sip {
                    user: Some(user), ..
                },
                _,
            ) => address.address == *user || same_number(user, &address.address),
            (Peer::Sip { user: None, .. }, _) => false,
            (Peer::Number(number), _) => loose && same_number(number, &address.address),
        }
    }
}

fn sip_uri_of(address: &Address) -> Option<SipUri> {
    if !has_sip_scheme(&address.address) {
        return None;
    }
    Uri::parse(&address.address).ok()?.as_sip().cloned()
}

fn decoded(user: &str) -> String {
    String::from_utf8_lossy(&percent_decode(user)).into_owned()
}

/// Telephone numbers compared by their digits, `+` or not.
fn same_number(a: &str, b: &str) -> bool {
    let digits = |s: &str| telephone_number(s).map(|n| n.trim_start_matches('+').to_owned());
    matches!((digits(a), digits(b)), (Some(a), Some(b)) if a == b)
}

fn one_or_many(mut contacts: Vec<&Contact>) -> Resolution {
    match contacts.len() {
        0 => Resolution::NotFound,
        1 => Resolution::Found(contacts[0].clone()),
        _ => {
            contacts.sort_by_key(|c| c.name.to_lowercase());
            Resolution::Ambiguous(contacts.into_iter().cloned().collect())
        }
    }
}

/// How near `query` is to `name` (both lower case), lower is nearer: the
/// fewest edits to the name or one of its words, within 1 for a query of 3
/// to 5 characters and 2 for a longer one; else, one more than that, if the
/// name holds the query's letters in order.
fn fuzzy_score(query: &str, name: &str) -> Option<usize> {
    let length = query.chars().count();
    let allowed = match length {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    };
    let edits = std::iter::once(name)
        .chain(name.split_whitespace())
        .map(|target| edit_distance(query, target))
        .min()
        .unwrap_or(usize::MAX);
    if allowed > 0 && edits <= allowed {
        return Some(edits);
    }
    let mut letters = name.chars().filter(|c| !c.is_whitespace());
    let subsequence = query
        .chars()
        .filter(|c| !c.is_whitespace())
        .all(|q| letters.any(|c| c == q));
    (length >= 2 && subsequence).then_some(3)
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`:
/// the optimal string alignment distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// A contact from a card: the name from FN, else N, else ORG; addresses
/// from TEL, IMPP, X-SIP and URL (sip: and tel: ones), and ipphone's own
/// X-IPPHONE-* properties, in the card's order.
fn contact_of_card(card: &VCard, notes: &mut Vec<String>) -> Result<Contact, String> {
    let name = card_name(card).ok_or("no name (FN, N or ORG)")?;
    let mut contact = Contact {
        name,
        addresses: Vec::new(),
        speed_dial: None,
        screen: None,
    };
    for property in &card.properties {
        let value = property.text();
        let value = value.trim();
        let address = match property.name.as_str() {
            "TEL" => {
                // A number, a tel: URI (vCard 4) or, from some phones, a sip: URI.
                let address =
                    if has_sip_scheme(value) || strip_prefix_ignore_case(value, "tel:").is_some() {
                        Address::new(value, Protocol::Sip).ok()
                    } else {
                        telephone_number(value).map(|address| Address {
                            address,
                            protocol: Protocol::Sip,
                        })
                    };
                if address.is_none() {
                    notes.push(format!("{}: left out TEL {value}", contact.name));
                }
                address
            }
            "IMPP" | "URL" if has_sip_scheme(value) => Address::new(value, Protocol::Sip).ok(),
            "X-SIP" => Address::new(value, Protocol::Sip).ok(),
            "X-IPPHONE-ADDRESS" => {
                let protocol = property.param_values("X-PROTOCOL").next().unwrap_or("sip");
                Protocol::from_str(protocol, true)
                    .ok()
                    .and_then(|p| Address::new(value, p).ok())
            }
            "X-IPPHONE-SPEED-DIAL" => {
                contact.speed_dial = value.parse().ok().filter(|n| (1..=99).contains(n));
                None
            }
            "X-IPPHONE-SCREEN" => {
                contact.screen = Screen::from_str(value, true).ok();
                None
            }
            _ => None,
        };
        if let Some(address) = address
            && !contact.addresses.contains(&address)
        {
            contact.addresses.push(address);
        }
    }
    if contact.addresses.is_empty() {
        return Err(format!(
            "{}: no SIP address or telephone number",
            contact.name
        ));
    }
    Ok(contact)
}

fn card_name(card: &VCard) -> Option<String> {
    let clean = |s: &str| -> String {
        s.split(char::is_control)
            .flat_map(str::split_whitespace)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let from_fn = card
        .property("FN")
        .map(|p| p.text().replace(char::is_control, " ").trim().to_owned());
    let from_n = card.property("N").map(|p| {
        // family; given; additional; prefixes; suffixes (RFC 6350 §6.2.2)
        let c = p.components();
        let part = |i: usize| c.get(i).map(String::as_str).unwrap_or_default();
        clean(
            &[part(3), part(1), part(2), part(0), part(4)]
                .join(" ")
                .replace(',', " "),
        )
    });
    let from_org = card.property("ORG").map(|p| {
        clean(
            p.components()
                .first()
                .map(String::as_str)
                .unwrap_or_default(),
        )
    });
    [from_fn, from_n, from_org]
        .into_iter()
        .flatten()
        .find(|name| check_name(name).is_ok())
}

fn card_of_contact(contact: &Contact) -> VCard {
    let mut card = VCard::new("4.0");
    card.push(Property::new(
        "PRODID",
        concat!("-//ipphone//ipphone ", env!("CARGO_PKG_VERSION"), "//EN"),
    ));
    card.push(Property::from_text("FN", &contact.name));
    for address in &contact.addresses {
        let text = &address.address;
        let property = match address.protocol {
            // URIs are written as they are (RFC 6350 §3.4 escapes text only).
            Protocol::Sip if has_sip_scheme(text) => Property::new("IMPP", text),
            Protocol::Sip if telephone_number(text).is_some() => {
                Property::new("TEL", &format!("tel:{text}")).with_param("VALUE", "uri")
            }
            Protocol::Sip => Property::from_text("X-IPPHONE-ADDRESS", text),
            p => Property::from_text("X-IPPHONE-ADDRESS", text).with_param("X-PROTOCOL", p.name()),
        };
        card.push(property);
    }
    if let Some(n) = contact.speed_dial {
        card.push(Property::new("X-IPPHONE-SPEED-DIAL", &n.to_string()));
    }
    if let Some(screen) = contact.screen {
        card.push(Property::new("X-IPPHONE-SCREEN", screen.name()));
    }
    card
}

/// Reads at most [`MAX_FILE_BYTES`] of `path`; a longer file is an error.
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let too_long = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {} MiB", MAX_FILE_BYTES >> 20),
        )
    };
    if file.metadata()?.len() > MAX_FILE_BYTES {
        return Err(too_long());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_long());
    }
    Ok(bytes)
}

/// Writes `bytes` to `path.part` in the same directory, syncs it and
/// renames it over `path`, so `path` holds either the old contents or the
/// new, never part of them. A symbolic link is followed, and stays one.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let target = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path)
            .with_context(|| format!("{} is a broken symbolic link", path.display()))?,
        _ => path.to_owned(),
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut part_name = target
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?
        .to_owned();
    part_name.push(".part");
    let part = dir.join(part_name);
    let result = (|| -> io::Result<()> {
        fs::create_dir_all(&dir)?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            // Personal data: readable by its owner only, unless the file
            // being replaced says otherwise.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&part)?;
        file.write_all(bytes)?;
        if let Ok(meta) = fs::metadata(&target) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&part, &target)?;
        // The rename itself is durable once the directory is synced.
        if let Ok(dir) = File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result.with_context(|| format!("cannot write {} (it is left as it was)", target.display()))
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An error at byte `offset` of `text`, as "line L, column C: message".
pub(crate) fn at(text: &str, offset: usize, message: &str) -> anyhow::Error {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    anyhow!("line {line}, column {column}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[contact]]
name = "Bob Smith"
speed_dial = 2                 # 1-99, one contact each; optional
screen = "allow"               # allow | block | voicemail; optional
addresses = [                  # the first is the one `call` dials
    "sip:bob@example.com",     # a SIP address: protocol sip
    "+15551234567",            # a telephone number, called through the account
    { address = "192.0.2.1:5000", protocol = "tcp-pcm" },
]

[[contact]]
name = "Alice"
addresses = ["alice@example.org", { address = "[2001:db8::1]:5004", protocol = "rtp" }]
screen = "voicemail"

[[contact]]
name = "Bobby Brown"
addresses = [{ address = "ext-42" }]
"#;

    fn sip(address: &str) -> Address {
        Address::new(address, Protocol::Sip).unwrap()
    }

    fn contact(name: &str, addresses: &[&str]) -> Contact {
        Contact {
            name: name.to_owned(),
            addresses: addresses.iter().map(|a| sip(a)).collect(),
            speed_dial: None,
            screen: None,
        }
    }

    fn book(contacts: Vec<Contact>) -> Book {
        Book { contacts }
    }

    fn example() -> Book {
        Book::parse(EXAMPLE).unwrap()
    }

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("ipphone-contacts-{}-{test}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `ipphone contacts ARGS` on `path`: (exit code or error, stdout, stderr).
    fn run_args(path: &Path, args: &[&str]) -> (Result<u8, String>, String, String) {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            command: ContactsCommand,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(
            std::iter::once("contacts").chain(args.iter().copied()),
        )
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_in(cli.command, path, &mut out, &mut err).map_err(|e| format!("{e:#}"));
        let text = |v: Vec<u8>| String::from_utf8(v).unwrap();
        (code, text(out), text(err))
    }

    fn ok(path: &Path, args: &[&str]) -> (String, String) {
        let (code, out, err) = run_args(path, args);
        assert_eq!(code, Ok(exit::OK), "{args:?}: {err}");
        (out, err)
    }

    #[test]
    fn reads_the_documented_shape() {
        let book = example();
        assert_eq!(book.contacts.len(), 3);
        let bob = &book.contacts[0];
        assert_eq!(bob.speed_dial, Some(2));
        assert_eq!(bob.screen, Some(Screen::Allow));
        assert_eq!(
            bob.addresses,
            [
                sip("sip:bob@example.com"),
                sip("+15551234567"),
                Address {
                    address: "192.0.2.1:5000".into(),
                    protocol: Protocol::TcpPcm
                },
            ]
        );
        let alice = &book.contacts[1];
        assert_eq!(alice.addresses[0].address, "sip:alice@example.org");
        assert_eq!(alice.addresses[1].protocol, Protocol::Rtp);
        assert_eq!(book.contacts[2].addresses[0].address, "ext-42");
        // The module's own documentation shows the same shape.
        let doc: String = include_str!("contacts.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        assert_eq!(Book::parse(&doc).unwrap().contacts[0], *bob);
    }

    #[test]
    fn the_file_round_trips() {
        let book = example();
        let text = book.to_toml();
        assert!(text.contains("\n[[contact]]\nname = \"Bob Smith\"\nspeed_dial = 2\nscreen = \"allow\"\naddresses = [\n    \"sip:bob@example.com\",\n"), "{text}");
        assert!(text.contains("addresses = [\"ext-42\"]\n"), "{text}");
        assert_eq!(Book::parse(&text).unwrap(), book);
        let odd = book_with_odd_names();
        assert_eq!(Book::parse(&odd.to_toml()).unwrap(), odd);
        assert_eq!(Book::parse("").unwrap(), Book::default());
    }

    fn book_with_odd_names() -> Book {
        let mut zoe = contact(
            "Zoë \"Z\" O'Brien, Jr.; \\ 東京",
            &["sip:zoe@example.com;transport=tcp"],
        );
        zoe.speed_dial = Some(99);
        zoe.screen = Some(Screen::Block);
        let long = contact("Very Long Name ".repeat(10).trim(), &["bob", "*67#"]);
        let mut tcp = contact("Lab  PC", &[]);
        tcp.addresses = vec![
            Address::new("lab.example.net:5000", Protocol::TcpMp3).unwrap(),
            Address::new("192.0.2.7:5000", Protocol::TcpPcm).unwrap(),
            sip("sips:lab@example.net:5061"),
        ];
        book(vec![zoe, long, tcp])
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            (
                "[[contact]]\nname = \"A\"\naddresses = [\"sip:a@b\"\n",
                "line 3",
            ),
            (
                "[[contact]]\nname = \"A\"\naddresses = [{ address = \"h:1\", protocol = \"x\" }]\n",
                "line 3, column 14: unknown protocol x",
            ),
            (
                "[[contact]]\nname = \"A\"\naddresses = [{ address = \"h\", protocol = \"tcp-pcm\" }]\n",
                "line 3, column 14: h is not host:port, as tcp-pcm needs",
            ),
            (
                "[[contact]]\nname = \"A\"\naddresses = [\"a b@c\"]\n",
                "line 3, column 14: a b@c is not a SIP address",
            ),
            (
                "[[contact]]\nname = \"A\"\nspeed_dial = 100\naddresses = [\"a\"]\n",
                "line 3, column 14: speed_dial is 1-99",
            ),
            (
                "[[contact]]\nname = \"A\"\nspeed_dial = 5\naddresses = [\"a\"]\n\
                 [[contact]]\nname = \"B\"\nspeed_dial = 5\naddresses = [\"b\"]\n",
                "line 7, column 14: speed dial 5 is A's already",
            ),
            (
                "[[contact]]\nname = \"Ann\"\naddresses = [\"a\"]\n\
                 [[contact]]\nname = \"ANN\"\naddresses = [\"b\"]\n",
                "line 5, column 8: ANN is in the file twice",
            ),
            (
                "[[contact]]\nname = \"A\"\naddresses = []\n",
                "line 2, column 8: A has no address",
            ),
            (
                "[[contact]]\nname = \" \"\naddresses = [\"a\"]\n",
                "line 2, column 8: a contact needs a name",
            ),
            (
                "[[contact]]\nname = \"A\"\naddresses = [\"a\"]\nscreen = \"maybe\"\n",
                "line 4, column 10: unknown variant `maybe`",
            ),
            (
                "[[contact]]\nname = \"A\"\nphone = \"1\"\n",
                "line 3, column 1: unknown field `phone`",
            ),
        ];
        for (text, expected) in cases {
            let e = format!("{:#}", Book::parse(text).unwrap_err());
            assert!(e.starts_with(expected), "{text}\n{e}");
        }
        let e = format!(
            "{:#}",
            Book::parse_bytes(b"[[contact]]\nname = \"\xFF\"").unwrap_err()
        );
        assert_eq!(e, "line 2, column 9: not UTF-8");
    }

    #[test]
    fn addresses_in_their_usual_form() {
        let sip_cases = [
            ("sip:bob@example.com", "sip:bob@example.com"),
            (
                "  SIP:bob@example.com:5070;transport=tcp ",
                "SIP:bob@example.com:5070;transport=tcp",
            ),
            ("sips:bob@example.com", "sips:bob@example.com"),
            ("bob@example.com", "sip:bob@example.com"),
            ("example.com", "sip:example.com"),
            ("192.0.2.1", "sip:192.0.2.1"),
            ("192.0.2.1:5060", "sip:192.0.2.1:5060"),
            ("[2001:db8::1]:5060", "sip:[2001:db8::1]:5060"),
            ("+1 (555) 123-4567", "+15551234567"),
            ("tel:+1-555-123-4567;ext=12", "+15551234567"),
            ("*67#", "*67#"),
            ("1000", "1000"),
            ("bob", "bob"),
        ];
        for (text, expected) in sip_cases {
            assert_eq!(sip(text).address, expected, "{text}");
            assert_eq!(
                sip(expected).address,
                expected,
                "{expected} is already in its usual form"
            );
        }
        for bad in [
            "",
            "bob smith",
            "sip:",
            "sip:bob@",
            "tel:",
            "tel:abc",
            "http://x",
            "a@b@c",
        ] {
            assert!(Address::new(bad, Protocol::Sip).is_err(), "{bad:?}");
        }
        for good in [
            "192.0.2.1:5000",
            "[::1]:5000",
            "lab.example.net:5000",
            "localhost:1",
        ] {
            assert_eq!(Address::new(good, Protocol::TcpPcm).unwrap().address, good);
        }
        for bad in [
            "192.0.2.1",
            "sip:a@b:5000",
            "host:0",
            "host:65536",
            "a b:5",
            ":5000",
        ] {
            assert!(Address::new(bad, Protocol::Rtp).is_err(), "{bad:?}");
        }
    }

    fn found(book: &Book, query: &str) -> String {
        match resolve(book, query) {
            Resolution::Found(c) => c.name,
            other => panic!("{query}: {other:?}"),
        }
    }

    fn ambiguous(book: &Book, query: &str) -> Vec<String> {
        match resolve(book, query) {
            Resolution::Ambiguous(cs) => cs.into_iter().map(|c| c.name).collect(),
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn resolve_by_name_prefix_typo_and_speed_dial() {
        let mut people = vec![
            contact("Bob Smith", &["sip:bob@example.com"]),
            contact("Bobby Brown", &["sip:bobby@example.com"]),
            contact("Alice Liddell", &["sip:alice@example.com"]),
            contact("Alicia Keys", &["sip:alicia@example.com"]),
            contact("Zoë Ångström", &["sip:zoe@example.com"]),
            contact("Bo", &["sip:bo@example.com"]),
        ];
        people[2].speed_dial = Some(7);
        let book = book(people);
        // Exact, in any case; even when it is also a prefix of others.
        assert_eq!(found(&book, "bob smith"), "Bob Smith");
        assert_eq!(found(&book, "  BO "), "Bo");
        // A unique prefix, of the name or a word of it.
        assert_eq!(found(&book, "bobb"), "Bobby Brown");
        assert_eq!(found(&book, "lid"), "Alice Liddell");
        assert_eq!(found(&book, "zoë å"), "Zoë Ångström");
        // A whole word beats a longer word it begins.
        assert_eq!(found(&book, "bob"), "Bob Smith");
        assert_eq!(ambiguous(&book, "ali"), ["Alice Liddell", "Alicia Keys"]);
        // A typo, then letters in order.
        assert_eq!(found(&book, "smiht"), "Bob Smith");
        assert_eq!(found(&book, "alcie liddel"), "Alice Liddell");
        assert_eq!(found(&book, "keyz"), "Alicia Keys");
        assert_eq!(found(&book, "zngstr"), "Zoë Ångström");
        assert_eq!(found(&book, "bbrwn"), "Bobby Brown");
        assert_eq!(resolve(&book, "bbrwn smth"), Resolution::NotFound);
    }

    #[test]
    fn resolve_misses_and_speed_dials() {
        let mut people = vec![
            contact("Bob Smith", &["sip:bob@example.com"]),
            contact("Rob Smith", &["sip:rob@example.com"]),
            contact("Carol", &["sip:carol@example.com"]),
        ];
        people[2].speed_dial = Some(7);
        let book = book(people);
        assert_eq!(found(&book, "7"), "Carol");
        assert_eq!(found(&book, "07"), "Carol");
        assert_eq!(resolve(&book, "8"), Resolution::NotFound);
        assert_eq!(resolve(&book, "100"), Resolution::NotFound);
        assert_eq!(resolve(&book, ""), Resolution::NotFound);
        assert_eq!(resolve(&book, "xavier"), Resolution::NotFound);
        assert_eq!(resolve(&book, "q"), Resolution::NotFound);
        assert_eq!(ambiguous(&book, "smith"), ["Bob Smith", "Rob Smith"]);
        assert_eq!(ambiguous(&book, "xob smith"), ["Bob Smith", "Rob Smith"]);
        assert_eq!(resolve(&Book::default(), "bob"), Resolution::NotFound);
    }

    #[test]
    fn callers_by_address() {
        let mut people = vec![
            contact("Bob", &["sip:bob@Example.COM:5070;transport=tcp"]),
            contact("Carol", &["+1 555 123 4567"]),
            contact("Dave", &["dave"]),
            contact("Pbx", &["sip:192.0.2.9"]),
        ];
        people[0]
            .addresses
            .push(Address::new("192.0.2.1:5000", Protocol::TcpPcm).unwrap());
        people[1]
            .addresses
            .push(sip("sip:carol%40home@example.net"));
        let book = book(people);
        let name = |address: &str| name_for(&book, address);
        assert_eq!(name("sip:bob@example.com").as_deref(), Some("Bob"));
        assert_eq!(
            name("sips:bob@example.com.:5061;user=phone").as_deref(),
            Some("Bob")
        );
        assert_eq!(
            name("\"Robert\" <sip:bob@example.com>;tag=1").as_deref(),
            Some("Bob")
        );
        assert_eq!(name("bob@example.com").as_deref(), Some("Bob"));
        assert_eq!(
            name("sip:Bob@example.com"),
            None,
            "the user part is case-sensitive"
        );
        assert_eq!(name("sip:bob@example.org"), None);
        assert_eq!(
            name("sip:+15551234567@provider.example").as_deref(),
            Some("Carol")
        );
        assert_eq!(name("tel:+1-555-123-4567").as_deref(), Some("Carol"));
        assert_eq!(name("sip:15551234567@192.0.2.50").as_deref(), Some("Carol"));
        assert_eq!(name("sip:carol@home@example.net"), None);
        assert_eq!(
            name("<sip:carol%40home@EXAMPLE.net>").as_deref(),
            Some("Carol")
        );
        assert_eq!(name("sip:dave@pbx.example").as_deref(), Some("Dave"));
        assert_eq!(name("192.0.2.1:40312").as_deref(), Some("Bob"));
        assert_eq!(name("192.0.2.9:5060").as_deref(), Some("Pbx"));
        assert_eq!(name("sip:192.0.2.9").as_deref(), Some("Pbx"));
        assert_eq!(name("192.0.2.2:40312"), None);
        assert_eq!(name("not an address"), None);
        assert_eq!(name(""), None);
    }

    /// A phone's vCard 3 export: TEL with types and bare types, an
    /// Apple-style grouped X-SIP, a name only in N, LF line ends.
    const PHONE_EXPORT: &str = "BEGIN:VCARD\nVERSION:3.0\nN:Doe;John;;;\nFN:John Doe\n\
        TEL;TYPE=CELL:+1 555 123 4567\nTEL;TYPE=WORK,VOICE:(555) 987-6543\n\
        TEL;HOME:555.000.1111\nTEL:1-800-FLOWERS\nitem1.X-SIP:john@example.com\n\
        item1.X-ABLabel:SIP\nEMAIL:john@example.com\nEND:VCARD\n\
        BEGIN:VCARD\nVERSION:3.0\nN:Public;John;Quinlan;Mr.;Esq.\n\
        IMPP;X-SERVICE-TYPE=SIP:sip:jqp@example.org\nIMPP:xmpp:jqp@example.org\nEND:VCARD\n\
        BEGIN:VCARD\nVERSION:4.0\nFN:No Address\nEMAIL:x@example.com\nEND:VCARD\n\
        BEGIN:VCARD\nVERSION:4.0\nTEL:+1 555 0100\nEND:VCARD\n\
        BEGIN:VCARD\nVERSION:4.0\nFN:Broken\nTEL;TYPE=\"cell:+1 555 0101\nEND:VCARD\n\
        BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Simon Perreault\r\n\
        TEL;VALUE=uri;TYPE=\"work,voice\";PREF=1:tel:+1-418-656-9254;ext=102\r\n\
        URL;TYPE=work:sip:simon@viagenie.ca\r\nURL:http://nomis80.org\r\n\
        X-IPPHONE-SPEED-DIAL:5\r\nX-IPPHONE-SCREEN:voicemail\r\nEND:VCARD\r\n";

    #[test]
    fn imports_phone_exports() {
        let mut book = Book::default();
        let report = book.import_vcards(PHONE_EXPORT.as_bytes());
        assert_eq!((report.added, report.updated, report.unchanged), (3, 0, 0));
        assert_eq!(
            report.skipped,
            [
                "card at line 19: No Address: no SIP address or telephone number",
                "card at line 24: no name (FN, N or ORG)",
                "card at line 28: line 31: malformed parameter",
            ]
        );
        assert_eq!(report.notes, ["John Doe: left out TEL 1-800-FLOWERS"]);
        assert_eq!(
            book.contacts[0],
            contact(
                "John Doe",
                &[
                    "+15551234567",
                    "5559876543",
                    "5550001111",
                    "sip:john@example.com"
                ]
            )
        );
        assert_eq!(
            book.contacts[1],
            contact("Mr. John Quinlan Public Esq.", &["sip:jqp@example.org"])
        );
        let simon = &book.contacts[2];
        assert_eq!(
            simon.addresses,
            [sip("+14186569254"), sip("sip:simon@viagenie.ca")]
        );
        assert_eq!(
            (simon.speed_dial, simon.screen),
            (Some(5), Some(Screen::Voicemail))
        );

        // Again: nothing new. Then a card that adds to an existing contact,
        // with a speed dial already taken.
        let again = book.import_vcards(PHONE_EXPORT.as_bytes());
        assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 3));
        let more = book.import_vcards(
            b"BEGIN:VCARD\r\nFN:john doe\r\nIMPP:sip:jd@example.net\r\n\
              X-IPPHONE-SPEED-DIAL:5\r\nEND:VCARD\r\nnot a card\r\n",
        );
        assert_eq!((more.added, more.updated), (0, 1));
        assert_eq!(
            more.skipped,
            ["line 6: text outside BEGIN:VCARD ... END:VCARD"]
        );
        assert_eq!(
            more.notes,
            ["john doe: speed dial 5 is Simon Perreault's already; left out"]
        );
        assert_eq!(book.contacts[0].addresses[4], sip("sip:jd@example.net"));
        assert_eq!(book.contacts[0].speed_dial, None);
    }

    #[test]
    fn export_then_import_gives_the_same_book() {
        for original in [example(), book_with_odd_names(), Book::default()] {
            let text = original.to_vcards();
            assert!(
                text.split("\r\n")
                    .all(|l| l.len() <= vcard::MAX_LINE_OCTETS)
            );
            let mut again = Book::default();
            let report = again.import_vcards(text.as_bytes());
            assert!(
                report.skipped.is_empty() && report.notes.is_empty(),
                "{report:?}"
            );
            assert_eq!(again, original, "{text}");
        }
        let text = example().to_vcards();
        assert!(text.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{text}");
        assert!(text.contains("\r\nFN:Bob Smith\r\nIMPP:sip:bob@example.com\r\nTEL;VALUE=uri:tel:+15551234567\r\nX-IPPHONE-ADDRESS;X-PROTOCOL=tcp-pcm:192.0.2.1:5000\r\nX-IPPHONE-SPEED-DIAL:2\r\nX-IPPHONE-SCREEN:allow\r\nEND:VCARD\r\n"), "{text}");
    }

    #[test]
    fn the_default_path() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            default_path_from(os("/x"), os("/home/u")),
            Some(PathBuf::from("/x/ipphone/contacts.toml"))
        );
        assert_eq!(
            default_path_from(os(""), os("/home/u")),
            Some(PathBuf::from("/home/u/.config/ipphone/contacts.toml"))
        );
        assert_eq!(default_path_from(None, None), None);
    }

    #[test]
    fn commands_on_a_file() {
        let dir = Scratch::new("commands");
        let path = dir.join("new/dir/contacts.toml");
        let (_, err) = ok(&path, &["list"]);
        assert!(err.starts_with("no contacts in "), "{err}");
        assert!(!path.exists(), "listing writes nothing");

        let (_, err) = ok(
            &path,
            &["add", "Bob Smith", "bob@example.com", "--speed-dial", "2"],
        );
        assert_eq!(err, "added Bob Smith: sip:bob@example.com\n");
        ok(
            &path,
            &[
                "add",
                "bob smith",
                "192.0.2.1:5000",
                "--protocol",
                "tcp-pcm",
                "--screen",
                "allow",
            ],
        );
        let (_, err) = ok(&path, &["add", "Bob Smith", "sip:bob@example.com"]);
        assert_eq!(err, "Bob Smith has sip:bob@example.com already\n");
        ok(&path, &["add", "Alice", "+1 555 0100"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }

        let (out, _) = ok(&path, &["list"]);
        assert_eq!(
            out,
            "NAME       DIAL  SCREEN     ADDRESS\n\
             Alice                       +15550100\n\
             Bob Smith     2  allow      sip:bob@example.com\n\
             \x20                           192.0.2.1:5000 (tcp-pcm)\n"
        );
        let (out, _) = ok(&path, &["list", "--json"]);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[1],
            serde_json::json!({
                "name": "Bob Smith",
                "addresses": [
                    {"address": "sip:bob@example.com", "protocol": "sip"},
                    {"address": "192.0.2.1:5000", "protocol": "tcp-pcm"},
                ],
                "speed_dial": 2,
                "screen": "allow",
            })
        );
        assert_eq!(lines[0]["speed_dial"], serde_json::Value::Null);

        // Failures and bad usage change nothing.
        let before = fs::read(&path).unwrap();
        let (code, _, err) = run_args(&path, &["add", "Carol", "not an address"]);
        assert_eq!(code, Ok(exit::USAGE));
        assert!(
            err.starts_with("ipphone: not an address is not a SIP address"),
            "{err}"
        );
        let (code, _, _) = run_args(
            &path,
            &["add", "Carol", "c@example.com", "--speed-dial", "2"],
        );
        assert!(
            code.unwrap_err()
                .starts_with("speed dial 2 is Bob Smith's already")
        );
        let (code, _, _) = run_args(&path, &["edit", "Bob Smith"]);
        assert_eq!(code, Ok(exit::USAGE));
        let (code, _, _) = run_args(&path, &["edit", "bob smiht", "--screen", "block"]);
        assert_eq!(
            code.unwrap_err(),
            "no contact called bob smiht; did you mean Bob Smith?"
        );
        let (code, _, _) = run_args(&path, &["edit", "Alice", "--remove-address", "+15550100"]);
        assert!(
            code.unwrap_err()
                .starts_with("that would leave Alice with no address")
        );
        let (code, _, _) = run_args(&path, &["edit", "Alice", "--name", "BOB SMITH"]);
        assert_eq!(
            code.unwrap_err(),
            "there is a contact called BOB SMITH already"
        );
        let (code, _, _) = run_args(&path, &["remove", "Nobody"]);
        assert!(code.is_err());
        assert_eq!(fs::read(&path).unwrap(), before);

        let (_, err) = ok(
            &path,
            &[
                "edit",
                "alice",
                "--name",
                "Alice Liddell",
                "--add-address",
                "alice@example.org",
                "--remove-address",
                "+1 555 0100",
                "--speed-dial",
                "3",
                "--screen",
                "voicemail",
            ],
        );
        assert_eq!(err, "changed Alice Liddell\n");
        ok(
            &path,
            &[
                "edit",
                "Bob Smith",
                "--speed-dial",
                "none",
                "--screen",
                "none",
            ],
        );
        ok(
            &path,
            &["edit", "Bob Smith", "--remove-address", "192.0.2.1:5000"],
        );
        let book = Book::load(&path).unwrap();
        assert_eq!(
            book.contacts,
            [
                contact("Bob Smith", &["sip:bob@example.com"]),
                Contact {
                    speed_dial: Some(3),
                    screen: Some(Screen::Voicemail),
                    ..contact("Alice Liddell", &["sip:alice@example.org"])
                },
            ]
        );
        let (_, err) = ok(&path, &["remove", "BOB SMITH"]);
        assert_eq!(err, "removed Bob Smith\n");
        assert_eq!(Book::load(&path).unwrap().contacts.len(), 1);
        assert!(!dir.join("new/dir/contacts.toml.part").exists());
    }

    #[test]
    fn a_file_that_does_not_parse_is_left_untouched() {
        let dir = Scratch::new("untouched");
        let path = dir.join("contacts.toml");
        let broken =
            "[[contact]]\nname = \"Bob\"\naddresses = [\"sip:bob@example.com\",\n# my notes\n";
        fs::write(&path, broken).unwrap();
        for args in [
            &["add", "Carol", "carol@example.com"][..],
            &["remove", "Bob"],
            &["edit", "Bob", "--screen", "block"],
            &["list"],
            &["export"],
        ] {
            let (code, out, _) = run_args(&path, args);
            let e = code.unwrap_err();
            assert!(
                e.contains(
                    "contacts.toml (fix it by hand; ipphone leaves it as it is): line 3, column 36: unclosed array"
                ),
                "{e}"
            );
            assert!(out.is_empty());
        }
        let vcf = dir.join("in.vcf");
        fs::write(&vcf, "BEGIN:VCARD\nFN:Carol\nTEL:1234\nEND:VCARD\n").unwrap();
        assert!(
            run_args(&path, &["import", vcf.to_str().unwrap()])
                .0
                .is_err()
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);
        assert!(!dir.join("contacts.toml.part").exists());
    }

    #[test]
    fn large_files_are_refused() {
        let dir = Scratch::new("large");
        let path = dir.join("contacts.toml");
        let big = format!("# {}\n", "x".repeat(MAX_FILE_BYTES as usize));
        fs::write(&path, &big).unwrap();
        let (code, _, _) = run_args(&path, &["add", "A", "a@example.com"]);
        assert!(code.unwrap_err().ends_with("longer than 4 MiB"));
        assert_eq!(fs::metadata(&path).unwrap().len(), big.len() as u64);
        let vcf = dir.join("big.vcf");
        fs::write(&vcf, &big).unwrap();
        let (code, _, _) = run_args(&dir.join("other.toml"), &["import", vcf.to_str().unwrap()]);
        assert!(code.unwrap_err().ends_with("longer than 4 MiB"));
        assert!(!dir.join("other.toml").exists());
    }

    #[test]
    fn saving_replaces_the_file_by_rename() {
        let dir = Scratch::new("rename");
        let path = dir.join("contacts.toml");
        let old = example();
        old.save(&path).unwrap();
        // A second name for the old file keeps the old contents: the new
        // ones went to another file, renamed over this name, never into the
        // old file in place.
        let second = dir.join("second-name");
        fs::hard_link(&path, &second).unwrap();
        let mut new = old.clone();
        new.contacts.remove(0);
        new.save(&path).unwrap();
        assert_eq!(Book::load(&second).unwrap(), old);
        assert_eq!(Book::load(&path).unwrap(), new);
        assert!(!dir.join("contacts.toml.part").exists());

        // When the new file cannot be written, the old one stays whole.
        fs::create_dir(dir.join("contacts.toml.part")).unwrap();
        let e = old.save(&path).unwrap_err();
        assert!(format!("{e:#}").contains("(it is left as it was)"), "{e:#}");
        assert_eq!(Book::load(&path).unwrap(), new);
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_stays_one() {
        let dir = Scratch::new("symlink");
        let real = dir.join("dotfiles/contacts.toml");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        example().save(&real).unwrap();
        let link = dir.join("contacts.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        ok(&link, &["remove", "Alice"]);
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(Book::load(&real).unwrap().contacts.len(), 2);
        assert!(!dir.join("dotfiles/contacts.toml.part").exists());
    }

    #[test]
    fn import_and_export_commands() {
        let dir = Scratch::new("vcf");
        let path = dir.join("contacts.toml");
        let vcf = dir.join("phone.vcf");
        fs::write(&vcf, PHONE_EXPORT).unwrap();
        let (_, err) = ok(&path, &["import", vcf.to_str().unwrap()]);
        assert!(
            err.starts_with(&format!(
                "imported 3 cards from {} (3 new, 0 updated, 0 already known), skipped 3\n  \
                 skipped: card at line 19: No Address: no SIP address or telephone number\n",
                vcf.display()
            )),
            "{err}"
        );
        let (stdout, _) = ok(&path, &["export"]);
        let out = dir.join("out.vcf");
        let (nothing, err) = ok(&path, &["export", "--out", out.to_str().unwrap()]);
        assert!(nothing.is_empty());
        assert_eq!(err, format!("exported 3 contacts to {}\n", out.display()));
        assert_eq!(fs::read_to_string(&out).unwrap(), stdout);

        let copy = dir.join("copy.toml");
        ok(&copy, &["import", out.to_str().unwrap()]);
        assert_eq!(Book::load(&copy).unwrap(), Book::load(&path).unwrap());

        let junk = dir.join("junk.vcf");
        fs::write(&junk, "name,number\nBob,123\n").unwrap();
        let (code, _, err) = run_args(&copy, &["import", junk.to_str().unwrap()]);
        assert_eq!(code, Ok(exit::FAILURE));
        assert!(
            err.contains("skipped: line 1: text outside BEGIN:VCARD"),
            "{err}"
        );
        let (code, _, _) = run_args(
            &copy,
            &["import", dir.join("missing.vcf").to_str().unwrap()],
        );
        assert!(code.unwrap_err().starts_with("cannot read"));
    }
}
