//! RTP packets (RFC 3550 §5.1) with their header extensions (RFC 3550 §5.3.1,
//! RFC 8285 one- and two-byte forms), and the first-byte demultiplexing of a
//! media port (RFC 7983 §7, RFC 5761 §4).
//!
//! [`RtpPacket::parse`] borrows the datagram: the payload and the extension
//! data are slices of it. [`RtpPacket::write`] serialises into a caller buffer.

use std::fmt;

use thiserror::Error;

/// The only RTP version there is (RFC 3550 §5.1, `V`).
pub const VERSION: u8 = 2;

/// Length of the fixed RTP header: everything up to and including the SSRC.
pub const FIXED_HEADER_LEN: usize = 12;

/// The CSRC count is a 4-bit field.
pub const MAX_CSRCS: usize = 15;

/// "defined by profile" value of the RFC 8285 one-byte form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;

/// The RFC 8285 two-byte form: `0x100` in the top 12 bits, "appbits" in the low 4.
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// RTP payload type (7 bits; RFC 3550 §5.1 `PT`, RFC 3551 for the static ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pt(pub u8);

/// 16-bit RTP sequence number as carried on the wire; see
/// [`ExtSeq`](super::seq::ExtSeq) for the extended form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SeqNo(pub u16);

impl SeqNo {
    /// The following sequence number, wrapping from 65535 to 0.
    pub fn next(self) -> SeqNo {
        SeqNo(self.0.wrapping_add(1))
    }
}

/// Synchronisation source identifier (RFC 3550 §3, §8); also used for CSRCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

impl fmt::Display for Pt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// Why a datagram is not a well-formed RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("{0} bytes: an RTP header is at least 12")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("{count} CSRCs announced, but the packet ends first")]
    CsrcOverrun { count: u8 },
    #[error("the header extension runs past the end of the packet")]
    ExtensionOverrun,
    #[error("padding count {count} is zero or larger than the {available} bytes after the header")]
    BadPadding { count: u8, available: usize },
}

/// Why a packet could not be serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WriteError {
    #[error("the buffer holds {available} bytes, the packet needs {needed}")]
    BufferTooSmall { needed: usize, available: usize },
    #[error("header extension data of {0} bytes is not a whole number of 32-bit words")]
    ExtensionNotAligned(usize),
    #[error("header extension data of {0} bytes exceeds 65535 words")]
    ExtensionTooLong(usize),
}

/// Up to fifteen contributing sources, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct CsrcList {
    len: u8,
    ids: [Ssrc; MAX_CSRCS],
}

impl CsrcList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// A list holding `ids`, or `None` if there are more than fifteen.
    pub fn from_slice(ids: &[Ssrc]) -> Option<Self> {
        let mut list = Self::new();
        for &id in ids {
            if !list.push(id) {
                return None;
            }
        }
        Some(list)
    }

    /// Appends `id`; false (and no change) if the list is full.
    pub fn push(&mut self, id: Ssrc) -> bool {
        let Some(slot) = self.ids.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = id;
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[Ssrc] {
        &self.ids[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for CsrcList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The header extension block (RFC 3550 §5.3.1): a 16-bit profile-defined
/// value and a whole number of 32-bit words of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// The "defined by profile" field: 0xBEDE, 0x100X or anything else.
    pub profile: u16,
    /// The extension data, without the 4-byte extension header.
    pub data: &'a [u8],
}

/// How the extension data is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// RFC 8285 §4.2: one-byte element headers (4-bit ID, 4-bit length - 1).
    OneByte,
    /// RFC 8285 §4.3: two-byte element headers, with the profile's low 4 bits.
    TwoByte { appbits: u8 },
    /// A profile-specific RFC 3550 §5.3.1 extension: opaque data.
    Other,
}

/// One RFC 8285 extension element: a local identifier and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionElement<'a> {
    pub id: u8,
    pub data: &'a [u8],
}

/// An RFC 8285 element claims more bytes than the extension block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("header extension element {id} runs past the end of the extension block")]
pub struct ElementOverrun {
    pub id: u8,
}

