//! Client transactions (RFC 3261 §17.1; RFC 6026 §7.2 for Accepted).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Key, Timer, Timers};
use crate::sip::message::{Method, Request, Response};

/// States of Figures 5 and 6 (and RFC 6026's Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, nothing heard yet.
    Calling,
    /// Non-INVITE sent, nothing heard yet.
    Trying,
    /// A provisional response came.
    Proceeding,
    /// A final response came (non-2xx for INVITE); absorbing retransmissions.
    Completed,
    /// INVITE answered with 2xx; passing on 2xx from other forks.
    Accepted,
    Terminated,
}

/// What the transaction user must hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response to pass up: the first of each provisional status, the
    /// final one, and (INVITE, Accepted) every 2xx, for the dialog layer to
    /// acknowledge.
    Response(Response),
    /// No final response in time (timer B or F): the request failed, as if
    /// a 408 had come (§8.1.3.1).
    Timeout,
}

/// One client transaction: created with the request to send, fed the
/// responses whose [`Key`] matches.
#[derive(Debug)]
pub struct ClientTransaction {
    key: Key,
    invite: bool,
    reliable: bool,
    timers: Timers,
    state: ClientState,
    request: Request,
    bytes: Vec<u8>,
    /// Timer A or E: when to send again, and the interval after that.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B or F.
    give_up: Option<Instant>,
    /// Timer D, K or M.
    linger: Option<Instant>,
    /// The ACK for a non-2xx final response, resent for its retransmissions.
    ack: Option<Vec<u8>>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
}

impl ClientTransaction {
    /// Starts a transaction for `request` (not an ACK, which has none) and
    /// queues its first transmission. `None` when the request has no
    /// RFC 3261 branch or is an ACK.
    pub fn new(now: Instant, request: Request, reliable: bool, timers: Timers) -> Option<Self> {
        if request.method == Method::Ack {
            return None;
        }
        let key = Key::for_request(&request)?;
        let invite = request.method == Method::Invite;
        let bytes = request.to_bytes();
        let first = timers.duration(if invite { Timer::A } else { Timer::E }, reliable);
        Some(ClientTransaction {
            key,
            invite,
            reliable,
            timers,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            retransmit: (!reliable).then_some((now + first, first)),
            give_up: Some(
                now + timers.duration(if invite { Timer::B } else { Timer::F }, reliable),
            ),
            linger: None,
            ack: None,
            transmits: VecDeque::from([bytes.clone()]),
            events: VecDeque::new(),
            request,
            bytes,
        })
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A response whose key matched this transaction.
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        let status = response.status;
        match (self.state, status) {
            (ClientState::Terminated, _) => {}
            (ClientState::Calling | ClientState::Trying | ClientState::Proceeding, 100..=199) => {
                if self.state != ClientState::Proceeding || status > 100 {
                    self.events.push_back(ClientEvent::Response(response));
                }
                if self.invite {
                    // A provisional response stops INVITE retransmissions
                    // (§17.1.1.2); a non-INVITE keeps going at T2 (§17.1.2.2).
                    self.retransmit = None;
                } else if let Some((at, _)) = self.retransmit {
                    self.retransmit = Some((at, self.timers.t2));
                }
                self.state = ClientState::Proceeding;
            }
            (ClientState::Calling | ClientState::Proceeding, 200..=299) if self.invite => {
                self.events.push_back(ClientEvent::Response(response));
                self.enter_accepted(now);
            }
            (ClientState::Accepted, 200..=299) => {
                // A retransmitted or forked 2xx: the dialog layer ACKs it.
                self.events.push_back(ClientEvent::Response(response));
            }
            (ClientState::Calling | ClientState::Proceeding, 300..=699) if self.invite => {
                let ack = self.ack_for(&response).to_bytes();
                self.transmits.push_back(ack.clone());
                self.ack = Some(ack);
                self.events.push_back(ClientEvent::Response(response));
                self.enter_completed(now, Timer::D);
            }
            (ClientState::Completed, 300..=699) if self.invite => {
                // Our ACK was lost: send it again (§17.1.1.2).
                if let Some(ack) = &self.ack {
                    self.transmits.push_back(ack.clone());
                }
            }
            (ClientState::Trying | ClientState::Proceeding, 200..=699) => {
                self.events.push_back(ClientEvent::Response(response));
                self.enter_completed(now, Timer::K);
            }
            // Retransmissions once completed, 1xx after a final response.
            _ => {}
        }
    }

