//! A SIP user agent (RFC 3261 §8, §12-§15, §22): calls made and answered,
//! dialogs, CANCEL, BYE, OPTIONS, digest authentication and registration,
//! over the transactions of [`super::transaction`], sans-IO.
//!
//! The agent carries session descriptions as opaque bodies: the phone
//! above it runs the offer/answer model ([`crate::sdp`]) and the media.
//! It handles any number of calls; a phone that takes one at a time
//! answers the others 486 itself ([`UserAgent::busy`]).
//!
//! Where a request goes: the dialog's route set (its first Route) if there
//! is one, else the remote target when it names an IP address, else the
//! address the peer's messages came from; responses go where the request
//! came from (RFC 3581 symmetric response routing). With an outbound proxy
//! everything goes there.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::digest::{Challenge, DigestRequest, Password};
use super::message::{
    CallId, ContentType, Host, Message, Method, NameAddr, PONG, Request, Response, SipUri,
    StreamItem, Transport, Uri, Via, reason_phrase,
};
use super::transaction::{
    ClientEvent, ClientTransaction, Key, ServerEvent, ServerTransaction, Timers,
};

/// Server transactions held at once. Each lives for up to 64·T1 after its
/// answer, so a burst of requests could otherwise grow them without end;
/// beyond this, requests are answered 503 and forgotten.
pub const MAX_SERVER_TRANSACTIONS: usize = 1_024;

/// How the agent presents itself.
#[derive(Clone)]
pub struct UaConfig {
    /// The address of our SIP socket, for Via and Contact.
    pub local: SocketAddr,
    /// Our user part, in From and Contact.
    pub user: String,
    pub display_name: Option<String>,
    /// The host of our address-of-record; our IP address when `None`.
    pub domain: Option<String>,
    /// Answer only requests for this user part; any user when `None`, as a
    /// phone on its own address does.
    pub only_user: Option<String>,
    /// The User-Agent and Server header value.
    pub user_agent: String,
    /// Send our requests over TCP (RFC 3261 §18), else UDP. Requests that
    /// arrive over TCP are answered over TCP either way.
    pub tcp: bool,
    /// Send every request here (a proxy), whatever its Request-URI.
    pub outbound_proxy: Option<SocketAddr>,
    /// Digest credentials for 401/407 challenges: (username, password).
    pub credentials: Option<(String, Password)>,
    pub timers: Timers,
    /// Seeds tags, branches and Call-IDs.
    pub seed: u64,
}

impl std::fmt::Debug for UaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UaConfig")
            .field("local", &self.local)
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("outbound_proxy", &self.outbound_proxy)
            .finish_non_exhaustive()
    }
}

/// Names one call of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

/// Names one registration of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegRef(pub u64);

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub data: Vec<u8>,
    /// Over TCP: on the connection with `to` (opened if there is none);
    /// else a UDP datagram.
    pub tcp: bool,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// We hung up.
    Local,
    /// The far end sent BYE.
    RemoteBye,
    /// The caller gave up before we answered (CANCEL).
    Cancelled,
    /// We answered and no ACK came in 64·T1; we sent BYE.
    NoAck,
}

/// What the phone above must hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaEvent {
    /// Someone calls. Answer with [`UserAgent::ring`], [`UserAgent::accept`]
    /// or [`UserAgent::reject`].
    Incoming {
        call: CallRef,
        from: Box<NameAddr>,
        to: Box<NameAddr>,
        /// The session description offered, if the INVITE carried one.
        offer: Option<Vec<u8>>,
        user_agent: Option<String>,
        source: SocketAddr,
    },
    /// Our INVITE got a provisional response: 100 Trying, 180 Ringing, 183
    /// Session Progress.
    Progress {
        call: CallRef,
        status: u16,
        reason: String,
        body: Option<Vec<u8>>,
    },
    /// Our INVITE was answered (and acknowledged): the answer's body.
    Answered { call: CallRef, body: Vec<u8> },
    /// The ACK for our 2xx came: the call is up both ways.
    Confirmed { call: CallRef },
    /// Our INVITE failed: a final non-2xx response, or none (408).
    Failed {
        call: CallRef,
        status: u16,
        reason: String,
    },
    /// The far end offers a new session description in the dialog
    /// (hold, resume): answer with [`UserAgent::accept_reoffer`].
    Reoffer { call: CallRef, offer: Vec<u8> },
    /// Our re-offer was answered.
    Reanswered { call: CallRef, body: Vec<u8> },
    /// An established call ended.
    Ended { call: CallRef, reason: EndReason },
    /// A DTMF digit or other INFO in the dialog (body as sent).
    Info {
        call: CallRef,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// A registration succeeded; it is refreshed before `expires`.
    Registered { reg: RegRef, expires: u32 },
    /// A registration failed (status 408 when the registrar is silent).
    RegistrationFailed {
        reg: RegRef,
        status: u16,
        reason: String,
    },
    /// A request or response that could not be parsed was dropped or
    /// answered 400.
    Malformed { source: SocketAddr, error: String },
}

/// Why the agent refused what its phone asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UaError {
    #[error("no such call")]
    NoSuchCall,
    #[error("the call is not in a state where that can be done")]
    WrongState,
}

/// A SIP user agent; see the module docs.
pub struct UserAgent {
    config: UaConfig,
    rng: u64,
    next_ref: u64,
    calls: HashMap<CallRef, Dialog>,
    clients: HashMap<Key, Client>,
    servers: HashMap<Key, Server>,
    registrations: HashMap<RegRef, Registration>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<UaEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Caller,
    Callee,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// INVITE sent or received, no final answer yet.
    Early,
    /// We sent 2xx and wait for the ACK.
    Answered,
    /// Up.
    Confirmed,
    /// BYE or CANCEL sent, or the call failed; kept until its transactions end.
    Ending,
}

struct Dialog {
    role: Role,
    /// Its requests and responses go over TCP.
    tcp: bool,
    state: State,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our From (caller) or To (callee) value, without tag.
    local: NameAddr,
    remote: NameAddr,
    /// The Request-URI of requests in the dialog: the peer's Contact.
    remote_target: Uri,
    /// Record-Route, in the order our requests visit it.
    route_set: Vec<NameAddr>,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    /// Where the peer's messages come from: the fallback destination.
    peer: SocketAddr,
    /// The INVITE we sent (caller), for CANCEL and authentication retries.
    invite: Option<Request>,
    invite_key: Option<Key>,
    /// Caller: hung up before any provisional answer: CANCEL when one comes.
    cancel_pending: bool,
    /// Caller: the ACK for the 2xx, resent when the 2xx is.
    ack: Option<(SocketAddr, Vec<u8>)>,
    /// Callee: the 2xx, resent until the ACK (§13.3.1.4).
    ok: Option<PendingOk>,
    auth_tries: u32,
    ended: bool,
}

