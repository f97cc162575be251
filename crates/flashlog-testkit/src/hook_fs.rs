//! [`HookFs`]: the one forwarding wrapper of the test kit. It passes every call to
//! another [`Fs`] (the real disk, or a [`SimFs`](crate::SimFs)) and lets its
//! [`Hooks`] see each call first, fail it, cut a write short, or count what a read
//! returned. [`DelayFs`](crate::DelayFs) (sleeps before calls) and
//! [`FaultyDiskFs`](crate::FaultyDiskFs) (counts calls, fails the Nth) are
//! hooks on it, and so is any test's own wrapper: a test writes only what differs
//! from plain forwarding.
//!
//! ```
//! use std::io;
//! use std::sync::Arc;
//! use flashlog_testkit::hook_fs::{Call, CallOn, HookFs, Hooks};
//! use flashlog_wal::fs::StdFs;
//! use flashlog_wal::{Options, Wal, INDEX_FILE};
//!
//! /// Every open of the checkpoint fails with EACCES.
//! #[derive(Debug)]
//! struct Unreadable;
//!
//! impl Hooks for Unreadable {
//!     fn before(&self, on: &CallOn<'_>) -> io::Result<()> {
//!         if on.call == Call::Open && on.path.ends_with(INDEX_FILE) {
//!             return Err(io::Error::from_raw_os_error(13));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let fs = HookFs::wrap(Arc::new(StdFs), Arc::new(Unreadable));
//! let wal = Wal::open(dir.path(), Options::default().fs(Arc::new(fs)))?;
//! wal.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flashlog_wal::fs::{Fs, FsFile, OpenMode};

/// A kind of file-system call: what a [`HookFs`] forwards, what a [`DelayFs`]
/// delays and what a [`SimFault`] counts.
///
/// [`DelayFs`]: crate::DelayFs
/// [`SimFault`]: crate::SimFault
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// [`FsFile::read_at`].
    ReadAt,
    /// [`FsFile::write_at`].
    WriteAt,
    /// [`FsFile::sync_data`].
    SyncData,
    /// [`FsFile::set_len`].
    SetLen,
    /// [`FsFile::len`].
    Len,
    /// [`FsFile::drop_cache`].
    DropCache,
    /// [`Fs::open`] of an existing file (`Read`, `ReadWrite`).
    Open,
    /// [`Fs::open`] that may create the file (`CreateNew`, `CreateTruncate`).
    Create,
    /// [`Fs::remove_file`].
    RemoveFile,
    /// [`Fs::rename`].
    Rename,
    /// [`Fs::list_dir`].
    ListDir,
    /// [`Fs::sync_dir`].
    SyncDir,
    /// [`Fs::create_dir_all`].
    CreateDirAll,
    /// [`Fs::lock`].
    Lock,
}

impl Call {
    /// Every kind of call.
    pub const ALL: [Call; 14] = [
        Call::ReadAt,
        Call::WriteAt,
        Call::SyncData,
        Call::SetLen,
        Call::Len,
        Call::DropCache,
        Call::Open,
        Call::Create,
        Call::RemoveFile,
        Call::Rename,
        Call::ListDir,
        Call::SyncDir,
        Call::CreateDirAll,
        Call::Lock,
    ];

    /// Its place in [`Call::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the call can change what is on disk: the crash points.
    pub fn is_mutation(self) -> bool {
        matches!(
            self,
            Call::WriteAt
                | Call::SyncData
                | Call::SetLen
                | Call::CreateDirAll
                | Call::Create
                | Call::RemoveFile
                | Call::Rename
                | Call::SyncDir
        )
    }
}

/// One call, as [`Hooks::before`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct CallOn<'a> {
    /// What kind of call.
    pub call: Call,
    /// The file or directory it is on (for a rename, the old name).
    pub path: &'a Path,
}

/// What a [`HookFs`] does besides forwarding; every method has a default that
/// changes nothing.
pub trait Hooks: Send + Sync + fmt::Debug + 'static {
    /// Called before each call is forwarded; an error fails the call, which is
    /// then not forwarded.
    fn before(&self, on: &CallOn<'_>) -> io::Result<()> {
        let _ = on;
        Ok(())
    }

    /// How many bytes of a `len`-byte write to pass on (a short write when fewer).
    fn write_len(&self, len: usize) -> usize {
        len
    }

    /// Called after a read of `path` returned `bytes` bytes.
    fn after_read(&self, path: &Path, bytes: usize) {
        let _ = (path, bytes);
    }
}

/// A file system that forwards every call to `inner` through its [`Hooks`].
/// Clones share the hooks.
pub struct HookFs<H> {
    inner: Arc<dyn Fs>,
    hooks: Arc<H>,
}

