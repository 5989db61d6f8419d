//! A small seeded generator (SplitMix64) for the arrival times and the answers: the same seed
//! plays the same exam day. Not for anything secret.

/// Sets the jitter streams apart from the others of a seed (the first 64 bits of the fraction
/// of the square root of 2: a constant with nothing in it).
const JITTER_STREAMS: u64 = 0x6A09_E667_F3BC_C908;

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

    /// The stream of actor `n`'s sign-in retry jitter (0: the staff; a student: its number),
    /// apart from the main stream and every student's: however many `503 busy` answers come,
    /// the exam day's choices stay those of its seed.
    pub fn jitter(seed: u64, n: u64) -> Self {
        Self::fork(seed ^ JITTER_STREAMS, n)
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

    /// The first `n` numbers of `rng`.
    fn first(mut rng: Rng, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn a_seed_replays_its_sequence_and_streams_differ() {
        // SplitMix64's first numbers from seed 0: the generator is the one named, and a seed
        // plays the same exam day on any machine.
        assert_eq!(
            first(Rng::new(0), 3),
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F
            ]
        );
        assert_eq!(first(Rng::new(7), 100), first(Rng::new(7), 100));
        // The sequence moves on: no number comes back within it.
        let sequence = first(Rng::new(7), 100);
        let distinct: std::collections::BTreeSet<u64> = sequence.iter().copied().collect();
        assert_eq!(distinct.len(), sequence.len());
        // Streams of one seed replay, and differ from each other and from the main stream.
        assert_eq!(first(Rng::fork(7, 1), 20), first(Rng::fork(7, 1), 20));
        assert_ne!(first(Rng::fork(7, 1), 20), first(Rng::fork(7, 2), 20));
        assert_ne!(first(Rng::fork(7, 1), 20), first(Rng::new(7), 20));
        assert_eq!(first(Rng::jitter(7, 1), 20), first(Rng::jitter(7, 1), 20));
        assert_ne!(first(Rng::jitter(7, 1), 20), first(Rng::fork(7, 1), 20));
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let f = r.fraction();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(3) < 3);
        }
    }
}
