#![doc = include_str!("../README.md")]

mod cache;
mod committed;

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};

use flashlog_wal::fs::{Fs, OpenMode};
use flashlog_wal::{Batch, Op, Options, Wal};
use openraft::async_runtime::OneshotSender;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::type_config::alias::{LogIdOf, VoteOf};
use openraft::type_config::TypeConfigExt;
use openraft::{OptionalSend, RaftLogReader, RaftTypeConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::committed::CommittedFile;
pub use crate::committed::COMMITTED_FILE;

/// The directory under the store's directory that holds the flashlog segments.
pub const WAL_DIR: &str = "wal";
/// The side file that holds the vote, the committed and last purged log ids and the
/// index offset.
pub const STATE_FILE: &str = "raft-state";
const STATE_TMP_FILE: &str = "raft-state.tmp";
/// Version of the side file's layout.
const STATE_VERSION: u32 = 1;
/// The size of the entries one replication request carries at most (it carries at
/// least one entry, whatever its size): openraft's `max_payload_entries` counts
/// entries, and 300 large values would make a request no peer accepts, nor one
/// that crosses a network within openraft's append deadline (its heartbeat
/// interval, 100 ms by default).
pub const MAX_BATCH_BYTES: usize = 2 << 20;
/// Width of the index at the start of each entry's key.
const INDEX_WIDTH: usize = 20;

/// How `save_committed` keeps the commit point (openraft's committed log id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CommitPoint {
    /// Durable when `save_committed` returns: the entries it names are synced
    /// first if they are not yet, then the commit point's own file is written and
    /// fdatasync'd. One fdatasync on openraft's core path per commit.
    #[default]
    Durable,
    /// Written without an fdatasync, and only once the entries it names are
    /// durable (until then the file keeps the previous one): after a crash the
    /// store reads back a commit point no later than the durable log, possibly an
    /// older one than the last saved. Raft's safety does not rest on it (etcd's
    /// raft does not sync its commit index either): a restarted node applies what
    /// its state machine had not, and learns the rest of the commit from the
    /// leader. No fdatasync on openraft's core path.
    Lazy,
}

/// A durable Raft log on a flashlog write-ahead log. Cheap to clone: clones share the
/// log, and a clone is the store's `LogReader`.
pub struct LogStore<C: RaftTypeConfig> {
    inner: Arc<Inner<C>>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

struct Inner<C: RaftTypeConfig> {
    dir: PathBuf,
    /// The file system of the log's options: the side file goes through it too.
    fs: Arc<dyn Fs>,
    wal: Wal,
    /// Serializes the writes (appends, votes, truncations, purges); readers take it
    /// briefly for the bounds.
    state: Mutex<State<C>>,
    /// Entries submitted and not yet durable, and the most recent durable ones
    /// (serialized), by Raft index: readable before the log has written them, and
    /// read without the disk by replication and the state machine. Never held
    /// while calling the log (a durability callback takes it).
    cache: Arc<Mutex<Cache>>,
    /// The commit point's own file (after the state lock).
    committed_file: Mutex<CommittedFile>,
    commit_point: CommitPoint,
    /// The store's sync thread: `save_vote` and `save_committed` wait for their
    /// fsyncs there, not on the async runtime's worker.
    jobs: Mutex<Sender<Job>>,
}

/// Work for the store's sync thread.
type Job = Box<dyn FnOnce() + Send>;

struct State<C: RaftTypeConfig> {
    /// What the side file holds.
    vote: Option<VoteOf<C>>,
    committed: Option<LogIdOf<C>>,
    purged: Option<LogIdOf<C>>,
    /// Raft index of the entry with sequence number `seq` is `seq + delta`.
    delta: i64,
    /// The index the log started at when `delta` was last set: entries before it,
    /// left over from an earlier numbering, are not part of the log.
    start: u64,
    /// The Raft index the next append must start at.
    next_index: u64,
    /// The log's next sequence number (including what is submitted and not yet written).
    next_seq: u64,
    /// The log id of the last entry after the last purged one, if any.
    last: Option<LogIdOf<C>>,
    /// Counts appends, to tell a callback's entries from later ones at the same index.
    generation: u64,
}

impl<C: RaftTypeConfig> State<C> {
    /// The index of the first entry the log may hold (after the last purged one).
    fn first_index(&self) -> u64 {
        self.purged
            .as_ref()
            .map_or(0, |id| id.index() + 1)
            .max(self.start)
    }

