//! The offer/answer model (RFC 3264) for one audio stream.
//!
//! [`OfferAnswer`] holds one side's half of a call's negotiation: what it
//! can do ([`LocalMedia`]), the origin and version of the descriptions it
//! sends (RFC 3264 §8: the version goes up exactly when the description
//! changes), and an offer awaiting its answer. Each completed exchange
//! yields a [`Negotiated`]: where to send RTP and RTCP, with which codec
//! and payload type, and which way media flows.
//!
//! Redundant audio (RFC 2198) is negotiated as WebRTC does for Opus: an
//! `audio/red` format (RFC 4102) per clock rate, whose `fmtp` names one
//! codec as both primary and redundant encoding (`a=fmtp:96 111/111`). It
//! is listed after the codecs and telephone-event, so a peer that ignores it
//! sees the offer it always saw.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use super::codec::{
    Codec, OpusParams, RED, TELEPHONE_EVENT, TELEPHONE_EVENT_PT, TELEPHONE_EVENTS, is_red,
    is_telephone_event, red_params, red_protects,
};
use super::model::{
    Attribute, Connection, Direction, Fmtp, FmtpParam, MediaDescription, Origin, RtpFormat, Rtpmap,
    SessionDescription, Timing,
};
use crate::rtp::Pt;

/// Packet duration ipphone asks for unless told otherwise, in ms.
pub const DEFAULT_PTIME: u32 = 20;

/// The transport profiles ipphone's plain RTP can answer (RFC 3551, RFC 4585).
const RTP_PROFILES: [&str; 2] = ["RTP/AVP", "RTP/AVPF"];

/// What this phone can do and wants: the input to every offer and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The `o=` username; `-` by default.
    pub username: String,
    /// Where we receive RTP (`c=` and `o=`): IPv4 or IPv6.
    pub address: IpAddr,
    pub rtp_port: u16,
    /// Codecs in order of preference; the first one the far end also has wins.
    pub codecs: Vec<Codec>,
    /// Offer and accept telephone-event (RFC 4733) for DTMF.
    pub telephone_event: bool,
    /// Offer and accept redundant audio (RFC 2198) for the codec.
    pub red: bool,
    /// The packet duration we ask for, in ms.
    pub ptime: u32,
    /// What we want: `SendRecv`, or `SendOnly` while we hold the call.
    pub direction: Direction,
    /// Offer (and accept) RTP and RTCP on one port (RFC 5761).
    pub rtcp_mux: bool,
    /// The Opus parameters we announce as a receiver.
    pub opus: OpusParams,
}

/// A host named in a description: an address, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    /// A domain name (RFC 8866 allows them in `c=`; RFC 4317 uses them).
    Name(String),
}

/// A host and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransportAddr {
    pub host: Host,
    pub port: u16,
}

/// The telephone-event format both sides use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelephoneEventFormat {
    /// Payload type to send with: the far end's number.
    pub pt: Pt,
    /// Payload type we receive: our own description's number.
    pub recv_pt: Pt,
    pub clock_rate: u32,
}

/// The redundant audio format (RFC 2198) both sides use. It carries the
/// negotiated codec only, as primary and redundant encoding, at the codec's
/// clock rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RedFormat {
    /// Payload type to send RED with: the far end's number.
    pub pt: Pt,
    /// Payload type RED arrives with: our own description's number.
    pub recv_pt: Pt,
}

/// The outcome of an offer/answer exchange: everything the media stream needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP: the `c=` of their medium (or session) and its port.
    pub remote_rtp: TransportAddr,
    /// Where to send RTCP: the RTP address with rtcp-mux, else `a=rtcp`
    /// (RFC 3605), else the RTP port + 1.
    pub remote_rtcp: TransportAddr,
    /// Both sides agreed on RTP and RTCP on one port (RFC 5761).
    pub rtcp_mux: bool,
    pub codec: Codec,
    /// Payload type to send the codec with: the far end's number for it.
    pub pt: Pt,
    /// Payload type the codec arrives with: our description's number for it
    /// (the same as `pt` unless an answer renumbered it, RFC 3264 §6.1).
    pub recv_pt: Pt,
    /// The codec's RTP clock rate (48000 for Opus whatever it samples at).
    pub clock_rate: u32,
    pub telephone_event: Option<TelephoneEventFormat>,
    /// Redundant audio, if both sides list a `red` format naming the codec.
    pub red: Option<RedFormat>,
    /// Packet duration to send, in ms: theirs if they asked, else ours,
    /// capped by their `maxptime`.
    pub ptime: u32,
    /// Their Opus `fmtp`: how they want to receive Opus (FEC, bitrate, stereo).
    pub opus: Option<OpusParams>,
    /// Our direction: whether we send and receive.
    pub our_direction: Direction,
    /// Theirs, as their description states it (`c=0.0.0.0`, the RFC 2543
    /// way to hold, counts as not receiving).
    pub their_direction: Direction,
}

/// Our answer to an offer, and what it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub sdp: SessionDescription,
    pub negotiated: Negotiated,
}

/// Why an exchange did not produce a call's media (answer an offer that
/// fails with 488 Not Acceptable Here, RFC 3261 §13.3.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NegotiationError {
    #[error(
        "no audio codec in common: the other side offers {}; ipphone has {}",
        .offered.join(", "),
        .supported.join(", ")
    )]
    NoCommonCodec {
        /// Their formats in human words, e.g. `G729/8000`.
        offered: Vec<String>,
        /// Ours, likewise.
        supported: Vec<String>,
    },
    #[error("the description has no active audio stream: nothing to answer")]
    NoAudio,
    #[error("the audio stream uses {0}, which needs SRTP or DTLS: ipphone does plain RTP/AVP only")]
    UnsupportedTransport(String),
    #[error("the answer rejected the audio stream (port 0)")]
    Rejected,
    #[error("the audio stream has no connection address (c=) at media or session level")]
    NoConnection,
    #[error("an answer arrived, but no offer of ours is outstanding")]
    NoOfferPending,
    #[error(
        "an offer is already outstanding: wait for its answer (RFC 3264 §4; answer 491 to glare)"
    )]
    OfferPending,
    #[error("no codec is enabled locally: enable Opus, PCMU or PCMA")]
    NoLocalCodecs,
}

/// One side of a call's offer/answer negotiation; see the module documentation.
#[derive(Debug, Clone)]
pub struct OfferAnswer {
    local: LocalMedia,
    session_id: u64,
    /// The last description we sent, to decide whether a new one is a new version.
    last_sent: Option<SessionDescription>,
    /// Our offer awaiting an answer.
    pending_offer: Option<SessionDescription>,
    /// What `last_sent` was before that offer: a refused offer never
    /// happened (RFC 3261 §14.1), so the next one counts from here.
    sent_before_offer: Option<SessionDescription>,
    negotiated: Option<Negotiated>,
}

impl LocalMedia {
    /// Defaults: Opus, PCMU, PCMA, telephone-event and redundant audio,
    /// 20 ms, sendrecv, rtcp-mux offered, Opus with in-band FEC requested.
    pub fn new(address: IpAddr, rtp_port: u16) -> Self {
        LocalMedia {
            username: "-".to_owned(),
            address,
            rtp_port,
            codecs: Codec::ALL.to_vec(),
            telephone_event: true,
            red: true,
            ptime: DEFAULT_PTIME,
            direction: Direction::SendRecv,
            rtcp_mux: true,
            opus: OpusParams {
                useinbandfec: true,
                ..OpusParams::default()
            },
        }
    }
}