impl<'a> HeaderExtension<'a> {
    pub fn form(&self) -> ExtensionForm {
        if self.profile == ONE_BYTE_PROFILE {
            ExtensionForm::OneByte
        } else if self.profile & 0xFFF0 == TWO_BYTE_PROFILE {
            ExtensionForm::TwoByte {
                appbits: (self.profile & 0x000F) as u8,
            }
        } else {
            ExtensionForm::Other
        }
    }

    /// The RFC 8285 elements, in order; nothing for [`ExtensionForm::Other`].
    /// Padding bytes are skipped; a one-byte ID of 15 ends the walk (RFC 8285
    /// §4.2); an element overrunning the block is reported once, then the
    /// iterator ends.
    pub fn elements(&self) -> Elements<'a> {
        let form = self.form();
        Elements {
            data: if form == ExtensionForm::Other {
                &[]
            } else {
                self.data
            },
            form,
        }
    }
}

/// Iterator over RFC 8285 extension elements; see [`HeaderExtension::elements`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    data: &'a [u8],
    form: ExtensionForm,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<ExtensionElement<'a>, ElementOverrun>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&first, rest) = self.data.split_first()?;
            if first == 0 {
                // Padding between or after elements (RFC 8285 §4.2, §4.3).
                self.data = rest;
                continue;
            }
            let (id, len, rest) = match self.form {
                ExtensionForm::OneByte => {
                    let id = first >> 4;
                    if id == 15 {
                        // "processing of the entire extension should terminate".
                        self.data = &[];
                        return None;
                    }
                    (id, usize::from(first & 0x0F) + 1, rest)
                }
                ExtensionForm::TwoByte { .. } => {
                    let Some((&len, rest)) = rest.split_first() else {
                        self.data = &[];
                        return Some(Err(ElementOverrun { id: first }));
                    };
                    (first, usize::from(len), rest)
                }
                ExtensionForm::Other => return None,
            };
            if len > rest.len() {
                self.data = &[];
                return Some(Err(ElementOverrun { id }));
            }
            let (data, rest) = rest.split_at(len);
            self.data = rest;
            return Some(Ok(ExtensionElement { id, data }));
        }
    }
}

/// An RTP packet: its header fields and borrowed payload (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub pt: Pt,
    pub seq: SeqNo,
    pub timestamp: u32,
    pub ssrc: Ssrc,
    pub csrcs: CsrcList,
    pub extension: Option<HeaderExtension<'a>>,
    pub payload: &'a [u8],
    /// Padding octets after the payload, the count octet included; 0 means
    /// the `P` bit is clear.
    pub padding: u8,
}

impl<'a> RtpPacket<'a> {
    /// A packet without CSRCs, extension or padding.
    pub fn new(pt: Pt, seq: SeqNo, timestamp: u32, ssrc: Ssrc, payload: &'a [u8]) -> Self {
        RtpPacket {
            marker: false,
            pt,
            seq,
            timestamp,
            ssrc,
            csrcs: CsrcList::new(),
            extension: None,
            payload,
            padding: 0,
        }
    }

