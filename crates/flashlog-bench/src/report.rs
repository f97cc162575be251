//! The results folder: `results.md` (markdown tables), `results.json` (every number)
//! and the SVG plots.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::openraft_bench::{RaftRuns, WRITE_BYTES};
use crate::openraft_cluster::Store;
use crate::plot;
use crate::receipts::{Driver, Receipts};
use crate::results::{Results, Row};
use crate::system::{BenchResult, System};

fn ratio(results: &Results, row: &Row, base: System) -> Option<f64> {
    let base = results.peer(row, base)?;
    (base.entries_per_sec() > 0.0).then(|| row.entries_per_sec() / base.entries_per_sec())
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "–".into())
}

fn size_name(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

fn gib(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// One target: what it asks, what was measured, whether it holds.
#[derive(Debug, Clone)]
pub struct Target {
    /// What the issue asks.
    pub name: String,
    /// The measured figures.
    pub measured: String,
    /// `Some(met)`, or `None` when the rows were not run.
    pub met: Option<bool>,
}

/// Evaluates the targets on `results`.
pub fn targets(results: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let eps = |s, t| results.find("durable", s, 256, t).map(Row::entries_per_sec);
    // 1 thread, 256 B.
    let t1 = (|| {
        let ours = eps(System::Flashlog, 1)?;
        let pre = eps(System::PlainPrealloc, 1)?;
        let oky = eps(System::Okaywal, 1)?;
        let raft = eps(System::RaftEngine, 1)?;
        Some(Target {
            name: "1 thread, 256 B durable: ≥ 1.0× plain loop on a preallocated file, ahead of every peer".into(),
            measured: format!(
                "{:.2}× plain prealloc; {:.2}× okaywal; {:.2}× raft-engine",
                ours / pre,
                ours / oky,
                ours / raft
            ),
            met: Some(ours >= pre && ours > oky && ours > raft),
        })
    })();
    let max_threads = results
        .rows
        .iter()
        .filter(|r| r.section == "durable")
        .map(|r| r.workload.threads)
        .max()
        .unwrap_or(0);
    let t2 = (|| {
        let ours = eps(System::Flashlog, max_threads)?;
        let ideal = eps(System::IdealGroupCommit, max_threads)?;
        let oky = eps(System::Okaywal, max_threads)?;
        let raft = eps(System::RaftEngine, max_threads)?;
        Some(Target {
            name: format!("{max_threads} threads, 256 B durable: ≥ 0.9× ideal group commit, ≥ 1.2× raft-engine, ≥ 2× okaywal"),
            measured: format!(
                "{:.2}× ideal; {:.2}× raft-engine; {:.2}× okaywal (raft-engine {:.2}× ideal, okaywal {:.2}× ideal)",
                ours / ideal,
                ours / raft,
                ours / oky,
                raft / ideal,
                oky / ideal
            ),
            met: Some(ours >= 0.9 * ideal && ours >= 1.2 * raft && ours >= 2.0 * oky),
        })
    })();
    let t3 = (|| {
        let best = results
            .rows
            .iter()
            .filter(|r| {
                r.section == "durable"
                    && r.system == System::Flashlog
                    && r.workload.entry_bytes == 65536
            })
            .max_by(|a, b| a.mb_per_sec().total_cmp(&b.mb_per_sec()))?;
        let seq = results.sequential_bytes_per_sec / 1e6;
        Some(Target {
            name: "64 KiB entries: ≥ 0.8× the disk's sequential write bandwidth".into(),
            measured: format!(
                "best {:.0} MB/s ({} threads) of {seq:.0} MB/s sequential = {:.2}×",
                best.mb_per_sec(),
                best.workload.threads,
                best.mb_per_sec() / seq
            ),
            met: Some(best.mb_per_sec() >= 0.8 * seq),
        })
    })();
    let t4 = results
        .replays
        .iter()
        .find(|r| r.system == System::Flashlog)
        .map(|r| {
            let gbs = r.bytes as f64 / r.replay_secs / 1e9;
            let vs = r.replay_secs / r.read_files_secs;
            Target {
                name: "replay: ≥ 1 GB/s from the page cache, within 1.5× of reading the files"
                    .into(),
                measured: format!("{gbs:.2} GB/s; {vs:.2}× the time of reading the files"),
                met: Some(gbs >= 1.0 && vs <= 1.5),
            }
        });
    let t5 = match (results.open_times.first(), results.open_times.last()) {
        (Some(small), Some(large)) if results.open_times.len() > 1 => {
            let per_gib = large.open_secs / (large.bytes as f64 / (1u64 << 30) as f64);
            Some(Target {
                name: "open after a clean shutdown independent of size (10 GiB well under 1 s)"
                    .into(),
                measured: format!(
                    "{}: {:.3} s; {}: {:.3} s; {:.3} s per GiB, so 10 GiB ≈ {:.1} s",
                    gib(small.bytes),
                    small.open_secs,
                    gib(large.bytes),
                    large.open_secs,
                    per_gib,
                    per_gib * 10.0
                ),
                met: Some(
                    large.open_secs < 2.0 * small.open_secs.max(0.01) && per_gib * 10.0 < 0.5,
                ),
            })
        }
        _ => None,
    };
    let t6 = results.crash_open.as_ref().map(|c| Target {
        name: "open after a crash proportional only to what must be checked (here a process appended 1 MiB more, synced and aborted; bound used: < 0.1 s)".into(),
        measured: format!("{}: {:.3} s", gib(c.bytes), c.open_secs),
        // Below 1 GiB a full scan is fast too, so the bound tells nothing.
        met: (c.bytes >= 1 << 30).then_some(c.open_secs < 0.1),
    });
    out.extend([t1, t2, t3, t4, t5, t6].into_iter().flatten());
    if let Some(receipts) = &results.receipts {
        out.extend(receipt_targets(receipts));
    }
    if let Some(raft) = &results.raft {
        out.extend(raft_targets(raft));
    }
    if let Some(f) = &results.followers {
        let (written, durable) = (f.written.percentile_us(0.5), f.durable.percentile_us(0.5));
        out.push(Target {
            name: "a `Visibility::Written` follower sees an entry sooner than a `Durable` one (p50, from the append call)".into(),
            measured: format!(
                "Written p50 {written:.0} µs (p99 {:.0}); Durable p50 {durable:.0} µs (p99 {:.0})",
                f.written.percentile_us(0.99),
                f.durable.percentile_us(0.99)
            ),
            met: Some(written < durable),
        });
    }
    out
}

/// The receipts section's targets: each non-blocking driver ≥ 0.9× the blocking
/// threads' entries/s, same run (the ratio of the medians decides).
fn receipt_targets(receipts: &Receipts) -> Vec<Target> {
    let Some(base) = receipts.baseline() else {
        return Vec::new();
    };
    receipts
        .runs
        .iter()
        .map(|(driver, _)| *driver)
        .filter(|driver| !matches!(driver, Driver::Blocking { .. }))
        .filter_map(|driver| {
            let ratio = receipts.ratio(driver)?;
            Some(Target {
                name: format!(
                    "{}, {} B: ≥ 0.9× {}",
                    driver.name(),
                    receipts.entry_bytes,
                    base.name()
                ),
                measured: format!(
                    "{:.2}× (medians); per repetition {:.2}–{:.2}×",
                    ratio.of_medians, ratio.min, ratio.max
                ),
                met: Some(ratio.of_medians >= 0.9),
            })
        })
        .collect()
}

/// The openraft section's targets (issue 17): flashlog-raft ≥ 0.5× the in-memory
/// store at the most clients measured (256 in the full run), and ahead of every
/// durable peer at every client count (ratio of the medians).
fn raft_targets(raft: &RaftRuns) -> Vec<Target> {
    let mut out = Vec::new();
    let counts = raft.client_counts();
    if let Some(&most) = counts.last() {
        if let Some(r) = raft.ratio(Store::Flashlog, Store::Memory, most) {
            out.push(Target {
                name: format!(
                    "openraft, 3 nodes, {most} clients: flashlog-raft ≥ 0.5× the in-memory store"
                ),
                measured: format!(
                    "{:.2}× (medians); per repetition {:.2}–{:.2}×",
                    r.of_medians, r.min, r.max
                ),
                met: Some(r.of_medians >= 0.5),
            });
        }
    }
    let peers: Vec<Store> = raft
        .stores()
        .into_iter()
        .filter(|s| s.durable() && *s != Store::Flashlog)
        .collect();
    if !peers.is_empty() {
        let mut measured = Vec::new();
        let mut met = true;
        for &clients in &counts {
            for &peer in &peers {
                if let Some(r) = raft.ratio(Store::Flashlog, peer, clients) {
                    measured.push(format!(
                        "{clients} clients: {:.2}× {} ({:.2}–{:.2}×)",
                        r.of_medians,
                        peer.name(),
                        r.min,
                        r.max
                    ));
                    met &= r.of_medians > 1.0;
                }
            }
        }
        out.push(Target {
            name: "openraft, 3 nodes: flashlog-raft ahead of every durable peer store at every client count".into(),
            measured: measured.join("; "),
            met: Some(met),
        });
    }
    out
}

fn raft_markdown(md: &mut String, raft: &RaftRuns) {
    let _ = writeln!(
        md,
        "## openraft: three nodes in one process ({WRITE_BYTES} B client writes)\n\n\
         Three `openraft` 0.10.0-alpha.37 nodes, an in-memory network (each RPC calls the \
         target's `Raft` handle), a counting state machine; each node's log store in its own \
         directory on the disk under test. Clients are tokio tasks (2 workers) calling \
         `client_write` on the leader; latency is from the call until it returned (committed \
         by a quorum, applied on the leader). Each run measured {:.1} s after a warm-up; the \
         stores ran in ABBA order over repetitions. Ratios are to the in-memory store: of \
         the medians, and the range over repetitions, each ratio taken between runs of the \
         same repetition.\n\n\
         | store | clients | writes/s | spread | p50 µs | p99 µs | × in-memory (medians) | × in-memory, per repetition |\n\
         |---|---|---|---|---|---|---|---|",
        raft.run_secs
    );
    for clients in raft.client_counts() {
        for store in raft.stores() {
            let (Some(s), Some(r)) = (
                raft.summary(store, clients),
                raft.ratio(store, Store::Memory, clients),
            ) else {
                continue;
            };
            let name = if store == Store::Flashlog {
                format!("**{}**", store.name())
            } else {
                store.name().to_owned()
            };
            let _ = writeln!(
                md,
                "| {name} | {clients} | {:.0} | ±{:.0}% | {:.0} | {:.0} | {:.2}× | {:.2}–{:.2}× |",
                s.ops_per_sec,
                s.spread_pct() / 2.0,
                s.p50_us,
                s.p99_us,
                r.of_medians,
                r.min,
                r.max
            );
        }
    }
    md.push('\n');
}

fn raft_json(raft: &RaftRuns) -> Value {
    let mut rows = Vec::new();
    for clients in raft.client_counts() {
        for store in raft.stores() {
            let summary = raft.summary(store, clients);
            let ratio = raft.ratio(store, Store::Memory, clients);
            rows.push(json!({
                "store": store.name(),
                "clients": clients,
                "writes_per_sec": summary.map(|s| s.ops_per_sec),
                "writes_per_sec_per_rep": raft.runs.iter()
                    .find(|(s, c, _)| *s == store && *c == clients)
                    .map(|(_, _, runs)| runs.iter().map(|r| r.ops_per_sec()).collect::<Vec<_>>()),
                "latency_us": summary.map(|s| json!({"p50": s.p50_us, "p99": s.p99_us, "p999": s.p999_us})),
                "ratio_to_memory": ratio.map(|q| json!({
                    "of_medians": q.of_medians, "median_of_reps": q.median_of_reps, "min": q.min, "max": q.max,
                })),
            }));
        }
    }
    json!({"write_bytes": WRITE_BYTES, "run_secs": raft.run_secs, "rows": rows})
}

/// Whether the syncer-thread group commit ran (its ratio column is shown only then).
fn has_syncer(results: &Results) -> bool {
    results
        .rows
        .iter()
        .any(|r| r.system == System::SyncerGroupCommit)
}

fn row_line(md: &mut String, results: &Results, row: &Row) {
    let s = &row.summary;
    let _ = write!(
        md,
        "| {} | {} | {:.0} | ±{:.0}% | {:.2} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
        if row.system == System::Flashlog {
            format!("**{}**", row.system.name())
        } else {
            row.system.name().to_owned()
        },
        row.workload.threads,
        row.entries_per_sec(),
        s.spread_pct() / 2.0,
        row.mb_per_sec(),
        s.p50_us,
        s.p99_us,
        s.p999_us,
        fmt_ratio(ratio(results, row, System::PlainLoop)),
        fmt_ratio(ratio(results, row, System::PlainPrealloc)),
        fmt_ratio(ratio(results, row, System::IdealGroupCommit)),
    );
    if has_syncer(results) {
        let _ = write!(
            md,
            " {} |",
            fmt_ratio(ratio(results, row, System::SyncerGroupCommit))
        );
    }
    md.push('\n');
}

fn header(results: &Results) -> String {
    let (name, rule) = if has_syncer(results) {
        (" × syncer gc |", "---|")
    } else {
        ("", "")
    };
    format!(
        "| system | threads | entries/s | spread | MB/s | p50 µs | p99 µs | p99.9 µs | × plain loop | × plain prealloc | × ideal gc |{name}\n|---|---|---|---|---|---|---|---|---|---|---|{rule}\n"
    )
}

/// Renders the markdown report.
pub fn markdown(results: &Results) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# flashlog-bench results ({} mode)\n", results.mode);
    let _ = writeln!(
        md,
        "Each timed configuration ran {} time(s) for {:.2} s; medians shown, `spread` is ±half \
         the range of entries/s over the repetitions. Percentiles are the median over \
         repetitions. Ratios are to baselines measured in the same run. Whole run: {:.0} s.\n",
        results.reps, results.run_time_secs, results.total_secs
    );
    for (k, v) in &results.machine {
        let _ = writeln!(md, "- {k}: {v}");
    }
    if results.sequential_bytes_per_sec > 0.0 {
        let _ = writeln!(
            md,
            "- the disk's sequential write bandwidth (the better of the two above): {:.0} MB/s",
            results.sequential_bytes_per_sec / 1e6
        );
    }
    md.push('\n');
    let targets = targets(results);
    if !targets.is_empty() {
        md.push_str("## Targets\n\n| target | measured | met |\n|---|---|---|\n");
        for t in &targets {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            let _ = writeln!(md, "| {} | {} | {met} |", t.name, t.measured);
        }
        md.push('\n');
    }
    let sizes = results.durable_sizes();
    if !sizes.is_empty() {
        md.push_str("## Durable appends (every append fdatasync'd before it returns)\n\n");
    }
    for size in sizes {
        let _ = writeln!(md, "### {} entries\n", size_name(size));
        let _ = writeln!(
            md,
            "![throughput vs threads, {}](throughput-{size}.svg)\n",
            size_name(size)
        );
        md.push_str(&header(results));
        let mut rows: Vec<&Row> = results
            .rows
            .iter()
            .filter(|r| r.section == "durable" && r.workload.entry_bytes == size)
            .collect();
        rows.sort_by_key(|r| r.workload.threads);
        for row in rows {
            row_line(&mut md, results, row);
        }
        md.push('\n');
    }
    for (section, title) in [
        (
            "batched",
            "Batched appends (100 entries of 256 B per durable batch)",
        ),
        (
            "unsynced",
            "Unsynced appends (256 B, one thread, buffered, one sync at the end; time includes it)",
        ),
    ] {
        let rows: Vec<&Row> = results
            .rows
            .iter()
            .filter(|r| r.section == section)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(md, "## {title}\n");
        md.push_str(&header(results));
        for row in rows {
            row_line(&mut md, results, row);
        }
        md.push('\n');
    }
    let lat: Vec<String> = plot::latency_plot_names(results);
    if !lat.is_empty() {
        md.push_str("## Latency distributions\n\n");
        for name in lat {
            let _ = writeln!(md, "![latency percentiles]({name})\n");
        }
    }
    if !results.replays.is_empty() {
        md.push_str("## Replay from the page cache (256 B entries)\n\n");
        md.push_str("| system | log | entries | files | read files s | open s | open + read every entry s | GB/s | × reading the files | iterate, an owned `Entry` each s |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for r in &results.replays {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.3} | {} | {:.3} | {:.2} | {:.2}× | {} |",
                r.system.name(),
                gib(r.bytes),
                r.entries,
                gib(r.file_bytes),
                r.read_files_secs,
                r.open_secs
                    .map(|s| format!("{s:.3}"))
                    .unwrap_or_else(|| "–".into()),
                r.replay_secs,
                r.bytes as f64 / r.replay_secs / 1e9,
                r.replay_secs / r.read_files_secs,
                r.owned_iter_secs
                    .map(|s| format!("{s:.3}"))
                    .unwrap_or_else(|| "–".into()),
            );
        }
        md.push('\n');
    }
    if !results.open_times.is_empty() {
        md.push_str("## flashlog open after a clean shutdown, by log size (page cache warm)\n\n| log | `Wal::open` s (median of 3) |\n|---|---|\n");
        for o in &results.open_times {
            let _ = writeln!(md, "| {} | {:.4} |", gib(o.bytes), o.open_secs);
        }
        if let Some(c) = &results.crash_open {
            let _ = writeln!(
                md,
                "| {} after a crash (a child appended 1 MiB more, synced, and aborted; first open) | {:.4} |",
                gib(c.bytes),
                c.open_secs
            );
        }
        md.push('\n');
    }
    if let Some(tail) = &results.tail {
        md.push_str("## Tailing read latency (flashlog, one durable appender, one `iter_from(1).follow()` reader, 256 B)\n\n| measured | count | p50 µs | p99 µs | p99.9 µs |\n|---|---|---|---|---|\n");
        for (name, r) in [
            ("append call → append returned (durable)", &tail.append),
            ("append call → reader holds the entry", &tail.visible),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | {:.0} | {:.0} | {:.0} |",
                r.ops,
                r.percentile_us(0.5),
                r.percentile_us(0.99),
                r.percentile_us(0.999)
            );
        }
        md.push('\n');
    }
    if let Some(receipts) = &results.receipts {
        let _ = writeln!(
            md,
            "## Receipts ({} B, `SyncPolicy::Always`, a fresh log per run)\n\n\
             An entry counts once durable (`append` returned, or its receipt resolved `Ok`). \
             Latency: from the `append`/`submit` call until the caller learnt the entry durable \
             (the window driver learns it when it waits on that receipt, often well after it \
             resolved). Ratios are to the blocking threads: of the medians, and the range over \
             repetitions, each ratio taken between runs of the same repetition.\n\n\
             | driver | entries/s | spread | p50 µs | p99 µs | × blocking (medians) | × blocking, per repetition |\n\
             |---|---|---|---|---|---|---|",
            receipts.entry_bytes
        );
        for (driver, _) in &receipts.runs {
            if let (Some(s), Some(r)) = (receipts.summary(*driver), receipts.ratio(*driver)) {
                let _ = writeln!(
                    md,
                    "| {} | {:.0} | ±{:.0}% | {:.0} | {:.0} | {:.2}× | {:.2}–{:.2}× |",
                    driver.name(),
                    s.ops_per_sec,
                    s.spread_pct() / 2.0,
                    s.p50_us,
                    s.p99_us,
                    r.of_medians,
                    r.min,
                    r.max
                );
            }
        }
        md.push('\n');
    }
    if let Some(f) = &results.followers {
        md.push_str("## Written and Durable followers (flashlog, one appender under `SyncPolicy::Always`, 256 B; from the append call)\n\n| measured | count | p50 µs | p99 µs | p99.9 µs |\n|---|---|---|---|---|\n");
        for (name, r) in [
            ("append call → append returned (durable)", &f.append),
            (
                "append call → `Visibility::Written` follower holds the entry",
                &f.written,
            ),
            (
                "append call → `Visibility::Durable` follower holds the entry",
                &f.durable,
            ),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | {:.0} | {:.0} | {:.0} |",
                r.ops,
                r.percentile_us(0.5),
                r.percentile_us(0.99),
                r.percentile_us(0.999)
            );
        }
        md.push('\n');
    }
    if let Some(raft) = &results.raft {
        raft_markdown(&mut md, raft);
    }
    if let Some(memory) = &results.memory {
        md.push_str("## Peak resident memory (child process, `SyncPolicy::Manual`, sync every 4096 entries)\n\n");
        md.push_str(memory);
        md.push('\n');
    }
    md
}

