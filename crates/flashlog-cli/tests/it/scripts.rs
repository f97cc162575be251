//! Issue 13, section 2: scripts (exit codes, closed pipes, waiting for the lock,
//! argument errors).

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{flashlog, stderr, stdout};

fn binary() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("flashlog")
}

/// A store with enough entries that `dump` and `scan` write far more than a
/// pipe's buffer (64 KiB).
fn big_store(dir: &Path) {
    let script: String = (0..4000)
        .map(|i| format!("put key{i:05} value-{i}-{}\n", "x".repeat(20)))
        .collect();
    flashlog(dir, &["shell"])
        .write_stdin(script)
        .assert()
        .success();
}

/// `bash -c SCRIPT` with `$F` the binary and `$D` the store; returns stdout.
fn bash(script: &str, dir: &Path) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("F", binary())
        .env("D", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn shell_exit_code_says_whether_a_piped_command_failed() {
    let tmp = tempfile::tempdir().unwrap();
    flashlog(tmp.path(), &["shell"])
        .write_stdin("put a 1\nget a\nget absent\n")
        .assert()
        .code(0)
        .stdout("OK\n1\n(not found)\n");
    flashlog(tmp.path(), &["shell"])
        .write_stdin("put a 2\nbogus\nget a\n")
        .assert()
        .code(2)
        .stdout("OK\n2\n")
        .stderr("error: unknown command \"bogus\" (try help)\n");
    let help = flashlog(tmp.path(), &["shell", "--help"]).output().unwrap();
    assert!(
        stdout(&help).contains("it exits with 2 if any command in it failed"),
        "{help:?}"
    );
}

#[test]
fn a_pipe_closed_early_ends_the_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    big_store(tmp.path());
    // As a user types it: bash pipes, head closes the pipe after one line.
    for (command, first) in [
        (
            "\"$F\" --dir \"$D\" dump | head -1",
            "#1 at 1:0 put key00000 = ",
        ),
        ("\"$F\" --dir \"$D\" dump --json | head -1", "{"),
        (
            "\"$F\" --dir \"$D\" scan 2>&1 | head -1",
            "key00000 value-0-",
        ),
        (
            "\"$F\" --dir \"$D\" scan --hex 2>&1 | head -1",
            "6b65793030303030 76616c75652d302d",
        ),
        ("\"$F\" --dir \"$D\" stats 2>&1 | head -1", "segment "),
        (
            "yes get key00001 | head -5000 | \"$F\" --dir \"$D\" shell 2>&1 | head -1",
            "value-1-",
        ),
    ] {
        let output = bash(
            &format!("{command}; echo \"exit ${{PIPESTATUS[-2]}}\""),
            tmp.path(),
        );
        let out = stdout(&output);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{command}: {output:?}");
        assert!(lines[0].starts_with(first), "{command}: {out}");
        assert_eq!(lines[1], "exit 0", "{command}: {output:?}");
        assert_eq!(stderr(&output), "", "{command}");
    }
    // The same with the pipe in hand: read one line, close it, wait.
    let mut child = Command::new(binary())
        .arg("--dir")
        .arg(tmp.path())
        .arg("dump")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    drop(reader);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(stderr(&output), "");
    // The shell stopped cleanly too: the store opens and was not left locked.
    flashlog(tmp.path(), &["--lock-timeout", "0", "put", "after", "1"])
        .assert()
        .success();
}

/// Holds the store's lock with a shell until the returned stdin is dropped.
fn hold_lock(dir: &Path) -> (std::process::Child, std::process::ChildStdin) {
    let mut shell = Command::new(binary())
        .arg("--dir")
        .arg(dir)
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = shell.stdin.take().unwrap();
    writeln!(stdin, "put held 1").unwrap();
    let mut reader = std::io::BufReader::new(shell.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "OK\n", "the shell has the store open");
    (shell, stdin)
}

#[test]
fn a_writer_waits_for_the_lock_then_says_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut shell, stdin) = hold_lock(dir);
    // Gives up after --lock-timeout with exit code 3.
    let start = Instant::now();
    let output = flashlog(dir, &["--lock-timeout", "0.5", "put", "k", "v"])
        .output()
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("busy: still locked after 0.5 s (--lock-timeout)"),
        "{err}"
    );
    for args in [&["delete", "k"][..], &["compact"], &["shell"]] {
        let mut all = vec!["--lock-timeout", "0"];
        all.extend_from_slice(args);
        flashlog(dir, &all).assert().code(3);
    }
    // A writer started while the lock is held gets it once the holder closes.
    let mut put = Command::new(binary());
    put.arg("--dir").arg(dir).args(["put", "k", "waited"]);
    let waiting = std::thread::spawn(move || put.output());
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    assert!(shell.wait().unwrap().success());
    let output = waiting.join().unwrap().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    flashlog(dir, &["get", "k"]).assert().stdout("waited\n");
}

#[test]
fn concurrent_put_loops_all_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // Four loops of `flashlog put`, as four shell loops would run them.
    let output = bash(
        "for t in 1 2 3 4; do (for i in $(seq 1 25); do \"$F\" --dir \"$D\" put k$t-$i v || echo FAILED $?; done) & done; wait",
        &dir,
    );
    assert_eq!(stdout(&output), "", "no put failed: {output:?}");
    let output = flashlog(&dir, &["scan"]).output().unwrap();
    assert_eq!(stdout(&output).lines().count(), 100);
}

#[test]
fn argument_errors_start_with_an_error_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let output = flashlog(tmp.path(), &["put", "only-a-key"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("\nUsage: flashlog put"), "{err}");
    let output = flashlog(tmp.path(), &["--lock-timeout", "-1", "put", "k", "v"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("error: "), "{output:?}");
}
