//! Shards: splitting a population into `M` contiguous parts so generation can run on `M` machines
//! and the parts, concatenated in order, equal the whole.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// Part `index` (1-based) of `count` parts of a population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

/// Why a shard specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not of the form `K/M`.
    #[error("expected K/M with whole numbers, e.g. 3/16")]
    Syntax,
    /// `M` is zero.
    #[error("the shard count M must be at least 1")]
    ZeroCount,
    /// `K` is outside `1..=M`.
    #[error("shard {index} does not exist: K must be between 1 and {count}")]
    OutOfRange {
        /// The requested shard.
        index: u64,
        /// The shard count.
        count: u64,
    },
}

impl Shard {
    /// The whole population as one shard.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Shard `index` of `count` (1-based).
    pub fn new(index: u64, count: u64) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::ZeroCount);
        }
        if index == 0 || index > count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }

    /// The patient indexes of this shard in a population of `patients`.
    pub fn range(&self, patients: u64) -> Range<u64> {
        let bound = |k: u64| (u128::from(patients) * u128::from(k) / u128::from(self.count)) as u64;
        bound(self.index - 1)..bound(self.index)
    }

    /// The first shard also writes the resources shared by every patient.
    pub fn writes_shared(&self) -> bool {
        self.index == 1
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (k, m) = s.split_once('/').ok_or(ShardError::Syntax)?;
        let k = k.trim().parse().map_err(|_| ShardError::Syntax)?;
        let m = m.trim().parse().map_err(|_| ShardError::Syntax)?;
        Self::new(k, m)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("3/16".parse::<Shard>(), Shard::new(3, 16));
        assert_eq!(
            "0/3".parse::<Shard>(),
            Err(ShardError::OutOfRange { index: 0, count: 3 })
        );
        assert_eq!(
            "4/3".parse::<Shard>(),
            Err(ShardError::OutOfRange { index: 4, count: 3 })
        );
        assert_eq!("1/0".parse::<Shard>(), Err(ShardError::ZeroCount));
        assert_eq!("x".parse::<Shard>(), Err(ShardError::Syntax));
        assert_eq!("-1/3".parse::<Shard>(), Err(ShardError::Syntax));
    }

    proptest! {
        #[test]
        fn shards_tile_the_population(patients in 0u64..10_000, count in 1u64..50) {
            let mut next = 0;
            for k in 1..=count {
                let r = Shard::new(k, count).map(|s| s.range(patients));
                prop_assert!(r.is_ok());
                let r = r.unwrap_or(0..0);
                prop_assert_eq!(r.start, next);
                next = r.end;
            }
            prop_assert_eq!(next, patients);
        }
    }
}