    fn seq_of(&self, index: u64) -> io::Result<u64> {
        let seq = i128::from(index) - i128::from(self.delta);
        u64::try_from(seq)
            .ok()
            .filter(|&seq| seq >= 1)
            .ok_or_else(|| {
                invalid(format!(
                    "raft index {index} maps to no sequence number (offset {})",
                    self.delta
                ))
            })
    }
}

/// The side file's contents. Typed values are stored postcard-encoded.
#[derive(Serialize, Deserialize, Default)]
struct StateFile {
    version: u32,
    delta: i64,
    start: u64,
    vote: Option<Vec<u8>>,
    committed: Option<Vec<u8>>,
    purged: Option<Vec<u8>>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A flashlog error as an `io::Error` whose source it is (segment, offset and all).
fn wal_err(e: flashlog_wal::Error) -> io::Error {
    let kind = e.io_kind().unwrap_or(io::ErrorKind::Other);
    io::Error::new(kind, e)
}

fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn encode_opt<T: Serialize>(value: &Option<T>) -> io::Result<Option<Vec<u8>>> {
    value.as_ref().map(encode).transpose()
}

fn decode_opt<T: DeserializeOwned>(bytes: &Option<Vec<u8>>) -> io::Result<Option<T>> {
    bytes.as_deref().map(decode).transpose()
}

/// The key of the entry with log id `log_id`: the index, fixed width, then the leader.
fn key_of<C: RaftTypeConfig>(log_id: &LogIdOf<C>) -> Vec<u8> {
    format!(
        "{:0width$}-{}",
        log_id.index(),
        log_id.committed_leader_id(),
        width = INDEX_WIDTH
    )
    .into_bytes()
}

/// The whole of the file at `path`.
fn read_file(fs: &dyn Fs, path: &Path) -> io::Result<Vec<u8>> {
    let file = fs.open(path, OpenMode::Read)?;
    let len = usize::try_from(file.len()?)
        .map_err(|_| invalid(format!("{} too large", path.display())))?;
    let mut buf = vec![0; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], done as u64) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    VoteOf<C>: Serialize + DeserializeOwned,
    LogIdOf<C>: Serialize + DeserializeOwned,
{
    /// Opens the store in `dir`, creating it if needed: the log in `dir/wal`, opened
    /// with `options` (keep `SyncPolicy::Always`, the default, for Raft's durability),
    /// and the side file `dir/raft-state`.
    ///
    /// The commit point is [`CommitPoint::Durable`].
    ///
    /// # Errors
    /// What [`Wal::open`] returns, as an `io::Error` whose source it is; a side file
    /// that does not decode (`InvalidData`); other I/O errors.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> io::Result<LogStore<C>> {
        LogStore::open_with(dir, options, CommitPoint::Durable)
    }

