//! RTCP packets (RFC 3550 §6): SR and RR with report blocks (§6.4), SDES
//! (§6.5), BYE (§6.6), APP (§6.7), and compound packets (§6.1).
//!
//! Parsing borrows the datagram for texts and opaque data; report blocks,
//! SDES chunks and BYE sources go into small vectors. Packet types this
//! module does not know (RTPFB, PSFB, XR, ...) are kept as [`Unknown`] so a
//! compound packet carrying them still parses.
//!
//! The compound checks of Appendix A.2 are relaxed: every packet must be
//! version 2, lengths must add up to the datagram exactly, and only the last
//! packet may be padded, but the first packet need not be SR or RR. baresip
//! (FACTS.md) opens with an APP "PING" alone, and reduced-size RTCP
//! (RFC 5506) drops the rule too. [`is_rfc3550_compound`] reports whether
//! the full §6.1 rules hold.

use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use super::header::{Ssrc, be16, be32};

/// Packet type of a sender report.
pub const PT_SR: u8 = 200;
/// Packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// Packet type of source description.
pub const PT_SDES: u8 = 202;
/// Packet type of goodbye.
pub const PT_BYE: u8 = 203;
/// Packet type of an application-defined packet.
pub const PT_APP: u8 = 204;

/// Length of the common RTCP header (V, P, count, PT, length).
pub const HEADER_LEN: usize = 4;
/// Length of one report block (§6.4.1).
pub const REPORT_BLOCK_LEN: usize = 24;
/// The count fields (RC, SC, subtype) are 5 bits wide.
pub const MAX_COUNT: usize = 31;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 in the high 32
/// bits, the fraction of a second in the low 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// Converts a wall-clock time; times before 1970 map to the Unix epoch.
    pub fn from_system_time(time: SystemTime) -> NtpTime {
        let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET);
        let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime(seconds << 32 | fraction)
    }

    /// The middle 32 bits, as carried in LSR (RFC 3550 §6.4.1): seconds and
    /// fraction in units of 1/65536 s.
    pub fn middle32(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: Ssrc,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost: a signed 24-bit value, clamped when built.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub ext_highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Last SR timestamp: the middle 32 bits of its NTP time; 0 if none yet.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s; 0 if none yet.
    pub dlsr: u32,
}

/// The sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    pub ntp: NtpTime,
    /// The same instant as `ntp`, in the RTP clock of the media.
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// SR: sender info and reports about the sources it hears (RFC 3550 §6.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport<'a> {
    pub ssrc: Ssrc,
    pub info: SenderInfo,
    pub reports: Vec<ReportBlock>,
    /// Profile-specific extension after the report blocks (whole words).
    pub extension: &'a [u8],
}

/// RR: reports from a participant that is not sending (RFC 3550 §6.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    pub ssrc: Ssrc,
    pub reports: Vec<ReportBlock>,
    /// Profile-specific extension after the report blocks (whole words).
    pub extension: &'a [u8],
}

/// An SDES item type (RFC 3550 §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SdesType(pub u8);

impl SdesType {
    pub const CNAME: SdesType = SdesType(1);
    pub const NAME: SdesType = SdesType(2);
    pub const EMAIL: SdesType = SdesType(3);
    pub const PHONE: SdesType = SdesType(4);
    pub const LOC: SdesType = SdesType(5);
    pub const TOOL: SdesType = SdesType(6);
    pub const NOTE: SdesType = SdesType(7);
    pub const PRIV: SdesType = SdesType(8);
}

/// One SDES item: its type and raw value (UTF-8 by the RFC, not checked;
/// a PRIV item keeps its prefix length and prefix inside `value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    pub kind: SdesType,
    pub value: &'a [u8],
}

/// The items describing one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    pub ssrc: Ssrc,
    pub items: Vec<SdesItem<'a>>,
}

impl<'a> SdesChunk<'a> {
    /// The first CNAME item's value.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items
            .iter()
            .find(|item| item.kind == SdesType::CNAME)
            .map(|item| item.value)
    }
}

