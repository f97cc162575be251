//! `remove_skipped_damage` (what `flashlog repair --mode skip-corrupted` runs) is
//! crash-safe: a crash at every I/O operation, under every crash model, leaves a
//! log that `SkipCorrupted` opens to exactly the entries it had before, with the
//! same sequence numbers, and a second call then leaves one that the default mode
//! opens to them too. With the checkpoint on the disk, the damaged entries'
//! numbers are gaps before and after; without it, the damage counts as no
//! entries before and after.

use flashlog_testkit::{CrashModel, Recovered, SimFs};
use flashlog_wal::{
    remove_skipped_damage, Op, RecoveryMode, SegmentId, SyncPolicy, Wal, INDEX_FILE,
};

use crate::common::{options, value, DIR};

const SEGMENT: u64 = 160;

/// A log of 12 entries in several segments, closed, with the middle entry of
/// segments 1 and 2 damaged (their CRCs no longer match); only what is durable,
/// and the checkpoint (written without an fsync) only if `checkpoint`.
fn damaged_log(checkpoint: bool) -> SimFs {
    let sim = SimFs::new();
    {
        let wal = Wal::open(DIR, options(&sim, SEGMENT, SyncPolicy::Always)).unwrap();
        for n in 0..12 {
            wal.append(Op::Put, b"key", &value(n, 30)).unwrap();
        }
        assert!(wal.segments().len() >= 3);
        wal.close().unwrap();
    }
    let index = format!("{DIR}/{INDEX_FILE}");
    let kept = sim.read(&index).unwrap();
    let sim = sim.crash(CrashModel::DropUnsynced);
    if checkpoint {
        sim.put_durable(&index, &kept);
    }
    let entry = 17 + 3 + 30;
    for id in [SegmentId(1), SegmentId(2)] {
        let path = format!("{DIR}/{}", id.file_name());
        let mut bytes = sim.read_durable(&path).unwrap();
        bytes[entry + 25] ^= 0x40;
        sim.put_durable(&path, &bytes);
    }
    sim
}

fn read(sim: &SimFs, mode: RecoveryMode) -> flashlog_wal::Result<Recovered> {
    let wal = Wal::open(
        DIR,
        options(sim, SEGMENT, SyncPolicy::Always).recovery_mode(mode),
    )?;
    Recovered::read(&wal)
}

#[test]
fn removing_skipped_damage_survives_a_crash_at_every_operation() {
    for checkpoint in [true, false] {
        let images = crash_every_operation(checkpoint);
        println!("remove_skipped_damage (checkpoint {checkpoint}): {images} crash images checked");
        assert!(images > 20, "{images} images");
    }
}

fn crash_every_operation(checkpoint: bool) -> u64 {
    let base = damaged_log(checkpoint);
    // On a copy: a read-write open rewrites the checkpoint at close, without an
    // fsync, and a crash image could then lose it (and with it the counts).
    assert!(read(&base.snapshot(), RecoveryMode::TolerateCorruptedTail).is_err());
    let before = read(&base.snapshot(), RecoveryMode::SkipCorrupted).unwrap();
    assert_eq!(before.entries.len(), 10);
    // Entries 2 and 6 were damaged: with the checkpoint, their numbers stay.
    let last = before.entries.last().unwrap().seq;
    assert_eq!(last, if checkpoint { 12 } else { 10 });

    let mut images = 0;
    for k in 0.. {
        let sim = base.snapshot();
        sim.crash_after(Some(k));
        let finished = remove_skipped_damage(DIR, options(&sim, SEGMENT, SyncPolicy::Always))
            .is_ok_and(|removed| removed.len() == 2);
        for crash in CrashModel::all(sim.pending().len(), &[k, k + 1000]) {
            let image = sim.crash(crash);
            let context = format!("crash after {k} mutations, {crash:?}");
            let seen = read(&image, RecoveryMode::SkipCorrupted)
                .unwrap_or_else(|err| panic!("{context}: {err}"));
            assert_eq!(seen, before, "{context}");
            remove_skipped_damage(DIR, options(&image, SEGMENT, SyncPolicy::Always))
                .unwrap_or_else(|err| panic!("{context}, second call: {err}"));
            let repaired = read(&image, RecoveryMode::TolerateCorruptedTail)
                .unwrap_or_else(|err| panic!("{context}, after the second call: {err}"));
            assert_eq!(repaired, before, "{context}, after the second call");
            images += 1;
        }
        if finished {
            break;
        }
    }
    images
}
