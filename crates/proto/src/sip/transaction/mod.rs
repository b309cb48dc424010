//! SIP transactions (RFC 3261 §17, with RFC 6026's Accepted states): the
//! four state machines that retransmit over UDP, absorb retransmissions,
//! and time out, on an injected clock.
//!
//! - [`ClientTransaction`]: INVITE (Figure 5: Calling, Proceeding,
//!   Completed, Accepted, Terminated; timers A, B, D, M) and non-INVITE
//!   (Figure 6: Trying, Proceeding, Completed, Terminated; timers E, F, K).
//! - [`ServerTransaction`]: INVITE (Figure 7: Proceeding, Completed,
//!   Confirmed, Accepted, Terminated; timers G, H, I, L) and non-INVITE
//!   (Figure 8: Trying, Proceeding, Completed, Terminated; timer J).
//! - [`Key`]: how a message finds its transaction (§17.1.3, §17.2.3).
//!
//! Each machine takes messages and the time in (`handle_*`), and gives bytes
//! to send (`poll_transmit`), what the transaction user must know
//! (`poll_event`) and when to call again (`poll_timeout`). Where the bytes go
//! is the caller's business: the client's destination, or the address the
//! request came from (RFC 3581).

mod client;
mod server;
mod timer;

pub use client::{ClientEvent, ClientState, ClientTransaction};
pub use server::{ServerEvent, ServerState, ServerTransaction};
pub use timer::{Timer, Timers};

use crate::sip::message::{Method, Request, Response};

/// Identifies a transaction: the top Via's branch (RFC 3261 §17.1.3 and
/// §17.2.3), its sent-by, and the method, with ACK matching the INVITE it
/// acknowledges. A request from an RFC 2543 element, whose branch lacks the
/// magic cookie (or which has none), is keyed by what §17.2.3 matches it
/// on instead: Call-ID, From tag, CSeq number and the top Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub branch: String,
    /// `host[:port]` of the top Via, as written (lowercased).
    pub sent_by: String,
    /// The request's method; ACK is folded into INVITE, so that an ACK
    /// for a non-2xx response finds the INVITE server transaction.
    pub method: Method,
}

impl Key {
    /// The key of a request: of the server transaction it creates or
    /// belongs to.
    pub fn for_request(request: &Request) -> Option<Key> {
        let via = request.headers.top_via().ok()?;
        let method = match &request.method {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        let branch = if via.has_rfc3261_branch() {
            via.branch.clone()?.to_ascii_lowercase()
        } else {
            // RFC 2543: no usable branch. The To tag is left out, so that
            // the ACK for a final response (which has one) finds its INVITE.
            let call_id = request.headers.call_id().ok()?;
            let from_tag = request.headers.from().ok()?.tag.unwrap_or_default();
            let cseq = request.headers.cseq().ok()?.seq;
            format!(
                "rfc2543;{};{from_tag};{cseq};{}",
                call_id.as_str(),
                via.branch.as_deref().unwrap_or("")
            )
        };
        Some(Key {
            sent_by: sent_by(&via),
            branch,
            method,
        })
    }

    /// The key of a response: of the client transaction it answers (the
    /// CSeq method tells INVITE from CANCEL sharing one branch).
    pub fn for_response(response: &Response) -> Option<Key> {
        let via = response.headers.top_via().ok()?;
        if !via.has_rfc3261_branch() {
            return None;
        }
        let method = response.headers.cseq().ok()?.method;
        Some(Key {
            sent_by: sent_by(&via),
            branch: via.branch?.to_ascii_lowercase(),
            method,
        })
    }
}

fn sent_by(via: &crate::sip::message::Via) -> String {
    let host = via.host.to_string().to_ascii_lowercase();
    match via.port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// Why a transaction refused what its user asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("a {status} response cannot be sent in state {state:?}")]
    CannotRespond { status: u16, state: ServerState },
    #[error("status {0} is not a response code (100-699)")]
    BadStatus(u16),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;

    fn request(text: &str) -> Request {
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("not a request"),
        }
    }

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:alice@example.com>;tag=1\r\n\
        To: <sip:bob@example.com>\r\n\
        Call-ID: k@192.0.2.1\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn an_ack_finds_its_invite_and_a_cancel_does_not() {
        let invite = request(INVITE);
        let ack = request(
            &INVITE
                .replace("INVITE sip", "ACK sip")
                .replace("1 INVITE", "1 ACK"),
        );
        let cancel = request(
            &INVITE
                .replace("INVITE sip", "CANCEL sip")
                .replace("1 INVITE", "1 CANCEL"),
        );
        let key = Key::for_request(&invite).unwrap();
        assert_eq!(Key::for_request(&ack), Some(key.clone()));
        assert_ne!(Key::for_request(&cancel), Some(key.clone()));
        // The branch is compared without regard to case (§17.2.3 asks for
        // exact, but every stack folds it; the cookie is case-insensitive).
        let upper = request(&INVITE.replace("z9hG4bKabc", "z9hG4bKABC"));
        assert_eq!(Key::for_request(&upper), Some(key));
    }

    #[test]
    fn an_rfc2543_request_is_keyed_by_call_id_from_tag_and_cseq() {
        let old = request(&INVITE.replace(";branch=z9hG4bKabc", ";branch=1234"));
        let key = Key::for_request(&old).unwrap();
        let ack = request(
            &INVITE
                .replace(";branch=z9hG4bKabc", ";branch=1234")
                .replace("INVITE sip", "ACK sip")
                .replace("1 INVITE", "1 ACK")
                .replace(
                    "To: <sip:bob@example.com>",
                    "To: <sip:bob@example.com>;tag=x",
                ),
        );
        assert_eq!(Key::for_request(&ack), Some(key.clone()));
        let next = request(
            &INVITE
                .replace(";branch=z9hG4bKabc", ";branch=1234")
                .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE"),
        );
        assert_ne!(Key::for_request(&next), Some(key));
    }
}
