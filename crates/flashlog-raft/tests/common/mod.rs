//! What the tests share: the type config and a minimal in-memory state machine.

#![allow(dead_code)]

use std::io;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::OptionalSend;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = String,
        R = String,
);

pub type C = TypeConfig;

/// A minimal in-memory state machine: what the suite's apply and snapshot cases need.
#[derive(Default)]
pub struct SmState {
    pub applied: Vec<String>,
    last_applied: Option<LogIdOf<C>>,
    membership: StoredMembershipOf<C>,
    snapshot: Option<(SnapshotMetaOf<C>, Vec<u8>)>,
}

#[derive(Clone, Default)]
pub struct StateMachine(pub Arc<Mutex<SmState>>);

impl RaftSnapshotBuilder<C> for StateMachine {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, Vec<u8>>, io::Error> {
        let mut state = self.0.lock().unwrap();
        let meta = SnapshotMetaOf::<C> {
            last_log_id: state.last_applied,
            last_membership: state.membership.clone(),
        };
        let data = Vec::new();
        state.snapshot = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<C, Vec<u8>> {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<C> for StateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        let state = self.0.lock().unwrap();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<C>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let log_id = entry.log_id();
            {
                let mut state = self.0.lock().unwrap();
                state.last_applied = Some(log_id);
                if let openraft::EntryPayload::Normal(data) = &entry.payload {
                    state.applied.push(data.clone());
                }
                if let Some(membership) = entry.get_membership() {
                    state.membership = StoredMembershipOf::<C>::new(Some(log_id), membership);
                }
            }
            if let Some(responder) = responder {
                responder.send(String::new());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<C>,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let mut state = self.0.lock().unwrap();
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.snapshot = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, Vec<u8>>>, io::Error> {
        let state = self.0.lock().unwrap();
        Ok(state
            .snapshot
            .clone()
            .map(|(meta, snapshot)| SnapshotOf::<C, Vec<u8>> { meta, snapshot }))
    }
}
