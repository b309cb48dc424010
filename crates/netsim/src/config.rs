//! What a [`crate::Link`] does to packets: delay, jitter, loss (random and
//! Gilbert–Elliott bursts), reordering, duplication and a rate cap with a
//! tail-drop queue.

use std::fmt;
use std::time::Duration;

/// Default bound on packets held by one link (queued plus propagating).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

/// How one direction of a path treats packets. Start from
/// [`LinkConfig::default`] (a perfect wire: no delay, no loss, no cap) and set
/// the fields you need; [`crate::Link::new`] checks the values.
///
/// A packet given to [`crate::Link::send`] goes through these stages in order:
/// 1. **duplication** ([`duplicate`](Self::duplicate)): the packet may become
///    two copies, each going through the stages below on its own (as with
///    Linux netem, a copy uses the bandwidth and can be lost);
/// 2. **in-flight bound** ([`max_in_flight`](Self::max_in_flight)): if the
///    link already holds that many packets, the copy is dropped;
/// 3. **rate cap** ([`rate`](Self::rate)): the copy waits in a byte-bounded
///    FIFO for the serializer and is tail-dropped if the queue is full;
/// 4. **loss** ([`loss`](Self::loss), [`burst_loss`](Self::burst_loss)): the
///    copy is lost on the wire, after it used its serialization time;
/// 5. **delay**: it arrives `delay + jitter` after its last bit left, plus
///    [`reorder`](Self::reorder)'s extra delay if it was picked for that.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way propagation delay.
    pub delay: Duration,
    /// Variation added to `delay` per packet. The total one-way delay never
    /// goes below zero (a negative sample is clamped, which raises the mean if
    /// the jitter can exceed `delay`).
    pub jitter: Jitter,
    /// If `true` (the default, like most real links), jitter never reorders:
    /// a packet is delivered no earlier than the packet sent before it, so a
    /// late packet holds back the ones behind it. If `false`, each packet's
    /// jitter is independent and packets may overtake each other.
    pub keep_order: bool,
    /// Probability in `[0, 1]` that a packet is lost, independently of others.
    pub loss: f64,
    /// Bursty loss, applied in addition to `loss`.
    pub burst_loss: Option<GilbertElliott>,
    /// Occasional reordering: some packets are held back so later ones
    /// overtake them.
    pub reorder: Option<Reorder>,
    /// Probability in `[0, 1]` that a packet is sent twice.
    pub duplicate: f64,
    /// Bandwidth cap with a bounded queue; `None` means unlimited.
    pub rate: Option<RateLimit>,
    /// The most packets the link holds at once (waiting for the serializer or
    /// propagating); more are dropped and counted in
    /// [`LinkStats::dropped_overflow`](crate::LinkStats::dropped_overflow).
    /// Must be at least 1.
    pub max_in_flight: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            jitter: Jitter::None,
            keep_order: true,
            loss: 0.0,
            burst_loss: None,
            reorder: None,
            duplicate: 0.0,
            rate: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

impl LinkConfig {
    /// A link with only a fixed delay.
    pub fn with_delay(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// Checks every probability is in `[0, 1]` and every bound is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        probability("loss", self.loss)?;
        probability("duplicate", self.duplicate)?;
        if let Some(ge) = &self.burst_loss {
            probability("burst_loss.p", ge.p)?;
            probability("burst_loss.r", ge.r)?;
            probability("burst_loss.loss_good", ge.loss_good)?;
            probability("burst_loss.loss_bad", ge.loss_bad)?;
        }
        if let Some(reorder) = &self.reorder {
            probability("reorder.probability", reorder.probability)?;
        }
        if let Some(rate) = &self.rate {
            if rate.bits_per_second == 0 {
                return Err(ConfigError::ZeroRate);
            }
            if rate.queue_bytes == 0 {
                return Err(ConfigError::ZeroBound("rate.queue_bytes"));
            }
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::ZeroBound("max_in_flight"));
        }
        Ok(())
    }
}

/// The distribution of the per-packet delay variation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// No variation.
    #[default]
    None,
    /// Uniform in `[-j, +j]` (nanosecond resolution).
    Uniform(Duration),
    /// Approximately normal with this standard deviation: the Irwin–Hall sum
    /// of twelve uniforms, so it is bounded to `±6σ` and reproducible
    /// bit-for-bit across platforms (see [`crate::Rng::normalish`]).
    Normal(Duration),
}

impl Jitter {
    /// The largest deviation from `delay` this distribution can produce.
    pub fn bound(&self) -> Duration {
        match *self {
            Jitter::None => Duration::ZERO,
            Jitter::Uniform(j) => j,
            Jitter::Normal(sigma) => sigma * 6,
        }
    }
}

