//! A seeded network emulator on a virtual clock: delay, jitter, random and
//! bursty (Gilbert–Elliott) loss, reordering, duplication and a rate cap with
//! a tail-drop queue.
//!
//! The kernels ipphone runs on may lack `netem`, so this crate is how its
//! scenario tests and its UDP relay get a bad network. It is sans-IO like the
//! rest of ipphone: a [`Link`] takes packets and the time through
//! [`Link::send`], says when it next has something through
//! [`Link::poll_timeout`], and hands packets out through
//! [`Link::poll_deliver`]. It never reads a clock, opens a socket or starts a
//! thread, and every random choice comes from a [`Rng`] seeded with a `u64`,
//! so a scenario replays exactly on every platform.
//!
//! - [`LinkConfig`] describes one direction; [`Link`] emulates it.
//! - [`Path`] holds both directions, seeded independently from one seed.
//! - [`VirtualClock`] and [`Driver`] run two [`Endpoint`]s against each other
//!   over a path, jumping the clock from event to event.
//!
//! ```
//! use std::time::Duration;
//! use ipphone_netsim::{GilbertElliott, Jitter, Link, LinkConfig, VirtualClock};
//!
//! let config = LinkConfig {
//!     delay: Duration::from_millis(40),
//!     jitter: Jitter::Uniform(Duration::from_millis(10)),
//!     burst_loss: Some(GilbertElliott::from_loss_and_burst(0.03, 3.0).unwrap()),
//!     ..LinkConfig::default()
//! };
//! let mut clock = VirtualClock::new();
//! let mut link = Link::new(config, 42).unwrap();
//! for i in 0..100u8 {
//!     link.send(clock.now(), vec![i; 160]);
//!     clock.advance(Duration::from_millis(20));
//! }
//! let mut received = 0;
//! while let Some(at) = link.poll_timeout() {
//!     clock.advance_to(at);
//!     while link.poll_deliver(clock.now()).is_some() {
//!         received += 1;
//!     }
//! }
//! assert_eq!(received + link.stats().lost, 100);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod config;
mod drive;
mod link;
mod path;
mod rng;

pub use clock::VirtualClock;
pub use config::{
    ConfigError, DEFAULT_MAX_IN_FLIGHT, GilbertElliott, Jitter, LinkConfig, RateLimit, Reorder,
};
pub use drive::{Driver, Endpoint, Limits, Report, Stop};
pub use link::{Delivered, Link, LinkStats, Payload};
pub use path::{Direction, Path};
pub use rng::{Rng, derive_seed};