struct PendingOk {
    data: Vec<u8>,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

enum Purpose {
    Invite(CallRef),
    Reinvite(CallRef),
    Bye(CallRef),
    Cancel,
    Register(RegRef),
}

struct Client {
    transaction: ClientTransaction,
    to: SocketAddr,
    tcp: bool,
    purpose: Purpose,
}

struct Server {
    transaction: ServerTransaction,
    source: SocketAddr,
    tcp: bool,
    call: Option<CallRef>,
}

struct Registration {
    registrar: SocketAddr,
    aor: SipUri,
    call_id: String,
    local_tag: String,
    cseq: u32,
    expires: u32,
    refresh_at: Option<Instant>,
    auth_tries: u32,
    unregistering: bool,
}

impl UserAgent {
    pub fn new(config: UaConfig) -> Self {
        UserAgent {
            rng: config.seed ^ 0x6970_7068_6f6e_6521,
            config,
            next_ref: 1,
            calls: HashMap::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            registrations: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &UaConfig {
        &self.config
    }

    /// Whether a call is in progress (ringing, up or ending).
    pub fn busy(&self) -> bool {
        self.calls.values().any(|d| !d.ended)
    }

    /// Whether nothing is left to do: no call, no transaction, no
    /// registration refresh. A phone exits once idle (or after a bound).
    pub fn is_idle(&self) -> bool {
        self.calls.values().all(|d| d.ended)
            && self.clients.is_empty()
            && self.servers.values().all(|s| s.transaction.is_terminated())
            && self.registrations.values().all(|r| r.refresh_at.is_none())
    }

    /// Whether everything this agent started has been answered: no call
    /// alive, no request awaiting its final response, no response awaiting
    /// its ACK, no registration to refresh. Transactions may still be
    /// absorbing retransmissions (timers D, I, J, K, L, M); a phone may exit
    /// now without leaving anyone waiting.
    pub fn is_settled(&self) -> bool {
        use super::transaction::{ClientState, ServerState};
        self.calls.values().all(|d| d.ended && d.ok.is_none())
            && self.clients.values().all(|c| {
                matches!(
                    c.transaction.state(),
                    ClientState::Completed | ClientState::Accepted | ClientState::Terminated
                )
            })
            && self.servers.values().all(|s| match s.transaction.state() {
                ServerState::Trying | ServerState::Proceeding => false,
                // An INVITE's final non-2xx waits for its ACK.
                ServerState::Completed => s.transaction.request().method != Method::Invite,
                _ => true,
            })
            && self.registrations.values().all(|r| r.refresh_at.is_none())
    }

    /// Calls `target`, sending the INVITE to `to` (the resolved address of
    /// the target, or of the proxy), with `offer` as its SDP body.
    pub fn dial(&mut self, now: Instant, target: Uri, to: SocketAddr, offer: Vec<u8>) -> CallRef {
        let call = self.new_ref();
        let call_id = format!("{:016x}@{}", self.random(), self.config.local.ip());
        let local_tag = self.token();
        let local = self.our_address();
        let remote = NameAddr::new(target.clone());
        let mut dialog = Dialog {
            role: Role::Caller,
            tcp: self.config.tcp,
            state: State::Early,
            call_id,
            local_tag,
            remote_tag: None,
            local,
            remote,
            remote_target: target,
            route_set: Vec::new(),
            local_cseq: (self.random() % 10_000) as u32 + 1,
            remote_cseq: None,
            peer: to,
            invite: None,
            invite_key: None,
            cancel_pending: false,
            ack: None,
            ok: None,
            auth_tries: 0,
            ended: false,
        };
        let branch = self.branch();
        let mut invite = in_dialog_request(
            &self.config,
            &dialog,
            Method::Invite,
            dialog.local_cseq,
            &branch,
        );
        invite.headers.push("Contact", self.contact().to_string());
        self.set_body(&mut invite, offer);
        dialog.invite = Some(invite.clone());
        self.calls.insert(call, dialog);
        let key = self.send_request(now, invite, to, Purpose::Invite(call));
        if let Some(d) = self.calls.get_mut(&call) {
            d.invite_key = key;
        }
        call
    }

    /// Tells the caller we are ringing (180).
    pub fn ring(&mut self, now: Instant, call: CallRef) -> Result<(), UaError> {
        self.respond_invite(now, call, 180, None)
    }

    /// Answers an incoming call (200 with `answer` as SDP).
    pub fn accept(&mut self, now: Instant, call: CallRef, answer: Vec<u8>) -> Result<(), UaError> {
        self.respond_invite(now, call, 200, Some(answer))
    }

    /// Refuses an incoming call: 486 busy, 603 declined, 488 no common
    /// codec, 404 not here...
    pub fn reject(&mut self, now: Instant, call: CallRef, status: u16) -> Result<(), UaError> {
        if status < 300 {
            return Err(UaError::WrongState);
        }
        self.respond_invite(now, call, status, None)?;
        if let Some(d) = self.calls.get_mut(&call) {
            d.state = State::Ending;
            d.ended = true;
        }
        Ok(())
    }

    /// Hangs up: BYE for a call that is up, CANCEL for one still ringing
    /// at the far end, 603 for one ringing here. Reports
    /// [`UaEvent::Ended`] at once; the BYE's transaction finishes in the
    /// background.
    pub fn hangup(&mut self, now: Instant, call: CallRef) -> Result<(), UaError> {
        let dialog = self.calls.get(&call).ok_or(UaError::NoSuchCall)?;
        if dialog.ended {
            return Ok(());
        }
        match (dialog.role, dialog.state) {
            (_, State::Confirmed | State::Answered) => {
                self.send_bye(now, call);
                self.end(call, EndReason::Local);
            }
            (Role::Caller, State::Early) => {
                let proceeding = dialog
                    .invite_key
                    .as_ref()
                    .and_then(|k| self.clients.get(k))
                    .is_some_and(|c| {
                        c.transaction.state() == super::transaction::ClientState::Proceeding
                    });
                if proceeding {
                    self.send_cancel(now, call);
                } else if let Some(d) = self.calls.get_mut(&call) {
                    // §9.1: no CANCEL before a provisional response.
                    d.cancel_pending = true;
                }
                if let Some(d) = self.calls.get_mut(&call) {
                    d.state = State::Ending;
                    d.ended = true;
                }
            }
            (Role::Callee, State::Early) => {
                self.reject(now, call, 603)?;
            }
            (_, State::Ending) => {}
        }
        Ok(())
    }

    /// Sends a new offer in the dialog (re-INVITE: hold, resume).
    pub fn reoffer(&mut self, now: Instant, call: CallRef, offer: Vec<u8>) -> Result<(), UaError> {
        let dialog = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        if dialog.state != State::Confirmed {
            return Err(UaError::WrongState);
        }
        dialog.local_cseq += 1;
        let seq = dialog.local_cseq;
        let branch = self.branch();
        let dialog = &self.calls[&call];
        let mut invite = in_dialog_request(&self.config, dialog, Method::Invite, seq, &branch);
        invite.headers.push("Contact", self.contact().to_string());
        self.set_body(&mut invite, offer);
        let to = self.destination(dialog);
        self.send_request(now, invite, to, Purpose::Reinvite(call));
        Ok(())
    }

    /// Answers the far end's re-offer ([`UaEvent::Reoffer`]) with 200,
    /// resent until the ACK comes (§13.3.1.4).
    pub fn accept_reoffer(
        &mut self,
        now: Instant,
        call: CallRef,
        answer: Vec<u8>,
    ) -> Result<(), UaError> {
        let key = self.pending_reinvite(call)?;
        let request = self.servers[&key].transaction.request().clone();
        let mut response = self.response(&request, 200, Some(call));
        response.headers.push(
            "Contact",
            self.contact_for(self.calls.get(&call).is_some_and(|d| d.tcp))
                .to_string(),
        );
        self.set_body_response(&mut response, answer);
        let data = response.to_bytes();
        let t1 = self.config.timers.t1;
        if let Some(d) = self.calls.get_mut(&call) {
            d.ok = Some(PendingOk {
                data,
                next: now + t1,
                interval: t1,
                give_up: now + t1 * 64,
            });
        }
        self.respond(now, &key, response);
        Ok(())
    }

    /// Refuses the far end's re-offer (488 when it cannot be taken); the
    /// call goes on as it was (RFC 3261 §14.2).
    pub fn reject_reoffer(
        &mut self,
        now: Instant,
        call: CallRef,
        status: u16,
    ) -> Result<(), UaError> {
        if status < 300 {
            return Err(UaError::WrongState);
        }
        let key = self.pending_reinvite(call)?;
        let request = self.servers[&key].transaction.request().clone();
        let response = self.response(&request, status, Some(call));
        self.respond(now, &key, response);
        Ok(())
    }

    fn pending_reinvite(&self, call: CallRef) -> Result<Key, UaError> {
        self.servers
            .iter()
            .find(|(_, s)| {
                s.call == Some(call)
                    && s.transaction.request().method == Method::Invite
                    && s.transaction.state() == super::transaction::ServerState::Proceeding
            })
            .map(|(k, _)| k.clone())
            .ok_or(UaError::WrongState)
    }

    /// Registers `aor` (our address-of-record) with `registrar`, for
    /// `expires` seconds, refreshing before it lapses.
    pub fn register(
        &mut self,
        now: Instant,
        registrar: SocketAddr,
        aor: SipUri,
        expires: u32,
    ) -> RegRef {
        let reg = RegRef(self.new_ref().0);
        let registration = Registration {
            registrar,
            aor,
            call_id: format!("{:016x}@{}", self.random(), self.config.local.ip()),
            local_tag: self.token(),
            cseq: 0,
            expires,
            refresh_at: None,
            auth_tries: 0,
            unregistering: false,
        };
        self.registrations.insert(reg, registration);
        self.send_register(now, reg, None);
        reg
    }

    /// Removes a registration (REGISTER with Expires: 0).
    pub fn unregister(&mut self, now: Instant, reg: RegRef) {
        if let Some(r) = self.registrations.get_mut(&reg) {
            r.unregistering = true;
            r.refresh_at = None;
            r.auth_tries = 0;
            self.send_register(now, reg, None);
        }
    }

    /// A datagram from `source`.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        // RFC 5626 keepalives on a datagram transport.
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        match Message::parse(data) {
            Ok(message) => self.handle_message(now, source, false, message),
            Err(error) => self.handle_malformed(source, false, data, &error),
        }
    }

    /// What the stream framer of the TCP connection with `source` yielded.
    pub fn handle_stream_item(&mut self, now: Instant, source: SocketAddr, item: StreamItem) {
        match item {
            StreamItem::Message(message) => self.handle_message(now, source, true, message),
            StreamItem::Malformed { bytes, error } => {
                self.handle_malformed(source, true, &bytes, &error)
            }
            // RFC 5626 §4.4.1: a ping is answered with a pong.
            StreamItem::Ping => self.transmits.push_back(Transmit {
                to: source,
                data: PONG.to_vec(),
                tcp: true,
            }),
            StreamItem::Pong => {}
        }
    }

    fn handle_message(&mut self, now: Instant, source: SocketAddr, tcp: bool, message: Message) {
        match message {
            Message::Request(request) => self.handle_request(now, source, tcp, request),
            Message::Response(response) => self.handle_response(now, response),
        }
    }

    fn handle_malformed(
        &mut self,
        source: SocketAddr,
        tcp: bool,
        data: &[u8],
        error: &super::message::ParseError,
    ) {
        let tag = self.token();
        if let Some(bad) = Response::for_malformed_request(data, error, &tag) {
            self.transmits.push_back(Transmit {
                to: source,
                data: bad.to_bytes(),
                tcp,
            });
        }
        self.events.push_back(UaEvent::Malformed {
            source,
            error: error.to_string(),
        });
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let keys: Vec<Key> = self.clients.keys().cloned().collect();
        for key in keys {
            if let Some(client) = self.clients.get_mut(&key) {
                client.transaction.handle_timeout(now);
            }
            self.drain_client(now, &key);
        }
        let keys: Vec<Key> = self.servers.keys().cloned().collect();
        for key in keys {
            if let Some(server) = self.servers.get_mut(&key) {
                server.transaction.handle_timeout(now);
            }
            self.drain_server(&key);
        }
        // 2xx retransmissions of calls we answered.
        let mut no_ack = Vec::new();
        for (&call, dialog) in &mut self.calls {
            if let Some(ok) = &mut dialog.ok {
                if now >= ok.give_up {
                    dialog.ok = None;
                    no_ack.push(call);
                } else if now >= ok.next {
                    self.transmits.push_back(Transmit {
                        to: dialog.peer,
                        data: ok.data.clone(),
                        tcp: dialog.tcp,
                    });
                    ok.interval = (ok.interval * 2).min(self.config.timers.t2);
                    ok.next = now + ok.interval;
                }
            }
        }
        for call in no_ack {
            self.send_bye(now, call);
            self.end(call, EndReason::NoAck);
        }
        let due: Vec<RegRef> = self
            .registrations
            .iter()
            .filter(|(_, r)| r.refresh_at.is_some_and(|at| now >= at))
            .map(|(&k, _)| k)
            .collect();
        for reg in due {
            if let Some(r) = self.registrations.get_mut(&reg) {
                r.refresh_at = None;
                r.auth_tries = 0;
            }
            self.send_register(now, reg, None);
        }
        self.collect_garbage();
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let clients = self
            .clients
            .values()
            .filter_map(|c| c.transaction.poll_timeout());
        let servers = self
            .servers
            .values()
            .filter_map(|s| s.transaction.poll_timeout());
        let oks = self
            .calls
            .values()
            .filter_map(|d| d.ok.as_ref().map(|ok| ok.next.min(ok.give_up)));
        let regs = self.registrations.values().filter_map(|r| r.refresh_at);
        clients.chain(servers).chain(oks).chain(regs).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    // ---- incoming requests ----

    fn handle_request(
        &mut self,
        now: Instant,
        source: SocketAddr,
        tcp: bool,
        mut request: Request,
    ) {
        // RFC 3581: note where it really came from.
        if let Ok(mut via) = request.headers.top_via() {
            let mut changed = false;
            if via.host.to_string() != source.ip().to_string() {
                via.received = Some(source.ip());
                changed = true;
            }
            if via.rport.is_some() {
                via.rport = Some(super::message::Rport::Port(source.port()));
                changed = true;
            }
            if changed {
                replace_top_via(&mut request, &via);
            }
        }
        let Some(key) = Key::for_request(&request) else {
            // Nothing to key a transaction on: answer statelessly.
            if request.method != Method::Ack {
                let response = self.response(&request, 400, None);
                self.transmits.push_back(Transmit {
                    to: source,
                    data: response.to_bytes(),
                    tcp,
                });
            }
            return;
        };
        if let Some(server) = self.servers.get_mut(&key) {
            let retransmitted_or_ack = request.method == server.transaction.request().method
                || (request.method == Method::Ack
                    && server.transaction.state() == super::transaction::ServerState::Completed);
            if retransmitted_or_ack {
                server.transaction.handle_request(now, &request);
                self.drain_server(&key);
                return;
            }
        }
        if request.method == Method::Ack {
            self.handle_ack(&request);
            return;
        }
        if self.servers.len() >= MAX_SERVER_TRANSACTIONS {
            // A flood: answer without keeping any state (RFC 3261 §21.5.4).
            let mut busy = self.response(&request, 503, None);
            busy.headers.push("Retry-After", "5");
            self.transmits.push_back(Transmit {
                to: source,
                data: busy.to_bytes(),
                tcp,
            });
            return;
        }
        let Some(transaction) = ServerTransaction::new(request.clone(), tcp, self.config.timers)
        else {
            return;
        };
        self.servers.insert(
            key.clone(),
            Server {
                transaction,
                source,
                tcp,
                call: None,
            },
        );
        match request.method {
            Method::Invite => self.handle_invite(now, &key, source, tcp, &request),
            Method::Bye => self.handle_bye(now, &key, &request),
            Method::Cancel => self.handle_cancel(now, &key, &request),
            Method::Options => {
                let mut response = self.response(&request, 200, None);
                response.headers.push("Accept", "application/sdp");
                self.respond(now, &key, response);
            }
            Method::Info => {
                let call = self.dialog_of(&request);
                let status = if call.is_some() { 200 } else { 481 };
                if let Some(call) = call {
                    self.events.push_back(UaEvent::Info {
                        call,
                        content_type: request.headers.get("Content-Type").map(str::to_owned),
                        body: request.body.clone(),
                    });
                }
                let response = self.response(&request, status, call);
                self.respond(now, &key, response);
            }
            _ => {
                let response = self.response(&request, 405, None);
                self.respond(now, &key, response);
            }
        }
    }

    fn handle_invite(
        &mut self,
        now: Instant,
        key: &Key,
        source: SocketAddr,
        tcp: bool,
        request: &Request,
    ) {
        let to = request.headers.to().ok();
        if to.as_ref().is_some_and(|t| t.tag.is_some()) {
            // A re-INVITE: within a dialog or for one we do not know.
            let Some(call) = self.dialog_of(request) else {
                let response = self.response(request, 481, None);
                self.respond(now, key, response);
                return;
            };
            if let Some(server) = self.servers.get_mut(key) {
                server.call = Some(call);
            }
            if !self.check_remote_cseq(call, request) {
                let response = self.response(request, 500, Some(call));
                self.respond(now, key, response);
                return;
            }
            if let Ok(contact) = first_contact(request)
                && let Some(d) = self.calls.get_mut(&call)
            {
                d.remote_target = contact;
            }
            if request.body.is_empty() {
                // An offerless re-INVITE: we would offer in the 200; not supported.
                let response = self.response(request, 488, Some(call));
                self.respond(now, key, response);
                return;
            }
            self.events.push_back(UaEvent::Reoffer {
                call,
                offer: request.body.clone(),
            });
            return;
        }
        // A new call: loops and merged requests (§8.2.2.2) are answered 482.
        let call_id = request.headers.call_id().map(|c| c.as_str().to_owned());
        let from = request.headers.from();
        let (Ok(call_id), Ok(from), Some(to)) = (call_id, from, to) else {
            let response = self.response(request, 400, None);
            self.respond(now, key, response);
            return;
        };
        if self.calls.values().any(|d| {
            d.role == Role::Callee && d.call_id == call_id && d.remote_tag == from.tag && !d.ended
        }) {
            let response = self.response(request, 482, None);
            self.respond(now, key, response);
            return;
        }
        if let Some(only) = &self.config.only_user {
            let user = request.uri.as_sip().and_then(|u| u.user.clone());
            if user.as_deref() != Some(only.as_str()) {
                let response = self.response(request, 404, None);
                self.respond(now, key, response);
                return;
            }
        }
        let call = self.new_ref();
        let remote_target = first_contact(request).unwrap_or_else(|_| from.uri.clone());
        let route_set = request.headers.record_routes().unwrap_or_default();
        let mut local = to.clone();
        local.tag = None;
        let mut remote = from.clone();
        remote.tag = None;
        let dialog = Dialog {
            role: Role::Callee,
            tcp,
            state: State::Early,
            call_id,
            local_tag: self.token(),
            remote_tag: from.tag.clone(),
            local,
            remote,
            remote_target,
            route_set,
            local_cseq: (self.random() % 10_000) as u32 + 1,
            remote_cseq: request.headers.cseq().ok().map(|c| c.seq),
            peer: source,
            invite: None,
            invite_key: Some(key.clone()),
            cancel_pending: false,
            ack: None,
            ok: None,
            auth_tries: 0,
            ended: false,
        };
        self.calls.insert(call, dialog);
        if let Some(server) = self.servers.get_mut(key) {
            server.call = Some(call);
        }
        let trying = self.response(request, 100, None);
        self.respond(now, key, trying);
        self.events.push_back(UaEvent::Incoming {
            call,
            from: Box::new(from),
            to: Box::new(to),
            offer: (!request.body.is_empty()).then(|| request.body.clone()),
            user_agent: request.headers.get("User-Agent").map(str::to_owned),
            source,
        });
    }

    fn handle_bye(&mut self, now: Instant, key: &Key, request: &Request) {
        let Some(call) = self.dialog_of(request) else {
            let response = self.response(request, 481, None);
            self.respond(now, key, response);
            return;
        };
        if let Some(server) = self.servers.get_mut(key) {
            server.call = Some(call);
        }
        let response = self.response(request, 200, Some(call));
        self.respond(now, key, response);
        if let Some(d) = self.calls.get_mut(&call) {
            d.ok = None;
        }
        // Glare: both ends sent BYE; ours already ended the call.
        self.end(call, EndReason::RemoteBye);
    }

    fn handle_cancel(&mut self, now: Instant, key: &Key, request: &Request) {
        let invite_key = Key {
            method: Method::Invite,
            ..key.clone()
        };
        let target = self.servers.get(&invite_key).map(|s| {
            (
                s.call,
                s.transaction.state() == super::transaction::ServerState::Proceeding,
            )
        });
        let Some((call, unanswered)) = target else {
            let response = self.response(request, 481, None);
            self.respond(now, key, response);
            return;
        };
        let response = self.response(request, 200, call);
        self.respond(now, key, response);
        if unanswered {
            let invite = self.servers[&invite_key].transaction.request().clone();
            let terminated = self.response(&invite, 487, call);
            self.respond(now, &invite_key, terminated);
            if let Some(call) = call {
                if let Some(d) = self.calls.get_mut(&call) {
                    d.state = State::Ending;
                }
                self.end(call, EndReason::Cancelled);
            }
        }
    }

    fn handle_ack(&mut self, request: &Request) {
        let Some(call) = self.dialog_of(request) else {
            return;
        };
        let Some(d) = self.calls.get_mut(&call) else {
            return;
        };
        if d.ok.take().is_some() && d.state == State::Answered {
            d.state = State::Confirmed;
            self.events.push_back(UaEvent::Confirmed { call });
        }
    }

    // ---- incoming responses ----

    fn handle_response(&mut self, now: Instant, response: Response) {
        let Some(key) = Key::for_response(&response) else {
            return;
        };
        let Some(client) = self.clients.get_mut(&key) else {
            // A 2xx to an INVITE whose transaction is gone: ACK it again.
            if (200..300).contains(&response.status) {
                self.reack(&response);
            }
            return;
        };
        client.transaction.handle_response(now, response);
        self.drain_client(now, &key);
        self.collect_garbage();
    }

    fn drain_client(&mut self, now: Instant, key: &Key) {
        loop {
            let Some(client) = self.clients.get_mut(key) else {
                return;
            };
            if let Some(data) = client.transaction.poll_transmit() {
                let (to, tcp) = (client.to, client.tcp);
                self.transmits.push_back(Transmit { to, data, tcp });
                continue;
            }
            let Some(event) = client.transaction.poll_event() else {
                break;
            };
            let purpose = match &client.purpose {
                Purpose::Invite(c) => Purpose::Invite(*c),
                Purpose::Reinvite(c) => Purpose::Reinvite(*c),
                Purpose::Bye(c) => Purpose::Bye(*c),
                Purpose::Cancel => Purpose::Cancel,
                Purpose::Register(r) => Purpose::Register(*r),
            };
            let request = client.transaction.request().clone();
            match (purpose, event) {
                (Purpose::Invite(call), ClientEvent::Response(r)) => {
                    self.invite_response(now, call, &request, r)
                }
                (Purpose::Invite(call), ClientEvent::Timeout) => {
                    self.fail(call, 408, "no response to INVITE".into())
                }
                (Purpose::Reinvite(call), ClientEvent::Response(r)) => {
                    if (200..300).contains(&r.status) {
                        self.ack_2xx(call, &r);
                        self.events.push_back(UaEvent::Reanswered {
                            call,
                            body: r.body.clone(),
                        });
                    } else if r.status == 481 || r.status == 408 {
                        self.send_bye(now, call);
                        self.end(call, EndReason::Local);
                    }
                }
                (Purpose::Register(reg), event) => {
                    self.register_response(now, reg, &request, event)
                }
                // BYE and CANCEL: nothing more to do either way.
                _ => {}
            }
        }
        if self
            .clients
            .get(key)
            .is_some_and(|c| c.transaction.is_terminated())
        {
            self.clients.remove(key);
        }
    }

    fn invite_response(&mut self, now: Instant, call: CallRef, invite: &Request, r: Response) {
        let Some(d) = self.calls.get_mut(&call) else {
            return;
        };
        let status = r.status;
        if status > 100 && status < 200 {
            if let Ok(to) = r.headers.to()
                && to.tag.is_some()
            {
                d.remote_tag = to.tag;
            }
            if d.cancel_pending {
                d.cancel_pending = false;
                self.send_cancel(now, call);
                return;
            }
            if !d.ended {
                self.events.push_back(UaEvent::Progress {
                    call,
                    status,
                    reason: r.reason.clone(),
                    body: (!r.body.is_empty()).then(|| r.body.clone()),
                });
            }
            return;
        }
        if status == 100 {
            if d.cancel_pending {
                d.cancel_pending = false;
                self.send_cancel(now, call);
            } else if !d.ended {
                self.events.push_back(UaEvent::Progress {
                    call,
                    status,
                    reason: r.reason.clone(),
                    body: None,
                });
            }
            return;
        }
        let hung_up_early = d.ended && d.ack.is_none();
        if (200..300).contains(&status) && d.state != State::Early && !hung_up_early {
            let tag = r.headers.to().ok().and_then(|t| t.tag);
            if tag.is_some() && tag != d.remote_tag {
                // Another fork answered too (§13.2.2.4): a phone keeps one
                // call, so that dialog is acknowledged and ended at once.
                self.end_fork(now, call, &r);
            } else if d.ack.is_some() {
                // The 2xx again: our ACK was lost.
                self.reack(&r);
            }
            return;
        }
        if (200..300).contains(&status) {
            // The dialog as the 2xx sets it up (§12.1.2).
            let Ok(to) = r.headers.to() else {
                return;
            };
            d.remote_tag = to.tag.clone();
            if let Ok(contact) = first_contact_of(&r.headers) {
                d.remote_target = contact;
            }
            let mut routes = r.headers.record_routes().unwrap_or_default();
            routes.reverse();
            d.route_set = routes;
            let up = !d.ended && d.state == State::Early;
            self.ack_2xx(call, &r);
            if up {
                if let Some(d) = self.calls.get_mut(&call) {
                    d.state = State::Confirmed;
                }
                self.events.push_back(UaEvent::Answered {
                    call,
                    body: r.body.clone(),
                });
            } else {
                // Answered after we hung up: end it properly.
                self.send_bye(now, call);
            }
            return;
        }
        let (tries, ended) = (d.auth_tries, d.ended);
        if (status == 401 || status == 407) && tries == 0 && !ended {
            let retry = self.authorize(invite, &r);
            if let Some(retry) = retry {
                if let Some(d) = self.calls.get_mut(&call) {
                    d.auth_tries += 1;
                    d.local_cseq += 1;
                    d.invite = Some(retry.clone());
                }
                let to = self.calls[&call].peer;
                let key = self.send_request(now, retry, to, Purpose::Invite(call));
                if let Some(d) = self.calls.get_mut(&call) {
                    d.invite_key = key;
                }
                return;
            }
        }
        let reason = if (status == 401 || status == 407) && tries > 0 {
            "the password was rejected".to_owned()
        } else {
            r.reason.clone()
        };
        self.fail(call, status, reason);
    }

    fn register_response(
        &mut self,
        now: Instant,
        reg: RegRef,
        request: &Request,
        event: ClientEvent,
    ) {
        let response = match event {
            ClientEvent::Response(r) => r,
            ClientEvent::Timeout => {
                self.events.push_back(UaEvent::RegistrationFailed {
                    reg,
                    status: 408,
                    reason: "the registrar did not answer".into(),
                });
                return;
            }
        };
        let status = response.status;
        if status < 200 {
            return;
        }
        let Some(r) = self.registrations.get_mut(&reg) else {
            return;
        };
        if (200..300).contains(&status) {
            r.auth_tries = 0;
            if r.unregistering {
                self.registrations.remove(&reg);
                return;
            }
            // The expiry the registrar granted our contact.
            let granted = response
                .headers
                .contacts()
                .ok()
                .into_iter()
                .flatten()
                .find_map(|c| match c {
                    super::message::Contact::Address(a) => a.expires,
                    super::message::Contact::Wildcard => None,
                })
                .or_else(|| response.headers.expires().ok().flatten())
                .unwrap_or(r.expires);
            let granted = granted.max(1);
            // Refresh at half the time, as most phones do.
            r.refresh_at = Some(now + Duration::from_secs(u64::from(granted.div_ceil(2))));
            self.events.push_back(UaEvent::Registered {
                reg,
                expires: granted,
            });
            return;
        }
        let tries = r.auth_tries;
        r.auth_tries += 1;
        if (status == 401 || status == 407)
            && tries == 0
            && let Some(retry) = self.authorize(request, &response)
        {
            self.send_register(now, reg, Some(retry));
            return;
        }
        let reason = if (status == 401 || status == 407) && tries > 0 {
            "the registrar rejected the password".to_owned()
        } else {
            response.reason.clone()
        };
        self.events.push_back(UaEvent::RegistrationFailed {
            reg,
            status,
            reason,
        });
    }

    // ---- sending ----

    fn respond_invite(
        &mut self,
        now: Instant,
        call: CallRef,
        status: u16,
        body: Option<Vec<u8>>,
    ) -> Result<(), UaError> {
        let d = self.calls.get(&call).ok_or(UaError::NoSuchCall)?;
        if d.role != Role::Callee || d.state != State::Early {
            return Err(UaError::WrongState);
        }
        let key = d.invite_key.clone().ok_or(UaError::WrongState)?;
        let request = self
            .servers
            .get(&key)
            .ok_or(UaError::WrongState)?
            .transaction
            .request()
            .clone();
        let mut response = self.response(&request, status, Some(call));
        if status < 300 {
            response.headers.push(
                "Contact",
                self.contact_for(self.calls.get(&call).is_some_and(|d| d.tcp))
                    .to_string(),
            );
        }
        if let Some(body) = body {
            self.set_body_response(&mut response, body);
        }
        if (200..300).contains(&status) {
            let data = response.to_bytes();
            let t1 = self.config.timers.t1;
            if let Some(d) = self.calls.get_mut(&call) {
                d.state = State::Answered;
                d.ok = Some(PendingOk {
                    data,
                    next: now + t1,
                    interval: t1,
                    give_up: now + t1 * 64,
                });
            }
        }
        self.respond(now, &key, response);
        Ok(())
    }

    fn respond(&mut self, now: Instant, key: &Key, response: Response) {
        if let Some(server) = self.servers.get_mut(key) {
            let _ = server.transaction.respond(now, response);
        }
        self.drain_server(key);
    }

    fn drain_server(&mut self, key: &Key) {
        let Some(server) = self.servers.get_mut(key) else {
            return;
        };
        let (source, tcp) = (server.source, server.tcp);
        while let Some(data) = server.transaction.poll_transmit() {
            self.transmits.push_back(Transmit {
                to: source,
                data,
                tcp,
            });
        }
        while let Some(ServerEvent::AckTimeout) = server.transaction.poll_event() {}
    }

    fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        to: SocketAddr,
        purpose: Purpose,
    ) -> Option<Key> {
        let to = self.config.outbound_proxy.unwrap_or(to);
        let tcp = request
            .headers
            .top_via()
            .is_ok_and(|v| v.transport == Transport::Tcp);
        let transaction = ClientTransaction::new(now, request, tcp, self.config.timers)?;
        let key = transaction.key().clone();
        self.clients.insert(
            key.clone(),
            Client {
                transaction,
                to,
                tcp,
                purpose,
            },
        );
        self.drain_client(now, &key);
        Some(key)
    }

    fn send_bye(&mut self, now: Instant, call: CallRef) {
        let Some(d) = self.calls.get_mut(&call) else {
            return;
        };
        d.local_cseq += 1;
        d.ok = None;
        d.state = State::Ending;
        let seq = d.local_cseq;
        let branch = self.branch();
        let d = &self.calls[&call];
        let bye = in_dialog_request(&self.config, d, Method::Bye, seq, &branch);
        let to = self.destination(d);
        self.send_request(now, bye, to, Purpose::Bye(call));
    }

    /// CANCEL for our INVITE (§9.1): same Request-URI, Call-ID, From, To
    /// (without a tag), CSeq number and top Via as the INVITE.
    fn send_cancel(&mut self, now: Instant, call: CallRef) {
        let Some(d) = self.calls.get(&call) else {
            return;
        };
        let Some(invite) = &d.invite else {
            return;
        };
        let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
        for name in ["Via", "From", "To", "Call-ID", "Max-Forwards"] {
            if let Some(value) = invite.headers.get(name) {
                cancel.headers.push(name, value);
            }
        }
        if let Ok(cseq) = invite.headers.cseq() {
            cancel.headers.push("CSeq", format!("{} CANCEL", cseq.seq));
        }
        for route in invite.headers.get_all("Route") {
            cancel.headers.push("Route", route);
        }
        let to = d.peer;
        self.send_request(now, cancel, to, Purpose::Cancel);
    }

    fn send_register(&mut self, now: Instant, reg: RegRef, authorized: Option<Request>) {
        let contact = self.contact();
        let user_agent = self.config.user_agent.clone();
        let branch = self.branch();
        let local = self.config.local;
        let tcp = self.config.tcp;
        let Some(r) = self.registrations.get_mut(&reg) else {
            return;
        };
        r.cseq += 1;
        let request = match authorized {
            Some(mut request) => {
                request.headers.set("CSeq", format!("{} REGISTER", r.cseq));
                request
            }
            None => {
                let registrar_uri = Uri::Sip(SipUri::new(r.aor.host.clone()));
                let aor = NameAddr::new(Uri::Sip(r.aor.clone()));
                let expires = if r.unregistering { 0 } else { r.expires };
                Request::builder(Method::Register, registrar_uri)
                    .via(&via(local, &branch, tcp))
                    .max_forwards(70)
                    .from(&aor.clone().with_tag(r.local_tag.clone()))
                    .to(&aor)
                    .call_id(&CallId::new(&r.call_id).expect("our Call-IDs are words"))
                    .cseq(r.cseq)
                    .contact(&contact)
                    .header("Expires", expires.to_string())
                    .header("User-Agent", user_agent)
                    .build()
            }
        };
        let mut request = request;
        replace_top_via(&mut request, &via(local, &branch, tcp));
        let registrar = r.registrar;
        self.send_request(now, request, registrar, Purpose::Register(reg));
    }

    /// The request again with credentials for `challenge`'s realm, a new
    /// branch and the next CSeq; `None` without credentials.
    fn authorize(&mut self, request: &Request, challenge: &Response) -> Option<Request> {
        let (username, password) = self.config.credentials.clone()?;
        let (header, answer) = if challenge.status == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let challenge = Challenge::first_supported(challenge.headers.get_all(header))?;
        let uri = request.uri.to_string();
        let cnonce = format!("{:016x}", self.random());
        let credentials = challenge
            .respond(
                &DigestRequest {
                    method: request.method.as_str(),
                    uri: &uri,
                    body: &request.body,
                },
                &username,
                &password,
                &cnonce,
                1,
            )
            .ok()?;
        let mut retry = request.clone();
        retry.headers.set(answer, credentials.to_string());
        let cseq = request.headers.cseq().ok()?;
        retry.headers.set(
            "CSeq",
            format!("{} {}", cseq.seq + 1, request.method.as_str()),
        );
        let branch = self.branch();
        let tcp = request
            .headers
            .top_via()
            .is_ok_and(|v| v.transport == Transport::Tcp);
        replace_top_via(&mut retry, &via(self.config.local, &branch, tcp));
        Some(retry)
    }

    fn ack_2xx(&mut self, call: CallRef, ok: &Response) {
        let branch = self.branch();
        let Some(d) = self.calls.get(&call) else {
            return;
        };
        let seq = ok.headers.cseq().map(|c| c.seq).unwrap_or(d.local_cseq);
        let mut ack = in_dialog_request(&self.config, d, Method::Ack, seq, &branch);
        // The ACK carries the INVITE's credentials too (§22.1).
        if let Some(invite) = &d.invite {
            for name in ["Authorization", "Proxy-Authorization"] {
                if let Some(v) = invite.headers.get(name) {
                    ack.headers.push(name, v);
                }
            }
        }
        let to = self.config.outbound_proxy.unwrap_or(self.destination(d));
        let data = ack.to_bytes();
        let tcp = d.tcp;
        self.transmits.push_back(Transmit {
            to,
            data: data.clone(),
            tcp,
        });
        if let Some(d) = self.calls.get_mut(&call) {
            d.ack = Some((to, data));
        }
    }

    /// ACK and BYE for the dialog a second fork's 2xx set up.
    fn end_fork(&mut self, now: Instant, call: CallRef, ok: &Response) {
        let Some(d) = self.calls.get(&call) else {
            return;
        };
        let mut fork = Dialog {
            role: d.role,
            tcp: d.tcp,
            state: State::Confirmed,
            call_id: d.call_id.clone(),
            local_tag: d.local_tag.clone(),
            remote_tag: ok.headers.to().ok().and_then(|t| t.tag),
            local: d.local.clone(),
            remote: d.remote.clone(),
            remote_target: first_contact_of(&ok.headers)
                .unwrap_or_else(|_| d.remote_target.clone()),
            route_set: {
                let mut routes = ok.headers.record_routes().unwrap_or_default();
                routes.reverse();
                routes
            },
            local_cseq: d.local_cseq,
            remote_cseq: None,
            peer: d.peer,
            invite: None,
            invite_key: None,
            cancel_pending: false,
            ack: None,
            ok: None,
            auth_tries: 0,
            ended: true,
        };
        let seq = ok.headers.cseq().map(|c| c.seq).unwrap_or(fork.local_cseq);
        let branch = self.branch();
        let ack = in_dialog_request(&self.config, &fork, Method::Ack, seq, &branch);
        let to = self.destination(&fork);
        self.transmits.push_back(Transmit {
            to,
            data: ack.to_bytes(),
            tcp: fork.tcp,
        });
        fork.local_cseq = seq + 1;
        let branch = self.branch();
        let bye = in_dialog_request(&self.config, &fork, Method::Bye, fork.local_cseq, &branch);
        // Its transaction belongs to no call of ours: nothing to report.
        let fork_ref = self.new_ref();
        self.calls.insert(fork_ref, fork);
        self.send_request(now, bye, to, Purpose::Bye(fork_ref));
    }

    fn reack(&mut self, ok: &Response) {
        let Some(call_id) = ok.headers.call_id().ok() else {
            return;
        };
        let tag = ok.headers.to().ok().and_then(|t| t.tag);
        let found = self.calls.values().find(|d| {
            d.role == Role::Caller && d.call_id == call_id.as_str() && d.remote_tag == tag
        });
        if let Some(d) = found
            && let Some((to, data)) = d.ack.clone()
        {
            let tcp = d.tcp;
            self.transmits.push_back(Transmit { to, data, tcp });
        }
    }

    fn fail(&mut self, call: CallRef, status: u16, reason: String) {
        if let Some(d) = self.calls.get_mut(&call) {
            let was_ended = d.ended;
            d.state = State::Ending;
            d.ended = true;
            if !was_ended {
                self.events.push_back(UaEvent::Failed {
                    call,
                    status,
                    reason,
                });
            }
        }
    }

    fn end(&mut self, call: CallRef, reason: EndReason) {
        if let Some(d) = self.calls.get_mut(&call) {
            d.state = State::Ending;
            if !d.ended {
                d.ended = true;
                self.events.push_back(UaEvent::Ended { call, reason });
            }
        }
    }

    /// Forgets calls that ended and whose transactions are gone.
    fn collect_garbage(&mut self) {
        self.servers.retain(|_, s| !s.transaction.is_terminated());
        let live: Vec<CallRef> = self
            .clients
            .values()
            .filter_map(|c| match c.purpose {
                Purpose::Invite(call) | Purpose::Reinvite(call) | Purpose::Bye(call) => Some(call),
                _ => None,
            })
            .chain(self.servers.values().filter_map(|s| s.call))
            .collect();
        self.calls
            .retain(|call, d| !d.ended || d.ok.is_some() || live.contains(call));
    }

    // ---- building messages ----

    fn response(&mut self, request: &Request, status: u16, call: Option<CallRef>) -> Response {
        let mut response = Response::for_request(request, status, reason_phrase(status));
        if status > 100 {
            let tag = call
                .and_then(|c| self.calls.get(&c))
                .map(|d| d.local_tag.clone())
                .unwrap_or_else(|| self.token());
            let _ = response.add_to_tag(&tag);
        }
        if status == 405 || (request.method == Method::Options && status == 200) {
            response
                .headers
                .push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
        }
        if (200..300).contains(&status) && request.method == Method::Invite {
            for rr in request.headers.get_all("Record-Route") {
                response.headers.push("Record-Route", rr);
            }
        }
        response
            .headers
            .push("Server", self.config.user_agent.clone());
        response
    }

    fn set_body(&self, request: &mut Request, body: Vec<u8>) {
        if !body.is_empty() {
            request
                .headers
                .set("Content-Type", ContentType::sdp().to_string());
        }
        request.body = body;
    }

    fn set_body_response(&self, response: &mut Response, body: Vec<u8>) {
        if !body.is_empty() {
            response
                .headers
                .set("Content-Type", ContentType::sdp().to_string());
        }
        response.body = body;
    }

    /// Where a request in the dialog goes.
    fn destination(&self, d: &Dialog) -> SocketAddr {
        if let Some(proxy) = self.config.outbound_proxy {
            return proxy;
        }
        let first = d
            .route_set
            .first()
            .map(|r| &r.uri)
            .unwrap_or(&d.remote_target);
        first
            .as_sip()
            .and_then(|u| match &u.host {
                Host::Ipv4(ip) => Some(SocketAddr::new((*ip).into(), u.port.unwrap_or(5060))),
                Host::Ipv6(ip) => Some(SocketAddr::new((*ip).into(), u.port.unwrap_or(5060))),
                Host::Domain(_) => None,
            })
            .unwrap_or(d.peer)
    }

    fn dialog_of(&self, request: &Request) -> Option<CallRef> {
        let call_id = request.headers.call_id().ok()?;
        let from_tag = request.headers.from().ok()?.tag;
        let to_tag = request.headers.to().ok()?.tag?;
        self.calls
            .iter()
            .find(|(_, d)| {
                d.call_id == call_id.as_str()
                    && d.local_tag == to_tag
                    && (d.remote_tag == from_tag || d.remote_tag.is_none())
            })
            .map(|(&c, _)| c)
    }

    fn check_remote_cseq(&mut self, call: CallRef, request: &Request) -> bool {
        let Ok(cseq) = request.headers.cseq() else {
            return false;
        };
        let Some(d) = self.calls.get_mut(&call) else {
            return false;
        };
        if d.remote_cseq.is_some_and(|last| cseq.seq <= last) {
            return false;
        }
        d.remote_cseq = Some(cseq.seq);
        true
    }

    fn our_address(&self) -> NameAddr {
        let host = match &self.config.domain {
            Some(domain) => Host::parse(domain).unwrap_or(ip_host(self.config.local.ip())),
            None => ip_host(self.config.local.ip()),
        };
        let mut uri = SipUri::new(host).with_user(&self.config.user);
        if self.config.domain.is_none() {
            uri = uri.with_port(self.config.local.port());
        }
        let addr = NameAddr::new(Uri::Sip(uri));
        match &self.config.display_name {
            Some(name) => addr.with_display_name(name.clone()),
            None => addr,
        }
    }

    fn contact(&self) -> NameAddr {
        self.contact_for(self.config.tcp)
    }

    /// Our Contact, with `;transport=tcp` for a dialog over TCP.
    fn contact_for(&self, tcp: bool) -> NameAddr {
        let uri = SipUri::new(ip_host(self.config.local.ip()))
            .with_user(&self.config.user)
            .with_port(self.config.local.port());
        let uri = if tcp {
            uri.with_param("transport", Some("tcp"))
        } else {
            uri
        };
        NameAddr::new(Uri::Sip(uri))
    }

    fn new_ref(&mut self) -> CallRef {
        let r = CallRef(self.next_ref);
        self.next_ref += 1;
        r
    }

    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix(self.rng)
    }

