//! A crash at every mutating file-system call of a workload (appends, votes, commit
//! points, purges, truncations) on the testkit's simulated file system, under each of its crash models
//! (unsynced changes dropped, a random subset kept, torn sectors, one dropped): the
//! store reopens to the state before the operation under way or after it
//! (for an append, possibly with a prefix of its entries), never another.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use flashlog_raft::{CommitPoint, LogStore};
use flashlog_testkit::{CrashModel, SimFs};
use flashlog_wal::Options;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::testing::{blank_ent, log_id};
use openraft::type_config::alias::{LogIdOf, VoteOf};
use openraft::type_config::TypeConfigExt;
use openraft::RaftLogReader;

mod common;
use common::C;

const DIR: &str = "/raft";
/// Operations in the workload.
const STEPS: usize = 11;

fn options(sim: &SimFs) -> Options {
    Options::default()
        .fs(Arc::new(sim.clone()))
        .preallocate(0)
        .max_segment_size(256)
}

#[derive(Debug, Clone, PartialEq)]
struct Observed {
    purged: Option<LogIdOf<C>>,
    last: Option<LogIdOf<C>>,
    entries: Vec<LogIdOf<C>>,
    vote: Option<VoteOf<C>>,
    committed: Option<LogIdOf<C>>,
}

async fn observe(store: &mut LogStore<C>) -> Observed {
    let state = store.get_log_state().await.unwrap();
    let entries = store.try_get_log_entries(..).await.unwrap();
    Observed {
        purged: state.last_purged_log_id,
        last: state.last_log_id,
        entries: entries.iter().map(|e| e.log_id()).collect(),
        vote: store.read_vote().await.unwrap(),
        committed: store.read_committed().await.unwrap(),
    }
}

async fn append(store: &mut LogStore<C>, term: u64, range: std::ops::Range<u64>) -> bool {
    let (tx, rx) = C::oneshot();
    let entries = range.map(|i| blank_ent::<C>(term, 1, i));
    if store.append(entries, IOFlushed::signal(tx)).await.is_err() {
        return false;
    }
    matches!(rx.await, Ok(Ok(())))
}

/// Runs the workload until an operation fails; returns how many succeeded, and the
/// state after each (`states[0]` is the empty store's).
async fn workload(store: &mut LogStore<C>) -> (usize, Vec<Observed>) {
    let mut states = vec![observe(store).await];
    for step in 0..STEPS {
        let ok = match step {
            0 => append(store, 1, 0..6).await,
            1 => store.save_vote(&VoteOf::<C>::new(1, 1)).await.is_ok(),
            2 => store
                .save_committed(Some(log_id::<C>(1, 1, 3)))
                .await
                .is_ok(),
            3 => store.purge(log_id::<C>(1, 1, 2)).await.is_ok(),
            4 => store
                .truncate_after(Some(log_id::<C>(1, 1, 4)))
                .await
                .is_ok(),
            5 => append(store, 2, 5..9).await,
            6 => store
                .save_committed(Some(log_id::<C>(2, 1, 7)))
                .await
                .is_ok(),
            7 => store.purge(log_id::<C>(2, 1, 20)).await.is_ok(),
            8 => append(store, 3, 21..24).await,
            9 => store.truncate_after(None).await.is_ok(),
            _ => store.save_vote(&VoteOf::<C>::new(3, 1)).await.is_ok(),
        };
        if !ok {
            return (step, states);
        }
        states.push(observe(store).await);
    }
    (STEPS, states)
}

#[tokio::test]
async fn a_crash_anywhere_reopens_before_or_after_the_operation() {
    crash_everywhere(CommitPoint::Durable).await;
}

/// With a lazy commit point the rest is as durable; the commit point read back is
/// one that was saved (or none), never one ahead of the log.
#[tokio::test]
async fn a_lazy_commit_point_is_never_ahead_of_the_log_after_a_crash() {
    crash_everywhere(CommitPoint::Lazy).await;
}

async fn crash_everywhere(commit_point: CommitPoint) {
    let lazy = commit_point == CommitPoint::Lazy;
    let open = |sim: &SimFs| LogStore::<C>::open_with(DIR, options(sim), commit_point);
    // The run without a crash: the states, and how many crash points there are.
    let sim = SimFs::new();
    let mut store = open(&sim).unwrap();
    let (done, states) = workload(&mut store).await;
    assert_eq!(done, STEPS);
    let points = sim.mutations();
    drop(store);
    assert!(points > 20, "{points} crash points");

    let mut checked = 0;
    for point in 0..=points {
        let sim = SimFs::new();
        sim.crash_after(Some(point));
        let (done, _) = match open(&sim) {
            Ok(mut store) => workload(&mut store).await,
            Err(_) => (0, Vec::new()),
        };
        let pending = sim.pending().len();
        for model in CrashModel::all(pending, &[1, 2, 3]) {
            let image = sim.crash(model);
            let mut store = open(&image)
                .unwrap_or_else(|e| panic!("crash point {point} {}: reopen: {e}", model.name()));
            let mut got = observe(&mut store).await;
            checked += 1;
            let mut before = states[done].clone();
            let mut after = states.get(done + 1).cloned();
            if lazy {
                // Any commit point saved so far, or none; never past the log's end.
                let saved: Vec<_> = states[..=(done + 1).min(STEPS)]
                    .iter()
                    .map(|s| s.committed)
                    .collect();
                assert!(
                    got.committed.is_none() || saved.contains(&got.committed),
                    "crash point {point} {}: commit point {:?} never saved",
                    model.name(),
                    got.committed
                );
                assert!(
                    got.committed <= got.last,
                    "crash point {point} {}: commit point {:?} after the log's end {:?}",
                    model.name(),
                    got.committed,
                    got.last
                );
                got.committed = None;
                before.committed = None;
                if let Some(after) = &mut after {
                    after.committed = None;
                }
            }
            let after = after.as_ref();
            // An append not yet acknowledged may leave a prefix of its entries: a batch
            // that spans segments is synced a segment at a time.
            let prefix_of_append = [0, 5, 8].contains(&done)
                && after.is_some_and(|after| {
                    got.purged == after.purged
                        && got.vote == after.vote
                        && got.committed == after.committed
                        && got.entries.starts_with(&before.entries)
                        && after.entries.starts_with(&got.entries)
                        && got.last == got.entries.last().copied().or(got.purged)
                });
            assert!(
                got == before || Some(&got) == after || prefix_of_append,
                "crash point {point} {} (after {done} operations): {got:?}\nbefore: {before:?}\nafter: {after:?}",
                model.name()
            );
        }
    }
    eprintln!("{points} crash points, {checked} images checked");
}
