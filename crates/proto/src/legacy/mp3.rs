//! Framing of the article's MP3 stream: MPEG audio frame headers (ISO/IEC
//! 11172-3 §2.4.1.3 and §2.4.2.3, extended to lower rates by ISO/IEC 13818-3
//! §2.4.2.3 and to MPEG 2.5) and a streaming [`Framer`] that finds frames in a
//! TCP byte stream, skips ID3 tags and resynchronises after garbage.
//!
//! The article's stream is what `lame -r -s 16 -m m -b 32 - -` writes: MPEG-2
//! layer III, 16 kHz mono, 32 kbit/s, so every frame is 144 bytes and 576
//! samples (36 ms). Nothing else marks where a frame starts, so the framer
//! hands each frame out the moment its last byte arrives: waiting for the next
//! header to confirm it would add a frame of delay to every call.

use thiserror::Error;

/// Length of a frame header in bytes.
pub const HEADER_LEN: usize = 4;

/// The longest frame any valid header describes: MPEG-1 layer II at
/// 384 kbit/s and 32 kHz with padding (144 * 384000 / 32000 + 1).
pub const MAX_FRAME_LEN: usize = 1729;

/// How many bytes a [`Framer`] holds at most. Enough for the last frame
/// handed out (kept in case the lock turns out to be false), a whole frame
/// after it and the header after that, with room to spare.
pub const FRAMER_CAPACITY: usize = 16 * 1024;

/// MPEG audio version: the `ID` bit of the header, plus the unofficial
/// MPEG 2.5 extension that takes the last bit of the sync word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// ISO/IEC 11172-3: 32, 44.1 and 48 kHz.
    Mpeg1,
    /// ISO/IEC 13818-3 "lower sampling frequencies": 16, 22.05 and 24 kHz.
    Mpeg2,
    /// Fraunhofer's extension: 8, 11.025 and 12 kHz, layer III only.
    Mpeg25,
}

/// MPEG audio layer (ISO/IEC 11172-3 §2.4.2.3, `layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    I,
    II,
    III,
}

/// Channel mode (ISO/IEC 11172-3 §2.4.2.3, `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelMode {
    Stereo,
    JointStereo,
    DualChannel,
    Mono,
}

impl ChannelMode {
    /// Number of audio channels the frame carries.
    pub fn channels(self) -> u8 {
        match self {
            ChannelMode::Mono => 1,
            _ => 2,
        }
    }
}

/// Why four bytes are not a usable frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("fewer than 4 bytes: a frame header is 32 bits")]
    TooShort,
    #[error("no sync word (11 set bits) at the start")]
    NoSync,
    #[error("reserved MPEG version (ID bits 01)")]
    ReservedVersion,
    #[error("reserved layer (layer bits 00)")]
    ReservedLayer,
    #[error("MPEG 2.5 defines layer III only")]
    Mpeg25NotLayer3,
    #[error(
        "free-format bitrate (index 0) is not supported: its frame length is not in the header"
    )]
    FreeFormat,
    #[error("forbidden bitrate index 15")]
    ForbiddenBitrate,
    #[error("reserved sampling frequency index 3")]
    ReservedSampleRate,
    #[error("reserved emphasis value 2")]
    ReservedEmphasis,
}

/// Why bytes are not an ID3v2 tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TagError {
    #[error("fewer than 10 bytes: an ID3v2 header is 10 bytes")]
    TooShort,
    #[error("no \"ID3\" identifier")]
    NotId3,
    #[error("ID3v2 version 2.{0} is not one of 2.2, 2.3 and 2.4")]
    UnknownVersion(u8),
    #[error("ID3v2 size is not a synchsafe integer (a byte has its top bit set)")]
    BadSize,
}

/// A parsed MPEG audio frame header. Only [`FrameHeader::parse`] makes one,
/// so every value describes a frame whose length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    version: Version,
    layer: Layer,
    protected: bool,
    bitrate_kbps: u32,
    sample_rate: u32,
    padding: bool,
    mode: ChannelMode,
}

