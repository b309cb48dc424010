//! Redundant audio data (RFC 2198, `audio/red`): one RTP payload that
//! carries the current frame and copies of the frames sent before it, so a
//! lost packet's audio arrives again with the next one.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |1|   block PT  |  timestamp offset         |   block length    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |0|   block PT  |  (the primary's header: its length is the rest)
//! +-+-+-+-+-+-+-+-+
//! ```
//!
//! Each redundant block's header gives its payload type, how far its
//! timestamp lies before the packet's (14 bits) and its length (10 bits);
//! the last header, one byte, is the primary's. The blocks' data follow in
//! the same order, oldest first, the primary last.
//!
//! RFC 2198 leaves the blocks' sequence numbers unsaid. ipphone's sender
//! makes them implicit, as WebRTC's does: the blocks are the packets sent
//! just before this one, in order, so the newest redundant block has the
//! packet's sequence number minus one, the one before it minus two.

use thiserror::Error;

use super::Pt;

/// The most redundant blocks [`RedPayload::parse`] accepts: more would be
/// of no use to a voice call, and the limit keeps the result on the stack.
pub const MAX_BLOCKS: usize = 4;
/// The largest timestamp offset a block header holds.
pub const MAX_OFFSET: u32 = 0x3fff;
/// The largest redundant block a block header holds, in bytes.
pub const MAX_BLOCK_LEN: usize = 0x3ff;

/// Why a payload is not RFC 2198 redundancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RedError {
    #[error("the RED payload ends inside a block header")]
    TruncatedHeader,
    #[error("a RED block runs past the end of the payload")]
    TruncatedBlock,
    #[error("the RED payload has more than {MAX_BLOCKS} redundant blocks")]
    TooManyBlocks,
}

/// One block of a RED payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedBlock<'a> {
    pub pt: Pt,
    /// How many ticks the block's timestamp lies before the packet's; 0 for
    /// the primary.
    pub offset: u32,
    pub data: &'a [u8],
}

/// A parsed RED payload: redundant blocks oldest first, then the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedPayload<'a> {
    redundant: [Option<RedBlock<'a>>; MAX_BLOCKS],
    count: usize,
    pub primary: RedBlock<'a>,
}

impl<'a> RedPayload<'a> {
    /// Parses a RED payload; never panics, whatever the bytes.
    pub fn parse(payload: &'a [u8]) -> Result<Self, RedError> {
        let mut headers = [(Pt(0), 0u32, 0usize); MAX_BLOCKS];
        let mut count = 0;
        let mut at = 0;
        let primary_pt = loop {
            let &first = payload.get(at).ok_or(RedError::TruncatedHeader)?;
            if first & 0x80 == 0 {
                at += 1;
                break Pt(first & 0x7f);
            }
            let header = payload.get(at..at + 4).ok_or(RedError::TruncatedHeader)?;
            if count == MAX_BLOCKS {
                return Err(RedError::TooManyBlocks);
            }
            let word = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            headers[count] = (
                Pt(header[0] & 0x7f),
                (word >> 10) & MAX_OFFSET,
                (word & 0x3ff) as usize,
            );
            count += 1;
            at += 4;
        };
        let mut redundant = [None; MAX_BLOCKS];
        for (slot, &(pt, offset, len)) in redundant.iter_mut().zip(&headers[..count]) {
            let data = payload.get(at..at + len).ok_or(RedError::TruncatedBlock)?;
            *slot = Some(RedBlock { pt, offset, data });
            at += len;
        }
        Ok(RedPayload {
            redundant,
            count,
            primary: RedBlock {
                pt: primary_pt,
                offset: 0,
                data: &payload[at..],
            },
        })
    }

    /// The redundant blocks, oldest first.
    pub fn redundant(&self) -> impl Iterator<Item = &RedBlock<'a>> {
        self.redundant[..self.count].iter().flatten()
    }
}