fn row_json(results: &Results, row: &Row) -> Value {
    let s = &row.summary;
    json!({
        "section": row.section,
        "system": row.system.name(),
        "entry_bytes": row.workload.entry_bytes,
        "threads": row.workload.threads,
        "entries_per_call": row.workload.batch,
        "runs": s.runs,
        "entries_per_sec": row.entries_per_sec(),
        "entries_per_sec_min": s.min_ops_per_sec * row.workload.batch as f64,
        "entries_per_sec_max": s.max_ops_per_sec * row.workload.batch as f64,
        "mb_per_sec": row.mb_per_sec(),
        "latency_us": { "p50": s.p50_us, "p99": s.p99_us, "p999": s.p999_us },
        "latency_percentiles_us": row.quantiles.iter().map(|(q, us)| json!([q, us])).collect::<Vec<_>>(),
        "ratio": {
            "plain_loop": ratio(results, row, System::PlainLoop),
            "plain_prealloc": ratio(results, row, System::PlainPrealloc),
            "ideal_group_commit": ratio(results, row, System::IdealGroupCommit),
            "syncer_group_commit": ratio(results, row, System::SyncerGroupCommit),
        },
    })
}

/// Renders every number as JSON.
pub fn to_json(results: &Results) -> Value {
    json!({
        "mode": results.mode,
        "machine": results.machine.iter().map(|(k, v)| json!({"what": k, "value": v})).collect::<Vec<_>>(),
        "run_time_secs": results.run_time_secs,
        "reps": results.reps,
        "total_secs": results.total_secs,
        "sequential_write_bytes_per_sec": results.sequential_bytes_per_sec,
        "rows": results.rows.iter().map(|r| row_json(results, r)).collect::<Vec<_>>(),
        "replay": results.replays.iter().map(|r| json!({
            "system": r.system.name(),
            "entries": r.entries,
            "bytes": r.bytes,
            "file_bytes": r.file_bytes,
            "read_files_secs": r.read_files_secs,
            "open_secs": r.open_secs,
            "replay_secs": r.replay_secs,
            "owned_iter_secs": r.owned_iter_secs,
        })).collect::<Vec<_>>(),
        "open_times": results.open_times.iter().map(|o| json!({
            "bytes": o.bytes, "open_secs": o.open_secs, "runs": o.runs,
        })).collect::<Vec<_>>(),
        "crash_open": results.crash_open.as_ref().map(|c| json!({
            "bytes": c.bytes, "open_secs": c.open_secs,
        })),
        "tail": results.tail.as_ref().map(|t| json!({
            "append_us": {"p50": t.append.percentile_us(0.5), "p99": t.append.percentile_us(0.99), "p999": t.append.percentile_us(0.999), "count": t.append.ops},
            "visible_us": {"p50": t.visible.percentile_us(0.5), "p99": t.visible.percentile_us(0.99), "p999": t.visible.percentile_us(0.999), "count": t.visible.ops},
        })),
        "receipts": results.receipts.as_ref().map(|r| json!({
            "entry_bytes": r.entry_bytes,
            "drivers": r.runs.iter().map(|(driver, runs)| {
                let summary = r.summary(*driver);
                let ratio = r.ratio(*driver);
                json!({
                    "driver": driver.name(),
                    "entries_per_sec": summary.map(|s| s.ops_per_sec),
                    "entries_per_sec_per_rep": runs.iter().map(|run| run.ops_per_sec()).collect::<Vec<_>>(),
                    "latency_us": summary.map(|s| json!({"p50": s.p50_us, "p99": s.p99_us, "p999": s.p999_us})),
                    "ratio_to_blocking": ratio.map(|q| json!({
                        "of_medians": q.of_medians, "median_of_reps": q.median_of_reps, "min": q.min, "max": q.max,
                    })),
                })
            }).collect::<Vec<_>>(),
        })),
        "followers": results.followers.as_ref().map(|f| {
            let pct = |r: &crate::stats::RunResult| json!({"p50": r.percentile_us(0.5), "p99": r.percentile_us(0.99), "p999": r.percentile_us(0.999), "count": r.ops});
            json!({"append_us": pct(&f.append), "written_us": pct(&f.written), "durable_us": pct(&f.durable)})
        }),
        "openraft": results.raft.as_ref().map(raft_json),
        "memory_table": results.memory,
        "targets": targets(results).iter().map(|t| json!({
            "target": t.name, "measured": t.measured, "met": t.met,
        })).collect::<Vec<_>>(),
    })
}

/// Writes `results.md`, `results.json` and the plots into `out`.
pub fn write(out: &Path, results: &Results) -> BenchResult<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("results.md"), markdown(results))?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&to_json(results))? + "\n",
    )?;
    plot::write_all(out, results)?;
    Ok(())
}
