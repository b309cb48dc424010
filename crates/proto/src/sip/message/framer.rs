//! Cutting a stream transport (TCP, TLS) into messages by Content-Length
//! (RFC 3261 §18.3), with the CRLF keepalives of RFC 5626 §3.5.1 between
//! them, in a bounded buffer.

use thiserror::Error;

use super::Message;
use super::parse::{ParseError, find_head_end, framing_length};

/// The largest message a [`StreamFramer`] accepts by default, header
/// section and body together.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// What a client sends to keep a flow alive (RFC 5626 §3.5.1)...
pub const PING: &[u8] = b"\r\n\r\n";

/// ...and what the server answers.
pub const PONG: &[u8] = b"\r\n";

/// What a stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    Message(Message),
    /// A message that was framed but does not parse. The stream goes on;
    /// a request can be answered with
    /// [`Response::for_malformed_request`](super::Response::for_malformed_request).
    Malformed {
        bytes: Vec<u8>,
        error: ParseError,
    },
    /// A double CRLF between messages: a keepalive ping, to be answered
    /// with [`PONG`].
    Ping,
    /// A single CRLF between messages: a keepalive pong.
    Pong,
}

/// Why the stream cannot be framed any further. The connection should be
/// closed (RFC 4475 §3.1.2.3, §3.3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("a message is longer than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("a message on a stream has no Content-Length (RFC 3261 section 18.3)")]
    MissingContentLength,
    #[error("a message on a stream has a malformed or conflicting Content-Length")]
    BadContentLength,
}

/// Frames a byte stream into SIP messages.
///
/// The framer holds at most its limit (by default [`MAX_MESSAGE_LEN`]) of
/// bytes: [`push`](Self::push) takes what fits and says how much that was;
/// the caller then drains [`poll`](Self::poll) and pushes the rest. Since a
/// message may be no longer than the limit, a drained framer always has
/// room again, unless it failed: after a [`FramingError`] it takes and
/// yields nothing more.
///
/// A lone CRLF is reported as a [`StreamItem::Pong`] as soon as it is seen,
/// so a ping whose two halves arrive apart reads as two pongs.
#[derive(Debug, Clone)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limit: usize,
    /// The header section's end was searched for up to here.
    scanned: usize,
    /// The length of the message at the front, once its header is in.
    pending: Option<usize>,
    failed: bool,
}

impl Default for StreamFramer {
    fn default() -> Self {
        StreamFramer::new()
    }
}

impl StreamFramer {
    pub fn new() -> Self {
        StreamFramer::with_limit(MAX_MESSAGE_LEN)
    }

