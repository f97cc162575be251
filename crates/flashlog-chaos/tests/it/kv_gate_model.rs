//! A loom model of the store's gate and compaction hand-off
//! (`crates/flashlog-kv/src/db.rs` `put` / `read_value` and `src/compact.rs`
//! `compact_locked` / `append_copies`): the log is a `Mutex` over a list of
//! `(seq, key, value)` with a first sequence number and the start of the active
//! segment; the index a `RwLock<key → seq>`; the gate a `RwLock<()>`.
//! - a writer holds the gate shared from its append until its index update;
//! - the compaction seals the active segment (its cut), lists the live entries
//!   before the cut (with the gate held exclusively, as the fix of issue 11 item 1
//!   does, or without it, as before), reads them, then under the gate (exclusive)
//!   re-checks each key, appends the copy and repoints the index, and last removes
//!   every entry before the cut;
//! - a reader looks the key up, reads the entry, and on "out of range" looks again.
//!
//! **This models those functions and must be updated with them** (the order of the
//! steps and where each lock is taken and released is what is checked).
//!
//! loom explores every interleaving (up to a preemption bound) and checks: every
//! read gives the key's value (never `IndexMismatch`), and at the end each key's
//! index entry and its last entry in the log (what a reopen replays) hold its last
//! written value. Without the gate around the live list, loom finds the lost put.

use std::collections::BTreeMap;

use loom::sync::{Arc, Mutex, RwLock};
use loom::thread;

#[derive(Debug, Default)]
struct Log {
    /// `(seq, key, value)`, in sequence order, from `first` on.
    entries: Vec<(u64, u8, u8)>,
    next: u64,
    /// The sequence number where the active segment starts.
    active_from: u64,
}

impl Log {
    fn append(&mut self, key: u8, value: u8) -> u64 {
        let seq = self.next;
        self.next += 1;
        self.entries.push((seq, key, value));
        seq
    }

    /// `Wal::read`: the entry, or `None` for `SeqOutOfRange`.
    fn read(&self, seq: u64) -> Option<(u8, u8)> {
        self.entries
            .iter()
            .find(|e| e.0 == seq)
            .map(|&(_, key, value)| (key, value))
    }
}

#[derive(Debug)]
struct Store {
    log: Mutex<Log>,
    index: RwLock<BTreeMap<u8, u64>>,
    gate: RwLock<()>,
}

impl Store {
    /// Key 0 holds 10 and key 1 holds 20, in the active segment.
    fn new() -> Store {
        let mut log = Log {
            next: 1,
            active_from: 1,
            ..Log::default()
        };
        let mut index = BTreeMap::new();
        for (key, value) in [(0, 10), (1, 20)] {
            index.insert(key, log.append(key, value));
        }
        Store {
            log: Mutex::new(log),
            index: RwLock::new(index),
            gate: RwLock::new(()),
        }
    }

    fn put(&self, key: u8, value: u8) {
        let _gate = self.gate.read().unwrap();
        let seq = self.log.lock().unwrap().append(key, value);
        self.index.write().unwrap().insert(key, seq);
    }

    /// `Db::get`; panics where the store returns `IndexMismatch`.
    fn get(&self, key: u8) -> Option<u8> {
        let mut seq = *self.index.read().unwrap().get(&key)?;
        loop {
            let read = self.log.lock().unwrap().read(seq);
            match read {
                Some((found, value)) => {
                    assert_eq!(found, key, "IndexMismatch: entry {seq} is another key's");
                    return Some(value);
                }
                None => match self.index.read().unwrap().get(&key) {
                    None => return None,
                    Some(&now) => {
                        assert_ne!(now, seq, "IndexMismatch: entry {seq} was removed");
                        seq = now;
                    }
                },
            }
        }
    }

    fn compact(&self, gate_around_list: bool) {
        // `rotate`.
        {
            let mut log = self.log.lock().unwrap();
            log.active_from = log.next;
        }
        let list = || {
            let cut = self.log.lock().unwrap().active_from;
            let live: Vec<(u8, u64)> = self
                .index
                .read()
                .unwrap()
                .iter()
                .filter(|&(_, &seq)| seq < cut)
                .map(|(&key, &seq)| (key, seq))
                .collect();
            (cut, live)
        };
        let (cut, live) = if gate_around_list {
            let _gate = self.gate.write().unwrap();
            list()
        } else {
            list()
        };
        // The walk: read each live entry.
        let copies: Vec<(u8, u64, u8)> = live
            .iter()
            .map(|&(key, seq)| {
                let (_, value) = self.log.lock().unwrap().read(seq).expect("live entry");
                (key, seq, value)
            })
            .collect();
        // `append_copies`, one batch.
        {
            let _gate = self.gate.write().unwrap();
            let kept: Vec<_> = {
                let index = self.index.read().unwrap();
                copies
                    .into_iter()
                    .filter(|&(key, origin, _)| index.get(&key) == Some(&origin))
                    .collect()
            };
            let seqs: Vec<u64> = {
                let mut log = self.log.lock().unwrap();
                kept.iter()
                    .map(|&(key, _, value)| log.append(key, value))
                    .collect()
            };
            let mut index = self.index.write().unwrap();
            for (&(key, origin, _), seq) in kept.iter().zip(seqs) {
                if index.get(&key) == Some(&origin) {
                    index.insert(key, seq);
                }
            }
        }
        // `truncate_front(cut)`.
        self.log.lock().unwrap().entries.retain(|e| e.0 >= cut);
    }

    /// What a reopen replays: each key's last entry in the log.
    fn replay(&self) -> BTreeMap<u8, u8> {
        let log = self.log.lock().unwrap();
        log.entries
            .iter()
            .map(|&(_, key, value)| (key, value))
            .collect()
    }
}

fn run(gate_around_list: bool) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let store = Arc::new(Store::new());
        let writer = {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                store.put(0, 11);
                store.put(2, 30);
            })
        };
        let reader = {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let value = store.get(1);
                assert_eq!(value, Some(20), "key 1 is never written");
            })
        };
        store.compact(gate_around_list);
        writer.join().unwrap();
        reader.join().unwrap();
        let want = BTreeMap::from([(0, 11), (1, 20), (2, 30)]);
        for (&key, &value) in &want {
            assert_eq!(store.get(key), Some(value), "key {key} while open");
        }
        assert_eq!(store.replay(), want, "after reopen");
    });
}

#[test]
fn kv_gate_compaction_keeps_every_put() {
    run(true);
}

/// The code before the fix of issue 11, item 1: loom must find the lost put.
#[test]
fn kv_gate_without_it_around_the_live_list_loses_a_put() {
    let found = std::panic::catch_unwind(|| run(false));
    assert!(
        found.is_err(),
        "loom found no interleaving that loses a put"
    );
}