impl FrameHeader {
    /// Parses the 32-bit header at the start of `bytes` (ISO/IEC 11172-3
    /// §2.4.1.3):
    ///
    /// ```text
    /// AAAAAAAA AAABBCCD EEEEFFGH IIJJKLMM
    /// A sync (MPEG 2.5 uses only the first 11 bits)  B version  C layer
    /// D protection_bit (0: a CRC follows)  E bitrate_index  F sampling_frequency
    /// G padding_bit  H private_bit  I mode  J mode_extension
    /// K copyright  L original/copy  M emphasis
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Self, HeaderError> {
        let &[b0, b1, b2, b3, ..] = bytes else {
            return Err(HeaderError::TooShort);
        };
        if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
            return Err(HeaderError::NoSync);
        }
        let version = match (b1 >> 3) & 0b11 {
            0b11 => Version::Mpeg1,
            0b10 => Version::Mpeg2,
            0b00 => Version::Mpeg25,
            _ => return Err(HeaderError::ReservedVersion),
        };
        let layer = match (b1 >> 1) & 0b11 {
            0b11 => Layer::I,
            0b10 => Layer::II,
            0b01 => Layer::III,
            _ => return Err(HeaderError::ReservedLayer),
        };
        if version == Version::Mpeg25 && layer != Layer::III {
            return Err(HeaderError::Mpeg25NotLayer3);
        }
        let bitrate_index = usize::from(b2 >> 4);
        if bitrate_index == 0 {
            return Err(HeaderError::FreeFormat);
        }
        let table = match (version, layer) {
            (Version::Mpeg1, Layer::I) => &BITRATES_MPEG1_LAYER1,
            (Version::Mpeg1, Layer::II) => &BITRATES_MPEG1_LAYER2,
            (Version::Mpeg1, Layer::III) => &BITRATES_MPEG1_LAYER3,
            (_, Layer::I) => &BITRATES_MPEG2_LAYER1,
            (_, _) => &BITRATES_MPEG2_LAYER23,
        };
        let bitrate_kbps = *table
            .get(bitrate_index)
            .ok_or(HeaderError::ForbiddenBitrate)?;
        let base_rate = *[44_100, 48_000, 32_000]
            .get(usize::from((b2 >> 2) & 0b11))
            .ok_or(HeaderError::ReservedSampleRate)?;
        let sample_rate = match version {
            Version::Mpeg1 => base_rate,
            Version::Mpeg2 => base_rate / 2,
            Version::Mpeg25 => base_rate / 4,
        };
        if b3 & 0b11 == 0b10 {
            return Err(HeaderError::ReservedEmphasis);
        }
        let mode = match b3 >> 6 {
            0b00 => ChannelMode::Stereo,
            0b01 => ChannelMode::JointStereo,
            0b10 => ChannelMode::DualChannel,
            _ => ChannelMode::Mono,
        };
        Ok(Self {
            version,
            layer,
            protected: b1 & 1 == 0,
            bitrate_kbps,
            sample_rate,
            padding: b2 & 0b10 != 0,
            mode,
        })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn layer(&self) -> Layer {
        self.layer
    }

    /// Whether a 16-bit CRC follows the header (`protection_bit` is 0).
    pub fn protected(&self) -> bool {
        self.protected
    }

    pub fn bitrate_kbps(&self) -> u32 {
        self.bitrate_kbps
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn padding(&self) -> bool {
        self.padding
    }

    pub fn mode(&self) -> ChannelMode {
        self.mode
    }

    pub fn channels(&self) -> u8 {
        self.mode.channels()
    }

    /// Samples per channel in one frame: 384 for layer I, 1152 for layer II
    /// and MPEG-1 layer III, 576 for layer III at the lower rates, which has
    /// one granule per frame instead of two (ISO/IEC 13818-3).
    pub fn samples_per_frame(&self) -> usize {
        match (self.layer, self.version) {
            (Layer::I, _) => 384,
            (Layer::II, _) | (Layer::III, Version::Mpeg1) => 1152,
            (Layer::III, _) => 576,
        }
    }

    /// Length of the whole frame in bytes, header included.
    ///
    /// ISO/IEC 11172-3 §2.4.2.3 (`padding_bit`): layer I counts in 4-byte
    /// slots, `(12 * bitrate / rate + padding) * 4`; layers II and III in bytes,
    /// `samples / 8 * bitrate / rate + padding`, which is `144 * bitrate /
    /// rate` for 1152 samples and `72 * bitrate / rate` for 576.
    pub fn frame_len(&self) -> usize {
        let bitrate = u64::from(self.bitrate_kbps) * 1000;
        let rate = u64::from(self.sample_rate);
        let padding = u64::from(self.padding);
        let len = match self.layer {
            Layer::I => (12 * bitrate / rate + padding) * 4,
            _ => self.samples_per_frame() as u64 / 8 * bitrate / rate + padding,
        };
        // At most MAX_FRAME_LEN (a test checks every header), so no overflow.
        len as usize
    }

    /// Length of the layer III side information that follows the header and
    /// its CRC (ISO/IEC 11172-3 §2.4.1.7; ISO/IEC 13818-3 shortens it to one
    /// granule). `None` for layers I and II, which have none.
    pub fn side_info_len(&self) -> Option<usize> {
        if self.layer != Layer::III {
            return None;
        }
        let mono = self.mode == ChannelMode::Mono;
        Some(match (self.version, mono) {
            (Version::Mpeg1, true) => 17,
            (Version::Mpeg1, false) => 32,
            (_, true) => 9,
            (_, false) => 17,
        })
    }

    /// Whether `next` can follow this header in one stream: the same
    /// version, layer and sample rate. Bitrate changes (VBR), and so may the
    /// channel mode, as minimp3 and mpg123 allow.
    pub fn same_stream(&self, next: &FrameHeader) -> bool {
        self.version == next.version
            && self.layer == next.layer
            && self.sample_rate == next.sample_rate
    }
}

const BITRATES_MPEG1_LAYER1: [u32; 15] = [
    0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
];
const BITRATES_MPEG1_LAYER2: [u32; 15] = [
    0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
];
const BITRATES_MPEG1_LAYER3: [u32; 15] = [
    0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
const BITRATES_MPEG2_LAYER1: [u32; 15] = [
    0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
];
const BITRATES_MPEG2_LAYER23: [u32; 15] =
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/// Total length of the ID3v2 tag whose header starts `bytes` (id3.org
/// ID3v2.4 structure §3.1): the 10-byte header, the size it gives as a
/// 28-bit synchsafe integer, and a 10-byte footer if its flag is set.
pub fn id3v2_len(bytes: &[u8]) -> Result<usize, TagError> {
    let Some(&[i, d, three, major, revision, flags, s0, s1, s2, s3]) = bytes.get(..10) else {
        return Err(TagError::TooShort);
    };
    if [i, d, three] != *b"ID3" {
        return Err(TagError::NotId3);
    }
    if !(2..=4).contains(&major) || revision == 0xFF {
        return Err(TagError::UnknownVersion(major));
    }
    if [s0, s1, s2, s3].iter().any(|&b| b & 0x80 != 0) {
        return Err(TagError::BadSize);
    }
    let size = (usize::from(s0) << 21) | (usize::from(s1) << 14) | (usize::from(s2) << 7);
    let size = size | usize::from(s3);
    let footer = if major == 4 && flags & 0x10 != 0 {
        10
    } else {
        0
    };
    Ok(10 + size + footer)
}

/// Length of an ID3v1 tag: "TAG" and 125 bytes of fixed fields.
const ID3V1_LEN: usize = 128;

/// What the framer may lock onto at once, without waiting for a second
/// header to confirm the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    pub layer: Layer,
    /// Sample rate in Hz; it also fixes the version.
    pub sample_rate: u32,
    /// `None` accepts any channel mode.
    pub mode: Option<ChannelMode>,
}

impl Expect {
    /// The article's stream: layer III, 16 kHz, mono.
    pub const TCP_MP3: Expect = Expect {
        layer: Layer::III,
        sample_rate: 16_000,
        mode: Some(ChannelMode::Mono),
    };

