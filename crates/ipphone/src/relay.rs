//! `ipphone relay`: a UDP relay that impairs what it carries, both ways.
//!
//! The kernel here has no netem, so loss, bursts, delay, jitter, reordering,
//! duplication and a slow link's bandwidth come from ipphone's own seeded
//! network emulator, put between two real processes. Packets from whoever
//! talks to `--listen` go to `--to`; what `--to` answers goes back to the
//! last address that talked to `--listen`.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use netsim::{GilbertElliott, Jitter, Link, LinkConfig, RateLimit, Reorder, derive_seed};
use serde::Serialize;

use crate::cli::exit;
use crate::phone::Interrupt;

/// The largest datagram relayed; longer ones are cut by the socket.
const MAX_DATAGRAM: usize = 65_535;
/// How long the loop sleeps when nothing is due.
const IDLE: Duration = Duration::from_millis(1);
/// How often `--json` reports the counters.
const STATS_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Where the relay takes packets from the first party.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,

    /// Where it sends them: the second party.
    #[arg(long, value_name = "ADDR:PORT")]
    pub to: SocketAddr,

    /// Random loss, in percent of packets, each way.
    #[arg(long, value_name = "PERCENT", default_value = "0")]
    pub loss: f64,

    /// Mean length of a loss burst in packets (Gilbert-Elliott); 1 is random loss.
    #[arg(long, value_name = "N", default_value = "1")]
    pub burst: f64,

    /// Fixed one-way delay, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "0")]
    pub delay: f64,

    /// Uniform jitter of plus or minus this many milliseconds (order kept).
    #[arg(long, value_name = "MS", default_value = "0")]
    pub jitter: f64,

    /// Percent of packets held back by `--reorder-delay` so later ones overtake them.
    #[arg(long, value_name = "PERCENT", default_value = "0")]
    pub reorder: f64,

    /// Extra delay of a reordered packet, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "40")]
    pub reorder_delay: f64,

    /// Percent of packets delivered twice.
    #[arg(long, value_name = "PERCENT", default_value = "0")]
    pub duplicate: f64,

    /// Bandwidth cap each way, in kbit/s, with a bounded queue (a slow modem link).
    #[arg(long, value_name = "KBPS")]
    pub rate: Option<f64>,

    /// The cap's queue, in milliseconds of traffic at the capped rate.
    #[arg(long, value_name = "MS", default_value = "500")]
    pub queue: f64,

    /// Seed of the impairments: the same seed replays the same pattern.
    #[arg(long, value_name = "S", default_value = "1")]
    pub seed: u64,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// One JSON object per event on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Serialize, Clone, Copy)]
struct Counters {
    sent: u64,
    delivered: u64,
    lost: u64,
    dropped_queue: u64,
    duplicated: u64,
    reordered: u64,
}

#[derive(Debug, Serialize)]
struct RelayEvent<'a> {
    event: &'a str,
    listen: String,
    to: String,
    forward: Counters,
    back: Counters,
}