    fn token(&mut self) -> String {
        format!("{:012x}", self.random() >> 16)
    }

    fn branch(&mut self) -> String {
        format!("z9hG4bK{:016x}", self.random())
    }
}

/// A request within dialog `d` (§12.2.1.1).
fn in_dialog_request(
    config: &UaConfig,
    d: &Dialog,
    method: Method,
    seq: u32,
    branch: &str,
) -> Request {
    let from = d.local.clone().with_tag(d.local_tag.clone());
    let mut to = d.remote.clone();
    to.tag = d.remote_tag.clone();
    let call_id = CallId::new(&d.call_id)
        .unwrap_or_else(|_| CallId::new("invalid").expect("a word is a Call-ID"));
    let mut builder = Request::builder(method.clone(), d.remote_target.clone())
        .via(&via(config.local, branch, d.tcp))
        .max_forwards(70)
        .from(&from)
        .to(&to)
        .call_id(&call_id)
        .cseq(seq);
    for route in &d.route_set {
        builder = builder.route(route);
    }
    if method != Method::Ack {
        builder = builder.header("User-Agent", config.user_agent.clone());
    }
    builder.build()
}

fn ip_host(ip: std::net::IpAddr) -> Host {
    match ip {
        std::net::IpAddr::V4(v4) => Host::Ipv4(v4),
        std::net::IpAddr::V6(v6) => Host::Ipv6(v6),
    }
}

fn via(local: SocketAddr, branch: &str, tcp: bool) -> Via {
    let transport = if tcp { Transport::Tcp } else { Transport::Udp };
    Via::new(transport, ip_host(local.ip()), Some(local.port()))
        .with_branch(branch)
        .with_rport()
}

fn replace_top_via(request: &mut Request, top: &Via) {
    let rest: Vec<String> = request
        .headers
        .get_all("Via")
        .skip(1)
        .map(str::to_owned)
        .collect();
    request.headers.remove("Via");
    for v in rest.iter().rev() {
        request.headers.push_front("Via", v.clone());
    }
    request.headers.push_front("Via", top.to_string());
}

fn first_contact(request: &Request) -> Result<Uri, ()> {
    first_contact_of(&request.headers)
}

fn first_contact_of(headers: &super::message::Headers) -> Result<Uri, ()> {
    headers
        .contacts()
        .map_err(|_| ())?
        .into_iter()
        .find_map(|c| match c {
            super::message::Contact::Address(a) => Some(a.uri),
            super::message::Contact::Wildcard => None,
        })
        .ok_or(())
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
