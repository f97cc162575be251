//! [`Db`], the public handle of an open store: writes, point reads and the index
//! rebuilt from the log on open.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use flashlog_wal::codec::{encoded_len, MAX_ENTRY_LEN};
use flashlog_wal::{Op, RecoveryReport, SegmentInfo, Wal};

use crate::compact::{CompactionStatus, Trigger};
use crate::index::{Index, Slot};
use crate::locks::{lock, read, write};
use crate::{AutoCompact, DbMetrics, DbOptions, Error, Result, Stats};

/// Writers of keys that hash to the same stripe are ordered by its mutex, so the
/// index always ends at the key's last entry in log order.
const STRIPES: usize = 64;

/// A durable key-value store whose durability is one flashlog log.
///
/// Keys live in an in-memory ordered index, each with the sequence number of its
/// latest put; values stay on disk and `get` reads one with one positioned read.
/// `Db` is `Send + Sync` and its methods take `&self`: share it with an `Arc`.
/// Concurrent writers share fsyncs through the log's group commit.
///
/// # Concurrency
///
/// Any number of threads may call any methods at once, compaction included:
/// - **Writes are atomic and ordered per key.** A [`Db::put`] or [`Db::delete`]
///   that returned is seen by every `get`, `contains` and `scan` that starts later
///   (until a later write of the key); writes of one key take effect in the order
///   their entries have in the log, which is the order a reopen replays.
/// - **Reads see values the key really held.** [`Db::get`] returns the value the
///   key held (or `None` if it was absent) at some moment between the call and its
///   return: never another key's value, never one overwritten before the call.
///   A [`Scan`](crate::Scan) does the same for each key it yields (it is not a
///   snapshot of the whole range, see there).
/// - **Compaction changes no value.** [`Db::compact`] (or an automatic one) runs
///   beside reads and writes; a read that raced it follows the key to its copy,
///   and a write in flight when it started is kept. Writers pause only while it
///   lists the live entries and while it appends a batch of copies.
/// - **Reopen gives each key's last acknowledged write.** After
///   [`Db::close`] (or a crash, under `SyncPolicy::Always`), the reopened store
///   holds, for each key, its last write that returned `Ok`, or a later one that
///   was in flight at the crash.
///
/// ```
/// use flashlog_kv::{Db, DbOptions};
///
/// let dir = tempfile::tempdir()?;
/// let db = Db::open(dir.path(), DbOptions::default())?;
/// db.put(b"user:1", b"alice")?;
/// db.put(b"user:2", b"bob")?;
/// assert!(db.delete(b"user:1")?);
/// assert_eq!(db.get(b"user:2")?.as_deref(), Some(&b"bob"[..]));
/// assert_eq!(db.get(b"user:1")?, None);
/// db.close()?;
/// drop(db); // releases the directory's lock
///
/// let db = Db::open(dir.path(), DbOptions::default())?; // replays the log
/// assert_eq!(db.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Db {
    pub(crate) wal: Wal,
    pub(crate) index: RwLock<Index>,
    /// Writers hold it shared from their append until the index shows it;
    /// compaction holds it exclusively while it takes its cut and the live entries
    /// before it, while it re-checks and appends copies, and while it recounts
    /// the log's bytes: then no entry is in the log and missing from the index.
    pub(crate) gate: RwLock<()>,
    stripes: Box<[Mutex<()>]>,
    /// Held by the one compaction that runs at a time.
    pub(crate) compacting: Mutex<()>,
    /// Bytes appended since the last compaction (or the log's size at open).
    pub(crate) appended: AtomicU64,
    /// How the compactions since open went (taken after `compacting`, never
    /// before it, and held only to update or read it).
    pub(crate) compaction_status: Mutex<CompactionStatus>,
    options: DbOptions,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.wal.dir())
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

/// Rebuilds the index from every entry of the log.
///
/// Entries are gathered in log order into one vector, which is then sorted by key
/// (first 8 bytes inline, so the key's heap bytes are touched only on ties) and
/// newest first, keeping each key's newest entry: sequential writes and one sort
/// instead of a hash-map probe (a cache miss) per entry. When the vector doubles,
/// it is sorted and cut down to one entry per key, so memory follows the number of
/// keys, not of entries. Deletes are dropped at the end.
fn replay(wal: &Wal) -> Result<Index> {
    replay_bounded(wal, REPLAY_BATCH)
}

