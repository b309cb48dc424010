//! Scenario tests of the SIP user agent: two (or three) agents exchanging
//! datagrams over the seeded network emulator on a virtual clock. Calls
//! made, answered, refused, cancelled, hung up from both ends at once, and
//! completed through heavy loss by retransmission.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipphone_proto::sip::message::{Message, SipUri, StreamItem, Uri};
use ipphone_proto::sip::transaction::Timers;
use ipphone_proto::sip::ua::{CallRef, EndReason, UaConfig, UaEvent, UserAgent};
use netsim::{Link, LinkConfig};

const OFFER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const ANSWER: &[u8] = b"v=0\r\no=- 2 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, n], 5060))
}

fn agent(n: u8, user: &str) -> UserAgent {
    UserAgent::new(UaConfig {
        local: addr(n),
        user: user.into(),
        display_name: None,
        domain: None,
        only_user: None,
        user_agent: "ipphone-test".into(),
        tcp: false,
        outbound_proxy: None,
        credentials: None,
        timers: Timers::default(),
        seed: u64::from(n),
    })
}

fn uri_of(n: u8, user: &str) -> Uri {
    Uri::Sip(SipUri::parse(&format!("sip:{user}@127.0.0.{n}:5060")).unwrap())
}

/// Agents on one emulated network: every datagram goes over its own
/// direction's link (same configuration for all).
struct Net {
    agents: Vec<(u8, UserAgent)>,
    links: Vec<((u8, u8), Link)>,
    config: LinkConfig,
    seed: u64,
    now: Instant,
    events: Vec<(u8, UaEvent)>,
    sent: usize,
}

impl Net {
    fn new(agents: Vec<(u8, UserAgent)>, config: LinkConfig, seed: u64) -> Self {
        Net {
            agents,
            links: Vec::new(),
            config,
            seed,
            now: Instant::now(),
            events: Vec::new(),
            sent: 0,
        }
    }

    fn agent(&mut self, n: u8) -> &mut UserAgent {
        &mut self.agents.iter_mut().find(|(m, _)| *m == n).unwrap().1
    }

    fn agent_at(&mut self, n: u8) -> Option<&mut UserAgent> {
        self.agents
            .iter_mut()
            .find(|(m, _)| *m == n)
            .map(|(_, a)| a)
    }

    fn link(&mut self, from: u8, to: u8) -> &mut Link {
        if !self.links.iter().any(|(k, _)| *k == (from, to)) {
            let seed = self.seed ^ (u64::from(from) << 8 | u64::from(to));
            self.links
                .push(((from, to), Link::new(self.config.clone(), seed).unwrap()));
        }
        &mut self
            .links
            .iter_mut()
            .find(|(k, _)| *k == (from, to))
            .unwrap()
            .1
    }

    /// Runs for `span` of virtual time, in 1 ms steps.
    fn run(&mut self, span: Duration) {
        let end = self.now + span;
        while self.now < end {
            self.step();
            self.now += Duration::from_millis(1);
        }
    }

