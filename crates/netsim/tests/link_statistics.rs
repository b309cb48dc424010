//! Statistical checks of one `Link`: each impairment, measured over up to
//! 100 000 packets, comes out as configured, and the same seed replays exactly.

use std::time::{Duration, Instant};

use ipphone_netsim::{
    DEFAULT_MAX_IN_FLIGHT, Delivered, GilbertElliott, Jitter, Link, LinkConfig, LinkStats,
    RateLimit, Reorder, VirtualClock,
};

const N: u64 = 100_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sends `n` packets of `size` bytes, `interval` apart, collecting deliveries
/// as the clock passes them (so the in-flight bound is never the limit).
fn run(link: &mut Link, n: u64, interval: Duration, size: usize) -> (Instant, Vec<Delivered>) {
    let mut clock = VirtualClock::new();
    let t0 = clock.now();
    let mut out = Vec::new();
    for i in 0..n {
        while let Some(d) = link.poll_deliver(clock.now()) {
            out.push(d);
        }
        let mut packet = vec![0; size];
        let tag = i.to_be_bytes();
        let k = size.min(8);
        packet[..k].copy_from_slice(&tag[8 - k..]);
        link.send(clock.now(), packet);
        clock.advance(interval);
    }
    while let Some(at) = link.poll_timeout() {
        clock.advance_to(at);
        while let Some(d) = link.poll_deliver(clock.now()) {
            out.push(d);
        }
    }
    assert_balanced(link.stats(), link.in_flight());
    (t0, out)
}

fn assert_balanced(s: &LinkStats, in_flight: usize) {
    assert_eq!(
        s.sent + s.duplicated,
        s.delivered + s.lost + s.dropped_queue + s.dropped_overflow + in_flight as u64,
        "{s:?}"
    );
}

fn link(config: LinkConfig, seed: u64) -> Link {
    Link::new(config, seed).unwrap()
}

/// Lengths of runs of consecutive sequence numbers missing from `delivered`.
fn loss_bursts(delivered: &[Delivered], n: u64) -> Vec<u64> {
    let mut got = vec![false; n as usize];
    for d in delivered {
        got[d.seq as usize] = true;
    }
    let mut bursts = Vec::new();
    let mut run = 0;
    for &g in &got {
        if g {
            if run > 0 {
                bursts.push(run);
            }
            run = 0;
        } else {
            run += 1;
        }
    }
    if run > 0 {
        bursts.push(run);
    }
    bursts
}

fn mean(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = xs
        .into_iter()
        .fold((0.0, 0.0), |(s, n), x| (s + x, n + 1.0));
    sum / n
}

fn everything() -> LinkConfig {
    LinkConfig {
        delay: ms(40),
        jitter: Jitter::Normal(ms(4)),
        keep_order: true,
        loss: 0.01,
        burst_loss: Some(GilbertElliott::from_loss_and_burst(0.03, 3.0).unwrap()),
        reorder: Some(Reorder {
            probability: 0.02,
            extra_delay: ms(25),
        }),
        duplicate: 0.01,
        rate: Some(RateLimit {
            bits_per_second: 200_000,
            queue_bytes: 3_000,
        }),
        ..LinkConfig::default()
    }
}

fn outcome(seed: u64) -> (Vec<(u64, Duration, bool)>, LinkStats) {
    let mut l = link(everything(), seed);
    let (t0, out) = run(&mut l, 20_000, ms(5), 160);
    let trace = out
        .iter()
        .map(|d| (d.seq, d.at - t0, d.duplicate))
        .collect();
    (trace, *l.stats())
}

#[test]
fn same_seed_same_outcome() {
    let (a, stats_a) = outcome(1234);
    let (b, stats_b) = outcome(1234);
    assert_eq!(a, b);
    assert_eq!(stats_a, stats_b);
    let (c, _) = outcome(1235);
    assert_ne!(a, c);
    // Every impairment happened at least once.
    let s = stats_a;
    assert!(
        s.lost > 0 && s.dropped_queue > 0 && s.duplicated > 0,
        "{s:?}"
    );
    assert!(s.held_back > 0 && s.reordered > 0, "{s:?}");
}

