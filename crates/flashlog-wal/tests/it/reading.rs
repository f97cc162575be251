//! Reading: one entry by sequence number, iterators from any point, and readers
//! that follow the log while other threads append and rotate.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use flashlog_wal::{Error, Op, Options, Wal};

use crate::common::{append_all, open, read_all, record, sample_records};

#[test]
fn read_and_iter_from_any_point() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default().max_segment_size(300));
    let records = sample_records(50);
    append_all(&wal, &records);
    for seq in 1..=50u64 {
        let entry = wal.read(seq).unwrap();
        assert_eq!(entry.seq(), seq);
        assert_eq!(record(&entry), records[seq as usize - 1]);
        assert_eq!(wal.position(seq).unwrap(), entry.position());
    }
    for start in [1u64, 2, 17, 50] {
        let got: Vec<_> = wal
            .iter_from(start)
            .unwrap()
            .map(|e| record(&e.unwrap()))
            .collect();
        assert_eq!(got, records[start as usize - 1..].to_vec());
    }
    assert_eq!(wal.iter_from(51).unwrap().count(), 0);
    assert!(matches!(
        wal.read(0),
        Err(Error::SeqOutOfRange {
            seq: 0,
            first: 1,
            last: 50
        })
    ));
    assert!(matches!(wal.read(51), Err(Error::SeqOutOfRange { .. })));
    assert!(matches!(wal.iter_from(0), Err(Error::SeqOutOfRange { .. })));
}

#[test]
fn an_iterator_at_the_end_sees_entries_appended_later() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default());
    let mut iter = wal.iter_from(1).unwrap();
    assert!(iter.next().is_none());
    wal.append(Op::Put, b"a", b"").unwrap();
    assert_eq!(iter.next().unwrap().unwrap().key(), b"a");
    assert!(iter.next().is_none());
    assert!(!wal.wait_for(2, Duration::from_millis(10)).unwrap());
    wal.append(Op::Put, b"b", b"").unwrap();
    assert!(wal.wait_for(2, Duration::from_millis(10)).unwrap());
    assert_eq!(iter.next().unwrap().unwrap().seq(), 2);
}

#[test]
fn entries_larger_than_one_read_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default().max_segment_size(8 << 20));
    let big = vec![3u8; 3 << 20];
    for i in 0..4u8 {
        wal.append(Op::Put, &[i], &big).unwrap();
        wal.append(Op::Put, &[i, i], b"small").unwrap();
    }
    let values: Vec<usize> = wal
        .iter_from(1)
        .unwrap()
        .map(|e| e.unwrap().value().len())
        .collect();
    assert_eq!(values, [3 << 20, 5].repeat(4));
}

#[test]
fn followers_read_everything_while_writers_append_and_rotate() {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(open(dir.path(), Options::default().max_segment_size(4096)));
    let followers: Vec<_> = (0..3)
        .map(|_| {
            let mut tail = wal.iter_from(1).unwrap().follow();
            thread::spawn(move || {
                let mut seen = Vec::new();
                for entry in tail.by_ref() {
                    let entry = entry.unwrap();
                    assert_eq!(entry.seq(), seen.len() as u64 + 1, "in order, no gaps");
                    seen.push(record(&entry));
                    if seen.len() == WRITERS * PER_WRITER {
                        break;
                    }
                }
                seen
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || {
                for i in 0..PER_WRITER {
                    wal.append(Op::Put, format!("{w}:{i}").as_bytes(), &[w as u8; 20])
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let all = read_all(&wal);
    assert_eq!(all.len(), WRITERS * PER_WRITER);
    assert!(wal.segments().len() > 3, "the log rotated while being read");
    for follower in followers {
        assert_eq!(follower.join().unwrap(), all);
    }
}

#[test]
fn a_follower_ends_when_the_log_closes() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(open(dir.path(), Options::default()));
    wal.append(Op::Put, b"only", b"").unwrap();
    let tail = wal.iter_from(1).unwrap().follow();
    let follower = thread::spawn(move || tail.map(|e| e.unwrap().seq()).collect::<Vec<_>>());
    thread::sleep(Duration::from_millis(30));
    wal.close().unwrap();
    assert_eq!(follower.join().unwrap(), [1]);

    let wal = open(tempfile::tempdir().unwrap().path(), Options::default());
    let mut tail = wal
        .iter_from(1)
        .unwrap()
        .follow_timeout(Duration::from_millis(20));
    assert!(tail.next().is_none(), "gives up after the timeout");
}

#[test]
fn a_read_only_open_changes_nothing_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), Options::default());
        append_all(&wal, &sample_records(5));
    }
    let path = dir.path().join("segment-0001.log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0xff; 7]); // a torn tail
    std::fs::write(&path, &bytes).unwrap();

    let wal = Wal::open(dir.path(), Options::default().read_only()).unwrap();
    assert!(
        wal.recovery_report().torn_tail.is_some(),
        "the torn tail is reported"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "and left in place");
    assert!(matches!(
        wal.append(Op::Put, b"k", b"v"),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(wal.truncate_back(1), Err(Error::ReadOnly)));
    assert!(matches!(wal.sync(), Err(Error::ReadOnly)));
    assert_eq!(read_all(&wal).len(), 5);
    drop(wal);

    // A read-only open works beside the read-write one that holds the lock.
    let writer = open(dir.path(), Options::default());
    assert_eq!(writer.recovery_report().torn_tail.map(|t| t.len), Some(7));
    let reader = Wal::open(dir.path(), Options::default().read_only()).unwrap();
    assert_eq!(read_all(&reader).len(), 5);
    assert!(Wal::open(dir.path().join("missing"), Options::default().read_only()).is_err());
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn borrowed_visits_see_exactly_what_the_iterator_yields() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default().max_segment_size(300));
    let records = sample_records(80);
    append_all(&wal, &records);
    for start in [1u64, 40, 80, 81] {
        let mut seen = Vec::new();
        let mut iter = wal.iter_from(start).unwrap();
        iter.try_for_each_ref(|entry| {
            assert_eq!(entry.seq, start + seen.len() as u64);
            assert_eq!(wal.position(entry.seq).unwrap(), entry.position);
            seen.push((entry.op, entry.key.to_vec(), entry.value.to_vec()));
            Ok::<(), Error>(())
        })
        .unwrap();
        assert_eq!(seen, records[start as usize - 1..].to_vec());
        assert_eq!(iter.next_seq(), 81);
    }
    // An error from the visitor stops the visit and is returned.
    let mut calls = 0;
    let result = wal.iter_from(1).unwrap().try_for_each_ref(|_| {
        calls += 1;
        if calls == 3 {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    });
    assert!(matches!(result, Err(Error::Closed)));
    assert_eq!(calls, 3);
}
