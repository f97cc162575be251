//! openraft's own storage test suite (`openraft::testing::log::Suite`) against
//! `flashlog_raft::LogStore`, each case a test of its own, plus `test_all`.

#![allow(missing_docs, clippy::unwrap_used)]

use flashlog_raft::LogStore;
use flashlog_wal::Options;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;
use tempfile::TempDir;

mod common;
use common::{StateMachine, C};

/// A fresh store in a temporary directory per case; the directory goes with the guard.
struct Builder;

impl StoreBuilder<C, LogStore<C>, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore<C>, StateMachine), StorageError<C>> {
        let dir = tempfile::tempdir().map_err(|e| {
            StorageError::from_io_error(
                openraft::ErrorSubject::Store,
                openraft::ErrorVerb::Write,
                e,
            )
        })?;
        // Small segments, so that purges remove whole segments in the suite too.
        let options = Options::default().max_segment_size(4096);
        let store = LogStore::open(dir.path(), options).map_err(|e| {
            StorageError::from_io_error(
                openraft::ErrorSubject::Store,
                openraft::ErrorVerb::Write,
                e,
            )
        })?;
        Ok((dir, store, StateMachine::default()))
    }
}

type S = Suite<C, LogStore<C>, StateMachine, Builder, TempDir>;

/// The whole suite as openraft runs it: every case below, in order, then
/// `transfer_snapshot`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_all() {
    S::test_all(Builder).await.expect("openraft storage suite");
}

/// Each of the suite's cases on its own (as `test_store` lists them), so that a
/// failure names its case.
macro_rules! cases {
    ($($case:ident)*) => {
        mod case {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (_dir, store, sm) = Builder.build().await.expect("build");
                    S::$case(store, sm).await.expect(stringify!($case));
                }
            )*

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn transfer_snapshot() {
                S::transfer_snapshot(&Builder).await.expect("transfer_snapshot");
            }
        }
    };
}

cases! {
    last_membership_in_log_initial
    last_membership_in_log
    last_membership_in_log_multi_step
    get_membership_initial
    get_membership_from_log_and_empty_sm
    get_membership_from_empty_log_and_sm
    get_membership_from_log_le_sm_last_applied
    get_membership_from_log_gt_sm_last_applied_1
    get_membership_from_log_gt_sm_last_applied_2
    get_initial_state_without_init
    get_initial_state_membership_from_empty_log_and_sm
    get_initial_state_membership_from_sm_inlog_is_smaller
    get_initial_state_membership_from_log_insm_is_smaller
    get_initial_state_with_state
    get_initial_state_last_log_gt_sm
    get_initial_state_last_log_lt_sm
    get_initial_state_inverted_log_order
    get_initial_state_conflict_at_same_index
    get_initial_state_log_ids
    get_initial_state_re_apply_committed
    save_vote
    get_log_entries
    limited_get_log_entries
    leader_bounded_stream
    entries_stream
    try_get_log_entry
    log_reader_reads_new_entries
    initial_logs
    get_log_state
    get_log_id
    last_id_in_log
    last_applied_state
    purge_logs_upto_0
    purge_logs_upto_5
    purge_logs_upto_20
    delete_logs_after_11
    delete_logs_after_5
    delete_logs_after_0
    delete_logs_after_none
    append_to_log
    snapshot_meta
    snapshot_meta_optional
    apply_single
    apply_multiple
}
