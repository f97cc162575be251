//! Writing one segment file: the open active segment ([`SegmentWriter`]), how it
//! is extended ahead of its entries ([`Preallocation`]), and the encoded entries
//! bound for it ([`Pending`], [`Chunk`]). The group commit that drives it is
//! `writer.rs`.

use crate::codec;
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode, PathFile};
use crate::meta::{self, Meta};
use crate::op::Op;
use crate::options::Options;
use crate::position::SegmentId;

/// Encoded entries bound for one segment, starting at a known offset.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub segment: SegmentId,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Groups at least this large extend the file by writing themselves: zero-filling
/// ahead pays only for small groups, where the metadata an fdatasync must commit
/// when the file grows costs more than writing the zeros.
const PREALLOCATE_BELOW: usize = 64 << 10;

/// A block of zeros to preallocate with.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// How the active segment's file is extended ahead of its entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Preallocation {
    /// Zero-filled bytes to keep ahead of the last entry (0: none).
    pub ahead: u64,
    /// The file never grows beyond this by preallocation.
    pub max_segment_size: u64,
}

impl Preallocation {
    /// The preallocation `options` ask for.
    pub(crate) fn of(options: &Options) -> Preallocation {
        Preallocation {
            ahead: options.preallocate,
            max_segment_size: options.max_segment_size,
        }
    }
}

/// The open active segment.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    id: SegmentId,
    file: PathFile,
    /// End of the last entry: where the next one goes.
    end: u64,
    /// Length of the file: `end` plus zero-filled preallocated bytes.
    allocated: u64,
    /// Whether bytes were written since the last fdatasync.
    unsynced: bool,
    /// Whether an fdatasync failed: what reached the disk is then unknown, and
    /// a later success proves nothing about it.
    sync_failed: bool,
    preallocation: Preallocation,
}

impl SegmentWriter {
    /// The segment it writes.
    pub(crate) fn id(&self) -> SegmentId {
        self.id
    }

    /// Opens segment `id`, whose entries end at `end`; any bytes after `end` are
    /// preallocated zeros (recovery checked that).
    pub(crate) fn open(
        dir: &Dir,
        id: SegmentId,
        end: u64,
        preallocation: Preallocation,
    ) -> Result<SegmentWriter> {
        let file = dir.open(&id.file_name(), OpenMode::ReadWrite)?;
        let allocated = file.len()?.max(end);
        Ok(SegmentWriter {
            id,
            file,
            end,
            allocated,
            // What is already in the file may still be only in the page cache (a
            // process killed between its write and its fdatasync): the next sync
            // must not be skipped.
            unsynced: true,
            sync_failed: false,
            preallocation,
        })
    }

    /// Where the next entry goes.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Whether bytes were written since the last fdatasync.
    pub(crate) fn has_unsynced(&self) -> bool {
        self.unsynced
    }

