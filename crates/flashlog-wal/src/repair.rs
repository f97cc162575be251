//! Removing damage for good: the bytes [`RecoveryMode::SkipCorrupted`] skips at
//! every open, taken out of the segments so that any mode opens the log.

use std::collections::BTreeMap;
use std::path::Path;

use crate::checkpoint;
use crate::entry::MAX_SEQ;
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::meta::{self, Meta};
use crate::recovery::{self, Access, Damage};
use crate::wal::LOCK_FILE;
use crate::{Options, RecoveryMode, SegmentId};

/// What a segment is rewritten under before it is renamed over the original; a
/// leftover one (a crash during [`remove_skipped_damage`]) is removed at open.
pub(crate) const REPAIR_TMP_SUFFIX: &str = ".repair-tmp";

/// Recovers the log in `dir` under [`RecoveryMode::SkipCorrupted`] (which cuts a
/// torn tail and finishes an interrupted truncation), then rewrites every segment
/// that still holds skipped damage without the damaged bytes, and returns every
/// damaged region found, the torn tail included.
///
/// Entries keep their sequence numbers: skipped regions were never counted. Each
/// segment is rewritten crash-safely (a temporary file, fsync, rename over the
/// segment, fsync of the directory), after the checkpoint is removed; a crash part
/// way leaves some segments rewritten and the others as they were, which
/// `SkipCorrupted` opens to the same entries and a second call finishes. The
/// directory is locked throughout, as by [`Wal::open`](crate::Wal::open).
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
    let mut skipped: BTreeMap<SegmentId, Vec<Damage>> = BTreeMap::new();
    for damage in &report.damage {
        if report.torn_tail.as_ref() != Some(damage) {
            skipped
                .entry(damage.position.segment)
                .or_default()
                .push(*damage);
        }
    }
    if !skipped.is_empty() {
        checkpoint::remove(&dir)?;
    }
    for (id, damage) in &skipped {
        rewrite_without(&dir, *id, damage)?;
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
    let ids = recovery::segment_ids(&dir)?;
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

/// Replaces segment `id` with a copy that lacks the `damage` regions (in order).
fn rewrite_without(dir: &Dir, id: SegmentId, damage: &[Damage]) -> Result<()> {
    let name = id.file_name();
    let file = dir.open(&name, OpenMode::Read)?;
    let mut bytes = vec![0u8; file.len()? as usize];
    file.read_exact_at(&mut bytes, 0)?;
    drop(file);
    let mut kept = Vec::with_capacity(bytes.len());
    let mut at = 0usize;
    for region in damage {
        let start = (region.position.offset as usize).clamp(at, bytes.len());
        kept.extend_from_slice(&bytes[at..start]);
        at = (start + region.len as usize).min(bytes.len());
    }
    kept.extend_from_slice(&bytes[at..]);
    dir.replace_durably(&name, &format!("{name}{REPAIR_TMP_SUFFIX}"), &kept)
}
