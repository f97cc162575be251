//! Entries straddling rotations: random entry sizes with small segments. Every
//! entry goes where FORMAT.md's rule puts it (a new segment when
//! `size + n > max_segment_size`), every segment file holds exactly its entries,
//! and a reopen gives the same entries at the same positions.

use std::sync::Arc;

use flashlog_testkit::SimFs;
use flashlog_wal::codec::encoded_len;
use flashlog_wal::{Batch, Op, Options, Position, SegmentId, SyncPolicy, Visibility, Wal};
use proptest::prelude::*;

type Placed = (Position, Vec<u8>, Vec<u8>);

fn placed(wal: &Wal) -> Vec<Placed> {
    wal.iter_from(wal.first_seq())
        .unwrap()
        .visibility(Visibility::Written)
        .map(|e| {
            let e = e.unwrap();
            (e.position(), e.key().to_vec(), e.value().to_vec())
        })
        .collect()
}

/// Where FORMAT.md's rotation rule puts entries of these lengths.
fn expected_positions(lens: &[u64], max: u64) -> Vec<Position> {
    let (mut segment, mut size) = (1, 0);
    lens.iter()
        .map(|&n| {
            if size + n > max {
                segment += 1;
                size = 0;
            }
            let position = Position {
                segment: SegmentId(segment),
                offset: size,
            };
            size += n;
            position
        })
        .collect()
}

fn check_rotation(max: u64, entries: &[(usize, usize, bool)]) {
    let fs = SimFs::new();
    let options = Options::default()
        .max_segment_size(max)
        .sync_policy(SyncPolicy::Manual)
        .fs(Arc::new(fs.clone()));
    let wal = Wal::open("/log", options.clone()).unwrap();
    let mut lens = Vec::new();
    let mut batch = Batch::new();
    for (at, &(key_len, value_len, batched)) in entries.iter().enumerate() {
        let key = vec![at as u8; key_len];
        let value = vec![!(at as u8); value_len];
        lens.push(encoded_len(key_len, value_len));
        if batched {
            batch.put(&key, &value);
        } else {
            wal.append_batch(&batch).unwrap();
            batch.clear();
            wal.append(Op::Put, &key, &value).unwrap();
        }
    }
    wal.append_batch(&batch).unwrap();
    let written = placed(&wal);
    let positions: Vec<Position> = written.iter().map(|p| p.0).collect();
    assert_eq!(positions, expected_positions(&lens, max));
    let segments = wal.segments();
    for info in &segments {
        assert!(
            info.bytes <= max,
            "segment {} holds {} > {max} bytes",
            info.id,
            info.bytes
        );
        let file = fs.read(format!("/log/{}", info.id.file_name())).unwrap();
        // While the log is open, the active segment may carry preallocated zeros.
        assert!(
            file.len() as u64 >= info.bytes,
            "segment {} file too short",
            info.id
        );
        let tail = &file[info.bytes as usize..];
        assert!(
            tail.iter().all(|&b| b == 0),
            "segment {} has bytes after its entries",
            info.id
        );
    }
    wal.close().unwrap();
    drop(wal);
    for info in &segments {
        let file = fs.read(format!("/log/{}", info.id.file_name())).unwrap();
        assert_eq!(
            file.len() as u64,
            info.bytes,
            "closed segment {} holds only its entries",
            info.id
        );
    }
    let wal = Wal::open("/log", options).unwrap();
    assert_eq!(placed(&wal), written, "reopen changed entries or positions");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn entries_straddling_rotations(
        max in 310u64..1200,
        entries in prop::collection::vec((0usize..40, 0usize..250, any::<bool>()), 1..80),
    ) {
        check_rotation(max, &entries);
    }
}

#[test]
fn entry_that_exactly_fills_a_segment_then_one_byte_more() {
    // 100-byte segments: 17 + 83 = 100 fills one; the next entry starts a new one.
    check_rotation(
        100,
        &[(0, 83, false), (0, 0, false), (0, 82, true), (0, 0, true)],
    );
}
