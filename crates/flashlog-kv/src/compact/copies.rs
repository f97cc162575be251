//! The copies of a compaction: gathered into batches as the log is read, checked
//! against the index and appended (only those still their key's latest put),
//! then the index is pointed at them.

use flashlog_wal::codec::encoded_len;
use flashlog_wal::Batch;

use super::report::CompactionReport;
use crate::index::{Index, Slot};
use crate::locks::{read, write};
use crate::{Db, Result};

impl Db {
    /// Appends the copies that are still their key's latest put, and points the
    /// index at them. Writers are held off meanwhile so none of them can overwrite a
    /// key between the check and the copy.
    pub(super) fn append_copies(
        &self,
        copies: &mut Copies,
        report: &mut CompactionReport,
    ) -> Result<()> {
        if copies.batch.is_empty() {
            return Ok(());
        }
        // Held across the re-check, the append and the repoint (the index lock is
        // released between them, the gate is not): no write is between its append
        // and its index update, and none starts, so a key the re-check finds at its
        // origin is still there when the copy lands after every entry of the key,
        // and when the index is pointed at it.
        let _gate = write(&self.gate);
        copies.drop_overwritten(&read(&self.index));
        // Carried, not appended anew: an entry written under a larger
        // `max_segment_size` than the current one is copied all the same, in a
        // segment of its own (issue 12, item 7).
        let seqs = self.wal.append_carried(&copies.batch)?;
        let mut index = write(&self.index);
        for ((_, key, value), (&origin, seq)) in
            copies.batch.iter().zip(copies.origins.iter().zip(seqs))
        {
            index.repoint(key, origin, Slot::new(seq, value.len()));
            report.entries_copied += 1;
            report.bytes_copied += encoded_len(key.len(), value.len());
        }
        copies.clear();
        Ok(())
    }
}

/// A batch of copies being gathered, with the sequence number each copies.
#[derive(Debug, Default)]
pub(super) struct Copies {
    pub(super) batch: Batch,
    pub(super) origins: Vec<u64>,
    pub(super) bytes: u64,
}

impl Copies {
    /// Leaves out the entries whose key was written again since the live list was
    /// taken: their copy would be stale.
    fn drop_overwritten(&mut self, index: &Index) {
        let latest =
            |key: &[u8], origin: u64| index.get(key).is_some_and(|slot| slot.seq() == origin);
        if self
            .batch
            .iter()
            .zip(&self.origins)
            .all(|((_, key, _), &origin)| latest(key, origin))
        {
            return;
        }
        let mut kept = Copies::default();
        for ((_, key, value), &origin) in self.batch.iter().zip(&self.origins) {
            if latest(key, origin) {
                kept.batch.put(key, value);
                kept.origins.push(origin);
            }
        }
        *self = kept;
    }

    fn clear(&mut self) {
        self.batch.clear();
        self.origins.clear();
        self.bytes = 0;
    }
}

/// Why a visit of the log stopped early.
pub(super) enum Visit {
    /// Every live entry was found.
    Done,
    /// The progress callback asked to stop ([`Db::compact_until`]).
    Stopped,
    Failed(crate::Error),
}

impl From<flashlog_wal::Error> for Visit {
    fn from(err: flashlog_wal::Error) -> Visit {
        Visit::Failed(err.into())
    }
}

impl From<crate::Error> for Visit {
    fn from(err: crate::Error) -> Visit {
        Visit::Failed(err)
    }
}
