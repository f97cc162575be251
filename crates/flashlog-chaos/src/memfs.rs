//! [`MemFs`], an in-memory [`Fs`]: fast enough for millions of fuzz cases, and with
//! a snapshot of every file so a check can see what an open changed.
//!
//! It models a file system that never crashes: what is written is kept, syncs do
//! nothing. Crash simulation is the job of `flashlog-testkit`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use flashlog_wal::fs::{Fs, FsFile, OpenMode};

type Bytes = Arc<RwLock<Vec<u8>>>;

#[derive(Debug, Default)]
struct Tree {
    dirs: BTreeSet<PathBuf>,
    files: BTreeMap<PathBuf, Bytes>,
    locks: BTreeSet<PathBuf>,
}

/// An in-memory file system; clones share the same files.
///
/// ```
/// use std::sync::Arc;
/// use flashlog_chaos::MemFs;
/// use flashlog_wal::{Op, Options, Wal};
///
/// let fs = MemFs::new();
/// let wal = Wal::open("/log", Options::default().fs(Arc::new(fs.clone())))?;
/// wal.append(Op::Put, b"k", b"v")?;
/// wal.close()?;
/// assert_eq!(fs.read("/log/segment-0001.log").map(|b| b.len()), Some(19));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    tree: Arc<Mutex<Tree>>,
}

impl MemFs {
    /// An empty file system (not even `/` exists until a directory is created).
    pub fn new() -> MemFs {
        MemFs::default()
    }

    fn tree(&self) -> MutexGuard<'_, Tree> {
        self.tree
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Creates (or replaces) a file with these bytes, creating its directory.
    pub fn insert(&self, path: impl AsRef<Path>, bytes: Vec<u8>) {
        let path = path.as_ref();
        let mut tree = self.tree();
        if let Some(parent) = path.parent() {
            add_dirs(&mut tree, parent);
        }
        tree.files
            .insert(path.to_path_buf(), Arc::new(RwLock::new(bytes)));
    }

    /// The bytes of a file, if it exists.
    pub fn read(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let tree = self.tree();
        let file = tree.files.get(path.as_ref())?;
        let bytes = file.read().unwrap_or_else(|poison| poison.into_inner());
        Some(bytes.clone())
    }

    /// Every file and its bytes.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let tree = self.tree();
        tree.files
            .iter()
            .map(|(path, bytes)| {
                let bytes = bytes.read().unwrap_or_else(|poison| poison.into_inner());
                (path.clone(), bytes.clone())
            })
            .collect()
    }
}

fn add_dirs(tree: &mut Tree, dir: &Path) {
    for ancestor in dir.ancestors() {
        tree.dirs.insert(ancestor.to_path_buf());
    }
}

fn not_found() -> io::Error {
    io::Error::from(ErrorKind::NotFound)
}

#[derive(Debug)]
struct MemFile {
    bytes: Bytes,
    writable: bool,
}

impl FsFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let bytes = self
            .bytes
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        if !self.writable {
            return Err(ErrorKind::PermissionDenied.into());
        }
        let mut bytes = self
            .bytes
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let start =
            usize::try_from(offset).map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
        if bytes.len() < start + buf.len() {
            bytes.resize(start + buf.len(), 0);
        }
        bytes[start..start + buf.len()].copy_from_slice(buf);
        Ok(buf.len())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if !self.writable {
            return Err(ErrorKind::PermissionDenied.into());
        }
        let len = usize::try_from(len).map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
        let mut bytes = self
            .bytes
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        bytes.resize(len, 0);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let bytes = self
            .bytes
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        Ok(bytes.len() as u64)
    }
}

/// Held while a [`MemFs`] lock is taken; releases it when dropped.
struct MemLock {
    fs: MemFs,
    path: PathBuf,
}

impl fmt::Debug for MemLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemLock").field("path", &self.path).finish()
    }
}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.fs.tree().locks.remove(&self.path);
    }
}

impl Fs for MemFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        if self.tree().files.contains_key(path) {
            return Err(ErrorKind::AlreadyExists.into());
        }
        add_dirs(&mut self.tree(), path);
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let tree = self.tree();
        if !tree.dirs.contains(path) {
            return Err(not_found());
        }
        let files = tree.files.keys().chain(tree.dirs.iter());
        Ok(files
            .filter(|child| child.parent() == Some(path))
            .filter_map(|child| child.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let mut tree = self.tree();
        if !path
            .parent()
            .is_some_and(|parent| tree.dirs.contains(parent))
        {
            return Err(not_found());
        }
        let existing = tree.files.get(path).cloned();
        let bytes = match (mode, existing) {
            (OpenMode::Read | OpenMode::ReadWrite, Some(bytes)) => bytes,
            (OpenMode::Read | OpenMode::ReadWrite, None) => return Err(not_found()),
            (OpenMode::CreateNew, Some(_)) => return Err(ErrorKind::AlreadyExists.into()),
            (OpenMode::CreateTruncate, Some(bytes)) => {
                bytes
                    .write()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .clear();
                bytes
            }
            (OpenMode::CreateNew | OpenMode::CreateTruncate, None) => {
                let bytes = Bytes::default();
                tree.files.insert(path.to_path_buf(), Arc::clone(&bytes));
                bytes
            }
        };
        Ok(Box::new(MemFile {
            bytes,
            writable: mode != OpenMode::Read,
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.tree()
            .files
            .remove(path)
            .map(drop)
            .ok_or_else(not_found)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut tree = self.tree();
        let bytes = tree.files.remove(from).ok_or_else(not_found)?;
        tree.files.insert(to.to_path_buf(), bytes);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        // The log asks for "." when it created a top-level directory such as "/log".
        if path == Path::new(".") || self.tree().dirs.contains(path) {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        let mut tree = self.tree();
        if !tree.locks.insert(path.to_path_buf()) {
            return Err(ErrorKind::WouldBlock.into());
        }
        if !tree.files.contains_key(path) {
            tree.files.insert(path.to_path_buf(), Bytes::default());
        }
        Ok(Box::new(MemLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }
}
