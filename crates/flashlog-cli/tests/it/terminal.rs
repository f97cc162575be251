//! Issue 13, section 4: at a terminal (Ctrl-C, the bench's scratch folder, the
//! interactive shell, wording).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{flashlog, segment_bytes, stderr, stdout};

fn binary() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("flashlog")
}

fn sigint(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A store whose compaction copies about 20 MiB in 4 MiB batches.
fn store_to_compact(dir: &Path) {
    let mut script = Vec::new();
    for round in 0..2u8 {
        for key in 0..80 {
            script.extend_from_slice(format!("put key{key:03} ").as_bytes());
            script.extend(std::iter::repeat_n(b'a' + round, 256 << 10));
            script.push(b'\n');
        }
    }
    flashlog(dir, &["shell"])
        .write_stdin(script)
        .assert()
        .success();
}

#[test]
fn ctrl_c_stops_compact_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    store_to_compact(dir);
    let segments = segment_bytes(dir).len();
    let child = Command::new(binary())
        .arg("--dir")
        .arg(dir)
        .arg("compact")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The compaction has started once it sealed the active segment (a new one
    // appears); then Ctrl-C.
    let start = Instant::now();
    while segment_bytes(dir).len() == segments {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "compact never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    sigint(child.id());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let out = stdout(&output);
    assert!(out.starts_with("stopped by Ctrl-C: copied "), "{out}");
    assert!(
        out.contains("removed nothing; the store is unchanged and whole"),
        "{out}"
    );
    assert_eq!(stderr(&output), "");
    flashlog(dir, &["verify"]).assert().code(0);
    let output = flashlog(dir, &["scan", "key07"]).output().unwrap();
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 10);
    assert!(out.lines().all(|line| line.ends_with(&"b".repeat(100))));
    // The next compaction finishes the job.
    let output = flashlog(dir, &["compact"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).starts_with("compacted "), "{output:?}");
    flashlog(dir, &["verify"]).assert().code(0);
}

#[test]
fn bench_uses_the_temporary_directory_and_cleans_up_on_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch_parent = tmp.path().join("tmp");
    std::fs::create_dir(&scratch_parent).unwrap();
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    // Without --dir: in TMPDIR, not in the current folder.
    let child = Command::new(binary())
        .args(["bench", "--threads", "1", "--size", "64", "--seconds", "30"])
        .env("TMPDIR", &scratch_parent)
        .current_dir(&cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_dir(&scratch_parent).unwrap().count() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no scratch folder"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    sigint(child.id());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    assert!(
        stderr(&output).starts_with("stopped by Ctrl-C; removed "),
        "{output:?}"
    );
    assert_eq!(std::fs::read_dir(&scratch_parent).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0);
}
