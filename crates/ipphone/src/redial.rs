//! Auto-dial: calling again after busy or no answer (`call --redial N
//! --every SECS`), calling the last number again (`ipphone redial`), and
//! calling at a given time (`call --at TIME`).

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;

use crate::cli::{Cli, exit};
use crate::phone::Interrupt;

/// Why a call is tried again, in words.
pub fn reason(code: u8) -> &'static str {
    match code {
        exit::BUSY => "busy",
        exit::REFUSED => "refused",
        _ => "no answer",
    }
}

/// Sleeps for `wait` unless interrupted; false when interrupted.
pub fn sleep(wait: Duration, interrupt: &Interrupt) -> bool {
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        if interrupt.take() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// How long until `at`: `+90`, `+90s`, `+5m`, `+1h` from now, or a time of
/// day `HH:MM[:SS]` in the local time zone (the next one to come).
pub fn until(at: &str) -> Result<Duration, String> {
    if let Some(relative) = at.strip_prefix('+') {
        let (number, unit) = match relative.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => relative.split_at(i),
            None => (relative, "s"),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| "not a number of seconds".to_owned())?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            _ => return Err(format!("unknown unit {unit}: use s, m or h")),
        };
        return Ok(Duration::from_secs(n.saturating_mul(scale)));
    }
    let parts: Vec<&str> = at.split(':').collect();
    let valid = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_digit()));
    if !valid {
        return Err("give HH:MM, HH:MM:SS, or +SECONDS".into());
    }
    // The local time zone is the system's: ask date(1) for today's instant.
    let out = Command::new("date")
        .args(["-d", at, "+%s"])
        .output()
        .map_err(|e| format!("cannot run date: {e}"))?;
    let target: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("{at} is not a time of day"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Passed already today: tomorrow.
    let target = if target <= now {
        target + 86_400
    } else {
        target
    };
    Ok(Duration::from_secs(target - now))
}

/// `ipphone redial [CALL OPTIONS]`: calls the last address dialled, with
/// its protocol, and any `call` options given.
pub fn run(rest: &[String], interrupt: &Interrupt) -> anyhow::Result<u8> {
    let path = crate::history::default_path();
    let last = path
        .as_deref()
        .map(crate::history::read)
        .transpose()?
        .unwrap_or_default()
        .into_iter()
        .rev()
        .find(|r| r.direction == "out");
    let Some(last) = last else {
        eprintln!("ipphone: nothing to redial: no call was made yet");
        return Ok(exit::FAILURE);
    };
    let mut argv = vec!["ipphone".to_owned(), "call".to_owned(), last.peer.clone()];
    if !last.protocol.is_empty() && !rest.iter().any(|a| a == "--protocol") {
        argv.push("--protocol".into());
        argv.push(last.protocol.clone());
    }
    argv.extend(rest.iter().cloned());
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Ok(exit::USAGE);
        }
    };
    match cli.command {
        crate::cli::Command::Call(args) => crate::phone::call(args, interrupt),
        _ => unreachable!("parsed as a call"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_clock_times() {
        assert_eq!(until("+90"), Ok(Duration::from_secs(90)));
        assert_eq!(until("+5m"), Ok(Duration::from_secs(300)));
        assert_eq!(until("+1h"), Ok(Duration::from_secs(3_600)));
        assert!(until("+5d").is_err());
        assert!(until("noon").is_err());
        assert!(until("25:00").is_err());
        let wait = until("12:00").unwrap();
        assert!(wait <= Duration::from_secs(86_400));
    }
}
