//! The file-system seam: every file the log touches is reached through [`Fs`].
//!
//! [`StdFs`] is the real file system. Test kits implement [`Fs`] to simulate crashes
//! (unsynced bytes lost or torn) and to fail chosen operations. The traits speak
//! `std::io`; the crate-private `Dir` wrapper adds the operation and path to every error.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

/// How [`Fs::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; the file must not exist yet, and is created empty.
    CreateNew,
    /// Write; the file is created or emptied.
    CreateTruncate,
}

/// One open file.
pub trait FsFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at
    /// the end of the file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes up to `buf.len()` bytes at `offset`; returns how many were written.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Makes the file's data (and the metadata needed to read it) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's size in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Drops the file's clean pages from the operating system's cache, so that the
    /// next reads come from the disk. Recovery calls it on the newest segment before
    /// reading it: after a failed fsync the kernel may keep pages it never wrote,
    /// marked clean, and reading them would take lost data for data on disk. The
    /// default does nothing (for a file system without such a cache).
    fn drop_cache(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A file system: the directory operations the log needs.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents if missing.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory, in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Opens a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes a directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing) for as long as the
    /// returned guard lives; `ErrorKind::WouldBlock` if someone else holds it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn fmt::Debug + Send + Sync>>;
}

/// The real file system, through `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(File);

impl FsFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    #[cfg(target_os = "linux")]
    fn drop_cache(&self) -> io::Result<()> {
        // Dirty pages stay (and are still what the file holds); clean ones go.
        rustix::fs::fadvise(&self.0, 0, None, rustix::fs::Advice::DontNeed).map_err(io::Error::from)
    }
}

impl Fs for StdFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::Read => options.read(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::CreateNew => options.read(true).write(true).create_new(true),
            OpenMode::CreateTruncate => options.write(true).create(true).truncate(true),
        };
        Ok(Box::new(StdFile(options.open(path)?)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(FileLock(file))),
            Err(fs::TryLockError::WouldBlock) => Err(ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(err)) => Err(err),
        }
    }
}

/// A held `flock`. Dropping it unlocks explicitly: the lock belongs to the open
/// file description, which a child process forked by another thread shares until it
/// execs, so merely closing our descriptor could leave the directory locked.
#[derive(Debug)]
struct FileLock(File);

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// An open file together with its path, whose methods return [`Error`]s that name
/// the operation and the path.
#[derive(Debug)]
pub(crate) struct PathFile {
    path: PathBuf,
    file: Box<dyn FsFile>,
}

impl PathFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads exactly `buf.len()` bytes at `offset`; a short file is an
    /// `UnexpectedEof` I/O error.
    pub(crate) fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> Result<()> {
        while !buf.is_empty() {
            match self.file.read_at(buf, offset) {
                Ok(0) => {
                    let eof = io::Error::new(ErrorKind::UnexpectedEof, "file ends early");
                    return Err(Error::io("read", &self.path, eof));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(Error::io("read", &self.path, err)),
            }
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes at `offset`, stopping early only at the end of
    /// the file; returns how many were read.
    pub(crate) fn read_up_to(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(Error::io("read", &self.path, err)),
            }
        }
        Ok(filled)
    }

    /// Writes all of `buf` at `offset`.
    pub(crate) fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> Result<()> {
        while !buf.is_empty() {
            match self.file.write_at(buf, offset) {
                Ok(0) => {
                    let err = io::Error::new(ErrorKind::WriteZero, "wrote zero bytes");
                    return Err(Error::io("write", &self.path, err));
                }
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(Error::io("write", &self.path, err)),
            }
        }
        Ok(())
    }

    pub(crate) fn sync_data(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|err| Error::io("fsync", &self.path, err))
    }

    pub(crate) fn set_len(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|err| Error::io("truncate", &self.path, err))
    }

    pub(crate) fn drop_cache(&self) -> Result<()> {
        self.file
            .drop_cache()
            .map_err(|err| Error::io("drop the cached pages of", &self.path, err))
    }

    pub(crate) fn len(&self) -> Result<u64> {
        self.file
            .len()
            .map_err(|err| Error::io("stat", &self.path, err))
    }
}

/// A directory on a file system, whose methods return [`Error`]s that name the
/// operation and the path.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    fs: Arc<dyn Fs>,
    path: PathBuf,
}

impl Dir {
    pub(crate) fn new(fs: Arc<dyn Fs>, path: PathBuf) -> Dir {
        Dir { fs, path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates the directory if it is missing, and makes its creation durable by
    /// fsyncing the parent of every directory level it created.
    pub(crate) fn create(&self) -> Result<()> {
        let missing: Vec<&Path> = self
            .path
            .ancestors()
            .take_while(|dir| !dir.as_os_str().is_empty() && self.fs.list_dir(dir).is_err())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.fs
            .create_dir_all(&self.path)
            .map_err(|err| Error::io("create directory", &self.path, err))?;
        for dir in missing {
            let parent = match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            self.fs
                .sync_dir(parent)
                .map_err(|err| Error::io("fsync directory", parent, err))?;
        }
        Ok(())
    }

    pub(crate) fn list(&self) -> Result<Vec<String>> {
        self.fs
            .list_dir(&self.path)
            .map_err(|err| Error::io("list directory", &self.path, err))
    }

    pub(crate) fn open(&self, name: &str, mode: OpenMode) -> Result<PathFile> {
        let path = self.join(name);
        let op = match mode {
            OpenMode::Read | OpenMode::ReadWrite => "open",
            OpenMode::CreateNew | OpenMode::CreateTruncate => "create",
        };
        match self.fs.open(&path, mode) {
            Ok(file) => Ok(PathFile { path, file }),
            Err(err) => Err(Error::io(op, path, err)),
        }
    }

    /// Opens a file that may be missing: `Ok(None)` if it does not exist.
    pub(crate) fn open_if_exists(&self, name: &str, mode: OpenMode) -> Result<Option<PathFile>> {
        match self.open(name, mode) {
            Ok(file) => Ok(Some(file)),
            Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub(crate) fn remove(&self, name: &str) -> Result<()> {
        let path = self.join(name);
        self.fs
            .remove_file(&path)
            .map_err(|err| Error::io("remove", path, err))
    }

    /// Removes a file that may be missing (a step being redone, a leftover that may
    /// not be there); returns whether there was one.
    pub(crate) fn remove_if_exists(&self, name: &str) -> Result<bool> {
        match self.remove(name) {
            Ok(()) => Ok(true),
            Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Replaces `name` with `bytes` atomically and durably: written to `tmp_name`,
    /// fdatasynced, renamed over `name`, then the directory fsynced.
    pub(crate) fn replace_durably(&self, name: &str, tmp_name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = self.open(tmp_name, OpenMode::CreateTruncate)?;
        tmp.write_all_at(bytes, 0)?;
        tmp.sync_data()?;
        drop(tmp);
        self.rename(tmp_name, name)?;
        self.sync()
    }

    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<()> {
        let from = self.join(from);
        self.fs
            .rename(&from, &self.join(to))
            .map_err(|err| Error::io("rename", from, err))
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.fs
            .sync_dir(&self.path)
            .map_err(|err| Error::io("fsync directory", &self.path, err))
    }

    pub(crate) fn lock(&self, name: &str) -> Result<Box<dyn fmt::Debug + Send + Sync>> {
        let path = self.join(name);
        match self.fs.lock(&path) {
            Ok(guard) => Ok(guard),
            Err(err) if err.kind() == ErrorKind::WouldBlock => Err(Error::Locked { path }),
            Err(err) => Err(Error::io("lock", path, err)),
        }
    }
}
