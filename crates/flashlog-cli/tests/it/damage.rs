use crate::common::{fixture_copy, flashlog, segment_bytes, stderr, stdout};

#[test]
fn verify_a_clean_and_a_damaged_log() {
    let (_tmp, log) = fixture_copy("go-basic");
    flashlog(&log, &["verify"])
        .assert()
        .code(0)
        .stdout("ok: 300 entries in 12 segments, no damage\n");
    let (_tmp, log) = fixture_copy("go-corrupt-middle");
    let before = segment_bytes(&log);
    let output = flashlog(&log, &["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(
        out.starts_with("corruption: segment 5 (segment-0005.log) offset 1075: checksum mismatch"),
        "{out}"
    );
    assert!(
        out.ends_with("damaged: 1 region(s); 299 valid entries in 12 segments\n"),
        "{out}"
    );
    assert_eq!(segment_bytes(&log), before, "verify changes nothing");
    let (_tmp, log) = fixture_copy("go-torn-placeholder");
    let output = flashlog(&log, &["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with("torn tail: segment 12 "),
        "{output:?}"
    );
}

#[test]
fn repair_cuts_a_torn_tail_and_keeps_a_copy() {
    let (_tmp, log) = fixture_copy("go-torn-truncated");
    let before = segment_bytes(&log);
    let output = flashlog(&log, &["repair", "--dry-run"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let out = stdout(&output);
    assert!(
        out.starts_with("would cut 63 bytes at segment 12 offset 2203"),
        "{out}"
    );
    assert!(out.contains("would keep 299 of 299 valid entries"), "{out}");
    assert_eq!(segment_bytes(&log), before, "a dry run changes nothing");

    let output = flashlog(&log, &["repair"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let out = stdout(&output);
    assert!(
        out.contains("repaired: 299 entries in 12 segments"),
        "{out}"
    );
    let backup = out
        .lines()
        .find_map(|l| l.strip_prefix("copied the affected segments to "))
        .unwrap();
    let saved = std::fs::read(std::path::Path::new(backup).join("segment-0012.log")).unwrap();
    assert_eq!(
        saved, before[11].1,
        "the backup holds the segment as it was"
    );
    let after = segment_bytes(&log);
    assert_eq!(after[11].1.len(), 2203);
    assert_eq!(&after[11].1[..], &before[11].1[..2203]);
    flashlog(&log, &["verify"]).assert().code(0);
    flashlog(&log, &["repair"])
        .assert()
        .code(0)
        .stdout("nothing to repair: 299 entries, no damage\n");
}

#[test]
fn repair_refuses_to_cut_the_middle_unless_told_how() {
    let (_tmp, log) = fixture_copy("go-corrupt-middle");
    let before = segment_bytes(&log);
    let output = flashlog(&log, &["repair"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: the log is damaged in the middle (corruption: segment 5"),
        "{err}"
    );
    assert!(err.contains("--mode point-in-time"), "{err}");
    assert_eq!(segment_bytes(&log), before);

    let output = flashlog(&log, &["repair", "--mode", "point-in-time", "--dry-run"])
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(out.contains("would remove segment-0012.log"), "{out}");
    assert!(out.contains("would keep 101 of 299 valid entries"), "{out}");
    assert_eq!(segment_bytes(&log), before);

    flashlog(&log, &["repair", "--mode", "point-in-time"])
        .assert()
        .success();
    let output = flashlog(&log, &["dump", "--hex"]).output().unwrap();
    assert_eq!(stdout(&output).lines().count(), 101);
    flashlog(&log, &["verify"]).assert().code(0);
    let backups: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(
        segment_bytes(&backups[0]),
        before[4..].to_vec(),
        "segments 5 to 12 were saved"
    );
}

#[test]
fn repair_skip_corrupted_keeps_every_valid_entry() {
    let (_tmp, log) = fixture_copy("go-corrupt-middle");
    // A checkpoint describes segments as they were: rewriting one must remove it.
    let checkpoint = log.join(flashlog_wal::INDEX_FILE);
    std::fs::write(&checkpoint, b"describes the segments before the repair").unwrap();
    flashlog(&log, &["repair", "--mode", "skip-corrupted"])
        .assert()
        .success();
    assert!(!checkpoint.exists(), "the checkpoint outlived the repair");
    flashlog(&log, &["verify"])
        .assert()
        .code(0)
        .stdout("ok: 299 entries in 12 segments, no damage\n");
    let expected = std::fs::read_to_string(format!(
        "{}/go-corrupt-middle/expected-skip.txt",
        crate::common::FIXTURES
    ))
    .unwrap();
    let output = flashlog(&log, &["dump", "--hex"]).output().unwrap();
    let got: Vec<String> = stdout(&output)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let op = if f[3] == "put" { "0" } else { "1" };
            let field = |s: &str| {
                if s == "-" {
                    String::new()
                } else {
                    s.to_owned()
                }
            };
            format!("{op} {} {}", field(f[4]), field(f[5]))
        })
        .collect();
    let want: Vec<String> = expected
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(3, ' ').collect();
            format!(
                "{} {} {}",
                f[0],
                f.get(1).unwrap_or(&""),
                f.get(2).unwrap_or(&"")
            )
        })
        .collect();
    assert_eq!(got, want);
}

/// `repair` plans and cuts under the log's lock: while another process holds
/// it, a repair (and a dry run, whose plan would be stale) waits
/// `--lock-timeout`, then gives up with exit code 3, changing nothing.
#[test]
fn repair_waits_for_the_lock_then_says_busy() {
    let (_tmp, log) = fixture_copy("go-torn-truncated");
    let before = segment_bytes(&log);
    let lock = std::fs::File::create(log.join(flashlog_wal::LOCK_FILE)).unwrap();
    lock.try_lock().unwrap();
    for args in [&["repair"][..], &["repair", "--dry-run"]] {
        let mut all = vec!["--lock-timeout", "0.3"];
        all.extend_from_slice(args);
        let output = flashlog(&log, &all).output().unwrap();
        assert_eq!(output.status.code(), Some(3), "{args:?}: {output:?}");
        let err = stderr(&output);
        assert!(
            err.contains("busy: still locked after 0.3 s (--lock-timeout)"),
            "{args:?}: {err}"
        );
        assert_eq!(stdout(&output), "", "{args:?}");
        assert_eq!(segment_bytes(&log), before, "{args:?} changed segments");
    }
    drop(lock);
    let output = flashlog(&log, &["--lock-timeout", "0", "repair"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).contains("repaired: 299 entries in 12 segments"),
        "{output:?}"
    );
}

/// Every line `repair --mode point-in-time` prints, dry and not: what it cuts,
/// the segments it removes, what it keeps, where the copy is.
#[test]
fn repair_point_in_time_prints_its_plan_then_does_it() {
    let (_tmp, log) = fixture_copy("go-corrupt-middle");
    let output = flashlog(&log, &["repair", "--mode", "point-in-time", "--dry-run"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let dry = stdout(&output);
    let plan: Vec<&str> = dry.lines().collect();
    assert!(
        plan[0].starts_with("would cut segment 5 at offset 1075 (checksum mismatch"),
        "{dry}"
    );
    assert!(plan[0].ends_with(" bytes in all"), "{dry}");
    let removed: Vec<&str> = plan
        .iter()
        .filter_map(|line| line.strip_prefix("would remove "))
        .collect();
    let want: Vec<String> = (6..=12).map(|id| format!("segment-{id:04}.log")).collect();
    assert_eq!(removed, want, "{dry}");
    assert_eq!(
        &plan[plan.len() - 2..],
        [
            "would keep 101 of 299 valid entries",
            "dry run: nothing changed"
        ]
    );
    let output = flashlog(&log, &["repair", "--mode", "point-in-time"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let done = stdout(&output);
    let lines: Vec<&str> = done.lines().collect();
    let planned: Vec<String> = plan[..plan.len() - 1]
        .iter()
        .map(|line| line.replacen("would ", "will ", 1))
        .collect();
    assert_eq!(lines[..planned.len()], planned, "{done}");
    let backup = lines[planned.len()]
        .strip_prefix("copied the affected segments to ")
        .unwrap();
    assert!(std::path::Path::new(backup).starts_with(&log), "{done}");
    assert_eq!(
        &lines[planned.len() + 1..],
        ["repaired: 101 entries in 5 segments"]
    );
}