/// Records gathered before replay first cuts them down to one per key: large
/// enough that a log of up to a million entries is sorted once, small enough that
/// replaying many overwrites of few keys stays small.
const REPLAY_BATCH: usize = 1 << 20;

fn replay_bounded(wal: &Wal, batch: usize) -> Result<Index> {
    let entries = usize::try_from(wal.recovery_report().entries).unwrap_or(0);
    let mut records: Vec<Record> = Vec::with_capacity(entries.min(batch));
    let mut limit = batch;
    // Entries are borrowed from the reader's buffer: one allocation per key copy.
    wal.iter_from(wal.first_seq())?.try_for_each_ref(|entry| {
        records.push(Record {
            prefix: prefix(entry.key),
            seq: entry.seq,
            key: entry.key.into(),
            value_len: entry.value.len() as u32,
            op: entry.op,
        });
        if records.len() >= limit {
            keep_newest_per_key(&mut records);
            limit = limit.max(2 * records.len());
        }
        Ok::<(), Error>(())
    })?;
    keep_newest_per_key(&mut records);
    let live: Vec<(Box<[u8]>, Slot)> = records
        .into_iter()
        .filter(|record| record.op == Op::Put)
        .map(|record| (record.key, Slot::new(record.seq, record.value_len as usize)))
        .collect();
    // Skipped damage and the like count as dead: the log's size is its segments'.
    let log_bytes = wal.segments().iter().map(|s| s.bytes).sum();
    Ok(Index::from_sorted(live, log_bytes))
}

/// One entry of the log, as replay gathers them.
struct Record {
    prefix: u64,
    seq: u64,
    key: Box<[u8]>,
    value_len: u32,
    op: Op,
}

/// Sorts `records` by key and keeps each key's newest entry (put or delete).
fn keep_newest_per_key(records: &mut Vec<Record>) {
    records.sort_unstable_by(|a, b| {
        a.prefix
            .cmp(&b.prefix)
            .then_with(|| a.key.cmp(&b.key))
            .then_with(|| b.seq.cmp(&a.seq))
    });
    records.dedup_by(|later, kept| later.prefix == kept.prefix && later.key == kept.key);
}

/// The first 8 bytes of `key`, zero-padded, as a big-endian number: ordered as
/// the keys are.
fn prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

impl Db {
    /// Opens the store in `dir` (creating it if there is none), recovering the log
    /// per its options and rebuilding the key index by replaying every entry.
    ///
    /// Any flashlog or Go-written log opens as a store: puts set keys, deletes
    /// remove them, the last entry of a key wins.
    ///
    /// # Errors
    /// [`Error::NotALog`] if `dir` is a file, or a directory with other files and
    /// no segment; [`Error::InvalidOptions`]; the log's errors as [`Error::Wal`]
    /// (`Locked`, `Corrupt`, `Io`, ...).
    pub fn open(dir: impl AsRef<Path>, options: DbOptions) -> Result<Db> {
        let dir = dir.as_ref();
        options.validate()?;
        crate::dir::check_is_log(dir)?;
        let wal = Wal::open(dir, options.wal.clone())?;
        let index = replay(&wal)?;
        let appended = AtomicU64::new(index.log_bytes());
        Ok(Db {
            wal,
            index: RwLock::new(index),
            gate: RwLock::new(()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            compacting: Mutex::new(()),
            appended,
            compaction_status: Mutex::new(CompactionStatus::default()),
            options,
        })
    }

    /// Sets `key` to `value`. Durable when it returns under the log's
    /// [`SyncPolicy::Always`](flashlog_wal::SyncPolicy::Always) (the default); under
    /// the other policies, once the log syncs.
    ///
    /// # Errors
    /// [`Error::EmptyKey`], [`Error::TooLarge`], or the log's error (the store
    /// is unchanged then).
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let len = self.check_write(key, value)?;
        {
            // Both held across the append and the index update: the stripe orders
            // this key's writers, so the index ends at its last entry in log order;
            // the gate (shared) keeps a compaction from listing the live entries or
            // re-checking its copies while this entry is in the log and not yet in
            // the index.
            let _stripe = lock(self.stripe(key));
            let _gate = read(&self.gate);
            let seq = self.wal.append(Op::Put, key, value)?;
            crate::hooks::at(crate::hooks::Gap::AfterAppend);
            write(&self.index).put(key, Slot::new(seq, value.len()));
        }
        self.after_write(len);
        Ok(())
    }

