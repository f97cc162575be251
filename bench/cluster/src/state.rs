//! The state directory a start script leaves: `system`, `endpoints` (client
//! addresses, node 1 first), and per node `nodeI.pid` and `nodeI.start`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::System;

/// The system and client endpoints, from a state directory or given directly.
pub fn resolve(
    state: Option<PathBuf>,
    system: Option<System>,
    endpoints: Vec<String>,
) -> Result<(System, Vec<String>)> {
    match state {
        Some(dir) => {
            let cluster = Cluster::open(&dir)?;
            if system.is_some_and(|s| s != cluster.system) {
                bail!(
                    "{} holds a {} cluster, not {}",
                    dir.display(),
                    cluster.system.name(),
                    system.map_or("", |s| s.name())
                );
            }
            Ok((cluster.system, cluster.endpoints))
        }
        None => {
            let system = system.context("give --state, or --system with --endpoints")?;
            if endpoints.is_empty() {
                bail!("give --state, or --endpoints with --system");
            }
            Ok((system, endpoints))
        }
    }
}

/// A cluster started by a start script.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Its directory.
    pub dir: PathBuf,
    /// Which system.
    pub system: System,
    /// Client addresses, node 1 first.
    pub endpoints: Vec<String>,
}

impl Cluster {
    /// Reads the state directory.
    pub fn open(dir: &Path) -> Result<Cluster> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).with_context(|| {
                format!(
                    "reading {} (not a state directory of a start script?)",
                    dir.join(name).display()
                )
            })
        };
        let system = match read("system")?.trim() {
            "etcd" => System::Etcd,
            "flashlog" => System::Flashlog,
            other => bail!("{}: unknown system {other:?}", dir.join("system").display()),
        };
        let endpoints: Vec<String> = read("endpoints")?
            .trim()
            .split(',')
            .map(str::to_owned)
            .collect();
        if endpoints.len() < 3 {
            bail!(
                "{}: expected 3 endpoints, found {:?}",
                dir.join("endpoints").display(),
                endpoints
            );
        }
        Ok(Cluster {
            dir: dir.to_owned(),
            system,
            endpoints,
        })
    }

    /// The pid of node `node` (1-based) as its start script last wrote it.
    pub fn pid(&self, node: usize) -> Result<u32> {
        let path = self.dir.join(format!("node{node}.pid"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("{}: not a pid: {text:?}", path.display()))
    }

    /// Sends SIGKILL to node `node`.
    pub fn kill(&self, node: usize) -> Result<()> {
        let pid = self.pid(node)?;
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -KILL {pid} (node {node}) failed: {status}");
        }
        Ok(())
    }

    /// Relaunches node `node` with its data (its start script).
    pub fn restart(&self, node: usize) -> Result<()> {
        let script = self.dir.join(format!("node{node}.start"));
        let status = Command::new(&script)
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !status.success() {
            bail!("{} failed: {status}", script.display());
        }
        Ok(())
    }
}
