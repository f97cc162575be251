//! `flashlog tail [--from SEQ] [-f]`, with writers in other processes, and the
//! cursors in `stats` and `verify`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use flashlog_wal::{Op, Options, Wal, CURSORS_FILE};

use crate::common::{flashlog, stderr, stdout};

/// A log of `n` puts, `key-I` = `value-I`.
fn log_of(dir: &Path, n: u32) {
    let wal = Wal::open(dir, Options::default()).unwrap();
    for i in 1..=n {
        wal.append(
            Op::Put,
            format!("key-{i}").as_bytes(),
            format!("value-{i}").as_bytes(),
        )
        .unwrap();
    }
    wal.close().unwrap();
}

#[test]
fn tail_prints_the_last_ten_entries_as_dump_does() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 25);
    for format in [&[][..], &["--hex"], &["--json"]] {
        let dump = flashlog(dir.path(), &[&["dump"], format].concat())
            .output()
            .unwrap();
        let dump: Vec<String> = stdout(&dump).lines().map(str::to_owned).collect();
        let tail = flashlog(dir.path(), &[&["tail"], format].concat())
            .output()
            .unwrap();
        assert!(tail.status.success(), "{}", stderr(&tail));
        let tail: Vec<String> = stdout(&tail).lines().map(str::to_owned).collect();
        assert_eq!(tail, dump[15..], "{format:?}");
        let from = flashlog(dir.path(), &[&["tail", "--from", "24"], format].concat())
            .output()
            .unwrap();
        assert_eq!(stdout(&from).lines().collect::<Vec<_>>(), dump[23..]);
    }
    // Past the end: nothing, exit 0. A short log: all of it.
    let past = flashlog(dir.path(), &["tail", "--from", "99"])
        .output()
        .unwrap();
    assert!(past.status.success() && past.stdout.is_empty());
    let short = tempfile::tempdir().unwrap();
    log_of(short.path(), 3);
    let out = flashlog(short.path(), &["tail"]).output().unwrap();
    assert_eq!(stdout(&out).lines().count(), 3);
    assert!(stdout(&out).starts_with("#1 at 1:0 put key-1 = value-1\n"));
}

/// `flashlog tail -f` as a child process, its stdout lines in a channel.
struct Follower {
    child: Child,
    lines: Receiver<String>,
}

impl Follower {
    fn start(dir: &Path, args: &[&str]) -> Follower {
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("flashlog"))
            .arg("--dir")
            .arg(dir)
            .args(["tail", "-f"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next `n` lines, waiting up to 20 s in all.
    fn next(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        (0..n)
            .map(|i| {
                let left = deadline.saturating_duration_since(Instant::now());
                self.lines
                    .recv_timeout(left)
                    .unwrap_or_else(|_| panic!("line {i} of {n} did not come"))
            })
            .collect()
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit: its code and stderr.
    fn interrupt(self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        assert!(StdCommand::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
        let output = self.child.wait_with_output().unwrap();
        (output.status.code(), stderr(&output))
    }
}

fn keys(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|line| line.split(' ').nth(4).unwrap_or("").to_owned())
        .collect()
}

/// A follower sees what other processes append: `flashlog put` (each its own
/// writer process), then a writer holding the lock that rotates segments and
/// truncates back over printed entries; it never takes the lock; Ctrl-C ends it
/// with exit code 0.
#[test]
fn tail_f_follows_writers_in_other_processes_across_rotations_and_cuts() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 12);
    let follower = Follower::start(dir.path(), &[]);
    assert_eq!(keys(&follower.next(10))[0], "key-3");
    for i in 13..=14 {
        let put = flashlog(dir.path(), &["put", &format!("key-{i}"), "x"])
            .output()
            .unwrap();
        assert!(put.status.success(), "{}", stderr(&put));
    }
    assert_eq!(keys(&follower.next(2)), ["key-13", "key-14"]);
    // A writer that keeps the lock (so the follower cannot be taking it), with
    // small segments: it rotates many times.
    let wal = Wal::open(dir.path(), Options::default().max_segment_size(200)).unwrap();
    for i in 15..=40 {
        wal.append(Op::Put, format!("key-{i}").as_bytes(), b"rotating")
            .unwrap();
    }
    assert!(wal.segments().len() > 3);
    let lines = follower.next(26);
    assert_eq!(keys(&lines).last().unwrap(), "key-40");
    assert!(lines.last().unwrap().starts_with("#40 at "), "{lines:?}");
    // The writer cuts entries the follower printed, and writes a new history.
    wal.truncate_back(35).unwrap();
    for i in 0..3 {
        wal.append(Op::Put, format!("new-{i}").as_bytes(), b"after the cut")
            .unwrap();
    }
    let lines = follower.next(3);
    assert_eq!(keys(&lines), ["new-0", "new-1", "new-2"]);
    assert!(lines[0].starts_with("#35 at "), "{lines:?}");
    wal.close().unwrap();
    let (code, errors) = follower.interrupt();
    assert_eq!(code, Some(0), "{errors}");
    assert!(
        errors.contains("entries from 35 on were cut (truncate_back by the writer)"),
        "{errors}"
    );
}

/// A closed pipe ends the follower quietly, with 0 (as `| head` expects).
#[test]
fn tail_f_ends_quietly_when_its_reader_goes() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 2);
    let mut follower = Follower::start(dir.path(), &["--from", "1"]);
    assert_eq!(follower.next(2).len(), 2);
    drop(follower.lines);
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        // Each line written to the closed pipe fails with EPIPE.
        wal.append(Op::Put, b"more", b"x").unwrap();
        if let Some(status) = follower.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "tail -f went on writing to a closed pipe"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut follower.child.stderr.take().unwrap(), &mut errors).unwrap();
    assert_eq!((status.code(), errors.as_str()), (Some(0), ""));
}

#[test]
fn stats_lists_cursors_with_their_lag_and_verify_names_a_damaged_cursor_file() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 20);
    {
        let wal = Wal::open(dir.path(), Options::default()).unwrap();
        wal.set_cursor("indexer", 20).unwrap();
        wal.set_cursor("replica", 12).unwrap();
    }
    let out = flashlog(dir.path(), &["stats"]).output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("cursor   seq  lag\nindexer  20   0\nreplica  12   8\n"),
        "{text}"
    );
    let out = flashlog(dir.path(), &["stats", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        json["cursors"],
        serde_json::json!([
            {"name": "indexer", "seq": 20, "lag": 0},
            {"name": "replica", "seq": 12, "lag": 8},
        ])
    );
    assert_eq!(json["cursors_error"], serde_json::Value::Null);
    let verify = flashlog(dir.path(), &["verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", stdout(&verify));
    // Damage the cursor file: verify names it (exit 1), stats says so, the log
    // itself still dumps.
    let path = dir.path().join(CURSORS_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let verify = flashlog(dir.path(), &["verify"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(1));
    let text = stdout(&verify);
    assert!(
        text.contains("side file: ")
            && text.contains("flashlog.cursors is damaged (checksum mismatch)"),
        "{text}"
    );
    assert!(text.contains("the lines above say how to mend"), "{text}");
    let out = flashlog(dir.path(), &["stats", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json["cursors"].is_null());
    assert!(json["cursors_error"]
        .as_str()
        .unwrap()
        .contains("corrupt cursor file"));
    assert!(flashlog(dir.path(), &["dump"])
        .output()
        .unwrap()
        .status
        .success());
}
