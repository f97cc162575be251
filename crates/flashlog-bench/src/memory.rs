//! Resident memory while appending a lot: measured in a child process, so that the
//! peak (VmHWM) belongs to the appends alone.

use std::path::Path;
use std::process::Command;

use flashlog_wal::{Op, Options, SyncPolicy, Wal};

use crate::system::{BenchResult, FRAMING, KEY_LEN};

/// Bytes of each entry on disk.
const ENTRY_LEN: usize = 256;

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the child (this binary with `--memory-child`), which appends `bytes` in a
/// fresh log under `dir`, and returns its markdown table.
pub fn measure(dir: &Path, bytes: u64) -> BenchResult<String> {
    let output = Command::new(std::env::current_exe()?)
        .arg("--dir")
        .arg(dir)
        .arg("--memory-child")
        .arg(bytes.to_string())
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "memory child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The child: appends `bytes` of 256-byte entries, syncing every 4096 entries, and
/// prints its peak resident memory.
pub fn child(dir: &Path, bytes: u64) -> BenchResult<()> {
    let dir = tempfile::Builder::new()
        .prefix("flashlog-bench-")
        .tempdir_in(dir)?;
    let before = status_kib("VmHWM:").unwrap_or(0);
    let wal = Wal::open(
        dir.path(),
        Options::default().sync_policy(SyncPolicy::Manual),
    )?;
    let value = vec![1u8; ENTRY_LEN - FRAMING - KEY_LEN];
    let entries = bytes / ENTRY_LEN as u64;
    for i in 0..entries {
        wal.append(Op::Put, &i.to_le_bytes(), &value)?;
        if i % 4096 == 4095 {
            wal.sync()?;
        }
    }
    wal.sync()?;
    let peak = status_kib("VmHWM:").unwrap_or(0);
    drop(wal);
    println!(
        "| appending {:.2} GiB ({entries} entries) | peak resident memory |",
        bytes as f64 / (1u64 << 30) as f64
    );
    println!("|---------------------------------------|----------------------|");
    println!(
        "| before opening the log                | {:>16.1} MiB |",
        before as f64 / 1024.0
    );
    println!(
        "| after the last append                 | {:>16.1} MiB |",
        peak as f64 / 1024.0
    );
    Ok(())
}
