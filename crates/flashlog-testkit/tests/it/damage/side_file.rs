//! Side-file damage: a leftover temporary side file that is valid, either copy
//! of `flashlog.meta` damaged or missing, both, copies that differ, a garbage
//! checkpoint, under every recovery mode, read-only and read-write.

use flashlog_testkit::{Recovered, SimFs};
use flashlog_wal::{
    Error, RecoveryMode, SideFileAction, SyncPolicy, Wal, INDEX_FILE, META_COPY_FILE, META_FILE,
};

use super::{log, open, path, truncated_log, Segment, MODES};
use crate::common::{options, DIR};

/// The names the two copies of the side file are written under before their
/// renames, as docs/design.md lists them ("Files in a log directory"): what a crash
/// leaves, and an open must remove, whatever version wrote it. The library does not
/// export them.
const META_TMP_FILE: &str = "flashlog.meta.tmp";
const META_COPY_TMP_FILE: &str = "flashlog.meta.bak.tmp";

/// A log of 6 entries with a valid newer side file (of a truncated log) left under
/// the temporary name `leftover`, opened: its first entry is still 1.
fn open_with_leftover(leftover: &str) -> (SimFs, Vec<Segment>, Wal) {
    let (truncated, _) = truncated_log();
    let newer = truncated.read(path(META_FILE)).unwrap();
    let (sim, segments) = log(6);
    sim.put_durable(path(leftover), &newer);
    let wal = open(&sim, RecoveryMode::default()).unwrap();
    assert_eq!(wal.first_seq(), 1);
    (sim, segments, wal)
}

#[test]
fn a_leftover_temporary_side_file_that_is_valid_is_ignored_and_removed() {
    // A crash after the new side file was written and synced but before its rename:
    // the old side file (or none) is the truth.
    let (sim, segments, wal) = open_with_leftover(META_TMP_FILE);
    assert_eq!(Recovered::read(&wal).unwrap().entries.len(), 6);
    assert!(!sim.names(DIR).contains(&META_TMP_FILE.to_string()));
    assert!(segments.len() > 1);
}

fn open_as(sim: &SimFs, mode: RecoveryMode, read_only: bool) -> flashlog_wal::Result<Wal> {
    let mut options = options(sim, 64, SyncPolicy::Always).recovery_mode(mode);
    if read_only {
        options = options.read_only();
    }
    Wal::open(DIR, options)
}

/// Ways to damage one copy of the side file, by name.
fn side_file_damage(bytes: &[u8]) -> Vec<(&'static str, Option<Vec<u8>>)> {
    let mut flipped = bytes.to_vec();
    flipped[20] ^= 1;
    let mut garbage = bytes.to_vec();
    garbage.fill(0xAB);
    vec![
        ("flipped", Some(flipped)),
        ("cut", Some(bytes[..bytes.len() - 1].to_vec())),
        ("grown", Some([bytes, &[0]].concat())),
        ("empty", Some(Vec::new())),
        ("garbage", Some(garbage)),
        ("missing", None),
    ]
}

/// Issue 12, item 4: one damaged or missing copy of the side file, in every
/// mode, read-only or not: the log opens from the other copy with every entry,
/// says so in its report, and a read-write open rewrites the bad copy.
#[test]
fn one_damaged_copy_of_the_side_file_opens_from_the_other_in_every_mode() {
    let (sim, _) = truncated_log();
    let (first, entries) = {
        let wal = open_as(&sim, RecoveryMode::default(), true).unwrap();
        (
            wal.first_seq(),
            Recovered::read(&wal).unwrap().entries.len(),
        )
    };
    assert!(first > 1);
    let good = sim.read(path(META_FILE)).unwrap();
    assert_eq!(sim.read(path(META_COPY_FILE)).unwrap(), good);
    let mut cases = 0;
    for name in [META_FILE, META_COPY_FILE] {
        for (what, damaged) in side_file_damage(&good) {
            for mode in MODES {
                for read_only in [true, false] {
                    let image = sim.snapshot();
                    match &damaged {
                        Some(bytes) => image.put_durable(path(name), bytes),
                        None => image.remove_durable(path(name)),
                    }
                    let case = format!("{name} {what}, {mode:?}, read-only {read_only}");
                    let wal = open_as(&image, mode, read_only)
                        .unwrap_or_else(|err| panic!("{case}: {err}"));
                    assert_eq!(wal.first_seq(), first, "{case}");
                    assert_eq!(
                        Recovered::read(&wal).unwrap().entries.len(),
                        entries,
                        "{case}"
                    );
                    let notes = &wal.recovery_report().side_files;
                    // A missing second copy is how logs from before it look: no note.
                    let noted = !(name == META_COPY_FILE && damaged.is_none());
                    assert_eq!(notes.len(), usize::from(noted), "{case}: {notes:?}");
                    if let Some(note) = notes.first() {
                        assert_eq!(note.path, std::path::Path::new(&path(name)), "{case}");
                        assert_eq!(
                            note.action,
                            SideFileAction::UsedOtherCopy {
                                rewritten: !read_only
                            },
                            "{case}"
                        );
                    }
                    drop(wal);
                    let now = image.read(path(name));
                    if read_only {
                        assert_eq!(now, damaged, "{case}: a read-only open changed it");
                    } else {
                        assert_eq!(now.as_deref(), Some(&good[..]), "{case}: not rewritten");
                    }
                    cases += 1;
                }
            }
        }
    }
    println!("side-file damage: {cases} cases, all opened from the other copy");
}