    /// As [`LogStore::open`], keeping the commit point as `commit_point` says.
    ///
    /// # Errors
    /// As [`LogStore::open`].
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: Options,
        commit_point: CommitPoint,
    ) -> io::Result<LogStore<C>> {
        let dir = dir.as_ref().to_path_buf();
        let fs = Arc::clone(&options.fs);
        fs.create_dir_all(&dir)?;
        // First: its lock guards the side file too.
        let wal = Wal::open(dir.join(WAL_DIR), options).map_err(wal_err)?;
        let file = match read_file(&*fs, &dir.join(STATE_FILE)) {
            Ok(bytes) => {
                let file: StateFile = decode(&bytes)?;
                if file.version != STATE_VERSION {
                    return Err(invalid(format!(
                        "{}: unknown version {}",
                        dir.join(STATE_FILE).display(),
                        file.version
                    )));
                }
                file
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => StateFile {
                version: STATE_VERSION,
                delta: -1,
                ..StateFile::default()
            },
            Err(e) => return Err(e),
        };
        let (committed_file, committed) = CommittedFile::open(&*fs, &dir)?;
        let committed = match committed {
            Some(bytes) => decode(&bytes)?,
            None => decode_opt(&file.committed)?,
        };
        let mut state = State::<C> {
            vote: decode_opt(&file.vote)?,
            committed,
            purged: decode_opt(&file.purged)?,
            delta: file.delta,
            start: file.start,
            next_index: 0,
            next_seq: wal.last_seq() + 1,
            last: None,
            generation: 0,
        };
        let after_log = i128::from(state.next_seq) + i128::from(state.delta);
        let first = state.first_index();
        state.next_index = u64::try_from(after_log.max(i128::from(first)))
            .map_err(|_| invalid(format!("index offset {} out of range", state.delta)))?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("flashlog-raft-sync".into())
            .spawn(move || {
                // Ends when the last clone of the store drops the sender.
                for job in queue {
                    job();
                }
            })?;
        let store = LogStore {
            inner: Arc::new(Inner {
                dir,
                fs,
                wal,
                state: Mutex::new(state),
                cache: Arc::new(Mutex::new(Cache::default())),
                committed_file: Mutex::new(committed_file),
                commit_point,
                jobs: Mutex::new(jobs),
            }),
        };
        {
            let mut state = lock(&store.inner.state);
            if state.next_index > first {
                let last = store.read_entry(&state, state.next_index - 1)?;
                state.last = Some(last.log_id());
            }
        }
        Ok(store)
    }

    /// The flashlog write-ahead log under the store (for metrics, scrubbing, cursors).
    /// Appending to it or truncating it directly breaks the store.
    pub fn wal(&self) -> &Wal {
        &self.inner.wal
    }

    /// Reads the entry at `index` from the log (not the pending ones) and checks its key.
    fn read_entry(&self, state: &State<C>, index: u64) -> io::Result<C::Entry> {
        let seq = state.seq_of(index)?;
        self.read_seq(seq, index)
    }

    fn read_seq(&self, seq: u64, index: u64) -> io::Result<C::Entry> {
        self.read_seq_sized(seq, index).map(|(entry, _)| entry)
    }

    /// `read_seq`, and the size of the entry's serialized value.
    fn read_seq_sized(&self, seq: u64, index: u64) -> io::Result<(C::Entry, usize)> {
        let entry = self.inner.wal.read(seq).map_err(wal_err)?;
        let key_index = entry
            .key()
            .get(..INDEX_WIDTH)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| digits.parse::<u64>().ok());
        if key_index != Some(index) {
            return Err(invalid(format!(
                "flashlog entry {seq} holds key {:?}, expected raft index {index}",
                String::from_utf8_lossy(entry.key())
            )));
        }
        let decoded: C::Entry = decode(entry.value())?;
        if decoded.index() != index {
            return Err(invalid(format!(
                "flashlog entry {seq} holds raft index {}, expected {index}",
                decoded.index()
            )));
        }
        Ok((decoded, entry.value().len()))
    }

    fn check_poisoned(&self) -> io::Result<()> {
        match self.inner.wal.poisoned() {
            Some(cause) => Err(wal_err(flashlog_wal::Error::Poisoned { cause })),
            None => Ok(()),
        }
    }

