//! Telling a log directory from something else before the log creates files in it.

use std::io::ErrorKind;
use std::path::Path;

use flashlog_wal::SegmentId;

use crate::{Error, Result};

/// Accepts a missing directory, an empty one, or one holding a segment file or only
/// flashlog side files; anything else is [`Error::NotALog`].
pub(crate) fn check_is_log(dir: &Path) -> Result<()> {
    let io = |op, source| Error::Io {
        op,
        path: dir.to_path_buf(),
        source,
    };
    let metadata = match std::fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io("stat", err)),
    };
    if !metadata.is_dir() {
        return Err(Error::NotALog {
            dir: dir.to_path_buf(),
            found: "a file".into(),
        });
    }
    let mut foreign = None;
    for entry in std::fs::read_dir(dir).map_err(|err| io("list directory", err))? {
        let entry = entry.map_err(|err| io("list directory", err))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if SegmentId::parse_file_name(&name).is_some() {
            return Ok(());
        }
        if !name.starts_with("flashlog") && foreign.is_none() {
            foreign = Some(name);
        }
    }
    match foreign {
        Some(found) => Err(Error::NotALog {
            dir: dir.to_path_buf(),
            found,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_files_without_segments_are_not_a_log() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_is_log(&dir.path().join("missing")).is_ok());
        assert!(check_is_log(dir.path()).is_ok());
        std::fs::write(dir.path().join("notes.txt"), b"hi").unwrap();
        let err = check_is_log(dir.path()).unwrap_err();
        assert!(matches!(err, Error::NotALog { ref found, .. } if found == "notes.txt"));
        std::fs::write(dir.path().join("segment-0001.log"), b"").unwrap();
        assert!(check_is_log(dir.path()).is_ok());
        let file = dir.path().join("notes.txt");
        assert!(matches!(check_is_log(&file), Err(Error::NotALog { .. })));
    }
}
