//! Randomness for backoff jitter: a small xorshift generator, replaceable in tests.
//!
//! Jitter only has to spread the retries of many clients apart; it needs no
//! cryptographic quality, so this is a 64-bit xorshift* generator (Vigna 2016)
//! rather than a new dependency. Each [`FastRng::new`] is seeded from
//! [`RandomState`], which the standard library seeds from the OS once per
//! thread and varies per instance.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// A source of uniformly distributed 64-bit values, for backoff jitter.
///
/// Implement it to make the delays of [`Call`](super::Call) predictable in a
/// test (a constant, or a recorded sequence).
pub trait Rng: Send {
    /// The next value; every bit uniformly distributed.
    fn next_u64(&mut self) -> u64;
}

/// A fast, non-cryptographic generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct FastRng {
    state: u64,
}

impl FastRng {
    /// A generator seeded from [`RandomState`] (different for each one).
    pub fn new() -> Self {
        FastRng::seeded(RandomState::new().hash_one(0x5eed_u64))
    }

    /// A generator that yields the same sequence for the same `seed` (for tests).
    /// A zero seed, which xorshift cannot leave, is replaced by a fixed constant.
    pub fn seeded(seed: u64) -> Self {
        FastRng {
            state: if seed == 0 {
                0x9e37_79b9_7f4a_7c15
            } else {
                seed
            },
        }
    }
}

impl Default for FastRng {
    fn default() -> Self {
        FastRng::new()
    }
}

impl Rng for FastRng {
    // Inlined into other crates too: `steadfast-examples`' generated blob
    // content draws from it for every 8 bytes.
    #[inline]
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A uniformly distributed value in `[0, 1)` drawn from `rng`.
pub(crate) fn unit_interval(rng: &mut (impl Rng + ?Sized)) -> f64 {
    // The top 53 bits, the precision of an f64 mantissa.
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    (rng.next_u64() >> 11) as f64 * SCALE
}
