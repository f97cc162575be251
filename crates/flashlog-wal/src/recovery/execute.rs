//! Recovery's last step in a read-write open, and the only one that changes
//! files: carrying out the [`Plan`] that the policy decided, in an order that
//! keeps every crash point recoverable.

use crate::checkpoint;
use crate::dir::{self, cut_segment, remove_newest_first};
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode};
use crate::index::Index;
use crate::meta;
use crate::position::SegmentId;
use crate::recovery::plan::Plan;
use crate::truncate;

/// Carries out a plan. Each step is idempotent, and the order keeps every crash
/// point recoverable: misnamed segments are renamed first (a rename changes no
/// content); unrecorded sealed segments are synced before anything counts on
/// them; the checkpoint loses the records of segments that will change before
/// any does; both copies of the side file agree before any segment changes;
/// stale segments go oldest first (the side file already names the new first
/// segment), dropped segments newest first (the damage that caused the drop
/// stays until the cut, so a second recovery decides the same); an interrupted
/// `truncate_back` is finished as `truncate_back` would have.
///
/// `index` is the plan's: finishing a `truncate_back` reads the CRC of the
/// newest segment's new last entry into it.
pub(crate) fn execute(dir: &Dir, plan: &Plan, index: &mut Index) -> Result<()> {
    for (name, id) in &plan.renames {
        dir.rename(name, &id.file_name())?;
    }
    if !plan.renames.is_empty() {
        dir.sync()?;
    }
    for id in &plan.sync {
        dir.open(&id.file_name(), OpenMode::Read)?.sync_data()?;
    }
    if let Some(kept) = &plan.retain_records {
        checkpoint::retain(dir, kept)?;
    }
    remove_leftovers(dir, &plan.leftovers)?;
    if plan.create {
        drop(dir.open(&SegmentId(1).file_name(), OpenMode::CreateNew)?);
        dir.sync()?;
    }
    if let Some(meta) = &plan.rewrite_meta {
        meta::store(dir, meta)?;
    }
    for &id in &plan.stale {
        dir::remove_segment(dir, id)?;
    }
    if !plan.stale.is_empty() {
        dir.sync()?;
    }
    if let Some(meta) = &plan.meta_before_cut {
        meta::store(dir, meta)?;
    }
    remove_newest_first(dir, &plan.dropped)?;
    if let Some((id, len)) = plan.cut {
        cut_segment(dir, id, len)?;
    }
    if let Some((back, meta)) = &plan.truncate_back {
        if let Some(back) = back {
            truncate::cut_back_files(dir, back)?;
            truncate::read_last_crc(dir, index)?;
        }
        meta::store(dir, meta)?;
    }
    if let Some(meta) = &plan.meta_last {
        meta::store(dir, meta)?;
    }
    Ok(())
}

/// Removes the temporary files a crash left (never the truth: each is renamed
/// into place only once complete). A directory in the place of one is an error
/// that names it, not a failed removal.
fn remove_leftovers(dir: &Dir, names: &[String]) -> Result<()> {
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
