//! Appends from a few threads for a few seconds and prints `Wal::metrics()`: what
//! the README's "Operating flashlog" section quotes as healthy values.
//!
//! ```text
//! cargo run --release -p flashlog-wal --example metrics [-- THREADS SECONDS DIR]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use flashlog_wal::{HistogramSnapshot, Op, Options, Wal};

fn micros(h: &HistogramSnapshot) -> String {
    format!(
        "p50 {} µs, p99 {} µs, p999 {} µs, max {} µs",
        h.p50 / 1000,
        h.p99 / 1000,
        h.p999 / 1000,
        h.max / 1000
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let seconds: f64 = args.next().map_or(Ok(3.0), |a| a.parse())?;
    let scratch = tempfile::tempdir_in(args.next().unwrap_or_else(|| ".".into()))?;
    let wal = Arc::new(Wal::open(scratch.path(), Options::default())?);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || -> flashlog_wal::Result<()> {
                let value = [t as u8; 256];
                while Instant::now() < deadline {
                    wal.append(Op::Put, b"key", &value)?;
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker")?;
    }
    let m = wal.metrics();
    println!("{threads} threads, {seconds} s, 256-byte values, SyncPolicy::Always");
    println!(
        "entries {} ({:.0}/s), groups {}, fsyncs {}, rotations {}",
        m.entries_appended,
        m.entries_appended as f64 / seconds,
        m.groups,
        m.fsyncs,
        m.rotations
    );
    println!("fsync latency:  {}", micros(&m.fsync_latency));
    println!("append latency: {}", micros(&m.append_latency));
    println!(
        "group entries:  p50 {}, p99 {}, max {} (mean {:.1})",
        m.group_entries.p50,
        m.group_entries.p99,
        m.group_entries.max,
        m.group_entries.mean()
    );
    println!(
        "segments {}, bytes {}, written {}, durable {}, poisonings {}",
        m.segments, m.bytes_on_disk, m.written_seq, m.durable_seq, m.poisonings
    );
    Ok(())
}
