//! A small seeded generator (SplitMix64) for the arrival times and the answers: the same seed
//! plays the same exam day. Not for anything secret.

/// SplitMix64 (Steele, Lea and Flood 2014): one 64-bit state, a full period, good enough to
/// spread arrivals and pick options.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator of its own for stream `n` of this seed (student `n`'s answers).
    pub fn fork(seed: u64, n: u64) -> Self {
        let mut base = Self(seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F));
        Self(base.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0; the bias is below 2^-32 for the bounds used here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// A fraction in `[0, 1)`.
    pub fn fraction(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_streams_differ() {
        let first: Vec<u64> = (0..5).map(|_| Rng::new(7).next_u64()).collect();
        assert!(
            first.windows(2).all(|w| w[0] == w[1]),
            "same seed, same value"
        );
        let mut a = Rng::fork(7, 1);
        let mut b = Rng::fork(7, 2);
        assert_ne!(a.next_u64(), b.next_u64());
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let f = r.fraction();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(3) < 3);
        }
    }
}