impl TransportAddr {
    /// The socket address, when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }
}

impl Negotiated {
    /// Whether we should send media now.
    pub fn sending(&self) -> bool {
        self.our_direction.sends()
    }

    /// Whether media should arrive now.
    pub fn receiving(&self) -> bool {
        self.our_direction.receives()
    }
}

impl OfferAnswer {
    /// A negotiation whose descriptions carry `session_id` (from the
    /// caller's random source) and start at that version, as RFC 8866 §5.2
    /// suggests.
    pub fn new(local: LocalMedia, session_id: u64) -> Self {
        OfferAnswer {
            local,
            session_id,
            last_sent: None,
            pending_offer: None,
            sent_before_offer: None,
            negotiated: None,
        }
    }

    pub fn local(&self) -> &LocalMedia {
        &self.local
    }

    /// Changes to what we can do take effect with the next offer or answer.
    pub fn local_mut(&mut self) -> &mut LocalMedia {
        &mut self.local
    }

    /// The outcome of the last successful exchange.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn has_pending_offer(&self) -> bool {
        self.pending_offer.is_some()
    }

    /// The last description we sent.
    pub fn last_sent(&self) -> Option<&SessionDescription> {
        self.last_sent.as_ref()
    }

    /// An offer of one audio stream with every local codec; its answer goes
    /// to [`handle_answer`](Self::handle_answer).
    pub fn create_offer(&mut self) -> Result<SessionDescription, NegotiationError> {
        if self.pending_offer.is_some() {
            return Err(NegotiationError::OfferPending);
        }
        let media = self.offer_media()?;
        self.sent_before_offer = self.last_sent.clone();
        let offer = self.describe(vec![media]);
        self.pending_offer = Some(offer.clone());
        Ok(offer)
    }

    /// Puts the call on hold: a re-offer with `sendonly` (RFC 3264 §8.4).
    pub fn hold(&mut self) -> Result<SessionDescription, NegotiationError> {
        if self.pending_offer.is_some() {
            return Err(NegotiationError::OfferPending);
        }
        self.local.direction = Direction::SendOnly;
        self.create_offer()
    }

    /// Takes the call off hold: a re-offer with `sendrecv`.
    pub fn resume(&mut self) -> Result<SessionDescription, NegotiationError> {
        if self.pending_offer.is_some() {
            return Err(NegotiationError::OfferPending);
        }
        self.local.direction = Direction::SendRecv;
        self.create_offer()
    }

    /// Forgets our outstanding offer: it was refused (488, 491) or its
    /// transaction failed. The last negotiated state stays, and the next
    /// description is versioned as if the offer had not been made.
    /// [`LocalMedia::direction`] keeps what [`hold`](Self::hold) or
    /// [`resume`](Self::resume) set.
    pub fn cancel_offer(&mut self) {
        if self.pending_offer.take().is_some() {
            self.last_sent = self.sent_before_offer.take();
        }
    }

    /// Takes the answer to our outstanding offer.
    pub fn handle_answer(
        &mut self,
        answer: &SessionDescription,
    ) -> Result<Negotiated, NegotiationError> {
        let offer = self
            .pending_offer
            .take()
            .ok_or(NegotiationError::NoOfferPending)?;
        let ours = offer
            .media
            .first()
            .expect("our offers carry exactly one audio stream");
        let theirs = answer
            .media
            .first()
            .filter(|m| m.media.eq_ignore_ascii_case("audio"))
            .ok_or(NegotiationError::NoAudio)?;
        if theirs.port == 0 {
            return Err(NegotiationError::Rejected);
        }
        let offered = ours.rtp_formats();
        // The answer lists its formats by the answerer's preference (RFC 3264 §6.1).
        let chosen = theirs.rtp_formats().into_iter().find_map(|format| {
            let codec = Codec::of(&format)?;
            let ours = offered.iter().find(|o| Codec::of(o) == Some(codec))?;
            Some((codec, format.pt, ours.pt))
        });
        let Some((codec, pt, recv_pt)) = chosen else {
            let mut answered = Vec::new();
            describe_formats(theirs, &mut answered);
            return Err(self.no_common_codec_from(answered));
        };
        let telephone_event = pick_telephone_event(theirs, codec).and_then(|theirs| {
            let ours = offered
                .iter()
                .find(|o| is_telephone_event(o) && o.clock_rate == theirs.clock_rate)?;
            Some(TelephoneEventFormat {
                pt: theirs.pt,
                recv_pt: ours.pt,
                clock_rate: theirs.clock_rate,
            })
        });
        // Their RED must carry the codec by their number, the RED we offered
        // by ours; an answer can only hold what the offer had (RFC 3264 §6.1).
        let red = pick_red(theirs, codec, pt).and_then(|their_red| {
            let our_red = pick_red(ours, codec, recv_pt)?;
            Some(RedFormat {
                pt: their_red.pt,
                recv_pt: our_red.pt,
            })
        });
        let their_direction = effective_direction(answer, theirs)?;
        let offered_direction = offer.media_direction(ours);
        let negotiated = self.conclude(Conclusion {
            theirs_sdp: answer,
            theirs,
            codec,
            pt,
            recv_pt,
            telephone_event,
            red,
            rtcp_mux: ours.rtcp_mux() && theirs.rtcp_mux(),
            our_direction: offered_direction.intersect(their_direction.reversed()),
            their_direction,
        })?;
        self.negotiated = Some(negotiated.clone());
        Ok(negotiated)
    }

    /// Answers an offer (initial or re-offer): the first audio stream with
    /// a codec in common is accepted with the best codec by *our* order of
    /// preference and *their* payload type numbers; every other stream is
    /// rejected with port 0 (RFC 3264 §6).
    pub fn handle_offer(&mut self, offer: &SessionDescription) -> Result<Answer, NegotiationError> {
        if self.pending_offer.is_some() {
            return Err(NegotiationError::OfferPending);
        }
        if self.local.codecs.is_empty() {
            return Err(NegotiationError::NoLocalCodecs);
        }
        let mut accepted = None;
        let mut any_audio = false;
        let mut transport = None;
        for (index, theirs) in offer.media.iter().enumerate() {
            if !theirs.media.eq_ignore_ascii_case("audio") || theirs.port == 0 {
                continue;
            }
            any_audio = true;
            if !RTP_PROFILES
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&theirs.proto))
            {
                transport.get_or_insert_with(|| theirs.proto.clone());
                continue;
            }
            if let Some(choice) = self.choose(theirs) {
                accepted = Some((index, choice));
                break;
            }
        }
        let Some((index, (codec, format))) = accepted else {
            if let Some(proto) = transport.filter(|_| !self.has_rtp_audio(offer)) {
                return Err(NegotiationError::UnsupportedTransport(proto));
            }
            if !any_audio {
                return Err(NegotiationError::NoAudio);
            }
            return Err(self.no_common_codec_in_offer(offer));
        };

        let theirs = &offer.media[index];
        let te = self
            .local
            .telephone_event
            .then(|| pick_telephone_event(theirs, codec))
            .flatten();
        let red = self
            .local
            .red
            .then(|| pick_red(theirs, codec, format.pt))
            .flatten();
        let their_direction = effective_direction(offer, theirs)?;
        let our_direction = their_direction.reversed().intersect(self.local.direction);
        let rtcp_mux = theirs.rtcp_mux() && self.local.rtcp_mux;
        let ptime = self.ptime_for(theirs);

        let mut media = MediaDescription {
            media: theirs.media.clone(),
            port: self.local.rtp_port,
            port_count: None,
            proto: theirs.proto.clone(),
            formats: vec![format.pt.to_string()],
            info: None,
            connection: None,
            bandwidths: Vec::new(),
            attributes: Vec::new(),
        };
        media.attributes.push(Attribute::Rtpmap(Rtpmap {
            pt: format.pt,
            encoding: codec.encoding_name().to_owned(),
            clock_rate: codec.clock_rate(),
            channels: codec.rtpmap_channels(),
        }));
        if codec == Codec::Opus {
            push_fmtp(&mut media, format.pt, self.local.opus.to_params());
        }
        if let Some(te) = &te {
            media.formats.push(te.pt.to_string());
            push_telephone_event(&mut media, te.pt, te.clock_rate);
        }
        if let Some(red) = &red {
            media.formats.push(red.pt.to_string());
            push_red(&mut media, red, format.pt);
        }
        media.attributes.push(Attribute::Ptime(ptime));
        if rtcp_mux {
            media.attributes.push(Attribute::RtcpMux);
        }
        media.attributes.push(Attribute::Direction(our_direction));

        let all_media = offer
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if i == index {
                    media.clone()
                } else {
                    rejected(m)
                }
            })
            .collect();

        let negotiated = self.conclude(Conclusion {
            theirs_sdp: offer,
            theirs,
            codec,
            pt: format.pt,
            recv_pt: format.pt,
            telephone_event: te.map(|te| TelephoneEventFormat {
                pt: te.pt,
                recv_pt: te.pt,
                clock_rate: te.clock_rate,
            }),
            red: red.map(|red| RedFormat {
                pt: red.pt,
                recv_pt: red.pt,
            }),
            rtcp_mux,
            our_direction,
            their_direction,
        })?;
        let sdp = self.describe(all_media);
        self.negotiated = Some(negotiated.clone());
        Ok(Answer { sdp, negotiated })
    }

    /// Our best codec among those `theirs` offers, with their format for it.
    fn choose(&self, theirs: &MediaDescription) -> Option<(Codec, RtpFormat)> {
        let formats = theirs.rtp_formats();
        self.local.codecs.iter().find_map(|&codec| {
            let format = formats.iter().find(|f| codec.matches(f))?;
            Some((codec, format.clone()))
        })
    }

    fn has_rtp_audio(&self, sdp: &SessionDescription) -> bool {
        sdp.media.iter().any(|m| {
            m.media.eq_ignore_ascii_case("audio")
                && m.port != 0
                && RTP_PROFILES
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&m.proto))
        })
    }

    fn no_common_codec_in_offer(&self, offer: &SessionDescription) -> NegotiationError {
        let mut offered = Vec::new();
        for media in &offer.media {
            if media.media.eq_ignore_ascii_case("audio") && media.port != 0 {
                describe_formats(media, &mut offered);
            }
        }
        self.no_common_codec_from(offered)
    }

    fn no_common_codec_from(&self, offered: Vec<String>) -> NegotiationError {
        NegotiationError::NoCommonCodec {
            offered,
            supported: self.local.codecs.iter().map(Codec::to_string).collect(),
        }
    }

    /// Their `ptime` if they gave one, else ours; never above their `maxptime`.
    fn ptime_for(&self, theirs: &MediaDescription) -> u32 {
        let ptime = theirs
            .ptime()
            .filter(|&ms| ms > 0)
            .unwrap_or(self.local.ptime);
        match theirs.maxptime().filter(|&ms| ms > 0) {
            Some(max) => ptime.min(max),
            None => ptime,
        }
    }

    fn offer_media(&self) -> Result<MediaDescription, NegotiationError> {
        let mut codecs: Vec<Codec> = Vec::new();
        for &codec in &self.local.codecs {
            if !codecs.contains(&codec) {
                codecs.push(codec);
            }
        }
        if codecs.is_empty() {
            return Err(NegotiationError::NoLocalCodecs);
        }
        let mut media = MediaDescription {
            media: "audio".to_owned(),
            port: self.local.rtp_port,
            port_count: None,
            proto: RTP_PROFILES[0].to_owned(),
            formats: Vec::new(),
            info: None,
            connection: None,
            bandwidths: Vec::new(),
            attributes: Vec::new(),
        };
        for &codec in &codecs {
            let pt = codec.default_pt();
            media.formats.push(pt.to_string());
            media.attributes.push(Attribute::Rtpmap(Rtpmap {
                pt,
                encoding: codec.encoding_name().to_owned(),
                clock_rate: codec.clock_rate(),
                channels: codec.rtpmap_channels(),
            }));
            if codec == Codec::Opus {
                push_fmtp(&mut media, pt, self.local.opus.to_params());
            }
        }
        if self.local.telephone_event {
            media.formats.push(TELEPHONE_EVENT_PT.to_string());
            push_telephone_event(&mut media, TELEPHONE_EVENT_PT, 8000);
        }
        if self.local.red {
            // One RED per clock rate, for the preferred codec at that rate:
            // its fmtp can name only one (RFC 2198 §5). The numbers stay
            // clear of every payload type we ever offer, so they are the
            // same from one offer to the next.
            let mut used: Vec<Pt> = Codec::ALL.iter().map(|c| c.default_pt()).collect();
            used.push(TELEPHONE_EVENT_PT);
            let mut rates: Vec<u32> = Vec::new();
            for &codec in &codecs {
                if rates.contains(&codec.clock_rate()) {
                    continue;
                }
                rates.push(codec.clock_rate());
                let Some(pt) = free_dynamic_pt(&used) else {
                    break;
                };
                used.push(pt);
                let red = RtpFormat {
                    pt,
                    encoding: RED.to_owned(),
                    clock_rate: codec.clock_rate(),
                    channels: codec.rtpmap_channels(),
                };
                media.formats.push(pt.to_string());
                push_red(&mut media, &red, codec.default_pt());
            }
        }
        media.attributes.push(Attribute::Ptime(self.local.ptime));
        if self.local.rtcp_mux {
            media.attributes.push(Attribute::RtcpMux);
        }
        media
            .attributes
            .push(Attribute::Direction(self.local.direction));
        Ok(media)
    }

    /// Wraps `media` in our session lines, bumping the version if anything
    /// differs from the last description we sent (RFC 3264 §8).
    fn describe(&mut self, media: Vec<MediaDescription>) -> SessionDescription {
        let version = self
            .last_sent
            .as_ref()
            .map_or(self.session_id, |last| last.origin.session_version);
        let mut sdp = SessionDescription {
            origin: Origin::new(
                &self.local.username,
                self.session_id,
                version,
                self.local.address,
            ),
            session_name: "-".to_owned(),
            info: None,
            connection: Some(Connection::new(self.local.address)),
            bandwidths: Vec::new(),
            timing: Timing::default(),
            attributes: Vec::new(),
            media,
        };
        if self.last_sent.as_ref().is_some_and(|last| *last != sdp) {
            sdp.origin.session_version = version.wrapping_add(1);
        }
        self.last_sent = Some(sdp.clone());
        sdp
    }

    fn conclude(&self, c: Conclusion<'_>) -> Result<Negotiated, NegotiationError> {
        let connection = c
            .theirs_sdp
            .media_connection(c.theirs)
            .ok_or(NegotiationError::NoConnection)?;
        let host = host_of(connection);
        let remote_rtp = TransportAddr {
            host: host.clone(),
            port: c.theirs.port,
        };
        let remote_rtcp = if c.rtcp_mux {
            remote_rtp.clone()
        } else if let Some(rtcp) = c.theirs.rtcp() {
            TransportAddr {
                host: rtcp.connection.as_ref().map_or(host, host_of),
                port: rtcp.port,
            }
        } else {
            TransportAddr {
                host,
                port: c.theirs.port.checked_add(1).unwrap_or(c.theirs.port),
            }
        };
        let opus = (c.codec == Codec::Opus).then(|| {
            c.theirs
                .fmtp(c.pt)
                .map(OpusParams::from_fmtp)
                .unwrap_or_default()
        });
        Ok(Negotiated {
            remote_rtp,
            remote_rtcp,
            rtcp_mux: c.rtcp_mux,
            codec: c.codec,
            pt: c.pt,
            recv_pt: c.recv_pt,
            clock_rate: c.codec.clock_rate(),
            telephone_event: c.telephone_event,
            red: c.red,
            ptime: self.ptime_for(c.theirs),
            opus,
            our_direction: c.our_direction,
            their_direction: c.their_direction,
        })
    }
}

