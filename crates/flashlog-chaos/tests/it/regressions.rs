//! Core bugs found by this suite, kept as regression tests once fixed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use flashlog_wal::{Error, Options, Wal};

/// `Wal::close` promises that "another `Wal` may open the directory now", but the
/// directory lock is an `flock` on `flashlog.lock`: a child process forked by any
/// other thread while the log was open shares the lock's open file description
/// until it execs, so an immediate reopen failed with `Error::Locked`. Found when
/// the kill harness spawned children while the kv model test reopened its store;
/// fixed by unlocking explicitly when the lock is released.
#[test]
fn regression_reopen_after_close_while_another_thread_spawns() {
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spawner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::process::Command::new("true").status();
            }
        })
    };
    let mut locked = 0;
    for _ in 0..500 {
        match Wal::open(dir.path(), Options::default()) {
            Ok(wal) => wal.close().unwrap(),
            Err(Error::Locked { .. }) => locked += 1,
            Err(err) => panic!("{err}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    spawner.join().unwrap();
    assert_eq!(
        locked, 0,
        "{locked} of 500 reopens after close were refused as Locked"
    );
}
