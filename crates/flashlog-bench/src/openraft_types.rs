//! The openraft section's type config: a client write is a [`Write`] (bytes), no
//! response, openraft's defaults for the rest (u64 node ids, `BasicNode`, tokio).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A client write: opaque bytes (openraft wants its app data `Display`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write(pub Vec<u8>);

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "write of {} bytes", self.0.len())
    }
}

openraft::declare_raft_types!(
    /// The benchmark cluster's Raft types: a client write is a [`Write`].
    pub Bench:
        D = Write,
        R = (),
);

/// A Raft log entry of the benchmark cluster.
pub type Entry = <Bench as openraft::RaftTypeConfig>::Entry;
/// A log id of the benchmark cluster.
pub type LogId = openraft::type_config::alias::LogIdOf<Bench>;
/// A vote of the benchmark cluster.
pub type Vote = openraft::type_config::alias::VoteOf<Bench>;