/// The inputs of [`OfferAnswer::conclude`].
struct Conclusion<'a> {
    theirs_sdp: &'a SessionDescription,
    theirs: &'a MediaDescription,
    codec: Codec,
    pt: Pt,
    recv_pt: Pt,
    telephone_event: Option<TelephoneEventFormat>,
    red: Option<RedFormat>,
    rtcp_mux: bool,
    our_direction: Direction,
    their_direction: Direction,
}

/// Their telephone-event format: the one at the codec's clock rate (RFC 4733
/// §2.1), else the first (baresip pairs telephone-event/8000 with Opus).
fn pick_telephone_event(theirs: &MediaDescription, codec: Codec) -> Option<RtpFormat> {
    let events: Vec<RtpFormat> = theirs
        .rtp_formats()
        .into_iter()
        .filter(is_telephone_event)
        .collect();
    let same_rate = events
        .iter()
        .position(|f| f.clock_rate == codec.clock_rate())
        .unwrap_or(0);
    events.into_iter().nth(same_rate)
}

/// The first `red` format of `media` at `codec`'s clock rate whose `fmtp`
/// carries only `codec_pt`, the codec's number in that description.
fn pick_red(media: &MediaDescription, codec: Codec, codec_pt: Pt) -> Option<RtpFormat> {
    media.rtp_formats().into_iter().find(|format| {
        is_red(format)
            && format.clock_rate == codec.clock_rate()
            && media
                .fmtp(format.pt)
                .is_some_and(|fmtp| red_protects(fmtp, codec_pt))
    })
}

