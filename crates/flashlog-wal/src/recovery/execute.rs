//! Recovery's last step in a read-write open: carrying out the [`Plan`] in an
//! order that keeps every crash point recoverable, and syncing the segments that
//! recovery accepted and no checkpoint describes.

use std::collections::HashMap;

use crate::checkpoint::{self, Sealed};
use crate::dir::{self, INDEX_TMP_FILE, META_COPY_TMP_FILE, META_TMP_FILE};
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::index::Index;
use crate::meta::{self, Meta};
use crate::position::SegmentId;
use crate::recovery::plan::Plan;

/// Syncs the sealed segments that recovery accepted and the checkpoint does not
/// describe (those of a Go writer, or of a writer that crashed before its next
/// checkpoint): their entries count as durable from now on, and a later
/// checkpoint will name them. Segments this library sealed were synced then, and
/// syncing a clean file again costs little.
pub(crate) fn sync_unrecorded(
    dir: &Dir,
    index: &Index,
    records: &HashMap<SegmentId, Sealed>,
) -> Result<()> {
    let active = index.active().id;
    let sealed: HashMap<SegmentId, Sealed> = index
        .sealed(active)
        .into_iter()
        .map(|record| (record.id, record))
        .collect();
    for segment in &index.segments {
        let recorded = records
            .get(&segment.id)
            .is_some_and(|record| sealed.get(&segment.id) == Some(record));
        if segment.id != active && !recorded {
            dir.open(&segment.id.file_name(), OpenMode::Read)?
                .sync_data()?;
        }
    }
    Ok(())
}

/// Carries out a plan. Each step is idempotent, and the order keeps every crash
/// point recoverable: stale segments go oldest first (the side file already names
/// the new first segment), dropped segments newest first (the damage that caused
/// the drop stays until the cut, so a second recovery decides the same).
pub(crate) fn execute(dir: &Dir, plan: &Plan, meta: &mut Meta, index: &Index) -> Result<()> {
    let newest_kept = index.active().id;
    let changed = plan
        .cut
        .map(|(id, _)| id)
        .into_iter()
        .chain(plan.dropped.iter().copied())
        .min();
    if let Some(changed) = changed {
        // Segments are about to change: their records must not outlive them
        // (those of the segments before stay if they hold gaps, see checkpoint).
        let kept: Vec<Sealed> = index
            .sealed(newest_kept)
            .into_iter()
            .filter(|record| record.id < changed)
            .collect();
        checkpoint::retain(dir, &kept)?;
    }
    remove_leftovers(dir, plan)?;
    if plan.rewrite_meta {
        // Before any segment changes, both copies of the side file say the same.
        meta::store(dir, meta)?;
    }
    for &id in &plan.stale {
        dir::remove_segment(dir, id)?;
    }
    if !plan.stale.is_empty() {
        dir.sync()?;
    }
    if changed.is_some() {
        // Positions from the cut on will hold other entries: counted, before any
        // segment changes, for read-only views in other processes (see
        // `Shared::confirm_view`). And before the newest segments go, the side
        // file must stop naming them.
        meta.truncations += 1;
        meta.last_cut = index.next_seq();
        if !plan.dropped.is_empty() {
            meta.last_segment = Some(newest_kept);
        }
        meta::store(dir, meta)?;
    }
    dir::remove_newest_first(dir, &plan.dropped)?;
    if let Some((id, len)) = plan.cut {
        dir::cut_segment(dir, id, len)?;
    }
    Ok(())
}

/// Removes the temporary files a crash left (never the truth: each is renamed
/// into place only once complete). A directory in the place of one is an error
/// that names it, not a failed removal.
pub(crate) fn remove_leftovers(dir: &Dir, plan: &Plan) -> Result<()> {
    let mut names: Vec<&str> = Vec::new();
    if plan.remove_index_tmp {
        names.push(INDEX_TMP_FILE);
    }
    names.extend(plan.remove_repair_tmps.iter().map(String::as_str));
    if plan.remove_tmp {
        names.push(META_TMP_FILE);
    }
    if plan.remove_copy_tmp {
        names.push(META_COPY_TMP_FILE);
    }
    for name in names {
        match dir.remove_if_exists(name) {
            Err(Error::Io { source, path, .. })
                if source.kind() == std::io::ErrorKind::IsADirectory =>
            {
                return Err(Error::UnexpectedDirectory { path });
            }
            other => drop(other?),
        }
    }
    Ok(())
}
