//! What happens during a call, told to a person (stderr) and to scripts
//! (one JSON object per line on stdout, with `--json`).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::history::CallLog;

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupReason {
    /// We hung up (Ctrl-C, SIGTERM).
    Local,
    /// `--duration` ran out.
    Duration,
    /// The far end hung up.
    Remote,
    /// The far end turned the call away: it is in another call.
    Busy,
    /// Nothing accepts calls at that address.
    Refused,
    /// The connection broke or went silent.
    Lost,
    /// Our own audio failed.
    Error,
    /// The far end turned the call down (SIP 603 Decline, 403).
    Declined,
    /// Nobody answered: no response, or 408/480 (SIP).
    Unanswered,
    /// The far end refused the call for another reason (a SIP 4xx-6xx: no
    /// common codec, not found, authentication failed...).
    Rejected,
}

impl HangupReason {
    fn describe(&self) -> &'static str {
        match self {
            HangupReason::Local => "hung up",
            HangupReason::Duration => "hung up (time limit)",
            HangupReason::Remote => "the other side hung up",
            HangupReason::Busy => "busy: the other side is in another call",
            HangupReason::Refused => "refused: nothing accepts calls there",
            HangupReason::Lost => "connection lost",
            HangupReason::Error => "call failed",
            HangupReason::Declined => "declined: the other side turned the call down",
            HangupReason::Unanswered => "no answer",
            HangupReason::Rejected => "the call was refused",
        }
    }
}

/// Traffic and audio counters of a call so far.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Traffic {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Milliseconds of silence the speaker played for lack of audio.
    pub underrun_ms: u64,
    /// Milliseconds of received audio dropped to keep the delay short.
    pub dropped_ms: u64,
}

/// One event, as scripts see it: `{"event": "<name>", "time": ..., ...}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Listening {
        addr: String,
        protocol: &'static str,
    },
    Dialing {
        target: String,
        protocol: &'static str,
    },
    Incoming {
        peer: String,
        /// The caller's address (SIP From), with any display name.
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The caller's name in the contacts.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The answering machine took the call.
    Voicemail {
        from: String,
    },
    /// A message was left.
    Message {
        from: String,
        seconds: f64,
        file: String,
    },
    /// Auto-dial: the call will be tried again.
    Redial {
        attempt: u32,
        of: u32,
        /// Why: busy, no answer, refused.
        after: &'static str,
        in_seconds: f64,
    },
    /// `call --at`: waiting to dial.
    Waiting {
        until: String,
        seconds: f64,
    },
    /// SIP: registered with the account's registrar, for `expires` seconds
    /// (renewed before it lapses).
    Registered {
        aor: String,
        expires: u32,
    },
    /// SIP: the call was put on hold (`held`) or taken off it, by `remote`
    /// or `local`.
    Hold {
        held: bool,
        by: &'static str,
    },
    /// SIP: the far end is working on our call (100 Trying, 183...).
    Trying {
        status: u16,
        reason: String,
    },
    /// SIP: the far end is ringing (180).
    Ringing {
        status: u16,
        reason: String,
    },
    /// SIP: the call was answered (2xx).
    Answered {
        status: u16,
        reason: String,
    },
    /// SIP: the call's signalling ended; `status` is the final response
    /// that ended it (486, 603...) or of the BYE.
    Ended {
        status: u16,
        reason: String,
    },
    Connected {
        peer: String,
        protocol: &'static str,
        role: &'static str,
    },
    /// A caller was turned away because a call is in progress.
    Refused {
        peer: String,
        reason: &'static str,
    },
    Stats {
        seconds: f64,
        #[serde(flatten)]
        traffic: Traffic,
        #[serde(skip_serializing_if = "Option::is_none")]
        rtp: Option<crate::rtp_call::RtpStats>,
    },
    Hangup {
        reason: HangupReason,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        seconds: f64,
        #[serde(flatten)]
        traffic: Traffic,
        #[serde(skip_serializing_if = "Option::is_none")]
        rtp: Option<crate::rtp_call::RtpStats>,
    },
    /// A DTMF digit from the far end (RFC 4733).
    Dtmf {
        digit: String,
    },
    Error {
        message: String,
    },
}

