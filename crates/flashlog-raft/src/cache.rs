//! The entries kept in memory, serialized, by Raft index: every entry not yet
//! durable (openraft reads an append's entries as soon as it returns, before the log
//! has written them) and the most recent durable ones, so that replication and the
//! state machine, which read what was just appended, do not read the disk.

use std::collections::BTreeMap;

/// Durable entries kept at most (entries not yet durable are always kept).
pub(crate) const MAX_ENTRIES: usize = 8192;
/// Bytes of durable entries kept at most.
pub(crate) const MAX_BYTES: usize = 8 << 20;

/// Serialized entries by Raft index, each with the number of the append that wrote it.
#[derive(Default)]
pub(crate) struct Cache {
    entries: BTreeMap<u64, (u64, Vec<u8>)>,
    bytes: usize,
    /// Every append numbered up to this one is durable.
    durable_generation: u64,
}

impl Cache {
    /// Keeps `bytes`, the entry at `index` written by append number `generation`.
    pub(crate) fn insert(&mut self, index: u64, generation: u64, bytes: Vec<u8>) {
        self.bytes += bytes.len();
        if let Some((_, old)) = self.entries.insert(index, (generation, bytes)) {
            self.bytes -= old.len();
        }
    }

    /// The serialized entry at `index`, if kept.
    pub(crate) fn get(&self, index: u64) -> Option<&[u8]> {
        self.entries.get(&index).map(|(_, bytes)| bytes.as_slice())
    }

    /// Append number `generation` is durable, and so every earlier one (the log
    /// makes its entries durable in order): their entries may go once over budget.
    pub(crate) fn durable(&mut self, generation: u64) {
        self.durable_generation = self.durable_generation.max(generation);
        self.evict();
    }

    /// Drops the entries of append number `generation` (its submit failed).
    pub(crate) fn forget(&mut self, generation: u64) {
        self.entries.retain(|_, (g, _)| *g != generation);
        self.recount();
    }

    /// Drops the entries at `index` and after (a truncation).
    pub(crate) fn remove_from(&mut self, index: u64) {
        self.entries.split_off(&index);
        self.recount();
    }

    /// Drops the entries up to and including `index` (a purge).
    pub(crate) fn remove_through(&mut self, index: u64) {
        self.entries = self.entries.split_off(&index.saturating_add(1));
        self.recount();
    }

    fn recount(&mut self) {
        self.bytes = self.entries.values().map(|(_, b)| b.len()).sum();
    }

    /// Drops the oldest durable entries while over either budget; never one that
    /// is not durable yet.
    fn evict(&mut self) {
        while self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            let Some(entry) = self.entries.first_entry() else {
                return;
            };
            if entry.get().0 > self.durable_generation {
                return;
            }
            let (_, bytes) = entry.remove();
            self.bytes -= bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_is_not_durable_and_the_newest_durable_within_budget() {
        let mut cache = Cache::default();
        for i in 0..(MAX_ENTRIES as u64 + 100) {
            cache.insert(i, i + 1, vec![0; 10]);
        }
        // Nothing durable: everything stays.
        cache.durable(0);
        assert!(cache.get(0).is_some());
        // Appends up to number 50 durable: the oldest 50 may go, no more.
        cache.durable(50);
        assert!(cache.get(49).is_none() && cache.get(50).is_some());
        // All durable: down to the budget, newest kept.
        cache.durable(u64::MAX);
        assert_eq!(cache.entries.len(), MAX_ENTRIES);
        assert!(cache.get(MAX_ENTRIES as u64 + 99).is_some() && cache.get(99).is_none());
        assert_eq!(cache.bytes, MAX_ENTRIES * 10);
    }

    #[test]
    fn byte_budget_and_removals() {
        let mut cache = Cache::default();
        for i in 0..20u64 {
            cache.insert(i, i + 1, vec![0; MAX_BYTES / 10]);
        }
        cache.durable(u64::MAX);
        assert_eq!(cache.entries.len(), 10);
        cache.remove_from(15);
        cache.remove_through(11);
        assert_eq!(
            cache.entries.keys().copied().collect::<Vec<_>>(),
            [12, 13, 14]
        );
        assert_eq!(cache.bytes, 3 * (MAX_BYTES / 10));
        cache.forget(14);
        assert_eq!(cache.entries.keys().copied().collect::<Vec<_>>(), [12, 14]);
    }
}