    /// The transport could not send the request (§17.1.1.2, §17.1.2.2):
    /// fail at once.
    pub fn handle_transport_error(&mut self) {
        if matches!(
            self.state,
            ClientState::Calling | ClientState::Trying | ClientState::Proceeding
        ) {
            self.events.push_back(ClientEvent::Timeout);
            self.terminate();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.give_up.is_some_and(|at| now >= at) {
            self.give_up = None;
            if matches!(
                self.state,
                ClientState::Calling | ClientState::Trying | ClientState::Proceeding
            ) {
                self.events.push_back(ClientEvent::Timeout);
                self.terminate();
                return;
            }
        }
        if let Some((at, interval)) = self.retransmit
            && now >= at
        {
            self.transmits.push_back(self.bytes.clone());
            let next = if self.invite {
                interval * 2
            } else {
                (interval * 2).min(self.timers.t2)
            };
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

    /// The next datagram (or stream message) to send to the transaction's
    /// destination.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn enter_completed(&mut self, now: Instant, timer: Timer) {
        self.state = ClientState::Completed;
        self.retransmit = None;
        self.give_up = None;
        self.linger = Some(now + self.timers.duration(timer, self.reliable));
        if self.reliable {
            self.terminate();
        }
    }

    fn enter_accepted(&mut self, now: Instant) {
        self.state = ClientState::Accepted;
        self.retransmit = None;
        self.give_up = None;
        self.linger = Some(now + self.timers.duration(Timer::M, self.reliable));
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.retransmit = None;
        self.give_up = None;
        self.linger = None;
    }

    /// The ACK for a non-2xx final response (§17.1.1.3): the INVITE's
    /// Request-URI, top Via, From, Call-ID, CSeq number and Route; the
    /// response's To (with its tag).
    fn ack_for(&self, response: &Response) -> Request {
        let mut ack = Request::new(Method::Ack, self.request.uri.clone());
        let h = &self.request.headers;
        if let Some(via) = h.get_all("Via").next() {
            ack.headers.push("Via", via);
        }
        ack.headers.push("Max-Forwards", "70");
        for name in ["From", "Call-ID"] {
            if let Some(value) = h.get(name) {
                ack.headers.push(name, value);
            }
        }
        if let Some(to) = response.headers.get("To").or_else(|| h.get("To")) {
            ack.headers.push("To", to);
        }
        if let Ok(cseq) = h.cseq() {
            ack.headers.push("CSeq", format!("{} ACK", cseq.seq));
        }
        for route in h.get_all("Route") {
            ack.headers.push("Route", route);
        }
        ack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;

    fn parse(text: &str) -> Message {
        Message::parse(text.as_bytes()).unwrap()
    }

    fn invite() -> Request {
        parse(
            "INVITE sip:bob@192.0.2.2 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKc1;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@192.0.2.1>;tag=a1\r\n\
             To: <sip:bob@192.0.2.2>\r\n\
             Call-ID: c1@192.0.2.1\r\n\
             CSeq: 7 INVITE\r\n\
             Route: <sip:proxy.example.com;lr>\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .as_request()
        .unwrap()
        .clone()
    }

    fn options() -> Request {
        let mut r = invite();
        r.method = Method::Options;
        r.headers.set("CSeq", "8 OPTIONS");
        r.headers
            .set("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKo1");
        r
    }

    fn response(request: &Request, status: u16) -> Response {
        let mut r = Response::for_request(request, status, "x");
        if status > 100 {
            r.add_to_tag("b2").unwrap();
        }
        r
    }

    fn drain(t: &mut ClientTransaction) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }

    /// Steps the clock to each deadline until `until`, counting sends.
    fn run_until(t: &mut ClientTransaction, start: Instant, until: Duration) -> Vec<Duration> {
        let mut sent = Vec::new();
        while let Some(at) = t.poll_timeout() {
            if at > start + until {
                break;
            }
            t.handle_timeout(at);
            for _ in drain(t) {
                sent.push(at - start);
            }
        }
        sent
    }

    #[test]
    fn invite_over_udp_retransmits_at_a_doubling_interval_then_times_out() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, invite(), false, Timers::default()).unwrap();
        assert_eq!(drain(&mut t).len(), 1);
        let sent = run_until(&mut t, t0, Duration::from_secs(40));
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        // Timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; timer B at 32 s.
        assert_eq!(ms, vec![500, 1_500, 3_500, 7_500, 15_500, 31_500]);
        assert_eq!(t.poll_event(), Some(ClientEvent::Timeout));
        assert!(t.is_terminated());
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn a_provisional_response_stops_invite_retransmissions() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, invite(), false, Timers::default()).unwrap();
        drain(&mut t);
        t.handle_response(t0 + Duration::from_millis(100), response(t.request(), 100));
        t.handle_response(t0 + Duration::from_millis(200), response(t.request(), 180));
        t.handle_response(t0 + Duration::from_millis(300), response(t.request(), 180));
        assert_eq!(t.state(), ClientState::Proceeding);
        let statuses: Vec<u16> = std::iter::from_fn(|| t.poll_event())
            .map(|e| match e {
                ClientEvent::Response(r) => r.status,
                ClientEvent::Timeout => 0,
            })
            .collect();
        // The 100 and the first 180 go up; the repeated 180 too (the
        // dialog layer may need it for reliability), but no retransmission.
        assert_eq!(statuses, vec![100, 180, 180]);
        assert!(run_until(&mut t, t0, Duration::from_secs(20)).is_empty());
        // Timer B still runs: no final answer in 64·T1 is a timeout.
        run_until(&mut t, t0, Duration::from_secs(40));
        assert_eq!(t.poll_event(), Some(ClientEvent::Timeout));
    }

