//! SIP's transports for the phone's event loop: one UDP socket and, on the
//! same port, a TCP listener with its connections (RFC 3261 §18). Datagrams
//! and framed stream messages come out of [`SipNet::poll`]; the user
//! agent's transmits go in through [`SipNet::send`], over the connection
//! with their destination (opened when there is none).
//!
//! Everything is non-blocking but opening a connection, which waits at most
//! [`CONNECT_TIMEOUT`], and [`SipNet::wait`], where the loop sleeps until a
//! socket has something, its waker is woken or its next deadline comes.
//! Connections and their buffers are bounded: a peer that floods or stalls
//! is dropped, not buffered without end.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use proto::sip::message::{StreamFramer, StreamItem};
use proto::sip::ua::Transmit;
use rustix::event::{PollFd, PollFlags};

use crate::call::{Waker, wait};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections held at once; the least recently active goes first.
const MAX_CONNECTIONS: usize = 32;
/// Bytes waiting to be written on one connection before it is given up.
const MAX_OUTBOUND: usize = 256 * 1024;
/// A connection silent for this long is closed.
const IDLE: Duration = Duration::from_secs(300);

/// What arrived.
#[derive(Debug)]
pub enum Incoming {
    Datagram(SocketAddr, Vec<u8>),
    Stream(SocketAddr, StreamItem),
    /// UDP said nothing listens at the connected destination (ICMP).
    Refused,
}

pub struct SipNet {
    udp: UdpSocket,
    /// The UDP socket's peer when it is connected (a caller's).
    connected: Option<SocketAddr>,
    listener: Option<TcpListener>,
    connections: Vec<Connection>,
    waker: Waker,
    /// Room for the largest datagram, kept: zeroing 64 KiB on every poll
    /// cost more than the poll.
    buf: Box<[u8]>,
}

struct Connection {
    peer: SocketAddr,
    stream: TcpStream,
    framer: StreamFramer,
    outbound: Vec<u8>,
    active: Instant,
    dead: bool,
}

impl SipNet {
    /// `udp`, and a TCP listener on its address when one can be had.
    pub fn new(udp: UdpSocket) -> std::io::Result<SipNet> {
        udp.set_nonblocking(true)?;
        let local = udp.local_addr()?;
        let listener = TcpListener::bind(local).ok();
        if let Some(l) = &listener {
            l.set_nonblocking(true)?;
        }
        Ok(SipNet {
            connected: udp.peer_addr().ok(),
            udp,
            listener,
            connections: Vec::new(),
            waker: Waker::new(),
            buf: vec![0; 65_536].into_boxed_slice(),
        })
    }

    /// What wakes the loop from [`SipNet::wait`]: for the threads that have
    /// news for it (a call, the terminal).
    pub fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Sleeps until a socket has something to read (or a connection room
    /// for what waits to be written), the waker is woken, or `deadline`.
    pub fn wait(&self, deadline: Instant) {
        let mut fds = Vec::with_capacity(3 + self.connections.len());
        fds.push(PollFd::new(&self.udp, PollFlags::IN));
        if let Some(listener) = &self.listener {
            fds.push(PollFd::new(listener, PollFlags::IN));
        }
        for c in &self.connections {
            let flags = if c.outbound.is_empty() {
                PollFlags::IN
            } else {
                PollFlags::IN | PollFlags::OUT
            };
            fds.push(PollFd::new(&c.stream, flags));
        }
        wait(&mut fds, &self.waker, Some(deadline));
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Whether TCP is served on the same port.
    pub fn has_tcp(&self) -> bool {
        self.listener.is_some()
    }

    /// Opens a TCP connection to `to` now, so that a refusal is known at
    /// once.
    pub fn connect(&mut self, to: SocketAddr) -> std::io::Result<()> {
        let stream = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)?;
        stream.set_nonblocking(true)?;
        let _ = stream.set_nodelay(true);
        self.adopt(to, stream);
        Ok(())
    }

    /// Everything that arrived since the last call.
    pub fn poll(&mut self, out: &mut Vec<Incoming>) {
        for _ in 0..64 {
            let buf = &mut self.buf;
            let received = match self.connected {
                Some(peer) => self.udp.recv(buf).map(|n| (n, peer)),
                None => self.udp.recv_from(buf),
            };
            match received {
                Ok((n, from)) => out.push(Incoming::Datagram(from, buf[..n].to_vec())),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => out.push(Incoming::Refused),
                Err(_) => break,
            }
        }
        while let Some(Ok((stream, peer))) = self.listener.as_ref().map(TcpListener::accept) {
            if stream.set_nonblocking(true).is_ok() {
                self.adopt(peer, stream);
            }
        }
        let now = Instant::now();
        for c in &mut self.connections {
            c.read(&mut self.buf, out);
            c.flush();
            if now.duration_since(c.active) > IDLE {
                c.dead = true;
            }
        }
        self.connections.retain(|c| !c.dead);
    }

    /// Sends one transmit of the user agent.
    pub fn send(&mut self, t: Transmit) {
        if !t.tcp {
            let sent = match self.connected {
                Some(_) => self.udp.send(&t.data),
                None => self.udp.send_to(&t.data, t.to),
            };
            if let Err(e) = sent {
                tracing::debug!("sending SIP to {} failed: {e}", t.to);
            }
            return;
        }
        if !self.connections.iter().any(|c| c.peer == t.to) {
            match TcpStream::connect_timeout(&t.to, CONNECT_TIMEOUT) {
                Ok(stream) if stream.set_nonblocking(true).is_ok() => {
                    let _ = stream.set_nodelay(true);
                    self.adopt(t.to, stream);
                }
                Ok(_) => return,
                Err(e) => {
                    tracing::debug!("cannot connect to {} for SIP over TCP: {e}", t.to);
                    return;
                }
            }
        }
        if let Some(c) = self.connections.iter_mut().find(|c| c.peer == t.to) {
            if c.outbound.len() + t.data.len() > MAX_OUTBOUND {
                c.dead = true;
            } else {
                c.outbound.extend_from_slice(&t.data);
                c.flush();
            }
        }
        self.connections.retain(|c| !c.dead);
    }

    fn adopt(&mut self, peer: SocketAddr, stream: TcpStream) {
        if self.connections.len() >= MAX_CONNECTIONS
            && let Some(oldest) = self
                .connections
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.active)
                .map(|(i, _)| i)
        {
            self.connections.remove(oldest);
        }
        self.connections.push(Connection {
            peer,
            stream,
            framer: StreamFramer::new(),
            outbound: Vec::new(),
            active: Instant::now(),
            dead: false,
        });
    }
}

impl Connection {
    fn read(&mut self, buf: &mut [u8], out: &mut Vec<Incoming>) {
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => {
                    self.active = Instant::now();
                    let mut rest = &buf[..n];
                    while !rest.is_empty() {
                        let taken = self.framer.push(rest);
                        rest = &rest[taken..];
                        while let Some(item) = self.framer.poll() {
                            match item {
                                Ok(item) => out.push(Incoming::Stream(self.peer, item)),
                                Err(e) => {
                                    tracing::debug!("closing SIP stream from {}: {e}", self.peer);
                                    self.dead = true;
                                    return;
                                }
                            }
                        }
                        if taken == 0 && self.framer.has_failed() {
                            self.dead = true;
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }

    fn flush(&mut self) {
        while !self.outbound.is_empty() {
            match self.stream.write(&self.outbound) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => {
                    self.outbound.drain(..n);
                    self.active = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }
}
