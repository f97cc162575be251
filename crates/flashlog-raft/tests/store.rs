//! What the suite does not check: the state after reopening, the key layout, the
//! durability callback, purges that keep whole segments.

#![allow(missing_docs, clippy::unwrap_used)]

use flashlog_raft::LogStore;
use flashlog_wal::Options;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::testing::{blank_ent, log_id};
use openraft::type_config::alias::{EntryOf, VoteOf};
use openraft::type_config::TypeConfigExt;
use openraft::RaftLogReader;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = String,
        R = String,
);

type C = TypeConfig;

fn open(dir: &std::path::Path) -> LogStore<C> {
    open_with_segments(dir, 512)
}

fn open_with_segments(dir: &std::path::Path, segment_size: u64) -> LogStore<C> {
    LogStore::open(dir, Options::default().max_segment_size(segment_size)).expect("open")
}

async fn append(store: &mut LogStore<C>, entries: Vec<EntryOf<C>>) {
    let (tx, rx) = C::oneshot();
    store
        .append(entries, IOFlushed::signal(tx))
        .await
        .expect("append");
    rx.await.expect("callback called").expect("durable");
}

fn blanks(term: u64, range: std::ops::Range<u64>) -> Vec<EntryOf<C>> {
    range.map(|i| blank_ent::<C>(term, 1, i)).collect()
}

async fn indices(store: &mut LogStore<C>, range: std::ops::Range<u64>) -> Vec<u64> {
    let entries = store.try_get_log_entries(range).await.expect("read");
    entries.iter().map(|e| e.index()).collect()
}

#[tokio::test]
async fn reopen_keeps_entries_vote_committed_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        append(&mut store, blanks(1, 0..10)).await;
        store
            .save_vote(&VoteOf::<C>::new(3, 1))
            .await
            .expect("vote");
        store
            .save_committed(Some(log_id::<C>(1, 1, 7)))
            .await
            .expect("committed");
        // The key: the index in 20 digits, then the leader.
        let key = store.wal().read(4).unwrap().key().to_vec();
        assert!(key.starts_with(b"00000000000000000003-"), "{key:?}");
    }
    let mut store = open(dir.path());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id::<C>(1, 1, 9)));
    assert_eq!(state.last_purged_log_id, None);
    assert_eq!(
        indices(&mut store, 0..100).await,
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(
        store.read_vote().await.unwrap(),
        Some(VoteOf::<C>::new(3, 1))
    );
    assert_eq!(
        store.read_committed().await.unwrap(),
        Some(log_id::<C>(1, 1, 7))
    );
}

#[tokio::test]
async fn purge_beyond_the_end_then_append_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        append(&mut store, blanks(1, 0..10)).await;
        store.purge(log_id::<C>(2, 1, 20)).await.expect("purge");
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id::<C>(2, 1, 20)));
        assert_eq!(state.last_log_id, Some(log_id::<C>(2, 1, 20)));
        assert!(indices(&mut store, 0..100).await.is_empty());
    }
    let mut store = open(dir.path());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id::<C>(2, 1, 20)));
    assert_eq!(state.last_log_id, Some(log_id::<C>(2, 1, 20)));
    append(&mut store, blanks(2, 21..24)).await;
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(indices(&mut store, 0..100).await, vec![21, 22, 23]);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id::<C>(2, 1, 23)));
}

