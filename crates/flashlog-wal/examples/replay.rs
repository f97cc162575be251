//! Replays a log the fast way: open it, then visit every entry borrowed from the
//! iterator's read buffer. Writes a log of the given size first if the directory
//! holds none.
//!
//! ```text
//! cargo run --release -p flashlog-wal --example replay -- DIR [MIB]
//! ```

use std::time::Instant;

use flashlog_wal::{Batch, Options, SyncPolicy, Wal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: replay DIR [MIB]")?;
    let mib: u64 = args.next().map_or(Ok(256), |text| text.parse())?;
    if !std::path::Path::new(&dir).join("segment-0001.log").exists() {
        let wal = Wal::open(&dir, Options::default().sync_policy(SyncPolicy::Manual))?;
        let value = vec![0x3c; 256 - 17 - 8];
        let mut batch = Batch::new();
        for i in 0..(mib << 20) / 256 {
            batch.put(&u64::to_le_bytes(i), &value);
            if batch.len() == 4096 {
                wal.append_batch(&batch)?;
                batch.clear();
            }
        }
        wal.append_batch(&batch)?;
        wal.close()?;
    }
    let start = Instant::now();
    let wal = Wal::open(&dir, Options::default())?;
    let opened = start.elapsed();
    let (mut entries, mut bytes) = (0u64, 0u64);
    wal.iter_from(wal.first_seq())?
        .try_for_each_ref(|entry| -> flashlog_wal::Result<()> {
            entries += 1;
            bytes += (entry.key.len() + entry.value.len()) as u64;
            Ok(())
        })?;
    let total = start.elapsed();
    println!(
        "open {:.3} s, open + replay {:.3} s: {entries} entries, {:.2} GB/s of keys and values",
        opened.as_secs_f64(),
        total.as_secs_f64(),
        bytes as f64 / total.as_secs_f64() / 1e9
    );
    Ok(())
}
