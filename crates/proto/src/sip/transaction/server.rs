//! Server transactions (RFC 3261 §17.2; RFC 6026 §7.1 for Accepted).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Key, Timer, Timers, TransactionError};
use crate::sip::message::{Method, Request, Response};

/// States of Figures 7 and 8 (and RFC 6026's Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE received, no response yet.
    Trying,
    /// INVITE received, or a provisional response sent.
    Proceeding,
    /// A final response sent (non-2xx for INVITE); waiting for the ACK or
    /// absorbing retransmissions.
    Completed,
    /// INVITE: the ACK came; absorbing its retransmissions.
    Confirmed,
    /// INVITE answered with 2xx; the dialog layer retransmits it until the
    /// ACK, which goes to the dialog layer, not here.
    Accepted,
    Terminated,
}

/// What the transaction user must hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// No ACK for a final non-2xx in 64·T1 (timer H).
    AckTimeout,
}

/// One server transaction: created with the request that opened it, fed
/// the retransmissions (and ACK) whose [`Key`] matches, and the responses
/// its user gives.
#[derive(Debug)]
pub struct ServerTransaction {
    key: Key,
    invite: bool,
    reliable: bool,
    timers: Timers,
    state: ServerState,
    request: Request,
    last_response: Option<Vec<u8>>,
    /// Timer G: when to resend the final response, and the interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer H.
    give_up: Option<Instant>,
    /// Timer I, J or L.
    linger: Option<Instant>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<ServerEvent>,
}