    /// Runs until `done` holds for the events so far, or fails after `limit`.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&[(u8, UaEvent)]) -> bool) {
        let end = self.now + limit;
        while !done(&self.events) {
            assert!(self.now < end, "not done in {limit:?}: {:#?}", self.events);
            self.step();
            self.now += Duration::from_millis(1);
        }
    }

    fn step(&mut self) {
        let now = self.now;
        let ids: Vec<u8> = self.agents.iter().map(|(n, _)| *n).collect();
        for &n in &ids {
            let agent = self.agent(n);
            if agent.poll_timeout().is_some_and(|t| t <= now) {
                agent.handle_timeout(now);
            }
            let out: Vec<_> = std::iter::from_fn(|| agent.poll_transmit()).collect();
            let events: Vec<_> = std::iter::from_fn(|| agent.poll_event()).collect();
            self.events.extend(events.into_iter().map(|e| (n, e)));
            for t in out {
                let to = t.to.ip().to_string();
                let to: u8 = to.rsplit('.').next().unwrap().parse().unwrap();
                self.sent += 1;
                assert!(self.sent < 10_000, "a datagram storm");
                let mut data = t.data;
                // A stream's messages are marked, so the far end frames them.
                if t.tcp {
                    data.insert(0, b'T');
                }
                self.link(n, to).send(now, data);
            }
        }
        let keys: Vec<(u8, u8)> = self.links.iter().map(|(k, _)| *k).collect();
        for (from, to) in keys {
            while let Some(d) = self.link(from, to).poll_deliver(now) {
                // Nobody at that address: the datagram is lost.
                if let Some(agent) = self.agent_at(to) {
                    match d.packet.split_first() {
                        Some((b'T', message)) => {
                            let item = StreamItem::Message(Message::parse(message).unwrap());
                            agent.handle_stream_item(now, addr(from), item);
                        }
                        _ => agent.handle_datagram(now, addr(from), &d.packet),
                    }
                }
            }
        }
    }

    fn incoming(&self, n: u8) -> Option<CallRef> {
        self.events.iter().find_map(|(m, e)| match e {
            UaEvent::Incoming { call, .. } if *m == n => Some(*call),
            _ => None,
        })
    }

    fn has(&self, n: u8, pred: impl Fn(&UaEvent) -> bool) -> bool {
        self.events.iter().any(|(m, e)| *m == n && pred(e))
    }
}

fn has(events: &[(u8, UaEvent)], n: u8, pred: impl Fn(&UaEvent) -> bool) -> bool {
    events.iter().any(|(m, e)| *m == n && pred(e))
}

/// Alice (1) calls Bob (2), who rings and answers; both hear of it; Alice
/// hangs up and Bob hears the BYE. A 180 is not retransmitted (no 100rel),
/// so on a lossy path Alice may never hear the ringing; the rest she must.
fn call_and_hang_up(config: LinkConfig, seed: u64) {
    let lossy = config.loss > 0.0;
    let mut net = Net::new(
        vec![(1, agent(1, "alice")), (2, agent(2, "bob"))],
        config,
        seed,
    );
    let now = net.now;
    let call = net
        .agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    net.run_until(Duration::from_secs(20), |e| {
        e.iter()
            .any(|(n, e)| *n == 2 && matches!(e, UaEvent::Incoming { .. }))
    });
    let incoming = net.incoming(2).unwrap();
    assert!(net.has(
        2,
        |e| matches!(e, UaEvent::Incoming { offer: Some(o), .. } if o == OFFER)
    ));
    let now = net.now;
    net.agent(2).ring(now, incoming).unwrap();
    if lossy {
        net.run(Duration::from_secs(1));
    } else {
        net.run_until(Duration::from_secs(20), |e| {
            has(e, 1, |e| matches!(e, UaEvent::Progress { status: 180, .. }))
        });
    }
    let now = net.now;
    net.agent(2).accept(now, incoming, ANSWER.to_vec()).unwrap();
    net.run_until(Duration::from_secs(40), |e| {
        has(
            e,
            1,
            |e| matches!(e, UaEvent::Answered { body, .. } if body == ANSWER),
        ) && has(e, 2, |e| matches!(e, UaEvent::Confirmed { .. }))
    });
    net.run(Duration::from_secs(2));
    let now = net.now;
    net.agent(1).hangup(now, call).unwrap();
    net.run_until(Duration::from_secs(40), |e| {
        has(e, 2, |e| {
            matches!(
                e,
                UaEvent::Ended {
                    reason: EndReason::RemoteBye,
                    ..
                }
            )
        })
    });
    assert!(
        net.has(1, |e| matches!(
            e,
            UaEvent::Ended {
                reason: EndReason::Local,
                ..
            }
        )),
        "{:#?}",
        net.events
    );
    // Everything settles: no transaction or retransmission left.
    net.run(Duration::from_secs(40));
    assert!(net.agent(1).is_idle());
    assert!(net.agent(2).is_idle());
    assert!(!net.has(1, |e| matches!(e, UaEvent::Failed { .. })));
}

#[test]
fn a_call_on_a_clean_path() {
    call_and_hang_up(LinkConfig::with_delay(Duration::from_millis(5)), 1);
}

