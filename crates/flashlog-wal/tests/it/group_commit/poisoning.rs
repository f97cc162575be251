//! Group commit when an fsync fails or panics: the log is poisoned, every
//! appender of the group and every later one gets the error (with its kind),
//! and no one waits forever.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use flashlog_testkit::{Call, FaultKind, Persistence, SimFault, SimFs, Target};
use flashlog_wal::{Error, Op, Options, SyncPolicy, Wal};

use crate::common::{faulty_disk_options, open, AfterFailure, Counting, FaultyDisk};

#[test]
fn a_failed_fsync_poisons_the_log_and_nothing_later_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), Options::default());
        wal.append(Op::Put, b"before", b"1").unwrap();
    }
    // Fail the first fsync after open (open's own is the first), once only: a later
    // fsync would succeed, and must not be taken as proof that the failed write
    // reached the disk.
    let fs = FaultyDisk::failing(2, Counting::SyncsOnly, AfterFailure::Proceed);
    let wal = Wal::open(dir.path(), faulty_disk_options(&fs)).unwrap();
    let err = wal.append(Op::Put, b"lost", b"2").unwrap_err();
    assert!(matches!(err, Error::Io { op: "fsync", .. }), "{err}");
    for _ in 0..3 {
        assert!(matches!(
            wal.append(Op::Put, b"later", b"3"),
            Err(Error::Poisoned { .. })
        ));
    }
    assert!(matches!(wal.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(wal.truncate_back(1), Err(Error::Poisoned { .. })));
    assert!(matches!(wal.close(), Err(Error::Poisoned { .. })));
    // Reading what was durable still works.
    assert_eq!(wal.read(1).unwrap().key(), b"before");
    drop(wal);
    let wal = open(dir.path(), Options::default());
    // The entry whose fsync failed may or may not be on disk; nothing after it is.
    assert!(wal.last_seq() <= 2);
    assert_eq!(wal.read(1).unwrap().key(), b"before");
}

#[test]
fn a_failed_fsync_fails_every_appender_of_the_group() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), Options::default())); // created: reopening syncs once
    let fs = FaultyDisk::failing(4, Counting::SyncsOnly, AfterFailure::Proceed);
    let wal = Arc::new(Wal::open(dir.path(), faulty_disk_options(&fs)).unwrap());
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || {
                (0..20)
                    .map(|i| wal.append(Op::Put, format!("{t}/{i}").as_bytes(), b""))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let ok: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    let io_errors = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Io { .. })))
        .count();
    assert_eq!(
        io_errors, 1,
        "exactly the leader of the failed group sees the I/O error"
    );
    assert!(results.iter().all(|r| matches!(
        r,
        Ok(_) | Err(Error::Io { .. }) | Err(Error::Poisoned { .. })
    )));
    // Every success came from the two fsyncs that succeeded, before the failure.
    let max_ok = ok.iter().copied().max().unwrap_or(0);
    assert_eq!(
        ok.len() as u64,
        max_ok,
        "acknowledged entries are exactly 1..={max_ok}"
    );
}

#[test]
fn a_follower_of_a_poisoned_log_gets_the_error_instead_of_waiting_forever() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), Options::default())); // created: reopening syncs once
    let fs = FaultyDisk::failing(3, Counting::SyncsOnly, AfterFailure::Proceed);
    let wal = Arc::new(Wal::open(dir.path(), faulty_disk_options(&fs)).unwrap());
    wal.append(Op::Put, b"synced", b"").unwrap();
    let mut tail = wal.iter_from(1).unwrap().follow();
    let follower = thread::spawn(move || {
        let first = tail.next().map(|e| e.map(|e| e.seq()));
        let second = tail.next();
        (first, second)
    });
    thread::sleep(Duration::from_millis(30));
    assert!(wal.append(Op::Put, b"fails", b"").is_err());
    let (first, second) = follower.join().unwrap();
    assert_eq!(first.unwrap().unwrap(), 1);
    assert!(
        matches!(second, Some(Err(Error::Poisoned { .. }))),
        "{second:?}"
    );
}

/// A file system whose fsync panics once armed.
#[derive(Debug, Default)]
struct PanickingFs(Arc<std::sync::atomic::AtomicBool>);

#[derive(Debug)]
struct PanickingFile(
    Box<dyn flashlog_wal::fs::FsFile>,
    Arc<std::sync::atomic::AtomicBool>,
);

