//! Both directions of an emulated path between endpoints `a` and `b`, each a
//! [`Link`] with its own seed derived from one.

use std::time::Instant;

use crate::config::{ConfigError, LinkConfig};
use crate::link::{Link, Payload};
use crate::rng::derive_seed;

/// Which way a packet travels on a [`Path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From endpoint `a` to endpoint `b`.
    AToB,
    /// From endpoint `b` to endpoint `a`.
    BToA,
}

/// Two independent links, one per direction. The `a_to_b` link is seeded
/// with `derive_seed(seed, 0)` and `b_to_a` with `derive_seed(seed, 1)`, so
/// the two directions are uncorrelated but both follow from one `u64`.
#[derive(Debug, Clone)]
pub struct Path<T = Vec<u8>> {
    /// Carries what `a` sends to `b`.
    pub a_to_b: Link<T>,
    /// Carries what `b` sends to `a`.
    pub b_to_a: Link<T>,
}

impl<T: Payload> Path<T> {
    /// A path with different conditions each way (an ADSL line, say).
    pub fn new(a_to_b: LinkConfig, b_to_a: LinkConfig, seed: u64) -> Result<Self, ConfigError> {
        Ok(Self {
            a_to_b: Link::new(a_to_b, derive_seed(seed, 0))?,
            b_to_a: Link::new(b_to_a, derive_seed(seed, 1))?,
        })
    }

    /// A path with the same conditions (but independent randomness) each way.
    pub fn symmetric(config: LinkConfig, seed: u64) -> Result<Self, ConfigError> {
        Self::new(config.clone(), config, seed)
    }

    /// The link carrying packets in `direction`.
    pub fn link(&mut self, direction: Direction) -> &mut Link<T> {
        match direction {
            Direction::AToB => &mut self.a_to_b,
            Direction::BToA => &mut self.b_to_a,
        }
    }

    /// The earlier of the two links' next deliveries.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.a_to_b.poll_timeout(), self.b_to_a.poll_timeout()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn directions_are_independent_and_reproducible() {
        let config = LinkConfig {
            loss: 0.5,
            ..LinkConfig::default()
        };
        let t0 = Instant::now();
        let pattern = |path: &mut Path, d: Direction| -> Vec<u64> {
            let link = path.link(d);
            for _ in 0..64 {
                link.send(t0, vec![]);
            }
            std::iter::from_fn(|| link.poll_deliver(t0).map(|p| p.seq)).collect()
        };
        let mut p1 = Path::symmetric(config.clone(), 42).unwrap();
        let mut p2 = Path::symmetric(config, 42).unwrap();
        let ab = pattern(&mut p1, Direction::AToB);
        let ba = pattern(&mut p1, Direction::BToA);
        assert_ne!(ab, ba);
        assert_eq!(ab, pattern(&mut p2, Direction::AToB));
        assert_eq!(ba, pattern(&mut p2, Direction::BToA));
    }

    #[test]
    fn poll_timeout_is_the_earlier_direction() {
        let t0 = Instant::now();
        let mut path = Path::new(
            LinkConfig::with_delay(Duration::from_millis(10)),
            LinkConfig::with_delay(Duration::from_millis(5)),
            0,
        )
        .unwrap();
        assert_eq!(path.poll_timeout(), None);
        path.a_to_b.send(t0, vec![]);
        assert_eq!(path.poll_timeout(), Some(t0 + Duration::from_millis(10)));
        path.b_to_a.send(t0, vec![]);
        assert_eq!(path.poll_timeout(), Some(t0 + Duration::from_millis(5)));
    }
}
