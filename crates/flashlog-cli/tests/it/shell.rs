use crate::common::{flashlog, stderr, stdout};

#[test]
fn shell_driven_through_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let script = "put user:1 alice\nput user:2 bob smith\nget user:2\nget nobody\n\
                  delete user:1\ndelete user:1\nscan user:\nfrobnicate\nstats\nhelp\nexit\nput never run\n";
    let output = flashlog(&dir, &["shell"])
        .write_stdin(script)
        .output()
        .unwrap();
    // One command failed (frobnicate): piped input exits with 2.
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..7],
        [
            "OK",
            "OK",
            "bob smith",
            "(not found)",
            "OK",
            "(not found)",
            "user:2 bob smith"
        ]
    );
    assert_eq!(lines[7], "(1 keys)");
    assert!(out.contains("live keys   1"), "{out}");
    assert!(out.contains("commands:"), "help is printed: {out}");
    assert!(
        !out.contains("flashlog>"),
        "no prompt when stdin is not a terminal"
    );
    assert_eq!(
        stderr(&output),
        "error: unknown command \"frobnicate\" (try help)\n"
    );
    // `exit` stopped the script: the last put never ran. And the writes are durable.
    let get = flashlog(&dir, &["get", "user:2"]).output().unwrap();
    assert_eq!(stdout(&get), "bob smith\n");
    flashlog(&dir, &["get", "never"])
        .assert()
        .code(1)
        .stdout("");
    flashlog(&dir, &["get", "user:1"])
        .assert()
        .code(1)
        .stdout("");
}

#[test]
fn shell_ends_at_end_of_input_and_reports_bad_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let output = flashlog(tmp.path(), &["shell"])
        .write_stdin("put\nget a b\nput k v\nquit")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "OK\n");
    assert_eq!(
        stderr(&output),
        "error: usage: put KEY VALUE\nerror: usage: get KEY\n"
    );
    let output = flashlog(tmp.path(), &["shell"])
        .write_stdin("get k\n")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "no command failed");
    assert_eq!(stdout(&output), "v\n");
}
