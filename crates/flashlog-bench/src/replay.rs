//! Replaying a large log from the page cache, beside simply reading its files.

use std::time::Instant;

use flashlog_wal::{Batch, Options, SyncPolicy, Wal};

use crate::appends::ENTRY_LEN;
use crate::Config;

/// Writes the log, then times: reading the files, `Wal::open` (after the clean close
/// it reads the newest segment and trusts the checkpoint for the others), and
/// iterating every entry (an owned `Entry` each, every CRC checked).
pub fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::Builder::new()
        .prefix("flashlog-bench-")
        .tempdir_in(&config.dir)?;
    let entries = config.replay_bytes / ENTRY_LEN as u64;
    {
        let wal = Wal::open(
            dir.path(),
            Options::default().sync_policy(SyncPolicy::Manual),
        )?;
        let value = vec![7u8; ENTRY_LEN - 17 - 8];
        let mut batch = Batch::new();
        for i in 0..entries {
            batch.put(&i.to_le_bytes(), &value);
            if batch.len() == 4096 {
                wal.append_batch(&batch)?;
                batch.clear();
            }
        }
        wal.append_batch(&batch)?;
        wal.close()?;
    }
    let bytes = entries * ENTRY_LEN as u64;
    let gb = bytes as f64 / 1e9;

    let start = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            // One reused buffer, read in 1 MiB pieces: the cost of the bytes alone,
            // not of growing a new vector per file.
            let mut file = std::fs::File::open(&path)?;
            loop {
                let n = std::io::Read::read(&mut file, &mut buf)?;
                if n == 0 {
                    break;
                }
                read += n as u64;
            }
        }
    }
    let plain = start.elapsed();
    assert_eq!(read, bytes, "the files hold the log");

    let start = Instant::now();
    let wal = Wal::open(dir.path(), Options::default())?;
    let open = start.elapsed();

    let start = Instant::now();
    let mut seen = 0u64;
    let mut value_bytes = 0u64;
    for entry in wal.iter_from(1)? {
        value_bytes += entry?.value().len() as u64;
        seen += 1;
    }
    let iterate = start.elapsed();
    assert_eq!(seen, entries);
    assert!(value_bytes > 0);

    println!(
        "| replay of {:.2} GB ({entries} entries) | seconds | GB/s | vs reading the files |",
        gb
    );
    println!("|------------------------------------|---------|------|----------------------|");
    let line = |name: &str, secs: f64| {
        println!(
            "| {name:<34} | {secs:>7.3} | {:>4.2} | {:>19.2}x |",
            gb / secs,
            plain.as_secs_f64() / secs
        );
    };
    line("read the segment files", plain.as_secs_f64());
    line("Wal::open (newest segment only)", open.as_secs_f64());
    line("iterate (an Entry each, CRC)", iterate.as_secs_f64());
    line("open + iterate", (open + iterate).as_secs_f64());
    Ok(())
}