    #[test]
    fn a_busy_answer_is_acknowledged_within_the_transaction() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, invite(), false, Timers::default()).unwrap();
        drain(&mut t);
        let busy = response(t.request(), 486);
        t.handle_response(t0, busy.clone());
        assert!(matches!(t.poll_event(), Some(ClientEvent::Response(r)) if r.status == 486));
        let sent = drain(&mut t);
        assert_eq!(sent.len(), 1);
        let ack = parse(std::str::from_utf8(&sent[0]).unwrap());
        let ack = ack.as_request().unwrap();
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, t.request().uri);
        assert_eq!(ack.headers.cseq().unwrap().seq, 7);
        assert_eq!(ack.headers.cseq().unwrap().method, Method::Ack);
        assert_eq!(ack.headers.to().unwrap().tag.as_deref(), Some("b2"));
        assert_eq!(
            ack.headers.top_via().unwrap().branch.as_deref(),
            Some("z9hG4bKc1")
        );
        assert_eq!(ack.headers.get_all("Route").count(), 1);
        // The 486 again: the ACK again, nothing to the user.
        t.handle_response(t0 + Duration::from_millis(500), busy);
        assert_eq!(drain(&mut t).len(), 1);
        assert_eq!(t.poll_event(), None);
        // Timer D: 32 s later, gone.
        assert_eq!(t.state(), ClientState::Completed);
        run_until(&mut t, t0, Duration::from_secs(33));
        assert!(t.is_terminated());
    }

    #[test]
    fn every_2xx_to_an_invite_is_passed_up_and_none_acknowledged_here() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, invite(), false, Timers::default()).unwrap();
        drain(&mut t);
        let ok = response(t.request(), 200);
        t.handle_response(t0, ok.clone());
        t.handle_response(t0 + Duration::from_millis(500), ok);
        assert_eq!(t.state(), ClientState::Accepted);
        assert_eq!(std::iter::from_fn(|| t.poll_event()).count(), 2);
        assert!(drain(&mut t).is_empty(), "a 2xx is ACKed by the dialog");
        run_until(&mut t, t0, Duration::from_secs(33));
        assert!(t.is_terminated());
    }

    #[test]
    fn non_invite_retransmits_capped_at_t2_and_keeps_going_when_provisional() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, options(), false, Timers::default()).unwrap();
        drain(&mut t);
        let sent = run_until(&mut t, t0, Duration::from_secs(12));
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![500, 1_500, 3_500, 7_500, 11_500]);
        t.handle_response(t0 + Duration::from_secs(12), response(t.request(), 100));
        let sent = run_until(&mut t, t0, Duration::from_secs(20));
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![15_500, 19_500]);
        t.handle_response(t0 + Duration::from_secs(20), response(t.request(), 200));
        assert_eq!(t.state(), ClientState::Completed);
        // Timer K (T4) absorbs retransmitted finals, then ends.
        run_until(&mut t, t0, Duration::from_secs(26));
        assert!(t.is_terminated());
    }

    #[test]
    fn over_tcp_nothing_is_retransmitted_and_completion_is_immediate() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, options(), true, Timers::default()).unwrap();
        assert_eq!(drain(&mut t).len(), 1);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        t.handle_response(t0, response(t.request(), 404));
        assert!(t.is_terminated());
    }

    #[test]
    fn no_transaction_for_an_ack() {
        let mut ack = invite();
        ack.method = Method::Ack;
        assert!(ClientTransaction::new(Instant::now(), ack, false, Timers::default()).is_none());
    }
}
