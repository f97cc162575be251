//! Entries derived from an id, so that a checker can tell an entry it issued from
//! a phantom: the key is the id (`u64` little-endian) and the value is a pure
//! function of the id.

use crate::Rng;

/// The longest value [`value_for`] derives (ids give lengths `0..MAX_VALUE_LEN`).
pub const MAX_VALUE_LEN: u64 = 300;

/// The key of the entry with this id: the id as 8 little-endian bytes.
pub fn key_for(id: u64) -> [u8; 8] {
    id.to_le_bytes()
}

/// The value of the entry with this id: `id % 300` bytes seeded by the id.
///
/// ```
/// use flashlog_testkit::payload::{id_of, key_for, value_for};
///
/// assert_eq!(value_for(301).len(), 1);
/// assert_eq!(value_for(42), value_for(42));
/// assert_eq!(id_of(&key_for(42), &value_for(42)), Some(42));
/// assert_eq!(id_of(&key_for(42), &value_for(43)), None);
/// ```
pub fn value_for(id: u64) -> Vec<u8> {
    let mut value = vec![0u8; (id % MAX_VALUE_LEN) as usize];
    Rng::new(id ^ 0xF1A5_410C).fill(&mut value);
    value
}

/// The id an entry was derived from, or `None` if its key or value is not one that
/// [`key_for`] and [`value_for`] give for the same id (a phantom or a damaged entry).
pub fn id_of(key: &[u8], value: &[u8]) -> Option<u64> {
    let id = u64::from_le_bytes(key.try_into().ok()?);
    (value_for(id) == value).then_some(id)
}
