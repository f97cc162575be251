//! `flashlog` on logs whose side file (`flashlog.meta`) is damaged or lost: the
//! segments are intact, so every command must still get at them, and `repair`
//! rebuilds the side file.

use std::fs;
use std::path::Path;

use flashlog_wal::{Op, Options, Wal, META_FILE};

use crate::common::{flashlog, stderr, stdout};

/// The second copy of the side file.
const META_COPY: &str = "flashlog.meta.bak";

/// A log of 30 entries in several segments after `truncate_front(15)`; returns its
/// first sequence number.
fn truncated_log(dir: &Path) -> u64 {
    let wal = Wal::open(dir, Options::default().max_segment_size(128)).unwrap();
    for n in 0..30u32 {
        wal.append(Op::Put, format!("key{n}").as_bytes(), &[n as u8; 20])
            .unwrap();
    }
    wal.truncate_front(15).unwrap();
    let first = wal.first_seq();
    assert!(first > 1);
    wal.close().unwrap();
    first
}

fn first_dumped_seq(log: &Path) -> u64 {
    let output = flashlog(log, &["dump", "--hex"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let out = stdout(&output);
    out.split(' ').next().unwrap().parse().unwrap()
}

/// Issue 12, item 4: one flipped byte in `flashlog.meta` made `verify`, `dump`
/// and `repair` fail with `CorruptMeta`; `repair` now rewrites it from its copy.
#[test]
fn regression_repair_rebuilds_a_damaged_side_file_from_its_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let first = truncated_log(&log);
    let meta = fs::read(log.join(META_FILE)).unwrap();
    let mut damaged = meta.clone();
    damaged[21] ^= 1;
    fs::write(log.join(META_FILE), &damaged).unwrap();

    let output = flashlog(&log, &["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stdout(&output).contains(META_FILE), "{output:?}");
    assert_eq!(first_dumped_seq(&log), first);
    assert_eq!(fs::read(log.join(META_FILE)).unwrap(), damaged, "read-only");

    let output = flashlog(&log, &["repair", "--dry-run"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).contains("would rewrite"), "{output:?}");
    assert_eq!(fs::read(log.join(META_FILE)).unwrap(), damaged, "dry run");

    let output = flashlog(&log, &["repair"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(fs::read(log.join(META_FILE)).unwrap(), meta);
    flashlog(&log, &["verify"]).assert().code(0);
    assert_eq!(first_dumped_seq(&log), first);
}

/// Issue 12, item 4: with both copies lost, `repair` names the flag that
/// rebuilds the side file, and `--first-seq N` rebuilds it.
#[test]
fn regression_repair_first_seq_rebuilds_a_lost_side_file() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let first = truncated_log(&log);
    for name in [META_FILE, META_COPY] {
        let _ = fs::remove_file(log.join(name));
    }
    let output = flashlog(&log, &["repair"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(stderr(&output).contains("--first-seq"), "{output:?}");

    let first_arg = first.to_string();
    let output = flashlog(&log, &["repair", "--first-seq", &first_arg])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    flashlog(&log, &["verify"]).assert().code(0);
    assert_eq!(first_dumped_seq(&log), first);
    // The log goes on from where it was.
    let wal = Wal::open(&log, Options::default()).unwrap();
    assert_eq!(wal.append(Op::Put, b"next", b"").unwrap(), 31);
}

/// Both copies damaged: the same, and the error says so.
#[test]
fn regression_repair_first_seq_replaces_two_damaged_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let first = truncated_log(&log);
    for name in [META_FILE, META_COPY] {
        fs::write(log.join(name), b"garbage").unwrap();
    }
    let output = flashlog(&log, &["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(stderr(&output).contains("--first-seq"), "{output:?}");
    let first_arg = first.to_string();
    let output = flashlog(&log, &["repair", "--first-seq", &first_arg])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    flashlog(&log, &["verify"]).assert().code(0);
    assert_eq!(first_dumped_seq(&log), first);
}

/// `--first-seq` with an intact side file that says otherwise is refused before
/// anything changes, even when the log has damage a plain repair would cut.
#[test]
fn repair_first_seq_refuses_an_intact_side_file_that_disagrees() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let first = truncated_log(&log);
    let newest = fs::read_dir(&log)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".log"))
        .max()
        .unwrap();
    let bytes = fs::read(&newest).unwrap();
    fs::write(&newest, &bytes[..bytes.len() - 3]).unwrap();
    let files = || {
        let mut all: Vec<(String, Vec<u8>)> = fs::read_dir(&log)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_name() != flashlog_wal::LOCK_FILE)
            .map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                (name, fs::read(entry.path()).unwrap())
            })
            .collect();
        all.sort();
        all
    };
    let before = files();
    let wrong = (first + 1).to_string();
    let output = flashlog(&log, &["repair", "--first-seq", &wrong])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let err = stderr(&output);
    assert!(
        err.contains(&format!("says its first sequence number is {first}")),
        "{err}"
    );
    assert_eq!(stdout(&output), "");
    assert!(files() == before, "a refused repair changed files");
    // With the right number it repairs as a plain repair does.
    let output = flashlog(&log, &["repair", "--first-seq", &first.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).starts_with("will cut 39 bytes at segment 10"),
        "{output:?}"
    );
    flashlog(&log, &["verify"]).assert().code(0);
}