/// Writes events: a line for people on stderr, JSON on stdout if asked, and
/// each finished call to the call history.
#[derive(Debug, Clone)]
pub struct Reporter {
    json: bool,
    history: Option<Arc<Mutex<CallLog>>>,
}

impl Reporter {
    /// A reporter that keeps the call history at its usual place.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            history: Some(Arc::new(Mutex::new(CallLog::new(
                crate::history::default_path(),
            )))),
        }
    }

    /// A reporter for calls that are not the user's (the demo).
    pub fn without_history(json: bool) -> Self {
        Self {
            json,
            history: None,
        }
    }

    pub fn emit(&self, event: Event) {
        if let Some(log) = &self.history
            && let Ok(mut log) = log.lock()
        {
            log.observe(&event);
        }
        if let Some(line) = human(&event) {
            eprintln!("{line}");
        }
        if self.json {
            let time = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let mut value = serde_json::to_value(&event).expect("events serialise to JSON");
            if let Some(map) = value.as_object_mut() {
                map.insert(
                    "time".into(),
                    serde_json::json!((time * 1000.0).round() / 1000.0),
                );
            }
            let mut out = std::io::stdout().lock();
            // A closed stdout must not stop the phone: the call goes on.
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }
}

fn human(event: &Event) -> Option<String> {
    Some(match event {
        Event::Listening { addr, protocol } => format!("listening on {addr} ({protocol})"),
        Event::Dialing { target, protocol } => format!("calling {target} ({protocol})"),
        Event::Incoming {
            peer,
            from: None,
            name: None,
        } => format!("incoming call from {peer}"),
        Event::Incoming {
            peer,
            from: Some(from),
            name: None,
        } => format!("incoming call from {from} ({peer})"),
        Event::Incoming {
            name: Some(name),
            from,
            peer,
        } => format!(
            "incoming call from {name}, {}",
            from.as_deref().unwrap_or(peer)
        ),
        Event::Trying { .. } => return None,
        Event::Voicemail { from } => format!("the answering machine takes the call from {from}"),
        Event::Message {
            from,
            seconds,
            file,
        } => format!("a message from {from}, {seconds:.0} s: {file}"),
        Event::Redial {
            attempt,
            of,
            after,
            in_seconds,
        } => format!("{after}: trying again in {in_seconds:.0} s ({attempt} of {of})"),
        Event::Waiting { until, seconds } => {
            format!("waiting until {until} ({seconds:.0} s) to dial")
        }
        Event::Hold { held: true, by } => format!("on hold ({by})"),
        Event::Hold { held: false, by } => format!("off hold ({by})"),
        Event::Registered { aor, expires } => format!("registered as {aor} ({expires} s)"),
        Event::Ringing { .. } => "ringing".to_owned(),
        Event::Answered { .. } => "answered".to_owned(),
        Event::Ended { status, reason } if *status >= 300 => format!("{status} {reason}"),
        Event::Ended { .. } => return None,
        Event::Connected { peer, .. } => format!("connected to {peer}"),
        Event::Refused { peer, reason } => format!("turned away a call from {peer}: {reason}"),
        Event::Stats { .. } => return None,
        Event::Dtmf { digit } => format!("the other side pressed {digit}"),
        Event::Hangup {
            reason,
            detail,
            seconds,
            traffic,
            ..
        } => {
            let detail = detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            format!(
                "{}{detail} after {seconds:.1} s; sent {} bytes, received {} bytes",
                reason.describe(),
                traffic.bytes_sent,
                traffic.bytes_received
            )
        }
        Event::Error { message } => format!("error: {message}"),
    })
}
