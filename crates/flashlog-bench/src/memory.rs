//! Resident memory while appending a lot: measured in a child process, so that the
//! peak (VmHWM) belongs to the appends alone.

use std::process::Command;

use flashlog_wal::{Op, Options, SyncPolicy, Wal};

use crate::appends::ENTRY_LEN;
use crate::Config;

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the child and prints what it measured.
pub fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    print!("{}", measure(config)?);
    Ok(())
}

/// Starts the child and returns its markdown table.
pub fn measure(config: &Config) -> Result<String, Box<dyn std::error::Error>> {
    let output = Command::new(std::env::current_exe()?)
        .arg("--dir")
        .arg(&config.dir)
        .arg("--memory-child")
        .arg(config.memory_bytes.to_string())
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
pub fn child(config: &Config, bytes: &str) -> Result<(), Box<dyn std::error::Error>> {
    let bytes: u64 = bytes.parse()?;
    let dir = tempfile::Builder::new()
        .prefix("flashlog-bench-")
        .tempdir_in(&config.dir)?;
    let before = status_kib("VmHWM:").unwrap_or(0);
    let wal = Wal::open(
        dir.path(),
        Options::default().sync_policy(SyncPolicy::Manual),
    )?;
    let value = vec![1u8; ENTRY_LEN - 17 - 8];
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
