//! Call screening: who may ring this phone.
//!
//! - [`Guard`] sits in front of the SIP stack and drops, unanswered, what
//!   scanners send: requests from known scanner user agents, and requests
//!   beyond a per-source rate (a token bucket per IP address). Dropping
//!   rather than refusing tells a scanner nothing, and costs us nothing, so
//!   a flood does not disturb a call in progress.
//! - [`Rules`] decide what a caller that got through meets: ring, or be
//!   turned away (603 Decline, or 486 Busy Here if so configured), from
//!   patterns on the caller's user, host and IP address, with `*` and `?`
//!   wildcards, and a policy for callers who match no rule.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use serde::Deserialize;

/// User agents of the SIP scanners seen on the Internet (SIPVicious and
/// its descendants, sipcli, ...), matched case-insensitively.
const SCANNERS: [&str; 10] = [
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipsak",
    "vaxsipuseragent",
    "iwar",
    "sundayddr",
    "pplsip",
    "smap",
];

/// Requests a source may send in a burst, and per second after that.
const BURST: f64 = 20.0;
const PER_SECOND: f64 = 10.0;
/// Sources remembered at once (the oldest are forgotten first).
const MAX_SOURCES: usize = 4_096;

/// Drops scanners and floods before they reach the SIP stack.
#[derive(Debug, Default)]
pub struct Guard {
    buckets: HashMap<IpAddr, (f64, Instant)>,
    /// Requests dropped so far, by cause.
    pub dropped_scanners: u64,
    pub dropped_flood: u64,
}

impl Guard {
    /// Whether a datagram from `source` may go on to the SIP stack.
    /// Responses always may (they answer our own requests); requests are
    /// checked.
    pub fn admit(&mut self, now: Instant, source: SocketAddr, message: &[u8]) -> bool {
        if message.starts_with(b"SIP/2.0 ") || message.iter().all(u8::is_ascii_whitespace) {
            return true;
        }
        self.admit_request(now, source, user_agent(message))
    }

    /// Whether a request from `source`, with this User-Agent value, may go
    /// on to the SIP stack (for messages already framed, as on TCP).
    pub fn admit_request(
        &mut self,
        now: Instant,
        source: SocketAddr,
        user_agent: Option<&[u8]>,
    ) -> bool {
        if user_agent.is_some_and(is_scanner) {
            self.dropped_scanners += 1;
            return false;
        }
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&source.ip()) {
            // Forget the sources that have been quiet longest.
            let mut by_age: Vec<(IpAddr, Instant)> = self
                .buckets
                .iter()
                .map(|(ip, (_, at))| (*ip, *at))
                .collect();
            by_age.sort_by_key(|(_, at)| *at);
            for (ip, _) in by_age.into_iter().take(MAX_SOURCES / 4) {
                self.buckets.remove(&ip);
            }
        }
        let (tokens, last) = self.buckets.entry(source.ip()).or_insert((BURST, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * PER_SECOND;
        *tokens = (*tokens + refill).min(BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            self.dropped_flood += 1;
            false
        }
    }
}

/// The value of the first User-Agent header line in a raw message's first
/// 4 KiB, without copying.
fn user_agent(message: &[u8]) -> Option<&[u8]> {
    const NAME: &[u8] = b"user-agent:";
    message[..message.len().min(4_096)]
        .split(|&b| b == b'\n')
        .find(|line| line.len() >= NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME))
        .map(|line| &line[NAME.len()..])
}

/// Whether a User-Agent value names a known scanner (case-insensitive).
fn is_scanner(value: &[u8]) -> bool {
    SCANNERS.iter().any(|s| {
        value
            .windows(s.len())
            .any(|w| w.eq_ignore_ascii_case(s.as_bytes()))
    })
}

/// What a caller who got through meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Ring,
    /// Turned away without ringing.
    Reject,
    /// Straight to the answering machine, without ringing.
    Voicemail,
}

