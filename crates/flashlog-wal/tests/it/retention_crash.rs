//! Retention at every crash point on the simulated file system: a crash during
//! `apply_retention`, or during an append that rotates and applies it, reopens
//! to the log before or after the removal, every kept entry intact.

use std::path::Path;
use std::sync::Arc;

use flashlog_testkit::{CrashModel, SimFs};
use flashlog_wal::{CursorRule, Op, Options, Retention, SideFileAction, SyncPolicy, Wal};

use crate::common::open;
use crate::retention::check_entries;

const DIR: &str = "/sim/log";

fn sim_options(sim: &SimFs) -> Options {
    Options::default()
        .fs(Arc::new(sim.clone()))
        .max_segment_size(100)
        .sync_policy(SyncPolicy::Always)
        .retention(
            Retention::default()
                .max_bytes(160)
                .cursors(CursorRule::Ignore),
        )
}

/// A crash after every mutation of `apply_retention`, under every crash model:
/// each image opens to the log before the removal or after it, with every
/// entry it keeps intact, and no side-file note but a torn copy of the side
/// file (overwritten in place) replaced by the other.
#[test]
fn a_crash_at_any_step_of_retention_reopens_before_or_after_it() {
    let base = SimFs::new();
    {
        // Written without retention: 8 segments of 5 entries, then 3 in the 9th.
        let wal = open(
            Path::new(DIR),
            sim_options(&base).retention(Retention::default().max_bytes(u64::MAX)),
        );
        for n in 0..43u64 {
            wal.append(Op::Put, b"k", &[n as u8]).unwrap();
        }
    }
    let base = base.crash(CrashModel::DropUnsynced);
    let (mut before, mut after) = (0, 0);
    for k in 0.. {
        let sim = base.snapshot();
        let finished = {
            let wal = open(Path::new(DIR), sim_options(&sim));
            sim.crash_after(Some(k));
            wal.apply_retention().is_ok()
        };
        for model in CrashModel::all(sim.pending().len(), &[1, 2, 3]) {
            let image = sim.crash(model);
            let context = format!("crash after {k}, {model:?}");
            let wal = Wal::open(DIR, sim_options(&image))
                .unwrap_or_else(|err| panic!("{context}: {err}"));
            // A side file overwritten in place may be torn: one copy is then used
            // for the other. Nothing else is noted, the sealing times least.
            for note in &wal.recovery_report().side_files {
                assert!(
                    matches!(note.action, SideFileAction::UsedOtherCopy { .. }),
                    "{context}: {note}"
                );
            }
            assert_eq!(wal.last_seq(), 43, "{context}");
            // 160 bytes of 20-byte entries: the active segment (3) and the
            // sealed one before it (5) fit.
            match wal.first_seq() {
                1 => before += 1,
                36 => after += 1,
                other => panic!("{context}: first_seq {other}"),
            }
            check_entries(&wal, &context);
            // Whatever the crash left, applying again ends in the same log.
            assert_eq!(wal.apply_retention().unwrap().first_seq, 36, "{context}");
            check_entries(&wal, &context);
        }
        if finished {
            let image = sim.crash(CrashModel::DropUnsynced);
            assert_eq!(open(Path::new(DIR), sim_options(&image)).first_seq(), 36);
            break;
        }
    }
    assert!(before > 0 && after > 0, "before {before}, after {after}");
}

/// The automatic path: a crash at any step of an append that rotates and then
/// applies retention keeps every acknowledged entry the policy keeps, and the
/// log is before or after the removal.
#[test]
fn a_crash_at_any_step_of_an_append_that_applies_retention() {
    let base = SimFs::new();
    {
        let wal = open(Path::new(DIR), sim_options(&base));
        for n in 0..40u64 {
            wal.append(Op::Put, b"k", &[n as u8]).unwrap();
        }
        assert_eq!(wal.first_seq(), 31);
    }
    let base = base.crash(CrashModel::DropUnsynced);
    let mut outcomes = std::collections::BTreeSet::new();
    for k in 0.. {
        let sim = base.snapshot();
        let (appended, retained) = {
            let wal = open(Path::new(DIR), sim_options(&sim));
            sim.crash_after(Some(k));
            // Entry 41 starts segment 9: rotation, then retention (8 goes).
            let appended = wal.append(Op::Put, b"k", &[40]).is_ok();
            (
                appended,
                appended && matches!(wal.last_retention(), Some(Ok(_))),
            )
        };
        for model in CrashModel::all(sim.pending().len(), &[1, 2]) {
            let image = sim.crash(model);
            let context = format!("crash after {k}, {model:?}");
            let wal = Wal::open(DIR, sim_options(&image))
                .unwrap_or_else(|err| panic!("{context}: {err}"));
            let (first, last) = (wal.first_seq(), wal.last_seq());
            assert!(first == 31 || first == 36, "{context}: first {first}");
            assert!(last == 40 || last == 41, "{context}: last {last}");
            if appended {
                assert_eq!(last, 41, "{context}");
            }
            check_entries(&wal, &context);
            outcomes.insert((first, last));
        }
        if retained {
            break;
        }
    }
    assert!(
        outcomes.contains(&(31, 40)) && outcomes.contains(&(36, 41)),
        "{outcomes:?}"
    );
}