pub fn run(args: RelayArgs, interrupt: &Interrupt) -> anyhow::Result<u8> {
    let config = link_config(&args)?;
    let mut forward: Link = Link::new(config.clone(), derive_seed(args.seed, 0))?;
    let mut back: Link = Link::new(config, derive_seed(args.seed, 1))?;
    let outer = UdpSocket::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let inner_bind: SocketAddr = if args.to.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("a wildcard address parses");
    let inner = UdpSocket::bind(inner_bind).context("opening the relay's second socket")?;
    inner
        .connect(args.to)
        .with_context(|| format!("cannot send to {}", args.to))?;
    outer.set_nonblocking(true)?;
    inner.set_nonblocking(true)?;
    let listen = outer.local_addr()?;
    let emit = |event: &str, forward: &Link, back: &Link| {
        let e = RelayEvent {
            event,
            listen: listen.to_string(),
            to: args.to.to_string(),
            forward: counters(forward),
            back: counters(back),
        };
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&e).expect("relay events serialise")
            );
        }
    };
    eprintln!("relaying {listen} <-> {}", args.to);
    emit("relaying", &forward, &back);

    let started = Instant::now();
    let mut last_stats = Instant::now();
    let mut client: Option<SocketAddr> = None;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        if interrupt.take()
            || args
                .duration
                .is_some_and(|d| started.elapsed().as_secs_f64() >= d)
        {
            break;
        }
        let now = Instant::now();
        let mut busy = false;
        // Bounded per pass, so one flooding side cannot starve the other.
        for _ in 0..64 {
            match outer.recv_from(&mut buf) {
                Ok((n, from)) => {
                    client = Some(from);
                    forward.send(now, buf[..n].to_vec());
                    busy = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // ICMP errors from an earlier send surface here: not ours to end on.
                Err(_) => break,
            }
        }
        for _ in 0..64 {
            match inner.recv(&mut buf) {
                Ok(n) => {
                    back.send(now, buf[..n].to_vec());
                    busy = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        let now = Instant::now();
        while let Some(d) = forward.poll_deliver(now) {
            let _ = inner.send(&d.packet);
        }
        while let Some(d) = back.poll_deliver(now) {
            if let Some(to) = client {
                let _ = outer.send_to(&d.packet, to);
            }
        }
        if last_stats.elapsed() >= STATS_EVERY {
            last_stats = Instant::now();
            emit("stats", &forward, &back);
        }
        if !busy {
            let next = [forward.poll_timeout(), back.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let wait = next.map_or(IDLE, |t| {
                t.saturating_duration_since(Instant::now()).min(IDLE)
            });
            std::thread::sleep(wait);
        }
    }
    emit("stopped", &forward, &back);
    let (f, b) = (counters(&forward), counters(&back));
    eprintln!(
        "relayed {} of {} packets forward, {} of {} back",
        f.delivered, f.sent, b.delivered, b.sent
    );
    Ok(exit::OK)
}

fn link_config(args: &RelayArgs) -> anyhow::Result<LinkConfig> {
    let percent = |name: &str, p: f64| {
        anyhow::ensure!(
            (0.0..=100.0).contains(&p),
            "--{name} is a percentage, 0 to 100"
        );
        Ok(p / 100.0)
    };
    let ms = |name: &str, v: f64| {
        anyhow::ensure!(
            v.is_finite() && v >= 0.0,
            "--{name} is a number of milliseconds, 0 or more"
        );
        Ok(Duration::from_secs_f64(v / 1000.0))
    };
    let loss = percent("loss", args.loss)?;
    let mut config = LinkConfig::with_delay(ms("delay", args.delay)?);
    if args.jitter > 0.0 {
        config.jitter = Jitter::Uniform(ms("jitter", args.jitter)?);
    }
    anyhow::ensure!(
        args.burst >= 1.0,
        "--burst is a mean burst length in packets, 1 or more"
    );
    if args.burst > 1.0 && loss > 0.0 {
        config.burst_loss = Some(GilbertElliott::from_loss_and_burst(loss, args.burst)?);
    } else {
        config.loss = loss;
    }
    let reorder = percent("reorder", args.reorder)?;
    if reorder > 0.0 {
        config.reorder = Some(Reorder {
            probability: reorder,
            extra_delay: ms("reorder-delay", args.reorder_delay)?,
        });
    }
    config.duplicate = percent("duplicate", args.duplicate)?;
    if let Some(kbps) = args.rate {
        anyhow::ensure!(kbps > 0.0, "--rate is in kbit/s, more than 0");
        let bits_per_second = (kbps * 1000.0) as u64;
        let queue_bytes =
            ((bits_per_second as f64 / 8.0) * ms("queue", args.queue)?.as_secs_f64()) as usize;
        config.rate = Some(RateLimit {
            bits_per_second,
            queue_bytes: queue_bytes.max(1_500),
        });
    }
    config.validate()?;
    Ok(config)
}

fn counters(link: &Link) -> Counters {
    let s = link.stats();
    Counters {
        sent: s.sent,
        delivered: s.delivered,
        lost: s.lost,
        dropped_queue: s.dropped_queue + s.dropped_overflow,
        duplicated: s.duplicated,
        reordered: s.reordered,
    }
}