#[test]
fn a_call_through_thirty_percent_loss_completes_by_retransmission() {
    for seed in 1..=5 {
        call_and_hang_up(
            LinkConfig {
                delay: Duration::from_millis(20),
                loss: 0.3,
                ..LinkConfig::default()
            },
            seed,
        );
    }
}

#[test]
fn a_refused_call_reports_the_status() {
    let mut net = Net::new(
        vec![(1, agent(1, "alice")), (2, agent(2, "bob"))],
        LinkConfig::with_delay(Duration::from_millis(5)),
        7,
    );
    let now = net.now;
    net.agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Incoming { .. }))
    });
    let incoming = net.incoming(2).unwrap();
    let now = net.now;
    net.agent(2).reject(now, incoming, 486).unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 1, |e| matches!(e, UaEvent::Failed { status: 486, .. }))
    });
    net.run(Duration::from_secs(40));
    assert!(net.agent(1).is_idle() && net.agent(2).is_idle());
}

#[test]
fn hanging_up_while_it_rings_cancels() {
    let mut net = Net::new(
        vec![(1, agent(1, "alice")), (2, agent(2, "bob"))],
        LinkConfig::with_delay(Duration::from_millis(5)),
        3,
    );
    let now = net.now;
    let call = net
        .agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Incoming { .. }))
    });
    let incoming = net.incoming(2).unwrap();
    let now = net.now;
    net.agent(2).ring(now, incoming).unwrap();
    net.run(Duration::from_millis(100));
    let now = net.now;
    net.agent(1).hangup(now, call).unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| {
            matches!(
                e,
                UaEvent::Ended {
                    reason: EndReason::Cancelled,
                    ..
                }
            )
        })
    });
    // Too late to answer now.
    let now = net.now;
    assert!(net.agent(2).accept(now, incoming, ANSWER.to_vec()).is_err());
    net.run(Duration::from_secs(40));
    assert!(net.agent(1).is_idle() && net.agent(2).is_idle());
    assert!(!net.has(1, |e| matches!(e, UaEvent::Answered { .. })));
}

#[test]
fn hanging_up_before_any_answer_waits_for_a_provisional_to_cancel() {
    let mut net = Net::new(
        vec![(1, agent(1, "alice")), (2, agent(2, "bob"))],
        LinkConfig::with_delay(Duration::from_millis(50)),
        4,
    );
    let now = net.now;
    let call = net
        .agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    // Hang up at once: nothing heard yet, so no CANCEL may go (§9.1).
    net.agent(1).hangup(now, call).unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| {
            matches!(
                e,
                UaEvent::Ended {
                    reason: EndReason::Cancelled,
                    ..
                }
            )
        })
    });
    net.run(Duration::from_secs(40));
    assert!(net.agent(1).is_idle() && net.agent(2).is_idle());
}

#[test]
fn both_ends_hanging_up_at_once_is_no_error() {
    let mut net = Net::new(
        vec![(1, agent(1, "alice")), (2, agent(2, "bob"))],
        LinkConfig::with_delay(Duration::from_millis(30)),
        5,
    );
    let now = net.now;
    let call = net
        .agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Incoming { .. }))
    });
    let incoming = net.incoming(2).unwrap();
    let now = net.now;
    net.agent(2).accept(now, incoming, ANSWER.to_vec()).unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Confirmed { .. }))
    });
    let now = net.now;
    net.agent(1).hangup(now, call).unwrap();
    net.agent(2).hangup(now, incoming).unwrap();
    net.run(Duration::from_secs(40));
    for n in [1, 2] {
        let ended = net
            .events
            .iter()
            .filter(|(m, e)| *m == n && matches!(e, UaEvent::Ended { .. }))
            .count();
        assert_eq!(ended, 1, "agent {n}: {:#?}", net.events);
        assert!(net.agent(n).is_idle());
    }
}

