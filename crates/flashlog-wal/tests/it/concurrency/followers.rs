//! Iterators and followers whose entries a concurrent truncation cuts: they are
//! told, once, and go on with the new history.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use flashlog_wal::{Error, Op, Options, Wal};

use super::key;

/// An iterator that yielded old 1..=10 must not go on with new 11 and 12 after
/// `truncate_back(5)` and new appends: it says once that what it read was cut,
/// then reads the new history from the cut.
#[test]
fn regression_a_follower_learns_that_entries_it_read_were_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=10 {
        wal.append(Op::Put, &key("old", i), b"").unwrap();
    }
    let mut follower = wal
        .iter_from(1)
        .unwrap()
        .follow_timeout(Duration::from_millis(20));
    for i in 1..=10 {
        assert_eq!(follower.next().unwrap().unwrap().key(), key("old", i));
    }
    assert!(follower.next().is_none());
    wal.truncate_back(5).unwrap();
    for i in 5..=12 {
        wal.append(Op::Put, &key("new", i), b"").unwrap();
    }
    match follower.next() {
        Some(Err(Error::Truncated { first_cut: 5 })) => {}
        other => panic!("expected Truncated {{ first_cut: 5 }}, got {other:?}"),
    }
    assert_eq!(follower.next_seq(), 5);
    let rest: Vec<Vec<u8>> = follower.map(|e| e.unwrap().key().to_vec()).collect();
    let new: Vec<Vec<u8>> = (5..=12).map(|i| key("new", i)).collect();
    assert_eq!(rest, new);
}

/// An iterator part way through a run it read ahead: entries it has not yielded
/// yet and that `truncate_back` replaced are read again from the new history,
/// without an error (nothing it yielded was cut).
#[test]
fn an_iterator_rereads_entries_replaced_before_it_yielded_them() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=10 {
        wal.append(Op::Put, &key("old", i), b"").unwrap();
    }
    let mut iter = wal.iter_from(1).unwrap();
    for i in 1..=4 {
        assert_eq!(iter.next().unwrap().unwrap().key(), key("old", i));
    }
    wal.truncate_back(5).unwrap();
    for i in 5..=7 {
        wal.append(Op::Put, &key("new", i), b"").unwrap();
    }
    let rest: Vec<Vec<u8>> = iter.map(|e| e.unwrap().key().to_vec()).collect();
    let new: Vec<Vec<u8>> = (5..=7).map(|i| key("new", i)).collect();
    assert_eq!(rest, new);
}

/// A follower blocked at the end of the log when `truncate_back` cuts what it
/// read is woken and told, instead of waiting for the new history to catch up.
#[test]
fn a_blocked_follower_is_told_of_a_truncation_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), Options::default()).unwrap());
    for i in 1..=3 {
        wal.append(Op::Put, &key("old", i), b"").unwrap();
    }
    let follower = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || {
            let mut follower = wal.iter_from(1).unwrap().follow();
            for _ in 1..=3 {
                follower.next().unwrap().unwrap();
            }
            follower.next()
        })
    };
    thread::sleep(Duration::from_millis(100));
    wal.truncate_back(2).unwrap();
    match follower.join().unwrap() {
        Some(Err(Error::Truncated { first_cut: 2 })) => {}
        other => panic!("expected Truncated {{ first_cut: 2 }}, got {other:?}"),
    }
}

/// Entries yielded before a reported cut stay yielded: a second, deeper cut of
/// them is reported too (the concurrent model test found this).
#[test]
fn regression_a_second_deeper_cut_is_reported_too() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=10 {
        wal.append(Op::Put, &key("old", i), b"").unwrap();
    }
    let mut iter = wal.iter_from(1).unwrap();
    for _ in 1..=10 {
        iter.next().unwrap().unwrap();
    }
    wal.truncate_back(8).unwrap();
    assert!(matches!(
        iter.next(),
        Some(Err(Error::Truncated { first_cut: 8 }))
    ));
    wal.truncate_back(5).unwrap();
    wal.append(Op::Put, &key("new", 5), b"").unwrap();
    assert!(matches!(
        iter.next(),
        Some(Err(Error::Truncated { first_cut: 5 }))
    ));
    assert_eq!(iter.next().unwrap().unwrap().key(), key("new", 5));
    assert!(iter.next().is_none());
}

/// Review found it: a `try_for_each_ref` whose visit fails part way through a
/// segment trusted from the checkpoint, then resumed, went on with the next
/// piece of the segment numbered from the failed entry: seq 3 yielded entry 11.
#[test]
fn regression_resuming_after_a_failed_visit_in_a_trusted_segment_yields_the_right_entries() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().max_segment_size(4 << 20);
    let wal = Wal::open(dir.path(), options.clone()).unwrap();
    let value = vec![7u8; 100 << 10];
    for i in 1..=60 {
        wal.append(Op::Put, &key("k", i), &value).unwrap();
    }
    wal.close().unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), options).unwrap();
    #[derive(Debug, PartialEq)]
    enum Stop {
        Here,
        Log(String),
    }
    impl From<Error> for Stop {
        fn from(err: Error) -> Stop {
            Stop::Log(err.to_string())
        }
    }
    let mut iter = wal.iter_from(1).unwrap();
    let stopped = iter.try_for_each_ref(|entry| {
        if entry.seq == 3 {
            return Err(Stop::Here);
        }
        Ok(())
    });
    assert_eq!(stopped, Err(Stop::Here));
    for i in 3..=60 {
        let entry = iter.next().unwrap().unwrap();
        assert_eq!((entry.seq(), entry.key()), (i, &key("k", i)[..]));
    }
    assert!(iter.next().is_none());
}
