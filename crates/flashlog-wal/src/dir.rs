//! The log directory: the names of every file flashlog keeps there, listing the
//! segment files, checking they are contiguous, and removing and cutting segments.
//!
//! Every operation here is one step of a larger protocol (truncation, recovery,
//! repair) and idempotent, so a step redone after a crash is harmless.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::position::SegmentId;

/// The lock file that keeps a second `Wal` from opening the same directory.
pub const LOCK_FILE: &str = "flashlog.lock";

/// The side file's name.
pub const META_FILE: &str = "flashlog.meta";
/// The name the side file is written under before it is renamed into place.
pub(crate) const META_TMP_FILE: &str = "flashlog.meta.tmp";
/// The side file's second copy (see the module docs of `meta.rs`: "Two copies").
pub const META_COPY_FILE: &str = "flashlog.meta.bak";
/// The name the second copy is written under before it is renamed into place.
pub(crate) const META_COPY_TMP_FILE: &str = "flashlog.meta.bak.tmp";

/// The checkpoint's name.
pub const INDEX_FILE: &str = "flashlog.index";
/// The name the checkpoint is written under before it is renamed into place.
pub(crate) const INDEX_TMP_FILE: &str = "flashlog.index.tmp";

/// The cursor side file: each named consumer's position (see `cursors.rs`).
pub const CURSORS_FILE: &str = "flashlog.cursors";
/// The name the cursor file is written under before it is renamed into place.
pub(crate) const CURSORS_TMP_FILE: &str = "flashlog.cursors.tmp";

/// The sealing times of segments, for retention by age (see `sealed.rs`).
pub const SEALED_FILE: &str = "flashlog.sealed";
/// The name the sealing-time file is written under before it is renamed into place.
pub(crate) const SEALED_TMP_FILE: &str = "flashlog.sealed.tmp";

/// What a segment is rewritten under before it is renamed over the original; a
/// leftover one (a crash during [`remove_skipped_damage`](crate::remove_skipped_damage))
/// is removed at open.
pub(crate) const REPAIR_TMP_SUFFIX: &str = ".repair-tmp";

/// The segment files of a directory.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Segment ids, sorted.
    pub(crate) ids: Vec<SegmentId>,
    /// Segments whose file name is not the canonical `segment-%04d.log` (e.g.
    /// `segment-7.log`, which the pattern accepts too), by id.
    pub(crate) misnamed: HashMap<SegmentId, String>,
    /// Whether a leftover temporary side file is there.
    pub(crate) has_tmp: bool,
    /// Whether a leftover temporary copy of the side file is there.
    pub(crate) has_copy_tmp: bool,
    /// Whether a leftover temporary checkpoint is there.
    pub(crate) has_index_tmp: bool,
    /// Leftover temporary copies of `remove_skipped_damage`.
    pub(crate) repair_tmps: Vec<String>,
}

impl Listing {
    /// The name of segment `id`'s file in the directory.
    pub(crate) fn name(&self, id: SegmentId) -> String {
        self.misnamed
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.file_name())
    }
}

/// Lists a directory's segment files; two files with the same id are an error.
pub(crate) fn list_segments(dir: &Dir) -> Result<Listing> {
    let mut listing = Listing::default();
    let mut names: HashMap<SegmentId, String> = HashMap::new();
    for name in dir.list()? {
        listing.has_tmp |= name == META_TMP_FILE;
        listing.has_copy_tmp |= name == META_COPY_TMP_FILE;
        listing.has_index_tmp |= name == INDEX_TMP_FILE;
        if name.ends_with(REPAIR_TMP_SUFFIX) {
            listing.repair_tmps.push(name.clone());
        }
        let Some(id) = SegmentId::parse_file_name(&name) else {
            continue;
        };
        if id > SegmentId::MAX {
            return Err(Error::SegmentIdOutOfRange {
                path: dir.join(&name),
            });
        }
        if let Some(other) = names.insert(id, name.clone()) {
            let (first, second) = if other < name {
                (other, name)
            } else {
                (name, other)
            };
            return Err(Error::DuplicateSegment {
                dir: dir.path().to_path_buf(),
                id,
                first,
                second,
            });
        }
    }
    listing.ids = names.keys().copied().collect();
    listing.ids.sort_unstable();
    listing.misnamed = names
        .into_iter()
        .filter(|(id, name)| *name != id.file_name())
        .collect();
    Ok(listing)
}

/// The segment ids of a directory, sorted; errors as for an open's listing.
pub(crate) fn segment_ids(dir: &Dir) -> Result<Vec<SegmentId>> {
    list_segments(dir).map(|listing| listing.ids)
}

/// Checks that `live` (sorted) starts at `first` and has no gap: a missing
/// segment is [`Error::MissingSegment`].
pub(crate) fn check_contiguous(dir: &Path, first: SegmentId, live: &[SegmentId]) -> Result<()> {
    let mut expected = first;
    for &id in live {
        if id != expected {
            return Err(Error::MissingSegment {
                dir: dir.to_path_buf(),
                id: expected,
            });
        }
        expected = id.next();
    }
    Ok(())
}

/// Removes a segment file; one already gone is fine (the step is being redone).
pub(crate) fn remove_segment(dir: &Dir, id: SegmentId) -> Result<()> {
    dir.remove_if_exists(&id.file_name()).map(drop)
}

/// Removes the newest segments of a log, newest first, syncing the directory after
/// each removal: without that, a crash could keep the removal of an older one and
/// lose that of a newer one, leaving a gap that recovery must refuse.
pub(crate) fn remove_newest_first(dir: &Dir, ids: &[SegmentId]) -> Result<()> {
    let mut newest_first = ids.to_vec();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    for id in newest_first {
        remove_segment(dir, id)?;
        dir.sync()?;
    }
    Ok(())
}

/// Cuts a segment file to `len` bytes, durably.
pub(crate) fn cut_segment(dir: &Dir, id: SegmentId, len: u64) -> Result<()> {
    let file = dir.open(&id.file_name(), OpenMode::ReadWrite)?;
    file.set_len(len)?;
    file.sync_data()
}
