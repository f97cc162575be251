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

/// The interactive shell, under a pseudo-terminal made by util-linux `script`:
/// line editing (the up arrow recalls the last line), Ctrl-C cancels the line
/// being typed, Ctrl-D ends the session, and the history is kept in a file.
#[test]
fn the_shell_at_a_terminal_edits_lines_and_keeps_history() {
    // `script` is in every Linux base system (util-linux, Debian's bsdutils): a
    // machine without it fails this test rather than passing it unrun.
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "this test needs util-linux's `script` to make a terminal"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let state = tmp.path().join("state");
    let command = format!("'{}' --dir '{}' shell", binary().display(), dir.display());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("XDG_STATE_HOME", &state)
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Keys as typed, with time for the line editor to take each line.
    for keys in [
        &b"put a 1\r"[..],
        b"get a\r",
        b"garbage\x03",
        b"\x1b[A\r",
        b"\x04",
    ] {
        std::thread::sleep(Duration::from_millis(300));
        use std::io::Write;
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("flashlog> "), "a prompt at a terminal: {out}");
    let answers: Vec<&str> = out
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| ["OK", "1"].contains(line) || line.contains("unknown command"))
        .collect();
    // put, get, (garbage cancelled: no error), the recalled get.
    assert_eq!(answers, ["OK", "1", "1"], "{out}");
    let history = std::fs::read_to_string(state.join("flashlog/history")).unwrap();
    assert!(history.contains("put a 1\nget a\n"), "{history}");
    assert!(!history.contains("garbage"), "{history}");
}

/// Unmounts on drop.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax, e.g. `4m`) on a new temporary
    /// directory; panics if it cannot (the callers are root-only tests).
    fn mount(size: &str) -> (tempfile::TempDir, Tmpfs) {
        let tmp = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(tmp.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            mounted,
            "cannot mount a tmpfs on {} (not root?)",
            tmp.path().display()
        );
        let mount = Tmpfs(tmp.path().to_path_buf());
        (tmp, mount)
    }
}

/// A compaction that runs out of disk space fails with the error, and leaves the
/// store whole and the log clean.
#[test]
#[ignore = "needs root: mounts a 4 MiB tmpfs to fill it"]
fn compact_on_a_full_disk_leaves_a_clean_log() {
    let (tmp, _mount) = Tmpfs::mount("4m");
    let dir = tmp.path().join("data");
    // 3 MiB of which half is dead, on a 4 MiB file system: the copies do not fit.
    let mut script = String::new();
    for round in ['a', 'b'] {
        for key in 0..24 {
            script.push_str(&format!(
                "put key{key:02} {}\n",
                round.to_string().repeat(64 << 10)
            ));
        }
    }
    flashlog(&dir, &["shell"])
        .write_stdin(script)
        .assert()
        .success();
    let output = flashlog(&dir, &["compact"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let err = stderr(&output);
    assert!(
        err.starts_with("error: compaction failed (nothing removed, the store is whole; "),
        "{err}"
    );
    assert!(
        err.ends_with("No space left on device (os error 28)\n"),
        "{err}"
    );
    flashlog(&dir, &["verify"]).assert().code(0);
    let output = flashlog(&dir, &["scan"]).output().unwrap();
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 24);
    assert!(out.lines().all(|line| line.ends_with('b')));
}

/// A small `put` on a disk with less room than the log's preallocation (1 MiB of
/// zeros) succeeds: the zeros that do not fit are skipped. (It failed with ENOSPC
/// while 476 KiB were free.)
#[test]
#[ignore = "needs root: mounts a 512 KiB tmpfs to fill it"]
fn a_small_put_on_a_nearly_full_disk_succeeds() {
    let (tmp, _mount) = Tmpfs::mount("512k");
    std::fs::write(tmp.path().join("filler"), vec![1u8; 36 << 10]).unwrap();
    let dir = tmp.path().join("data");
    flashlog(&dir, &["put", "user:1", "alice"])
        .assert()
        .success();
    let output = flashlog(&dir, &["get", "user:1"]).output().unwrap();
    assert_eq!(stdout(&output), "alice\n");
}

/// An error that means the log is damaged says what to do next.
#[test]
fn damage_errors_end_with_what_to_do_next() {
    let (_tmp, log) = crate::common::fixture_copy("go-corrupt-middle");
    for args in [&["get", "k"][..], &["put", "k", "v"], &["scan"]] {
        let output = flashlog(&log, args).output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        let err = stderr(&output);
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(
            err.ends_with("; the log is damaged: run `flashlog verify` to list the damage, then `flashlog repair --dry-run`\n"),
            "{err}"
        );
    }
    // Other errors do not.
    let tmp = tempfile::tempdir().unwrap();
    let output = flashlog(tmp.path(), &["put", "", "v"]).output().unwrap();
    assert!(!stderr(&output).contains("flashlog verify"), "{output:?}");
}
