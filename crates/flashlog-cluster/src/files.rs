//! Small files written crash-safely: a temporary file, fsync, rename over the
//! old one, fsync of the directory. After a crash either the old or the new
//! contents are there, never a mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{io, Result};

/// Replaces `path` with `bytes` crash-safely.
///
/// # Errors
/// `Error::Io` naming the file and the step that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(bytes).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io("rename to", path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs the directory `dir` (so that a create, rename or remove in it survives a crash).
///
/// # Errors
/// `Error::Io` naming the directory.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

/// The contents of `path`, or `None` if there is no such file.
///
/// # Errors
/// `Error::Io` for any other failure.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}
