//! The recovery policy, table-driven: each mode against each place damage can be.

use super::*;
use crate::codec;
use crate::op::Op;
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
    StaleSideFile,
}

/// What a plan comes to, in short.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// `Error::Corrupt`.
    Corrupt,
    /// `Error::MissingSegment`.
    Missing,
    Kept {
        entries: u64,
        stale: Vec<u64>,
        cut: Option<(u64, u64)>,
        dropped: Vec<u64>,
        torn_tail: bool,
        skipped: u64,
    },
}

fn run(damage: Damage, mode: RecoveryMode) -> Outcome {
    let mut files: Vec<(u64, Vec<u8>)> = vec![(1, segment()), (2, segment())];
    let mut meta = Meta::default();
    let bad_crc = |bytes: &mut Vec<u8>| bytes[(LEN + LEN - 1) as usize] ^= 1;
    match damage {
        Damage::None => {}
        Damage::TornTail => files[1].1.truncate((3 * LEN - 3) as usize),
        Damage::CorruptMiddle => bad_crc(&mut files[1].1),
        Damage::CorruptFirst => bad_crc(&mut files[0].1),
        Damage::MissingSegment => files[1].0 = 3,
        Damage::StaleSideFile => {
            files.push((3, segment()));
            meta.first_segment = SegmentId(2);
            meta.first_seq = 4;
        }
    }
    let dir = Path::new("log");
    let ids: Vec<SegmentId> = files.iter().map(|&(id, _)| SegmentId(id)).collect();
    let (stale, live) = match split_listed(dir, &ids, &meta) {
        Ok(split) => split,
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
    let mut plan = Plan {
        stale,
        ..Plan::default()
    };
    let mut report = RecoveryReport::starting_at(meta.first_seq);
    let records = HashMap::new();
    match decide(
        dir,
        mode,
        meta.first_seq,
        found,
        &records,
        &mut plan,
        &mut report,
    ) {
        Ok(index) => Outcome::Kept {
            entries: index.segments.iter().map(SegmentIndex::len).sum(),
            stale: plan.stale.iter().map(|id| id.0).collect(),
            cut: plan.cut.map(|(id, len)| (id.0, len)),
            dropped: plan.dropped.iter().map(|id| id.0).collect(),
            torn_tail: report.torn_tail.is_some(),
            skipped: report.skipped,
        },
        Err(Error::Corrupt { .. }) => Outcome::Corrupt,
        Err(err) => panic!("{err}"),
    }
}

fn kept(entries: u64, cut: Option<(u64, u64)>, dropped: &[u64], torn_tail: bool) -> Outcome {
    Outcome::Kept {
        entries,
        stale: Vec::new(),
        cut,
        dropped: dropped.to_vec(),
        torn_tail,
        skipped: 0,
    }
}

fn skipped(entries: u64, skipped: u64) -> Outcome {
    Outcome::Kept {
        entries,
        stale: Vec::new(),
        cut: None,
        dropped: Vec::new(),
        torn_tail: false,
        skipped,
    }
}

#[test]
fn each_mode_against_each_damage() {
    use Outcome::{Corrupt, Missing};
    use RecoveryMode::{AbsoluteConsistency, PointInTime, SkipCorrupted, TolerateCorruptedTail};
    let clean = || kept(6, None, &[], false);
    let torn = || kept(5, Some((2, 2 * LEN)), &[], true);
    let stale = || Outcome::Kept {
        entries: 6,
        stale: vec![1],
        cut: None,
        dropped: Vec::new(),
        torn_tail: false,
        skipped: 0,
    };
    // Rows: damage; columns: TolerateCorruptedTail, AbsoluteConsistency,
    // PointInTime, SkipCorrupted.
    let table: Vec<(Damage, [Outcome; 4])> = vec![
        (Damage::None, [clean(), clean(), clean(), clean()]),
        (Damage::TornTail, [torn(), Corrupt, torn(), torn()]),
        (
            Damage::CorruptMiddle,
            [
                Corrupt,
                Corrupt,
                kept(4, Some((2, LEN)), &[], false),
                skipped(5, 1),
            ],
        ),
        (
            Damage::CorruptFirst,
            [
                Corrupt,
                Corrupt,
                kept(1, Some((1, LEN)), &[2], false),
                skipped(5, 1),
            ],
        ),
        (Damage::MissingSegment, [Missing, Missing, Missing, Missing]),
        (Damage::StaleSideFile, [stale(), stale(), stale(), stale()]),
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
