//! The recovery policy, table-driven: each mode against each place damage can be.

use super::*;
use crate::checkpoint::LastEntry;
use crate::codec;
use crate::error::CorruptionKind;
use crate::meta::Loaded;
use crate::op::Op;
use crate::recovery::scan::Found;
use crate::segment::{scan_segment, Role};

/// Every test entry has this many bytes (one-byte key, four-byte value).
const LEN: u64 = codec::encoded_len(1, 4);

/// Three entries.
fn segment() -> Vec<u8> {
    let mut bytes = Vec::new();
    for key in [b"a", b"b", b"c"] {
        codec::encode(&mut bytes, Op::Put, key, b"vvvv");
    }
    bytes
}

/// The checkpoint record of a three-entry segment numbered from `first_seq`.
fn record(id: u64, first_seq: u64) -> Sealed {
    Sealed {
        id: SegmentId(id),
        first_seq,
        entries: 3,
        len: 3 * LEN,
        last: LastEntry::at(&segment(), (2 * LEN) as usize),
        gaps: Vec::new(),
    }
}

/// The log: segments 1 and 2 of three entries each, and the damage.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// None: the log is clean.
    None,
    /// The newest segment's last entry is cut short.
    TornTail,
    /// The newest segment's middle entry has a bad CRC, a valid one after it.
    CorruptMiddle,
    /// The first (sealed) segment's middle entry has a bad CRC.
    CorruptFirst,
    /// Segment 2 of 3 is missing.
    MissingSegment,
    /// The side file names segment 2 as the first: segment 1 is left over
    /// from an interrupted `truncate_front`.
    StaleSegment,
    /// The side file's second copy is older than the first (or damaged):
    /// both are stored again before anything else changes.
    StaleSideFileCopy,
    /// The checkpoint records segment 1 as it was before something other than
    /// this library cut its last entry: `SegmentChanged`, damage in every mode.
    ChangedSealed,
    /// The checkpoint's record of segment 1 numbers it from 2: the segments
    /// before no longer number it as recorded (`SegmentChanged` too).
    RenumberedSealed,
    /// The checkpoint still holds a record of segment 2 from when it was
    /// sealed, and segment 2 is the newest now: the record is ignored.
    StaleRecordOfNewest,
    /// The side file records a `truncate_back(5)` a crash interrupted.
    PendingTruncateBack,
}

/// What a plan comes to, in short.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// `Error::Corrupt`.
    Corrupt,
    /// `Error::MissingSegment`.
    Missing,
    Kept(Kept),
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Kept {
    /// Sequence numbers the log spans (gaps included).
    entries: u64,
    stale: Vec<u64>,
    cut: Option<(u64, u64)>,
    dropped: Vec<u64>,
    torn_tail: bool,
    skipped: u64,
    /// Damage found of kind `SegmentChanged`.
    changed: usize,
    rewrite_meta: bool,
    /// The cut that finishes a pending `truncate_back`.
    truncate_back: Option<(u64, u64)>,
}

fn run(damage: Damage, mode: RecoveryMode) -> Outcome {
    let mut files: Vec<(u64, Vec<u8>)> = vec![(1, segment()), (2, segment())];
    let mut meta = Meta::default();
    let mut loaded = Loaded::default();
    let mut records = HashMap::new();
    let bad_crc = |bytes: &mut Vec<u8>| bytes[(LEN + LEN - 1) as usize] ^= 1;
    match damage {
        Damage::None => {}
        Damage::TornTail => files[1].1.truncate((3 * LEN - 3) as usize),
        Damage::CorruptMiddle => bad_crc(&mut files[1].1),
        Damage::CorruptFirst => bad_crc(&mut files[0].1),
        Damage::MissingSegment => files[1].0 = 3,
        Damage::StaleSegment => {
            files.push((3, segment()));
            meta.first_segment = SegmentId(2);
            meta.first_seq = 4;
        }
        Damage::StaleSideFileCopy => loaded.rewrite = true,
        Damage::ChangedSealed => {
            records.insert(SegmentId(1), record(1, 1));
            files[0].1.truncate((2 * LEN) as usize);
        }
        Damage::RenumberedSealed => drop(records.insert(SegmentId(1), record(1, 2))),
        Damage::StaleRecordOfNewest => {
            records.insert(SegmentId(1), record(1, 1));
            records.insert(
                SegmentId(2),
                Sealed {
                    entries: 2,
                    len: 2 * LEN,
                    ..record(2, 4)
                },
            );
        }
        Damage::PendingTruncateBack => meta.pending_truncate_back = Some(5),
    }
    loaded.meta = Some(meta);
    let dir = Path::new("log");
    let ids: Vec<SegmentId> = files.iter().map(|&(id, _)| SegmentId(id)).collect();
    // Which segments `survey` reads is policy too.
    let live = match layout(dir, &ids, loaded.meta) {
        Ok(layout) => layout.live,
        Err(Error::MissingSegment { .. }) => return Outcome::Missing,
        Err(err) => panic!("{err}"),
    };
    let newest = live.last().copied();
    let found = files
        .iter()
        .filter(|(id, _)| live.contains(&SegmentId(*id)))
        .map(|(id, bytes)| {
            let role = if Some(SegmentId(*id)) == newest {
                Role::Newest
            } else {
                Role::Sealed
            };
            Found::Scanned(scan_segment(SegmentId(*id), bytes, role))
        })
        .collect();
    let survey = Survey {
        loaded,
        listing: Listing {
            ids,
            ..Listing::default()
        },
        records,
        checkpoint_note: None,
        found,
    };
    match plan(dir, mode, Access::ReadWrite, &survey) {
        Ok(planned) => {
            let plan = planned.plan;
            let report = planned.report;
            let ids = |ids: &[SegmentId]| ids.iter().map(|id| id.0).collect();
            Outcome::Kept(Kept {
                entries: report.entries,
                stale: ids(&plan.stale),
                cut: plan.cut.map(|(id, len)| (id.0, len)),
                dropped: ids(&plan.dropped),
                torn_tail: report.torn_tail.is_some(),
                skipped: report.skipped,
                changed: report
                    .damage
                    .iter()
                    .filter(|d| matches!(d.kind, CorruptionKind::SegmentChanged { .. }))
                    .count(),
                rewrite_meta: plan.rewrite_meta.is_some(),
                truncate_back: plan.truncate_back.and_then(|(back, _)| {
                    back.map(|back| (back.position.segment.0, back.position.offset))
                }),
            })
        }
        Err(Error::Corrupt { .. }) => Outcome::Corrupt,
        Err(err) => panic!("{err}"),
    }
}