#[test]
fn outcome_is_pinned_across_versions() {
    // FNV-1a over the delivery trace. If this changes, every recorded
    // scenario changes with it: bump it only on purpose.
    let (trace, stats) = outcome(1234);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (seq, at, dup) in trace {
        for byte in seq
            .to_le_bytes()
            .into_iter()
            .chain(at.as_nanos().to_le_bytes())
            .chain([u8::from(dup)])
        {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }
    let pinned = LinkStats {
        sent: 20_000,
        duplicated: 225,
        delivered: 15_032,
        delivered_bytes: 2_405_120,
        lost: 610,
        dropped_queue: 4_583,
        dropped_overflow: 0,
        held_back: 308,
        reordered: 306,
    };
    assert_eq!(stats, pinned);
    assert_eq!(hash, PINNED_HASH, "{hash:#x}");
}

const PINNED_HASH: u64 = 0x3efc_4a6e_5e3f_821e;

#[test]
fn random_loss_matches_configuration() {
    for (seed, p) in [(1, 0.01), (2, 0.05), (3, 0.2)] {
        let mut l = link(
            LinkConfig {
                delay: ms(30),
                loss: p,
                ..LinkConfig::default()
            },
            seed,
        );
        let (_, out) = run(&mut l, N, ms(1), 20);
        let measured = l.stats().lost as f64 / N as f64;
        // Four standard deviations of a binomial proportion.
        let tolerance = 4.0 * (p * (1.0 - p) / N as f64).sqrt();
        assert!(
            (measured - p).abs() < tolerance,
            "p {p}: measured {measured}"
        );
        assert_eq!(l.stats().delivered + l.stats().lost, N);
        // Independent loss: bursts are geometric with mean 1 / (1 - p).
        let bursts = loss_bursts(&out, N);
        let mean_burst = mean(bursts.iter().map(|&b| b as f64));
        assert!(
            (mean_burst - 1.0 / (1.0 - p)).abs() < 0.05,
            "p {p}: mean burst {mean_burst}"
        );
    }
}

#[test]
fn gilbert_elliott_loss_and_burst_length_match_configuration() {
    for (seed, loss, burst) in [(10, 0.05, 4.0), (11, 0.1, 2.0), (12, 0.02, 8.0)] {
        let ge = GilbertElliott::from_loss_and_burst(loss, burst).unwrap();
        let mut l = link(
            LinkConfig {
                delay: ms(20),
                burst_loss: Some(ge),
                ..LinkConfig::default()
            },
            seed,
        );
        let (_, out) = run(&mut l, N, ms(1), 20);
        let measured = l.stats().lost as f64 / N as f64;
        // The loss indicator is a two-state Markov chain with second
        // eigenvalue λ = 1 - p - r; the variance of its mean over N samples
        // is about π(1-π)(1+λ)/((1-λ)N).
        let lambda = 1.0 - ge.p - ge.r;
        let sd = (loss * (1.0 - loss) * (1.0 + lambda) / ((1.0 - lambda) * N as f64)).sqrt();
        assert!(
            (measured - loss).abs() < 4.0 * sd,
            "loss {loss} burst {burst}: measured {measured}, sd {sd}"
        );
        // A stay in the bad state is exactly one burst, geometric with mean
        // 1/r and variance (1-r)/r².
        let bursts = loss_bursts(&out, N);
        let mean_burst = mean(bursts.iter().map(|&b| b as f64));
        let sd_mean = ((1.0 - ge.r) / (ge.r * ge.r) / bursts.len() as f64).sqrt();
        assert!(
            (mean_burst - burst).abs() < 4.0 * sd_mean,
            "burst {burst}: measured {mean_burst} over {} bursts",
            bursts.len()
        );
    }
}

#[test]
fn gilbert_elliott_with_loss_in_both_states() {
    let ge = GilbertElliott {
        p: 0.02,
        r: 0.2,
        loss_good: 0.01,
        loss_bad: 0.5,
    };
    let expected = ge.average_loss();
    assert!((expected - (0.2 * 0.01 + 0.02 * 0.5) / 0.22).abs() < 1e-12);
    let mut l = link(
        LinkConfig {
            burst_loss: Some(ge),
            ..LinkConfig::default()
        },
        5,
    );
    run(&mut l, N, ms(1), 20);
    let measured = l.stats().lost as f64 / N as f64;
    assert!(
        (measured - expected).abs() < 0.1 * expected,
        "{measured} vs {expected}"
    );
}

fn delays(t0: Instant, out: &[Delivered], interval: Duration) -> Vec<Duration> {
    out.iter()
        .map(|d| {
            assert_eq!(d.sent_at, t0 + interval * d.seq as u32);
            d.at - d.sent_at
        })
        .collect()
}

#[test]
fn uniform_jitter_stays_in_bounds_and_may_reorder_when_allowed() {
    let mut l = link(
        LinkConfig {
            delay: ms(50),
            jitter: Jitter::Uniform(ms(20)),
            keep_order: false,
            ..LinkConfig::default()
        },
        20,
    );
    let (t0, out) = run(&mut l, N, ms(1), 20);
    assert_eq!(out.len() as u64, N);
    let d = delays(t0, &out, ms(1));
    assert!(d.iter().all(|&x| (ms(30)..=ms(70)).contains(&x)));
    let min = *d.iter().min().unwrap();
    let max = *d.iter().max().unwrap();
    assert!(min < ms(31) && max > ms(69), "{min:?} {max:?}");
    let mean_ms = mean(d.iter().map(|x| x.as_secs_f64() * 1e3));
    assert!((mean_ms - 50.0).abs() < 0.2, "mean {mean_ms} ms");
    // With 1 ms spacing and a 40 ms spread, most packets overtake or are overtaken.
    assert!(l.stats().reordered > N / 4, "{:?}", l.stats());
}

#[test]
fn normal_jitter_has_configured_spread() {
    let mut l = link(
        LinkConfig {
            delay: ms(50),
            jitter: Jitter::Normal(ms(5)),
            keep_order: false,
            ..LinkConfig::default()
        },
        21,
    );
    let (t0, out) = run(&mut l, N, ms(1), 20);
    let d: Vec<f64> = delays(t0, &out, ms(1))
        .iter()
        .map(|x| x.as_secs_f64() * 1e3)
        .collect();
    assert!(d.iter().all(|&x| (20.0..=80.0).contains(&x)));
    let m = mean(d.iter().copied());
    let sd = mean(d.iter().map(|x| (x - m) * (x - m))).sqrt();
    assert!((m - 50.0).abs() < 0.1, "mean {m}");
    assert!((sd - 5.0).abs() < 0.1, "sd {sd}");
    // About 68 % within one standard deviation.
    let within = d.iter().filter(|&&x| (x - 50.0).abs() <= 5.0).count() as f64 / d.len() as f64;
    assert!((within - 0.6827).abs() < 0.01, "{within}");
}

#[test]
fn jitter_with_order_kept_never_overtakes() {
    for jitter in [Jitter::Uniform(ms(20)), Jitter::Normal(ms(5))] {
        let mut l = link(
            LinkConfig {
                delay: ms(50),
                jitter,
                keep_order: true,
                ..LinkConfig::default()
            },
            22,
        );
        let (t0, out) = run(&mut l, N, ms(1), 20);
        assert_eq!(out.len() as u64, N);
        assert!(
            out.windows(2)
                .all(|w| w[0].seq < w[1].seq && w[0].at <= w[1].at)
        );
        assert_eq!(l.stats().reordered, 0);
        let bound = jitter.bound();
        assert!(
            delays(t0, &out, ms(1))
                .iter()
                .all(|&x| x >= ms(50) - bound && x <= ms(50) + bound)
        );
    }
}

#[test]
fn reorder_overtakes_at_configured_rate() {
    for (seed, p) in [(30, 0.01), (31, 0.05), (32, 0.2)] {
        let mut l = link(
            LinkConfig {
                delay: ms(50),
                reorder: Some(Reorder {
                    probability: p,
                    extra_delay: ms(30),
                }),
                ..LinkConfig::default()
            },
            seed,
        );
        let (_, out) = run(&mut l, N, ms(20), 20);
        let s = *l.stats();
        assert_eq!(s.delivered, N);
        let tolerance = 4.0 * (p * (1.0 - p) / N as f64).sqrt();
        let held = s.held_back as f64 / N as f64;
        assert!((held - p).abs() < tolerance, "p {p}: held back {held}");
        // A held packet (80 ms) arrives after its successor (20 + 50 ms)
        // unless that one was held too.
        let expected = p * (1.0 - p);
        let measured = s.reordered as f64 / N as f64;
        assert!(
            (measured - expected).abs() < tolerance,
            "p {p}: reordered {measured}"
        );
        let late = out.windows(2).filter(|w| w[1].seq < w[0].seq).count() as u64;
        assert_eq!(late, s.reordered);
    }
}

#[test]
fn rate_cap_delivers_at_the_rate_and_tail_drops_the_excess() {
    let rate = 64_000;
    let queue_bytes = 1_600;
    let mut l = link(
        LinkConfig {
            delay: ms(10),
            rate: Some(RateLimit {
                bits_per_second: rate,
                queue_bytes,
            }),
            ..LinkConfig::default()
        },
        40,
    );
    // 160 bytes every 10 ms is 128 kbit/s: twice the cap.
    let (_, out) = run(&mut l, N / 10, ms(10), 160);
    let s = *l.stats();
    let span = out.last().unwrap().at - out.first().unwrap().at;
    let bits_after_first = (s.delivered_bytes - 160) * 8;
    let measured = bits_after_first as f64 / span.as_secs_f64();
    assert!(
        (measured - rate as f64).abs() < 0.001 * rate as f64,
        "{measured} bit/s"
    );
    // Half gets through (plus what the queue held at the end).
    assert!((s.delivered as i64 - (N / 20) as i64).abs() <= 10, "{s:?}");
    assert_eq!(s.delivered + s.dropped_queue, N / 10);
    // Queueing delay never exceeds the queue's drain time (200 ms) plus one
    // packet's serialization (20 ms) and the propagation delay.
    let drain = Duration::from_secs_f64(queue_bytes as f64 * 8.0 / rate as f64);
    assert!(out.iter().all(|d| d.at - d.sent_at <= drain + ms(10)));
    assert!(out.iter().any(|d| d.at - d.sent_at >= drain - ms(20)));
}

#[test]
fn rate_cap_under_capacity_only_adds_serialization() {
    let mut l = link(
        LinkConfig {
            delay: ms(10),
            rate: Some(RateLimit {
                bits_per_second: 64_000,
                queue_bytes: 160,
            }),
            ..LinkConfig::default()
        },
        41,
    );
    // 160 bytes every 40 ms is 32 kbit/s.
    let (_, out) = run(&mut l, 10_000, ms(40), 160);
    assert_eq!(l.stats().dropped_queue, 0);
    assert!(out.iter().all(|d| d.at - d.sent_at == ms(30)));
}

#[test]
fn duplication_matches_configuration() {
    let p = 0.1;
    let mut l = link(
        LinkConfig {
            delay: ms(20),
            duplicate: p,
            ..LinkConfig::default()
        },
        50,
    );
    let (_, out) = run(&mut l, N, ms(1), 20);
    let s = *l.stats();
    let measured = s.duplicated as f64 / N as f64;
    assert!(
        (measured - p).abs() < 4.0 * (p * (1.0 - p) / N as f64).sqrt(),
        "{measured}"
    );
    assert_eq!(s.delivered, N + s.duplicated);
    let copies: Vec<&Delivered> = out.iter().filter(|d| d.duplicate).collect();
    assert_eq!(copies.len() as u64, s.duplicated);
    // Each copy follows its original, with the same contents.
    for w in out.windows(2) {
        if w[1].duplicate {
            assert_eq!(
                (w[0].seq, &w[0].packet, w[0].duplicate),
                (w[1].seq, &w[1].packet, false)
            );
        }
    }
    assert_eq!(s.reordered, 0);
}

#[test]
fn in_flight_and_queue_are_bounded() {
    let t0 = Instant::now();
    let mut l = link(
        LinkConfig {
            delay: ms(100),
            duplicate: 0.5,
            max_in_flight: 100,
            ..LinkConfig::default()
        },
        60,
    );
    for _ in 0..10_000 {
        l.send(t0, vec![0; 1200]);
    }
    assert_eq!(l.in_flight(), 100);
    assert_balanced(l.stats(), l.in_flight());
    assert_eq!(
        l.stats().dropped_overflow,
        10_000 + l.stats().duplicated - 100
    );

    let mut l = link(
        LinkConfig {
            rate: Some(RateLimit {
                bits_per_second: 8_000,
                queue_bytes: 1_000,
            }),
            ..LinkConfig::default()
        },
        61,
    );
    for _ in 0..10_000 {
        l.send(t0, vec![0; 100]);
    }
    assert_eq!(l.in_flight(), 10);
    assert_eq!(l.stats().dropped_queue, 9_990);
    // Empty packets take no serialization time, so only the in-flight
    // bound holds them.
    let mut l = link(
        LinkConfig {
            delay: ms(10),
            rate: Some(RateLimit {
                bits_per_second: 8_000,
                queue_bytes: 50,
            }),
            ..LinkConfig::default()
        },
        62,
    );
    for _ in 0..20_000 {
        l.send(t0, vec![]);
    }
    assert_eq!(l.in_flight(), DEFAULT_MAX_IN_FLIGHT);
    assert_eq!(
        l.stats().dropped_overflow,
        20_000 - DEFAULT_MAX_IN_FLIGHT as u64
    );
}

#[test]
fn counters_balance_at_every_step() {
    let mut l = link(everything(), 70);
    let mut clock = VirtualClock::new();
    for i in 0..20_000u64 {
        l.send(clock.now(), vec![0; 100 + (i % 200) as usize]);
        clock.advance(Duration::from_micros(3_000 + (i * 7919) % 4_000));
        while l.poll_deliver(clock.now()).is_some() {}
        assert_balanced(l.stats(), l.in_flight());
        assert!(l.in_flight() <= l.config().max_in_flight);
    }
}