#[tokio::test]
async fn purge_keeps_whole_segments_but_the_state_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    append(&mut store, blanks(1, 0..100)).await;
    store.purge(log_id::<C>(1, 1, 49)).await.expect("purge");
    // Some entries before 50 may stay on disk; none is part of the log.
    assert!(store.wal().first_seq() <= 51);
    assert!(store.wal().first_seq() > 1, "whole segments went");
    assert_eq!(
        indices(&mut store, 0..60).await,
        (50..60).collect::<Vec<_>>()
    );
    drop(store);
    let mut store = open(dir.path());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id::<C>(1, 1, 49)));
    assert_eq!(state.last_log_id, Some(log_id::<C>(1, 1, 99)));
    assert_eq!(
        indices(&mut store, 0..60).await,
        (50..60).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn truncate_after_none_empties_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path());
        append(&mut store, blanks(1, 0..10)).await;
        store.purge(log_id::<C>(1, 1, 3)).await.expect("purge");
        store.truncate_after(None).await.expect("truncate");
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id::<C>(1, 1, 3)));
        assert!(indices(&mut store, 0..100).await.is_empty());
    }
    let mut store = open(dir.path());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id::<C>(1, 1, 3)));
    append(&mut store, blanks(2, 4..6)).await;
    store
        .truncate_after(Some(log_id::<C>(2, 1, 4)))
        .await
        .expect("truncate");
    append(&mut store, blanks(3, 5..7)).await;
    drop(store);
    let mut store = open(dir.path());
    let entries = store.try_get_log_entries(0..100).await.unwrap();
    let ids: Vec<_> = entries.iter().map(|e| e.log_id()).collect();
    assert_eq!(
        ids,
        vec![
            log_id::<C>(2, 1, 4),
            log_id::<C>(3, 1, 5),
            log_id::<C>(3, 1, 6)
        ]
    );
}

#[tokio::test]
async fn entries_are_readable_when_append_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let (tx, rx) = C::oneshot();
    store
        .append(blanks(1, 0..50), IOFlushed::signal(tx))
        .await
        .expect("append");
    assert_eq!(
        indices(&mut store, 0..50).await,
        (0..50).collect::<Vec<_>>()
    );
    rx.await.unwrap().expect("durable");
    assert!(store.wal().durable_seq() >= 50);
}

#[tokio::test]
async fn an_append_out_of_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    append(&mut store, blanks(1, 0..3)).await;
    let err = store
        .append(blanks(1, 5..6), IOFlushed::noop())
        .await
        .expect_err("hole");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_poisoned_log_reports_errors_never_ok() {
    use flashlog_testkit::{Call, FaultKind, Persistence, SimFault, SimFs, Target};
    let dir = tempfile::tempdir().unwrap();
    let sim = SimFs::new();
    let options = Options::default()
        .fs(std::sync::Arc::new(sim.clone()))
        .preallocate(0);
    let mut store = LogStore::<C>::open(dir.path(), options).expect("open");
    append(&mut store, blanks(1, 0..3)).await;
    sim.set_fault(Some(SimFault {
        target: Target::Kind(Call::SyncData),
        nth: 1,
        kind: FaultKind::Eio,
        persistence: Persistence::Forever,
    }));
    // The append is accepted, its fsync fails: the callback gets the error.
    let (tx, rx) = C::oneshot();
    store
        .append(blanks(1, 3..4), IOFlushed::signal(tx))
        .await
        .expect("queued");
    let err = rx.await.unwrap().expect_err("not durable");
    assert!(err.get_ref().is_some(), "the flashlog error is the source");
    assert!(store.wal().poisoned().is_some());
    assert!(store.get_log_state().await.is_err());
    assert!(store.try_get_log_entries(0..3).await.is_err());
    assert!(store.save_vote(&VoteOf::<C>::new(2, 1)).await.is_err());
    assert!(store
        .append(blanks(1, 4..5), IOFlushed::noop())
        .await
        .is_err());
    assert!(store.truncate_after(None).await.is_err());
    assert!(store.purge(log_id::<C>(1, 1, 0)).await.is_err());
}

#[tokio::test]
async fn purge_before_the_first_entry_of_a_log_that_started_late() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    // The suite starts logs at 1 with nothing purged; a log may start anywhere.
    append(&mut store, blanks(1, 5..9)).await;
    store.purge(log_id::<C>(1, 1, 2)).await.expect("purge");
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id::<C>(1, 1, 2)));
    assert_eq!(state.last_log_id, Some(log_id::<C>(1, 1, 8)));
    assert_eq!(indices(&mut store, 0..100).await, vec![5, 6, 7, 8]);
    store.purge(log_id::<C>(1, 1, 6)).await.expect("purge");
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(indices(&mut store, 0..100).await, vec![7, 8]);
}

