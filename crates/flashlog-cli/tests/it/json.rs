//! Issue 13, section 5: machine-readable output.

use crate::common::{fixture_copy, flashlog, stdout};

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output)).unwrap()
}

#[test]
fn verify_json_lists_the_damage() {
    let (_tmp, log) = fixture_copy("go-basic");
    let output = flashlog(&log, &["verify", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        json(&output),
        serde_json::json!({"ok": true, "entries": 300, "segments": 12, "damage": [], "side_files": []})
    );
    let (_tmp, log) = fixture_copy("go-corrupt-middle");
    let output = flashlog(&log, &["verify", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["ok"], false);
    assert_eq!(report["entries"], 299);
    let damage = &report["damage"][0];
    assert_eq!(damage["what"], "corruption");
    assert_eq!(damage["segment"], 5);
    assert_eq!(damage["file"], "segment-0005.log");
    assert_eq!(damage["offset"], 1075);
    assert!(damage["len"].as_u64().unwrap() > 0);
    assert!(
        damage["kind"]
            .as_str()
            .unwrap()
            .starts_with("checksum mismatch"),
        "{damage}"
    );
}

#[test]
fn stats_get_and_scan_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    flashlog(dir, &["put", "user:1", "alice"])
        .assert()
        .success();
    flashlog(dir, &["put", "user:2", "bob"]).assert().success();
    flashlog(dir, &["put", "--hex", "ff00", "01"])
        .assert()
        .success();
    let stats = json(&flashlog(dir, &["stats", "--json"]).output().unwrap());
    assert_eq!(stats["entries"], 3);
    assert_eq!(stats["live_keys"], 3);
    assert_eq!(stats["first_seq"], 1);
    assert_eq!(stats["last_seq"], 3);
    assert_eq!(stats["dead_bytes"], 0);
    assert_eq!(stats["damaged_regions"], 0);
    assert_eq!(stats["segments"][0]["file"], "segment-0001.log");
    assert_eq!(stats["segments"][0]["entries"], 3);
    assert_eq!(stats["bytes"], stats["segments"][0]["bytes"]);

    let got = json(
        &flashlog(dir, &["get", "--json", "user:1"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        got,
        serde_json::json!({"key": "user:1", "value": "alice", "key_hex": "757365723a31", "value_hex": "616c696365"})
    );
    flashlog(dir, &["get", "--json", "absent"])
        .assert()
        .code(1)
        .stdout("");
    let output = flashlog(dir, &["scan", "--json"]).output().unwrap();
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["key"], "user:1");
    assert_eq!(lines[2]["key"], serde_json::Value::Null, "not UTF-8");
    assert_eq!(lines[2]["key_hex"], "ff00");
    assert_eq!(lines[2]["value_hex"], "01");
    flashlog(dir, &["scan", "--json", "--hex"]).assert().code(2);
}
