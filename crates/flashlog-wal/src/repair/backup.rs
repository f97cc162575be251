//! The copy of the segment files a repair changes, kept before it changes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Result;
use crate::fs::{Dir, Fs, OpenMode};

/// How many bytes a copy reads and writes at a time.
const CHUNK: usize = 1 << 20;

/// Copies the files `names` of `dir`, durably, into `into` (created if missing;
/// a file of the same name already in it is an error) or, if `None`, into a new folder `flashlog-repair-<unix time>` (or
/// `…-<unix time>-<n>`, the first that does not exist) in `dir`. Each copy is
/// fdatasynced, then the folder; creating the folder fsyncs its parent. Returns
/// the folder.
pub(crate) fn keep_copies(
    fs: &Arc<dyn Fs>,
    dir: &Dir,
    names: &[String],
    into: Option<&Path>,
) -> Result<PathBuf> {
    let folder = match into {
        Some(into) => into.to_path_buf(),
        None => new_folder(fs, dir),
    };
    let backup = Dir::new(Arc::clone(fs), folder.clone());
    backup.create()?;
    let mut buf = vec![0u8; CHUNK];
    for name in names {
        let from = dir.open(name, OpenMode::Read)?;
        let to = backup.open(name, OpenMode::CreateNew)?;
        let mut at = 0;
        loop {
            let read = from.read_up_to(&mut buf, at)?;
            if read == 0 {
                break;
            }
            to.write_all_at(&buf[..read], at)?;
            at += read as u64;
        }
        to.sync_data()?;
    }
    backup.sync()?;
    Ok(folder)
}

/// A folder name in `dir` that is not taken yet.
fn new_folder(fs: &Arc<dyn Fs>, dir: &Dir) -> PathBuf {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let taken = |path: &Path| fs.list_dir(path).is_ok() || fs.open(path, OpenMode::Read).is_ok();
    let mut folder = dir.join(&format!("flashlog-repair-{now}"));
    let mut n = 1;
    while taken(&folder) {
        folder = dir.join(&format!("flashlog-repair-{now}-{n}"));
        n += 1;
    }
    folder
}