/// Issue 12, item 4: with no intact copy, every mode refuses with
/// `CorruptMeta`, whose message names the repair.
#[test]
fn both_copies_of_the_side_file_damaged_is_corrupt_meta_in_every_mode() {
    let (sim, _) = truncated_log();
    let good = sim.read(path(META_FILE)).unwrap();
    for (what, damaged) in side_file_damage(&good) {
        let image = sim.snapshot();
        for name in [META_FILE, META_COPY_FILE] {
            // Both missing is a log without a side file: covered elsewhere.
            let bytes = damaged.clone().unwrap_or_else(|| b"junk".to_vec());
            image.put_durable(path(name), &bytes);
        }
        for mode in MODES {
            for read_only in [true, false] {
                let err = open_as(&image, mode, read_only).unwrap_err();
                assert!(
                    matches!(err, Error::CorruptMeta { .. }),
                    "{what}, {mode:?}, read-only {read_only}: {err}"
                );
                assert!(err.to_string().contains("--first-seq"), "{err}");
            }
        }
    }
}

/// A crash between the two copies' stores leaves both intact and different: the
/// first copy (the newer) wins, and a read-write open brings the second up to it.
#[test]
fn copies_that_differ_go_by_the_first() {
    let (older, _) = truncated_log();
    let (sim, _) = log(6);
    // The second copy from a log whose front was truncated: a different, intact
    // side file (the segments it names are not there, so using it would fail).
    sim.put_durable(path(META_COPY_FILE), &older.read(path(META_FILE)).unwrap());
    for mode in MODES {
        let wal = open_as(&sim.snapshot(), mode, true).unwrap();
        assert_eq!(wal.first_seq(), 1, "{mode:?}");
        assert!(wal.recovery_report().side_files.is_empty());
    }
    drop(open_as(&sim, RecoveryMode::default(), false).unwrap());
    assert_eq!(
        sim.read(path(META_COPY_FILE)),
        sim.read(path(META_FILE)),
        "the copies agree again"
    );
}

/// Issue 12, item 5: a checkpoint that is garbage (a valid one is covered by
/// the checkpoint tests) is ignored in every mode.
#[test]
fn a_garbage_checkpoint_is_ignored_in_every_mode() {
    let (sim, segments) = log(14);
    let expected = {
        let wal = open(&sim.snapshot(), RecoveryMode::default()).unwrap();
        Recovered::read(&wal).unwrap().entries.len()
    };
    assert!(segments.len() > 2);
    for bytes in [Vec::new(), vec![0xAB; 100], b"FLWLINDX".to_vec()] {
        for mode in MODES {
            for read_only in [true, false] {
                let image = sim.snapshot();
                image.put_durable(path(INDEX_FILE), &bytes);
                let wal = open_as(&image, mode, read_only).unwrap();
                assert_eq!(Recovered::read(&wal).unwrap().entries.len(), expected);
            }
        }
    }
}

/// A crash while the second copy was being written leaves its temporary file:
/// ignored, and removed by a read-write open.
#[test]
fn a_leftover_temporary_copy_of_the_side_file_is_ignored_and_removed() {
    let (sim, _, _wal) = open_with_leftover(META_COPY_TMP_FILE);
    assert!(!sim.names(DIR).contains(&META_COPY_TMP_FILE.to_string()));
}
