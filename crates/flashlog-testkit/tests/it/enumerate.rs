//! Exhaustive crash enumeration: every workload of one to three steps, crashed
//! after every mutating I/O call, under every crash model, reopened and checked.

use std::collections::{BTreeMap, HashSet};

use flashlog_testkit::{CrashModel, LogModel, SimFs};
use flashlog_wal::{SyncPolicy, Wal};

use crate::common::{long, options, verify_image, Driver, Outcome, Step, DIR};

/// Small enough that two entries fill a segment and truncations remove segments.
const SEGMENT: u64 = 64;

/// A log of four entries in two segments, everything durable, and its model.
fn base(policy: SyncPolicy) -> (SimFs, LogModel) {
    let sim = SimFs::new();
    let wal = Wal::open(DIR, options(&sim, SEGMENT, policy)).unwrap();
    let mut driver = Driver::new(LogModel::new(), policy);
    for _ in 0..4 {
        assert!(driver.step(&wal, Step::Append));
    }
    assert!(driver.close(&wal));
    let image = sim.crash(CrashModel::DropUnsynced);
    (image, driver.model)
}

/// Runs a workload on a copy of `base`, frozen after `crash_at` mutations if given.
/// Returns the frozen file system, the model, and any contract-4 or sequence
/// number complaint.
fn run(
    base: &SimFs,
    model: &LogModel,
    workload: &[Step],
    policy: SyncPolicy,
    crash_at: Option<u64>,
) -> (SimFs, LogModel, Vec<String>) {
    let sim = base.snapshot();
    sim.crash_after(crash_at);
    let mut driver = Driver::new(model.clone(), policy);
    driver.issued = 100;
    let mut complaints = Vec::new();
    if let Ok(wal) = Wal::open(DIR, options(&sim, SEGMENT, policy)) {
        let mut failed = false;
        for &step in workload {
            let ok = driver.step(&wal, step);
            if ok && failed {
                complaints.push(format!("{step:?} succeeded after an earlier failure"));
            }
            failed |= !ok;
        }
        driver.close(&wal);
    }
    complaints.append(&mut driver.wrong_seq);
    (sim, driver.model, complaints)
}

fn workloads() -> Vec<Vec<Step>> {
    let mut all: Vec<Vec<Step>> = vec![Vec::new()];
    let mut out = Vec::new();
    for _ in 0..3 {
        let mut next = Vec::new();
        for prefix in &all {
            for step in Step::ALL {
                let mut w = prefix.clone();
                w.push(step);
                next.push(w);
            }
        }
        out.extend(next.iter().cloned());
        all = next;
    }
    out
}

#[derive(Default)]
struct Tally {
    workloads: u64,
    crash_points: u64,
    images: u64,
    duplicates: u64,
    by_model: BTreeMap<(&'static str, &'static str), u64>,
    failures: Vec<String>,
}

fn enumerate(policy: SyncPolicy, seeds: &[u64], tally: &mut Tally) {
    let (base, model) = base(policy);
    for workload in workloads() {
        tally.workloads += 1;
        let (clean, _, _) = run(&base, &model, &workload, policy, None);
        let ops = clean.mutations();
        for k in 0..=ops {
            tally.crash_points += 1;
            let (frozen, model, complaints) = run(&base, &model, &workload, policy, Some(k));
            for complaint in complaints {
                tally.failures.push(format!(
                    "{policy:?} {workload:?} crash after {k}: {complaint}"
                ));
            }
            let mut seen = HashSet::new();
            for crash in CrashModel::all(frozen.pending().len(), seeds) {
                let image = frozen.crash(crash);
                if !seen.insert(image.durable_fingerprint()) {
                    tally.duplicates += 1;
                    continue;
                }
                tally.images += 1;
                let outcome = verify_image(&image, &model, SEGMENT);
                let label = match &outcome {
                    Outcome::Ok => "ok",
                    Outcome::CorruptUnacked => "corrupt-unacked",
                    Outcome::Failed(_) => "FAILED",
                };
                *tally.by_model.entry((crash.name(), label)).or_default() += 1;
                if let Outcome::Failed(why) = outcome {
                    tally.failures.push(format!(
                        "{policy:?} {workload:?} crash after {k} of {ops}, {crash:?}: {why}"
                    ));
                }
            }
        }
    }
}

fn report(policy: SyncPolicy, tally: &Tally) {
    println!(
        "crash enumeration {policy:?}: {} workloads, {} crash points, {} images checked ({} duplicates skipped), {} failures",
        tally.workloads,
        tally.crash_points,
        tally.images,
        tally.duplicates,
        tally.failures.len()
    );
    for ((model, outcome), count) in &tally.by_model {
        println!("  {model:>14} {outcome:<16} {count}");
    }
    // The first few failures of each crash model.
    let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
    for failure in &tally.failures {
        let model = ["DropUnsynced", "RandomSubset", "TornSectors", "DropOne"]
            .into_iter()
            .find(|m| failure.contains(m))
            .unwrap_or("other");
        let count = shown.entry(model).or_default();
        *count += 1;
        if *count <= 5 {
            println!("  FAILURE {failure}");
        }
    }
}

fn seeds() -> Vec<u64> {
    if long() {
        (1..=8).collect()
    } else {
        // CI: one random-subset and one torn image per crash point (the drop-all
        // and every drop-one image always run).
        vec![1]
    }
}

/// Every workload under `policy`, crashed everywhere: no failure, every workload.
fn enumerate_clean(policy: SyncPolicy) -> Tally {
    let mut tally = Tally::default();
    enumerate(policy, &seeds(), &mut tally);
    report(policy, &tally);
    assert!(
        tally.failures.is_empty(),
        "{} failures",
        tally.failures.len()
    );
    assert_eq!(tally.workloads, 6 + 36 + 216);
    tally
}

#[test]
fn every_three_step_workload_survives_every_crash_under_always() {
    let tally = enumerate_clean(SyncPolicy::Always);
    // Under Always a crash can only cut the one group in flight, which leaves a torn
    // tail: never damage followed by valid entries.
    let corrupt: u64 = tally
        .by_model
        .iter()
        .filter(|((_, outcome), _)| *outcome == "corrupt-unacked")
        .map(|(_, count)| count)
        .sum();
    assert_eq!(corrupt, 0);
}

#[test]
fn every_three_step_workload_survives_every_crash_under_manual() {
    enumerate_clean(SyncPolicy::Manual);
}