#[test]
fn a_second_caller_finds_the_phone_busy() {
    let mut net = Net::new(
        vec![
            (1, agent(1, "alice")),
            (2, agent(2, "bob")),
            (3, agent(3, "carol")),
        ],
        LinkConfig::with_delay(Duration::from_millis(5)),
        6,
    );
    let now = net.now;
    net.agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Incoming { .. }))
    });
    let first = net.incoming(2).unwrap();
    let now = net.now;
    net.agent(2).accept(now, first, ANSWER.to_vec()).unwrap();
    net.run(Duration::from_millis(200));
    let now = net.now;
    net.agent(3)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    // Bob's phone takes one call at a time: the second gets 486.
    net.run_until(Duration::from_secs(5), |e| {
        e.iter()
            .filter(|(n, e)| *n == 2 && matches!(e, UaEvent::Incoming { .. }))
            .count()
            == 2
    });
    let second = net
        .events
        .iter()
        .filter_map(|(n, e)| match e {
            UaEvent::Incoming { call, .. } if *n == 2 => Some(*call),
            _ => None,
        })
        .nth(1)
        .unwrap();
    let now = net.now;
    assert!(net.agent(2).busy());
    net.agent(2).reject(now, second, 486).unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 3, |e| matches!(e, UaEvent::Failed { status: 486, .. }))
    });
    // The first call is untouched.
    assert!(!net.has(1, |e| matches!(e, UaEvent::Ended { .. })));
    assert!(net.has(2, |e| matches!(e, UaEvent::Confirmed { .. })));
}

#[test]
fn nobody_there_times_out_after_64_t1() {
    let mut net = Net::new(
        vec![(1, agent(1, "alice"))],
        LinkConfig::with_delay(Duration::from_millis(5)),
        8,
    );
    let now = net.now;
    // 127.0.0.9 has no agent: the link delivers to nobody.
    let start = net.now;
    net.agent(1)
        .dial(now, uri_of(9, "ghost"), addr(9), OFFER.to_vec());
    net.run_until(Duration::from_secs(40), |e| {
        has(e, 1, |e| matches!(e, UaEvent::Failed { status: 408, .. }))
    });
    let took = net.now - start;
    assert!(took >= Duration::from_secs(32) && took < Duration::from_secs(33));
    // INVITE at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
    assert_eq!(net.sent, 7);
}

#[test]
fn garbage_gets_no_call_and_a_malformed_request_a_400() {
    let mut bob = agent(2, "bob");
    let now = Instant::now();
    bob.handle_datagram(now, addr(1), b"\x00\x01garbage\xff");
    bob.handle_datagram(
        now,
        addr(1),
        b"INVITE sip:bob@127.0.0.2 SIP/2.0\r\n\
          Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n\
          From: <sip:a@127.0.0.1>;tag=1\r\n\
          To: <sip:bob@127.0.0.2>\r\n\
          Call-ID: x\r\n\
          CSeq: 1 INVITE\r\n\
          Max-Forwards: not-a-number\r\n\
          Content-Length: 0\r\n\r\n",
    );
    let sent: Vec<_> = std::iter::from_fn(|| bob.poll_transmit()).collect();
    assert_eq!(sent.len(), 1, "one 400, nothing for the garbage");
    assert_eq!(sent[0].to, addr(1));
    match Message::parse(&sent[0].data).unwrap() {
        Message::Response(r) => assert_eq!(r.status, 400),
        Message::Request(_) => panic!("a request"),
    }
    let events: Vec<_> = std::iter::from_fn(|| bob.poll_event()).collect();
    assert!(
        events
            .iter()
            .all(|e| matches!(e, UaEvent::Malformed { .. }))
    );
    assert!(!bob.busy());
}

