//! Removing damage for good: the bytes [`RecoveryMode::SkipCorrupted`] skips at
//! every open, taken out of the segments so that any mode opens the log.

use std::collections::BTreeSet;
use std::path::Path;

use crate::checkpoint::{self, LastEntry, Sealed};
use crate::codec;
use crate::dir::{LOCK_FILE, REPAIR_TMP_SUFFIX};
use crate::error::{CorruptionKind, Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::index::SegmentIndex;
use crate::meta;
use crate::options::{Options, RecoveryMode};
use crate::position::SegmentId;
use crate::recovery::{self, Recovered};
use crate::report::{Access, Damage};

/// Recovers the log in `dir` under [`RecoveryMode::SkipCorrupted`] (which cuts a
/// torn tail and finishes an interrupted truncation), then rewrites every segment
/// that still holds skipped damage with only the entries recovery kept, and
/// returns every damaged region found, the torn tail included.
///
/// Entries keep their sequence numbers. Where the checkpoint counted the entries
/// the damage held, their numbers stay a gap: before the first rewrite the
/// checkpoint is stored durably with each rewritten sealed segment's gaps (a
/// record that fits the segment before and after its rewrite); reading a number
/// in a gap is [`Error::Skipped`]. Uncounted damage counted as no entries and
/// still does (the numbering [`RecoveryReport::numbering_unverified_from`]
/// named stays as it was, no longer flagged). A sealed segment that no longer
/// matches its checkpoint record is left as it is, with its record: every open
/// reports it until it is restored or `flashlog.index` removed.
///
/// Each segment is rewritten crash-safely (a temporary file, fsync, rename over
/// the segment, fsync of the directory); a crash part way leaves some segments
/// rewritten and the others as they were, which every mode opens to the same
/// numbers and `SkipCorrupted` to the same entries, and a second call finishes.
/// The directory is locked throughout, as by [`Wal::open`](crate::Wal::open).
///
/// [`RecoveryReport::numbering_unverified_from`]: crate::RecoveryReport::numbering_unverified_from
///
/// ```
/// use flashlog_wal::{Op, Options, RecoveryMode, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let wal = Wal::open(dir.path(), Options::default())?;
/// for key in [b"a", b"b", b"c"] {
///     wal.append(Op::Put, key, b"value")?;
/// }
/// wal.close()?;
/// drop(wal);
/// // Damage the middle entry (each takes 23 bytes).
/// let segment = dir.path().join("segment-0001.log");
/// let mut bytes = std::fs::read(&segment)?;
/// bytes[23 + 20] ^= 1;
/// std::fs::write(&segment, &bytes)?;
/// assert!(Wal::open(dir.path(), Options::default()).is_err());
///
/// let removed = flashlog_wal::remove_skipped_damage(dir.path(), Options::default())?;
/// assert_eq!((removed.len(), removed[0].position.offset), (1, 23));
/// let wal = Wal::open(dir.path(), Options::default())?;
/// assert_eq!(wal.read(2)?.key(), b"c");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Locked`] if a `Wal` has the directory open; what
/// [`Wal::open`](crate::Wal::open) returns for a log `SkipCorrupted` cannot open;
/// [`Error::Io`].
pub fn remove_skipped_damage(dir: impl AsRef<Path>, options: Options) -> Result<Vec<Damage>> {
    if options.read_only {
        return Err(Error::ReadOnly);
    }
    options.validate()?;
    let dir = Dir::new(options.fs.clone(), dir.as_ref().to_path_buf());
    let _lock = dir.lock(LOCK_FILE)?;
    let recovered = recovery::recover(&dir, RecoveryMode::SkipCorrupted, Access::ReadWrite)?;
    take_out(&dir, recovered)
}

/// Rewrites every segment of a log recovered under
/// [`RecoveryMode::SkipCorrupted`] (read-write, under the directory lock) that
/// still holds skipped damage, with only the entries recovery kept: the second
/// half of [`remove_skipped_damage`], and what [`repair`](crate::repair()) runs
/// after its plan in that mode. Returns every damaged region recovery found.
pub(crate) fn take_out(dir: &Dir, recovered: Recovered) -> Result<Vec<Damage>> {
    let report = recovered.report;
    let index = recovered.index;
    let mut meta = recovered.meta;
    let mut damaged: BTreeSet<SegmentId> = BTreeSet::new();
    for damage in &report.damage {
        // A segment that no longer matches its checkpoint record stays as it
        // is, and so does the record: which of its entries are the log's is
        // not known, and every open reports it until it is restored or the
        // checkpoint removed.
        let changed = matches!(damage.kind, CorruptionKind::SegmentChanged { .. });
        if report.torn_tail.as_ref() != Some(damage) && !changed {
            damaged.insert(damage.position.segment);
        }
    }
    if damaged.is_empty() {
        return Ok(report.damage);
    }
    let active = index.active().id;
    let mut records: Vec<Sealed> = index
        .sealed(active)
        .into_iter()
        .filter(|record| !damaged.contains(&record.id))
        .collect();
    let mut rewrites = Vec::new();
    for segment in index.segments.iter().filter(|s| damaged.contains(&s.id)) {
        let kept = entries_of(dir, segment)?;
        if segment.id != active && !segment.unverified {
            // What the segment holds once rewritten, and the sequence numbers
            // of the entries it no longer holds.
            let last = last_offset(&kept).and_then(|at| LastEntry::at(&kept, at));
            records.push(Sealed {
                id: segment.id,
                first_seq: segment.first_seq,
                entries: segment.len(),
                len: kept.len() as u64,
                last,
                gaps: segment.recorded_gaps(),
            });
        }
        rewrites.push((segment.id, kept));
    }
    records.sort_by_key(|record| record.id);
    // Entries move within the rewritten segments: counted, before any changes,
    // for read-only views in other processes (see `Shared::confirm_view`).
    meta.truncations += 1;
    meta.last_cut = rewrites
        .iter()
        .filter_map(|(id, _)| index.segments.iter().find(|s| s.id == *id))
        .map(|segment| segment.first_seq)
        .min()
        .unwrap_or(index.next_seq());
    meta::store(dir, &meta)?;
    if records.iter().any(|record| !record.gaps.is_empty()) {
        // Before any segment changes: the sequence numbers the removed entries
        // held, durably (a record with gaps fits the segment before and after
        // its rewrite, so a crash in between changes no number).
        checkpoint::store_durably(dir, &records)?;
    } else {
        checkpoint::remove(dir)?;
    }
    for (id, kept) in &rewrites {
        let name = id.file_name();
        dir.replace_durably(&name, &format!("{name}{REPAIR_TMP_SUFFIX}"), kept)?;
    }
    Ok(report.damage)
}

/// The bytes of the entries the index keeps of a segment, back to back: the
/// segment without its damage (and without valid entries recovery could not
/// number, between damaged regions of unknown share).
fn entries_of(dir: &Dir, segment: &SegmentIndex) -> Result<Vec<u8>> {
    let file = dir.open(&segment.id.file_name(), OpenMode::Read)?;
    let mut bytes = vec![0u8; file.len()? as usize];
    file.read_exact_at(&mut bytes, 0)?;
    drop(file);
    let mut kept = Vec::with_capacity(bytes.len());
    for &offset in segment.offsets().unwrap_or_default() {
        let at = offset as usize;
        if let Ok(entry) = codec::decode(&bytes[at..]) {
            kept.extend_from_slice(&bytes[at..at + entry.len]);
        }
    }
    Ok(kept)
}

/// Where the last entry of entries back to back starts.
fn last_offset(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut last = None;
    while let Ok(entry) = codec::decode(&bytes[at..]) {
        last = Some(at);
        at += entry.len;
    }
    last
}