impl flashlog_wal::fs::FsFile for PanickingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<usize> {
        self.0.write_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        assert!(!self.1.load(Ordering::SeqCst), "fsync panics");
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
}

impl flashlog_wal::fs::Fs for PanickingFs {
    fn create_dir_all(&self, path: &std::path::Path) -> std::io::Result<()> {
        flashlog_wal::fs::StdFs.create_dir_all(path)
    }
    fn list_dir(&self, path: &std::path::Path) -> std::io::Result<Vec<String>> {
        flashlog_wal::fs::StdFs.list_dir(path)
    }
    fn open(
        &self,
        path: &std::path::Path,
        mode: flashlog_wal::fs::OpenMode,
    ) -> std::io::Result<Box<dyn flashlog_wal::fs::FsFile>> {
        let file = flashlog_wal::fs::StdFs.open(path, mode)?;
        Ok(Box::new(PanickingFile(file, Arc::clone(&self.0))))
    }
    fn remove_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        flashlog_wal::fs::StdFs.remove_file(path)
    }
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        flashlog_wal::fs::StdFs.rename(from, to)
    }
    fn sync_dir(&self, path: &std::path::Path) -> std::io::Result<()> {
        flashlog_wal::fs::StdFs.sync_dir(path)
    }
    fn lock(
        &self,
        path: &std::path::Path,
    ) -> std::io::Result<Box<dyn std::fmt::Debug + Send + Sync>> {
        flashlog_wal::fs::StdFs.lock(path)
    }
}

#[test]
fn a_file_system_panicking_mid_commit_poisons_the_log_instead_of_hanging_it() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), Options::default()));
    // Manual: open and append do not fsync; the first sync() panics in the leader.
    let fs = PanickingFs::default();
    let armed = Arc::clone(&fs.0);
    let options = Options::default()
        .sync_policy(SyncPolicy::Manual)
        .fs(Arc::new(fs));
    let wal = Arc::new(Wal::open(dir.path(), options).unwrap());
    wal.append(Op::Put, b"k", b"v").unwrap();
    armed.store(true, Ordering::SeqCst);
    let leader = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.sync())
    };
    assert!(
        leader.join().is_err(),
        "the panic reached the leader's caller"
    );
    let (done, finished) = mpsc::channel();
    let waiter = Arc::clone(&wal);
    thread::spawn(move || done.send(waiter.append(Op::Put, b"after", b"")).unwrap());
    let after = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("append hung after a panic");
    assert!(matches!(after, Err(Error::Poisoned { .. })), "{after:?}");
    assert!(matches!(wal.close(), Err(Error::Poisoned { .. })));
}

/// `Error::Poisoned` carries the failure that poisoned the log, kind included: a
/// caller tells a full disk from a failing one on every later refusal.
#[test]
fn poisoned_keeps_the_kind_of_the_failed_fsync() {
    for (kind, raw) in [(FaultKind::Enospc, 28), (FaultKind::Eio, 5)] {
        let sim = SimFs::new();
        let wal = Wal::open("/log", Options::default().fs(Arc::new(sim.clone()))).unwrap();
        wal.append(Op::Put, b"before", b"1").unwrap();
        sim.set_fault(Some(SimFault {
            target: Target::Kind(Call::SyncData),
            nth: 1,
            kind,
            persistence: Persistence::Once,
        }));
        let err = wal.append(Op::Put, b"lost", b"2").unwrap_err();
        assert!(matches!(err, Error::Io { op: "fsync", .. }), "{err}");
        let os_kind = io::Error::from_raw_os_error(raw).kind();
        assert_eq!(err.io_kind(), Some(os_kind));
        if kind == FaultKind::Enospc {
            assert_eq!(os_kind, io::ErrorKind::StorageFull);
        }
        for later in [
            wal.append(Op::Put, b"later", b"3").unwrap_err(),
            wal.sync().unwrap_err(),
        ] {
            let Error::Poisoned { cause } = &later else {
                panic!("{later}")
            };
            assert!(matches!(**cause, Error::Io { op: "fsync", .. }), "{cause}");
            assert_eq!(later.io_kind(), err.io_kind(), "{later}");
            assert_eq!(cause.to_string(), err.to_string());
            // The cause is the error's source, and its OS error is the next one.
            let source = std::error::Error::source(&later).expect("a source");
            assert_eq!(source.to_string(), err.to_string());
            let os = source.source().expect("the OS error");
            assert_eq!(
                os.to_string(),
                io::Error::from_raw_os_error(raw).to_string()
            );
        }
    }
}
