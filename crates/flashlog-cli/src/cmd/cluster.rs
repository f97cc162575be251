//! `flashlog cluster init|status|add|remove` and the key-value commands against
//! a cluster (`flashlog --cluster H:P[,H:P…] put|get|delete|scan`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use flashlog_cluster::client::block_on;
use flashlog_cluster::ClusterClient;
use serde_json::Value;

/// `flashlog cluster ...`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Forms a new cluster of these voters (asks the first); refused, with
    /// nothing changed, if it already belongs to a cluster
    Init {
        /// A voter, ID=HOST:PORT (repeat for each)
        #[arg(long = "node", value_name = "ID=HOST:PORT", required = true)]
        nodes: Vec<String>,
    },
    /// Leader, term, voters, learners and each node's last log and applied index
    Status {
        /// A node to ask, HOST:PORT
        #[arg(long, value_name = "HOST:PORT")]
        node: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Adds a node: joins as a learner, catches up, then becomes a voter
    /// (needs --cluster to reach the cluster)
    Add {
        /// The new node, ID=HOST:PORT
        #[arg(long = "node", value_name = "ID=HOST:PORT")]
        node: String,
    },
    /// Removes a node (needs --cluster to reach the cluster)
    Remove {
        /// The id of the node to remove
        #[arg(long)]
        id: u64,
    },
}

fn parse_node(text: &str) -> anyhow::Result<(u64, String)> {
    let (id, addr) = text
        .split_once('=')
        .with_context(|| format!("--node {text}: expected ID=HOST:PORT"))?;
    let id = id
        .parse()
        .with_context(|| format!("--node {text}: the id is not a number"))?;
    anyhow::ensure!(
        addr.contains(':'),
        "--node {text}: the address must be HOST:PORT"
    );
    Ok((id, addr.to_string()))
}

/// The node addresses of `--cluster H:P[,H:P…]`.
pub fn addresses(cluster: &str) -> Vec<String> {
    cluster
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// Runs `flashlog cluster ...`.
pub fn run(
    command: &Command,
    cluster: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init { nodes } => {
            let mut members = BTreeMap::new();
            for node in nodes {
                let (id, addr) = parse_node(node)?;
                anyhow::ensure!(
                    members.insert(id, addr).is_none(),
                    "node {id} is given twice"
                );
            }
            let first = members.values().next().cloned().unwrap_or_default();
            let client = ClusterClient::new(vec![first], token)?;
            block_on(client.init(&members)).context("cannot form the cluster")?;
            outln!("cluster formed: {} voters", members.len())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { node, json } => {
            let addr = node
                .clone()
                .or_else(|| cluster.and_then(|c| addresses(c).into_iter().next()))
                .context("give --node HOST:PORT")?;
            status(&addr, *json, token)
        }
        Command::Add { node } => {
            let (id, addr) = parse_node(node)?;
            let client = client(cluster, token)?;
            block_on(client.add(id, &addr)).with_context(|| format!("cannot add node {id}"))?;
            outln!("node {id} added as a voter")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Remove { id } => {
            let client = client(cluster, token)?;
            block_on(client.remove(*id)).with_context(|| format!("cannot remove node {id}"))?;
            outln!("node {id} removed")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The client of `--cluster`.
pub fn client(cluster: Option<&str>, token: Option<&str>) -> anyhow::Result<ClusterClient> {
    let cluster = cluster.context("give --cluster HOST:PORT[,HOST:PORT...]")?;
    Ok(ClusterClient::new(addresses(cluster), token)?)
}

fn status(addr: &str, json: bool, token: Option<&str>) -> anyhow::Result<ExitCode> {
    let client = ClusterClient::new(vec![addr.to_string()], token)?;
    let view = block_on(client.node_status(addr)).context("cannot read the cluster's state")?;
    let nodes: BTreeMap<u64, String> = view["nodes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(id, a)| Some((id.parse().ok()?, a.as_str()?.to_string())))
        .collect();
    let ids = |name: &str| -> Vec<u64> {
        view[name]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect()
    };
    let (voters, learners) = (ids("voters"), ids("learners"));
    let mut rows = Vec::new();
    for (id, node_addr) in &nodes {
        let own = if node_addr == addr {
            Ok(view.clone())
        } else {
            block_on(client.node_status(node_addr))
        };
        rows.push(match own {
            Ok(v) => serde_json::json!({
                "id": id, "addr": node_addr, "reachable": true,
                "role": if voters.contains(id) { "voter" } else { "learner" },
                "state": v["state"], "term": v["term"],
                "last_log_index": v["last_log_index"], "last_applied_index": v["last_applied_index"],
            }),
            Err(e) => serde_json::json!({
                "id": id, "addr": node_addr, "reachable": false,
                "role": if voters.contains(id) { "voter" } else { "learner" },
                "error": format!("{e:#}"),
            }),
        });
    }
    if json {
        let out = serde_json::json!({
            "leader": view["leader"], "term": view["term"], "voters": voters, "learners": learners, "nodes": rows,
        });
        outln!("{out}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let leader = view["leader"].as_u64();
    outln!(
        "leader  {}",
        leader.map_or("none".to_string(), |l| l.to_string())
    )?;
    outln!("term    {}", view["term"])?;
    outln!("voters  {voters:?}")?;
    outln!("learners {learners:?}")?;
    outln!()?;
    outln!(
        "{:<4} {:<22} {:<8} {:<10} {:>6} {:>10} {:>10}",
        "id",
        "address",
        "role",
        "state",
        "term",
        "last log",
        "applied"
    )?;
    for row in rows {
        let text = |name: &str| match &row[name] {
            Value::Null => "-".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let state = if row["reachable"] == Value::Bool(true) {
            text("state")
        } else {
            "unreachable".to_string()
        };
        outln!(
            "{:<4} {:<22} {:<8} {:<10} {:>6} {:>10} {:>10}",
            text("id"),
            text("addr"),
            text("role"),
            state,
            text("term"),
            text("last_log_index"),
            text("last_applied_index")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
