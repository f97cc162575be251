//! The four crash models: from a file system's durable state and its log of
//! unsynced changes, the state a reboot could find.

use std::collections::BTreeMap;

use crate::rng::Rng;
use crate::sim_fs::state::{apply_data, apply_name, Change, Sim};
use crate::SimFs;

/// Sector size of the torn-write model.
pub const SECTOR: usize = 512;

/// How a crash treats what was not yet durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashModel {
    /// Every unsynced change is lost.
    DropUnsynced,
    /// Each unsynced change survives or not, at random; survivors apply in order.
    RandomSubset {
        /// The seed of the choice.
        seed: u64,
    },
    /// The unsynced bytes of every 512-byte sector end up new, old, zeroed or
    /// garbage at random (all of a sector's unsynced bytes alike; its synced bytes
    /// stay: powersafe overwrite), the file's size is the old or the new one, and
    /// unsynced name changes survive at random.
    TornSectors {
        /// The seed of the choice.
        seed: u64,
    },
    /// The ALICE model: exactly one unsynced change (by index into
    /// [`SimFs::pending`]) is lost and every later one survives.
    DropOne {
        /// The change that is lost.
        index: usize,
    },
}

impl CrashModel {
    /// Every crash model for a state with `pending` unsynced changes: drop all, one
    /// random subset and one torn image per seed, and one ALICE image per change.
    pub fn all(pending: usize, seeds: &[u64]) -> Vec<CrashModel> {
        let mut models = vec![CrashModel::DropUnsynced];
        if pending == 0 {
            return models;
        }
        for &seed in seeds {
            models.push(CrashModel::RandomSubset { seed });
            models.push(CrashModel::TornSectors { seed });
        }
        models.extend((0..pending).map(|index| CrashModel::DropOne { index }));
        models
    }

    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            CrashModel::DropUnsynced => "drop-unsynced",
            CrashModel::RandomSubset { .. } => "random-subset",
            CrashModel::TornSectors { .. } => "torn-sectors",
            CrashModel::DropOne { .. } => "drop-one",
        }
    }
}

impl SimFs {
    /// The state a reboot finds after a crash of this file system under `model`,
    /// as a new, independent file system (this one is left as it is). Open handles
    /// of this one never reach the new one.
    pub fn crash(&self, model: CrashModel) -> SimFs {
        let sim = self.state();
        let image = match model {
            CrashModel::DropUnsynced => sim.rebooted(&[]),
            CrashModel::RandomSubset { seed } => {
                let mut rng = Rng::new(seed);
                let kept: Vec<Change> =
                    sim.pending.iter().filter(|_| rng.coin()).cloned().collect();
                sim.rebooted(&kept)
            }
            CrashModel::DropOne { index } => {
                let kept: Vec<Change> = sim
                    .pending
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != index)
                    .map(|(_, change)| change.clone())
                    .collect();
                sim.rebooted(&kept)
            }
            CrashModel::TornSectors { seed } => torn(&sim, seed),
        };
        SimFs::from_sim(image)
    }
}

