//! The commit point's own file, `raft-committed`: openraft saves the committed log
//! id after every batch it commits, so it costs one fdatasync, not the side file's
//! three (write, rename, directory).
//!
//! Two slots, each in its own 4 KiB block, written in turn in place: a slot is the
//! save's number (u64), the length of the encoded log id (u32), the encoded log id
//! and a CRC-32 of all that, little-endian. Reading takes the valid slot with the
//! higher number: a save torn by a crash leaves the other slot, the save before,
//! intact.

use std::io;
use std::path::Path;

use flashlog_wal::fs::{Fs, FsFile, OpenMode};

/// The commit point's file under the store's directory.
pub const COMMITTED_FILE: &str = "raft-committed";
/// Bytes between the slots' starts.
const SLOT: u64 = 4096;
/// Save number and length.
const HEADER: usize = 12;
/// An encoded log id is far shorter; longer is refused.
const MAX_PAYLOAD: usize = 1024;

/// The open commit-point file and the number of its last save.
pub(crate) struct CommittedFile {
    file: Box<dyn FsFile>,
    saves: u64,
}

fn read_slot(file: &dyn FsFile, slot: u64) -> io::Result<Option<(u64, Vec<u8>)>> {
    let mut buf = vec![0u8; HEADER + MAX_PAYLOAD + 4];
    let mut read = 0;
    while read < buf.len() {
        match file.read_at(&mut buf[read..], slot * SLOT + read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if read < HEADER + 4 {
        return Ok(None);
    }
    let number = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
    let len = u32::from_le_bytes(buf[8..12].try_into().unwrap_or_default()) as usize;
    if number == 0 || len > MAX_PAYLOAD || HEADER + len + 4 > read {
        return Ok(None);
    }
    let stored = u32::from_le_bytes(
        buf[HEADER + len..HEADER + len + 4]
            .try_into()
            .unwrap_or_default(),
    );
    if crc32fast::hash(&buf[..HEADER + len]) != stored {
        return Ok(None);
    }
    Ok(Some((number, buf[HEADER..HEADER + len].to_vec())))
}

impl CommittedFile {
    /// Opens `dir/raft-committed`, creating it (and syncing `dir`) when missing;
    /// returns it with the last saved value, if any.
    pub(crate) fn open(fs: &dyn Fs, dir: &Path) -> io::Result<(CommittedFile, Option<Vec<u8>>)> {
        let path = dir.join(COMMITTED_FILE);
        let file = match fs.open(&path, OpenMode::ReadWrite) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let file = fs.open(&path, OpenMode::CreateNew)?;
                file.sync_data()?;
                fs.sync_dir(dir)?;
                file
            }
            Err(e) => return Err(e),
        };
        let mut newest: Option<(u64, Vec<u8>)> = None;
        for slot in 0..2 {
            if let Some((number, value)) = read_slot(&*file, slot)? {
                if newest.as_ref().is_none_or(|(n, _)| number > *n) {
                    newest = Some((number, value));
                }
            }
        }
        let saves = newest.as_ref().map_or(0, |(n, _)| *n);
        Ok((CommittedFile { file, saves }, newest.map(|(_, v)| v)))
    }

    /// Writes `value` over the older slot and, if `sync`, syncs it: durable when
    /// this returns. Unsynced, a crash may leave either slot (or the one before).
    pub(crate) fn save(&mut self, value: &[u8], sync: bool) -> io::Result<()> {
        if value.len() > MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "committed log id of {} bytes, at most {MAX_PAYLOAD}",
                    value.len()
                ),
            ));
        }
        let number = self.saves + 1;
        let mut buf = Vec::with_capacity(HEADER + value.len() + 4);
        buf.extend_from_slice(&number.to_le_bytes());
        buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        buf.extend_from_slice(value);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let offset = (number % 2) * SLOT;
        let mut done = 0;
        while done < buf.len() {
            match self.file.write_at(&buf[done..], offset + done as u64) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if sync {
            self.file.sync_data()?;
        }
        self.saves = number;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use flashlog_wal::fs::StdFs;

    use super::*;

    #[test]
    fn the_newest_valid_slot_wins_and_a_torn_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let fs: Arc<dyn Fs> = Arc::new(StdFs);
        let (mut file, value) = CommittedFile::open(&*fs, dir.path()).unwrap();
        assert_eq!(value, None);
        for v in [b"one".as_slice(), b"two", b"three"] {
            file.save(v, true).unwrap();
        }
        drop(file);
        let (mut file, value) = CommittedFile::open(&*fs, dir.path()).unwrap();
        assert_eq!(value.as_deref(), Some(b"three".as_slice()));
        file.save(b"four", true).unwrap();
        drop(file);
        // Save number 4 went to slot 0; tear it: the save before it is read.
        let path = dir.path().join(COMMITTED_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let (_, value) = CommittedFile::open(&*fs, dir.path()).unwrap();
        assert_eq!(value.as_deref(), Some(b"three".as_slice()));
    }
}