/// The length of the RED payload of `redundant` and `primary`.
pub fn encoded_len(redundant: &[RedBlock<'_>], primary: &[u8]) -> usize {
    redundant.iter().map(|b| 4 + b.data.len()).sum::<usize>() + 1 + primary.len()
}

/// Writes a RED payload into `out`: `redundant` oldest first, each with its
/// payload type, timestamp offset and data, then the primary. Returns the
/// length written, or `None` if `out` is too short or a block does not fit
/// its header (an offset over [`MAX_OFFSET`], data over [`MAX_BLOCK_LEN`]).
pub fn write(
    redundant: &[RedBlock<'_>],
    primary_pt: Pt,
    primary: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let len = encoded_len(redundant, primary);
    if len > out.len() {
        return None;
    }
    let mut at = 0;
    for block in redundant {
        if block.offset > MAX_OFFSET || block.data.len() > MAX_BLOCK_LEN {
            return None;
        }
        let word = 0x8000_0000
            | u32::from(block.pt.0 & 0x7f) << 24
            | block.offset << 10
            | block.data.len() as u32;
        out[at..at + 4].copy_from_slice(&word.to_be_bytes());
        at += 4;
    }
    out[at] = primary_pt.0 & 0x7f;
    at += 1;
    for data in redundant.iter().map(|b| b.data).chain([primary]) {
        out[at..at + data.len()].copy_from_slice(data);
        at += data.len();
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2198 §3's example, reduced to its shape: one redundant block of
    /// PT 0 at offset 160 (5 bytes), then a primary of PT 0.
    #[test]
    fn parses_a_block_and_a_primary() {
        let payload = [
            0x80, 0x02, 0x80, 0x05, // F=1, PT 0, offset 160, length 5
            0x00, // F=0, PT 0
            1, 2, 3, 4, 5, // the redundant block
            9, 9, // the primary
        ];
        let red = RedPayload::parse(&payload).unwrap();
        let blocks: Vec<_> = red.redundant().copied().collect();
        assert_eq!(
            blocks,
            [RedBlock {
                pt: Pt(0),
                offset: 160,
                data: &[1, 2, 3, 4, 5]
            }]
        );
        assert_eq!(red.primary.pt, Pt(0));
        assert_eq!(red.primary.data, &[9, 9]);
    }

    #[test]
    fn writes_what_it_parses() {
        let old = [7u8; 40];
        let newer = [8u8; 1023];
        let blocks = [
            RedBlock {
                pt: Pt(111),
                offset: 1920,
                data: &old,
            },
            RedBlock {
                pt: Pt(111),
                offset: 960,
                data: &newer,
            },
        ];
        let mut out = [0u8; 1200];
        let n = write(&blocks, Pt(111), &[1, 2, 3], &mut out).unwrap();
        assert_eq!(n, 8 + 1 + 40 + 1023 + 3);
        let red = RedPayload::parse(&out[..n]).unwrap();
        assert_eq!(red.redundant().copied().collect::<Vec<_>>(), blocks);
        assert_eq!(red.primary.data, &[1, 2, 3]);
        assert_eq!(red.primary.pt, Pt(111));
    }

    #[test]
    fn a_primary_alone_is_valid() {
        let red = RedPayload::parse(&[0x6f, 1, 2]).unwrap();
        assert_eq!(red.redundant().count(), 0);
        assert_eq!(red.primary.pt, Pt(111));
        assert_eq!(red.primary.data, &[1, 2]);
        // Even with no primary data (RFC 2198 allows a zero-length block).
        assert!(RedPayload::parse(&[0x6f]).unwrap().primary.data.is_empty());
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert_eq!(RedPayload::parse(&[]), Err(RedError::TruncatedHeader));
        assert_eq!(
            RedPayload::parse(&[0x80, 0, 0]),
            Err(RedError::TruncatedHeader)
        );
        // A block of 5 bytes with only 2 there.
        assert_eq!(
            RedPayload::parse(&[0x80, 0, 0, 5, 0, 1, 2]),
            Err(RedError::TruncatedBlock)
        );
        let many = [0x80, 0, 0, 0].repeat(MAX_BLOCKS + 1);
        assert_eq!(RedPayload::parse(&many), Err(RedError::TooManyBlocks));
        let mut out = [0u8; 64];
        let far = RedBlock {
            pt: Pt(0),
            offset: MAX_OFFSET + 1,
            data: &[1],
        };
        assert_eq!(write(&[far], Pt(0), &[2], &mut out), None);
        assert_eq!(write(&[], Pt(0), &[2; 64], &mut out), None);
    }

    #[test]
    fn never_panics_on_any_short_input() {
        for len in 0..12 {
            for seed in 0..256u32 {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| (seed.wrapping_mul(2_654_435_761).rotate_left(i * 5) >> 7) as u8)
                    .collect();
                let _ = RedPayload::parse(&bytes);
            }
        }
    }
}
