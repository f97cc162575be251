//! Issue 12's catalogue of changed sealed segments.

use flashlog_testkit::Recovered;
use flashlog_wal::{codec, CorruptionKind, Error, Op, RecoveryMode, SegmentId};

use super::{log_with, open, path};

/// What a change does: its name, the new bytes of segment 2, and of segment 3.
type Change = (&'static str, Vec<u8>, Option<Vec<u8>>);

/// Issue 12 item 2, the catalogue of changed sealed segments: segment 2 of a
/// closed (checkpointed) log cut at an entry boundary, replaced by an older
/// shorter copy, with a valid entry appended, overwritten by its neighbour,
/// swapped with it, emptied. Each is damage naming the segment in every mode:
/// refused by the default and the strict mode, cut before under `PointInTime`,
/// skipped with its numbers kept under `SkipCorrupted`.
#[test]
fn a_changed_sealed_segment_is_damage_in_every_mode() {
    let (base, segments) = log_with(24, true);
    assert!(segments.len() >= 4, "{} segments", segments.len());
    let counts: Vec<u64> = segments.iter().map(|s| s.2.len() as u64).collect();
    let total: u64 = counts.iter().sum();
    let (two, three) = (&segments[1], &segments[2]);
    let mut appended = two.1.clone();
    codec::encode(&mut appended, Op::Put, b"extra", b"entry");
    let changes: Vec<Change> = vec![
        ("cut at an entry boundary", two.1[..two.2[1]].to_vec(), None),
        (
            "an older shorter copy",
            two.1[..*two.2.last().unwrap()].to_vec(),
            None,
        ),
        ("a valid entry appended", appended, None),
        ("overwritten by its neighbour", three.1.clone(), None),
        ("swapped", three.1.clone(), Some(two.1.clone())),
        ("emptied", Vec::new(), None),
    ];
    let modes = [
        RecoveryMode::TolerateCorruptedTail,
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::PointInTime,
        RecoveryMode::SkipCorrupted,
    ];
    let mut cases = 0;
    for (what, new_two, new_three) in &changes {
        for mode in modes {
            let image = base.snapshot();
            image.put_durable(path(&two.0), new_two);
            if let Some(bytes) = new_three {
                image.put_durable(path(&three.0), bytes);
            }
            let changed =
                |kind: &CorruptionKind| matches!(kind, CorruptionKind::SegmentChanged { .. });
            match (mode, open(&image, mode)) {
                (
                    RecoveryMode::TolerateCorruptedTail | RecoveryMode::AbsoluteConsistency,
                    Err(Error::Corrupt {
                        segment,
                        offset,
                        kind,
                        ..
                    }),
                ) => {
                    assert_eq!((segment, offset), (SegmentId(2), 0), "{what}, {mode:?}");
                    assert!(changed(&kind), "{what}, {mode:?}: {kind}");
                }
                (RecoveryMode::PointInTime, Ok(wal)) => {
                    let report = wal.recovery_report();
                    assert!(changed(&report.damage[0].kind), "{what}");
                    assert_eq!(report.damage[0].position.segment, SegmentId(2));
                    assert_eq!(wal.last_seq(), counts[0], "{what}");
                    assert_eq!(
                        Recovered::read(&wal).unwrap().entries.len() as u64,
                        counts[0]
                    );
                }
                (RecoveryMode::SkipCorrupted, Ok(wal)) => {
                    let report = wal.recovery_report();
                    let skipped = if new_three.is_some() { 2 } else { 1 };
                    assert_eq!(report.skipped, skipped, "{what}");
                    assert!(report.damage.iter().all(|d| changed(&d.kind)), "{what}");
                    assert_eq!(report.numbering_unverified_from, None, "{what}");
                    // Every other entry keeps its number.
                    assert_eq!(wal.last_seq(), total, "{what}");
                    let kept: u64 = counts[..1]
                        .iter()
                        .chain(&counts[1 + skipped as usize..])
                        .sum();
                    let recovered = Recovered::read(&wal).unwrap();
                    assert_eq!(recovered.entries.len() as u64, kept, "{what}");
                    let after = counts[..=skipped as usize].iter().sum::<u64>() + 1;
                    assert_eq!(
                        wal.read(after).unwrap().key(),
                        format!("key{}", after - 1).as_bytes(),
                        "{what}"
                    );
                    assert!(matches!(
                        wal.read(counts[0] + 1),
                        Err(Error::Skipped { .. })
                    ));
                }
                (mode, other) => panic!("{what}, {mode:?}: {other:?}"),
            }
            cases += 1;
        }
    }
    println!("changed sealed segments: {cases} cases (6 changes x 4 modes)");
}
