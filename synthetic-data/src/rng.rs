//! Seeded, portable randomness: one ChaCha20 stream per patient.
//!
//! Patient `i` of seed `s` draws from `ChaCha20(key = s, stream = i)`, so it depends only on
//! `(s, i)` and never on thread count, shard or the order in which patients are generated.
//! Sampling helpers use integer arithmetic and sums of uniforms only (no `ln`, `cos`, …): those
//! libm functions may round differently on other platforms, which would break byte-identical output.

use rand::rngs::ChaCha20Rng;
use rand::{Rng, SeedableRng};

/// The stream reserved for resources shared by all patients (organizations, practitioners).
const SHARED_STREAM: u64 = u64::MAX;

/// Fills the key beyond the seed, so seed 0 is not an all-zero key; changing it changes all data.
const DOMAIN: &[u8; 24] = b"fhirdrill synthetic v1\0\0";

/// A deterministic random source with the sampling helpers the generator needs.
#[derive(Debug)]
pub struct Dice {
    rng: ChaCha20Rng,
}

impl Dice {
    /// The stream of patient `index` under `seed`.
    pub fn for_patient(seed: u64, index: u64) -> Self {
        Self::for_stream(seed, index)
    }

    /// The stream of the shared resources under `seed`.
    pub fn for_shared(seed: u64) -> Self {
        Self::for_stream(seed, SHARED_STREAM)
    }

    fn for_stream(seed: u64, stream: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..].copy_from_slice(DOMAIN);
        let mut rng = ChaCha20Rng::from_seed(key);
        rng.set_stream(stream);
        Self { rng }
    }

    /// A uniformly random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below 2^-64 * n).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "below(0) has no values");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform integer in `lo..=hi`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        let span = (hi - lo) as u64 + 1;
        lo + self.below(span) as i64
    }

    /// A uniform float in `[0, 1)` with 53 bits of precision.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A uniform float in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// An approximately normal value (sum of four uniforms, Irwin–Hall), cut at ±3.4 sd.
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let sum: f64 = (0..4).map(|_| self.unit()).sum();
        // Irwin–Hall(4) has mean 2 and variance 4/12.
        let z = (sum - 2.0) / (4.0f64 / 12.0).sqrt();
        mean + sd * z
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index chosen with the given relative weights (at least one must be positive).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut roll = self.below(total.max(1));
        for (i, w) in weights.iter().enumerate() {
            let w = u64::from(*w);
            if roll < w {
                return i;
            }
            roll -= w;
        }
        weights.len() - 1
    }

    /// Sixteen random bytes shaped as a version-4 UUID string (the FHIR ids of synthetic data).
    pub fn uuid(&mut self) -> String {
        let hi = self.next_u64().to_be_bytes();
        let lo = self.next_u64().to_be_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi);
        bytes[8..].copy_from_slice(&lo);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string()
    }

    /// The underlying generator, for `fake`'s `fake_with_rng`.
    pub fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }
}

/// Rounds to `places` decimals (0 to 3), for values printed in FHIR quantities.
pub fn round_to(value: f64, places: u32) -> f64 {
    let scale = 10f64.powi(places as i32);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_index_give_same_stream() {
        let mut a = Dice::for_patient(42, 7);
        let mut b = Dice::for_patient(42, 7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn different_indexes_and_seeds_give_different_streams() {
        let first = |seed, index| Dice::for_patient(seed, index).next_u64();
        assert_ne!(first(42, 7), first(42, 8));
        assert_ne!(first(42, 7), first(43, 7));
        assert_ne!(first(0, 0), Dice::for_shared(0).next_u64());
    }

    #[test]
    fn sampling_helpers_stay_in_range() {
        let mut dice = Dice::for_patient(1, 1);
        for _ in 0..10_000 {
            assert!(dice.below(7) < 7);
            let v = dice.between(-3, 3);
            assert!((-3..=3).contains(&v));
            let u = dice.unit();
            assert!((0.0..1.0).contains(&u));
            let n = dice.normal(10.0, 1.0);
            assert!((6.5..13.5).contains(&n), "{n}");
            assert!(dice.weighted(&[0, 5, 0]) == 1);
        }
    }

    #[test]
    fn uuid_is_version_4_shaped() {
        let id = Dice::for_patient(1, 1).uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
