//! Fuzzes what the network feeds a call: arbitrary datagrams into the RTP
//! media stream, whose media then goes into the jitter buffer, interleaved
//! with playout pulls at fuzzer-chosen times; RFC 2198 redundancy (payload
//! type 63) comes apart into its blocks, whose copies fill gaps. Nothing
//! may panic, and the buffer must stay within its bounds.
#![no_main]

use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use proto::jitter::{JitterBuffer, JitterConfig, Playout};
use proto::rtp::{Pt, SeqNo, Ssrc};
use proto::stream::{MediaStream, StreamConfig, StreamEvent};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let config = StreamConfig {
        clock_rate: 48_000,
        pt: Pt(111),
        ssrc: Ssrc(1),
        first_seq: SeqNo(0),
        first_timestamp: 0,
        cname: "fuzz".into(),
        rtcp_interval: Duration::from_secs(5),
        feedback: true,
        seed: 1,
    };
    let mut stream = MediaStream::new(config, t0);
    stream.set_red(Some(Pt(63)), Some(Pt(63)));
    let jitter_config = JitterConfig::new(48_000);
    let max_packets = jitter_config.max_packets;
    let mut jitter = JitterBuffer::new(jitter_config);
    let mut now = t0;
    // Each record: one byte of time step (ms), one byte of length, then the datagram.
    let mut rest = data;
    while let [step, len, tail @ ..] = rest {
        now += Duration::from_millis(u64::from(*step));
        let n = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(n);
        rest = next;
        stream.handle_datagram(now, wall, datagram);
        while let Some(event) = stream.poll_event() {
            if let StreamEvent::Media {
                seq,
                timestamp,
                payload,
                redundant,
                ..
            } = event
            {
                if redundant {
                    let _ = jitter.insert_recovered(seq, timestamp, &payload);
                } else {
                    let _ = jitter.insert(now, seq, timestamp, &payload);
                }
            }
        }
        if step % 2 == 0 {
            // A pop that `next_ready` promised gives a packet (the call
            // pulls ahead on that promise).
            let promised = jitter.next_ready();
            match jitter.pop(now) {
                Playout::Packet { payload, .. } => assert!(payload.len() <= 1_500),
                _ => assert!(!promised, "next_ready promised a packet"),
            }
            jitter.played(960);
        }
        stream.handle_timeout(now, wall);
        while stream.poll_transmit().is_some() {}
        assert!(jitter.stats().packets <= max_packets);
    }
});