/// The Gilbert–Elliott two-state bursty loss model.
///
/// The channel is in a *good* or a *bad* state and starts good. For each
/// packet reaching the wire, the packet is first lost with the current
/// state's loss probability, then the state moves: good→bad with probability
/// `p`, bad→good with probability `r`. So a stay in the bad state lasts
/// `1/r` packets on average, the long-run share of packets in the bad state is
/// `p / (p + r)`, and the average loss is
/// `(r·loss_good + p·loss_bad) / (p + r)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving from good to bad after a packet.
    pub p: f64,
    /// Probability of moving from bad to good after a packet.
    pub r: f64,
    /// Loss probability in the good state (0 in Gilbert's original model).
    pub loss_good: f64,
    /// Loss probability in the bad state (1 in Gilbert's original model).
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// The simple Gilbert model (nothing lost when good, everything lost when
    /// bad) with long-run loss `average_loss` and bursts of `mean_burst`
    /// consecutive lost packets on average: `r = 1/mean_burst`,
    /// `p = average_loss·r / (1 - average_loss)`.
    ///
    /// `average_loss` must be in `[0, 1)` and `mean_burst` at least 1. A
    /// combination that needs `p > 1` (for example 60 % loss in bursts of 1)
    /// cannot be expressed and is an error.
    pub fn from_loss_and_burst(average_loss: f64, mean_burst: f64) -> Result<Self, ConfigError> {
        if !(0.0..1.0).contains(&average_loss) {
            return Err(ConfigError::Probability {
                field: "average_loss",
                value: average_loss,
            });
        }
        if !(mean_burst >= 1.0 && mean_burst.is_finite()) {
            return Err(ConfigError::MeanBurst(mean_burst));
        }
        let r = 1.0 / mean_burst;
        let p = average_loss * r / (1.0 - average_loss);
        if p > 1.0 {
            return Err(ConfigError::Unreachable {
                average_loss,
                mean_burst,
            });
        }
        Ok(Self {
            p,
            r,
            loss_good: 0.0,
            loss_bad: 1.0,
        })
    }

    /// The long-run fraction of packets lost.
    pub fn average_loss(&self) -> f64 {
        if self.p + self.r == 0.0 {
            return self.loss_good;
        }
        (self.r * self.loss_good + self.p * self.loss_bad) / (self.p + self.r)
    }
}

/// Occasional reordering: each packet is, with `probability`, held back by
/// `extra_delay` on top of its normal delay, and the link's in-order rule
/// ([`LinkConfig::keep_order`]) does not apply to it, so packets sent less
/// than `extra_delay` after it overtake it. (The inverse of netem's `reorder`,
/// which sends the chosen packets early; the effect on the receiver is the
/// same: one packet arrives after its successors.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reorder {
    /// Probability in `[0, 1]` that a packet is held back.
    pub probability: f64,
    /// How long a held-back packet is delayed beyond the others.
    pub extra_delay: Duration,
}

/// A bandwidth cap: packets are serialized one after another at
/// `bits_per_second` (a packet of `n` bytes takes `n·8/bits_per_second`
/// seconds), and wait in a FIFO of at most `queue_bytes` bytes, counting the
/// packet being serialized. A packet that would overflow the queue is dropped
/// (tail drop, like a modem or a router's interface queue). A zero-length
/// packet counts as one byte, so the queue also holds at most `queue_bytes`
/// packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Link speed, above zero.
    pub bits_per_second: u64,
    /// Queue capacity in bytes, above zero.
    pub queue_bytes: usize,
}

/// A configuration value that cannot be used: misuse by the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// A probability outside `[0, 1]` (or NaN).
    Probability {
        /// The configuration field.
        field: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// A mean burst length below 1 packet (or not finite).
    MeanBurst(f64),
    /// An average loss and burst length that no Gilbert model reaches.
    Unreachable {
        /// The requested long-run loss.
        average_loss: f64,
        /// The requested mean burst length.
        mean_burst: f64,
    },
    /// A rate cap of zero bits per second.
    ZeroRate,
    /// A bound of zero, which would drop everything.
    ZeroBound(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Probability { field, value } => {
                write!(
                    f,
                    "{field} is {value}, but a probability must be between 0 and 1"
                )
            }
            ConfigError::MeanBurst(n) => {
                write!(
                    f,
                    "mean burst length is {n}, but it must be at least 1 packet"
                )
            }
            ConfigError::Unreachable {
                average_loss,
                mean_burst,
            } => write!(
                f,
                "no Gilbert model loses {average_loss} of packets in bursts of {mean_burst}; \
                 raise the burst length or lower the loss"
            ),
            ConfigError::ZeroRate => write!(f, "rate cap is 0 bit/s; use `rate: None` for no cap"),
            ConfigError::ZeroBound(field) => {
                write!(f, "{field} is 0, which would drop every packet")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

fn probability(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::Probability { field, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gilbert_from_loss_and_burst() {
        let ge = GilbertElliott::from_loss_and_burst(0.05, 4.0).unwrap();
        assert!((ge.r - 0.25).abs() < 1e-12);
        assert!((ge.average_loss() - 0.05).abs() < 1e-12);
        assert!(GilbertElliott::from_loss_and_burst(0.6, 1.0).is_err());
        assert!(GilbertElliott::from_loss_and_burst(1.0, 3.0).is_err());
        assert!(GilbertElliott::from_loss_and_burst(0.1, 0.5).is_err());
        assert!(GilbertElliott::from_loss_and_burst(0.1, f64::NAN).is_err());
        assert_eq!(
            GilbertElliott::from_loss_and_burst(0.0, 1.0).unwrap().p,
            0.0
        );
    }

    #[test]
    fn validate_rejects_bad_values() {
        let ok = LinkConfig::default();
        assert!(ok.validate().is_ok());
        let bad = LinkConfig {
            loss: 1.5,
            ..LinkConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::Probability { field: "loss", .. })
        ));
        let nan = LinkConfig {
            duplicate: f64::NAN,
            ..LinkConfig::default()
        };
        assert!(nan.validate().is_err());
        let zero_rate = LinkConfig {
            rate: Some(RateLimit {
                bits_per_second: 0,
                queue_bytes: 10,
            }),
            ..LinkConfig::default()
        };
        assert_eq!(zero_rate.validate(), Err(ConfigError::ZeroRate));
        let zero_flight = LinkConfig {
            max_in_flight: 0,
            ..LinkConfig::default()
        };
        assert!(zero_flight.validate().is_err());
        assert!(!zero_flight.validate().unwrap_err().to_string().is_empty());
    }
}
