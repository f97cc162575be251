//! The root README's example session of the `flashlog` tool, run byte for byte.

use std::process::{Command, Stdio};

const README: &str = include_str!("../../../../README.md");

/// The `$ command` lines of the tool section's first `text` block, each with the
/// output the README shows for it.
fn session() -> Vec<(String, String)> {
    let section = README
        .split_once("## The `flashlog` tool")
        .expect("the README has a tool section")
        .1;
    let block = section
        .split_once("```text\n")
        .expect("the tool section has an example")
        .1
        .split_once("```")
        .expect("the example ends")
        .0;
    let mut steps: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push((command.to_owned(), String::new()));
        } else if let Some((_, output)) = steps.last_mut() {
            output.push_str(line);
            output.push('\n');
        }
    }
    for (_, output) in &mut steps {
        // A blank line separates one command from the next.
        if output.ends_with("\n\n") {
            output.pop();
        }
    }
    steps
}

#[test]
fn the_readme_session_is_what_the_tool_prints() {
    let steps = session();
    assert!(steps.len() >= 5, "{steps:?}");
    let tmp = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("flashlog");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (command, expected) in steps {
        let output = Command::new("bash")
            .arg("-c")
            .arg(&command)
            .env("PATH", &path)
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            expected,
            "$ {command}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