/// BYE: the sources leaving, with an optional reason (RFC 3550 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bye<'a> {
    pub sources: Vec<Ssrc>,
    /// Reason for leaving, raw (UTF-8 by the RFC, not checked).
    pub reason: Option<&'a [u8]>,
}

/// APP: application-defined, kept raw (RFC 3550 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    /// The 5-bit subtype in the count field.
    pub subtype: u8,
    pub ssrc: Ssrc,
    /// Four ASCII characters, e.g. `*b"PING"`.
    pub name: [u8; 4],
    /// Application data (whole words).
    pub data: &'a [u8],
}

/// A packet type this module does not interpret, kept so it can be skipped
/// or forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unknown<'a> {
    pub packet_type: u8,
    /// The 5-bit count/format field.
    pub count: u8,
    /// Everything after the 4-byte header, padding removed.
    pub body: &'a [u8],
}

/// One RTCP packet of a compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    Sdes(Vec<SdesChunk<'a>>),
    Bye(Bye<'a>),
    App(App<'a>),
    Unknown(Unknown<'a>),
}

/// Why a datagram is not a usable RTCP compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtcpError {
    #[error("empty datagram: a compound RTCP packet holds at least one packet")]
    Empty,
    #[error("{0} bytes left: an RTCP header is 4")]
    TooShort(usize),
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    #[error("packet length {declared} bytes, but only {available} remain")]
    LengthOverrun { declared: usize, available: usize },
    #[error("padding count {0} is zero or larger than the packet body")]
    BadPadding(u8),
    #[error("padding on a packet that is not the last of the compound packet")]
    PaddingNotLast,
    #[error("packet type {packet_type} ends before its {what}")]
    Truncated { packet_type: u8, what: &'static str },
}

/// Why packets could not be serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtcpWriteError {
    #[error("the buffer holds {available} bytes, the packet needs {needed}")]
    BufferTooSmall { needed: usize, available: usize },
    #[error("{0} report blocks, chunks or sources: the count field holds at most 31")]
    TooMany(usize),
    #[error("an SDES item or BYE reason of {0} bytes: at most 255 fit")]
    TextTooLong(usize),
    #[error("{0} bytes of extension, APP or unknown data is not a whole number of 32-bit words")]
    NotAligned(usize),
    #[error("the APP subtype {0} does not fit in 5 bits")]
    BadSubtype(u8),
    #[error("a packet of {0} bytes is longer than the 16-bit length field allows")]
    TooLong(usize),
}

/// Iterator over the packets of a compound RTCP packet; see
/// [`parse_compound`]. After an error it ends.
#[derive(Debug, Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
}

