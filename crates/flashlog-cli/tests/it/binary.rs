//! Issue 13, section 3: binary keys and large values.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::common::{fixture_copy, flashlog, stderr, stdout};

#[test]
fn hex_keys_and_values_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    flashlog(dir, &["put", "--hex", "00ff10", "000102"])
        .assert()
        .success();
    flashlog(dir, &["put", "--hex", "00ff11", ""])
        .assert()
        .success();
    flashlog(dir, &["get", "--hex", "00FF10"])
        .assert()
        .success()
        .stdout("000102\n");
    flashlog(dir, &["get", "--hex", "00ff11"])
        .assert()
        .success()
        .stdout("\n");
    flashlog(dir, &["scan", "--hex", "00ff"])
        .assert()
        .success()
        .stdout("00ff10 000102\n00ff11 -\n");
    flashlog(dir, &["delete", "--hex", "00ff10"])
        .assert()
        .success();
    flashlog(dir, &["get", "--hex", "00ff10"]).assert().code(1);
    flashlog(dir, &["get", "--hex", "xyz"])
        .assert()
        .code(2)
        .stderr("error: the key is not hex (--hex): \"xyz\"\n");
    // Without --hex, an argument's bytes are taken as they are (any but NUL),
    // and a value may start with a dash.
    let key = OsStr::from_bytes(b"k\xff\xfe");
    let mut put = flashlog(dir, &["put"]);
    put.arg(key).arg("-5").assert().success();
    flashlog(dir, &["get", "--hex", "6bfffe"])
        .assert()
        .success()
        .stdout(format!("{}\n", flashlog_cli::text::hex(b"-5")));
}

#[test]
fn a_large_value_comes_from_standard_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 1 MiB of every byte value: far beyond what an argument list holds.
    let value: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    flashlog(dir, &["put", "big", "-"])
        .write_stdin(value.clone())
        .assert()
        .success();
    let output = flashlog(dir, &["get", "big"]).output().unwrap();
    assert_eq!(output.stdout.len(), value.len() + 1);
    assert_eq!(&output.stdout[..value.len()], &value[..]);
    // With --hex the key is hex and the value still raw.
    flashlog(dir, &["put", "--hex", "0001", "-"])
        .write_stdin(&b"\x00raw\n"[..])
        .assert()
        .success();
    flashlog(dir, &["get", "--hex", "0001"])
        .assert()
        .stdout("007261770a\n");
}

#[test]
fn binary_keys_of_a_go_written_log_can_be_read_and_written() {
    let (_tmp, log) = fixture_copy("go-basic");
    let output = flashlog(&log, &["scan", "--hex"]).output().unwrap();
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 246, "every live key");
    let binary = lines
        .iter()
        .map(|line| line.split_once(' ').unwrap())
        .filter(|(key, _)| *key != "-")
        .find(|(key, _)| std::str::from_utf8(&flashlog_cli::text::parse_hex(key).unwrap()).is_err())
        .expect("a key that is not UTF-8");
    flashlog(&log, &["get", "--hex", binary.0])
        .assert()
        .success()
        .stdout(format!("{}\n", if binary.1 == "-" { "" } else { binary.1 }));
    flashlog(&log, &["delete", "--hex", binary.0])
        .assert()
        .success();
    flashlog(&log, &["get", "--hex", binary.0]).assert().code(1);
}

#[test]
fn the_shell_takes_bytes_and_keeps_values_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let script: &[u8] =
        b"put k\xff bin\xfe\nput spaced  two  spaces \nput  shifted\nget spaced\nget k\xff\nexit\n";
    let output = flashlog(dir, &["shell"])
        .write_stdin(script)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "one command failed");
    assert_eq!(stdout(&output), "OK\nOK\n two  spaces \nbin\\xfe\n");
    assert_eq!(
        stderr(&output),
        "error: the key is empty: one space goes between put and KEY (usage: put KEY VALUE)\n"
    );
    flashlog(dir, &["get", "--hex", "6bff"])
        .assert()
        .stdout("62696efe\n");
    flashlog(dir, &["get", "spaced"])
        .assert()
        .stdout(" two  spaces \n");
    flashlog(dir, &["get", "shifted"]).assert().code(1);
}

#[test]
fn errors_shorten_long_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A 17 MiB key is over the entry limit; its error names it in 40 characters.
    let key = "k".repeat(17 << 20);
    let script = format!("put {key} v\n");
    let output = flashlog(dir, &["shell"])
        .write_stdin(script)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.len() < 300, "{}", &err[..300.min(err.len())]);
    assert!(
        err.starts_with(&format!(
            "error: cannot put \"{}...\" (17825792 bytes): ",
            "k".repeat(40)
        )),
        "{err}"
    );
}