impl<H> Clone for HookFs<H> {
    fn clone(&self) -> HookFs<H> {
        HookFs {
            inner: Arc::clone(&self.inner),
            hooks: Arc::clone(&self.hooks),
        }
    }
}

impl<H: fmt::Debug> fmt::Debug for HookFs<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookFs")
            .field("inner", &self.inner)
            .field("hooks", &self.hooks)
            .finish()
    }
}

impl<H: Hooks> HookFs<H> {
    /// `inner` behind `hooks` (shared with whoever else holds them).
    pub fn wrap(inner: Arc<dyn Fs>, hooks: Arc<H>) -> HookFs<H> {
        HookFs { inner, hooks }
    }

    /// The hooks.
    pub fn hooks(&self) -> &Arc<H> {
        &self.hooks
    }

    fn before(&self, call: Call, path: &Path) -> io::Result<()> {
        self.hooks.before(&CallOn { call, path })
    }
}

#[derive(Debug)]
struct HookFile<H> {
    inner: Box<dyn FsFile>,
    hooks: Arc<H>,
    path: PathBuf,
}

impl<H: Hooks> HookFile<H> {
    fn before(&self, call: Call) -> io::Result<()> {
        self.hooks.before(&CallOn {
            call,
            path: &self.path,
        })
    }
}

impl<H: Hooks> FsFile for HookFile<H> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.before(Call::ReadAt)?;
        let read = self.inner.read_at(buf, offset)?;
        self.hooks.after_read(&self.path, read);
        Ok(read)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.before(Call::WriteAt)?;
        let len = self.hooks.write_len(buf.len()).min(buf.len());
        self.inner.write_at(&buf[..len], offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.before(Call::SyncData)?;
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.before(Call::SetLen)?;
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.before(Call::Len)?;
        self.inner.len()
    }
    fn drop_cache(&self) -> io::Result<()> {
        self.before(Call::DropCache)?;
        self.inner.drop_cache()
    }
}

impl<H: Hooks> Fs for HookFs<H> {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.before(Call::CreateDirAll, path)?;
        self.inner.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.before(Call::ListDir, path)?;
        self.inner.list_dir(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let call = match mode {
            OpenMode::CreateNew | OpenMode::CreateTruncate => Call::Create,
            OpenMode::Read | OpenMode::ReadWrite => Call::Open,
        };
        self.hooks.before(&CallOn { call, path })?;
        Ok(Box::new(HookFile {
            inner: self.inner.open(path, mode)?,
            hooks: Arc::clone(&self.hooks),
            path: path.to_path_buf(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.before(Call::RemoveFile, path)?;
        self.inner.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.before(Call::Rename, from)?;
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.before(Call::SyncDir, path)?;
        self.inner.sync_dir(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        self.before(Call::Lock, path)?;
        self.inner.lock(path)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::SimFs;

    /// Records every call and fails removals.
    #[derive(Debug, Default)]
    struct Record(Mutex<Vec<(Call, PathBuf)>>);

    impl Hooks for Record {
        fn before(&self, on: &CallOn<'_>) -> io::Result<()> {
            let seen = (on.call, on.path.to_path_buf());
            self.0.lock().unwrap().push(seen);
            if on.call == Call::RemoveFile {
                return Err(io::Error::from_raw_os_error(1));
            }
            Ok(())
        }
        fn write_len(&self, len: usize) -> usize {
            len.min(2)
        }
    }

    #[test]
    fn hooks_see_every_call_and_may_fail_or_shorten_it() {
        let sim = SimFs::new();
        let fs = HookFs::wrap(Arc::new(sim.clone()), Arc::new(Record::default()));
        fs.create_dir_all(Path::new("/d")).unwrap();
        let file = fs.open(Path::new("/d/f"), OpenMode::CreateNew).unwrap();
        assert_eq!(file.write_at(b"hello", 0).unwrap(), 2);
        file.sync_data().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(file.read_at(&mut buf, 0).unwrap(), 2);
        fs.rename(Path::new("/d/f"), Path::new("/d/g")).unwrap();
        let failed = fs.remove_file(Path::new("/d/g")).unwrap_err();
        assert_eq!(failed.raw_os_error(), Some(1));
        assert_eq!(sim.read("/d/g").as_deref(), Some(&b"he"[..]));
        let seen = fs.hooks().0.lock().unwrap().clone();
        let calls: Vec<Call> = seen.iter().map(|(call, _)| *call).collect();
        assert_eq!(
            calls,
            [
                Call::CreateDirAll,
                Call::Create,
                Call::WriteAt,
                Call::SyncData,
                Call::ReadAt,
                Call::Rename,
                Call::RemoveFile
            ]
        );
        assert_eq!(seen[1], (Call::Create, PathBuf::from("/d/f")));
        assert_eq!(
            seen[4].1,
            PathBuf::from("/d/f"),
            "a file's calls name its path"
        );
    }
}
