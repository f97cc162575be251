//! Removing damage for good: the bytes [`RecoveryMode::SkipCorrupted`] skips at
//! every open, taken out of the segments so that any mode opens the log.

use std::collections::BTreeMap;
use std::path::Path;

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
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
