//! [`Error`]: what can go wrong starting, running or talking to a node.

use std::path::PathBuf;

/// The errors of a node and of the cluster client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a file or directory of the node.
    #[error("cannot {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The node's directory belongs to another node id.
    #[error("{dir} belongs to node {recorded}, not node {given}: start it with --id {recorded} or use another directory")]
    WrongNodeId {
        /// The directory.
        dir: PathBuf,
        /// The id recorded in it.
        recorded: u64,
        /// The id the node was started with.
        given: u64,
    },
    /// The node's directory belongs to a cluster with another token.
    #[error("{dir} belongs to a cluster with another token: start it with that cluster's --token-file or use another directory")]
    WrongCluster {
        /// The directory.
        dir: PathBuf,
    },
    /// A file of the node does not hold what it should.
    #[error("{path} is damaged: {what}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The key-value store (state machine).
    #[error("state machine store")]
    Kv(#[from] flashlog_kv::Error),
    /// openraft refused to start or stopped.
    #[error("raft: {0}")]
    Raft(String),
    /// A bad argument (address, id, option).
    #[error("{0}")]
    Invalid(String),
    /// The HTTP listener or client.
    #[error("{what}")]
    Http {
        /// What was being done.
        what: String,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A node answered with an error.
    #[error("{node} answered {status}: {message}")]
    Refused {
        /// The node's address.
        node: String,
        /// The HTTP status.
        status: u16,
        /// The error it gave.
        message: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An `Error::Io` for `op` on `path`.
pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}

/// `err` and its sources, joined with ": " (for messages that leave the process).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
