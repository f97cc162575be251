//! A RocksDB-backed openraft log store in the style of openraft's `rocksstore`
//! example (column families `meta` and `logs`, entries keyed by big-endian index),
//! built only with the `rocksdb` feature: RocksDB takes minutes to compile, so CI
//! does not pay for it.
//!
//! `append` writes its entries as one `WriteBatch` with `sync` set (the WAL is
//! fdatasync'd before the write returns), then calls the callback; the example
//! writes entry by entry and calls `flush_wal(true)`, which costs the same sync and
//! more calls. The vote is written with `sync`; the commit point and the
//! last-purged id ride on the next synced write. Entries are postcard-encoded (the
//! example uses JSON, which would only slow RocksDB down here).

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, WriteBatch, WriteOptions, DB,
};

use crate::openraft_types::{Bench, Entry, LogId, Vote};

const META: &str = "meta";
const LOGS: &str = "logs";
const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"last_purged_log_id";

fn rocks_err(e: rocksdb::Error) -> io::Error {
    io::Error::other(e)
}

fn encode<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// An openraft log store on RocksDB; clones share the database.
#[derive(Clone)]
pub struct RocksStore {
    db: Arc<DB>,
}

impl RocksStore {
    /// Opens (creates) the database in `dir`.
    ///
    /// # Errors
    /// What `DB::open_cf_descriptors` returns.
    pub fn open(dir: &Path) -> io::Result<RocksStore> {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let cfs =
            [META, LOGS].map(|name| ColumnFamilyDescriptor::new(name, rocksdb::Options::default()));
        let db = DB::open_cf_descriptors(&options, dir, cfs).map_err(rocks_err)?;
        Ok(RocksStore { db: Arc::new(db) })
    }

    fn cf(&self, name: &str) -> io::Result<&ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| io::Error::other(format!("column family {name} missing")))
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, name: &[u8]) -> io::Result<Option<T>> {
        self.db
            .get_cf(self.cf(META)?, name)
            .map_err(rocks_err)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    fn put_meta<T: serde::Serialize>(&self, name: &[u8], value: &T, sync: bool) -> io::Result<()> {
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db
            .put_cf_opt(self.cf(META)?, name, encode(value)?, &options)
            .map_err(rocks_err)
    }
}

impl RaftLogReader<Bench> for RocksStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        let from = key(start);
        let iter = self.db.iterator_cf(
            self.cf(LOGS)?,
            IteratorMode::From(&from, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item.map_err(rocks_err)?;
            let index = <[u8; 8]>::try_from(&*k)
                .map(u64::from_be_bytes)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "log key not 8 bytes"))?;
            if !range.contains(&index) {
                break;
            }
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.meta(VOTE)
    }
}

impl RaftLogStorage<Bench> for RocksStore {
    type LogReader = RocksStore;

    async fn get_log_state(&mut self) -> Result<LogState<Bench>, io::Error> {
        let last = match self
            .db
            .iterator_cf(self.cf(LOGS)?, IteratorMode::End)
            .next()
        {
            Some(item) => Some(decode::<Entry>(&item.map_err(rocks_err)?.1)?.log_id()),
            None => None,
        };
        let purged: Option<LogId> = self.meta(PURGED)?;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> RocksStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_meta(VOTE, vote, true)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.put_meta(COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<Bench>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let logs = self.cf(LOGS)?;
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(logs, key(entry.index()), encode(&entry)?);
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        let synced = self.db.write_opt(batch, &options).map_err(rocks_err);
        callback.io_completed(synced);
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogId>) -> Result<(), io::Error> {
        let from = last.map_or(0, |id| id.index() + 1);
        self.db
            .delete_range_cf(self.cf(LOGS)?, key(from), key(u64::MAX))
            .map_err(rocks_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // Recorded first: whatever is deleted after it stays hidden.
        self.put_meta(PURGED, &log_id, false)?;
        self.db
            .delete_range_cf(self.cf(LOGS)?, key(0), key(log_id.index() + 1))
            .map_err(rocks_err)
    }
}
