//! Readers following the log while writers append and rotate: two followers
//! (`iter_from(1)?.follow_timeout(..)`) must see every entry exactly once, in
//! sequence-number order, each thread's entries in the order it appended them,
//! and both the same sequence; a point reader doing `read(random seq)` must get
//! the entry the followers saw at that sequence number.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flashlog_testkit::payload::{id_of, key_for, value_for};
use flashlog_testkit::Rng;
use flashlog_wal::{Op, Options, SyncPolicy, Wal};

const WRITERS: u64 = 3;
const PER_WRITER: u64 = 600;
const TOTAL: u64 = WRITERS * PER_WRITER;
/// Small segments: a rotation every dozen entries or so.
const SEGMENT_SIZE: u64 = 4 << 10;
/// A follower waiting this long for an entry that should come has hung.
const PATIENCE: Duration = Duration::from_secs(30);

/// Entry ids: writer `w` appends `w * PER_WRITER + k` for k in order.
fn follow(wal: &Wal) -> Vec<u64> {
    let mut iter = wal
        .iter_from(1)
        .expect("iter_from(1)")
        .follow_timeout(PATIENCE);
    let mut last_of_writer: HashMap<u64, u64> = HashMap::new();
    let mut ids = Vec::with_capacity(TOTAL as usize);
    while (ids.len() as u64) < TOTAL {
        let entry = iter
            .next()
            .unwrap_or_else(|| panic!("follower stalled after {} entries", ids.len()))
            .expect("follower read");
        assert_eq!(
            entry.seq(),
            ids.len() as u64 + 1,
            "follower skipped or repeated"
        );
        let id = id_of(entry.key(), entry.value()).expect("a phantom entry");
        let writer = id / PER_WRITER;
        if let Some(&previous) = last_of_writer.get(&writer) {
            assert!(id > previous, "writer {writer}'s entries out of order");
        }
        last_of_writer.insert(writer, id);
        ids.push(id);
    }
    ids
}

#[test]
fn followers_and_point_reads_while_appending_and_rotating() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .max_segment_size(SEGMENT_SIZE)
        .sync_policy(SyncPolicy::Always);
    let wal = Arc::new(Wal::open(dir.path(), options).unwrap());
    let followers: Vec<_> = (0..2)
        .map(|_| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || follow(&wal))
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let point_reader = {
        let (wal, done) = (Arc::clone(&wal), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut rng = Rng::new(11);
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let last = wal.last_seq();
                if last == 0 {
                    std::thread::yield_now();
                    continue;
                }
                let seq = rng.range(1, last);
                let entry = wal.read(seq).expect("read a visible entry");
                assert_eq!(entry.seq(), seq);
                seen.push((seq, id_of(entry.key(), entry.value()).expect("phantom")));
            }
            seen
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for k in 0..PER_WRITER {
                    let id = writer * PER_WRITER + k;
                    seqs.push(wal.append(Op::Put, &key_for(id), &value_for(id)).unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut acked: Vec<(u64, u64)> = Vec::new();
    for (writer, handle) in writers.into_iter().enumerate() {
        let seqs = handle.join().expect("writer");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a writer's seqs must grow"
        );
        acked.extend((0..PER_WRITER).map(|k| (writer as u64 * PER_WRITER + k, seqs[k as usize])));
    }
    let sequences: Vec<Vec<u64>> = followers
        .into_iter()
        .map(|f| f.join().expect("follower"))
        .collect();
    done.store(true, Ordering::Relaxed);
    let point_reads = point_reader.join().expect("point reader");
    assert_eq!(sequences[0], sequences[1], "followers saw different logs");
    for (id, seq) in acked {
        assert_eq!(
            sequences[0][seq as usize - 1],
            id,
            "append's seq and the log disagree"
        );
    }
    for (seq, id) in point_reads {
        assert_eq!(
            sequences[0][seq as usize - 1],
            id,
            "read({seq}) and the followers disagree"
        );
    }
    assert!(wal.segments().len() > 5, "the test must rotate");
    wal.close().unwrap();
}