fn kept(entries: u64) -> Kept {
    Kept {
        entries,
        ..Kept::default()
    }
}

#[test]
fn each_mode_against_each_damage() {
    use Outcome::{Corrupt, Kept as K, Missing};
    use RecoveryMode::{AbsoluteConsistency, PointInTime, SkipCorrupted, TolerateCorruptedTail};
    let clean = || K(kept(6));
    let torn = || {
        K(Kept {
            cut: Some((2, 2 * LEN)),
            torn_tail: true,
            ..kept(5)
        })
    };
    let same = |outcome: fn() -> Outcome| [outcome(), outcome(), outcome(), outcome()];
    let skipped = |entries, skipped| {
        K(Kept {
            skipped,
            ..kept(entries)
        })
    };
    // Cut to nothing before the changed segment 1, which stays as the newest.
    let cut_before_changed = || {
        K(Kept {
            cut: Some((1, 0)),
            dropped: vec![2],
            changed: 1,
            ..kept(0)
        })
    };
    // The changed segment skipped whole, its 3 recorded numbers a gap.
    let skip_changed = || {
        K(Kept {
            skipped: 1,
            changed: 1,
            ..kept(6)
        })
    };
    // Rows: damage; columns: TolerateCorruptedTail, AbsoluteConsistency,
    // PointInTime, SkipCorrupted.
    let table: Vec<(Damage, [Outcome; 4])> = vec![
        (Damage::None, same(clean)),
        (Damage::TornTail, [torn(), Corrupt, torn(), torn()]),
        (
            Damage::CorruptMiddle,
            [
                Corrupt,
                Corrupt,
                K(Kept {
                    cut: Some((2, LEN)),
                    ..kept(4)
                }),
                skipped(5, 1),
            ],
        ),
        (
            Damage::CorruptFirst,
            [
                Corrupt,
                Corrupt,
                K(Kept {
                    cut: Some((1, LEN)),
                    dropped: vec![2],
                    ..kept(1)
                }),
                skipped(5, 1),
            ],
        ),
        (Damage::MissingSegment, [Missing, Missing, Missing, Missing]),
        (
            Damage::StaleSegment,
            same(|| {
                K(Kept {
                    stale: vec![1],
                    ..kept(6)
                })
            }),
        ),
        (
            Damage::StaleSideFileCopy,
            same(|| {
                K(Kept {
                    rewrite_meta: true,
                    ..kept(6)
                })
            }),
        ),
        (
            Damage::ChangedSealed,
            [Corrupt, Corrupt, cut_before_changed(), skip_changed()],
        ),
        (
            Damage::RenumberedSealed,
            [Corrupt, Corrupt, cut_before_changed(), skip_changed()],
        ),
        (Damage::StaleRecordOfNewest, same(clean)),
        (
            Damage::PendingTruncateBack,
            same(|| {
                K(Kept {
                    truncate_back: Some((2, LEN)),
                    ..kept(4)
                })
            }),
        ),
    ];
    let modes = [
        TolerateCorruptedTail,
        AbsoluteConsistency,
        PointInTime,
        SkipCorrupted,
    ];
    for (damage, expected) in table {
        for (mode, expected) in modes.into_iter().zip(expected) {
            assert_eq!(run(damage, mode), expected, "{damage:?} under {mode:?}");
        }
    }
}

/// A read-only plan changes nothing: it holds no step, whatever it found.
#[test]
fn a_read_only_plan_is_empty() {
    let mut damaged = segment();
    damaged.truncate((3 * LEN - 3) as usize);
    let survey = Survey {
        loaded: Loaded {
            meta: Some(Meta::default()),
            rewrite: true,
            ..Loaded::default()
        },
        listing: Listing {
            ids: vec![SegmentId(1)],
            has_tmp: true,
            ..Listing::default()
        },
        records: HashMap::new(),
        checkpoint_note: None,
        found: vec![Found::Scanned(scan_segment(
            SegmentId(1),
            &damaged,
            Role::Newest,
        ))],
    };
    let mode = RecoveryMode::TolerateCorruptedTail;
    let path = Path::new("log");
    let read_only = plan(path, mode, Access::ReadOnly, &survey).unwrap();
    assert_eq!(read_only.plan, Plan::default());
    assert!(read_only.report.torn_tail.is_some());
    let read_write = plan(path, mode, Access::ReadWrite, &survey).unwrap();
    assert_eq!(read_write.plan.cut, Some((SegmentId(1), 2 * LEN)));
    assert_eq!(read_write.plan.leftovers, vec![META_TMP_FILE.to_owned()]);
    assert!(read_write.plan.rewrite_meta.is_some());
    assert_eq!(read_write.report, read_only.report, "the same findings");
}
