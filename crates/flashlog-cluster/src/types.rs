//! The Raft type configuration of a cluster: what a log entry carries
//! ([`Command`]) and what applying it answers ([`Response`]).

use serde::{Deserialize, Serialize};

openraft::declare_raft_types!(
    /// The cluster's openraft type configuration: node ids are `u64`, a node is its
    /// address (`BasicNode`), entries carry a [`Command`] and answer a [`Response`].
    pub TypeConfig:
        D = Command,
        R = Response,
);

/// A node's id in the cluster.
pub type NodeId = u64;
/// A node as the membership records it: its address (`HOST:PORT`).
pub type Node = openraft::impls::BasicNode;
/// The openraft handle of a node.
pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachine>;
/// The log store of a node.
pub type LogStore = flashlog_raft::LogStore<TypeConfig>;
/// A Raft log id.
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
/// The membership as last applied, with the log id that set it.
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
/// What a snapshot is of: the last log id and membership it covers.
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
/// A Raft vote.
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;

/// A change to the key-value state, as one Raft log entry carries it. Keys and
/// values are any bytes (a key is never empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Set `key` to `value`.
    // `serde_bytes`: postcard writes bytes as a length and the bytes, the same
    // encoding as a sequence of u8, in one copy instead of one call per byte.
    Put {
        /// The key.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// The value.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Remove `key` (no error if absent).
    Delete {
        /// The key.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
}

impl Command {
    /// The key the command writes.
    pub fn key(&self) -> &[u8] {
        match self {
            Command::Put { key, .. } | Command::Delete { key } => key,
        }
    }
}

/// What applying one [`Command`] answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The Raft index of the entry.
    pub index: u64,
    /// For a delete: whether the key was there.
    pub removed: Option<bool>,
    /// Set when the state machine refused the command (e.g. an empty key that slipped
    /// past the API's checks): nothing was changed.
    pub refused: Option<String>,
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Put { key, value } => write!(
                f,
                "put {} ({} bytes)",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Command::Delete { key } => write!(f, "delete {}", String::from_utf8_lossy(key)),
        }
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "applied at {}", self.index)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `Command` as it was before `serde_bytes`: its encoding must not change (it
    /// is in every node's Raft log and on the wire).
    #[derive(Serialize)]
    enum PlainCommand {
        Put { key: Vec<u8>, value: Vec<u8> },
        Delete { key: Vec<u8> },
    }

    #[test]
    fn the_postcard_encoding_is_the_plain_one() {
        let key = b"user:\x00\xff".to_vec();
        let value = vec![7u8; 300];
        let pairs = [
            (
                Command::Put {
                    key: key.clone(),
                    value: value.clone(),
                },
                PlainCommand::Put {
                    key: key.clone(),
                    value,
                },
            ),
            (
                Command::Delete { key: key.clone() },
                PlainCommand::Delete { key },
            ),
        ];
        for (command, plain) in pairs {
            let bytes = postcard::to_stdvec(&command).unwrap();
            assert_eq!(bytes, postcard::to_stdvec(&plain).unwrap());
            assert_eq!(postcard::from_bytes::<Command>(&bytes).unwrap(), command);
        }
    }
}
