//! A small deterministic random generator (xoshiro256**, seeded through
//! SplitMix64): the same seed gives the same clinic on every machine and
//! build, which a library generator does not promise across versions.

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use uuid::Uuid;

use crate::crm::Millis;

/// A row id as stored: a UUIDv7 in its 36-character text form, formatted
/// once when the row is created and bound without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Id([u8; 36]);

impl Id {
    /// Stands for no row (never written).
    pub const NIL: Id = Id(*b"00000000-0000-0000-0000-000000000000");

    pub fn new(uuid: Uuid) -> Id {
        let mut text = [0u8; 36];
        uuid.hyphenated().encode_lower(&mut text);
        Id(text)
    }
}

impl ToSql for Id {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.0)))
    }
}

pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut splitmix = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { s: [splitmix(), splitmix(), splitmix(), splitmix()] }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform index into a slice of `len` items.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Uniform in `lo..hi`; `lo` when the range is empty.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// An index chosen with the given relative weights (not all zero).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len() - 1
    }

    /// A UUIDv7 for a row created at `ms`, its random part from this
    /// generator.
    pub fn uuid(&mut self, ms: Millis) -> Uuid {
        let a = self.next_u64().to_le_bytes();
        let b = self.next_u64().to_le_bytes();
        let bytes = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1]];
        uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &bytes).into_uuid()
    }

    /// [`Rng::uuid`] as stored.
    pub fn id(&mut self, ms: Millis) -> Id {
        Id::new(self.uuid(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn ranges_stay_inside() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            let x = r.range(-5, 5);
            assert!((-5..5).contains(&x));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(r.weighted(&[0, 3, 0, 1]) % 2 == 1);
        }
        assert_eq!(r.range(3, 3), 3);
    }

    #[test]
    fn uuids_carry_the_creation_time() {
        let mut r = Rng::new(1);
        let id = r.uuid(1_700_000_000_123);
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().map(|t| t.to_unix()).unwrap_or_default();
        assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, 1_700_000_000_123);
    }
}