    /// Parses one datagram. Any payload type is accepted, including those an
    /// RTCP packet would carry: call [`demux`] first on a muxed port.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, RtpError> {
        if datagram.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort(datagram.len()));
        }
        let b0 = datagram[0];
        let version = b0 >> 6;
        if version != VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let csrc_count = b0 & 0x0F;
        let b1 = datagram[1];

        let mut pos = FIXED_HEADER_LEN;
        let csrc_end = pos + 4 * usize::from(csrc_count);
        if csrc_end > datagram.len() {
            return Err(RtpError::CsrcOverrun { count: csrc_count });
        }
        let mut csrcs = CsrcList::new();
        for chunk in datagram[pos..csrc_end].chunks_exact(4) {
            csrcs.push(Ssrc(be32(chunk)));
        }
        pos = csrc_end;

        let extension = if has_extension {
            let Some(ext_header) = datagram.get(pos..pos + 4) else {
                return Err(RtpError::ExtensionOverrun);
            };
            let profile = be16(&ext_header[0..2]);
            let words = usize::from(be16(&ext_header[2..4]));
            let start = pos + 4;
            let end = start + 4 * words;
            let Some(data) = datagram.get(start..end) else {
                return Err(RtpError::ExtensionOverrun);
            };
            pos = end;
            Some(HeaderExtension { profile, data })
        } else {
            None
        };

        let mut end = datagram.len();
        let mut padding = 0;
        if has_padding {
            let count = datagram[end - 1];
            let available = end - pos;
            if count == 0 || usize::from(count) > available {
                return Err(RtpError::BadPadding { count, available });
            }
            padding = count;
            end -= usize::from(count);
        }

        Ok(RtpPacket {
            marker: b1 & 0x80 != 0,
            pt: Pt(b1 & 0x7F),
            seq: SeqNo(be16(&datagram[2..4])),
            timestamp: be32(&datagram[4..8]),
            ssrc: Ssrc(be32(&datagram[8..12])),
            csrcs,
            extension,
            payload: &datagram[pos..end],
            padding,
        })
    }

    /// Length of the header: fixed part, CSRCs and extension block.
    pub fn header_len(&self) -> usize {
        FIXED_HEADER_LEN + 4 * self.csrcs.len() + self.extension.map_or(0, |ext| 4 + ext.data.len())
    }

    /// Length of the whole serialised packet.
    pub fn encoded_len(&self) -> usize {
        self.header_len() + self.payload.len() + usize::from(self.padding)
    }

    /// Serialises the packet into the front of `out`; returns its length.
    /// Padding is written as zeros followed by the count octet.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WriteError> {
        if let Some(ext) = &self.extension {
            if ext.data.len() & 3 != 0 {
                return Err(WriteError::ExtensionNotAligned(ext.data.len()));
            }
            if ext.data.len() / 4 > usize::from(u16::MAX) {
                return Err(WriteError::ExtensionTooLong(ext.data.len()));
            }
        }
        let needed = self.encoded_len();
        if out.len() < needed {
            return Err(WriteError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        let out = &mut out[..needed];
        out[0] = VERSION << 6
            | u8::from(self.padding != 0) << 5
            | u8::from(self.extension.is_some()) << 4
            | self.csrcs.len() as u8;
        out[1] = u8::from(self.marker) << 7 | (self.pt.0 & 0x7F);
        out[2..4].copy_from_slice(&self.seq.0.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.0.to_be_bytes());
        let mut pos = FIXED_HEADER_LEN;
        for csrc in self.csrcs.as_slice() {
            out[pos..pos + 4].copy_from_slice(&csrc.0.to_be_bytes());
            pos += 4;
        }
        if let Some(ext) = &self.extension {
            out[pos..pos + 2].copy_from_slice(&ext.profile.to_be_bytes());
            out[pos + 2..pos + 4].copy_from_slice(&((ext.data.len() / 4) as u16).to_be_bytes());
            pos += 4;
            out[pos..pos + ext.data.len()].copy_from_slice(ext.data);
            pos += ext.data.len();
        }
        out[pos..pos + self.payload.len()].copy_from_slice(self.payload);
        pos += self.payload.len();
        if self.padding != 0 {
            out[pos..needed - 1].fill(0);
            out[needed - 1] = self.padding;
        }
        Ok(needed)
    }
}

/// What a datagram arriving on a media port is, by its first byte
/// (RFC 7983 §7) and, for RTP/RTCP, its second (RFC 5761 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Demux {
    /// First byte 0-3 and at least a 20-byte STUN header.
    Stun,
    /// First byte 16-19.
    Zrtp,
    /// First byte 20-63.
    Dtls,
    /// First byte 64-79.
    TurnChannel,
    /// First byte 128-191, second byte outside 192-223, at least 12 bytes.
    Rtp,
    /// First byte 128-191, second byte (RTCP packet type) 192-223, at least 8 bytes.
    Rtcp,
    /// Empty, too short for what the first byte says, or an unassigned range.
    Other,
}

/// Classifies a datagram so a media port can route RTP and RTCP (rtcp-mux)
/// and ignore STUN and garbage. Only looks; validity is up to the parsers.
pub fn demux(datagram: &[u8]) -> Demux {
    let Some(&first) = datagram.first() else {
        return Demux::Other;
    };
    match first {
        0..=3 if datagram.len() >= 20 => Demux::Stun,
        16..=19 => Demux::Zrtp,
        20..=63 => Demux::Dtls,
        64..=79 => Demux::TurnChannel,
        128..=191 => match datagram.get(1) {
            // RTCP packet types 192-223 would be RTP payload types 64-95 with
            // the marker set, which RFC 5761 §4 forbids for rtcp-mux.
            Some(192..=223) if datagram.len() >= 8 => Demux::Rtcp,
            Some(192..=223) => Demux::Other,
            Some(_) if datagram.len() >= FIXED_HEADER_LEN => Demux::Rtp,
            _ => Demux::Other,
        },
        _ => Demux::Other,
    }
}

