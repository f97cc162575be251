//! [`SimFs`]: an in-memory file system that knows what a power loss would keep.
//!
//! Per file it keeps the durable bytes (as of the last `sync_data`) and the current
//! ones; per directory the durable names (as of the last `sync_dir`) and the current
//! ones. Every change not yet durable sits in one ordered log, which the
//! [crash models](crate::CrashModel) replay in part. Semantics, as on Linux:
//!
//! - `sync_data` makes a file's bytes and size durable, not its name: a file created
//!   in a directory that was never synced vanishes in a crash, data and all.
//! - Creating, renaming and removing a name are durable only once its directory is
//!   synced; until then a crash reverts them.
//! - Open files are handles on inodes: they keep working after a rename or removal.
//! - Directories themselves are durable as soon as they are created (a
//!   simplification: the log's directory is created once, before any test counts).
//! - `lock` tracks locks in memory and creates no file.
//! - Renames across directories are not supported (`ErrorKind::Unsupported`).

mod file;
pub(crate) mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use flashlog_wal::fs::{Fs, FsFile, OpenMode};

use crate::hook_fs::Call;
use crate::sim_fault::SimFault;
use file::SimFile;
use state::{normal, split, Change, Inode, Sim};

pub(crate) fn lock(sim: &Mutex<Sim>) -> MutexGuard<'_, Sim> {
    sim.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A simulated file system; clones share one state. Give it to a log with
/// `Options::default().fs(Arc::new(sim.clone()))`.
///
/// ```
/// use std::path::Path;
/// use std::sync::Arc;
/// use flashlog_testkit::{CrashModel, SimFs};
/// use flashlog_wal::{Op, Options, Wal};
///
/// let sim = SimFs::new();
/// let wal = Wal::open("/log", Options::default().fs(Arc::new(sim.clone())))?;
/// assert_eq!(wal.append(Op::Put, b"k", b"v")?, 1);
/// let after = sim.crash(CrashModel::DropUnsynced); // the power goes out
/// drop(wal);
/// let wal = Wal::open("/log", Options::default().fs(Arc::new(after)))?;
/// assert_eq!(wal.read(1)?.value(), b"v");
/// # Ok::<(), flashlog_wal::Error>(())
/// ```
#[derive(Clone)]
pub struct SimFs {
    pub(crate) sim: Arc<Mutex<Sim>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sim = lock(&self.sim);
        f.debug_struct("SimFs")
            .field("files", &sim.inodes.len())
            .field("pending", &sim.pending.len())
            .field("mutations", &sim.faults.mutations)
            .finish_non_exhaustive()
    }
}

impl Default for SimFs {
    fn default() -> SimFs {
        SimFs::new()
    }
}

impl SimFs {
    /// An empty file system holding only `/` and `.`.
    pub fn new() -> SimFs {
        SimFs::from_sim(Sim::new())
    }

