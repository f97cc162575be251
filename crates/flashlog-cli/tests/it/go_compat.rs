use crate::common::{fixture_copy, flashlog, segment_bytes, stdout, FIXTURES};

#[test]
fn dump_hex_of_a_go_written_log() {
    let (_tmp, log) = fixture_copy("go-basic");
    let before = segment_bytes(&log);
    let output = flashlog(&log, &["dump", "--hex"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let expected = std::fs::read_to_string(format!("{FIXTURES}/go-basic/expected.txt")).unwrap();
    let expected: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), expected.len());
    let mut offset = 0u64;
    let mut segment = 1u64;
    for (i, (line, want)) in lines.iter().zip(&expected).enumerate() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 6, "{line}");
        assert_eq!(f[0], (i + 1).to_string(), "sequence numbers count from 1");
        let w: Vec<&str> = want.splitn(3, ' ').collect();
        let op = if w[0] == "0" { "put" } else { "delete" };
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        assert_eq!(f[3], op, "{line}");
        assert_eq!(f[4], dash(w.get(1).unwrap_or(&"")), "{line}");
        assert_eq!(f[5], dash(w.get(2).unwrap_or(&"")), "{line}");
        // Offsets add up entry by entry, starting over in each segment.
        let seg: u64 = f[1].parse().unwrap();
        if seg != segment {
            assert_eq!(seg, segment + 1);
            segment = seg;
            offset = 0;
        }
        assert_eq!(f[2], offset.to_string(), "{line}");
        let key_len = w.get(1).map_or(0, |k| k.len() / 2) as u64;
        let value_len = w.get(2).map_or(0, |v| v.len() / 2) as u64;
        offset += 17 + key_len + value_len;
    }
    assert_eq!(segment, 12);
    assert_eq!(segment_bytes(&log), before, "dump changes nothing");
    assert!(!log.join("flashlog.lock").exists(), "dump takes no lock");
}

#[test]
fn a_go_written_log_is_a_store() {
    let (_tmp, log) = fixture_copy("go-basic");
    let output = flashlog(&log, &["stats"]).output().unwrap();
    let out = stdout(&output);
    assert!(out.contains("entries     300\n"), "{out}");
    assert!(out.contains("segments    12\n"), "{out}");
    flashlog(&log, &["shell"])
        .write_stdin("put fresh value\n")
        .assert()
        .success()
        .stdout("OK\n");
    flashlog(&log, &["get", "fresh"])
        .assert()
        .success()
        .stdout("value\n");
}