#[test]
fn an_answer_crossing_our_cancel_is_acknowledged_and_hung_up() {
    let mut net = Net::new(
        vec![(1, agent(1, "alice")), (2, agent(2, "bob"))],
        LinkConfig::with_delay(Duration::from_millis(30)),
        9,
    );
    let now = net.now;
    let call = net
        .agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Incoming { .. }))
    });
    let incoming = net.incoming(2).unwrap();
    let now = net.now;
    net.agent(2).ring(now, incoming).unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 1, |e| matches!(e, UaEvent::Progress { .. }))
    });
    // Alice gives up as Bob picks up: the CANCEL and the 200 cross.
    let now = net.now;
    net.agent(1).hangup(now, call).unwrap();
    net.agent(2).accept(now, incoming, ANSWER.to_vec()).unwrap();
    net.run(Duration::from_secs(40));
    // Bob's call was answered, so the CANCEL came too late for it; Alice
    // acknowledged the 200 and hung up with a BYE.
    assert!(net.has(2, |e| matches!(e, UaEvent::Confirmed { .. })));
    assert!(net.has(2, |e| matches!(
        e,
        UaEvent::Ended {
            reason: EndReason::RemoteBye,
            ..
        }
    )));
    assert!(!net.has(1, |e| matches!(e, UaEvent::Answered { .. })));
    assert!(net.agent(1).is_idle() && net.agent(2).is_idle());
}

#[test]
fn a_second_fork_answering_is_acknowledged_and_hung_up() {
    use ipphone_proto::sip::message::{Method, Response};
    let mut alice = agent(1, "alice");
    let now = Instant::now();
    alice.dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    let invite = match Message::parse(&alice.poll_transmit().unwrap().data).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not the INVITE"),
    };
    // A forking proxy: two phones answer, from 127.0.0.2 and 127.0.0.3.
    let answer = |tag: &str, n: u8| {
        let mut ok = Response::for_request(&invite, 200, "OK");
        ok.add_to_tag(tag).unwrap();
        ok.headers
            .push("Contact", format!("<sip:phone@127.0.0.{n}:5060>"));
        ok.headers.set("Content-Type", "application/sdp");
        ok.body = ANSWER.to_vec();
        ok.to_bytes()
    };
    alice.handle_datagram(now, addr(2), &answer("first", 2));
    alice.handle_datagram(now, addr(2), &answer("second", 3));
    let sent: Vec<_> = std::iter::from_fn(|| alice.poll_transmit())
        .map(|t| match Message::parse(&t.data).unwrap() {
            Message::Request(r) => (
                t.to,
                r.method,
                r.headers.to().unwrap().tag.unwrap_or_default(),
            ),
            Message::Response(_) => panic!("a response"),
        })
        .collect();
    assert_eq!(
        sent,
        vec![
            (addr(2), Method::Ack, "first".to_owned()),
            (addr(3), Method::Ack, "second".to_owned()),
            (addr(3), Method::Bye, "second".to_owned()),
        ]
    );
    let events: Vec<_> = std::iter::from_fn(|| alice.poll_event()).collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, UaEvent::Answered { .. }))
            .count(),
        1,
        "{events:?}"
    );
    assert!(alice.busy());
}

#[test]
fn a_reoffer_is_answered_and_the_call_goes_on() {
    let mut net = Net::new(
        vec![(1, agent(1, "alice")), (2, agent(2, "bob"))],
        LinkConfig::with_delay(Duration::from_millis(10)),
        10,
    );
    let now = net.now;
    let call = net
        .agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Incoming { .. }))
    });
    let incoming = net.incoming(2).unwrap();
    let now = net.now;
    net.agent(2).accept(now, incoming, ANSWER.to_vec()).unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Confirmed { .. }))
    });
    // Alice puts Bob on hold, Bob's phone answers the new offer.
    let hold = [OFFER, b"a=sendonly\r\n"].concat();
    let now = net.now;
    net.agent(1).reoffer(now, call, hold.clone()).unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(
            e,
            2,
            |e| matches!(e, UaEvent::Reoffer { offer, .. } if *offer == hold),
        )
    });
    let now = net.now;
    let held = [ANSWER, b"a=recvonly\r\n"].concat();
    net.agent(2)
        .accept_reoffer(now, incoming, held.clone())
        .unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(
            e,
            1,
            |e| matches!(e, UaEvent::Reanswered { body, .. } if *body == held),
        )
    });
    // Nothing more is resent once the ACK is in, and the call is still up.
    net.run(Duration::from_secs(10));
    let sent = net.sent;
    net.run(Duration::from_secs(10));
    assert_eq!(net.sent, sent, "retransmissions after the re-INVITE's ACK");
    assert!(!net.has(1, |e| matches!(e, UaEvent::Ended { .. })));
    assert!(!net.has(2, |e| matches!(e, UaEvent::Ended { .. })));
}