    pub fn matches(&self, header: &FrameHeader) -> bool {
        header.layer == self.layer
            && header.sample_rate == self.sample_rate
            && self.mode.is_none_or(|m| m == header.mode)
    }
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Audio,
    /// A Xing VBR header frame, which LAME writes for VBR streams.
    Xing,
    /// The same as `Xing` for a CBR stream (LAME's "Info" tag).
    Info,
    /// Fraunhofer's VBRI header frame.
    Vbri,
}

impl FrameKind {
    /// Whether the frame is sound to decode, not a tag dressed as a frame.
    pub fn is_audio(self) -> bool {
        self == FrameKind::Audio
    }
}

/// One complete frame, header included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: FrameHeader,
    pub kind: FrameKind,
    pub bytes: &'a [u8],
    /// Bytes were skipped, or the framer lost the stream, since the
    /// previous frame: frames may be missing just before this one.
    pub resynced: bool,
}

/// Counters since the framer was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FramerStats {
    /// Audio frames handed out.
    pub frames: u64,
    /// Xing, Info and VBRI frames handed out.
    pub tag_frames: u64,
    /// Bytes skipped while hunting for a header: neither part of a frame
    /// handed out nor of an ID3v2 tag.
    pub garbage_bytes: u64,
    /// Bytes of ID3v2 and ID3v1 tags skipped.
    pub tag_bytes: u64,
    /// Times the header after a frame did not belong to the stream.
    pub lost_sync: u64,
}

/// Finds MPEG audio frames in a byte stream.
///
/// Push bytes in as they arrive with [`Framer::push`], then call
/// [`Framer::poll_frame`] until it returns `None`. A frame comes out as soon
/// as its last byte is in.
///
/// Hunting for the stream (at the start, or after the lock is lost), a
/// header that [`Expect`] describes is taken at once; any other needs the
/// header right after its frame to be of the same stream. Random bytes look
/// like an expected header (16 kHz mono layer III) about once in 800 000
/// positions, and a false lock costs one bad frame: the check after it fails
/// and the hunt resumes inside it. Taking expected frames at once also makes
/// the output the same however the bytes are split into pushes. An
/// unexpected candidate still waiting for its confirmation is dropped as soon
/// as a complete expected frame is buffered after it, so a false one in
/// garbage cannot hold the stream back.
///
/// Once locked, each frame is trusted while the header after it belongs to
/// the same stream. When it does not, the framer hunts again from the byte
/// after the start of the last frame it handed out, so a frame cut short and
/// followed by a good one costs only the bad frame.
///
/// The framer never holds more than [`FRAMER_CAPACITY`] bytes: `push` takes
/// what fits and returns how many bytes it took; the caller polls and pushes
/// the rest. Garbage is dropped as it is scanned and a frame is at most
/// [`MAX_FRAME_LEN`] bytes, so once `poll_frame` has returned `None` there is
/// room for at least `FRAMER_CAPACITY - 2 * MAX_FRAME_LEN - 4` more bytes.
/// ID3v2 tags of any size stream through the same way.
#[derive(Debug, Clone)]
pub struct Framer {
    expect: Expect,
    buf: Vec<u8>,
    /// Bytes before this index are no longer needed; `push` drops them.
    keep_from: usize,
    /// Where the next header is expected, or the hunt goes on.
    scan: usize,
    /// Bytes before this index were handed out in frames: skipping them
    /// again after a lost lock is not garbage.
    emitted_until: usize,
    /// Start of the last frame handed out, while locked.
    last_frame: Option<usize>,
    locked: Option<FrameHeader>,
    tag_remaining: usize,
    resynced: bool,
    stats: FramerStats,
}

impl Framer {
    pub fn new(expect: Expect) -> Self {
        Self {
            expect,
            buf: Vec::with_capacity(FRAMER_CAPACITY),
            keep_from: 0,
            scan: 0,
            emitted_until: 0,
            last_frame: None,
            locked: None,
            tag_remaining: 0,
            resynced: false,
            stats: FramerStats::default(),
        }
    }

