//! An open file of the simulated file system: a handle on an inode, so that it keeps
//! working after its name is renamed or removed, as on POSIX.

use std::io;
use std::sync::{Arc, Mutex};

use flashlog_wal::fs::FsFile;

use super::lock;
use super::state::{Change, Ino, Sim};
use crate::hook_fs::Call;
use crate::sim_fault::Verdict;

/// An open file of a [`SimFs`](crate::SimFs).
#[derive(Debug)]
pub(crate) struct SimFile {
    pub sim: Arc<Mutex<Sim>>,
    pub ino: Ino,
    pub writable: bool,
}

fn bad_handle() -> io::Error {
    io::Error::from_raw_os_error(9)
}

impl FsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut sim = lock(&self.sim);
        sim.faults.check(Call::ReadAt)?;
        let inode = sim.inodes.get(&self.ino).ok_or_else(bad_handle)?;
        let bytes = &inode.current;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let mut sim = lock(&self.sim);
        if !self.writable {
            return Err(bad_handle());
        }
        let verdict = sim.faults.check(Call::WriteAt)?;
        let n = match verdict {
            Verdict::Proceed => buf.len(),
            Verdict::ShortWrite => buf.len().div_ceil(2),
        };
        if n > 0 {
            sim.record(Change::Write {
                ino: self.ino,
                offset,
                data: buf[..n].to_vec(),
            });
        }
        Ok(n)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut sim = lock(&self.sim);
        sim.faults.check(Call::SyncData)?;
        sim.sync_file(self.ino);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut sim = lock(&self.sim);
        if !self.writable {
            return Err(bad_handle());
        }
        sim.faults.check(Call::SetLen)?;
        sim.record(Change::SetLen { ino: self.ino, len });
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let mut sim = lock(&self.sim);
        sim.faults.check(Call::Len)?;
        let inode = sim.inodes.get(&self.ino).ok_or_else(bad_handle)?;
        Ok(inode.current.len() as u64)
    }
}