impl<'a> Compound<'a> {
    pub fn new(datagram: &'a [u8]) -> Self {
        Compound { rest: datagram }
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let result = parse_one(self.rest);
        match result {
            Ok((packet, len)) => {
                self.rest = &self.rest[len..];
                Some(Ok(packet))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// Parses a whole compound packet with the relaxed checks described in the
/// module documentation.
pub fn parse_compound(datagram: &[u8]) -> Result<Vec<RtcpPacket<'_>>, RtcpError> {
    if datagram.is_empty() {
        return Err(RtcpError::Empty);
    }
    Compound::new(datagram).collect()
}

/// Whether `packets` follow RFC 3550 §6.1 to the letter: the first is an SR
/// or RR, and an SDES packet carries a CNAME for the reporter.
pub fn is_rfc3550_compound(packets: &[RtcpPacket<'_>]) -> bool {
    let reporter = match packets.first() {
        Some(RtcpPacket::SenderReport(sr)) => sr.ssrc,
        Some(RtcpPacket::ReceiverReport(rr)) => rr.ssrc,
        _ => return false,
    };
    packets.iter().any(|packet| match packet {
        RtcpPacket::Sdes(chunks) => chunks
            .iter()
            .any(|chunk| chunk.ssrc == reporter && chunk.cname().is_some()),
        _ => false,
    })
}

impl RtcpPacket<'_> {
    /// The RTCP packet type (PT field).
    pub fn packet_type(&self) -> u8 {
        match self {
            RtcpPacket::SenderReport(_) => PT_SR,
            RtcpPacket::ReceiverReport(_) => PT_RR,
            RtcpPacket::Sdes(_) => PT_SDES,
            RtcpPacket::Bye(_) => PT_BYE,
            RtcpPacket::App(_) => PT_APP,
            RtcpPacket::Unknown(unknown) => unknown.packet_type,
        }
    }

    /// Length of the serialised packet, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + match self {
                RtcpPacket::SenderReport(sr) => {
                    4 + 20 + REPORT_BLOCK_LEN * sr.reports.len() + sr.extension.len()
                }
                RtcpPacket::ReceiverReport(rr) => {
                    4 + REPORT_BLOCK_LEN * rr.reports.len() + rr.extension.len()
                }
                RtcpPacket::Sdes(chunks) => chunks.iter().map(chunk_len).sum(),
                RtcpPacket::Bye(bye) => {
                    let reason = bye.reason.map_or(0, |reason| 1 + reason.len());
                    4 * bye.sources.len() + reason.next_multiple_of(4)
                }
                RtcpPacket::App(app) => 8 + app.data.len(),
                RtcpPacket::Unknown(unknown) => unknown.body.len(),
            }
    }

    /// Serialises the packet (unpadded) into the front of `out`; returns its
    /// length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpWriteError> {
        self.check()?;
        let len = self.encoded_len();
        if len / 4 - 1 > usize::from(u16::MAX) {
            return Err(RtcpWriteError::TooLong(len));
        }
        if out.len() < len {
            return Err(RtcpWriteError::BufferTooSmall {
                needed: len,
                available: out.len(),
            });
        }
        let mut w = Writer {
            out: &mut out[..len],
            pos: 0,
        };
        let count = match self {
            RtcpPacket::SenderReport(sr) => sr.reports.len() as u8,
            RtcpPacket::ReceiverReport(rr) => rr.reports.len() as u8,
            RtcpPacket::Sdes(chunks) => chunks.len() as u8,
            RtcpPacket::Bye(bye) => bye.sources.len() as u8,
            RtcpPacket::App(app) => app.subtype,
            RtcpPacket::Unknown(unknown) => unknown.count & 0x1F,
        };
        w.u8(2 << 6 | count);
        w.u8(self.packet_type());
        w.u16((len / 4 - 1) as u16);
        match self {
            RtcpPacket::SenderReport(sr) => {
                w.u32(sr.ssrc.0);
                w.u32((sr.info.ntp.0 >> 32) as u32);
                w.u32(sr.info.ntp.0 as u32);
                w.u32(sr.info.rtp_timestamp);
                w.u32(sr.info.packet_count);
                w.u32(sr.info.octet_count);
                sr.reports.iter().for_each(|block| w.report_block(block));
                w.bytes(sr.extension);
            }
            RtcpPacket::ReceiverReport(rr) => {
                w.u32(rr.ssrc.0);
                rr.reports.iter().for_each(|block| w.report_block(block));
                w.bytes(rr.extension);
            }
            RtcpPacket::Sdes(chunks) => {
                for chunk in chunks {
                    let end = w.pos + chunk_len(chunk);
                    w.u32(chunk.ssrc.0);
                    for item in &chunk.items {
                        w.u8(item.kind.0);
                        w.u8(item.value.len() as u8);
                        w.bytes(item.value);
                    }
                    // The null item, then zeros to the word boundary.
                    w.zeros_to(end);
                }
            }
            RtcpPacket::Bye(bye) => {
                bye.sources.iter().for_each(|ssrc| w.u32(ssrc.0));
                if let Some(reason) = bye.reason {
                    w.u8(reason.len() as u8);
                    w.bytes(reason);
                }
                w.zeros_to(len);
            }
            RtcpPacket::App(app) => {
                w.u32(app.ssrc.0);
                w.bytes(&app.name);
                w.bytes(app.data);
            }
            RtcpPacket::Unknown(unknown) => w.bytes(unknown.body),
        }
        debug_assert_eq!(w.pos, len, "encoded_len matches what write writes");
        Ok(len)
    }

