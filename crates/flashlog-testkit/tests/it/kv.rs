//! Crash enumeration of the key-value store (crates/flashlog-kv): every workload of
//! up to three steps from {put, delete, compact} after a few puts that fill sealed
//! segments, crashed after every mutation under every crash model. The store must
//! reopen to the state after some prefix of the issued steps that holds every
//! acknowledged one (compaction changes no contents).

use std::collections::HashSet;
use std::sync::Arc;

use flashlog_kv::{AutoCompact, Db, DbOptions};
use flashlog_testkit::kv_model::{kv_contents, KvModel};
use flashlog_testkit::{CrashModel, SimFs};
use flashlog_wal::{Options, SyncPolicy};

use crate::common::{long, value};

const DIR: &str = "/sim/kv";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KvStep {
    Put,
    Delete,
    Compact,
}

/// What the store holds after a step.
type State = KvModel;

fn db_options(sim: &SimFs) -> DbOptions {
    DbOptions::default()
        .wal(
            Options::default()
                .sync_policy(SyncPolicy::Always)
                .max_segment_size(96)
                .fs(Arc::new(sim.clone())),
        )
        .auto_compact(AutoCompact::Never)
}

/// Runs the workload; returns the states after each issued step (index 0: before
/// any) and how many steps were acknowledged.
fn run(base: &SimFs, steps: &[KvStep], crash_at: Option<u64>) -> (SimFs, Vec<State>, usize) {
    let sim = base.snapshot();
    sim.crash_after(crash_at);
    let mut state: State = (0..4u64)
        .map(|n| (format!("k{}", n % 2).into_bytes(), value(n, 8)))
        .collect();
    let mut states = vec![state.clone()];
    let mut acked = 0;
    if let Ok(db) = Db::open(DIR, db_options(&sim)) {
        for (i, step) in steps.iter().enumerate() {
            let key = format!("k{}", i % 2).into_bytes();
            let ok = match step {
                KvStep::Put => {
                    let v = value(50 + i as u64, 8);
                    state.insert(key.clone(), v.clone());
                    db.put(&key, &v).is_ok()
                }
                KvStep::Delete => {
                    state.remove(&key);
                    db.delete(&key).is_ok()
                }
                KvStep::Compact => db.compact().is_ok(),
            };
            states.push(state.clone());
            if !ok {
                break;
            }
            acked = i + 1;
        }
    }
    (sim, states, acked)
}

/// Kv steps in the enumeration.
#[test]
fn every_three_step_kv_workload_survives_every_crash() {
    let base = SimFs::new();
    {
        let db = Db::open(DIR, db_options(&base)).unwrap();
        for n in 0..4u64 {
            db.put(format!("k{}", n % 2).as_bytes(), &value(n, 8))
                .unwrap();
        }
        db.close().unwrap();
    }
    let base = base.crash(CrashModel::DropUnsynced);
    let all = [KvStep::Put, KvStep::Delete, KvStep::Compact];
    let mut workloads: Vec<Vec<KvStep>> = Vec::new();
    for a in all {
        workloads.push(vec![a]);
        for b in all {
            workloads.push(vec![a, b]);
            for c in all {
                workloads.push(vec![a, b, c]);
            }
        }
    }
    let seeds: Vec<u64> = if long() { (1..=8).collect() } else { vec![1] };
    let (mut points, mut images, mut failures) = (0u64, 0u64, Vec::new());
    for steps in &workloads {
        let ops = run(&base, steps, None).0.mutations();
        for k in 0..=ops {
            points += 1;
            let (frozen, states, acked) = run(&base, steps, Some(k));
            let mut seen = HashSet::new();
            for crash in CrashModel::all(frozen.pending().len(), &seeds) {
                let image = frozen.crash(crash);
                if !seen.insert(image.durable_fingerprint()) {
                    continue;
                }
                images += 1;
                match Db::open(DIR, db_options(&image)) {
                    Ok(db) => {
                        let found = kv_contents(&db);
                        if !states[acked..].contains(&found) {
                            failures.push(format!(
                                "{steps:?} crash after {k}, {crash:?}: {found:?} is not a state after step {acked} or later"
                            ));
                        }
                    }
                    Err(err) => {
                        failures.push(format!("{steps:?} crash after {k}, {crash:?}: {err}"))
                    }
                }
            }
        }
    }
    println!(
        "kv crash enumeration: {} workloads, {points} crash points, {images} images, {} failures",
        workloads.len(),
        failures.len()
    );
    for failure in failures.iter().take(10) {
        println!("  FAILURE {failure}");
    }
    assert!(failures.is_empty(), "{} failures", failures.len());
}