pub(crate) fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

pub(crate) fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small xorshift generator for the "random bytes never panic" tests.
    pub(crate) struct XorShift(pub u64);

    impl XorShift {
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        pub(crate) fn fill(&mut self, buf: &mut [u8]) {
            for byte in buf {
                *byte = self.next_u64() as u8;
            }
        }
    }

    // V=2, P=0, X=0, CC=0 | M=1, PT=0 (PCMU) | seq 0x1234 | ts 0xDEADBEEF | SSRC 0x01020304
    const PCMU: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, 0xFF, 0x7F, 0xFF,
        0x7F,
    ];

    #[test]
    fn parses_the_fixed_header() {
        let p = RtpPacket::parse(&PCMU).unwrap();
        assert!(p.marker);
        assert_eq!(p.pt, Pt(0));
        assert_eq!(p.seq, SeqNo(0x1234));
        assert_eq!(p.timestamp, 0xDEAD_BEEF);
        assert_eq!(p.ssrc, Ssrc(0x0102_0304));
        assert!(p.csrcs.is_empty());
        assert_eq!(p.extension, None);
        assert_eq!(p.payload, &[0xFF, 0x7F, 0xFF, 0x7F]);
        assert_eq!(p.padding, 0);
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let p = RtpPacket::parse(&PCMU).unwrap();
        let mut out = [0u8; 64];
        let n = p.write(&mut out).unwrap();
        assert_eq!(&out[..n], &PCMU);
    }

    #[test]
    fn csrcs_extension_and_padding() {
        #[rustfmt::skip]
        let bytes = [
            0xB2, 0x60, 0x00, 0x01, // V=2 P=1 X=1 CC=2 | M=0 PT=96 | seq 1
            0x00, 0x00, 0x03, 0x20, // ts 800
            0xCA, 0xFE, 0xBA, 0xBE, // SSRC
            0x00, 0x00, 0x00, 0x0A, // CSRC 10
            0x00, 0x00, 0x00, 0x0B, // CSRC 11
            0xBE, 0xDE, 0x00, 0x02, // one-byte form, 2 words
            0x11, 0xAA, 0xBB, 0x00, // id 1 len 2, then padding
            0x20, 0xCC, 0x00, 0x00, // id 2 len 1, padding
            0x01, 0x02, 0x03,       // payload
            0x00, 0x00, 0x03,       // 3 octets of padding
        ];
        let p = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(p.pt, Pt(96));
        assert_eq!(p.csrcs.as_slice(), &[Ssrc(10), Ssrc(11)]);
        let ext = p.extension.unwrap();
        assert_eq!(ext.form(), ExtensionForm::OneByte);
        let elements: Vec<_> = ext.elements().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            elements,
            [
                ExtensionElement {
                    id: 1,
                    data: &[0xAA, 0xBB]
                },
                ExtensionElement {
                    id: 2,
                    data: &[0xCC]
                },
            ]
        );
        assert_eq!(p.payload, &[1, 2, 3]);
        assert_eq!(p.padding, 3);
        let mut out = [0u8; 64];
        let n = p.write(&mut out).unwrap();
        assert_eq!(&out[..n], &bytes);
    }

    #[test]
    fn two_byte_form_and_other_profiles() {
        let data = [0x05, 0x00, 0x00, 0x07, 0x02, 0x11, 0x22, 0x00];
        let ext = HeaderExtension {
            profile: 0x1003,
            data: &data,
        };
        assert_eq!(ext.form(), ExtensionForm::TwoByte { appbits: 3 });
        let elements: Vec<_> = ext.elements().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            elements,
            [
                ExtensionElement { id: 5, data: &[] },
                ExtensionElement {
                    id: 7,
                    data: &[0x11, 0x22]
                },
            ]
        );
        let other = HeaderExtension {
            profile: 0x0001,
            data: &data,
        };
        assert_eq!(other.form(), ExtensionForm::Other);
        assert_eq!(other.elements().count(), 0);
    }

    #[test]
    fn one_byte_id_15_stops_and_overruns_are_reported() {
        let stop = HeaderExtension {
            profile: ONE_BYTE_PROFILE,
            data: &[0x10, 0x01, 0xF0, 0x20],
        };
        assert_eq!(stop.elements().count(), 1);
        let overrun = HeaderExtension {
            profile: ONE_BYTE_PROFILE,
            data: &[0x13, 0x01, 0x02, 0x03],
        };
        let mut it = overrun.elements();
        assert_eq!(it.next(), Some(Err(ElementOverrun { id: 1 })));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        assert_eq!(RtpPacket::parse(&PCMU[..11]), Err(RtpError::TooShort(11)));
        let mut v1 = PCMU;
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));
        let mut cc = PCMU;
        cc[0] = 0x82;
        assert_eq!(
            RtpPacket::parse(&cc),
            Err(RtpError::CsrcOverrun { count: 2 })
        );
        let mut ext = PCMU;
        ext[0] = 0x90;
        ext[12..16].copy_from_slice(&[0xBE, 0xDE, 0x00, 0x01]);
        assert_eq!(RtpPacket::parse(&ext), Err(RtpError::ExtensionOverrun));
        let mut pad = PCMU;
        pad[0] = 0xA0;
        pad[15] = 5;
        assert_eq!(
            RtpPacket::parse(&pad),
            Err(RtpError::BadPadding {
                count: 5,
                available: 4
            })
        );
        pad[15] = 0;
        assert!(matches!(
            RtpPacket::parse(&pad),
            Err(RtpError::BadPadding { count: 0, .. })
        ));
        pad[15] = 4;
        assert_eq!(RtpPacket::parse(&pad).unwrap().payload, &[]);
    }

    #[test]
    fn write_checks_the_buffer_and_the_extension() {
        let p = RtpPacket::parse(&PCMU).unwrap();
        assert_eq!(
            p.write(&mut [0u8; 15]),
            Err(WriteError::BufferTooSmall {
                needed: 16,
                available: 15
            })
        );
        let mut q = p;
        q.extension = Some(HeaderExtension {
            profile: ONE_BYTE_PROFILE,
            data: &[1, 2, 3],
        });
        assert_eq!(
            q.write(&mut [0u8; 64]),
            Err(WriteError::ExtensionNotAligned(3))
        );
    }

    #[test]
    fn demux_by_first_byte() {
        let mut stun = [0u8; 20];
        stun[1] = 0x01; // Binding request
        assert_eq!(demux(&stun), Demux::Stun);
        assert_eq!(demux(&stun[..19]), Demux::Other);
        assert_eq!(demux(&[22, 0xFE, 0xFD]), Demux::Dtls);
        assert_eq!(demux(&[17]), Demux::Zrtp);
        assert_eq!(demux(&[0x40, 0]), Demux::TurnChannel);
        assert_eq!(demux(&PCMU), Demux::Rtp);
        assert_eq!(demux(&PCMU[..11]), Demux::Other);
        // An RR with no report blocks: 0x80 201, length 1.
        assert_eq!(demux(&[0x80, 201, 0, 1, 0, 0, 0, 1]), Demux::Rtcp);
        // PT 96 with the marker set is 224: RTP, not RTCP.
        let mut marked = PCMU;
        marked[1] = 0x80 | 96;
        assert_eq!(demux(&marked), Demux::Rtp);
        assert_eq!(demux(&[]), Demux::Other);
        assert_eq!(demux(&[0xFF; 40]), Demux::Other);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut buf = [0u8; 96];
        for round in 0..20_000 {
            let len = (rng.next_u64() % 97) as usize;
            rng.fill(&mut buf[..len]);
            if round % 2 == 0 {
                buf[0] = 0x80 | (buf.first().copied().unwrap_or(0) & 0x3F);
            }
            let _ = demux(&buf[..len]);
            if let Ok(p) = RtpPacket::parse(&buf[..len]) {
                if let Some(ext) = p.extension {
                    for _ in ext.elements() {}
                }
                let mut out = [0u8; 128];
                let n = p.write(&mut out).unwrap();
                assert_eq!(RtpPacket::parse(&out[..n]), Ok(p));
            }
        }
    }
}