/// The lowest dynamic payload type (RFC 3551 §3: 96-127) not in `used`.
fn free_dynamic_pt(used: &[Pt]) -> Option<Pt> {
    (96..=127).map(Pt).find(|pt| !used.contains(pt))
}

/// The direction a description states for `media`, a `c=` of 0.0.0.0 (or
/// `::`) taken as "do not send to me" (RFC 3264 §8.4, from RFC 2543).
fn effective_direction(
    sdp: &SessionDescription,
    media: &MediaDescription,
) -> Result<Direction, NegotiationError> {
    let connection = sdp
        .media_connection(media)
        .ok_or(NegotiationError::NoConnection)?;
    let direction = sdp.media_direction(media);
    Ok(match connection.ip() {
        Some(ip) if ip.is_unspecified() => Direction::from_flags(direction.sends(), false),
        _ => direction,
    })
}

fn host_of(connection: &Connection) -> Host {
    match connection.ip() {
        Some(ip) => Host::Ip(ip),
        None => Host::Name(connection.address.clone()),
    }
}

/// The `m=` line that declines `offered` (RFC 3264 §6).
fn rejected(offered: &MediaDescription) -> MediaDescription {
    MediaDescription {
        media: offered.media.clone(),
        port: 0,
        port_count: None,
        proto: offered.proto.clone(),
        formats: offered.formats.iter().take(1).cloned().collect(),
        info: None,
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
    }
}

fn push_fmtp(media: &mut MediaDescription, pt: Pt, params: Vec<FmtpParam>) {
    if !params.is_empty() {
        media.attributes.push(Attribute::Fmtp(Fmtp { pt, params }));
    }
}

fn push_telephone_event(media: &mut MediaDescription, pt: Pt, clock_rate: u32) {
    media.attributes.push(Attribute::Rtpmap(Rtpmap {
        pt,
        encoding: TELEPHONE_EVENT.to_owned(),
        clock_rate,
        channels: None,
    }));
    media.attributes.push(Attribute::Fmtp(Fmtp {
        pt,
        params: vec![FmtpParam {
            name: TELEPHONE_EVENTS.to_owned(),
            value: None,
        }],
    }));
}

/// `red`'s `rtpmap`, and an `fmtp` carrying `codec_pt` twice.
fn push_red(media: &mut MediaDescription, red: &RtpFormat, codec_pt: Pt) {
    media.attributes.push(Attribute::Rtpmap(Rtpmap {
        pt: red.pt,
        encoding: RED.to_owned(),
        clock_rate: red.clock_rate,
        channels: red.channels,
    }));
    push_fmtp(media, red.pt, red_params(codec_pt));
}

