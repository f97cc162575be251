//! The durable peer of the openraft section: the `raft-log` crate (the log
//! Databend's meta service runs under openraft) behind a minimal adapter.
//!
//! `append` hands the entries to raft-log's open chunk and asks its flush worker for
//! a synced flush whose callback is openraft's: raft-log calls it after the
//! `sync_data` that covers the entries. `save_vote` waits for such a flush. The
//! commit point and truncations ride on the next flush, as in Databend's adapter;
//! a purge asks for a synced flush (it is what lets raft-log remove whole chunks).

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use raft_log::api::raft_log_writer::RaftLogWriter;
use raft_log::{RaftLog, Types};

use crate::openraft_types::{Bench, Entry, LogId, Vote};

/// raft-log's types: a log id is its index beside the postcard-encoded openraft log
/// id; payloads and votes are postcard-encoded openraft values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RaftLogTypes(PhantomData<Bench>);

/// Who hears of a flush: openraft's append callback, or a thread that waits.
pub enum Flushed {
    /// An append's callback.
    Append(IOFlushed<Bench>),
    /// A blocking flush (votes).
    Wait(SyncSender<io::Result<()>>),
}

impl raft_log::Callback for Flushed {
    fn send(self, res: io::Result<()>) {
        match self {
            Flushed::Append(callback) => callback.io_completed(res),
            // raft-log's own callback for a channel (a waiter gone is ignored).
            Flushed::Wait(tx) => raft_log::Callback::send(tx, res),
        }
    }
}

impl Types for RaftLogTypes {
    type LogId = (u64, Vec<u8>);
    type LogPayload = Vec<u8>;
    type Vote = Vec<u8>;
    type Callback = Flushed;
    type UserData = Vec<u8>;

    fn log_index(log_id: &Self::LogId) -> u64 {
        log_id.0
    }

    fn payload_size(payload: &Self::LogPayload) -> u64 {
        payload.len() as u64
    }
}

fn encode<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn raft_log_id(log_id: &LogId) -> io::Result<(u64, Vec<u8>)> {
    Ok((log_id.index(), encode(log_id)?))
}

/// An openraft log store on raft-log; clones share the log (a clone is its reader).
#[derive(Clone)]
pub struct RaftLogStore(Arc<Mutex<RaftLog<RaftLogTypes>>>);

impl RaftLogStore {
    /// Opens (creates) the raft-log directory `dir` with raft-log's default config.
    ///
    /// # Errors
    /// What `RaftLog::open` returns.
    pub fn open(dir: &Path) -> io::Result<RaftLogStore> {
        let config = raft_log::Config::new(dir.display());
        Ok(RaftLogStore(Arc::new(Mutex::new(RaftLog::open(
            Arc::new(config),
        )?))))
    }

    fn lock(&self) -> MutexGuard<'_, RaftLog<RaftLogTypes>> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Everything written so far durable, waited for.
    fn blocking_flush(&self) -> io::Result<()> {
        let (tx, rx) = sync_channel(1);
        self.lock().flush(true, Some(Flushed::Wait(tx)))?;
        rx.recv()
            .map_err(|_| io::Error::other("raft-log dropped a flush callback"))?
    }
}

impl RaftLogReader<Bench> for RaftLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let log = self.lock();
        log.read(from, to).map(|item| decode(&item?.1)).collect()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.lock()
            .log_state()
            .vote()
            .map(|bytes| decode(bytes))
            .transpose()
    }
}

impl RaftLogStorage<Bench> for RaftLogStore {
    type LogReader = RaftLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<Bench>, io::Error> {
        let log = self.lock();
        let state = log.log_state();
        let purged: Option<LogId> = state.purged().map(|id| decode(&id.1)).transpose()?;
        let last: Option<LogId> = state.last().map(|id| decode(&id.1)).transpose()?;
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> RaftLogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.lock().save_vote(encode(vote)?)?;
        self.blocking_flush()
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        if let Some(committed) = committed {
            self.lock().commit(raft_log_id(&committed)?)?;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        self.lock()
            .log_state()
            .committed()
            .map(|id| decode(&id.1))
            .transpose()
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<Bench>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let records = entries
            .into_iter()
            .map(|entry| Ok((raft_log_id(&entry.log_id())?, encode(&entry)?)))
            .collect::<io::Result<Vec<_>>>()?;
        let mut log = self.lock();
        log.append(records)?;
        log.flush(true, Some(Flushed::Append(callback)))
    }

    async fn truncate_after(&mut self, last: Option<LogId>) -> Result<(), io::Error> {
        let mut log = self.lock();
        let next = match &last {
            Some(id) => id.index() + 1,
            None => log.log_state().purged().map_or(0, |id| id.0 + 1),
        };
        log.truncate(next)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut log = self.lock();
        log.purge(raft_log_id(&log_id)?)?;
        log.flush(true, None)
    }
}