/// The `[screening]` section of the configuration file:
///
/// ```toml
/// [screening]
/// unknown = "ring"          # what callers matching no rule meet: ring | reject | voicemail
/// reject_status = 603       # or 486, to look busy
/// [[screening.rule]]
/// pattern = "*@spam.example.com"   # user@host, or an IP address, * and ? wildcards
/// action = "reject"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default = "ring")]
    pub unknown: Action,
    #[serde(default = "decline")]
    pub reject_status: u16,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub pattern: String,
    pub action: Action,
}

fn ring() -> Action {
    Action::Ring
}

fn decline() -> u16 {
    603
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            unknown: Action::Ring,
            reject_status: 603,
            rules: Vec::new(),
        }
    }
}

impl Rules {
    /// The first rule matching the caller (`user@host` of its From, and the
    /// IP address it sent from), else the policy for unknown callers.
    pub fn decide(&self, user_at_host: &str, ip: IpAddr) -> Action {
        let ip = ip.to_string();
        self.rules
            .iter()
            .find(|r| wildcard(&r.pattern, user_at_host) || wildcard(&r.pattern, &ip))
            .map_or(self.unknown, |r| r.action)
    }
}

/// `*` matches any run of characters, `?` one; case-insensitive.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matching with backtracking to the last star: linear space,
    // no recursion, whatever the input.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("*@spam.example.com", "bob@SPAM.example.com"));
        assert!(wildcard("192.0.2.*", "192.0.2.77"));
        assert!(wildcard("b?b@*", "bob@host"));
        assert!(!wildcard("*@spam.example.com", "bob@example.com"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b*c", "aXbY"));
        assert!(wildcard("a*b*c", "aXbYc"));
    }

    #[test]
    fn rules_in_order_then_the_policy() {
        let rules = Rules {
            unknown: Action::Reject,
            reject_status: 486,
            rules: vec![
                Rule {
                    pattern: "alice@*".into(),
                    action: Action::Ring,
                },
                Rule {
                    pattern: "127.0.0.*".into(),
                    action: Action::Reject,
                },
            ],
        };
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(rules.decide("alice@example.com", local), Action::Ring);
        assert_eq!(rules.decide("bob@example.com", local), Action::Reject);
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(rules.decide("bob@example.com", other), Action::Reject);
    }

    #[test]
    fn scanners_and_floods_are_dropped() {
        let mut guard = Guard::default();
        let now = Instant::now();
        let source: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let scan = b"OPTIONS sip:100@192.0.2.2 SIP/2.0\r\nUser-Agent: friendly-scanner\r\n\r\n";
        assert!(!guard.admit(now, source, scan));
        let shouting = b"INVITE sip:1@192.0.2.2 SIP/2.0\r\nUSER-AGENT: SIPVicious 0.3\r\n\r\n";
        assert!(!guard.admit(now, source, shouting));
        assert!(!guard.admit_request(now, source, Some(b"sipcli/v1.8")));
        let invite = b"INVITE sip:bob@192.0.2.2 SIP/2.0\r\nUser-Agent: baresip\r\n\r\n";
        let admitted = (0..100)
            .filter(|_| guard.admit(now, source, invite))
            .count();
        assert_eq!(admitted, BURST as usize);
        // A second later, ten more; another source is not affected.
        let later = now + Duration::from_secs(1);
        let admitted = (0..100)
            .filter(|_| guard.admit(later, source, invite))
            .count();
        assert_eq!(admitted, PER_SECOND as usize);
        let other: SocketAddr = "192.0.2.9:5060".parse().unwrap();
        assert!(guard.admit(later, other, invite));
        // Responses always pass.
        assert!(guard.admit(later, source, b"SIP/2.0 200 OK\r\n\r\n"));
        assert_eq!(guard.dropped_scanners, 3);
        assert!(guard.dropped_flood >= 170);
    }
}