impl ServerTransaction {
    /// Opens a transaction for a request that matched none (not an ACK:
    /// an ACK that matches nothing belongs to a 2xx, so to a dialog).
    /// `None` when it has no RFC 3261 branch or is an ACK.
    pub fn new(request: Request, reliable: bool, timers: Timers) -> Option<Self> {
        if request.method == Method::Ack {
            return None;
        }
        let key = Key::for_request(&request)?;
        let invite = request.method == Method::Invite;
        Some(ServerTransaction {
            key,
            invite,
            reliable,
            timers,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            request,
            last_response: None,
            retransmit: None,
            give_up: None,
            linger: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A request whose key matched: a retransmission of the original, or
    /// the ACK for our non-2xx final response. Retransmissions get the last
    /// response again (§17.2.1, §17.2.2); an ACK moves to Confirmed.
    pub fn handle_request(&mut self, now: Instant, request: &Request) {
        match (self.state, request.method == Method::Ack) {
            (ServerState::Completed, true) if self.invite => {
                self.state = ServerState::Confirmed;
                self.retransmit = None;
                self.give_up = None;
                self.linger = Some(now + self.timers.duration(Timer::I, self.reliable));
                if self.reliable {
                    self.terminate();
                }
            }
            (ServerState::Proceeding | ServerState::Completed, false) => {
                if let Some(last) = &self.last_response {
                    self.transmits.push_back(last.clone());
                }
            }
            // Trying with no response yet: nothing to resend (§17.2.2).
            // Confirmed and Accepted absorb everything.
            _ => {}
        }
    }

    /// Sends `response` from the transaction user.
    pub fn respond(&mut self, now: Instant, response: Response) -> Result<(), TransactionError> {
        let status = response.status;
        if !(100..=699).contains(&status) {
            return Err(TransactionError::BadStatus(status));
        }
        let allowed = matches!(self.state, ServerState::Trying | ServerState::Proceeding);
        if !allowed {
            return Err(TransactionError::CannotRespond {
                status,
                state: self.state,
            });
        }
        let bytes = response.to_bytes();
        self.transmits.push_back(bytes.clone());
        self.last_response = Some(bytes);
        match status {
            100..=199 => self.state = ServerState::Proceeding,
            200..=299 if self.invite => {
                self.state = ServerState::Accepted;
                self.linger = Some(now + self.timers.duration(Timer::L, self.reliable));
            }
            _ if self.invite => {
                self.state = ServerState::Completed;
                if !self.reliable {
                    let first = self.timers.duration(Timer::G, false);
                    self.retransmit = Some((now + first, first));
                }
                self.give_up = Some(now + self.timers.duration(Timer::H, self.reliable));
            }
            _ => {
                self.state = ServerState::Completed;
                self.linger = Some(now + self.timers.duration(Timer::J, self.reliable));
                if self.reliable {
                    self.terminate();
                }
            }
        }
        Ok(())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.give_up.is_some_and(|at| now >= at) {
            self.events.push_back(ServerEvent::AckTimeout);
            self.terminate();
            return;
        }
        if let Some((at, interval)) = self.retransmit
            && now >= at
        {
            if let Some(last) = &self.last_response {
                self.transmits.push_back(last.clone());
            }
            let next = (interval * 2).min(self.timers.t2);
            self.retransmit = Some((now + next, next));
        }
        if self.linger.is_some_and(|at| now >= at) {
            self.terminate();
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit.map(|(at, _)| at), self.give_up, self.linger]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next response to send, to where the request came from.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.retransmit = None;
        self.give_up = None;
        self.linger = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;

    fn invite() -> Request {
        Message::parse(
            b"INVITE sip:bob@192.0.2.2 SIP/2.0\r\n\
              Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKs1\r\n\
              Max-Forwards: 70\r\n\
              From: <sip:alice@192.0.2.1>;tag=a1\r\n\
              To: <sip:bob@192.0.2.2>\r\n\
              Call-ID: s1@192.0.2.1\r\n\
              CSeq: 1 INVITE\r\n\
              Content-Length: 0\r\n\r\n",
        )
        .unwrap()
        .as_request()
        .unwrap()
        .clone()
    }

    fn ack() -> Request {
        let mut ack = invite();
        ack.method = Method::Ack;
        ack.headers.set("CSeq", "1 ACK");
        ack
    }

    fn bye() -> Request {
        let mut bye = invite();
        bye.method = Method::Bye;
        bye.headers.set("CSeq", "2 BYE");
        bye.headers
            .set("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKb1");
        bye
    }

    fn drain(t: &mut ServerTransaction) -> usize {
        std::iter::from_fn(|| t.poll_transmit()).count()
    }

    fn step_until(t: &mut ServerTransaction, t0: Instant, until: Duration) -> Vec<u128> {
        let mut sent = Vec::new();
        while let Some(at) = t.poll_timeout() {
            if at > t0 + until {
                break;
            }
            t.handle_timeout(at);
            for _ in 0..drain(t) {
                sent.push((at - t0).as_millis());
            }
        }
        sent
    }

    #[test]
    fn a_rejection_is_resent_until_acknowledged() {
        let t0 = Instant::now();
        let request = invite();
        let mut t = ServerTransaction::new(request.clone(), false, Timers::default()).unwrap();
        t.respond(t0, Response::for_request(&request, 100, "Trying"))
            .unwrap();
        // A retransmitted INVITE gets the 100 again.
        t.handle_request(t0, &request);
        assert_eq!(drain(&mut t), 2);
        let mut busy = Response::for_request(&request, 486, "Busy Here");
        busy.add_to_tag("t").unwrap();
        t.respond(t0, busy).unwrap();
        assert_eq!(drain(&mut t), 1);
        // Timer G: 0.5, 1.5, 3.5, then every 4 s (T2).
        let sent = step_until(&mut t, t0, Duration::from_secs(12));
        assert_eq!(sent, vec![500, 1_500, 3_500, 7_500, 11_500]);
        t.handle_request(t0 + Duration::from_secs(12), &ack());
        assert_eq!(t.state(), ServerState::Confirmed);
        // Confirmed absorbs the ACK's retransmissions, for T4.
        t.handle_request(t0 + Duration::from_secs(13), &ack());
        assert_eq!(drain(&mut t), 0);
        step_until(&mut t, t0, Duration::from_secs(20));
        assert!(t.is_terminated());
    }

    #[test]
    fn no_ack_in_64_t1_is_reported() {
        let t0 = Instant::now();
        let request = invite();
        let mut t = ServerTransaction::new(request.clone(), false, Timers::default()).unwrap();
        t.respond(t0, Response::for_request(&request, 603, "Decline"))
            .unwrap();
        step_until(&mut t, t0, Duration::from_secs(40));
        assert_eq!(t.poll_event(), Some(ServerEvent::AckTimeout));
        assert!(t.is_terminated());
    }

    #[test]
    fn after_a_2xx_retransmitted_invites_are_absorbed() {
        let t0 = Instant::now();
        let request = invite();
        let mut t = ServerTransaction::new(request.clone(), false, Timers::default()).unwrap();
        t.respond(t0, Response::for_request(&request, 200, "OK"))
            .unwrap();
        assert_eq!(drain(&mut t), 1);
        t.handle_request(t0 + Duration::from_millis(600), &request);
        assert_eq!(drain(&mut t), 0, "the dialog layer resends the 2xx");
        assert_eq!(t.state(), ServerState::Accepted);
        assert!(
            t.respond(t0, Response::for_request(&request, 486, "Busy"))
                .is_err()
        );
        step_until(&mut t, t0, Duration::from_secs(33));
        assert!(t.is_terminated());
    }

    #[test]
    fn non_invite_answers_retransmissions_with_the_last_response() {
        let t0 = Instant::now();
        let request = bye();
        let mut t = ServerTransaction::new(request.clone(), false, Timers::default()).unwrap();
        t.handle_request(t0, &request);
        assert_eq!(drain(&mut t), 0, "nothing to resend while Trying");
        t.respond(t0, Response::for_request(&request, 200, "OK"))
            .unwrap();
        t.handle_request(t0 + Duration::from_secs(1), &request);
        assert_eq!(drain(&mut t), 2);
        assert_eq!(t.state(), ServerState::Completed);
        assert!(step_until(&mut t, t0, Duration::from_secs(33)).is_empty());
        assert!(t.is_terminated());
    }

    #[test]
    fn over_tcp_a_final_response_ends_a_non_invite_at_once() {
        let request = bye();
        let mut t = ServerTransaction::new(request.clone(), true, Timers::default()).unwrap();
        t.respond(Instant::now(), Response::for_request(&request, 200, "OK"))
            .unwrap();
        assert!(t.is_terminated());
        assert_eq!(drain(&mut t), 1);
    }

    #[test]
    fn status_codes_outside_100_to_699_are_refused() {
        let request = bye();
        let mut t = ServerTransaction::new(request.clone(), false, Timers::default()).unwrap();
        let mut odd = Response::for_request(&request, 200, "OK");
        odd.status = 99;
        assert_eq!(
            t.respond(Instant::now(), odd),
            Err(TransactionError::BadStatus(99))
        );
    }
}
