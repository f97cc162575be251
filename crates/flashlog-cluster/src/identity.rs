//! Which node and which cluster a directory belongs to: `DIR/flashlog.node`
//! records the node id and a hash of the cluster token, written the first time
//! the node starts and checked on every later start.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::files::{read_optional, write_atomic};

/// The identity file's name under the node's directory.
pub const IDENTITY_FILE: &str = "flashlog.node";

#[derive(Debug, Serialize, Deserialize)]
struct Identity {
    node_id: u64,
    /// SHA-256 of the cluster token, hex; empty when the node runs without one.
    token_sha256: String,
}

/// The hex SHA-256 of `token` (empty for no token).
fn token_hash(token: Option<&str>) -> String {
    match token {
        None => String::new(),
        Some(token) => Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    }
}

/// Records `node_id` and the token's hash in `dir` if it has no identity yet;
/// otherwise checks them.
///
/// # Errors
/// [`Error::WrongNodeId`], [`Error::WrongCluster`], [`Error::Damaged`] or
/// [`Error::Io`].
pub fn check_or_record(dir: &Path, node_id: u64, token: Option<&str>) -> Result<()> {
    let path = dir.join(IDENTITY_FILE);
    let hash = token_hash(token);
    match read_optional(&path)? {
        Some(bytes) => {
            let found: Identity = serde_json::from_slice(&bytes).map_err(|e| Error::Damaged {
                path: path.clone(),
                what: e.to_string(),
            })?;
            if found.node_id != node_id {
                return Err(Error::WrongNodeId {
                    dir: dir.to_path_buf(),
                    recorded: found.node_id,
                    given: node_id,
                });
            }
            if found.token_sha256 != hash {
                return Err(Error::WrongCluster {
                    dir: dir.to_path_buf(),
                });
            }
            Ok(())
        }
        None => {
            let identity = Identity {
                node_id,
                token_sha256: hash,
            };
            let bytes =
                serde_json::to_vec_pretty(&identity).map_err(|e| Error::Invalid(e.to_string()))?;
            write_atomic(&path, &bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn another_id_or_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        check_or_record(dir.path(), 1, Some("secret")).unwrap();
        check_or_record(dir.path(), 1, Some("secret")).unwrap();
        assert!(matches!(
            check_or_record(dir.path(), 2, Some("secret")),
            Err(Error::WrongNodeId {
                recorded: 1,
                given: 2,
                ..
            })
        ));
        assert!(matches!(
            check_or_record(dir.path(), 1, Some("other")),
            Err(Error::WrongCluster { .. })
        ));
        assert!(matches!(
            check_or_record(dir.path(), 1, None),
            Err(Error::WrongCluster { .. })
        ));
    }
}