#[tokio::test]
async fn flashlog_dump_reads_the_raft_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    append(&mut store, blanks(4, 0..3)).await;
    // What `flashlog dump DIR/wal` does: a read-only open (no lock), one line per entry.
    let wal = flashlog_wal::Wal::open(
        dir.path().join(flashlog_raft::WAL_DIR),
        flashlog_cli::inspect_options(),
    )
    .unwrap();
    let line = flashlog_cli::format::text_line(&wal.read(2).unwrap());
    assert!(
        line.starts_with("#2 at 1:") && line.contains(" put 00000000000000000001-T4-N1 = "),
        "{line}"
    );
}

#[tokio::test]
async fn an_empty_append_reports_what_came_before_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .append(blanks(1, 0..3), IOFlushed::noop())
        .await
        .unwrap();
    append(&mut store, Vec::new()).await;
    assert!(store.wal().durable_seq() >= 3);
}

async fn replication_indices(store: &mut LogStore<C>, start: u64, end: u64) -> Vec<u64> {
    let entries = store
        .limited_get_log_entries(start, end)
        .await
        .expect("read");
    entries.iter().map(|e| e.index()).collect()
}

/// openraft may purge entries that a replication stream it has just replaced still
/// reads (a follower answered "conflict", got a snapshot, the leader purged behind
/// it). The stream's read must start where it asked, or its request has a gap after
/// its `prev_log_id`: purged entries still on disk are served.
#[tokio::test]
async fn replication_reads_purged_entries_while_they_are_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_with_segments(dir.path(), 1024);
    append(&mut store, blanks(1, 0..100)).await;
    store.purge(log_id::<C>(1, 1, 49)).await.expect("purge");
    // Sequence numbers start at 1, indices at 0.
    let first_on_disk = store.wal().first_seq() - 1;
    assert!(
        first_on_disk < 49,
        "the test needs purged entries on disk: {first_on_disk}"
    );
    assert!(first_on_disk > 0, "the test needs purged entries gone too");
    // From a purged entry still on disk: contiguous from `start`.
    assert_eq!(
        replication_indices(&mut store, first_on_disk, 60).await,
        (first_on_disk..60).collect::<Vec<_>>()
    );
    assert_eq!(
        replication_indices(&mut store, 49, 52).await,
        (49..52).collect::<Vec<_>>()
    );
    // The reader openraft uses elsewhere still hides them.
    assert_eq!(
        indices(&mut store, 45..60).await,
        (50..60).collect::<Vec<_>>()
    );
    // Gone from disk: from the first entry of the log.
    assert_eq!(
        replication_indices(&mut store, first_on_disk - 1, 55).await,
        (50..55).collect::<Vec<_>>()
    );
    // After a reopen too.
    drop(store);
    let mut store = open_with_segments(dir.path(), 1024);
    assert_eq!(
        replication_indices(&mut store, 49, 52).await,
        (49..52).collect::<Vec<_>>()
    );
}

/// Entries left on disk from before a purge past the end are not the log's: the
/// store starts numbering again and never serves them.
#[tokio::test]
async fn replication_never_serves_entries_of_an_earlier_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    append(&mut store, blanks(1, 0..20)).await;
    store.purge(log_id::<C>(2, 1, 500)).await.expect("purge");
    // Before the next append renumbers the log: what is left on disk may be a
    // tail the snapshot did not commit; none of it is served.
    assert_eq!(
        replication_indices(&mut store, 10, 505).await,
        Vec::<u64>::new()
    );
    append(&mut store, blanks(2, 501..510)).await;
    assert_eq!(
        replication_indices(&mut store, 10, 505).await,
        (501..505).collect::<Vec<_>>()
    );
    assert_eq!(
        replication_indices(&mut store, 499, 503).await,
        (501..503).collect::<Vec<_>>()
    );
}

/// A replication request carries `MAX_BATCH_BYTES` of entries and at most one
/// more, whatever openraft's entry count allows: a peer bounds its bodies.
#[tokio::test]
async fn replication_batches_are_bounded_in_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store: LogStore<C> = LogStore::open(dir.path(), Options::default()).expect("open");
    let big = "x".repeat(512 << 10);
    let entries: Vec<EntryOf<C>> = (0..12)
        .map(|i| EntryOf::<C>::new_normal(log_id::<C>(1, 1, i), big.clone()))
        .collect();
    append(&mut store, entries).await;
    let batch = store.limited_get_log_entries(0, 12).await.unwrap();
    let per_batch = flashlog_raft::MAX_BATCH_BYTES.div_ceil(big.len());
    assert_eq!(batch.len(), per_batch);
    assert_eq!(batch[0].index(), 0);
    let rest = store.limited_get_log_entries(11, 12).await.unwrap();
    assert_eq!(rest.len(), 1);
    // Read back from disk rather than memory: the same bound.
    drop(store);
    let mut store: LogStore<C> = LogStore::open(dir.path(), Options::default()).expect("open");
    assert_eq!(
        store.limited_get_log_entries(0, 12).await.unwrap().len(),
        per_batch
    );
}

