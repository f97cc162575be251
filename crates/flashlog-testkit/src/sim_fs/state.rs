//! The simulated file system's state: inodes with durable and current bytes,
//! directories with durable and current names, and the ordered log of changes not
//! yet made durable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::sim_fault::Faults;

/// An inode number.
pub type Ino = u64;

/// One file's contents.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inode {
    /// What survives a crash that drops every unsynced change.
    pub durable: Vec<u8>,
    /// What reads see now.
    pub current: Vec<u8>,
}

/// One directory's names.
#[derive(Debug, Clone, Default)]
pub(crate) struct Directory {
    /// Names that survive a crash.
    pub durable: BTreeMap<String, Ino>,
    /// Names lookups see now.
    pub current: BTreeMap<String, Ino>,
}

/// A change not yet made durable, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Bytes written to a file.
    Write {
        /// The file.
        ino: Ino,
        /// Where.
        offset: u64,
        /// What.
        data: Vec<u8>,
    },
    /// A file cut or extended.
    SetLen {
        /// The file.
        ino: Ino,
        /// Its new length.
        len: u64,
    },
    /// A name created (or replaced) in a directory.
    Link {
        /// The directory.
        dir: PathBuf,
        /// The name.
        name: String,
        /// The file it names.
        ino: Ino,
    },
    /// A name removed from a directory.
    Unlink {
        /// The directory.
        dir: PathBuf,
        /// The name.
        name: String,
    },
    /// A name renamed inside one directory, replacing `to`.
    Rename {
        /// The directory.
        dir: PathBuf,
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
}

impl Change {
    /// The file whose data this change touches, if it is a data change.
    pub(crate) fn file(&self) -> Option<Ino> {
        match self {
            Change::Write { ino, .. } | Change::SetLen { ino, .. } => Some(*ino),
            _ => None,
        }
    }

    /// The directory whose names this change touches, if it is a name change.
    pub(crate) fn dir(&self) -> Option<&Path> {
        match self {
            Change::Link { dir, .. } | Change::Unlink { dir, .. } | Change::Rename { dir, .. } => {
                Some(dir)
            }
            _ => None,
        }
    }
}

/// Everything behind a [`SimFs`](crate::SimFs) handle.
#[derive(Debug, Default)]
pub(crate) struct Sim {
    pub inodes: BTreeMap<Ino, Inode>,
    pub dirs: BTreeMap<PathBuf, Directory>,
    /// Changes not yet durable, oldest first.
    pub pending: Vec<Change>,
    pub next_ino: Ino,
    pub locks: BTreeSet<PathBuf>,
    pub faults: Faults,
}

/// Applies a data change to a byte vector.
pub(crate) fn apply_data(bytes: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Write { offset, data, .. } => {
            let start = *offset as usize;
            let end = start + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[start..end].copy_from_slice(data);
        }
        Change::SetLen { len, .. } => bytes.resize(*len as usize, 0),
        _ => {}
    }
}

/// Applies a name change to a directory's names.
pub(crate) fn apply_name(names: &mut BTreeMap<String, Ino>, change: &Change) {
    match change {
        Change::Link { name, ino, .. } => {
            names.insert(name.clone(), *ino);
        }
        Change::Unlink { name, .. } => {
            names.remove(name);
        }
        Change::Rename { from, to, .. } => {
            if let Some(ino) = names.remove(from) {
                names.insert(to.clone(), ino);
            }
        }
        _ => {}
    }
}

/// Splits a path into its directory and its last component.
pub(crate) fn split(path: &Path) -> Option<(PathBuf, String)> {
    let name = path.file_name()?.to_str()?.to_string();
    let parent = path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    Some((normal(&parent), name))
}

/// A path without `.` components or a trailing slash, so that map keys match.
pub(crate) fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        if part != std::path::Component::CurDir {
            out.push(part);
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

impl Sim {
    /// A file system holding the root directory `/` and the current directory `.`.
    pub(crate) fn new() -> Sim {
        let mut sim = Sim {
            next_ino: 1,
            ..Sim::default()
        };
        sim.dirs.insert(PathBuf::from("/"), Directory::default());
        sim.dirs.insert(PathBuf::from("."), Directory::default());
        sim
    }

    /// The inode a path names now.
    pub(crate) fn lookup(&self, path: &Path) -> Option<Ino> {
        let (dir, name) = split(path)?;
        self.dirs.get(&dir)?.current.get(&name).copied()
    }

    /// Records a change: applies it to the current state and queues it.
    pub(crate) fn record(&mut self, change: Change) {
        if let Some(ino) = change.file() {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                apply_data(&mut inode.current, &change);
            }
        }
        if let Some(dir) = change.dir() {
            if let Some(directory) = self.dirs.get_mut(dir) {
                apply_name(&mut directory.current, &change);
            }
        }
        self.pending.push(change);
    }

    /// Makes a file's current bytes durable (`fdatasync`): its names are not.
    pub(crate) fn sync_file(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.durable = inode.current.clone();
        }
        self.pending.retain(|change| change.file() != Some(ino));
    }

    /// Makes a directory's current names durable (`fsync` of the directory).
    pub(crate) fn sync_names(&mut self, dir: &Path) {
        if let Some(directory) = self.dirs.get_mut(dir) {
            directory.durable = directory.current.clone();
        }
        self.pending.retain(|change| change.dir() != Some(dir));
    }

    /// A fresh state whose durable and current parts are both `self`'s durable state
    /// with the `kept` pending changes applied in order: what a reboot finds. Inodes no
    /// name reaches any more are dropped.
    pub(crate) fn rebooted(&self, kept: &[Change]) -> Sim {
        let mut inodes: BTreeMap<Ino, Inode> = self
            .inodes
            .iter()
            .map(|(&ino, inode)| {
                let durable = inode.durable.clone();
                let current = Vec::new();
                (ino, Inode { durable, current })
            })
            .collect();
        let mut dirs: BTreeMap<PathBuf, Directory> = self
            .dirs
            .iter()
            .map(|(path, dir)| {
                (
                    path.clone(),
                    Directory {
                        durable: dir.durable.clone(),
                        current: BTreeMap::new(),
                    },
                )
            })
            .collect();
        for change in kept {
            if let Some(ino) = change.file() {
                if let Some(inode) = inodes.get_mut(&ino) {
                    apply_data(&mut inode.durable, change);
                }
            }
            if let Some(dir) = change.dir() {
                if let Some(directory) = dirs.get_mut(dir) {
                    apply_name(&mut directory.durable, change);
                }
            }
        }
        Sim::from_durable(inodes, dirs, self.next_ino)
    }

    /// A state from durable inodes and names, with nothing pending.
    pub(crate) fn from_durable(
        mut inodes: BTreeMap<Ino, Inode>,
        mut dirs: BTreeMap<PathBuf, Directory>,
        next_ino: Ino,
    ) -> Sim {
        let reachable: BTreeSet<Ino> = dirs
            .values()
            .flat_map(|dir| dir.durable.values().copied())
            .collect();
        inodes.retain(|ino, _| reachable.contains(ino));
        for inode in inodes.values_mut() {
            inode.current = inode.durable.clone();
        }
        for dir in dirs.values_mut() {
            dir.current = dir.durable.clone();
        }
        Sim {
            inodes,
            dirs,
            pending: Vec::new(),
            next_ino,
            locks: BTreeSet::new(),
            faults: Faults::default(),
        }
    }
}
