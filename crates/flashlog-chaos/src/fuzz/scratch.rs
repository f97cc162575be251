//! [`Scratch`]: a log directory laid out from fuzz bytes, in memory ([`SimFs`]) or
//! in a temporary directory on disk, with a snapshot of its files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flashlog_wal::fs::{Fs, StdFs};
use flashlog_wal::{Options, LOCK_FILE};

use flashlog_testkit::SimFs;

/// Where a check lays out its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// In a [`SimFs`]: fast, for fuzzing.
    Memory,
    /// In a temporary directory through the real file system.
    Disk,
}

/// A log directory written from a list of files.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    backing: Backing,
}

#[derive(Debug)]
enum Backing {
    Memory(SimFs),
    Disk(tempfile::TempDir),
}

impl Scratch {
    /// Writes `files` (name, bytes) into a fresh directory.
    ///
    /// # Panics
    /// If the temporary directory or a file in it cannot be written.
    pub fn new(store: Store, files: &[(String, Vec<u8>)]) -> Scratch {
        match store {
            Store::Memory => {
                let fs = SimFs::new();
                let dir = PathBuf::from("/log");
                fs.create_dir_all(&dir).expect("a directory in memory");
                for (name, bytes) in files {
                    fs.put_durable(dir.join(name), bytes);
                }
                Scratch {
                    dir,
                    backing: Backing::Memory(fs),
                }
            }
            Store::Disk => {
                let tmp = tempfile::tempdir().expect("create a temporary directory");
                for (name, bytes) in files {
                    std::fs::write(tmp.path().join(name), bytes).expect("write a fuzz file");
                }
                Scratch {
                    dir: tmp.path().to_path_buf(),
                    backing: Backing::Disk(tmp),
                }
            }
        }
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Default options that reach this directory's file system, with a small
    /// preallocation: the default 1 MiB of zeros per append would spend a fuzz
    /// case's time copying zeros, while 64 bytes still exercise the same code.
    pub fn options(&self) -> Options {
        Options::default().fs(self.fs()).preallocate(64)
    }

    /// The file system the directory is on.
    pub fn fs(&self) -> Arc<dyn Fs> {
        match &self.backing {
            Backing::Memory(fs) => Arc::new(fs.clone()),
            Backing::Disk(_) => Arc::new(StdFs),
        }
    }

    /// Every file of the directory but the lock file, with its bytes.
    ///
    /// # Panics
    /// If the directory cannot be read.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        match &self.backing {
            Backing::Memory(fs) => {
                for (path, bytes) in fs.files() {
                    if path.parent() == Some(self.dir.as_path()) {
                        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                        files.insert(name.unwrap_or_default(), bytes);
                    }
                }
            }
            Backing::Disk(tmp) => {
                for entry in std::fs::read_dir(tmp.path()).expect("list the directory") {
                    let entry = entry.expect("list the directory");
                    let bytes = std::fs::read(entry.path()).expect("read a file");
                    files.insert(entry.file_name().to_string_lossy().into_owned(), bytes);
                }
            }
        }
        files.remove(LOCK_FILE);
        files
    }
}
