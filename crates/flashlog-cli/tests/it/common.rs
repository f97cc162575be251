use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../flashlog-wal/tests/fixtures"
);

/// `flashlog --dir DIR ARGS...`.
pub fn flashlog(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("flashlog").unwrap();
    cmd.arg("--dir").arg(dir).args(args);
    cmd
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A fresh copy of a Go-written fixture log; returns the folder and the log in it.
pub fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    std::fs::create_dir(&log).unwrap();
    for entry in std::fs::read_dir(Path::new(FIXTURES).join(name).join("wal")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), log.join(entry.file_name())).unwrap();
    }
    (tmp, log)
}

/// Every segment file of a log folder with its bytes, sorted.
pub fn segment_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("segment-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}