/// The torn-sector image.
fn torn(sim: &Sim, seed: u64) -> Sim {
    let mut rng = Rng::new(seed);
    let mut inodes = sim.inodes.clone();
    let touched: Vec<u64> = {
        let mut touched: Vec<u64> = sim.pending.iter().filter_map(Change::file).collect();
        touched.sort_unstable();
        touched.dedup();
        touched
    };
    for ino in touched {
        let Some(inode) = inodes.get_mut(&ino) else {
            continue;
        };
        let old = inode.durable.clone();
        // The current bytes are the durable ones with every pending change applied;
        // `dirty` marks the bytes a pending change wrote or resized.
        let mut new = old.clone();
        let mut dirty: Vec<bool> = Vec::new();
        for change in sim.pending.iter().filter(|c| c.file() == Some(ino)) {
            let before = new.len();
            apply_data(&mut new, change);
            let (from, to) = match change {
                Change::Write { offset, data, .. } => {
                    (*offset as usize, *offset as usize + data.len())
                }
                _ => (before.min(new.len()), before.max(new.len())),
            };
            if dirty.len() < to {
                dirty.resize(to, false);
            }
            dirty[from..to].iter_mut().for_each(|d| *d = true);
        }
        let len = if rng.coin() { old.len() } else { new.len() };
        dirty.resize(len.max(dirty.len()), false);
        let at = |bytes: &[u8], i: usize| bytes.get(i).copied().unwrap_or(0);
        let mut out: Vec<u8> = (0..len).map(|i| at(&old, i)).collect();
        for start in (0..len).step_by(SECTOR) {
            let end = (start + SECTOR).min(len);
            // Powersafe overwrite (as SQLite assumes): a torn write damages only the
            // bytes it was writing, a whole sector's worth of them at once.
            let written: Vec<usize> = (start..end).filter(|&i| dirty[i]).collect();
            if written.is_empty() {
                continue;
            }
            let outcome = rng.below(4);
            for i in written {
                out[i] = match outcome {
                    0 => at(&new, i),
                    1 => at(&old, i),
                    2 => 0,
                    _ => rng.next_u64() as u8,
                };
            }
        }
        inode.durable = out;
    }
    let mut dirs = sim.dirs.clone();
    for dir in dirs.values_mut() {
        dir.current = BTreeMap::new();
    }
    for change in sim.pending.iter().filter(|c| c.dir().is_some()) {
        if rng.coin() {
            if let Some(dir) = change.dir().and_then(|d| dirs.get_mut(d)) {
                apply_name(&mut dir.durable, change);
            }
        }
    }
    Sim::from_durable(inodes, dirs, sim.next_ino)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use flashlog_wal::fs::{Fs, OpenMode};

    use super::*;

    fn file(sim: &SimFs, path: &str, bytes: &[u8]) -> Box<dyn flashlog_wal::fs::FsFile> {
        let file = sim.open(Path::new(path), OpenMode::CreateNew).unwrap();
        assert_eq!(file.write_at(bytes, 0).unwrap(), bytes.len());
        file
    }

    fn setup() -> SimFs {
        let sim = SimFs::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        sim
    }

    #[test]
    fn a_file_whose_directory_was_never_synced_vanishes_even_if_its_data_was() {
        let sim = setup();
        let f = file(&sim, "/d/a", b"hello");
        f.sync_data().unwrap();
        assert_eq!(sim.read("/d/a").unwrap(), b"hello");
        assert_eq!(sim.crash(CrashModel::DropUnsynced).read("/d/a"), None);
        sim.sync_dir(Path::new("/d")).unwrap();
        let after = sim.crash(CrashModel::DropUnsynced);
        assert_eq!(after.read("/d/a").unwrap(), b"hello");
    }

    #[test]
    fn unsynced_data_is_lost_and_synced_data_kept() {
        let sim = setup();
        let f = file(&sim, "/d/a", b"one");
        sim.sync_dir(Path::new("/d")).unwrap();
        f.sync_data().unwrap();
        f.write_at(b"two", 3).unwrap();
        assert_eq!(sim.read("/d/a").unwrap(), b"onetwo");
        let after = sim.crash(CrashModel::DropUnsynced);
        assert_eq!(after.read("/d/a").unwrap(), b"one");
        assert!(after.pending().is_empty());
    }

    #[test]
    fn renames_and_removals_revert_until_the_directory_is_synced() {
        let sim = setup();
        let f = file(&sim, "/d/a", b"x");
        f.sync_data().unwrap();
        sim.sync_dir(Path::new("/d")).unwrap();
        sim.rename(Path::new("/d/a"), Path::new("/d/b")).unwrap();
        let after = sim.crash(CrashModel::DropUnsynced);
        assert_eq!(after.names("/d"), ["a"]);
        sim.sync_dir(Path::new("/d")).unwrap();
        sim.remove_file(Path::new("/d/b")).unwrap();
        // The open handle still reads the removed file.
        let mut buf = [0u8; 1];
        assert_eq!(f.read_at(&mut buf, 0).unwrap(), 1);
        assert_eq!(sim.crash(CrashModel::DropUnsynced).names("/d"), ["b"]);
        sim.sync_dir(Path::new("/d")).unwrap();
        assert!(sim.crash(CrashModel::DropUnsynced).names("/d").is_empty());
    }

    #[test]
    fn drop_one_loses_exactly_that_change() {
        let sim = setup();
        let f = file(&sim, "/d/a", b"");
        sim.sync_dir(Path::new("/d")).unwrap();
        f.write_at(b"aa", 0).unwrap();
        f.write_at(b"bb", 2).unwrap();
        assert_eq!(sim.pending().len(), 2);
        let first = sim.crash(CrashModel::DropOne { index: 0 });
        assert_eq!(first.read("/d/a").unwrap(), b"\0\0bb");
        let second = sim.crash(CrashModel::DropOne { index: 1 });
        assert_eq!(second.read("/d/a").unwrap(), b"aa");
        assert_eq!(CrashModel::all(2, &[1]).len(), 5);
    }

    #[test]
    fn torn_sectors_change_whole_sectors_only() {
        let sim = setup();
        let f = file(&sim, "/d/a", &[1u8; 4 * SECTOR]);
        sim.sync_dir(Path::new("/d")).unwrap();
        f.sync_data().unwrap();
        f.write_at(&[2u8; 4 * SECTOR], 0).unwrap();
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let bytes = sim
                .crash(CrashModel::TornSectors { seed })
                .read("/d/a")
                .unwrap();
            assert_eq!(bytes.len(), 4 * SECTOR);
            for sector in bytes.chunks(SECTOR) {
                let uniform = sector.iter().all(|&b| b == sector[0]);
                outcomes.insert(match sector[0] {
                    1 if uniform => "old",
                    2 if uniform => "new",
                    0 if uniform => "zero",
                    _ => "garbage",
                });
            }
        }
        assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    }
}