    /// Removes `key`; returns whether it was there. Writes a delete entry only if it
    /// was. Durable as [`Db::put`].
    ///
    /// # Errors
    /// [`Error::EmptyKey`], [`Error::TooLarge`], or the log's error.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        let len = self.check_write(key, b"")?;
        {
            let _stripe = lock(self.stripe(key));
            // The index lock is released before the append, and the key is still
            // there when the delete lands: only writers of this key add or remove
            // it, and they wait for the stripe held here; a compaction only repoints
            // a key to a copy of the same value. The gate as in `put`.
            if read(&self.index).get(key).is_none() {
                return Ok(false);
            }
            let _gate = read(&self.gate);
            self.wal.append(Op::Delete, key, b"")?;
            crate::hooks::at(crate::hooks::Gap::AfterAppend);
            write(&self.index).delete(key, len);
        }
        self.after_write(len);
        Ok(true)
    }

    /// The value of `key`, read from disk with one positioned read; `None` if the
    /// key is not in the store.
    ///
    /// # Errors
    /// The log's error if the entry cannot be read ([`Error::Wal`] with
    /// `Corrupt` or `Io`); [`Error::IndexMismatch`] if the log was changed by
    /// someone else.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        // The index lock is released before the read: see `read_value` for why the
        // slot is still good (or followed).
        let Some(slot) = read(&self.index).get(key) else {
            return Ok(None);
        };
        self.read_value(key, slot)
    }

    /// Reads the value at `slot`, which the index held for `key` a moment ago (its
    /// lock is released now); follows the key to a compaction's copy if the
    /// original was removed meanwhile.
    ///
    /// Why what the index said is still good without its lock:
    /// - sequence numbers are never reused (the store never calls
    ///   `truncate_back`), so the entry at `slot` is forever the put the index
    ///   saw: a value the key held at the moment of the lookup, never another's;
    /// - a compaction points the index at a copy *before* `truncate_front` removes
    ///   the original, so once the log says `SeqOutOfRange` the index has moved on
    ///   (to the copy, a later write, or nothing): a second lookup finds where.
    ///   The index still holding the removed `seq` then means the files were
    ///   changed behind the store's back.
    pub(crate) fn read_value(&self, key: &[u8], mut slot: Slot) -> Result<Option<Vec<u8>>> {
        loop {
            crate::hooks::at(crate::hooks::Gap::BeforeRead);
            match self.wal.read(slot.seq()) {
                Ok(entry) => {
                    if entry.op() != Op::Put || entry.key() != key {
                        return Err(Error::IndexMismatch { seq: slot.seq() });
                    }
                    return Ok(Some(entry.into_value()));
                }
                // The log returns this, never an I/O error, when `truncate_front`
                // removed the entry's segment between finding and reading it.
                Err(flashlog_wal::Error::SeqOutOfRange { .. }) => {
                    // A compaction copied the value and removed the original.
                    match read(&self.index).get(key) {
                        None => return Ok(None),
                        Some(now) if now.seq() != slot.seq() => slot = now,
                        Some(_) => return Err(Error::IndexMismatch { seq: slot.seq() }),
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Whether `key` is in the store (no disk access).
    pub fn contains(&self, key: &[u8]) -> bool {
        read(&self.index).get(key).is_some()
    }

    /// The number of keys in the store.
    pub fn len(&self) -> usize {
        read(&self.index).len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sizes of the store and its log, and how its compactions went (an
    /// automatic compaction's error is reported here: see
    /// [`Stats::last_compaction_error`]).
    ///
    /// The key and byte counts are taken together (consistent with each other); the
    /// segment and sequence-number figures a moment later, so under concurrent
    /// writes or a compaction they may describe a slightly later log.
    pub fn stats(&self) -> Stats {
        // The gate (shared) keeps a compaction's recount of `log_bytes` out; the
        // log's figures below are read after both locks are released and are not
        // tied to these: nothing is computed from the two together but
        // `dead_bytes`, which uses only these.
        let (keys, live_bytes, log_bytes) = {
            let _gate = read(&self.gate);
            let index = read(&self.index);
            (index.len() as u64, index.live_bytes(), index.log_bytes())
        };
        let segments = self.wal.segments();
        let first_seq = self.wal.first_seq();
        let last_seq = self.wal.last_seq();
        let status = lock(&self.compaction_status);
        Stats {
            keys,
            live_bytes,
            dead_bytes: log_bytes.saturating_sub(live_bytes),
            log_bytes,
            segments: segments.len() as u64,
            entries: (last_seq + 1).saturating_sub(first_seq),
            first_seq,
            last_seq,
            compactions: status.runs,
            compaction_failures: status.failures,
            compaction_time: status.time,
            last_compaction_error: status.last_error.clone(),
        }
    }

    /// The store's [`Db::stats`] beside its log's
    /// [`Wal::metrics`](flashlog_wal::Wal::metrics).
    pub fn metrics(&self) -> DbMetrics {
        DbMetrics {
            store: self.stats(),
            log: self.wal.metrics(),
        }
    }

    /// The log's segments, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.wal.segments()
    }

    /// What the log's recovery found when the store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        self.wal.recovery_report()
    }

    /// Makes every write so far durable (needed only under the log's `Manual` and
    /// `Interval` sync policies).
    ///
    /// # Errors
    /// The log's error.
    pub fn sync(&self) -> Result<()> {
        Ok(self.wal.sync()?)
    }

    /// Closes the store: makes every write durable and releases the log. Dropping
    /// the `Db` does the same but ignores errors.
    ///
    /// # Errors
    /// The log's error of the final sync.
    pub fn close(&self) -> Result<()> {
        Ok(self.wal.close()?)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.wal.dir()
    }

    fn stripe(&self, key: &[u8]) -> &Mutex<()> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        &self.stripes[(hasher.finish() % STRIPES as u64) as usize]
    }

    /// Checks a write's key and size; returns the entry's length on disk.
    fn check_write(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let len = encoded_len(key.len(), value.len());
        let max = MAX_ENTRY_LEN.min(self.options.wal.max_segment_size);
        if len > max {
            return Err(Error::TooLarge {
                key_len: key.len(),
                value_len: value.len(),
                len,
                max,
            });
        }
        Ok(len)
    }

    /// Runs an automatic compaction if the policy asks for one.
    fn after_write(&self, len: u64) {
        let AutoCompact::DeadShare(share) = self.options.auto_compact else {
            return;
        };
        let since = self.appended.fetch_add(len, Ordering::Relaxed) + len;
        if since < self.options.wal.max_segment_size {
            return;
        }
        // A heuristic: the counts may be stale by the time the compaction runs
        // (it needs nothing from them to be correct), and two writers may both find
        // them over the line: the `try_lock` below lets one compact.
        let (dead, total) = {
            let index = read(&self.index);
            (index.dead_bytes(), index.log_bytes())
        };
        if (dead as f64) <= share * total as f64 {
            return;
        }
        let Ok(running) = self.compacting.try_lock() else {
            return;
        };
        // The write itself is durable; a failed compaction leaves the contents as
        // they were (or the log poisoned, which the next write reports). Its error
        // is kept for `stats` and traced, not returned: this write succeeded.
        let _ = self.run_compaction(
            &running,
            &mut |_| std::ops::ControlFlow::Continue(()),
            Trigger::Automatic,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashlog_wal::Options;

    /// Replay that cuts its records down every few entries gives the same index as
    /// one that sorts once, and as a map that follows the log.
    #[test]
    fn replay_cut_down_midway_keeps_each_keys_newest_entry() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), Options::default()).unwrap();
        let mut model = std::collections::BTreeMap::new();
        for i in 0..500u32 {
            let key = format!("key{}", (i * 7) % 23).into_bytes();
            if i % 5 == 4 {
                wal.append(Op::Delete, &key, b"").unwrap();
                model.remove(&key);
            } else {
                let value = vec![b'v'; (i % 11) as usize];
                let seq = wal.append(Op::Put, &key, &value).unwrap();
                model.insert(key, (seq, value.len()));
            }
        }
        let flatten = |index: &Index| {
            index
                .range(
                    std::ops::Bound::Unbounded,
                    std::ops::Bound::Unbounded,
                    usize::MAX,
                )
                .into_iter()
                .map(|(key, slot)| (key.to_vec(), (slot.seq(), slot.value_len())))
                .collect::<Vec<_>>()
        };
        let want: Vec<_> = model.into_iter().collect();
        for batch in [1, 2, 3, 8, 100, REPLAY_BATCH] {
            assert_eq!(
                flatten(&replay_bounded(&wal, batch).unwrap()),
                want,
                "batch {batch}"
            );
        }
    }
}
