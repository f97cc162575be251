//! [`Rng`], the one seeded generator of the test kit (SplitMix64): every crash
//! image, workload and kill moment must replay from its printed seed, and nothing
//! more than that is asked of it.

/// A deterministic pseudo-random generator seeded with a `u64` (SplitMix64):
/// fast, statistically fine for test-case generation, and seedable.
///
/// ```
/// use flashlog_testkit::Rng;
///
/// let (mut a, mut b) = (Rng::new(7), Rng::new(7));
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// assert!((5..=60).contains(&a.range(5, 60)));
/// ```
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    ///
    /// # Panics
    /// If `bound` is 0: no number lies in `0..0`, and a harness that asks for one
    /// has an empty choice it did not mean to make. (The two generators this one
    /// replaced disagreed here: one returned 0, a number outside the range, the
    /// other panicked with a bare division by zero; no caller relied on either.)
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "Rng::below(0): the range 0..0 is empty");
        self.next_u64() % bound
    }

    /// A number in `lo..=hi`.
    ///
    /// # Panics
    /// If `hi < lo` (an empty range, as for [`Rng::below`]).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "Rng::range({lo}, {hi}): the range is empty");
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// `true` with probability one half.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert!(Rng::new(1).below(10) < 10);
    }

    #[test]
    fn range_covers_both_ends_and_nothing_else() {
        let mut rng = Rng::new(3);
        let seen: std::collections::BTreeSet<u64> = (0..200).map(|_| rng.range(5, 8)).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [5, 6, 7, 8]);
        assert_eq!(rng.range(9, 9), 9);
        let _ = rng.range(0, u64::MAX); // the full range has no overflow
    }

    #[test]
    #[should_panic(expected = "Rng::below(0)")]
    fn below_zero_is_a_caller_bug() {
        Rng::new(1).below(0);
    }
}