    fn check(&self) -> Result<(), RtcpWriteError> {
        let aligned = |data: &[u8]| {
            if data.len() & 3 == 0 {
                Ok(())
            } else {
                Err(RtcpWriteError::NotAligned(data.len()))
            }
        };
        let count = |n: usize| {
            if n <= MAX_COUNT {
                Ok(())
            } else {
                Err(RtcpWriteError::TooMany(n))
            }
        };
        let text = |t: &[u8]| {
            if t.len() <= 255 {
                Ok(())
            } else {
                Err(RtcpWriteError::TextTooLong(t.len()))
            }
        };
        match self {
            RtcpPacket::SenderReport(sr) => {
                count(sr.reports.len())?;
                aligned(sr.extension)
            }
            RtcpPacket::ReceiverReport(rr) => {
                count(rr.reports.len())?;
                aligned(rr.extension)
            }
            RtcpPacket::Sdes(chunks) => {
                count(chunks.len())?;
                chunks
                    .iter()
                    .flat_map(|chunk| &chunk.items)
                    .try_for_each(|item| text(item.value))
            }
            RtcpPacket::Bye(bye) => {
                count(bye.sources.len())?;
                bye.reason.map_or(Ok(()), text)
            }
            RtcpPacket::App(app) => {
                if app.subtype > 31 {
                    return Err(RtcpWriteError::BadSubtype(app.subtype));
                }
                aligned(app.data)
            }
            RtcpPacket::Unknown(unknown) => aligned(unknown.body),
        }
    }
}