    /// A framer for messages of at most `limit` bytes (at least 16).
    pub fn with_limit(limit: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            limit: limit.max(16),
            scanned: 0,
            pending: None,
            failed: false,
        }
    }

    /// Takes as much of `bytes` as fits and returns how many bytes it took.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        if self.failed {
            return 0;
        }
        let n = self.limit.saturating_sub(self.buf.len()).min(bytes.len());
        self.buf
            .extend_from_slice(bytes.get(..n).unwrap_or_default());
        n
    }

    /// Bytes held, waiting to complete a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the stream failed to frame; nothing more will come out.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The next item, `None` until more bytes arrive, or the error that ends
    /// the stream (reported once).
    pub fn poll(&mut self) -> Option<Result<StreamItem, FramingError>> {
        if self.failed {
            return None;
        }
        match self.next_item() {
            Ok(item) => item.map(Ok),
            Err(error) => {
                self.failed = true;
                self.buf = Vec::new();
                Some(Err(error))
            }
        }
    }

    fn next_item(&mut self) -> Result<Option<StreamItem>, FramingError> {
        loop {
            match self.buf.as_slice() {
                [b'\r', b'\n', b'\r', b'\n', ..] => {
                    self.consume(4);
                    return Ok(Some(StreamItem::Ping));
                }
                // Maybe the first three bytes of a ping.
                [b'\r', b'\n', b'\r'] | [b'\r'] => return Ok(None),
                [b'\r', b'\n', ..] => {
                    self.consume(2);
                    return Ok(Some(StreamItem::Pong));
                }
                // A bare LF between messages is skipped (RFC 3261 §7.5).
                [b'\n', ..] => self.consume(1),
                [] => return Ok(None),
                _ => break,
            }
        }
        let total = match self.pending {
            Some(total) => total,
            None => {
                let Some((head_end, body_start)) = find_head_end(&self.buf, self.scanned) else {
                    if self.buf.len() >= self.limit {
                        return Err(FramingError::TooLarge { limit: self.limit });
                    }
                    // A header end found later may start two bytes back.
                    self.scanned = self.buf.len().saturating_sub(2);
                    return Ok(None);
                };
                let head = self.buf.get(..head_end).unwrap_or_default();
                let length = framing_length(head).map_err(|e| match e {
                    None => FramingError::MissingContentLength,
                    Some(()) => FramingError::BadContentLength,
                })?;
                let total = body_start
                    .checked_add(length)
                    .filter(|&t| t <= self.limit)
                    .ok_or(FramingError::TooLarge { limit: self.limit })?;
                self.pending = Some(total);
                total
            }
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        let bytes: Vec<u8> = self.buf.drain(..total).collect();
        self.pending = None;
        self.scanned = 0;
        Ok(Some(match Message::parse(&bytes) {
            Ok(message) => StreamItem::Message(message),
            Err(error) => StreamItem::Malformed { bytes, error },
        }))
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        self.scanned = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(call_id: &str, body: &str) -> Vec<u8> {
        format!(
            "MESSAGE sip:bob@example.com SIP/2.0\r\n\
             Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK{call_id}\r\n\
             To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// Pushes `stream` in pieces of `piece` bytes and collects every item.
    fn frame(stream: &[u8], piece: usize, limit: usize) -> Vec<Result<StreamItem, FramingError>> {
        let mut framer = StreamFramer::with_limit(limit);
        let mut items = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let chunk = &rest[..piece.min(rest.len())];
            let taken = framer.push(chunk);
            rest = &rest[taken..];
            while let Some(item) = framer.poll() {
                items.push(item);
            }
            if taken == 0 {
                break;
            }
        }
        items
    }

    #[test]
    fn messages_and_keepalives_in_any_pieces() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend(message("one", "hello"));
        stream.extend(b"\r\n");
        stream.extend(message("two", ""));
        stream.extend(message("three", "a\r\n\r\nb"));
        for piece in [1, 2, 3, 7, 64, 1000, stream.len()] {
            let items = frame(&stream, piece, MAX_MESSAGE_LEN);
            let kinds: Vec<_> = items
                .iter()
                .map(|i| match i {
                    Ok(StreamItem::Message(m)) => {
                        m.headers().get("Call-ID").unwrap_or("").to_owned()
                    }
                    Ok(StreamItem::Ping) => "ping".into(),
                    Ok(StreamItem::Pong) => "pong".into(),
                    other => format!("{other:?}"),
                })
                .collect();
            let expected: &[&str] = if piece <= 2 {
                // The ping arrives in halves, each a CRLF on its own.
                &["pong", "pong", "one", "pong", "two", "three"]
            } else {
                &["ping", "one", "pong", "two", "three"]
            };
            assert_eq!(kinds, expected, "piece {piece}");
        }
        let items = frame(&stream, 5, MAX_MESSAGE_LEN);
        let Ok(StreamItem::Message(third)) = &items[4] else {
            panic!("a message")
        };
        assert_eq!(third.body(), b"a\r\n\r\nb");
    }

    #[test]
    fn malformed_messages_do_not_stop_the_stream() {
        let mut stream = message("bad", "x");
        let text = String::from_utf8(stream.clone())
            .unwrap()
            .replace("CSeq: 1 MESSAGE", "CSeq: 1 INVITE");
        stream = text.into_bytes();
        stream.extend(message("good", "y"));
        let items = frame(&stream, 10, MAX_MESSAGE_LEN);
        assert!(matches!(
            &items[0],
            Ok(StreamItem::Malformed {
                error: ParseError::MethodMismatch { .. },
                ..
            })
        ));
        assert!(matches!(&items[1], Ok(StreamItem::Message(_))));
    }

    #[test]
    fn framing_errors_end_the_stream() {
        let no_length = String::from_utf8(message("x", ""))
            .unwrap()
            .replace("Content-Length: 0\r\n", "");
        assert_eq!(
            frame(no_length.as_bytes(), 100, MAX_MESSAGE_LEN),
            [Err(FramingError::MissingContentLength)]
        );
        let negative = String::from_utf8(message("x", ""))
            .unwrap()
            .replace("Content-Length: 0", "Content-Length: -999");
        assert_eq!(
            frame(negative.as_bytes(), 100, MAX_MESSAGE_LEN),
            [Err(FramingError::BadContentLength)]
        );
        let conflicting = String::from_utf8(message("x", ""))
            .unwrap()
            .replace("Content-Length: 0", "Content-Length: 13\r\nl: 5");
        assert_eq!(
            frame(conflicting.as_bytes(), 100, MAX_MESSAGE_LEN),
            [Err(FramingError::BadContentLength)]
        );

        // A body that would overflow the buffer is refused as soon as the
        // header section is in; so is a header section that never ends.
        let big = message("big", &"x".repeat(2000));
        assert_eq!(
            frame(&big, 100, 1024),
            [Err(FramingError::TooLarge { limit: 1024 })]
        );
        let endless = [
            b"OPTIONS sip:a@b SIP/2.0\r\n".as_slice(),
            &b"X-Pad: yyyyyyyyyy\r\n".repeat(100),
        ]
        .concat();
        assert_eq!(
            frame(&endless, 64, 1024),
            [Err(FramingError::TooLarge { limit: 1024 })]
        );
        let huge = String::from_utf8(message("x", ""))
            .unwrap()
            .replace("Content-Length: 0", "Content-Length: 4294967295");
        assert_eq!(
            frame(huge.as_bytes(), 100, MAX_MESSAGE_LEN),
            [Err(FramingError::TooLarge {
                limit: MAX_MESSAGE_LEN
            })]
        );

        let mut framer = StreamFramer::with_limit(1024);
        framer.push(&big);
        assert!(matches!(framer.poll(), Some(Err(_))));
        assert!(framer.has_failed());
        assert_eq!(framer.poll(), None);
        assert_eq!(framer.push(b"more"), 0);
    }

    #[test]
    fn a_drained_framer_has_room_for_the_next_message() {
        let one = message("one", &"a".repeat(600));
        let two = message("two", &"b".repeat(600));
        let limit = one.len().max(two.len()) + 10;
        let stream = [one, two].concat();
        let items = frame(&stream, stream.len(), limit);
        assert_eq!(items.len(), 2);
        assert!(
            items
                .iter()
                .all(|i| matches!(i, Ok(StreamItem::Message(_))))
        );
    }
}