    /// Appends as much of `bytes` as fits and returns how many bytes it
    /// took: all of them unless polling is overdue (see [`Framer`]).
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        self.compact();
        let n = bytes.len().min(FRAMER_CAPACITY - self.buf.len());
        self.buf.extend_from_slice(&bytes[..n]);
        n
    }

    /// The next complete frame, or `None` until more bytes are pushed.
    pub fn poll_frame(&mut self) -> Option<Frame<'_>> {
        let (start, header) = self.next_frame()?;
        let end = start + header.frame_len();
        let bytes = self.buf.get(start..end)?;
        let kind = frame_kind(&header, bytes);
        match kind {
            FrameKind::Audio => self.stats.frames += 1,
            _ => self.stats.tag_frames += 1,
        }
        let resynced = std::mem::take(&mut self.resynced);
        Some(Frame {
            header,
            kind,
            bytes,
            resynced,
        })
    }

    /// Whether the framer is locked onto a stream.
    pub fn is_locked(&self) -> bool {
        self.locked.is_some()
    }

    pub fn stats(&self) -> FramerStats {
        self.stats
    }

    /// Finds the next frame and advances past it; returns its start in
    /// `buf` and its header.
    fn next_frame(&mut self) -> Option<(usize, FrameHeader)> {
        loop {
            if self.tag_remaining > 0 {
                let n = self.tag_remaining.min(self.buf.len() - self.scan);
                self.scan += n;
                self.keep_from = self.scan;
                self.tag_remaining -= n;
                self.stats.tag_bytes += n as u64;
                if self.tag_remaining > 0 {
                    return None;
                }
            }
            let available = &self.buf[self.scan..];
            if let Some(reference) = self.locked {
                if available.len() < HEADER_LEN {
                    return None;
                }
                // Files sent one after another put their tags between frames:
                // ID3v1 (128 bytes at a file's end) and ID3v2 (at its start).
                // "TAG" is trusted only here; in garbage it proves nothing.
                if available.starts_with(b"TAG") {
                    self.tag_remaining = ID3V1_LEN;
                    self.last_frame = None;
                    continue;
                }
                if available.starts_with(b"ID3") {
                    match id3v2_len(available) {
                        Ok(len) => {
                            self.tag_remaining = len;
                            self.last_frame = None;
                            continue;
                        }
                        Err(TagError::TooShort) => return None,
                        Err(_) => {}
                    }
                }
                match FrameHeader::parse(available) {
                    Ok(header) if reference.same_stream(&header) => {
                        if available.len() < header.frame_len() {
                            return None;
                        }
                        return Some(self.take(header));
                    }
                    _ => self.lose_lock(),
                }
                continue;
            }

            // Hunting. An ID3v2 tag may start here; wait until its header is
            // in to tell.
            if available.len() < 10 && b"ID3".starts_with(&available[..available.len().min(3)]) {
                return None;
            }
            if let Ok(len) = id3v2_len(available) {
                self.tag_remaining = len;
                continue;
            }
            let header = match FrameHeader::parse(available) {
                Ok(header) => header,
                Err(HeaderError::TooShort) => return None,
                Err(_) => {
                    self.skip_to_candidate();
                    continue;
                }
            };
            let len = header.frame_len();
            let accept = if self.expect.matches(&header) {
                if available.len() < len {
                    return None;
                }
                true
            } else if let Some(next) = available.get(len..len + HEADER_LEN) {
                FrameHeader::parse(next).is_ok_and(|next| header.same_stream(&next))
            } else if self.expected_frame_ahead() {
                // Waiting to confirm this candidate would hold back a
                // complete expected frame behind it, and every frame after.
                false
            } else {
                // Not what we expect: wait for the next header to confirm.
                return None;
            };
            if accept {
                self.locked = Some(header);
                return Some(self.take(header));
            }
            self.skip_to_candidate();
        }
    }

    /// Whether a complete frame of the expected format starts after `scan`.
    fn expected_frame_ahead(&self) -> bool {
        let buffered = self.buf.len();
        (self.scan + 1..buffered).any(|at| {
            self.buf.get(at) == Some(&0xFF)
                && FrameHeader::parse(&self.buf[at..])
                    .is_ok_and(|h| self.expect.matches(&h) && at + h.frame_len() <= buffered)
        })
    }

    /// Hands out the frame at `scan` and keeps it buffered in case the
    /// header after it shows the lock was false.
    fn take(&mut self, header: FrameHeader) -> (usize, FrameHeader) {
        let start = self.scan;
        self.scan += header.frame_len();
        self.keep_from = start;
        self.emitted_until = self.emitted_until.max(self.scan);
        self.last_frame = Some(start);
        (start, header)
    }

    fn lose_lock(&mut self) {
        self.locked = None;
        self.stats.lost_sync += 1;
        self.resynced = true;
        if let Some(start) = self.last_frame.take() {
            self.scan = start + 1;
        }
        self.keep_from = self.scan;
    }

    /// Drops the byte at `scan` and everything after it that cannot start a
    /// header or an ID3v2 tag.
    fn skip_to_candidate(&mut self) {
        let rest = self.buf.get(self.scan + 1..).unwrap_or_default();
        let skip = 1 + rest
            .iter()
            .position(|&b| b == 0xFF || b == b'I')
            .unwrap_or(rest.len());
        let counted = (self.scan + skip).saturating_sub(self.emitted_until.max(self.scan));
        self.stats.garbage_bytes += counted as u64;
        self.scan += skip;
        self.keep_from = self.scan;
        self.resynced = true;
    }

    fn compact(&mut self) {
        let drop = self.keep_from;
        if drop == 0 {
            return;
        }
        self.buf.drain(..drop);
        self.keep_from = 0;
        self.scan -= drop;
        self.emitted_until = self.emitted_until.saturating_sub(drop);
        self.last_frame = self.last_frame.and_then(|s| s.checked_sub(drop));
    }
}