#[test]
fn over_tcp_nothing_is_retransmitted() {
    let mut alice = agent(1, "alice");
    let mut bob = agent(2, "bob");
    let tcp = |a: &mut UserAgent| {
        let mut config = a.config().clone();
        config.tcp = true;
        *a = UserAgent::new(config);
    };
    tcp(&mut alice);
    tcp(&mut bob);
    let mut net = Net::new(
        vec![(1, alice), (2, bob)],
        LinkConfig::with_delay(Duration::from_millis(600)),
        11,
    );
    let now = net.now;
    let call = net
        .agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Incoming { .. }))
    });
    let incoming = net.incoming(2).unwrap();
    let now = net.now;
    net.agent(2).accept(now, incoming, ANSWER.to_vec()).unwrap();
    net.run_until(Duration::from_secs(10), |e| {
        has(e, 1, |e| matches!(e, UaEvent::Answered { .. }))
    });
    let now = net.now;
    net.agent(1).hangup(now, call).unwrap();
    net.run(Duration::from_secs(40));
    // INVITE, 100, 200, ACK, BYE, 200 -- and the 2xx resent once while the
    // ACK crossed a 1.2 s round trip (the UA core resends 2xx on any
    // transport, RFC 3261 13.3.1.4); no transaction retransmits, though
    // T1 is far below the round trip.
    assert!(net.sent <= 8, "{} messages", net.sent);
    assert!(net.has(2, |e| matches!(e, UaEvent::Ended { .. })));
    assert!(net.agent(1).is_idle() && net.agent(2).is_idle());
}

#[test]
fn a_hung_up_call_settles_at_once_though_its_transactions_linger() {
    let mut net = Net::new(
        vec![(1, agent(1, "alice")), (2, agent(2, "bob"))],
        LinkConfig::with_delay(Duration::from_millis(5)),
        12,
    );
    let now = net.now;
    let call = net
        .agent(1)
        .dial(now, uri_of(2, "bob"), addr(2), OFFER.to_vec());
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Incoming { .. }))
    });
    let incoming = net.incoming(2).unwrap();
    let now = net.now;
    net.agent(2).accept(now, incoming, ANSWER.to_vec()).unwrap();
    net.run_until(Duration::from_secs(5), |e| {
        has(e, 2, |e| matches!(e, UaEvent::Confirmed { .. }))
    });
    let now = net.now;
    net.agent(1).hangup(now, call).unwrap();
    assert!(!net.agent(1).is_settled(), "the BYE is not answered yet");
    net.run(Duration::from_millis(100));
    // The BYE was answered: settled, while timer K still runs.
    assert!(net.agent(1).is_settled() && net.agent(2).is_settled());
    assert!(!net.agent(1).is_idle());
}

#[test]
fn a_flood_of_requests_is_answered_without_growing_state() {
    use ipphone_proto::sip::ua::MAX_SERVER_TRANSACTIONS;
    let mut bob = agent(2, "bob");
    let now = Instant::now();
    let mut unavailable = 0;
    for n in 0..MAX_SERVER_TRANSACTIONS + 200 {
        let options = format!(
            "OPTIONS sip:bob@127.0.0.2 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKflood{n}\r\n\
             From: <sip:a@127.0.0.1>;tag=f{n}\r\nTo: <sip:bob@127.0.0.2>\r\n\
             Call-ID: flood{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        bob.handle_datagram(now, addr(1), options.as_bytes());
        while let Some(t) = bob.poll_transmit() {
            if let Message::Response(r) = Message::parse(&t.data).unwrap()
                && r.status == 503
            {
                unavailable += 1;
            }
        }
    }
    // The first ones are answered and remembered; the rest get 503, and
    // once the remembered ones expire, there is room again.
    assert_eq!(unavailable, 200);
    bob.handle_timeout(now + Duration::from_secs(40));
    assert!(bob.is_idle());
}
