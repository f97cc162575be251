//! Issue 13, section 1: things that are not logs.

use crate::common::{fixture_copy, flashlog, stderr, stdout};

/// Every command that needs an existing log refuses an empty directory, one of
/// unrelated files, a file and a missing directory, creating nothing.
#[test]
fn commands_refuse_what_is_not_a_log() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("thesis.tex"), "x").unwrap();
    let missing = tmp.path().join("typo");
    let file = other.join("thesis.tex");
    let cases = [
        (&empty, "it is empty"),
        (&other, "it holds \"thesis.tex\" and no segment file"),
        (&missing, "there is no such directory"),
        (&file, "it is a file, not a directory"),
    ];
    let commands: [&[&str]; 8] = [
        &["verify"],
        &["dump"],
        &["repair"],
        &["stats"],
        &["get", "k"],
        &["scan"],
        &["compact"],
        &["verify", "--json"],
    ];
    for (dir, why) in cases {
        for args in commands {
            let output = flashlog(dir, args).output().unwrap();
            assert_eq!(output.status.code(), Some(2), "{args:?} on {dir:?}");
            assert_eq!(stdout(&output), "", "{args:?} on {dir:?}");
            assert_eq!(
                stderr(&output),
                format!(
                    "error: {} is not a flashlog log: {why}{}\n",
                    dir.display(),
                    if why.starts_with("there is no") {
                        " (only put, delete and shell create a store)"
                    } else {
                        ""
                    }
                ),
                "{args:?}"
            );
        }
    }
    assert!(!missing.exists(), "compact created no store");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    // put, delete and the shell create a store in a missing or empty directory,
    // but not among other files.
    flashlog(&empty, &["put", "k", "v"]).assert().success();
    flashlog(&missing, &["delete", "k"]).assert().success();
    flashlog(&other, &["shell"])
        .write_stdin("put k v\n")
        .assert()
        .code(2)
        .stderr(format!(
            "error: {} is not a flashlog log: it holds \"thesis.tex\" and no segment file\n",
            other.display()
        ));
}

/// Counts read "1 segment", and a Go-style `segment-1.log` keeps its name.
#[test]
fn wording_of_counts_and_segment_names() {
    let tmp = tempfile::tempdir().unwrap();
    flashlog(tmp.path(), &["put", "k", "v"]).assert().success();
    flashlog(tmp.path(), &["verify"])
        .assert()
        .success()
        .stdout("ok: 1 entry in 1 segment, no damage\n");
    std::fs::rename(
        tmp.path().join("segment-0001.log"),
        tmp.path().join("segment-1.log"),
    )
    .unwrap();
    let output = flashlog(tmp.path(), &["stats"]).output().unwrap();
    let out = stdout(&output);
    assert!(out.contains("\nsegment-1.log  1 "), "{out}");
    assert!(!out.contains("segment-0001.log"), "{out}");
    let output = flashlog(tmp.path(), &["stats", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["segments"][0]["file"], "segment-1.log");

    // Damage is reported under the file's own name too.
    let (_tmp, log) = fixture_copy("go-torn-truncated");
    std::fs::rename(log.join("segment-0012.log"), log.join("segment-12.log")).unwrap();
    let output = flashlog(&log, &["verify"]).output().unwrap();
    assert!(
        stdout(&output).starts_with("torn tail: segment 12 (segment-12.log) offset 2203"),
        "{output:?}"
    );
}
