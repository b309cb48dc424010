//! The call history: one JSON object per call, a line each, appended to
//! `$XDG_STATE_HOME/ipphone/history.jsonl` (else
//! `~/.local/state/ipphone/history.jsonl`), and `ipphone history` to read it.
//!
//! The record of a call is built from the very events the phone reports
//! ([`CallLog::observe`]): whoever dialled or rang, whether it connected,
//! the SIP status that ended it, and the hang-up with its duration and RTP
//! figures. So every way a call ends (a signal included, since the phone
//! hangs up and reports before it exits) leaves a record. Each record is
//! written with a single `write` to a file opened for appending, so
//! concurrent phones never interleave lines, and a reader skips a line a
//! crash cut short.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::events::{Event, HangupReason};

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the call started: dialled or rang (Unix seconds).
    pub time: f64,
    /// `in` or `out`.
    pub direction: String,
    /// The far end: the address dialled, or the caller's.
    pub peer: String,
    pub protocol: String,
    /// `answered`, `missed`, `busy`, `declined`, `unanswered`, `refused`,
    /// `cancelled`, `failed` or `blocked`.
    pub outcome: String,
    /// Seconds of conversation (0 when it never connected).
    pub seconds: f64,
    /// The SIP status that ended it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The RTP figures of the call, if it had media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<serde_json::Value>,
}

/// Where the history lives.
pub fn default_path() -> Option<PathBuf> {
    Some(crate::xdg::dir(crate::xdg::Base::State)?.join("history.jsonl"))
}

/// Appends `record` to the file at `path` (creating it and its directory).
pub fn append(path: &Path, record: &Record) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    // One write: an appending writer's line lands whole, after the others'.
    file.write_all(&line)?;
    file.sync_data()
}

/// Every record in the file, oldest first; lines that do not parse (one a
/// crash cut short) are skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// Builds records from a phone's events and writes each when its call ends.
#[derive(Debug, Default)]
pub struct CallLog {
    path: Option<PathBuf>,
    current: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    time: f64,
    direction: &'static str,
    peer: String,
    protocol: String,
    connected: bool,
    status: Option<u16>,
}

impl CallLog {
    pub fn new(path: Option<PathBuf>) -> Self {
        CallLog {
            path,
            current: None,
        }
    }

