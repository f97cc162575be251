use crate::common::{flashlog, stderr, stdout};

#[test]
fn put_get_delete_scan_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    flashlog(&dir, &["put", "b", "2"])
        .assert()
        .success()
        .stdout("");
    flashlog(&dir, &["put", "a", "1"]).assert().success();
    flashlog(&dir, &["put", "c", "three"]).assert().success();
    flashlog(&dir, &["get", "c"])
        .assert()
        .success()
        .stdout("three\n");
    flashlog(&dir, &["get", "zzz"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("");
    flashlog(&dir, &["delete", "a"]).assert().success();
    flashlog(&dir, &["scan"])
        .assert()
        .success()
        .stdout("b 2\nc three\n");
    flashlog(&dir, &["scan", "c"])
        .assert()
        .success()
        .stdout("c three\n");
    flashlog(&dir, &["put", "", "x"])
        .assert()
        .code(2)
        .stderr("error: cannot put \"\": the key is empty\n");
}

#[test]
fn errors_are_one_line_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("thesis.tex"), "x").unwrap();
    let output = flashlog(tmp.path(), &["put", "k", "v"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err,
        format!(
            "error: {} is not a flashlog log: it holds \"thesis.tex\" and no segment file\n",
            tmp.path().display()
        )
    );
    let output = flashlog(&tmp.path().join("missing"), &["dump"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is not a flashlog log: there is no such directory"),
        "{output:?}"
    );
    // A second writer is refused while the shell holds the store.
    let dir = tmp.path().join("busy");
    flashlog(&dir, &["put", "k", "v"]).assert().success();
    let mut shell = std::process::Command::new(assert_cmd::cargo::cargo_bin("flashlog"))
        .arg("--dir")
        .arg(&dir)
        .arg("shell")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the shell has the store open (it answers a command).
    use std::io::{BufRead, Write};
    let mut stdin = shell.stdin.take().unwrap();
    writeln!(stdin, "get k").unwrap();
    let mut reader = std::io::BufReader::new(shell.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "v\n");
    let output = flashlog(&dir, &["--lock-timeout", "0.2", "put", "k", "w"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "busy has its own exit code");
    assert!(
        stderr(&output).contains("locked by another open log"),
        "{output:?}"
    );
    // Read-only commands still work meanwhile.
    flashlog(&dir, &["get", "k"])
        .assert()
        .success()
        .stdout("v\n");
    drop(stdin);
    assert!(shell.wait().unwrap().success());
}

#[test]
fn dump_text_hex_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    flashlog(dir, &["put", "a", "b"]).assert().success();
    flashlog(dir, &["put", "k", ""]).assert().success();
    flashlog(dir, &["delete", "a"]).assert().success();
    flashlog(dir, &["dump"])
        .assert()
        .success()
        .stdout("#1 at 1:0 put a = b\n#2 at 1:19 put k = \n#3 at 1:37 delete a\n");
    flashlog(dir, &["dump", "--hex"])
        .assert()
        .success()
        .stdout("1 1 0 put 61 62\n2 1 19 put 6b -\n3 1 37 delete 61 -\n");
    let output = flashlog(dir, &["dump", "--json"]).output().unwrap();
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["op"], "put");
    assert_eq!(lines[0]["key"], "a");
    assert_eq!(lines[0]["value_hex"], "62");
    assert_eq!(lines[2]["op"], "delete");
    assert_eq!(lines[2]["offset"], 37);
    flashlog(dir, &["dump", "--hex", "--json"]).assert().code(2);
}

#[test]
fn stats_and_compact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut script = String::new();
    for round in 0..3 {
        for key in 0..5 {
            script.push_str(&format!("put key{key} value{round}\n"));
        }
    }
    script.push_str("delete key0\n");
    flashlog(dir, &["shell"])
        .write_stdin(script)
        .assert()
        .success();
    let output = flashlog(dir, &["stats"]).output().unwrap();
    assert!(output.status.success());
    let out = stdout(&output);
    assert!(
        out.contains("segment-0001.log  1          16       "),
        "{out}"
    );
    assert!(out.contains("entries     16\n"), "{out}");
    assert!(out.contains("first seq   1\n"), "{out}");
    assert!(out.contains("last seq    16\n"), "{out}");
    assert!(out.contains("live keys   4\n"), "{out}");
    // 4 live puts of 27 bytes; 15 puts and one 21-byte delete in all: 426 bytes.
    assert!(out.contains("live bytes  108 "), "{out}");
    assert!(out.contains("dead bytes  318 (74.6%)"), "{out}");
    let output = flashlog(dir, &["compact"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).starts_with("compacted "), "{output:?}");
    flashlog(dir, &["scan"])
        .assert()
        .success()
        .stdout("key1 value2\nkey2 value2\nkey3 value2\nkey4 value2\n");
}

#[test]
fn bench_prints_a_table_and_json_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let output = flashlog(
        tmp.path(),
        &[
            "bench",
            "--threads",
            "1,2",
            "--size",
            "64",
            "--seconds",
            "0.2",
        ],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let out = stdout(&output);
    assert!(out.starts_with("what "), "{out}");
    assert!(out.contains("entries/s"), "{out}");
    assert!(out.contains("write+fdatasync  1        64"), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("flashlog append"))
            .count(),
        2,
        "{out}"
    );
    assert!(
        stderr(&output).is_empty(),
        "no progress bar when stderr is not a terminal"
    );
    let output = flashlog(
        tmp.path(),
        &[
            "bench",
            "--threads",
            "2",
            "--size",
            "32",
            "--seconds",
            "0.2",
            "--json",
        ],
    )
    .output()
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["kind"], "baseline");
    assert_eq!(runs[1]["threads"], 2);
    assert!(runs[1]["entries_per_sec"].as_f64().unwrap() > 0.0);
    assert!(runs[1]["p99_us"].as_u64().unwrap() >= runs[1]["p50_us"].as_u64().unwrap());
    assert!(runs[1]["vs_baseline"].as_f64().unwrap() > 0.0);
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the benchmark removed its files");
}
