//! `flashlog-bench`: flashlog against other Rust write-ahead logs (okaywal,
//! raft-engine) and against baselines measured in the same run on the same disk
//! (these machines are noisy; only same-run ratios mean anything).
//!
//! ```text
//! cargo run --release -p flashlog-bench                # full run, writes results/ (~15 min)
//! cargo run --release -p flashlog-bench -- --quick     # same rows, shorter (~2 min), results/quick/
//! cargo run --release -p flashlog-bench -- --smoke     # tiny sizes, every code path (~5 s)
//! cargo run --release -p flashlog-bench -- --help      # every option
//! ```
//!
//! Modules, each importing only modules listed after it (`layers.rs` tests that the
//! imports have no cycle):
//! `suite` (runs the sections, writes the results folder) → `report` (markdown,
//! JSON) → `plot` (SVG) → `results` (what a run measured) → `runner` (append
//! workloads), `recovery` (replay, open, tail), `receipts` (submit and receipts
//! against blocking appends, Written and Durable followers), `memory` (the peak-RSS
//! child) →
//! `openraft_bench` (three openraft nodes per log store, issue 17) → `openraft_cluster`
//! (start, lead, shut down) → `openraft_network` (in-memory RPCs), the stores
//! `openraft_memstore`, `openraft_rafts_log`, `openraft_rocks` (feature `rocksdb`) →
//! `openraft_machine` (the counting state machine) → `openraft_types` (the type config);
//! `libraries` (flashlog, okaywal, raft-engine), `group_commit` (ideal, syncer
//! thread) → `baselines` (plain loops, preallocated files, disk bandwidth) → `cli`
//! (the flags), `stats` → `system` (`System`, the `Log` trait every system implements).

mod baselines;
mod cli;
mod group_commit;
#[cfg(test)]
mod layers;
mod libraries;
mod memory;
mod openraft_bench;
mod openraft_cluster;
mod openraft_machine;
mod openraft_memstore;
mod openraft_network;
mod openraft_rafts_log;
#[cfg(feature = "rocksdb")]
mod openraft_rocks;
mod openraft_types;
mod plot;
mod receipts;
mod recovery;
mod report;
mod results;
mod runner;
mod stats;
mod suite;
mod system;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if args.core {
        eprintln!(
            "error: --core was folded into the main harness; its figures now come from\n  \
             cargo run --release -p flashlog-bench -- {}\n(see docs/benchmarks.md)",
            cli::CORE_FIGURES
        );
        return ExitCode::from(2);
    }
    if let Some(dir) = &args.crash_child {
        if let Err(err) = recovery::crash_child(dir) {
            eprintln!("error: {err}");
        }
        return ExitCode::from(2);
    }
    let result = match args.memory_child {
        Some(bytes) => memory::child(&args.dir, bytes),
        None => suite::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
