//! The in-memory key index: every live key, the sequence number of its latest put,
//! and the byte counts that say how much of the log is dead.

use std::collections::BTreeMap;
use std::ops::Bound;

use flashlog_wal::codec::encoded_len;

/// Where a key's latest value is: the sequence number of its put and the value's
/// length (to account live bytes without reading the entry).
///
/// Packed to 12 bytes: the index holds one per key, so every byte counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
pub(crate) struct Slot {
    seq: u64,
    value_len: u32,
}

impl Slot {
    pub(crate) fn new(seq: u64, value_len: usize) -> Slot {
        // Values fit in an entry of at most 16 MiB, so the length fits in a u32.
        Slot {
            seq,
            value_len: value_len as u32,
        }
    }

    pub(crate) fn seq(self) -> u64 {
        self.seq
    }

    pub(crate) fn value_len(self) -> usize {
        self.value_len as usize
    }
}

/// The key index and the store's byte accounting.
#[derive(Debug, Default)]
pub(crate) struct Index {
    map: BTreeMap<Box<[u8]>, Slot>,
    /// Bytes on disk of the latest put of every live key.
    live_bytes: u64,
    /// Bytes of every entry in the log.
    log_bytes: u64,
}

impl Index {
    /// An index of `live` keys, sorted and unique, in a log of `log_bytes`.
    pub(crate) fn from_sorted(live: Vec<(Box<[u8]>, Slot)>, log_bytes: u64) -> Index {
        let live_bytes = live
            .iter()
            .map(|(key, slot)| encoded_len(key.len(), slot.value_len()))
            .sum();
        Index {
            map: live.into_iter().collect(),
            live_bytes,
            log_bytes,
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<Slot> {
        self.map.get(key).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    pub(crate) fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Bytes of the log that no longer hold a live value.
    pub(crate) fn dead_bytes(&self) -> u64 {
        self.log_bytes.saturating_sub(self.live_bytes)
    }

    pub(crate) fn set_log_bytes(&mut self, bytes: u64) {
        self.log_bytes = bytes;
    }

    /// Records a put appended to the log.
    pub(crate) fn put(&mut self, key: &[u8], slot: Slot) {
        let len = encoded_len(key.len(), slot.value_len());
        self.log_bytes += len;
        self.live_bytes += len;
        match self.map.get_mut(key) {
            Some(old) => {
                self.live_bytes -= encoded_len(key.len(), old.value_len());
                *old = slot;
            }
            None => {
                self.map.insert(key.into(), slot);
            }
        }
    }

    /// Records a delete appended to the log (`entry_len` bytes on disk).
    pub(crate) fn delete(&mut self, key: &[u8], entry_len: u64) {
        self.log_bytes += entry_len;
        if let Some(old) = self.map.remove(key) {
            self.live_bytes -= encoded_len(key.len(), old.value_len());
        }
    }

    /// Points a key at a copy of its latest put (same value) appended by compaction,
    /// if the key still points at `old_seq`; returns whether it did.
    pub(crate) fn repoint(&mut self, key: &[u8], old_seq: u64, new: Slot) -> bool {
        match self.map.get_mut(key) {
            Some(slot) if slot.seq() == old_seq => {
                *slot = new;
                self.log_bytes += encoded_len(key.len(), new.value_len());
                true
            }
            _ => false,
        }
    }

    /// The sequence numbers of the latest puts that lie before `seq`, sorted: what
    /// a compaction of the log before `seq` must copy.
    pub(crate) fn live_before(&self, seq: u64) -> Vec<u64> {
        let mut seqs: Vec<u64> = self
            .map
            .values()
            .map(|slot| slot.seq())
            .filter(|&live| live < seq)
            .collect();
        seqs.sort_unstable();
        seqs
    }

    /// Up to `limit` keys in `(lower, upper)`, in order.
    pub(crate) fn range(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Vec<(Box<[u8]>, Slot)> {
        if is_empty_range(lower, upper) {
            return Vec::new();
        }
        self.map
            .range::<[u8], _>((lower, upper))
            .take(limit)
            .map(|(key, slot)| (key.clone(), *slot))
            .collect()
    }
}

/// Whether no key can lie between the bounds (`BTreeMap::range` panics on these).
fn is_empty_range(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    match (lower, upper) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 12);
    }

    #[test]
    fn accounting_follows_overwrites_and_deletes() {
        let mut index = Index::default();
        index.put(b"a", Slot::new(1, 10));
        assert_eq!((index.live_bytes(), index.dead_bytes()), (28, 0));
        index.put(b"a", Slot::new(2, 5));
        assert_eq!((index.live_bytes(), index.dead_bytes()), (23, 28));
        index.delete(b"a", 18);
        assert_eq!((index.live_bytes(), index.log_bytes()), (0, 28 + 23 + 18));
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn inverted_or_empty_ranges_are_empty_not_panics() {
        let mut index = Index::default();
        index.put(b"b", Slot::new(1, 0));
        let b: &[u8] = b"b";
        let a: &[u8] = b"a";
        assert!(index
            .range(Bound::Included(b), Bound::Excluded(a), 10)
            .is_empty());
        assert!(index
            .range(Bound::Excluded(b), Bound::Excluded(b), 10)
            .is_empty());
        assert_eq!(
            index
                .range(Bound::Included(b), Bound::Included(b), 10)
                .len(),
            1
        );
    }
}
