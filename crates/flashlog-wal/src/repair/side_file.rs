//! Rebuilding a lost side file: [`rebuild_side_file`], what
//! `flashlog repair --first-seq N` runs.

use std::path::Path;

use crate::dir::{self, LOCK_FILE};
use crate::error::{Error, Result};
use crate::fs::Dir;
use crate::meta::{self, Meta};
use crate::options::Options;
use crate::position::{SegmentId, MAX_SEQ};

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