/// Tells a Xing, Info or VBRI tag frame from audio. Xing and Info tags sit
/// right after the side information (where the main data would begin), VBRI
/// at a fixed 32 bytes after the header.
fn frame_kind(header: &FrameHeader, frame: &[u8]) -> FrameKind {
    let Some(side_info) = header.side_info_len() else {
        return FrameKind::Audio;
    };
    let crc = if header.protected() { 2 } else { 0 };
    let at = HEADER_LEN + crc + side_info;
    match frame.get(at..at + 4) {
        Some(b"Xing") => return FrameKind::Xing,
        Some(b"Info") => return FrameKind::Info,
        _ => {}
    }
    if frame.get(HEADER_LEN + 32..HEADER_LEN + 36) == Some(b"VBRI") {
        return FrameKind::Vbri;
    }
    FrameKind::Audio
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header `lame -r -s 16 -m m -b 32` writes: MPEG-2 layer III, no
    /// CRC, bitrate index 4 (32 kbit/s), 16 kHz, no padding, mono, original.
    const LAME_16K: [u8; 4] = [0xFF, 0xF3, 0x48, 0xC4];
    /// MPEG-1 layer III, 128 kbit/s (index 9), 44.1 kHz, joint stereo.
    const MPEG1_128K: [u8; 4] = [0xFF, 0xFB, 0x90, 0x64];

    /// A frame with `header` whose body never contains 0xFF, so the only
    /// sync words in a test stream are the headers we put there.
    fn frame(header: [u8; 4], fill: u8) -> Vec<u8> {
        let len = FrameHeader::parse(&header).unwrap().frame_len();
        let mut frame = header.to_vec();
        frame.extend((0..len - 4).map(|i| fill.wrapping_add(i as u8) & 0x7F));
        frame
    }

    fn stream(frames: usize) -> Vec<Vec<u8>> {
        (0..frames)
            .map(|i| frame(LAME_16K, (i as u8).wrapping_mul(16)))
            .collect()
    }

    /// Pushes `input` in pieces of `piece` bytes, polling after each.
    fn run(framer: &mut Framer, input: &[u8], piece: usize) -> Vec<(FrameKind, Vec<u8>)> {
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            let mut rest = chunk;
            loop {
                let n = framer.push(rest);
                rest = &rest[n..];
                while let Some(f) = framer.poll_frame() {
                    out.push((f.kind, f.bytes.to_vec()));
                }
                if rest.is_empty() {
                    break;
                }
                assert!(n > 0, "framer full after polling");
            }
        }
        out
    }

    fn audio(out: &[(FrameKind, Vec<u8>)]) -> Vec<Vec<u8>> {
        out.iter()
            .filter(|(k, _)| k.is_audio())
            .map(|(_, b)| b.clone())
            .collect()
    }

    #[test]
    fn the_article_header() {
        let h = FrameHeader::parse(&LAME_16K).unwrap();
        assert_eq!(h.version(), Version::Mpeg2);
        assert_eq!(h.layer(), Layer::III);
        assert!(!h.protected());
        assert_eq!(h.bitrate_kbps(), 32);
        assert_eq!(h.sample_rate(), 16_000);
        assert!(!h.padding());
        assert_eq!(h.mode(), ChannelMode::Mono);
        assert_eq!(h.channels(), 1);
        assert_eq!(h.frame_len(), 144);
        assert_eq!(h.samples_per_frame(), 576);
        assert_eq!(h.side_info_len(), Some(9));
        assert!(Expect::TCP_MP3.matches(&h));
    }

    #[test]
    fn mpeg1_128k_is_417_or_418_bytes() {
        let h = FrameHeader::parse(&MPEG1_128K).unwrap();
        assert_eq!(h.version(), Version::Mpeg1);
        assert_eq!(h.sample_rate(), 44_100);
        assert_eq!(h.bitrate_kbps(), 128);
        assert_eq!(h.mode(), ChannelMode::JointStereo);
        assert_eq!(h.samples_per_frame(), 1152);
        assert_eq!(h.frame_len(), 417);
        let padded = FrameHeader::parse(&[0xFF, 0xFB, 0x92, 0x64]).unwrap();
        assert!(padded.padding());
        assert_eq!(padded.frame_len(), 418);
        assert_eq!(padded.side_info_len(), Some(32));
        assert!(!Expect::TCP_MP3.matches(&h));
    }

    #[test]
    fn other_layers_and_versions() {
        // MPEG-1 layer I, 32 kbit/s, 48 kHz: 12 * 32000 / 48000 = 8 slots.
        let h = FrameHeader::parse(&[0xFF, 0xFF, 0x14, 0xC0]).unwrap();
        assert_eq!(
            (h.layer(), h.sample_rate(), h.frame_len()),
            (Layer::I, 48_000, 32)
        );
        assert_eq!(h.samples_per_frame(), 384);
        assert_eq!(h.side_info_len(), None);
        // MPEG-1 layer II, 384 kbit/s, 32 kHz, padded: the longest frame.
        let h = FrameHeader::parse(&[0xFF, 0xFD, 0xEA, 0x00]).unwrap();
        assert_eq!((h.layer(), h.frame_len()), (Layer::II, MAX_FRAME_LEN));
        // MPEG 2.5 layer III, 8 kbit/s, 8 kHz, with CRC: 72 * 8000 / 8000.
        let h = FrameHeader::parse(&[0xFF, 0xE2, 0x18, 0xC0]).unwrap();
        assert_eq!(h.version(), Version::Mpeg25);
        assert!(h.protected());
        assert_eq!((h.sample_rate(), h.frame_len()), (8_000, 72));
    }

    #[test]
    fn bad_headers_are_errors() {
        let cases: [(&[u8], HeaderError); 9] = [
            (&[0xFF, 0xF3, 0x48], HeaderError::TooShort),
            (&[0xFE, 0xF3, 0x48, 0xC4], HeaderError::NoSync),
            (&[0xFF, 0xD3, 0x48, 0xC4], HeaderError::NoSync),
            (&[0xFF, 0xEB, 0x48, 0xC4], HeaderError::ReservedVersion),
            (&[0xFF, 0xF1, 0x48, 0xC4], HeaderError::ReservedLayer),
            (&[0xFF, 0xE4, 0x48, 0xC4], HeaderError::Mpeg25NotLayer3),
            (&[0xFF, 0xF3, 0x08, 0xC4], HeaderError::FreeFormat),
            (&[0xFF, 0xF3, 0xF8, 0xC4], HeaderError::ForbiddenBitrate),
            (&[0xFF, 0xF3, 0x4C, 0xC4], HeaderError::ReservedSampleRate),
        ];
        for (bytes, error) in cases {
            assert_eq!(FrameHeader::parse(bytes), Err(error), "{bytes:02X?}");
        }
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xF3, 0x48, 0xC6]),
            Err(HeaderError::ReservedEmphasis)
        );
    }

    #[test]
    fn every_valid_header_fits_the_bounds() {
        for b1 in 0xE0..=0xFFu8 {
            for b2 in 0..=0xFFu8 {
                if let Ok(h) = FrameHeader::parse(&[0xFF, b1, b2, 0]) {
                    let len = h.frame_len();
                    assert!((HEADER_LEN + 4..=MAX_FRAME_LEN).contains(&len), "{h:?}");
                }
            }
        }
    }

    #[test]
    fn id3v2_sizes() {
        let tag = *b"ID3\x04\x00\x00\x00\x00\x02\x01";
        assert_eq!(id3v2_len(&tag), Ok(10 + 257));
        let with_footer = *b"ID3\x04\x00\x10\x00\x00\x00\x05";
        assert_eq!(id3v2_len(&with_footer), Ok(25));
        assert_eq!(id3v2_len(b"ID3\x03\x00"), Err(TagError::TooShort));
        assert_eq!(
            id3v2_len(b"ID3\x03\x00\x00\x00\x80\x00\x00"),
            Err(TagError::BadSize)
        );
        assert_eq!(
            id3v2_len(b"ID3\xFF\x00\x00\x00\x00\x00\x00"),
            Err(TagError::UnknownVersion(0xFF))
        );
        assert_eq!(
            id3v2_len(b"TAG\x03\x00\x00\x00\x00\x00\x00"),
            Err(TagError::NotId3)
        );
    }

    #[test]
    fn clean_stream_frame_by_frame() {
        let frames = stream(5);
        let mut framer = Framer::new(Expect::TCP_MP3);
        let mut out = Vec::new();
        for f in &frames {
            assert_eq!(framer.push(f), f.len());
            // Each frame is out as soon as it is complete, without waiting
            // for the next header.
            let got = framer.poll_frame().expect("complete frame");
            assert_eq!(got.bytes, &f[..]);
            assert!(!got.resynced);
            out.push(got.bytes.to_vec());
            assert!(framer.poll_frame().is_none());
        }
        assert_eq!(out, frames);
        assert_eq!(framer.stats().frames, 5);
        assert_eq!(framer.stats().garbage_bytes, 0);
    }

    #[test]
    fn frame_split_across_tiny_pushes() {
        let frames = stream(4);
        let input = frames.concat();
        for piece in [1, 2, 3, 7, 143, 145] {
            let mut framer = Framer::new(Expect::TCP_MP3);
            let out = run(&mut framer, &input, piece);
            assert_eq!(audio(&out), frames, "pieces of {piece}");
        }
        // Byte by byte, a frame is out exactly when its last byte is in.
        let mut framer = Framer::new(Expect::TCP_MP3);
        for (i, &b) in input.iter().enumerate() {
            assert_eq!(framer.push(&[b]), 1);
            let complete = (i + 1) % 144 == 0;
            assert_eq!(framer.poll_frame().is_some(), complete, "byte {i}");
        }
    }

    #[test]
    fn garbage_before_and_between_frames() {
        let frames = stream(6);
        // Garbage with false sync bytes and an almost-ID3 in it.
        let garbage = b"\xFF\x00junk\xFF\xF3\x00\xFFID3\xFF\xFFI";
        let mut input = garbage.to_vec();
        for (i, f) in frames.iter().enumerate() {
            input.extend_from_slice(f);
            if i == 2 {
                input.extend_from_slice(garbage);
            }
        }
        for piece in [1, 5, 64, 10_000] {
            let mut framer = Framer::new(Expect::TCP_MP3);
            let out = run(&mut framer, &input, piece);
            assert_eq!(audio(&out), frames, "pieces of {piece}");
            let stats = framer.stats();
            assert_eq!(stats.garbage_bytes, 2 * garbage.len() as u64, "{stats:?}");
            assert_eq!(stats.lost_sync, 1);
        }
    }

    #[test]
    fn resynced_marks_the_frame_after_a_gap() {
        let frames = stream(3);
        let mut input = frames[0].clone();
        input.extend_from_slice(b"xyz");
        input.extend_from_slice(&frames[1]);
        input.extend_from_slice(&frames[2]);
        let mut framer = Framer::new(Expect::TCP_MP3);
        framer.push(&input);
        let flags: Vec<bool> =
            std::iter::from_fn(|| framer.poll_frame().map(|f| f.resynced)).collect();
        assert_eq!(flags, [false, true, false]);
    }

    #[test]
    fn truncated_frame_costs_only_itself() {
        let frames = stream(5);
        let mut input = Vec::new();
        input.extend_from_slice(&frames[0]);
        input.extend_from_slice(&frames[1]);
        input.extend_from_slice(&frames[2][..50]);
        for f in &frames[3..] {
            input.extend_from_slice(f);
        }
        for piece in [1, 10, 10_000] {
            let mut framer = Framer::new(Expect::TCP_MP3);
            let out = audio(&run(&mut framer, &input, piece));
            // The cut frame goes out with the start of the next one in it;
            // the header after it is wrong, and the hunt finds frame 3
            // inside it.
            assert_eq!(out.len(), 5, "pieces of {piece}");
            assert_eq!(out[..2], frames[..2]);
            assert_eq!(out[2][..50], frames[2][..50]);
            assert_eq!(out[3..], frames[3..]);
            assert_eq!(framer.stats().garbage_bytes, 0);
        }
    }

    #[test]
    fn truncated_at_the_end_stays_buffered() {
        let frames = stream(2);
        let mut framer = Framer::new(Expect::TCP_MP3);
        framer.push(&frames[0]);
        framer.push(&frames[1][..100]);
        assert!(framer.poll_frame().is_some());
        assert!(framer.poll_frame().is_none());
    }

    #[test]
    fn unexpected_format_waits_for_confirmation() {
        let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(MPEG1_128K, i * 8)).collect();
        let mut framer = Framer::new(Expect::TCP_MP3);
        framer.push(&frames[0]);
        assert!(
            framer.poll_frame().is_none(),
            "44.1 kHz needs a second header"
        );
        framer.push(&frames[1][..4]);
        assert_eq!(
            framer.poll_frame().map(|f| f.bytes.to_vec()),
            Some(frames[0].clone())
        );
        framer.push(&frames[1][4..]);
        // Locked now: the next frame comes out as soon as it is complete.
        assert_eq!(
            framer.poll_frame().map(|f| f.bytes.to_vec()),
            Some(frames[1].clone())
        );
        assert!(framer.is_locked());
    }

    #[test]
    fn unconfirmed_unexpected_header_is_garbage() {
        // A 44.1 kHz header followed by a 16 kHz one: the first is not
        // confirmed, so it is skipped, and the stream starts at the second.
        let mut input = frame(MPEG1_128K, 0);
        let frames = stream(2);
        input.extend(frames.concat());
        let mut framer = Framer::new(Expect::TCP_MP3);
        let out = run(&mut framer, &input, 10_000);
        assert_eq!(audio(&out), frames);
        assert_eq!(framer.stats().garbage_bytes, 417);
    }

    #[test]
    fn false_unexpected_header_does_not_hold_frames_back() {
        // Garbage that looks like the start of a 1729-byte MPEG-1 layer II
        // frame, then the real stream: each real frame still comes out as
        // soon as it is complete.
        let frames = stream(3);
        let mut framer = Framer::new(Expect::TCP_MP3);
        framer.push(&[0xFF, 0xFD, 0xEA, 0x00, 1, 2, 3]);
        assert!(framer.poll_frame().is_none());
        for f in &frames {
            framer.push(f);
            assert_eq!(
                framer.poll_frame().map(|f| f.bytes.to_vec()),
                Some(f.clone())
            );
        }
        assert_eq!(framer.stats().garbage_bytes, 7);
    }

    #[test]
    fn id3v2_tag_is_skipped() {
        let mut input = b"ID3\x03\x00\x00\x00\x00\x01\x00".to_vec();
        // A tag body full of sync words, as album art has.
        input.extend(std::iter::repeat_n(0xFF, 128));
        let frames = stream(3);
        input.extend(frames.concat());
        for piece in [1, 3, 11, 10_000] {
            let mut framer = Framer::new(Expect::TCP_MP3);
            let out = run(&mut framer, &input, piece);
            assert_eq!(audio(&out), frames);
            let stats = framer.stats();
            assert_eq!(
                (stats.tag_bytes, stats.garbage_bytes),
                (138, 0),
                "{stats:?}"
            );
        }
    }

    #[test]
    fn tags_between_files_keep_the_lock() {
        let frames = stream(4);
        let mut id3v1 = b"TAG".to_vec();
        id3v1.extend(std::iter::repeat_n(0xFF, 125));
        let mut id3v2 = b"ID3\x03\x00\x00\x00\x00\x00\x10".to_vec();
        id3v2.extend(std::iter::repeat_n(0xFF, 16));
        let first = frames[..2].concat();
        let input = [&first[..], &id3v1, &id3v2, &frames[2..].concat()].concat();
        for piece in [1, 50, 10_000] {
            let mut framer = Framer::new(Expect::TCP_MP3);
            let out = run(&mut framer, &input, piece);
            assert_eq!(audio(&out), frames);
            let stats = framer.stats();
            let counts = (stats.tag_bytes, stats.garbage_bytes, stats.lost_sync);
            assert_eq!(counts, (128 + 26, 0, 0), "pieces of {piece}");
        }
    }

    #[test]
    fn big_id3v2_tag_streams_through_a_bounded_buffer() {
        let size = 100_000usize;
        let mut input = b"ID3\x04\x00\x00".to_vec();
        input.extend([21, 14, 7, 0].map(|shift| ((size >> shift) & 0x7F) as u8));
        input.extend(std::iter::repeat_n(0xAA, size));
        let frames = stream(2);
        input.extend(frames.concat());
        let mut framer = Framer::new(Expect::TCP_MP3);
        let out = run(&mut framer, &input, 4096);
        assert_eq!(audio(&out), frames);
        assert_eq!(framer.stats().tag_bytes, size as u64 + 10);
    }

    #[test]
    fn xing_and_info_frames_are_tags() {
        let mut xing = frame(LAME_16K, 0);
        // After the header and 9 bytes of mono MPEG-2 side information.
        xing[13..17].copy_from_slice(b"Xing");
        let mut info = frame(LAME_16K, 0);
        info[13..17].copy_from_slice(b"Info");
        let mut vbri = frame(LAME_16K, 0);
        vbri[36..40].copy_from_slice(b"VBRI");
        let frames = stream(2);
        let input = [xing, info, vbri, frames.concat()].concat();
        let mut framer = Framer::new(Expect::TCP_MP3);
        let out = run(&mut framer, &input, 10_000);
        let kinds: Vec<FrameKind> = out.iter().map(|(k, _)| *k).collect();
        use FrameKind::*;
        assert_eq!(kinds, [Xing, Info, Vbri, Audio, Audio]);
        assert_eq!(framer.stats().tag_frames, 3);
        assert_eq!(framer.stats().frames, 2);
    }

    #[test]
    fn vbr_bitrate_changes_keep_the_lock() {
        let mut frames = Vec::new();
        for (i, b2) in [0x48u8, 0x88, 0x18, 0xE8, 0x4A].into_iter().enumerate() {
            frames.push(frame([0xFF, 0xF3, b2, 0xC4], i as u8));
        }
        let mut framer = Framer::new(Expect::TCP_MP3);
        let out = run(&mut framer, &frames.concat(), 7);
        assert_eq!(audio(&out), frames);
        assert_eq!(framer.stats().lost_sync, 0);
    }

    #[test]
    fn push_is_bounded_and_polling_frees_room() {
        let frames = stream(300);
        let input = frames.concat();
        let mut framer = Framer::new(Expect::TCP_MP3);
        let taken = framer.push(&input);
        assert_eq!(taken, FRAMER_CAPACITY);
        assert_eq!(framer.push(&input[taken..]), 0);
        let mut n = 0;
        while framer.poll_frame().is_some() {
            n += 1;
        }
        assert_eq!(n, FRAMER_CAPACITY / 144);
        assert!(framer.push(&input[taken..]) > FRAMER_CAPACITY - 2 * MAX_FRAME_LEN);
    }

    #[test]
    fn garbage_only_is_all_counted() {
        let mut framer = Framer::new(Expect::TCP_MP3);
        let out = run(&mut framer, &[0x55; 50_000], 1000);
        assert!(out.is_empty());
        assert_eq!(framer.stats().garbage_bytes, 50_000);
    }

    /// Random bytes in random pieces: no panic, no stall, the buffer stays
    /// bounded, and every frame handed out has a valid header and length.
    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let len = (next() % 20_000) as usize;
            let mut input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Sprinkle plausible headers so the framer also locks sometimes.
            if round % 2 == 0 {
                for _ in 0..len / 100 {
                    let at = (next() as usize) % input.len().max(1);
                    if let Some(slot) = input.get_mut(at..at + 4) {
                        slot.copy_from_slice(&LAME_16K);
                    }
                }
            }
            let mut framer = Framer::new(Expect::TCP_MP3);
            let mut rest = &input[..];
            while !rest.is_empty() {
                let piece = 1 + (next() % 300) as usize;
                let n = framer.push(&rest[..piece.min(rest.len())]);
                assert!(framer.buf.len() <= FRAMER_CAPACITY);
                rest = &rest[n..];
                while let Some(f) = framer.poll_frame() {
                    let h = FrameHeader::parse(f.bytes).expect("frames start with a header");
                    assert_eq!(f.bytes.len(), h.frame_len());
                }
            }
            for start in 0..input.len().min(64) {
                let _ = FrameHeader::parse(&input[start..]);
                let _ = id3v2_len(&input[start..]);
            }
        }
    }
}