/// `CommitPoint::Lazy` writes a commit point only once the entries it names are
/// durable; before that, the save is dropped (the next one writes it).
#[tokio::test]
async fn a_lazy_commit_point_waits_for_its_entries_to_be_durable() {
    use flashlog_raft::CommitPoint;
    use flashlog_wal::SyncPolicy;
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        LogStore::<C>::open_with(
            dir.path(),
            Options::default().sync_policy(SyncPolicy::Manual),
            CommitPoint::Lazy,
        )
        .expect("open")
    };
    let mut store = open();
    store
        .append(blanks(1, 0..5), IOFlushed::noop())
        .await
        .unwrap();
    assert!(
        store.wal().durable_seq() < 4,
        "the entries are not durable yet"
    );
    store
        .save_committed(Some(log_id::<C>(1, 1, 3)))
        .await
        .unwrap();
    // Dropped, not kept in memory: the side file that a vote rewrites holds the
    // store's commit point too, and must not get one ahead of the durable log.
    assert_eq!(store.read_committed().await.unwrap(), None);
    store.save_vote(&VoteOf::<C>::new(1, 1)).await.unwrap();
    drop(store);
    // Not written: its entries were not durable when it was saved.
    let mut store = open();
    assert_eq!(store.read_committed().await.unwrap(), None);
    store
        .save_committed(Some(log_id::<C>(1, 1, 3)))
        .await
        .unwrap();
    drop(store);
    let mut store = open();
    assert_eq!(
        store.read_committed().await.unwrap(),
        Some(log_id::<C>(1, 1, 3))
    );
}

/// A read decides under the cache's lock whether an entry is in memory, then, on a
/// miss, reads it from the log after letting that lock go, while durability
/// callbacks of later appends evict entries from the cache. The invariant: only
/// durable entries are evicted, so a miss always finds the entry on disk. Readers
/// race a writer that pushes the log far past the cache's 8,192 entries, reading
/// up to its last append (durable or not); every read must be contiguous from
/// where it asked, with each entry's own payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_cache_eviction_find_every_entry() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    const TOTAL: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_segments(dir.path(), 1 << 20);
    let appended = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (mut store, appended, done) =
                (store.clone(), Arc::clone(&appended), Arc::clone(&done));
            tokio::spawn(async move {
                let mut reads = 0u64;
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ r;
                while !done.load(Ordering::Acquire) {
                    let upto = appended.load(Ordering::Acquire);
                    if upto == 0 {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    let start = (seed >> 33) % upto;
                    let end = (start + 300).min(upto);
                    let batch = store.limited_get_log_entries(start, end).await.unwrap();
                    assert!(!batch.is_empty(), "nothing from {start}..{end}");
                    for (at, entry) in batch.iter().enumerate() {
                        let index = start + at as u64;
                        assert_eq!(entry.index(), index);
                        let openraft::EntryPayload::Normal(data) = &entry.payload else {
                            panic!("entry {index} is not the one written");
                        };
                        assert_eq!(data, &format!("v{index}"));
                    }
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    let mut writer = store.clone();
    for first in (0..TOTAL).step_by(50) {
        let entries: Vec<EntryOf<C>> = (first..first + 50)
            .map(|i| EntryOf::<C>::new_normal(log_id::<C>(1, 1, i), format!("v{i}")))
            .collect();
        // Readable when `append` returns, durable later: readers reach into
        // entries not yet on disk too (the cache must keep those).
        writer.append(entries, IOFlushed::noop()).await.unwrap();
        appended.store(first + 50, Ordering::Release);
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        let reads = reader.await.unwrap();
        assert!(reads > 10, "the readers hardly ran: {reads} reads");
    }
}