    pub(crate) fn from_sim(sim: Sim) -> SimFs {
        SimFs {
            sim: Arc::new(Mutex::new(sim)),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, Sim> {
        lock(&self.sim)
    }

    /// Fails calls as `fault` says (replacing any earlier fault); `None` clears it.
    pub fn set_fault(&self, fault: Option<SimFault>) {
        let mut sim = self.state();
        sim.faults.fault = fault;
        // `nth` counts from here: a fault set after another counts its own calls.
        sim.faults.counted = 0;
    }

    /// How many times the fault struck so far.
    pub fn fault_strikes(&self) -> u64 {
        self.state().faults.struck
    }

    /// Freezes the file system after `mutations` more successful mutating calls:
    /// later ones fail with `EIO` and change nothing, as if power was lost right
    /// after that call. `None` lifts it.
    pub fn crash_after(&self, mutations: Option<u64>) {
        let mut sim = self.state();
        let base = sim.faults.mutations;
        sim.faults.crash_after = mutations.map(|n| base + n);
    }

    /// Mutating calls that went ahead so far: the crash points.
    pub fn mutations(&self) -> u64 {
        self.state().faults.mutations
    }

    /// Calls of any kind so far.
    pub fn calls(&self) -> u64 {
        self.state().faults.calls
    }

    /// Changes not yet durable, oldest first.
    pub fn pending(&self) -> Vec<Change> {
        self.state().pending.clone()
    }

    /// An independent copy of the current state (durable and current parts, pending
    /// changes), without faults or locks.
    pub fn snapshot(&self) -> SimFs {
        let sim = self.state();
        let copy = Sim {
            inodes: sim.inodes.clone(),
            dirs: sim.dirs.clone(),
            pending: sim.pending.clone(),
            next_ino: sim.next_ino,
            ..Sim::new()
        };
        SimFs::from_sim(copy)
    }

    /// The current bytes of the file at `path`, if it exists.
    pub fn read(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let sim = self.state();
        let ino = sim.lookup(&normal(path.as_ref()))?;
        sim.inodes.get(&ino).map(|inode| inode.current.clone())
    }

    /// The durable bytes of the file a durable name `path` reaches, if any: what
    /// [`CrashModel::DropUnsynced`](crate::CrashModel::DropUnsynced) would keep.
    pub fn read_durable(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let sim = self.state();
        let (dir, name) = split(&normal(path.as_ref()))?;
        let ino = *sim.dirs.get(&dir)?.durable.get(&name)?;
        sim.inodes.get(&ino).map(|inode| inode.durable.clone())
    }

    /// Writes a whole file durably (name and bytes), replacing any file of that
    /// name: for building damaged logs. The directory must exist.
    ///
    /// # Panics
    /// If the directory does not exist.
    pub fn put_durable(&self, path: impl AsRef<Path>, bytes: &[u8]) {
        let mut sim = self.state();
        let path = normal(path.as_ref());
        let (dir, name) = split(&path).expect("a file path");
        let ino = sim.next_ino;
        sim.next_ino += 1;
        sim.inodes.insert(
            ino,
            Inode {
                durable: bytes.to_vec(),
                current: bytes.to_vec(),
            },
        );
        let directory = sim.dirs.get_mut(&dir).expect("the directory exists");
        directory.durable.insert(name.clone(), ino);
        directory.current.insert(name, ino);
    }

    /// Removes a file durably, if it exists.
    pub fn remove_durable(&self, path: impl AsRef<Path>) {
        let mut sim = self.state();
        if let Some((dir, name)) = split(&normal(path.as_ref())) {
            if let Some(directory) = sim.dirs.get_mut(&dir) {
                directory.durable.remove(&name);
                directory.current.remove(&name);
            }
        }
    }

    /// Every file as a process would find it now (current names and bytes,
    /// synced or not), by path: what a check compares before and after an
    /// operation that must change nothing.
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let sim = self.state();
        let mut files = BTreeMap::new();
        for (dir, names) in &sim.dirs {
            for (name, ino) in &names.current {
                if let Some(inode) = sim.inodes.get(ino) {
                    files.insert(dir.join(name), inode.current.clone());
                }
            }
        }
        files
    }

    /// The current names in a directory, sorted.
    pub fn names(&self, dir: impl AsRef<Path>) -> Vec<String> {
        let sim = self.state();
        sim.dirs
            .get(&normal(dir.as_ref()))
            .map(|d| d.current.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A hash of everything a reboot would find (durable names and bytes), for
    /// skipping crash images already checked.
    pub fn durable_fingerprint(&self) -> u64 {
        let sim = self.state();
        let mut hasher = DefaultHasher::new();
        for (path, dir) in &sim.dirs {
            path.hash(&mut hasher);
            for (name, ino) in &dir.durable {
                name.hash(&mut hasher);
                if let Some(inode) = sim.inodes.get(ino) {
                    inode.durable.hash(&mut hasher);
                }
            }
        }
        hasher.finish()
    }

    fn check(&self, kind: Call) -> io::Result<MutexGuard<'_, Sim>> {
        let mut sim = self.state();
        sim.faults.check(kind)?;
        Ok(sim)
    }
}

fn not_found() -> io::Error {
    io::Error::from(ErrorKind::NotFound)
}

fn parts(path: &Path) -> io::Result<(PathBuf, String)> {
    split(&normal(path)).ok_or_else(|| io::Error::from(ErrorKind::InvalidInput))
}

impl Fs for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.check(Call::CreateDirAll)?;
        let path = normal(path);
        for dir in path.ancestors() {
            if dir.as_os_str().is_empty() {
                continue;
            }
            sim.dirs.entry(dir.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let sim = self.check(Call::ListDir)?;
        let path = normal(path);
        let dir = sim.dirs.get(&path).ok_or_else(not_found)?;
        let mut names: Vec<String> = dir.current.keys().cloned().collect();
        for child in sim.dirs.keys() {
            if child.parent() == Some(path.as_path()) {
                if let Some(name) = child.file_name().and_then(|n| n.to_str()) {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let creates = matches!(mode, OpenMode::CreateNew | OpenMode::CreateTruncate);
        let kind = if creates { Call::Create } else { Call::Open };
        let mut sim = self.check(kind)?;
        let path = normal(path);
        if sim.dirs.contains_key(&path) {
            return Err(io::Error::from_raw_os_error(21)); // EISDIR
        }
        let (dir, name) = parts(&path)?;
        if !sim.dirs.contains_key(&dir) {
            return Err(not_found());
        }
        let existing = sim.lookup(&path);
        let ino = match (mode, existing) {
            (OpenMode::Read | OpenMode::ReadWrite, None) => return Err(not_found()),
            (OpenMode::Read | OpenMode::ReadWrite, Some(ino)) => ino,
            (OpenMode::CreateNew, Some(_)) => return Err(ErrorKind::AlreadyExists.into()),
            (OpenMode::CreateTruncate, Some(ino)) => {
                if sim.inodes.get(&ino).is_some_and(|i| !i.current.is_empty()) {
                    sim.record(Change::SetLen { ino, len: 0 });
                }
                ino
            }
            (OpenMode::CreateNew | OpenMode::CreateTruncate, None) => {
                let ino = sim.next_ino;
                sim.next_ino += 1;
                sim.inodes.insert(ino, Inode::default());
                sim.record(Change::Link { dir, name, ino });
                ino
            }
        };
        Ok(Box::new(SimFile {
            sim: Arc::clone(&self.sim),
            ino,
            writable: mode != OpenMode::Read,
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.check(Call::RemoveFile)?;
        let path = normal(path);
        if sim.lookup(&path).is_none() {
            return Err(not_found());
        }
        let (dir, name) = parts(&path)?;
        sim.record(Change::Unlink { dir, name });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut sim = self.check(Call::Rename)?;
        let (dir, from_name) = parts(from)?;
        let (to_dir, to_name) = parts(to)?;
        if dir != to_dir {
            return Err(ErrorKind::Unsupported.into());
        }
        if sim.lookup(&normal(from)).is_none() {
            return Err(not_found());
        }
        sim.record(Change::Rename {
            dir,
            from: from_name,
            to: to_name,
        });
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut sim = self.check(Call::SyncDir)?;
        let path = normal(path);
        if !sim.dirs.contains_key(&path) {
            return Err(not_found());
        }
        sim.sync_names(&path);
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        let mut sim = self.check(Call::Lock)?;
        let path = normal(path);
        if !sim.locks.insert(path.clone()) {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(LockGuard {
            sim: Arc::clone(&self.sim),
            path,
        }))
    }
}

/// Holds a simulated lock until dropped.
struct LockGuard {
    sim: Arc<Mutex<Sim>>,
    path: PathBuf,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("path", &self.path)
            .finish()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        lock(&self.sim).locks.remove(&self.path);
    }
}

impl SimFs {
    /// How many `write_at` calls went ahead so far.
    pub fn state_writes(&self) -> u64 {
        self.state().faults.writes
    }
}
