//! Issue 12 through the tool: a changed or emptied sealed segment is reported,
//! and sequence numbers stay where they were acknowledged when damage is
//! skipped (`dump`) and removed (`repair --mode skip-corrupted`).

use std::path::Path;

use flashlog_wal::{Op, Options, SegmentId, Wal};

use crate::common::{fixture_copy, flashlog, stderr, stdout};

/// `: > segment-0005.log` of `go-basic` dropped 21 entries with "ok, no damage".
#[test]
fn regression_verify_reports_an_emptied_sealed_segment() {
    let (_tmp, log) = fixture_copy("go-basic");
    std::fs::write(log.join("segment-0005.log"), b"").unwrap();
    let output = flashlog(&log, &["verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let out = stdout(&output);
    assert!(
        out.starts_with("corruption: segment 5 (segment-0005.log) offset 0: empty segment"),
        "{out}"
    );
    // Its entries were not counted anywhere: dump says the numbers after it are
    // unverified.
    let output = flashlog(&log, &["dump"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        stderr(&output).contains("warning: sequence numbers from "),
        "{}",
        stderr(&output)
    );
}

/// The sequence number (first field) of each `dump --hex` line.
fn dumped_seqs(log: &Path) -> Vec<u64> {
    let output = flashlog(log, &["dump", "--hex"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    stdout(&output)
        .lines()
        .map(|line| line.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// The case: 30 entries in 410-byte segments, a bit flipped in entry 6
/// of sealed segment 1, `append` acknowledged 31 under the default mode. `dump`
/// showed it as 30 before any repair, and after `repair --mode skip-corrupted`
/// it was 30 for good.
#[test]
fn regression_dump_and_repair_keep_acknowledged_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let options = || Options::default().max_segment_size(410);
    {
        let wal = Wal::open(&log, options()).unwrap();
        for seq in 1..=30u64 {
            // 41 bytes: ten per segment.
            wal.append(Op::Put, format!("k{seq:04}").as_bytes(), &[seq as u8; 19])
                .unwrap();
        }
        wal.close().unwrap();
    }
    let segment = log.join(SegmentId(1).file_name());
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[5 * 41 + 30] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    {
        let wal = Wal::open(&log, options()).unwrap();
        assert!(wal.recovery_report().damage.is_empty());
        assert_eq!(wal.append(Op::Put, b"acknowledged", b"").unwrap(), 31);
        wal.close().unwrap();
    }
    let want: Vec<u64> = (1..=5).chain(7..=31).collect();
    assert_eq!(dumped_seqs(&log), want, "before the repair");
    let output = flashlog(&log, &["repair", "--mode", "skip-corrupted"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(dumped_seqs(&log), want, "after the repair");
    flashlog(&log, &["verify"]).assert().code(0);
    let wal = Wal::open(&log, options()).unwrap();
    assert_eq!(wal.read(31).unwrap().key(), b"acknowledged");
}