/// Each format of `media` in human words (`G729/8000`), once.
fn describe_formats(media: &MediaDescription, out: &mut Vec<String>) {
    for pt in media.payload_types() {
        let words = match media.rtp_format(pt) {
            Some(format) => format.describe(),
            None => format!("payload type {pt} (no rtpmap)"),
        };
        if !out.contains(&words) {
            out.push(words);
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for TransportAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::fixtures::BARESIP_OFFER;

    const BOB_IP: &str = "192.0.2.2";

    fn sdp(text: &str) -> SessionDescription {
        SessionDescription::parse(text).unwrap()
    }

    /// A phone with the default capabilities; its session id and first
    /// version are RFC 4317's Bob's.
    fn bob() -> OfferAnswer {
        OfferAnswer::new(LocalMedia::new(BOB_IP.parse().unwrap(), 49174), 2808844564)
    }

    fn alice() -> OfferAnswer {
        OfferAnswer::new(
            LocalMedia::new("192.0.2.1".parse().unwrap(), 49170),
            2890844526,
        )
    }

    fn name(host: &str, port: u16) -> TransportAddr {
        TransportAddr {
            host: Host::Name(host.to_owned()),
            port,
        }
    }

    fn ip(addr: &str, port: u16) -> TransportAddr {
        TransportAddr {
            host: Host::Ip(addr.parse().unwrap()),
            port,
        }
    }

    /// RFC 4317 §2.1, §2.2, §2.3 and §2.8 all open with this offer.
    const RFC4317_ALICE_AV: &str = "v=0\n\
        o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\n\
        s= \n\
        c=IN IP4 host.atlanta.example.com\n\
        t=0 0\n\
        m=audio 49170 RTP/AVP 0 8 97\n\
        a=rtpmap:0 PCMU/8000\n\
        a=rtpmap:8 PCMA/8000\n\
        a=rtpmap:97 iLBC/8000\n\
        m=video 51372 RTP/AVP 31 32\n\
        a=rtpmap:31 H261/90000\n\
        a=rtpmap:32 MPV/90000\n";

    #[test]
    fn rfc4317_2_1_answered_with_pcmu_and_video_declined() {
        let answer = bob().handle_offer(&sdp(RFC4317_ALICE_AV)).unwrap();
        // Bob's answer in RFC 4317 §2.1, less the video we do not do.
        assert_eq!(
            answer.sdp.to_string(),
            "v=0\r\n\
             o=- 2808844564 2808844564 IN IP4 192.0.2.2\r\n\
             s=-\r\n\
             c=IN IP4 192.0.2.2\r\n\
             t=0 0\r\n\
             m=audio 49174 RTP/AVP 0\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n\
             m=video 0 RTP/AVP 31\r\n"
        );
        assert_eq!(
            answer.negotiated,
            Negotiated {
                remote_rtp: name("host.atlanta.example.com", 49170),
                remote_rtcp: name("host.atlanta.example.com", 49171),
                rtcp_mux: false,
                codec: Codec::Pcmu,
                pt: Pt(0),
                recv_pt: Pt(0),
                clock_rate: 8000,
                telephone_event: None,
                red: None,
                ptime: 20,
                opus: None,
                our_direction: Direction::SendRecv,
                their_direction: Direction::SendRecv,
            }
        );
        assert_eq!(answer.negotiated.remote_rtp.socket_addr(), None);
    }

    #[test]
    fn rfc4317_2_1_and_2_2_answers_to_our_offer() {
        // §2.1: Bob accepts PCMU only; his second m= line is video.
        let mut phone = alice();
        phone.create_offer().unwrap();
        let negotiated = phone
            .handle_answer(&sdp("v=0\n\
                o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com\n\
                s= \n\
                c=IN IP4 host.biloxi.example.com\n\
                t=0 0\n\
                m=audio 49174 RTP/AVP 0\n\
                a=rtpmap:0 PCMU/8000\n\
                m=video 49170 RTP/AVP 32\n\
                a=rtpmap:32 MPV/90000\n"))
            .unwrap();
        assert_eq!(
            (negotiated.codec, negotiated.pt, negotiated.recv_pt),
            (Codec::Pcmu, Pt(0), Pt(0))
        );
        assert_eq!(
            negotiated.remote_rtp,
            name("host.biloxi.example.com", 49174)
        );
        // We offered rtcp-mux; Bob did not take it.
        assert!(!negotiated.rtcp_mux);
        assert_eq!(negotiated.remote_rtcp.port, 49175);
        assert_eq!(negotiated.telephone_event, None);
        assert_eq!(phone.negotiated(), Some(&negotiated));

        // §2.2: Bob accepts PCMU and PCMA; the first he lists is used.
        let mut phone = alice();
        phone.create_offer().unwrap();
        let negotiated = phone
            .handle_answer(&sdp("v=0\n\
                o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com\n\
                s= \n\
                c=IN IP4 host.biloxi.example.com\n\
                t=0 0\n\
                m=audio 49172 RTP/AVP 0 8\n\
                a=rtpmap:0 PCMU/8000\n\
                a=rtpmap:8 PCMA/8000\n\
                m=video 0 RTP/AVP 31\n\
                a=rtpmap:31 H261/90000\n"))
            .unwrap();
        assert_eq!(negotiated.codec, Codec::Pcmu);
        assert_eq!(negotiated.remote_rtp.port, 49172);
    }

    #[test]
    fn rfc4317_2_3_ilbc_answer_has_nothing_in_common() {
        let mut phone = alice();
        phone.create_offer().unwrap();
        let error = phone
            .handle_answer(&sdp("v=0\n\
                o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com\n\
                s= \n\
                c=IN IP4 host.biloxi.example.com\n\
                t=0 0\n\
                m=audio 49172 RTP/AVP 99\n\
                a=rtpmap:99 iLBC/8000\n\
                m=video 51374 RTP/AVP 31\n\
                a=rtpmap:31 H261/90000\n"))
            .unwrap_err();
        assert_eq!(
            error,
            NegotiationError::NoCommonCodec {
                offered: vec!["iLBC/8000".into()],
                supported: vec![
                    "opus/48000/2".into(),
                    "PCMU/8000".into(),
                    "PCMA/8000".into()
                ],
            }
        );
        assert!(!phone.has_pending_offer());
        assert_eq!(phone.negotiated(), None);
    }

    #[test]
    fn rfc4317_2_4_and_2_6_one_audio_stream_accepted_the_other_declined() {
        // §2.4: audio, plus a second audio stream of telephone events only.
        let answer = bob()
            .handle_offer(&sdp("v=0\n\
                o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\n\
                s= \n\
                c=IN IP4 host.atlanta.example.com\n\
                t=0 0\n\
                m=audio 49170 RTP/AVP 0 97\n\
                a=rtpmap:0 PCMU/8000\n\
                a=rtpmap:97 iLBC/8000\n\
                m=audio 49172 RTP/AVP 98\n\
                a=rtpmap:98 telephone-event/8000\n\
                a=sendonly\n"))
            .unwrap();
        let media = &answer.sdp.media;
        assert_eq!(
            (media[0].port, media[0].formats.as_slice()),
            (49174, &["0".to_owned()][..])
        );
        assert_eq!(media[1].to_string(), "m=audio 0 RTP/AVP 98\r\n");
        assert_eq!(answer.negotiated.codec, Codec::Pcmu);

        // §2.6: PCMU alone, or iLBC with telephone events. Bob took the
        // second; we can only take the first.
        let answer = bob()
            .handle_offer(&sdp("v=0\n\
                o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\n\
                s= \n\
                c=IN IP4 host.atlanta.example.com\n\
                t=0 0\n\
                m=audio 49170 RTP/AVP 0\n\
                a=rtpmap:0 PCMU/8000\n\
                m=audio 51372 RTP/AVP 97 101\n\
                a=rtpmap:97 iLBC/8000\n\
                a=rtpmap:101 telephone-event/8000\n"))
            .unwrap();
        assert_eq!(answer.sdp.media[0].port, 49174);
        assert_eq!(answer.sdp.media[1].to_string(), "m=audio 0 RTP/AVP 97\r\n");
        assert_eq!(answer.negotiated.remote_rtp.port, 49170);
        assert_eq!(answer.negotiated.telephone_event, None);
    }

    #[test]
    fn rfc4317_4_2_reoffer_adds_video_and_the_answer_version_follows_changes() {
        let mut phone = bob();
        let offer = "v=0\n\
            o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\n\
            s= \n\
            c=IN IP4 host.atlanta.example.com\n\
            t=0 0\n\
            m=audio 49170 RTP/AVP 0\n\
            a=rtpmap:0 PCMU/8000\n";
        let first = phone.handle_offer(&sdp(offer)).unwrap();
        assert_eq!(first.sdp.origin.session_version, 2808844564);
        // The same offer again (a session refresh): the same answer, same version.
        let again = phone.handle_offer(&sdp(offer)).unwrap();
        assert_eq!(again.sdp, first.sdp);
        // §4.2's second offer adds video: declined, so the answer changed.
        let second = phone
            .handle_offer(&sdp(&format!(
                "{}m=video 49172 RTP/AVP 31\na=rtpmap:31 H261/90000\n",
                offer.replace("2890844526 IN", "2890844527 IN")
            )))
            .unwrap();
        assert_eq!(second.sdp.origin.session_version, 2808844565);
        assert_eq!(second.sdp.media[1].to_string(), "m=video 0 RTP/AVP 31\r\n");
        assert_eq!(second.negotiated, first.negotiated);
    }

    #[test]
    fn rfc4317_5_2_connection_address_zero_is_hold() {
        // §5.2's black-holed offer, with PCMU for its iLBC.
        let answer = bob()
            .handle_offer(&sdp("v=0\n\
                o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\n\
                s= \n\
                c=IN IP4 0.0.0.0\n\
                t=0 0\n\
                m=audio 23442 RTP/AVP 0\n"))
            .unwrap();
        assert_eq!(answer.negotiated.their_direction, Direction::SendOnly);
        assert_eq!(answer.negotiated.our_direction, Direction::RecvOnly);
        assert!(!answer.negotiated.sending());
        assert_eq!(answer.sdp.media[0].direction(), Some(Direction::RecvOnly));
    }

    #[test]
    fn baresip_offer_answered_with_opus() {
        let offer = sdp(BARESIP_OFFER);
        let answer = bob().handle_offer(&offer).unwrap();
        assert_eq!(
            answer.sdp.to_string(),
            "v=0\r\n\
             o=- 2808844564 2808844564 IN IP4 192.0.2.2\r\n\
             s=-\r\n\
             c=IN IP4 192.0.2.2\r\n\
             t=0 0\r\n\
             m=audio 49174 RTP/AVP 96 101\r\n\
             a=rtpmap:96 opus/48000/2\r\n\
             a=fmtp:96 useinbandfec=1\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        );
        let negotiated = answer.negotiated;
        assert_eq!(
            negotiated.remote_rtp.socket_addr(),
            Some("192.168.1.23:16796".parse().unwrap())
        );
        assert_eq!(negotiated.remote_rtcp, ip("192.168.1.23", 16797));
        assert_eq!(
            (negotiated.codec, negotiated.pt, negotiated.clock_rate),
            (Codec::Opus, Pt(96), 48000)
        );
        assert_eq!(
            negotiated.telephone_event,
            Some(TelephoneEventFormat {
                pt: Pt(101),
                recv_pt: Pt(101),
                clock_rate: 8000,
            })
        );
        assert_eq!(
            negotiated.opus,
            Some(OpusParams {
                stereo: true,
                sprop_stereo: true,
                maxaveragebitrate: Some(28000),
                ..OpusParams::default()
            })
        );
        assert_eq!(negotiated.ptime, 20);
    }

    #[test]
    fn g729_only_offer_is_refused_in_plain_words() {
        let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n";
        let error = bob()
            .handle_offer(&sdp(&format!(
                "{head}m=audio 5004 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n"
            )))
            .unwrap_err();
        assert!(
            matches!(&error, NegotiationError::NoCommonCodec { offered, .. } if offered == &["G729/8000"])
        );
        assert_eq!(
            error.to_string(),
            "no audio codec in common: the other side offers G729/8000; \
             ipphone has opus/48000/2, PCMU/8000, PCMA/8000"
        );
        // Without rtpmap the static table names it; a dynamic one unmapped is said so.
        let error = bob()
            .handle_offer(&sdp(&format!(
                "{head}m=audio 5004 RTP/AVP 18 97 101\r\na=rtpmap:101 telephone-event/8000\r\n"
            )))
            .unwrap_err();
        assert!(
            matches!(&error, NegotiationError::NoCommonCodec { offered, .. }
            if offered == &["G729/8000", "payload type 97 (no rtpmap)", "telephone-event/8000"])
        );
    }

    #[test]
    fn our_preference_their_payload_types() {
        let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n";
        let offer = sdp(&format!(
            "{head}m=audio 5004 RTP/AVP 8 0 120 99\r\na=rtpmap:120 OPUS/48000/2\r\n\
             a=rtpmap:99 telephone-event/48000\r\n"
        ));
        let answer = bob().handle_offer(&offer).unwrap();
        assert_eq!(
            (answer.negotiated.codec, answer.negotiated.pt),
            (Codec::Opus, Pt(120))
        );
        // telephone-event at Opus's clock rate, with their number.
        assert_eq!(
            answer
                .negotiated
                .telephone_event
                .map(|t| (t.pt, t.clock_rate)),
            Some((Pt(99), 48000))
        );
        assert_eq!(answer.negotiated.opus, Some(OpusParams::default()));
        assert_eq!(answer.sdp.media[0].formats, ["120", "99"]);

        let mut g711 = bob();
        g711.local_mut().codecs = vec![Codec::Pcma, Codec::Pcmu];
        g711.local_mut().telephone_event = false;
        let answer = g711.handle_offer(&offer).unwrap();
        assert_eq!(
            (answer.negotiated.codec, answer.negotiated.pt),
            (Codec::Pcma, Pt(8))
        );
        assert_eq!(answer.negotiated.telephone_event, None);
        assert_eq!(answer.sdp.media[0].formats, ["8"]);
    }

    #[test]
    fn ptime_rtcp_and_rtcp_mux_are_honoured() {
        let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n";
        let answer = bob()
            .handle_offer(&sdp(&format!(
                "{head}m=audio 5004 RTP/AVP 0\r\na=ptime:30\r\na=rtcp:53020 IN IP4 126.16.64.4\r\n"
            )))
            .unwrap();
        assert_eq!(answer.negotiated.ptime, 30);
        assert_eq!(answer.sdp.media[0].ptime(), Some(30));
        assert_eq!(answer.negotiated.remote_rtcp, ip("126.16.64.4", 53020));
        assert!(!answer.sdp.media[0].rtcp_mux());

        let answer = bob()
            .handle_offer(&sdp(&format!(
                "{head}m=audio 5004 RTP/AVP 0\r\na=maxptime:10\r\na=rtcp-mux\r\na=rtcp:5004\r\n"
            )))
            .unwrap();
        assert_eq!(answer.negotiated.ptime, 10);
        assert!(answer.negotiated.rtcp_mux);
        assert!(answer.sdp.media[0].rtcp_mux());
        assert_eq!(answer.negotiated.remote_rtcp, ip("192.0.2.9", 5004));

        let mut no_mux = bob();
        no_mux.local_mut().rtcp_mux = false;
        let answer = no_mux
            .handle_offer(&sdp(&format!(
                "{head}m=audio 5004 RTP/AVP 0\r\na=rtcp-mux\r\n"
            )))
            .unwrap();
        assert!(!answer.negotiated.rtcp_mux);
        assert_eq!(answer.negotiated.remote_rtcp.port, 5005);
    }

    #[test]
    fn directions_mirror_rfc_3264_6_1() {
        use Direction::*;
        let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n";
        for (theirs, ours, answered) in [
            (SendRecv, SendRecv, SendRecv),
            (SendOnly, SendRecv, RecvOnly),
            (RecvOnly, SendRecv, SendOnly),
            (Inactive, SendRecv, Inactive),
            // We hold the call.
            (SendRecv, SendOnly, SendOnly),
            (SendOnly, SendOnly, Inactive),
            (RecvOnly, SendOnly, SendOnly),
        ] {
            let mut phone = bob();
            phone.local_mut().direction = ours;
            let answer = phone
                .handle_offer(&sdp(&format!(
                    "{head}m=audio 5004 RTP/AVP 0\r\na={theirs}\r\n"
                )))
                .unwrap();
            assert_eq!(
                answer.sdp.media[0].direction(),
                Some(answered),
                "{theirs} {ours}"
            );
            assert_eq!(answer.negotiated.our_direction, answered);
            assert_eq!(answer.negotiated.their_direction, theirs);
        }
        // A session-level direction applies to media without their own.
        let answer = bob()
            .handle_offer(&sdp(&format!(
                "{head}a=sendonly\r\nm=audio 5004 RTP/AVP 0\r\n"
            )))
            .unwrap();
        assert_eq!(answer.negotiated.our_direction, RecvOnly);
    }

    #[test]
    fn unanswerable_offers_and_misuse_are_errors() {
        let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n";
        assert_eq!(
            bob().handle_offer(&sdp(&format!(
                "{head}m=audio 5004 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"
            ))),
            Err(NegotiationError::UnsupportedTransport("RTP/SAVP".into()))
        );
        assert_eq!(
            bob().handle_offer(&sdp(&format!("{head}m=video 5006 RTP/AVP 31\r\n"))),
            Err(NegotiationError::NoAudio)
        );
        assert_eq!(
            bob().handle_offer(&sdp(&format!("{head}m=audio 0 RTP/AVP 0\r\n"))),
            Err(NegotiationError::NoAudio)
        );
        assert_eq!(
            bob().handle_offer(&sdp(
                "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n"
            )),
            Err(NegotiationError::NoConnection)
        );
        let mut phone = bob();
        assert_eq!(
            phone.handle_answer(&sdp(&format!("{head}m=audio 5004 RTP/AVP 0\r\n"))),
            Err(NegotiationError::NoOfferPending)
        );
        phone.create_offer().unwrap();
        assert_eq!(phone.create_offer(), Err(NegotiationError::OfferPending));
        assert_eq!(
            phone.handle_offer(&sdp(&format!("{head}m=audio 5004 RTP/AVP 0\r\n"))),
            Err(NegotiationError::OfferPending)
        );
        assert_eq!(
            phone.handle_answer(&sdp(&format!("{head}m=audio 0 RTP/AVP 0\r\n"))),
            Err(NegotiationError::Rejected)
        );
        let mut none = bob();
        none.local_mut().codecs.clear();
        assert_eq!(none.create_offer(), Err(NegotiationError::NoLocalCodecs));
    }

    #[test]
    fn answer_may_renumber_payload_types() {
        // RFC 4317 §2.3 renumbers iLBC from 97 to 99; the same with Opus.
        let mut phone = alice();
        let offer = phone.create_offer().unwrap();
        assert_eq!(offer.media[0].formats, ["111", "0", "8", "101", "96", "97"]);
        let negotiated = phone
            .handle_answer(&sdp(
                "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
                m=audio 5004 RTP/AVP 98 100\r\na=rtpmap:98 opus/48000/2\r\n\
                a=fmtp:98 useinbandfec=1;maxaveragebitrate=20000\r\n\
                a=rtpmap:100 telephone-event/8000\r\na=rtcp-mux\r\na=recvonly\r\n",
            ))
            .unwrap();
        assert_eq!((negotiated.pt, negotiated.recv_pt), (Pt(98), Pt(111)));
        assert_eq!(
            negotiated.telephone_event,
            Some(TelephoneEventFormat {
                pt: Pt(100),
                recv_pt: Pt(101),
                clock_rate: 8000,
            })
        );
        assert_eq!(negotiated.red, None);
        let opus = negotiated.opus.unwrap();
        assert!(opus.useinbandfec);
        assert_eq!(opus.maxaveragebitrate, Some(20000));
        assert!(negotiated.rtcp_mux);
        assert_eq!(negotiated.remote_rtcp, negotiated.remote_rtp);
        assert_eq!(negotiated.our_direction, Direction::SendOnly);
        assert_eq!(negotiated.their_direction, Direction::RecvOnly);
    }

    #[test]
    fn ipv6_offer_and_answer() {
        let mut caller = OfferAnswer::new(LocalMedia::new("2001:db8::1".parse().unwrap(), 4000), 7);
        let mut callee = OfferAnswer::new(LocalMedia::new("2001:db8::2".parse().unwrap(), 6000), 9);
        let offer = caller.create_offer().unwrap();
        let text = offer.to_string();
        assert!(text.contains("o=- 7 7 IN IP6 2001:db8::1\r\n"), "{text}");
        assert!(text.contains("c=IN IP6 2001:db8::1\r\n"), "{text}");
        let answer = callee.handle_offer(&sdp(&text)).unwrap();
        assert_eq!(
            answer.negotiated.remote_rtp.socket_addr(),
            Some("[2001:db8::1]:4000".parse().unwrap())
        );
        assert_eq!(
            answer.negotiated.remote_rtp.to_string(),
            "[2001:db8::1]:4000"
        );
        let negotiated = caller.handle_answer(&sdp(&answer.sdp.to_string())).unwrap();
        assert_eq!(negotiated.remote_rtp, ip("2001:db8::2", 6000));
        assert!(negotiated.rtcp_mux);
        assert_eq!((negotiated.codec, negotiated.pt), (Codec::Opus, Pt(111)));
        assert_eq!(negotiated.opus.map(|o| o.useinbandfec), Some(true));
    }

    const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n";

    fn red(pt: u8, recv_pt: u8) -> Option<RedFormat> {
        Some(RedFormat {
            pt: Pt(pt),
            recv_pt: Pt(recv_pt),
        })
    }

    #[test]
    fn offer_lists_red_per_clock_rate_after_the_codecs() {
        let offer = alice().create_offer().unwrap();
        assert_eq!(
            offer.to_string(),
            "v=0\r\n\
             o=- 2890844526 2890844526 IN IP4 192.0.2.1\r\n\
             s=-\r\n\
             c=IN IP4 192.0.2.1\r\n\
             t=0 0\r\n\
             m=audio 49170 RTP/AVP 111 0 8 101 96 97\r\n\
             a=rtpmap:111 opus/48000/2\r\n\
             a=fmtp:111 useinbandfec=1\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\n\
             a=rtpmap:96 red/48000/2\r\n\
             a=fmtp:96 111/111\r\n\
             a=rtpmap:97 red/8000\r\n\
             a=fmtp:97 0/0\r\n\
             a=ptime:20\r\n\
             a=rtcp-mux\r\n\
             a=sendrecv\r\n"
        );

        // The 8000 Hz RED names the preferred codec at that rate.
        let mut g711 = alice();
        g711.local_mut().codecs = vec![Codec::Pcma, Codec::Pcmu];
        let media = &g711.create_offer().unwrap().media[0];
        assert_eq!(media.formats, ["8", "0", "101", "96"]);
        assert_eq!(media.fmtp(Pt(96)).unwrap().to_string(), "96 8/8");

        let mut plain = alice();
        plain.local_mut().red = false;
        let media = &plain.create_offer().unwrap().media[0];
        assert_eq!(media.formats, ["111", "0", "8", "101"]);
    }

    #[test]
    fn red_offered_for_the_chosen_codec_is_answered_with_their_numbers() {
        // WebRTC's shape: RED on 63 right after Opus, naming it twice.
        let offer = sdp(&format!(
            "{HEAD}m=audio 5004 RTP/AVP 111 63 9 0 8 126\r\n\
             a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
             a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n\
             a=rtpmap:9 G722/8000\r\na=rtpmap:126 telephone-event/8000\r\n"
        ));
        let answer = bob().handle_offer(&offer).unwrap();
        assert_eq!(answer.negotiated.red, red(63, 63));
        assert_eq!(
            answer.sdp.media[0].to_string(),
            "m=audio 49174 RTP/AVP 111 126 63\r\n\
             a=rtpmap:111 opus/48000/2\r\n\
             a=fmtp:111 useinbandfec=1\r\n\
             a=rtpmap:126 telephone-event/8000\r\n\
             a=fmtp:126 0-15\r\n\
             a=rtpmap:63 red/48000/2\r\n\
             a=fmtp:63 111/111\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        );

        // Renumbered: their RED 96 names their Opus 100.
        let answer = bob()
            .handle_offer(&sdp(&format!(
                "{HEAD}m=audio 5004 RTP/AVP 100 96\r\n\
                 a=rtpmap:100 opus/48000/2\r\na=rtpmap:96 RED/48000/2\r\na=fmtp:96 100/100\r\n"
            )))
            .unwrap();
        assert_eq!(
            (answer.negotiated.pt, answer.negotiated.red),
            (Pt(100), red(96, 96))
        );
        assert_eq!(answer.sdp.media[0].formats, ["100", "96"]);
        assert_eq!(
            answer.sdp.media[0].fmtp(Pt(96)).unwrap().to_string(),
            "96 100/100"
        );

        // G.711 chosen: the 8000 Hz RED that names it.
        let mut g711 = bob();
        g711.local_mut().codecs = vec![Codec::Pcmu];
        let answer = g711
            .handle_offer(&sdp(&format!(
                "{HEAD}m=audio 5004 RTP/AVP 111 0 63 98\r\n\
                 a=rtpmap:111 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n\
                 a=rtpmap:98 red/8000\r\na=fmtp:98 0/0\r\n"
            )))
            .unwrap();
        assert_eq!(
            (answer.negotiated.codec, answer.negotiated.red),
            (Codec::Pcmu, red(98, 98))
        );
        assert_eq!(answer.sdp.media[0].formats, ["0", "98"]);
    }

    #[test]
    fn red_for_another_codec_or_of_another_shape_is_not_used() {
        let opus = "a=rtpmap:111 opus/48000/2\r\n";
        for (formats, lines) in [
            // None at all.
            ("111 0", ""),
            // RED without fmtp.
            ("111 63", "a=rtpmap:63 red/48000/2\r\n"),
            // RED naming another codec, or mixing one in.
            ("111 0 63", "a=rtpmap:63 red/48000/2\r\na=fmtp:63 0/0\r\n"),
            ("111 0 63", "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/0\r\n"),
            ("111 0 98", "a=rtpmap:98 red/8000\r\na=fmtp:98 0/0\r\n"),
            // RED naming Opus at another clock rate, or with no redundant block.
            ("111 98", "a=rtpmap:98 red/8000\r\na=fmtp:98 111/111\r\n"),
            ("111 63", "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111\r\n"),
            // Shapes nobody writes.
            (
                "111 63",
                "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111;x=1\r\n",
            ),
            (
                "111 63",
                "a=rtpmap:63 red/48000/2\r\na=fmtp:63 primary=111\r\n",
            ),
            // An fmtp for RED whose rtpmap is missing: 63 is no known format.
            ("111 63", "a=fmtp:63 111/111\r\n"),
        ] {
            let offer = sdp(&format!(
                "{HEAD}m=audio 5004 RTP/AVP {formats}\r\n{opus}{lines}"
            ));
            let answer = bob().handle_offer(&offer).unwrap();
            assert_eq!(answer.negotiated.codec, Codec::Opus, "{lines}");
            assert_eq!(answer.negotiated.red, None, "{lines}");
            assert_eq!(answer.sdp.media[0].formats, ["111"], "{lines}");
        }

        // A usable RED offered to a phone with RED switched off.
        let mut plain = bob();
        plain.local_mut().red = false;
        let answer = plain
            .handle_offer(&sdp(&format!(
                "{HEAD}m=audio 5004 RTP/AVP 111 63\r\n{opus}\
                 a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n"
            )))
            .unwrap();
        assert_eq!(answer.negotiated.red, None);
        assert_eq!(answer.sdp.media[0].formats, ["111"]);

        // baresip offers no RED: none in our answer either.
        let answer = bob().handle_offer(&sdp(BARESIP_OFFER)).unwrap();
        assert_eq!(answer.negotiated.red, None);
        assert!(!answer.sdp.to_string().to_ascii_lowercase().contains("red"));
    }

    #[test]
    fn answers_to_our_offer_with_and_without_red() {
        let answer = |media: &str| {
            let mut phone = alice();
            phone.create_offer().unwrap();
            phone
                .handle_answer(&sdp(&format!("{HEAD}{media}")))
                .unwrap()
        };
        // baresip keeps our numbers and lists only what it knows.
        let negotiated = answer(
            "m=audio 16796 RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\n\
             a=fmtp:111 stereo=1;sprop-stereo=1;maxaveragebitrate=28000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n",
        );
        assert_eq!((negotiated.codec, negotiated.red), (Codec::Opus, None));

        // A peer with RED, our numbers.
        let negotiated = answer(
            "m=audio 5004 RTP/AVP 111 96\r\na=rtpmap:111 opus/48000/2\r\n\
             a=rtpmap:96 red/48000/2\r\na=fmtp:96 111/111\r\n",
        );
        assert_eq!(negotiated.red, red(96, 96));

        // Renumbered: their RED 120 names their Opus 100; ours stay 96 and 111.
        let negotiated = answer(
            "m=audio 5004 RTP/AVP 100 120\r\na=rtpmap:100 opus/48000/2\r\n\
             a=rtpmap:120 red/48000/2\r\na=fmtp:120 100/100\r\n",
        );
        assert_eq!(
            (negotiated.pt, negotiated.recv_pt, negotiated.red),
            (Pt(100), Pt(111), red(120, 96))
        );

        // Their RED names our number for Opus, not theirs: not theirs to send.
        let negotiated = answer(
            "m=audio 5004 RTP/AVP 100 120\r\na=rtpmap:100 opus/48000/2\r\n\
             a=rtpmap:120 red/48000/2\r\na=fmtp:120 111/111\r\n",
        );
        assert_eq!(negotiated.red, None);

        // PCMU chosen: our 8000 Hz RED names it.
        let negotiated =
            answer("m=audio 5004 RTP/AVP 0 97\r\na=rtpmap:97 red/8000\r\na=fmtp:97 0/0\r\n");
        assert_eq!(
            (negotiated.codec, negotiated.red),
            (Codec::Pcmu, red(97, 97))
        );

        // PCMA chosen: our 8000 Hz RED names PCMU, so there is none for it.
        let negotiated =
            answer("m=audio 5004 RTP/AVP 8 97\r\na=rtpmap:97 red/8000\r\na=fmtp:97 8/8\r\n");
        assert_eq!((negotiated.codec, negotiated.red), (Codec::Pcma, None));
    }

    #[test]
    fn two_ipphones_agree_on_red() {
        let mut caller = alice();
        let mut callee = bob();
        let offer = caller.create_offer().unwrap();
        let answer = callee.handle_offer(&sdp(&offer.to_string())).unwrap();
        assert_eq!(answer.sdp.media[0].formats, ["111", "101", "96"]);
        let negotiated = caller.handle_answer(&sdp(&answer.sdp.to_string())).unwrap();
        assert_eq!(answer.negotiated.red, red(96, 96));
        assert_eq!(negotiated.red, red(96, 96));
    }
}
