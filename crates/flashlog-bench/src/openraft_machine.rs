//! The trivial state machine of the openraft section: it counts what it applies
//! and keeps the last applied log id and membership; its snapshot is the count.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::OptionalSend;

use crate::openraft_types::{Bench, LogId};

#[derive(Default)]
struct Applied {
    count: u64,
    last: Option<LogId>,
    membership: StoredMembershipOf<Bench>,
    snapshot: Option<(SnapshotMetaOf<Bench>, Vec<u8>)>,
}

/// Counts applied entries; clones share the count.
#[derive(Clone, Default)]
pub struct Counter(Arc<Mutex<Applied>>);

impl Counter {
    fn lock(&self) -> MutexGuard<'_, Applied> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Entries applied so far (normal and blank alike).
    pub fn applied(&self) -> u64 {
        self.lock().count
    }
}

impl RaftSnapshotBuilder<Bench> for Counter {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<Bench, Vec<u8>>, io::Error> {
        let mut applied = self.lock();
        let meta = SnapshotMetaOf::<Bench> {
            last_log_id: applied.last,
            last_membership: applied.membership.clone(),
        };
        let data = applied.count.to_le_bytes().to_vec();
        applied.snapshot = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<Bench, Vec<u8>> {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<Bench> for Counter {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Counter;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembershipOf<Bench>), io::Error> {
        let applied = self.lock();
        Ok((applied.last, applied.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<Bench>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            {
                let mut applied = self.lock();
                let log_id = entry.log_id();
                applied.count += 1;
                applied.last = Some(log_id);
                if let Some(membership) = entry.get_membership() {
                    applied.membership = StoredMembershipOf::<Bench>::new(Some(log_id), membership);
                }
            }
            if let Some(responder) = responder {
                responder.send(());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Counter {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<Bench>,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let count = snapshot
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "snapshot shorter than 8 bytes")
            })?;
        let mut applied = self.lock();
        applied.count = count;
        applied.last = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        applied.snapshot = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<Bench, Vec<u8>>>, io::Error> {
        Ok(self
            .lock()
            .snapshot
            .clone()
            .map(|(meta, snapshot)| SnapshotOf::<Bench, Vec<u8>> { meta, snapshot }))
    }
}