/// Serialises `packets` back to back into `out` as one compound packet;
/// returns its length.
pub fn write_compound(packets: &[RtcpPacket<'_>], out: &mut [u8]) -> Result<usize, RtcpWriteError> {
    let needed: usize = packets.iter().map(RtcpPacket::encoded_len).sum();
    if out.len() < needed {
        return Err(RtcpWriteError::BufferTooSmall {
            needed,
            available: out.len(),
        });
    }
    let mut pos = 0;
    for packet in packets {
        pos += packet.write(&mut out[pos..])?;
    }
    Ok(pos)
}

/// Length of an SDES chunk: SSRC, items, at least one null octet, padding
/// to the next word (RFC 3550 §6.5).
fn chunk_len(chunk: &SdesChunk<'_>) -> usize {
    let items: usize = chunk.items.iter().map(|item| 2 + item.value.len()).sum();
    4 + (items / 4 + 1) * 4
}

/// Parses the packet at the start of `buf`; returns it and its length.
fn parse_one(buf: &[u8]) -> Result<(RtcpPacket<'_>, usize), RtcpError> {
    if buf.len() < HEADER_LEN {
        return Err(RtcpError::TooShort(buf.len()));
    }
    let version = buf[0] >> 6;
    if version != 2 {
        return Err(RtcpError::BadVersion(version));
    }
    let padded = buf[0] & 0x20 != 0;
    let count = buf[0] & 0x1F;
    let packet_type = buf[1];
    let len = (usize::from(be16(&buf[2..4])) + 1) * 4;
    if len > buf.len() {
        return Err(RtcpError::LengthOverrun {
            declared: len,
            available: buf.len(),
        });
    }
    let mut body = &buf[HEADER_LEN..len];
    if padded {
        if len != buf.len() {
            return Err(RtcpError::PaddingNotLast);
        }
        let pad = buf[len - 1];
        if pad == 0 || usize::from(pad) > body.len() {
            return Err(RtcpError::BadPadding(pad));
        }
        body = &body[..body.len() - usize::from(pad)];
    }
    let truncated = |what| RtcpError::Truncated { packet_type, what };
    let mut r = Reader { data: body };
    let packet = match packet_type {
        PT_SR => {
            let ssrc = Ssrc(r.u32().ok_or(truncated("sender SSRC"))?);
            let info = r.sender_info().ok_or(truncated("sender info"))?;
            let reports = r.report_blocks(count).ok_or(truncated("report blocks"))?;
            RtcpPacket::SenderReport(SenderReport {
                ssrc,
                info,
                reports,
                extension: r.data,
            })
        }
        PT_RR => {
            let ssrc = Ssrc(r.u32().ok_or(truncated("reporter SSRC"))?);
            let reports = r.report_blocks(count).ok_or(truncated("report blocks"))?;
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc,
                reports,
                extension: r.data,
            })
        }
        PT_SDES => RtcpPacket::Sdes(r.sdes_chunks(count).ok_or(truncated("SDES chunks"))?),
        PT_BYE => {
            let mut sources = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                sources.push(Ssrc(r.u32().ok_or(truncated("BYE sources"))?));
            }
            let reason = match r.u8() {
                // Zero padding after the sources reads as an empty reason.
                Some(0) | None => None,
                Some(n) => Some(r.take(usize::from(n)).ok_or(truncated("BYE reason"))?),
            };
            RtcpPacket::Bye(Bye { sources, reason })
        }
        PT_APP => {
            let ssrc = Ssrc(r.u32().ok_or(truncated("APP SSRC"))?);
            let name = r.take(4).ok_or(truncated("APP name"))?;
            RtcpPacket::App(App {
                subtype: count,
                ssrc,
                name: [name[0], name[1], name[2], name[3]],
                data: r.data,
            })
        }
        _ => RtcpPacket::Unknown(Unknown {
            packet_type,
            count,
            body,
        }),
    };
    Ok((packet, len))
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.data.len() {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(be32)
    }

    fn sender_info(&mut self) -> Option<SenderInfo> {
        let b = self.take(20)?;
        Some(SenderInfo {
            ntp: NtpTime(u64::from(be32(&b[0..4])) << 32 | u64::from(be32(&b[4..8]))),
            rtp_timestamp: be32(&b[8..12]),
            packet_count: be32(&b[12..16]),
            octet_count: be32(&b[16..20]),
        })
    }

    fn report_blocks(&mut self, count: u8) -> Option<Vec<ReportBlock>> {
        let mut blocks = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let b = self.take(REPORT_BLOCK_LEN)?;
            // Sign-extend the 24-bit cumulative loss.
            let cumulative_lost = i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8;
            blocks.push(ReportBlock {
                ssrc: Ssrc(be32(&b[0..4])),
                fraction_lost: b[4],
                cumulative_lost,
                ext_highest_seq: be32(&b[8..12]),
                jitter: be32(&b[12..16]),
                lsr: be32(&b[16..20]),
                dlsr: be32(&b[20..24]),
            });
        }
        Some(blocks)
    }

    /// SDES chunks start on word boundaries; the body starts on one too, so
    /// alignment is counted from `start`.
    fn sdes_chunks(&mut self, count: u8) -> Option<Vec<SdesChunk<'a>>> {
        let start = self.data.len();
        let mut chunks = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let ssrc = Ssrc(self.u32()?);
            let mut items = Vec::new();
            loop {
                match self.u8() {
                    // The null item ends the list; so, leniently, does the
                    // end of the packet.
                    Some(0) | None => break,
                    Some(kind) => {
                        let len = usize::from(self.u8()?);
                        let value = self.take(len)?;
                        items.push(SdesItem {
                            kind: SdesType(kind),
                            value,
                        });
                    }
                }
            }
            let used = start - self.data.len();
            let pad = used.next_multiple_of(4) - used;
            self.take(pad.min(self.data.len()));
            chunks.push(SdesChunk { ssrc, items });
        }
        Some(chunks)
    }
}

struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.out[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }

    fn u8(&mut self, value: u8) {
        self.bytes(&[value]);
    }

    fn u16(&mut self, value: u16) {
        self.bytes(&value.to_be_bytes());
    }

    fn u32(&mut self, value: u32) {
        self.bytes(&value.to_be_bytes());
    }

    fn zeros_to(&mut self, end: usize) {
        self.out[self.pos..end].fill(0);
        self.pos = end;
    }

    fn report_block(&mut self, block: &ReportBlock) {
        self.u32(block.ssrc.0);
        self.u8(block.fraction_lost);
        let lost = block.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF);
        self.bytes(&lost.to_be_bytes()[1..]);
        self.u32(block.ext_highest_seq);
        self.u32(block.jitter);
        self.u32(block.lsr);
        self.u32(block.dlsr);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rtp::header::tests::XorShift;

    const CNAME: &[u8] = b"alice@10.0.0.2";

    /// What baresip sends on its RTCP port: an APP "PING" (libre's NAT
    /// keep-alive, data "PONG") leading an SR with no report blocks and an
    /// SDES CNAME, built field by field from RFC 3550 §6.4.1, §6.5.1, §6.7.
    #[rustfmt::skip]
    fn baresip_compound() -> Vec<u8> {
        let mut bytes = vec![
            // APP: V=2 P=0 subtype=0, PT=204, length 3 (16 bytes)
            0x80, 204, 0x00, 0x03,
            0x5E, 0xED, 0x00, 0x01,     // SSRC
            b'P', b'I', b'N', b'G',     // name
            b'P', b'O', b'N', b'G',     // data
            // SR: V=2 P=0 RC=0, PT=200, length 6 (28 bytes)
            0x80, 200, 0x00, 0x06,
            0x5E, 0xED, 0x00, 0x01,     // SSRC of sender
            0xE9, 0x6E, 0x4F, 0x80,     // NTP seconds: 3916320640
            0x80, 0x00, 0x00, 0x00,     // NTP fraction: 0.5 s
            0x00, 0x01, 0xE2, 0x40,     // RTP timestamp 123456
            0x00, 0x00, 0x00, 0xFA,     // sender's packet count 250
            0x00, 0x00, 0xA1, 0x22,     // sender's octet count 41250
            // SDES: V=2 P=0 SC=1, PT=202, length 6 (28 bytes)
            0x81, 202, 0x00, 0x06,
            0x5E, 0xED, 0x00, 0x01,     // SSRC/CSRC_1
            0x01, 14,                   // CNAME, 14 octets
        ];
        bytes.extend_from_slice(CNAME);
        bytes.extend_from_slice(&[0, 0, 0, 0]); // null item and padding: 4+2+14+4 = 24
        bytes
    }

    #[test]
    fn parses_baresips_compound() {
        let bytes = baresip_compound();
        assert_eq!(bytes.len(), 16 + 28 + 28);
        let packets = parse_compound(&bytes).unwrap();
        assert_eq!(packets.len(), 3);
        assert_eq!(
            packets[0],
            RtcpPacket::App(App {
                subtype: 0,
                ssrc: Ssrc(0x5EED_0001),
                name: *b"PING",
                data: b"PONG",
            })
        );
        let RtcpPacket::SenderReport(sr) = &packets[1] else {
            panic!("second packet is the SR: {:?}", packets[1]);
        };
        assert_eq!(sr.ssrc, Ssrc(0x5EED_0001));
        assert_eq!(sr.info.ntp, NtpTime(0xE96E_4F80_8000_0000));
        assert_eq!(sr.info.rtp_timestamp, 123_456);
        assert_eq!(sr.info.packet_count, 250);
        assert_eq!(sr.info.octet_count, 41_250);
        assert!(sr.reports.is_empty());
        assert!(sr.extension.is_empty());
        let RtcpPacket::Sdes(chunks) = &packets[2] else {
            panic!("third packet is SDES: {:?}", packets[2]);
        };
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].cname(), Some(CNAME));
        // APP first breaks RFC 3550 §6.1; we accept it but can tell.
        assert!(!is_rfc3550_compound(&packets));
        assert!(is_rfc3550_compound(&packets[1..]));

        let mut out = [0u8; 128];
        let n = write_compound(&packets, &mut out).unwrap();
        assert_eq!(&out[..n], &bytes[..]);
    }

    #[test]
    fn rr_with_report_blocks_round_trips() {
        let block = ReportBlock {
            ssrc: Ssrc(0xABCD_0001),
            fraction_lost: 25,
            cumulative_lost: -3,
            ext_highest_seq: 0x0001_0005,
            jitter: 160,
            lsr: 0x4F80_8000,
            dlsr: 0x0001_8000,
        };
        let rr = RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: Ssrc(7),
            reports: vec![block, ReportBlock::default()],
            extension: &[],
        });
        let mut out = [0u8; 64];
        let n = rr.write(&mut out).unwrap();
        assert_eq!(n, 8 + 48);
        assert_eq!(&out[..4], &[0x82, 201, 0x00, 13]);
        // cumulative lost -3 as 24-bit two's complement
        assert_eq!(&out[12..16], &[25, 0xFF, 0xFF, 0xFD]);
        assert_eq!(parse_compound(&out[..n]).unwrap(), vec![rr]);
    }

    #[test]
    fn cumulative_lost_is_clamped_to_24_bits() {
        let rr = RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: Ssrc(1),
            reports: vec![ReportBlock {
                cumulative_lost: 1 << 30,
                ..ReportBlock::default()
            }],
            extension: &[],
        });
        let mut out = [0u8; 32];
        let n = rr.write(&mut out).unwrap();
        let RtcpPacket::ReceiverReport(back) = &parse_compound(&out[..n]).unwrap()[0] else {
            panic!("an RR");
        };
        assert_eq!(back.reports[0].cumulative_lost, 0x7F_FFFF);
    }

    #[test]
    fn sdes_keeps_every_item_and_bye_its_reason() {
        let sdes = RtcpPacket::Sdes(vec![
            SdesChunk {
                ssrc: Ssrc(1),
                items: vec![
                    SdesItem {
                        kind: SdesType::CNAME,
                        value: b"a@b",
                    },
                    SdesItem {
                        kind: SdesType::TOOL,
                        value: b"ipphone",
                    },
                    SdesItem {
                        kind: SdesType::PRIV,
                        value: b"\x03abcxyz",
                    },
                ],
            },
            SdesChunk {
                ssrc: Ssrc(2),
                items: vec![],
            },
        ]);
        let bye = RtcpPacket::Bye(Bye {
            sources: vec![Ssrc(1)],
            reason: Some(b"hangup"),
        });
        let silent_bye = RtcpPacket::Bye(Bye {
            sources: vec![Ssrc(2), Ssrc(3)],
            reason: None,
        });
        let packets = [sdes, bye, silent_bye];
        let mut out = [0u8; 256];
        let n = write_compound(&packets, &mut out).unwrap();
        assert_eq!(n & 3, 0, "whole 32-bit words");
        // BYE with reason: header, SSRC, 1 + 6 octets padded to 8.
        assert_eq!(packets[1].encoded_len(), 4 + 4 + 8);
        assert_eq!(parse_compound(&out[..n]).unwrap(), packets);
    }

    #[test]
    fn unknown_types_are_skipped_not_fatal() {
        #[rustfmt::skip]
        let bytes = [
            0x81, 205, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2, // RTPFB NACK-ish, 12 bytes
            0x80, 201, 0x00, 0x01, 0, 0, 0, 9,              // empty RR
        ];
        let packets = parse_compound(&bytes).unwrap();
        assert_eq!(
            packets[0],
            RtcpPacket::Unknown(Unknown {
                packet_type: 205,
                count: 1,
                body: &[0, 0, 0, 1, 0, 0, 0, 2],
            })
        );
        assert_eq!(packets[1].packet_type(), PT_RR);
        let mut out = [0u8; 32];
        assert_eq!(write_compound(&packets, &mut out), Ok(bytes.len()));
        assert_eq!(&out[..bytes.len()], &bytes);
    }

    #[test]
    fn padding_only_on_the_last_packet() {
        // An RR padded with 4 octets (count in the last one).
        let padded = [0xA0, 201, 0x00, 0x02, 0, 0, 0, 9, 0, 0, 0, 4];
        let packets = parse_compound(&padded).unwrap();
        assert_eq!(
            packets,
            vec![RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: Ssrc(9),
                reports: vec![],
                extension: &[],
            })]
        );
        let mut twice = padded.to_vec();
        twice.extend_from_slice(&padded);
        assert_eq!(parse_compound(&twice), Err(RtcpError::PaddingNotLast));
        let mut bad = padded;
        bad[11] = 9;
        assert_eq!(parse_compound(&bad), Err(RtcpError::BadPadding(9)));
    }

    #[test]
    fn malformed_compounds_are_typed_errors() {
        assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
        assert_eq!(parse_compound(&[0x80, 201]), Err(RtcpError::TooShort(2)));
        assert_eq!(
            parse_compound(&[0x40, 201, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::BadVersion(1))
        );
        assert_eq!(
            parse_compound(&[0x80, 201, 0, 2, 0, 0, 0, 1]),
            Err(RtcpError::LengthOverrun {
                declared: 12,
                available: 8
            })
        );
        // RC=1 but no room for the block.
        assert_eq!(
            parse_compound(&[0x81, 201, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::Truncated {
                packet_type: PT_RR,
                what: "report blocks"
            })
        );
        // Trailing bytes that are not a packet.
        let mut trailing = baresip_compound();
        trailing.extend_from_slice(&[0x80, 0x00]);
        assert_eq!(parse_compound(&trailing), Err(RtcpError::TooShort(2)));
    }

    #[test]
    fn write_checks_limits() {
        let rr = RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: Ssrc(1),
            reports: vec![ReportBlock::default(); 32],
            extension: &[],
        });
        assert_eq!(rr.write(&mut [0u8; 1024]), Err(RtcpWriteError::TooMany(32)));
        let long = [b'x'; 256];
        let bye = RtcpPacket::Bye(Bye {
            sources: vec![],
            reason: Some(&long),
        });
        assert_eq!(
            bye.write(&mut [0u8; 1024]),
            Err(RtcpWriteError::TextTooLong(256))
        );
        let app = RtcpPacket::App(App {
            subtype: 0,
            ssrc: Ssrc(1),
            name: *b"TEST",
            data: b"odd",
        });
        assert_eq!(
            app.write(&mut [0u8; 64]),
            Err(RtcpWriteError::NotAligned(3))
        );
        let sdes = RtcpPacket::Sdes(vec![]);
        assert_eq!(
            sdes.write(&mut [0u8; 3]),
            Err(RtcpWriteError::BufferTooSmall {
                needed: 4,
                available: 3
            })
        );
    }

    #[test]
    fn ntp_from_system_time() {
        let t = UNIX_EPOCH + Duration::new(1_707_331_840, 500_000_000);
        let ntp = NtpTime::from_system_time(t);
        assert_eq!(ntp.0 >> 32, 1_707_331_840 + NTP_UNIX_OFFSET);
        assert_eq!(ntp.0 as u32, 0x8000_0000);
        assert_eq!(ntp.middle32() & 0xFFFF, 0x8000);
        assert_eq!(
            NtpTime::from_system_time(UNIX_EPOCH).0,
            NTP_UNIX_OFFSET << 32
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x0123_4567_89AB_CDEF);
        let mut buf = [0u8; 128];
        for round in 0..20_000 {
            let len = (rng.next_u64() % 129) as usize;
            rng.fill(&mut buf[..len]);
            if round % 2 == 0 && len >= 4 {
                // Make the header plausible so the bodies get exercised.
                buf[0] = 0x80 | (buf[0] & 0x3F);
                buf[1] = 200 + (buf[1] % 6);
                let words = (len / 4 - 1) as u16;
                buf[2..4].copy_from_slice(&words.to_be_bytes());
            }
            if let Ok(packets) = parse_compound(&buf[..len]) {
                let mut out = [0u8; 256];
                // Written back (padding dropped), a parsed compound parses
                // again, and writing that changes nothing.
                if let Ok(n) = write_compound(&packets, &mut out) {
                    let again = parse_compound(&out[..n]).unwrap();
                    assert_eq!(again.len(), packets.len());
                    let mut out2 = [0u8; 256];
                    assert_eq!(write_compound(&again, &mut out2), Ok(n));
                    assert_eq!(out[..n], out2[..n], "a fixed point after one round");
                }
            }
        }
    }
}
