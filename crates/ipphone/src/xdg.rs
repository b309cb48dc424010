//! The XDG base directories ipphone keeps its files in: configuration
//! (`config.toml`, `contacts.toml`), state (the call history) and data (the
//! answering machine's messages), each under an `ipphone` directory.

use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy)]
pub enum Base {
    /// `$XDG_CONFIG_HOME`, else `~/.config`.
    Config,
    /// `$XDG_STATE_HOME`, else `~/.local/state`.
    State,
    /// `$XDG_DATA_HOME`, else `~/.local/share`.
    Data,
}

impl Base {
    fn variable(self) -> &'static str {
        match self {
            Base::Config => "XDG_CONFIG_HOME",
            Base::State => "XDG_STATE_HOME",
            Base::Data => "XDG_DATA_HOME",
        }
    }

    fn under_home(self) -> &'static str {
        match self {
            Base::Config => ".config",
            Base::State => ".local/state",
            Base::Data => ".local/share",
        }
    }
}

/// ipphone's directory of `base`, from the environment; `None` with
/// neither the XDG variable nor `HOME` set.
pub fn dir(base: Base) -> Option<PathBuf> {
    dir_from(
        base,
        std::env::var_os(base.variable()),
        std::env::var_os("HOME"),
    )
}

/// ipphone's directory of `base`, given the XDG variable's and `HOME`'s
/// values (empty ones count as unset).
pub fn dir_from(base: Base, xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let root = xdg
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            home.filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(base.under_home()))
        })?;
    Some(root.join("ipphone"))
}
