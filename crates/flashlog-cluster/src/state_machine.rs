//! The state machine: a flashlog-kv [`Db`] that Raft's committed commands are
//! applied to, and the snapshots built from it and installed into it.
//!
//! On disk, under the state machine's directory:
//! - `db-<generation>/`: the store. A snapshot install builds the next generation
//!   beside it and switches over; the replaced one is removed once no reader
//!   holds it (see [`Generation`]), or at the next start;
//! - `flashlog.applied`: the generation in use, the last applied log id and the
//!   last membership, written crash-safely (tmp, fsync, rename, fsync dir) and
//!   only after the store's writes it covers are synced;
//! - `snapshots/current`: the newest snapshot (see [`crate::snapshot`]).
//!
//! The store runs under `SyncPolicy::Manual`: applying a batch of entries
//! writes them without an fsync; a checkpoint (store fsync, then the side file)
//! runs after a batch once [`CHECKPOINT_INTERVAL`] has passed since the last one,
//! before a snapshot is built, and at close. After a crash the store holds a
//! prefix of what was applied and the side file a log id no later than that
//! prefix's end; openraft re-applies the committed log after the side file's log
//! id. Re-applying puts and deletes in log order over a prefix of themselves
//! ends in the same state, so the state after a restart is exactly the
//! committed log.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_wal::{Options, SyncPolicy};
use futures_util::StreamExt;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::SnapshotOf;
use openraft::{EntryPayload, OptionalSend};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{io, Error, Result};
use crate::files::{read_optional, sync_dir, write_atomic};
use crate::snapshot;
use crate::types::{Command, LogId, Response, SnapshotMeta, StoredMembership, TypeConfig};

/// The side file's name.
pub const APPLIED_FILE: &str = "flashlog.applied";
/// How often, at most, applying entries ends with a checkpoint.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// The side file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AppliedFile {
    generation: u64,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// What applying changes, guarded by one async lock: applies, checkpoints,
/// snapshot builds and installs take turns.
#[derive(Debug)]
struct Applied {
    generation: u64,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// When the side file was last written.
    checkpointed: Instant,
    /// Whether entries were applied since.
    dirty: bool,
}

/// One generation of the store (`db-<generation>/`). Readers hold it through an
/// `Arc` while they read, without a lock: a snapshot install that replaces it
/// retires it instead of removing its directory, and the directory goes when the
/// last reader lets go (or at the next start, if the process stops first).
#[derive(Debug)]
pub struct Generation {
    db: Option<Db>,
    dir: PathBuf,
    retired: AtomicBool,
}

impl Generation {
    fn open(dir: PathBuf) -> Result<Generation> {
        Ok(Generation {
            db: Some(open_db(&dir)?),
            dir,
            retired: AtomicBool::new(false),
        })
    }

    /// Marks it replaced: its directory is removed once nothing holds it.
    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }
}

impl std::ops::Deref for Generation {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db
            .as_ref()
            .expect("the store is present until the generation drops")
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if !self.retired.load(Ordering::Acquire) {
            return;
        }
        let db = self.db.take();
        let dir = self.dir.clone();
        // Off the dropping thread, which may be an async worker ending a read.
        let remove = move || {
            drop(db);
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the replaced store");
            }
        };
        let spawned = std::thread::Builder::new()
            .name("flashlog-retire".into())
            .spawn(remove);
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a thread to remove the replaced store: left for the next start");
        }
    }
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    /// The store readers use; replaced by a snapshot install.
    db: RwLock<Arc<Generation>>,
    applied: Arc<Mutex<Applied>>,
    applied_index: AtomicU64,
    snapshots_built: AtomicU64,
    snapshots_installed: AtomicU64,
    receive_seq: AtomicU64,
}

/// The state machine of one node (cheap to clone: clones share it).
#[derive(Debug, Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

/// The snapshot data openraft moves around: an open snapshot file.
pub type SnapshotData = File;

fn db_dir(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("db-{generation}"))
}

fn open_db(path: &Path) -> Result<Db> {
    let options = DbOptions::default()
        .wal(Options::default().sync_policy(SyncPolicy::Manual))
        .auto_compact(AutoCompact::default());
    Ok(Db::open(path, options)?)
}

fn to_io(err: Error) -> std::io::Error {
    std::io::Error::other(err)
}

