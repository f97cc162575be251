//! Directory entries are not durable until the directory is fsynced: a crash after
//! a segment is created, renamed or deleted never loses an acknowledged entry and
//! never replays a deleted segment.

use flashlog_testkit::{check_recovered, Change, CrashModel, LogModel, Recovered, SimFs};
use flashlog_wal::{Op, SyncPolicy, Wal, META_FILE};

use crate::common::{options, value, DIR};

const SEGMENT: u64 = 64;

/// What one crash image held and recovered to.
struct Image {
    /// Segment files and the side file found on the image, before recovery.
    names: Vec<String>,
    recovered: Recovered,
    /// Segments recovery removed.
    removed: usize,
}

/// Whether some image is as `test` says.
fn some(images: &[Image], test: impl Fn(&Image) -> bool) -> bool {
    images.iter().any(test)
}

impl Image {
    /// Whether the file `name` was on the image before recovery.
    fn had(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// How many entries recovery found.
    fn entries(&self) -> usize {
        self.recovered.entries.len()
    }
}

/// A log of `count` entries (two per segment), then `operation` crashed after
/// every mutation under drop-unsynced and every drop-one image; every image is
/// checked against the model `operation` returns.
fn crash_everywhere(
    count: u64,
    models: fn(usize) -> Vec<CrashModel>,
    operation: impl Fn(&Wal, &mut LogModel) -> flashlog_wal::Result<()>,
) -> Vec<Image> {
    let base = SimFs::new();
    let mut model = LogModel::new();
    {
        let wal = Wal::open(DIR, options(&base, SEGMENT, SyncPolicy::Always)).unwrap();
        for n in 0..count {
            let seq = model.issue(Op::Put, b"k", &value(n, 8));
            assert_eq!(wal.append(Op::Put, b"k", &value(n, 8)).unwrap(), seq);
        }
        model.ack_all();
    }
    let base = base.crash(CrashModel::DropUnsynced);
    let mut images = Vec::new();
    for k in 0.. {
        let sim = base.snapshot();
        let mut model = model.clone();
        let finished = {
            let wal = Wal::open(DIR, options(&sim, SEGMENT, SyncPolicy::Always)).unwrap();
            // Crash during the operation: the open (which syncs the active
            // segment) is not among the k mutations.
            sim.crash_after(Some(k));
            operation(&wal, &mut model).is_ok()
        };
        for crash in models(sim.pending().len()) {
            let image = sim.crash(crash);
            let names = image.names(DIR);
            let wal = Wal::open(DIR, options(&image, SEGMENT, SyncPolicy::Always))
                .unwrap_or_else(|err| panic!("crash after {k}, {crash:?}: {err}"));
            let recovered = Recovered::read(&wal).unwrap();
            check_recovered(&recovered, &model)
                .unwrap_or_else(|v| panic!("crash after {k}, {crash:?}: {v}"));
            let removed = wal.recovery_report().removed_segments.len();
            drop(wal);
            let again = Wal::open(DIR, options(&image, SEGMENT, SyncPolicy::Always)).unwrap();
            assert_eq!(Recovered::read(&again).unwrap(), recovered, "idempotent");
            images.push(Image {
                names,
                recovered,
                removed,
            });
        }
        if finished {
            break;
        }
    }
    images
}

#[test]
fn a_segment_created_by_rotation_but_not_in_a_synced_directory_loses_nothing() {
    let images = crash_everywhere(2, every_model, |wal, model| {
        let seq = model.issue(Op::Put, b"rotates", &value(99, 30));
        wal.append(Op::Put, b"rotates", &value(99, 30))?;
        model.ack_through(seq);
        Ok(())
    });
    // Exercised: some image lost the new segment's name, some kept it empty.
    assert!(some(&images, |i| !i.had("segment-0002.log")));
    assert!(some(&images, |i| i.had("segment-0002.log") && i.entries() == 2));
    assert!(some(&images, |i| i.entries() == 3));
}

#[test]
fn a_segment_deleted_by_truncate_front_is_never_replayed() {
    let images = crash_everywhere(8, every_model, |wal, model| {
        let result = wal.truncate_front(7);
        model.truncate_front(7, result.as_ref().ok().copied());
        result.map(drop)
    });
    // Exercised: the side file moved on while the deleted segment's name came back;
    // recovery deleted it instead of replaying it.
    assert!(some(&images, |i| i.removed > 0
        && i.had("segment-0001.log")
        && i.names.contains(&META_FILE.into())
        && i.recovered.first_seq == 7));
    assert!(images
        .iter()
        .all(|i| i.recovered.first_seq == 1 || i.recovered.first_seq == 7));
}

/// Drop-unsynced and one drop-one image per pending change.
fn every_model(pending: usize) -> Vec<CrashModel> {
    CrashModel::all(pending, &[])
}

/// Only drop-unsynced: models that reorder the unlinks hit
/// `regression_a_truncate_back_whose_first_unlink_is_lost_reopens`.
fn drop_unsynced_only(_pending: usize) -> Vec<CrashModel> {
    vec![CrashModel::DropUnsynced]
}

fn truncate_back_then_append(wal: &Wal, model: &mut LogModel) -> flashlog_wal::Result<()> {
    let result = wal.truncate_back(3);
    model.truncate_back(3, result.is_ok());
    result?;
    // The reused sequence numbers must never show the old entries again.
    for n in 0..3 {
        let seq = model.issue(Op::Put, b"new", &value(200 + n, 8));
        wal.append(Op::Put, b"new", &value(200 + n, 8))?;
        model.ack_through(seq);
    }
    Ok(())
}

/// `truncate_back(3)` of a log of segments [1 2] [3 4] [5 6] [7 8] records its
/// intent in the side file, then unlinks segment 4 and segment 3 and only then
/// fsyncs the directory. Under the ALICE model a crash may keep the second unlink
/// and lose the first: the image holds segments 1, 2 and 4. The side file's intent
/// says everything from entry 3 on goes, so recovery could finish the truncation;
/// instead open failed with `MissingSegment(3)` and the log could not be opened.
/// Fixed by syncing the directory after each newest-first unlink.
#[test]
fn regression_a_truncate_back_whose_first_unlink_is_lost_reopens() {
    crash_everywhere(8, every_model, truncate_back_then_append);
}

#[test]
fn segments_deleted_by_truncate_back_are_never_replayed() {
    let images = crash_everywhere(8, drop_unsynced_only, truncate_back_then_append);
    assert!(some(&images, |i| i.had("segment-0004.log") && i.entries() == 2));
    assert!(some(&images, |i| i.entries() == 5));
}

#[test]
fn a_side_file_write_is_not_durable_until_synced() {
    // The side file exists from the log's creation on, so a store overwrites it
    // in place: the write is among the changes a crash can drop before its
    // fdatasync; recovery then sees the old state.
    let sim = SimFs::new();
    let wal = Wal::open(DIR, options(&sim, SEGMENT, SyncPolicy::Always)).unwrap();
    for n in 0..6 {
        wal.append(Op::Put, b"k", &value(n, 8)).unwrap();
    }
    let mut saw_write = false;
    sim.crash_after(Some(1)); // the overwrite in place, before its fdatasync
    assert!(wal.truncate_front(5).is_err());
    for change in sim.pending() {
        saw_write |= matches!(change, Change::Write { .. });
    }
    assert!(saw_write, "the write is pending: {:?}", sim.pending());
    drop(wal);
    let image = sim.crash(CrashModel::DropUnsynced);
    // The side file exists from the log's creation on; the lost rename leaves the
    // old one, which still says the log starts at 1.
    assert!(image.names(DIR).contains(&META_FILE.into()));
    let wal = Wal::open(DIR, options(&image, SEGMENT, SyncPolicy::Always)).unwrap();
    assert_eq!(wal.first_seq(), 1);
    assert_eq!(Recovered::read(&wal).unwrap().entries.len(), 6);
}
