//! Waiting on a log that gets the entry, closes or fails meanwhile.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use flashlog_wal::{Error, Op, Options, Wal};

use crate::common::{faulty_disk_options, FaultyDisk};

#[test]
fn regression_waiting_without_a_deadline_does_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), Options::default()).unwrap());
    wal.append(Op::Put, b"k", b"v").unwrap();
    assert!(wal.wait_for(1, Duration::MAX).unwrap());
    let mut follower = wal.iter_from(1).unwrap().follow_timeout(Duration::MAX);
    assert_eq!(follower.next().unwrap().unwrap().seq(), 1);
    let waiter = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.wait_for(2, Duration::MAX))
    };
    thread::sleep(Duration::from_millis(50));
    wal.append(Op::Put, b"k", b"v2").unwrap();
    assert!(waiter.join().unwrap().unwrap());
}

/// `wait_for` says promptly that the log closed, instead of waiting out its
/// timeout or answering as if it had timed out.
#[test]
fn regression_wait_for_returns_at_close_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), Options::default()).unwrap());
    let waiter = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.wait_for(1, Duration::from_secs(3600)))
    };
    thread::sleep(Duration::from_millis(50));
    wal.close().unwrap();
    assert!(matches!(waiter.join().unwrap(), Err(Error::Closed)));
}

/// After a failed write nothing more becomes visible: `wait_for` returns at
/// once with the failure instead of waiting out an hour.
#[test]
fn regression_wait_for_returns_when_the_log_is_poisoned() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyDisk::sticky();
    let wal = Arc::new(Wal::open(dir.path(), faulty_disk_options(&fs)).unwrap());
    wal.append(Op::Put, b"k", b"v").unwrap();
    let waiter = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.wait_for(2, Duration::from_secs(3600)))
    };
    thread::sleep(Duration::from_millis(50));
    fs.fail_after(1);
    assert!(wal.append(Op::Put, b"k", b"v2").is_err());
    let started = std::time::Instant::now();
    assert!(matches!(
        waiter.join().unwrap(),
        Err(Error::Poisoned { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(60));
    // What was visible before the failure still is.
    assert!(wal.wait_for(1, Duration::MAX).unwrap());
}