    /// Takes one event the phone reported.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Dialing { target, protocol } => {
                self.current = Some(Pending {
                    time: now(),
                    direction: "out",
                    peer: target.clone(),
                    protocol: (*protocol).to_owned(),
                    connected: false,
                    status: None,
                });
            }
            Event::Incoming { peer, from, .. } => {
                self.current = Some(Pending {
                    time: now(),
                    direction: "in",
                    peer: from.clone().unwrap_or_else(|| peer.clone()),
                    protocol: String::new(),
                    connected: false,
                    status: None,
                });
            }
            Event::Connected { protocol, .. } => {
                if let Some(p) = &mut self.current {
                    p.connected = true;
                    p.protocol = (*protocol).to_owned();
                }
            }
            Event::Ended { status, .. } => {
                if let Some(p) = &mut self.current
                    && !p.connected
                {
                    p.status = Some(*status);
                }
            }
            Event::Refused { peer, reason } => {
                // A caller turned away during a call: a call of its own.
                self.write(Record {
                    time: now(),
                    direction: "in".into(),
                    peer: peer.clone(),
                    protocol: String::new(),
                    outcome: if *reason == "busy" { "busy" } else { "blocked" }.into(),
                    seconds: 0.0,
                    status: None,
                    detail: Some((*reason).to_owned()),
                    quality: None,
                });
            }
            Event::Hangup {
                reason,
                detail,
                seconds,
                rtp,
                ..
            } => {
                let Some(p) = self.current.take() else {
                    return;
                };
                let outcome = if p.connected {
                    "answered"
                } else {
                    match (p.direction, reason) {
                        (_, HangupReason::Busy) => "busy",
                        (_, HangupReason::Declined) => "declined",
                        (_, HangupReason::Refused) => "refused",
                        ("in", HangupReason::Remote | HangupReason::Unanswered) => "missed",
                        (_, HangupReason::Unanswered) => "unanswered",
                        ("out", HangupReason::Local | HangupReason::Duration) => "cancelled",
                        _ => "failed",
                    }
                };
                self.write(Record {
                    time: p.time,
                    direction: p.direction.into(),
                    peer: p.peer,
                    protocol: p.protocol,
                    outcome: outcome.into(),
                    seconds: if p.connected { *seconds } else { 0.0 },
                    status: p.status,
                    detail: detail.clone(),
                    quality: rtp.and_then(|r| serde_json::to_value(r).ok()),
                });
            }
            _ => {}
        }
    }

    fn write(&self, record: Record) {
        if let Some(path) = &self.path
            && let Err(e) = append(path, &record)
        {
            eprintln!(
                "ipphone: cannot write the call history to {}: {e}",
                path.display()
            );
        }
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// `ipphone history`: the calls, newest last, as lines or JSON.
pub fn show(path: Option<&Path>, json: bool, limit: Option<usize>) -> anyhow::Result<u8> {
    let path = match path.map(Path::to_owned).or_else(default_path) {
        Some(p) => p,
        None => anyhow::bail!("no history file: set HOME or XDG_STATE_HOME"),
    };
    let records = read(&path)?;
    let skip = limit.map_or(0, |n| records.len().saturating_sub(n));
    let mut out = std::io::stdout().lock();
    for r in records.iter().skip(skip) {
        if json {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        } else {
            let arrow = if r.direction == "in" { "<-" } else { "->" };
            let when = humantime(r.time);
            let length = if r.seconds > 0.0 {
                format!(" {:.0} s", r.seconds)
            } else {
                String::new()
            };
            writeln!(out, "{when}  {arrow} {}  {}{length}", r.peer, r.outcome)?;
        }
    }
    Ok(crate::cli::exit::OK)
}

/// `YYYY-MM-DD HH:MM` in UTC, from Unix seconds.
fn humantime(secs: f64) -> String {
    let secs = secs.max(0.0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3_600,
        rem % 3_600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Traffic;

    fn hangup(reason: HangupReason) -> Event {
        Event::Hangup {
            reason,
            detail: None,
            seconds: 3.2,
            traffic: Traffic::default(),
            rtp: None,
        }
    }

    #[test]
    fn events_become_records() {
        let dir = std::env::temp_dir().join(format!("ipphone-history-{}", std::process::id()));
        let path = dir.join("history.jsonl");
        let _ = std::fs::remove_dir_all(&dir);
        let mut log = CallLog::new(Some(path.clone()));
        log.observe(&Event::Dialing {
            target: "sip:bob@example.com".into(),
            protocol: "sip",
        });
        log.observe(&Event::Connected {
            peer: "bob@example.com".into(),
            protocol: "sip",
            role: "caller",
        });
        log.observe(&hangup(HangupReason::Duration));
        log.observe(&Event::Incoming {
            peer: "192.0.2.9:5060".into(),
            from: Some("sip:carol@example.com".into()),
            name: None,
        });
        log.observe(&Event::Ended {
            status: 487,
            reason: "gave up".into(),
        });
        log.observe(&hangup(HangupReason::Remote));
        log.observe(&Event::Dialing {
            target: "dave@example.com".into(),
            protocol: "sip",
        });
        log.observe(&Event::Ended {
            status: 486,
            reason: "Busy Here".into(),
        });
        log.observe(&hangup(HangupReason::Busy));
        // A torn last line, as a crash would leave, is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"time\": 1")
            .unwrap();
        let records = read(&path).unwrap();
        let summary: Vec<(&str, &str, &str, f64, Option<u16>)> = records
            .iter()
            .map(|r| {
                (
                    r.direction.as_str(),
                    r.peer.as_str(),
                    r.outcome.as_str(),
                    r.seconds,
                    r.status,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("out", "sip:bob@example.com", "answered", 3.2, None),
                ("in", "sip:carol@example.com", "missed", 0.0, Some(487)),
                ("out", "dave@example.com", "busy", 0.0, Some(486)),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dates_print_in_utc() {
        assert_eq!(humantime(0.0), "1970-01-01 00:00");
        assert_eq!(humantime(1_795_689_859.0), "2026-11-26 10:44");
    }
}
