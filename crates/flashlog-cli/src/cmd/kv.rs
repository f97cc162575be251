//! `put`, `get`, `delete` and `scan`: one store operation from the command line.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use flashlog_cli::format::{pair_hex, pair_json};
use flashlog_cluster::client::block_on;
use flashlog_cluster::ClusterClient;
use flashlog_kv::DbOptions;

use super::open::open_db;
use super::open_db_read_only;
use crate::text::{hex, parse_hex, quoted, show};

/// Arguments of `flashlog put`.
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    /// The key (any bytes but NUL; hex with --hex)
    key: OsString,
    /// The value (hex with --hex); `-` reads it from standard input as raw bytes,
    /// also with --hex (for a value of one dash, use --hex 2d)
    #[arg(allow_hyphen_values = true)]
    value: OsString,
    /// KEY and VALUE are hex, e.g. 00ff (an empty argument is the empty value)
    #[arg(long)]
    hex: bool,
}

/// Arguments of `flashlog get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The key (hex with --hex)
    key: OsString,
    /// KEY is hex; the value is printed as hex
    #[arg(long, conflicts_with = "json")]
    hex: bool,
    /// Print one JSON object: key and value (as text, or null if not UTF-8),
    /// key_hex, value_hex
    #[arg(long)]
    json: bool,
    /// With --cluster: read the node's own state (no leader round trip)
    #[arg(long)]
    local: bool,
}

/// Arguments of `flashlog delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The key (hex with --hex)
    key: OsString,
    /// KEY is hex
    #[arg(long)]
    hex: bool,
}

/// Arguments of `flashlog scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Only keys that start with this (hex with --hex)
    prefix: Option<OsString>,
    /// PREFIX is hex; prints KEYHEX VALUEHEX per line (`-` for an empty one)
    #[arg(long, conflicts_with = "json")]
    hex: bool,
    /// One JSON object per line: key and value (as text, or null if not UTF-8),
    /// key_hex, value_hex
    #[arg(long)]
    json: bool,
    /// With --cluster: at most this many keys
    #[arg(long, default_value_t = 100_000)]
    limit: usize,
    /// With --cluster: read the node's own state (no leader round trip)
    #[arg(long)]
    local: bool,
}

/// An argument's bytes: as given (on Unix, any bytes but NUL), or decoded from
/// hex with `--hex`.
fn arg_bytes(arg: &OsStr, hex: bool, what: &str) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    if !hex {
        return Ok(arg.as_bytes().to_vec());
    }
    arg.to_str()
        .and_then(parse_hex)
        .with_context(|| format!("the {what} is not hex (--hex): {}", quoted(arg.as_bytes())))
}

/// `flashlog put KEY VALUE`: prints nothing.
pub fn put(
    dir: &Path,
    args: &PutArgs,
    lock_timeout: Duration,
    remote: Option<&ClusterClient>,
) -> anyhow::Result<ExitCode> {
    let key = arg_bytes(&args.key, args.hex, "key")?;
    let value = if args.value == "-" {
        let mut value = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut value)
            .context("cannot read the value from standard input")?;
        value
    } else {
        arg_bytes(&args.value, args.hex, "value")?
    };
    if let Some(client) = remote {
        block_on(client.put(&key, &value))
            .with_context(|| format!("cannot put {}", quoted(&key)))?;
        return Ok(ExitCode::SUCCESS);
    }
    let db = open_db(dir, DbOptions::default(), lock_timeout)?;
    db.put(&key, &value)
        .with_context(|| format!("cannot put {}", quoted(&key)))?;
    warn_failed_compaction(&db);
    db.close().context("cannot close the store")?;
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr that the automatic compaction a write ran failed: the write
/// succeeded (the exit code says so), but the log keeps its dead bytes.
fn warn_failed_compaction(db: &flashlog_kv::Db) {
    if let Some(error) = db.stats().last_compaction_error {
        errln!("warning: the automatic compaction after this write failed: {error}");
    }
}

/// `flashlog get KEY`: prints the value as it is (bytes and a newline), as hex
/// or as JSON; exit code 1 and nothing printed if the key is absent.
pub fn get(dir: &Path, args: &GetArgs, remote: Option<&ClusterClient>) -> anyhow::Result<ExitCode> {
    let key = arg_bytes(&args.key, args.hex, "key")?;
    let value = match remote {
        Some(client) => block_on(client.get(&key, args.local)),
        None => {
            let db = open_db_read_only(dir, DbOptions::default())?;
            db.get(&key).map_err(Into::into)
        }
    };
    let Some(value) = value.with_context(|| format!("cannot get {}", quoted(&key)))? else {
        return Ok(ExitCode::from(1));
    };
    let mut out = std::io::stdout().lock();
    let written = if args.hex {
        writeln!(out, "{}", hex(&value))
    } else if args.json {
        writeln!(out, "{}", pair_json(&key, &value))
    } else {
        out.write_all(&value).and_then(|()| out.write_all(b"\n"))
    };
    written
        .and_then(|()| out.flush())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// `flashlog delete KEY`: prints nothing (deleting an absent key is no error).
pub fn delete(
    dir: &Path,
    args: &DeleteArgs,
    lock_timeout: Duration,
    remote: Option<&ClusterClient>,
) -> anyhow::Result<ExitCode> {
    let key = arg_bytes(&args.key, args.hex, "key")?;
    if let Some(client) = remote {
        block_on(client.delete(&key)).with_context(|| format!("cannot delete {}", quoted(&key)))?;
        return Ok(ExitCode::SUCCESS);
    }
    let db = open_db(dir, DbOptions::default(), lock_timeout)?;
    db.delete(&key)
        .with_context(|| format!("cannot delete {}", quoted(&key)))?;
    warn_failed_compaction(&db);
    db.close().context("cannot close the store")?;
    Ok(ExitCode::SUCCESS)
}

/// `flashlog scan [PREFIX]`: `KEY VALUE` per line in key order, as text, hex or
/// JSON lines.
pub fn scan(
    dir: &Path,
    args: &ScanArgs,
    remote: Option<&ClusterClient>,
) -> anyhow::Result<ExitCode> {
    let prefix = match &args.prefix {
        Some(prefix) => arg_bytes(prefix, args.hex, "prefix")?,
        None => Vec::new(),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut print = |key: &[u8], value: &[u8]| -> anyhow::Result<()> {
        let line = if args.hex {
            pair_hex(key, value)
        } else if args.json {
            pair_json(key, value)
        } else {
            format!("{} {}", show(key), show(value))
        };
        writeln!(out, "{line}").context("cannot write to standard output")
    };
    match remote {
        Some(client) => {
            let page =
                block_on(client.scan(&prefix, args.limit, args.local)).context("cannot scan")?;
            for (key, value) in &page.items {
                print(key, value)?;
            }
            if page.more {
                errln!(
                    "warning: more than {} keys match; raise --limit",
                    args.limit
                );
            }
        }
        None => {
            let db = open_db_read_only(dir, DbOptions::default())?;
            for pair in db.scan_prefix(&prefix) {
                let (key, value) = pair.context("cannot read a value")?;
                print(&key, &value)?;
            }
        }
    }
    out.flush().context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}
