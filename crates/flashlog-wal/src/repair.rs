//! Removing damage for good: the bytes [`RecoveryMode::SkipCorrupted`] skips at
//! every open, taken out of the segments so that any mode opens the log.

use std::collections::BTreeSet;
use std::path::Path;

use crate::checkpoint::{self, LastEntry, Sealed};
use crate::codec;
use crate::dir::{self, LOCK_FILE, REPAIR_TMP_SUFFIX};
use crate::error::{CorruptionKind, Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::index::SegmentIndex;
use crate::meta::{self, Meta};
use crate::options::{Options, RecoveryMode};
use crate::position::SegmentId;
use crate::position::MAX_SEQ;
use crate::recovery;
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
        let kept = entries_of(&dir, segment)?;
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
    meta::store(&dir, &meta)?;
    if records.iter().any(|record| !record.gaps.is_empty()) {
        // Before any segment changes: the sequence numbers the removed entries
        // held, durably (a record with gaps fits the segment before and after
        // its rewrite, so a crash in between changes no number).
        checkpoint::store_durably(&dir, &records)?;
    } else {
        checkpoint::remove(&dir)?;
    }
    for (id, kept) in &rewrites {
        let name = id.file_name();
        dir.replace_durably(&name, &format!("{name}{REPAIR_TMP_SUFFIX}"), kept)?;
    }
    Ok(report.damage)
}

/// Writes a new side file (both copies) for a log that has lost every intact
/// copy of it, so that it opens again: what `flashlog repair --first-seq N` runs.
/// The oldest segment file in `dir` becomes the log's first segment, its first
/// entry gets sequence number `first_seq`, and the newest segment file is
/// recorded as the newest.
///
/// Only the side file knew where the sequence numbers start once
/// `truncate_front` removed segments (`first_seq` gives it back), and a few things
/// are lost with it: a `truncate_back` a crash interrupted is not finished (the
/// entries it was removing stay), segments a crash left behind a `truncate_front`
/// count as the log's again, and read-only views opened before the rebuild
/// report [`Error::ViewOutdated`] on their next read.
///
/// ```
/// use flashlog_wal::{Op, Options, Wal, META_COPY_FILE, META_FILE};
///
/// let dir = tempfile::tempdir()?;
/// let options = Options::default().max_segment_size(64);
/// let wal = Wal::open(dir.path(), options.clone())?;
/// for _ in 0..10 {
///     wal.append(Op::Put, b"key", b"value")?;
/// }
/// wal.truncate_front(8)?;
/// let first = wal.first_seq();
/// wal.close()?;
/// drop(wal);
/// std::fs::remove_file(dir.path().join(META_FILE))?;
/// std::fs::remove_file(dir.path().join(META_COPY_FILE))?;
/// assert!(Wal::open(dir.path(), options.clone()).is_err());
///
/// flashlog_wal::rebuild_side_file(dir.path(), first, options.clone())?;
/// let wal = Wal::open(dir.path(), options)?;
/// assert_eq!(wal.first_seq(), first);
/// assert_eq!(wal.append(Op::Put, b"key", b"value")?, 11);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidOptions`] if `first_seq` is 0 or above 2^63 - 1, or if an
/// intact copy of the side file says otherwise (a read-write open rewrites a
/// damaged copy from an intact one; nothing needs rebuilding);
/// [`Error::ReadOnly`] for read-only options; [`Error::Locked`] if a `Wal` has the
/// directory open; [`Error::MissingSegment`] if `dir` has no segment;
/// [`Error::Io`].
pub fn rebuild_side_file(dir: impl AsRef<Path>, first_seq: u64, options: Options) -> Result<()> {
    if options.read_only {
        return Err(Error::ReadOnly);
    }
    options.validate()?;
    if !(1..=MAX_SEQ).contains(&first_seq) {
        return Err(Error::InvalidOptions(
            "a first sequence number must be between 1 and 2^63 - 1",
        ));
    }
    let dir = Dir::new(options.fs.clone(), dir.as_ref().to_path_buf());
    let _lock = dir.lock(LOCK_FILE)?;
    let ids = dir::segment_ids(&dir)?;
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        return Err(Error::MissingSegment {
            dir: dir.path().to_path_buf(),
            id: SegmentId(1),
        });
    };
    let rebuilt = Meta {
        first_segment: first,
        first_seq,
        pending_truncate_back: None,
        last_segment: Some(last),
        truncations: 0,
        last_cut: 0,
    };
    match meta::inspect(&dir) {
        Ok(loaded) => {
            if let Some(intact) = loaded.meta {
                if (intact.first_segment, intact.first_seq) != (first, first_seq) {
                    return Err(Error::InvalidOptions(
                        "the side file has an intact copy, which says otherwise; open the log read-write to rewrite a damaged copy from it",
                    ));
                }
                return meta::store(&dir, &intact);
            }
        }
        Err(Error::CorruptMeta { .. }) => {}
        Err(err) => return Err(err),
    }
    meta::store(&dir, &rebuilt)
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
