//! A service that hands entries to the log from tokio tasks and answers each
//! request only once its entry is durable, without blocking a worker thread.
//!
//! ```text
//! cargo run -p flashlog-chaos --example receipts_tokio
//! ```
//!
//! `Wal::submit` queues the entry and returns a `Receipt` at once; the receipt is
//! a `Future` that the thread finishing the fsync wakes (the log's syncer thread,
//! or a blocking appender leading the group). flashlog has no runtime dependency:
//! any executor can await it. The 64 "requests" below share fdatasyncs (group commit).

use std::sync::Arc;
use std::time::Instant;

use flashlog_wal::{Op, Options, SyncPolicy, Wal};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    // `Always`: a receipt resolves once an fdatasync covered its entry.
    let wal = Arc::new(Wal::open(
        dir.path(),
        Options::default().sync_policy(SyncPolicy::Always),
    )?);

    let started = Instant::now();
    let requests: Vec<_> = (0..64u32)
        .map(|user| {
            let wal = Arc::clone(&wal);
            tokio::spawn(async move {
                let key = format!("user:{user}");
                // Returns at once: the entry has its sequence number already.
                let receipt = wal.submit(Op::Put, key.as_bytes(), b"signed up")?;
                // The task sleeps here; the worker runs other tasks meanwhile.
                let seqs = receipt.await?;
                // Only now is it safe to tell the client "saved".
                Ok::<u64, flashlog_wal::Error>(*seqs.end())
            })
        })
        .collect();

    let mut seqs = Vec::new();
    for request in requests {
        seqs.push(request.await??);
    }
    seqs.sort_unstable();
    println!(
        "{} entries durable in {:.1} ms, sequence numbers {}..={}",
        seqs.len(),
        started.elapsed().as_secs_f64() * 1e3,
        seqs[0],
        seqs[seqs.len() - 1]
    );
    assert_eq!(seqs, (1..=64).collect::<Vec<u64>>());
    assert_eq!(wal.durable_seq(), 64);

    // A blocking call (close makes everything durable and releases the lock)
    // belongs off the workers.
    let wal = Arc::into_inner(wal).ok_or("a task still holds the log")?;
    tokio::task::spawn_blocking(move || wal.close()).await??;
    Ok(())
}