impl StateMachine {
    /// Opens (or creates) the state machine in `dir`: the store of the generation
    /// the side file names; leftovers of an interrupted install are removed.
    ///
    /// # Errors
    /// `Error::Io`, `Error::Damaged` for a side file that does not decode, the
    /// store's errors.
    pub fn open(dir: &Path) -> Result<StateMachine> {
        fs::create_dir_all(dir.join("snapshots")).map_err(io("create", dir))?;
        let side = dir.join(APPLIED_FILE);
        let file: AppliedFile = match read_optional(&side)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Damaged {
                path: side.clone(),
                what: e.to_string(),
            })?,
            None => AppliedFile::default(),
        };
        // Other generations: an install that crashed before (or after) switching.
        for entry in fs::read_dir(dir).map_err(io("list", dir))? {
            let entry = entry.map_err(io("list", dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(generation) = name.strip_prefix("db-") {
                if generation != file.generation.to_string() {
                    fs::remove_dir_all(entry.path()).map_err(io("remove", entry.path()))?;
                }
            }
        }
        for entry in fs::read_dir(dir.join("snapshots")).map_err(io("list", dir))? {
            let entry = entry.map_err(io("list", dir))?;
            if entry.file_name() != "current" {
                fs::remove_file(entry.path()).map_err(io("remove", entry.path()))?;
            }
        }
        let db = Generation::open(db_dir(dir, file.generation))?;
        let index = file.last_applied.map_or(0, |id| id.index);
        Ok(StateMachine {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                db: RwLock::new(Arc::new(db)),
                applied: Arc::new(Mutex::new(Applied {
                    generation: file.generation,
                    last_applied: file.last_applied,
                    membership: file.membership,
                    checkpointed: Instant::now(),
                    dirty: false,
                })),
                applied_index: AtomicU64::new(index),
                snapshots_built: AtomicU64::new(0),
                snapshots_installed: AtomicU64::new(0),
                receive_seq: AtomicU64::new(0),
            }),
        })
    }

    /// The store to read from (the current generation). Holding it keeps it
    /// readable even if a snapshot install replaces it meanwhile.
    pub fn db(&self) -> Arc<Generation> {
        Arc::clone(&self.shared.db.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.shared.applied_index.load(Ordering::Acquire)
    }

    /// Snapshots built and installed since the node started.
    pub fn snapshot_counts(&self) -> (u64, u64) {
        (
            self.shared.snapshots_built.load(Ordering::Relaxed),
            self.shared.snapshots_installed.load(Ordering::Relaxed),
        )
    }

    /// A fresh path in the snapshot directory to receive a snapshot into
    /// (removed at the next start if left behind).
    pub fn receive_path(&self) -> PathBuf {
        let n = self.shared.receive_seq.fetch_add(1, Ordering::Relaxed);
        self.shared
            .dir
            .join("snapshots")
            .join(format!("receive-{n}.tmp"))
    }

    fn current_snapshot_path(&self) -> PathBuf {
        self.shared.dir.join("snapshots").join("current")
    }

    /// Syncs the store, then records `applied` in the side file.
    fn checkpoint(&self, applied: &mut Applied) -> Result<()> {
        self.db().sync()?;
        let file = AppliedFile {
            generation: applied.generation,
            last_applied: applied.last_applied,
            membership: applied.membership.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&self.shared.dir.join(APPLIED_FILE), &bytes)?;
        applied.checkpointed = Instant::now();
        applied.dirty = false;
        Ok(())
    }

    /// Writes a final checkpoint (after Raft has stopped).
    ///
    /// # Errors
    /// The store's sync or the side file's write.
    pub async fn close(&self) -> Result<()> {
        let mut applied = self.shared.applied.lock().await;
        if applied.dirty {
            tokio::task::block_in_place(|| self.checkpoint(&mut applied))?;
        }
        self.db().close()?;
        Ok(())
    }

    fn apply_one(db: &Db, index: u64, command: &Command) -> std::io::Result<Response> {
        let refused = |e: &flashlog_kv::Error| Response {
            index,
            removed: None,
            refused: Some(e.to_string()),
        };
        let result = match command {
            Command::Put { key, value } => db.put(key, value).map(|()| None),
            Command::Delete { key } => db.delete(key).map(Some),
        };
        match result {
            Ok(removed) => Ok(Response {
                index,
                removed,
                refused: None,
            }),
            // Refused before anything was written: the same on every node.
            Err(e @ (flashlog_kv::Error::EmptyKey | flashlog_kv::Error::TooLarge { .. })) => {
                tracing::warn!(index, error = %e, "command refused by the state machine");
                Ok(refused(&e))
            }
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> std::io::Result<(Option<LogId>, StoredMembership)> {
        let applied = self.shared.applied.lock().await;
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> std::io::Result<()>
    where
        S: futures_util::Stream<Item = std::io::Result<EntryResponder<TypeConfig>>>
            + Unpin
            + OptionalSend,
    {
        // The whole batch first, then one trip off the async worker for all of it:
        // `block_in_place` per entry handed the worker to a new thread each time.
        let mut batch = Vec::new();
        while let Some(item) = entries.next().await {
            batch.push(item?);
        }
        let mut applied = self.shared.applied.lock().await;
        let db = self.db();
        let shared = &self.shared;
        let responders = tokio::task::block_in_place(|| {
            let mut responders = Vec::with_capacity(batch.len());
            for (entry, responder) in batch {
                let index = entry.log_id.index;
                let response = match &entry.payload {
                    EntryPayload::Normal(command) => Self::apply_one(&db, index, command)?,
                    EntryPayload::Membership(membership) => {
                        applied.membership =
                            StoredMembership::new(Some(entry.log_id), membership.clone());
                        Response {
                            index,
                            ..Response::default()
                        }
                    }
                    EntryPayload::Blank => Response {
                        index,
                        ..Response::default()
                    },
                };
                applied.last_applied = Some(entry.log_id);
                applied.dirty = true;
                shared.applied_index.store(index, Ordering::Release);
                if let Some(responder) = responder {
                    responders.push((responder, response));
                }
            }
            Ok::<_, std::io::Error>(responders)
        })?;
        // Answering before the checkpoint is safe: the entries are committed in
        // the log, and a restart re-applies whatever the side file does not cover.
        for (responder, response) in responders {
            responder.send(response);
        }
        if applied.checkpointed.elapsed() >= CHECKPOINT_INTERVAL {
            tokio::task::block_in_place(|| self.checkpoint(&mut applied)).map_err(to_io)?;
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: File,
    ) -> std::io::Result<()> {
        let mut applied = self.shared.applied.lock().await;
        let this = self.clone();
        let meta = meta.clone();
        let next = applied.generation + 1;
        let (meta, count) = tokio::task::block_in_place(move || -> Result<(SnapshotMeta, u64)> {
            let dir = &this.shared.dir;
            let new_dir = db_dir(dir, next);
            if new_dir.exists() {
                fs::remove_dir_all(&new_dir).map_err(io("remove", &new_dir))?;
            }
            let db = Generation::open(new_dir)?;
            let mut file = snapshot;
            let path = dir.join("snapshots").join("(received)");
            file.seek(SeekFrom::Start(0)).map_err(io("seek", &path))?;
            let (_, count) = snapshot::load(&file, &path, &db)?;
            db.sync()?;
            // Keep it as the current snapshot (a copy: the file may be the sender's).
            let current = this.current_snapshot_path();
            let tmp = current.with_extension("tmp");
            file.seek(SeekFrom::Start(0)).map_err(io("seek", &path))?;
            let mut out = File::create(&tmp).map_err(io("create", &tmp))?;
            std::io::copy(&mut file, &mut out).map_err(io("write", &tmp))?;
            out.sync_all().map_err(io("fsync", &tmp))?;
            fs::rename(&tmp, &current).map_err(io("rename to", &current))?;
            sync_dir(&dir.join("snapshots"))?;
            sync_dir(dir)?;
            // The switch: once the side file names the new generation, it is the state.
            let side = AppliedFile {
                generation: next,
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
            };
            let bytes = serde_json::to_vec(&side).map_err(|e| Error::Invalid(e.to_string()))?;
            write_atomic(&dir.join(APPLIED_FILE), &bytes)?;
            // Readers that took the old generation before the swap read on from it
            // (lock-free, after `db()` returned): it is retired, not removed, and
            // its directory goes when the last of them lets go.
            let old = std::mem::replace(
                &mut *this.shared.db.write().unwrap_or_else(|e| e.into_inner()),
                Arc::new(db),
            );
            old.retire();
            drop(old);
            Ok((meta, count))
        })
        .map_err(to_io)?;
        applied.generation = next;
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        applied.checkpointed = Instant::now();
        applied.dirty = false;
        self.shared
            .applied_index
            .store(meta.last_log_id.map_or(0, |id| id.index), Ordering::Release);
        self.shared
            .snapshots_installed
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(keys = count, last = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> std::io::Result<Option<SnapshotOf<TypeConfig, File>>> {
        let path = self.current_snapshot_path();
        // Open first: a newer snapshot renamed over `current` later leaves this
        // handle on the one whose meta is read from it.
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(to_io(io("open", &path)(e))),
        };
        let mut reader = file.try_clone().map_err(|e| to_io(io("open", &path)(e)))?;
        let meta = snapshot::read_meta_from(&mut reader, &path).map_err(to_io)?;
        Ok(Some(SnapshotOf::<TypeConfig, File> {
            meta,
            snapshot: file,
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = File;

    async fn build_snapshot(&mut self) -> std::io::Result<SnapshotOf<TypeConfig, File>> {
        // Applies wait while the store is scanned: the snapshot is exactly the
        // state at `last_applied`.
        let mut applied = Arc::clone(&self.shared.applied).lock_owned().await;
        let this = self.clone();
        let file = tokio::task::block_in_place(move || -> Result<(SnapshotMeta, File)> {
            this.checkpoint(&mut applied)?;
            let meta = SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
            };
            let current = this.current_snapshot_path();
            let tmp = current.with_extension("building");
            let count = snapshot::write(&this.db(), &meta, &tmp)?;
            fs::rename(&tmp, &current).map_err(io("rename to", &current))?;
            sync_dir(&this.shared.dir.join("snapshots"))?;
            tracing::info!(keys = count, last = ?meta.last_log_id, "snapshot built");
            let file = File::open(&current).map_err(io("open", &current))?;
            Ok((meta, file))
        })
        .map_err(to_io)?;
        self.shared.snapshots_built.fetch_add(1, Ordering::Relaxed);
        Ok(SnapshotOf::<TypeConfig, File> {
            meta: file.0,
            snapshot: file.1,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use openraft::vote::RaftLeaderId;

    use super::*;

    /// A snapshot file holding `pairs`, built in a scratch store under `dir`.
    fn snapshot_of(dir: &Path, pairs: &[(&[u8], &[u8])], last_index: u64) -> (SnapshotMeta, File) {
        let scratch = open_db(&dir.join("scratch")).unwrap();
        for (key, value) in pairs {
            scratch.put(key, value).unwrap();
        }
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(
                openraft::type_config::alias::LeaderIdOf::<TypeConfig>::new(1, 1).to_committed(),
                last_index,
            )),
            last_membership: StoredMembership::default(),
        };
        let path = dir.join("snap");
        snapshot::write(&scratch, &meta, &path).unwrap();
        (meta, File::open(&path).unwrap())
    }

    /// A reader takes the store (`db()`), then reads without a lock; a snapshot
    /// install that swaps in the next generation meanwhile must not remove the
    /// directory under it. It goes once the reader lets go.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_holding_the_store_across_an_install_reads_on() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::open(dir.path()).unwrap();
        sm.db().put(b"old", b"value before the snapshot").unwrap();
        sm.db().sync().unwrap();

        let reader = sm.db();
        let (meta, file) = snapshot_of(scratch.path(), &[(b"new", b"from the snapshot")], 7);
        sm.install_snapshot(&meta, file).await.unwrap();

        // The new generation serves new readers.
        assert_eq!(
            sm.db().get(b"new").unwrap().as_deref(),
            Some(&b"from the snapshot"[..])
        );
        assert_eq!(sm.db().get(b"old").unwrap(), None);
        assert_eq!(sm.applied_index(), 7);
        // The reader that took the old one reads on, its files in place.
        let old_dir = db_dir(dir.path(), 0);
        assert!(
            old_dir.exists(),
            "the old generation was removed under a reader"
        );
        assert_eq!(
            reader.get(b"old").unwrap().as_deref(),
            Some(&b"value before the snapshot"[..])
        );
        assert_eq!(reader.stats().keys, 1);

        drop(reader);
        let deadline = Instant::now() + Duration::from_secs(10);
        while old_dir.exists() {
            assert!(
                Instant::now() < deadline,
                "the retired generation was never removed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(db_dir(dir.path(), 1).exists());
    }

    /// With no reader holding it, the replaced generation goes right after the
    /// install, and a restart opens the new one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_install_without_readers_removes_the_old_generation_and_survives_restart() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::open(dir.path()).unwrap();
        sm.db().put(b"old", b"x").unwrap();
        let (meta, file) = snapshot_of(scratch.path(), &[(b"new", b"y")], 3);
        sm.install_snapshot(&meta, file).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while db_dir(dir.path(), 0).exists() {
            assert!(
                Instant::now() < deadline,
                "the replaced generation was never removed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        sm.close().await.unwrap();
        drop(sm);
        let mut sm = StateMachine::open(dir.path()).unwrap();
        assert_eq!(sm.db().get(b"new").unwrap().as_deref(), Some(&b"y"[..]));
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|id| id.index), Some(3));
    }
}