    /// Writes the side file crash-safely: temporary file, fsync, rename, fsync of the
    /// directory.
    fn store_state(&self, state: &State<C>) -> io::Result<()> {
        let file = StateFile {
            version: STATE_VERSION,
            delta: state.delta,
            start: state.start,
            vote: encode_opt(&state.vote)?,
            committed: encode_opt(&state.committed)?,
            purged: encode_opt(&state.purged)?,
        };
        let bytes = encode(&file)?;
        let (fs, dir) = (&*self.inner.fs, &self.inner.dir);
        let tmp = dir.join(STATE_TMP_FILE);
        {
            let file = fs.open(&tmp, OpenMode::CreateTruncate)?;
            let mut done = 0;
            while done < bytes.len() {
                match file.write_at(&bytes[done..], done as u64) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            file.sync_data()?;
        }
        fs.rename(&tmp, &dir.join(STATE_FILE))?;
        fs.sync_dir(dir)?;
        Ok(())
    }

    /// Saves `state` changed by `change`, in memory only once the side file holds it.
    fn update_state(
        &self,
        state: &mut State<C>,
        change: impl FnOnce(&mut State<C>),
    ) -> io::Result<()> {
        let mut next = State::<C> {
            vote: state.vote.clone(),
            committed: state.committed.clone(),
            purged: state.purged.clone(),
            delta: state.delta,
            start: state.start,
            next_index: state.next_index,
            next_seq: state.next_seq,
            last: state.last.clone(),
            generation: state.generation,
        };
        change(&mut next);
        self.store_state(&next)?;
        *state = next;
        Ok(())
    }

    /// Runs `work` on the store's sync thread and waits for it without blocking
    /// the async runtime's worker.
    async fn on_sync_thread<T>(
        &self,
        work: impl FnOnce(&LogStore<C>) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T>
    where
        T: Send + 'static,
    {
        let (tx, rx) = C::oneshot();
        let store = self.clone();
        let job: Job = Box::new(move || {
            let result = work(&store);
            // This thread's clone goes before the caller resumes: a caller that
            // drops its store and reopens the directory finds it unlocked.
            drop(store);
            // The caller gone means nobody wants the answer.
            drop(tx.send(result));
        });
        lock(&self.inner.jobs)
            .send(job)
            .map_err(|_| io::Error::other("the store's sync thread is gone"))?;
        rx.await
            .map_err(|_| io::Error::other("the store's sync thread dropped a request"))?
    }

    /// Makes the entries up to Raft index `index` durable: nothing to do when the
    /// log's fsyncs already cover them, else a sync.
    fn sync_through(&self, state: &State<C>, index: u64) -> io::Result<()> {
        if !self.is_durable(state, index) {
            self.inner.wal.sync().map_err(wal_err)?;
        }
        Ok(())
    }

    /// Whether the log's fsyncs cover the entries up to Raft index `index` (purged
    /// ones count as covered).
    fn is_durable(&self, state: &State<C>, index: u64) -> bool {
        index < state.first_index()
            || (index < state.next_index
                && state
                    .seq_of(index)
                    .is_ok_and(|seq| seq <= self.inner.wal.durable_seq()))
    }

    fn save_committed_now(&self, committed: Option<LogIdOf<C>>) -> io::Result<()> {
        self.check_poisoned()?;
        let mut state = lock(&self.inner.state);
        // The entries it names are durable before it.
        if let Some(id) = &committed {
            self.sync_through(&state, id.index())?;
        }
        lock(&self.inner.committed_file).save(&encode(&committed)?, true)?;
        state.committed = committed;
        Ok(())
    }

    /// [`CommitPoint::Lazy`]: written, not synced, and only when the entries it
    /// names are durable already; otherwise dropped (openraft saves the commit point
    /// again after its next batch). `state.committed` never runs ahead of the
    /// durable log either: the side file, which every `update_state` syncs, holds it
    /// too, and a store with no valid slot yet reads it from there.
    fn save_committed_lazily(&self, committed: Option<LogIdOf<C>>) -> io::Result<()> {
        self.check_poisoned()?;
        let mut state = lock(&self.inner.state);
        let durable = committed
            .as_ref()
            .is_none_or(|id| self.is_durable(&state, id.index()));
        if durable {
            lock(&self.inner.committed_file).save(&encode(&committed)?, false)?;
            state.committed = committed;
        }
        Ok(())
    }

    fn save_vote_now(&self, vote: VoteOf<C>) -> io::Result<()> {
        let mut state = lock(&self.inner.state);
        // What was appended before the vote is durable before it.
        self.inner.wal.sync().map_err(wal_err)?;
        self.update_state(&mut state, |s| s.vote = Some(vote))
    }

    fn entries(&self, start: Bound<&u64>, end: Bound<&u64>) -> io::Result<Vec<C::Entry>> {
        self.check_poisoned()?;
        let state = lock(&self.inner.state);
        let start = match start {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match end {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        self.entries_locked(&state, start, end, usize::MAX)
    }

    /// The entries in `start..end` the log holds (after the purged ones), stopping
    /// after the first entry that brings their serialized size to `max_bytes`: the
    /// entries past that point are neither read nor decoded.
    fn entries_locked(
        &self,
        state: &State<C>,
        start: u64,
        end: u64,
        max_bytes: usize,
    ) -> io::Result<Vec<C::Entry>> {
        let start = start.max(state.first_index());
        let end = end.min(state.next_index);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for index in start..end {
            if bytes >= max_bytes {
                break;
            }
            // The cache's lock only around the lookup: a durability callback takes
            // it. The state lock held throughout: no truncation or purge moves the
            // entries meanwhile.
            let cached = {
                let cache = lock(&self.inner.cache);
                cache
                    .get(index)
                    .map(|encoded| decode(encoded).map(|entry| (entry, encoded.len())))
            };
            let (entry, size) = match cached {
                Some(decoded) => decoded?,
                None => self.read_seq_sized(state.seq_of(index)?, index)?,
            };
            bytes = bytes.saturating_add(size);
            out.push(entry);
        }
        Ok(out)
    }

    /// What replication sends from `start`: the entries in `start..end`, at most
    /// [`MAX_BATCH_BYTES`] of them (at least one), beginning exactly at `start`
    /// whenever the log still has that entry on disk, even if it was purged.
    ///
    /// Why purged entries: openraft may purge entries that a replication stream it
    /// has just replaced still reads. A follower that answers "conflict" gets a
    /// snapshot instead of entries, and the leader then purges behind the snapshot,
    /// while the replaced stream, woken from its back-off, reads on from where it
    /// stopped. Entries from after the purge point would leave a gap after the
    /// request's `prev_log_id` (openraft asserts against it in debug builds; a
    /// follower would refuse it). Whole-segment removal keeps purged entries on
    /// disk for a while, and every purged entry is committed (a snapshot covers
    /// it), so the ones still there are the cluster's: sending them is what
    /// the stream asked for. Only when they are gone does it get the entries from
    /// the first one the log holds.
    fn replication_entries(&self, start: u64, end: u64) -> io::Result<Vec<C::Entry>> {
        self.check_poisoned()?;
        let state = lock(&self.inner.state);
        let first = state.first_index();
        let mut out = Vec::new();
        // Only while the log continues after the purge point (`last` is set): after
        // a purge past the end (a snapshot beyond the log), the entries left before
        // it, up to the next append's renumbering, may be an uncommitted tail.
        if start < first && start >= state.start && state.last.is_some() {
            let mut bytes = 0usize;
            for index in start..first.min(end) {
                if bytes >= MAX_BATCH_BYTES {
                    return Ok(out);
                }
                let Some(entry) = self.purged_entry(&state, index) else {
                    // Gone: no prefix at all rather than a prefix and a gap.
                    out.clear();
                    break;
                };
                bytes = bytes.saturating_add(entry.1);
                out.push(entry.0);
            }
            if !out.is_empty() {
                if bytes < MAX_BATCH_BYTES {
                    let rest = MAX_BATCH_BYTES - bytes;
                    out.extend(self.entries_locked(&state, first, end, rest)?);
                }
                return Ok(out);
            }
        }
        self.entries_locked(&state, start, end, MAX_BATCH_BYTES)
    }

    /// The purged entry at `index` and its size, if the log still holds it.
    fn purged_entry(&self, state: &State<C>, index: u64) -> Option<(C::Entry, usize)> {
        let seq = state.seq_of(index).ok()?;
        // Checks the key and the decoded index against `index`.
        self.read_seq_sized(seq, index).ok()
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    VoteOf<C>: Serialize + DeserializeOwned,
    LogIdOf<C>: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        self.entries(range.start_bound(), range.end_bound())
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, io::Error> {
        self.replication_entries(start, end)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(lock(&self.inner.state).vote.clone())
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    VoteOf<C>: Serialize + DeserializeOwned,
    LogIdOf<C>: Serialize + DeserializeOwned,
{
    type LogReader = LogStore<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        self.check_poisoned()?;
        let state = lock(&self.inner.state);
        Ok(LogState {
            last_purged_log_id: state.purged.clone(),
            last_log_id: state.last.clone().or_else(|| state.purged.clone()),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        let vote = vote.clone();
        self.on_sync_thread(move |store| store.save_vote_now(vote))
            .await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        match self.inner.commit_point {
            CommitPoint::Durable => {
                self.on_sync_thread(move |store| store.save_committed_now(committed))
                    .await
            }
            // A write to the page cache: no need to leave the runtime's thread.
            CommitPoint::Lazy => self.save_committed_lazily(committed),
        }
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        self.check_poisoned()?;
        Ok(lock(&self.inner.state).committed.clone())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<C::Entry> = entries.into_iter().collect();
        let Some(first_entry) = entries.first() else {
            // Nothing new, but `Ok` says every earlier append is durable too.
            let synced = {
                let _writes = lock(&self.inner.state);
                self.inner.wal.sync().map_err(wal_err)
            };
            callback.io_completed(synced);
            return Ok(());
        };
        let mut state = lock(&self.inner.state);
        let first = first_entry.index();
        // After the last entry; into an empty log, anywhere after the purged ones.
        let fits = match state.last {
            Some(_) => first == state.next_index,
            None => first >= state.purged.as_ref().map_or(0, |id| id.index() + 1),
        };
        if !fits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "append at raft index {first}, but the log's next index is {}",
                    state.next_index
                ),
            ));
        }
        let mut batch = Batch::new();
        let mut encoded = Vec::with_capacity(entries.len());
        for (n, entry) in entries.iter().enumerate() {
            let log_id = entry.log_id();
            if log_id.index() != first + n as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("entries not contiguous at raft index {}", log_id.index()),
                ));
            }
            let bytes = encode(entry)?;
            batch.push(Op::Put, &key_of::<C>(&log_id), &bytes);
            encoded.push((log_id.index(), bytes));
        }
        // Into an empty log (after a purge past its end, say) the first entry may go
        // at another offset: record it before the entry exists.
        let delta =
            i64::try_from(i128::from(first) - i128::from(state.next_seq)).map_err(|_| {
                invalid(format!(
                    "raft index {first} too far from the log's numbering"
                ))
            })?;
        if state.last.is_none() && (delta != state.delta || first != state.start) {
            self.update_state(&mut state, |s| {
                s.delta = delta;
                s.start = first;
            })?;
        }
        state.generation += 1;
        let generation = state.generation;
        let count = entries.len() as u64;
        let last_id = entries.last().map(|e| e.log_id());
        {
            let mut cache = lock(&self.inner.cache);
            for (index, bytes) in encoded {
                cache.insert(index, generation, bytes);
            }
        }
        let receipt = match self.inner.wal.submit_batch(&batch) {
            Ok(receipt) => receipt,
            Err(e) => {
                lock(&self.inner.cache).forget(generation);
                return Err(wal_err(e));
            }
        };
        debug_assert_eq!(*receipt.seqs().start(), state.next_seq);
        state.next_seq = receipt.seqs().end() + 1;
        state.next_index = first + count;
        state.last = last_id;
        drop(state);
        let cache = Arc::clone(&self.inner.cache);
        receipt.on_durable(move |result| {
            if result.is_ok() {
                lock(&cache).durable(generation);
            }
            callback.io_completed(result.map(|_| ()).map_err(wal_err));
        });
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.check_poisoned()?;
        let mut state = lock(&self.inner.state);
        let first = state.first_index();
        let cut = last_log_id
            .as_ref()
            .map_or(first, |id| id.index() + 1)
            .max(first);
        if cut >= state.next_index {
            return Ok(());
        }
        let seq = state.seq_of(cut)?;
        // Entries before the cut are durable and their appends' callbacks say `Ok`,
        // not `Truncated`.
        self.inner.wal.sync().map_err(wal_err)?;
        self.inner.wal.truncate_back(seq).map_err(wal_err)?;
        lock(&self.inner.cache).remove_from(cut);
        state.next_seq = seq;
        state.next_index = cut;
        state.last = if cut > first { last_log_id } else { None };
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        self.check_poisoned()?;
        let mut state = lock(&self.inner.state);
        if state
            .purged
            .as_ref()
            .is_some_and(|p| p.index() >= log_id.index())
        {
            return Ok(());
        }
        let index = log_id.index();
        // Recorded first: whatever a crash leaves on disk, the purged entries stay
        // hidden.
        self.update_state(&mut state, |s| s.purged = Some(log_id))?;
        if index >= state.next_index {
            state.next_index = index + 1;
            state.last = None;
        }
        lock(&self.inner.cache).remove_through(index);
        // Whole segments only, and never past the entries still in the log.
        let from = (index + 1).max(state.first_index());
        let keep_from = if from < state.next_index {
            state.seq_of(from)?
        } else {
            state.next_seq
        };
        self.inner.wal.sync().map_err(wal_err)?;
        self.inner
            .wal
            .truncate_front(keep_from.min(state.next_seq))
            .map_err(wal_err)?;
        Ok(())
    }
}