    /// Whether an fdatasync of this writer ever failed.
    pub(crate) fn sync_failed(&self) -> bool {
        self.sync_failed
    }

    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            if let Err(err) = self.file.sync_data() {
                self.sync_failed = true;
                return Err(err);
            }
            self.unsynced = false;
        }
        Ok(())
    }

    /// Cuts the file back to `end` (a write past it failed) and syncs the cut:
    /// whatever part of the failed write landed, whole entries included, is gone
    /// for good before anyone is told the write failed. The preallocation is
    /// made again by the next write.
    pub(crate) fn cut_back(&mut self, end: u64) -> Result<()> {
        self.file.set_len(end)?;
        self.end = end;
        self.allocated = end;
        self.unsynced = true;
        self.sync()
    }

    /// Cuts preallocated zeros off and syncs: the file then holds exactly its
    /// entries, byte for byte what the Go implementation would have written.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if self.allocated > self.end {
            self.file.set_len(self.end)?;
            self.allocated = self.end;
            self.unsynced = true;
        }
        self.sync()
    }

    /// Makes sure the file is long enough for a write ending at `needed`, zero-filling
    /// ahead for small writes so that later fdatasyncs commit no size change.
    fn reserve(&mut self, needed: u64, write_len: usize) -> Result<()> {
        let Preallocation {
            ahead,
            max_segment_size,
        } = self.preallocation;
        if needed <= self.allocated || ahead == 0 || write_len >= PREALLOCATE_BELOW {
            return Ok(());
        }
        let target = needed
            .saturating_add(ahead)
            .min(max_segment_size.max(needed));
        let mut at = self.allocated.max(needed);
        while at < target {
            let len = (target - at).min(ZEROS.len() as u64) as usize;
            match self.file.write_all_at(&ZEROS[..len], at) {
                Ok(()) => at += len as u64,
                // Zeros ahead are an optimisation: on a full disk keep what fit
                // and carry on. Whether the disk is really full is the entry's
                // own write's to say; nothing acknowledged depends on these bytes
                // (a partial piece is zeros too, which recovery takes for
                // preallocated space).
                Err(err) if is_out_of_space(&err) => {
                    self.allocated = self.allocated.max(at);
                    return Ok(());
                }
                Err(err) => return Err(err),
            }
        }
        self.allocated = target;
        Ok(())
    }

    /// Leaves the current segment for a new, empty one: trims and syncs the old,
    /// creates the new and syncs the directory, so that the new file survives a
    /// crash before any entry in it is acknowledged.
    /// The side file then names the new segment as the newest.
    pub(crate) fn start_segment(
        &mut self,
        dir: &Dir,
        id: SegmentId,
        meta: &mut Meta,
    ) -> Result<()> {
        self.finish()?;
        let file = dir.open(&id.file_name(), OpenMode::CreateNew)?;
        dir.sync()?;
        meta.last_segment = Some(id);
        meta::store(dir, meta)?;
        *self = SegmentWriter {
            id,
            file,
            end: 0,
            allocated: 0,
            unsynced: false,
            sync_failed: self.sync_failed,
            preallocation: self.preallocation,
        };
        Ok(())
    }

    /// Writes queued chunks in order, starting new segments where they begin. The
    /// segment being left is trimmed and synced before any entry of the next one is
    /// written, and a new segment's directory entry is synced before it holds
    /// anything.
    pub(crate) fn write(&mut self, dir: &Dir, chunks: &[Chunk], meta: &mut Meta) -> Result<()> {
        for chunk in chunks {
            if chunk.segment != self.id {
                self.start_segment(dir, chunk.segment, meta)?;
            }
            let end = chunk.offset + chunk.bytes.len() as u64;
            self.reserve(end, chunk.bytes.len())?;
            self.file.write_all_at(&chunk.bytes, chunk.offset)?;
            self.end = end;
            self.allocated = self.allocated.max(end);
            self.unsynced = true;
        }
        Ok(())
    }
}

/// One entry ready to be queued: its parts and its checksum.
pub(crate) struct Pending<'a> {
    pub op: Op,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub crc: u32,
    pub len: u64,
}

impl<'a> Pending<'a> {
    /// Checks an entry against the format's limit and `max_len` (the segment size,
    /// or the format's limit for a carried entry), and computes its checksum
    /// (outside the lock).
    pub(crate) fn new(op: Op, key: &'a [u8], value: &'a [u8], max_len: u64) -> Result<Self> {
        let len = codec::check_len(key.len(), value.len())?;
        if len > max_len {
            return Err(Error::EntryTooLarge { len, max: max_len });
        }
        Ok(Pending {
            op,
            key,
            value,
            crc: codec::checksum(op, key, value),
            len,
        })
    }
}

/// Whether `err` says the file system (or the user's quota) is full.
pub(crate) fn is_out_of_space(err: &Error) -> bool {
    matches!(err, Error::Io { source, .. }
        if matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded))
}
