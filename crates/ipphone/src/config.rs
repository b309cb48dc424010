//! The configuration file: SIP accounts, at the XDG path
//! (`$XDG_CONFIG_HOME/ipphone/config.toml`, else
//! `~/.config/ipphone/config.toml`), or wherever `--config` says.
//!
//! ```toml
//! [[account]]
//! name = "home"                  # to pick it with --account; optional
//! user = "alice"
//! domain = "example.com"         # of the address-of-record sip:alice@example.com
//! registrar = "192.0.2.10:5060"  # host[:port]; default: the domain, port 5060
//! proxy = "192.0.2.10:5060"      # where calls go; default: the registrar
//! password = "secret"            # or:
//! password_command = "pass show sip/alice"
//! transport = "udp"
//! expires = 600                  # seconds a registration lasts
//! ```
//!
//! ```toml
//! [screening]                    # who may ring (see `screen.rs`)
//! unknown = "ring"
//! [[screening.rule]]
//! pattern = "*@spam.example.com"
//! action = "reject"
//! ```
//!
//! The first account is the default. A file that does not parse is
//! reported with its line and column; ipphone never writes this file.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, rename = "account")]
    pub accounts: Vec<Account>,
    /// Who may ring (the screening rules: see the `screen` module).
    #[serde(default)]
    pub screening: crate::screen::Rules,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub name: Option<String>,
    pub user: String,
    pub domain: String,
    pub registrar: Option<String>,
    pub proxy: Option<String>,
    pub password: Option<String>,
    pub password_command: Option<String>,
    #[serde(default = "udp")]
    pub transport: String,
    #[serde(default = "default_expires")]
    pub expires: u32,
    pub display_name: Option<String>,
}

fn udp() -> String {
    "udp".into()
}

fn default_expires() -> u32 {
    600
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("registrar", &self.registrar)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads `path`, or the XDG path when `None`; a missing default file is
    /// an empty configuration, a missing named one an error.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let (path, named) = match path {
            Some(p) => (p.to_owned(), true),
            None => match default_path() {
                Some(p) => (p, false),
                None => return Ok(Config::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => {
                return Ok(Config::default());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Config::parse(&text).with_context(|| format!("{}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => crate::contacts::at(text, span.start, e.message()),
            None => anyhow::anyhow!("{}", e.message()),
        })?;
        for account in &config.accounts {
            if !account.transport.eq_ignore_ascii_case("udp") {
                bail!(
                    "account {}: transport {} is not supported yet (udp is)",
                    account.label(),
                    account.transport
                );
            }
        }
        Ok(config)
    }

    /// The account named `name`, or the first when `None`.
    pub fn account(&self, name: Option<&str>) -> anyhow::Result<Option<&Account>> {
        match name {
            None => Ok(self.accounts.first()),
            Some(name) => self
                .accounts
                .iter()
                .find(|a| a.name.as_deref() == Some(name) || a.user == name)
                .map(Some)
                .with_context(|| format!("no account named {name} in the configuration")),
        }
    }
}

impl Account {
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}@{}", self.user, self.domain))
    }

    /// Where REGISTER goes.
    pub fn registrar_addr(&self) -> anyhow::Result<SocketAddr> {
        resolve(self.registrar.as_deref().unwrap_or(&self.domain))
    }

    /// Where calls go: the proxy, else the registrar.
    pub fn proxy_addr(&self) -> anyhow::Result<SocketAddr> {
        match &self.proxy {
            Some(proxy) => resolve(proxy),
            None => self.registrar_addr(),
        }
    }

    /// The password, from the file or from running `password_command`.
    pub fn password(&self) -> anyhow::Result<Option<String>> {
        if let Some(password) = &self.password {
            return Ok(Some(password.clone()));
        }
        let Some(command) = &self.password_command else {
            return Ok(None);
        };
        let out = Command::new("sh")
            .args(["-c", command])
            .output()
            .with_context(|| format!("running the password command of {}", self.label()))?;
        if !out.status.success() {
            bail!(
                "the password command of {} failed ({})",
                self.label(),
                out.status
            );
        }
        let text = String::from_utf8(out.stdout).context("the password is not UTF-8")?;
        Ok(Some(text.lines().next().unwrap_or_default().to_owned()))
    }
}

/// `host[:port]`, port 5060 by default.
fn resolve(host: &str) -> anyhow::Result<SocketAddr> {
    let with_port = if host.parse::<SocketAddr>().is_ok() || has_port(host) {
        host.to_owned()
    } else if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:5060")
    } else {
        format!("{host}:5060")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot find {host}"))?
        .next()
        .with_context(|| format!("{host} resolves to no address"))
}

fn has_port(host: &str) -> bool {
    host.rsplit_once(':')
        .is_some_and(|(h, p)| p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')))
}

fn default_path() -> Option<PathBuf> {
    Some(crate::xdg::dir(crate::xdg::Base::Config)?.join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_with_defaults() {
        let config = Config::parse(
            "[[account]]\nuser = \"alice\"\ndomain = \"127.0.0.1\"\npassword = \"pw\"\n",
        )
        .unwrap();
        let account = config.account(None).unwrap().unwrap();
        assert_eq!(
            account.registrar_addr().unwrap(),
            "127.0.0.1:5060".parse().unwrap()
        );
        assert_eq!(
            account.proxy_addr().unwrap(),
            "127.0.0.1:5060".parse().unwrap()
        );
        assert_eq!(account.expires, 600);
        assert_eq!(account.password().unwrap().as_deref(), Some("pw"));
        assert!(!format!("{account:?}").contains("pw"));
    }

    #[test]
    fn a_password_command_is_run() {
        let config = Config::parse(
            "[[account]]\nname = \"x\"\nuser = \"a\"\ndomain = \"127.0.0.1\"\n\
             registrar = \"127.0.0.1:5070\"\npassword_command = \"echo s3cret\"\n",
        )
        .unwrap();
        let account = config.account(Some("x")).unwrap().unwrap();
        assert_eq!(account.password().unwrap().as_deref(), Some("s3cret"));
        assert_eq!(account.registrar_addr().unwrap().port(), 5070);
        assert!(config.account(Some("nobody")).is_err());
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = Config::parse("[[account]]\nuser = \"a\"\ndomain = 5\n").unwrap_err();
        assert!(e.to_string().starts_with("line 3, column 10"), "{e}");
        let e = Config::parse("[[account]]\nuser = \"a\"\ndomian = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = Config::parse("[[account]]\nuser=\"a\"\ndomain=\"b\"\ntransport=\"tls\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
    }
}
