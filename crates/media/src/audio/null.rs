//! The null backend: a microphone that delivers silence and a speaker that
//! discards, both at real-time pace (5 ms at a time) so the call around them
//! keeps time.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::pace::{Paced, PacedTask};
use super::{MicStream, SpeakerStream, StreamCounters, apply_discard, ring_capacity};

pub fn open_mic(rate: u32) -> MicStream {
    let (producer, ring) = rtrb::RingBuffer::new(ring_capacity(rate));
    let counters = Arc::new(StreamCounters::default());
    let task = Silence {
        producer,
        counters: counters.clone(),
    };
    MicStream {
        rate,
        ring,
        counters,
        driver: Box::new(Paced::new(rate, task)),
    }
}

pub fn open_speaker(rate: u32) -> SpeakerStream {
    let (ring, consumer) = rtrb::RingBuffer::<i16>::new(ring_capacity(rate));
    let counters = Arc::new(StreamCounters::default());
    let task = Discard {
        consumer,
        counters: counters.clone(),
    };
    SpeakerStream {
        rate,
        ring,
        device_latency: 0,
        counters,
        driver: Box::new(Paced::new(rate, task)),
    }
}

struct Silence {
    producer: rtrb::Producer<i16>,
    counters: Arc<StreamCounters>,
}

impl PacedTask for Silence {
    fn step(&mut self, samples: usize) {
        let free = self.producer.slots();
        if let Ok(chunk) = self.producer.write_chunk_uninit(samples.min(free)) {
            chunk.fill_from_iter(std::iter::repeat(0));
        }
        if samples > free {
            self.counters
                .xruns
                .fetch_add((samples - free) as u64, Ordering::Relaxed);
        }
    }

    fn finish(self) {}
}

struct Discard {
    consumer: rtrb::Consumer<i16>,
    counters: Arc<StreamCounters>,
}

impl PacedTask for Discard {
    fn step(&mut self, samples: usize) {
        apply_discard(&mut self.consumer, &self.counters);
        let have = self.consumer.slots().min(samples);
        if let Ok(chunk) = self.consumer.read_chunk(have) {
            chunk.commit_all();
        }
        if samples > have {
            self.counters
                .xruns
                .fetch_add((samples - have) as u64, Ordering::Relaxed);
        }
    }

    fn finish(self) {}
}
