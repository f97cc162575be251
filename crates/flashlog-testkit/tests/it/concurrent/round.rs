//! Running a variant: rounds of workers, each closed while they run, then
//! reopened and checked.

use std::panic;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use flashlog_testkit::history::{Clock, History, Span, Violation};
use flashlog_testkit::{run_with_timeout, Call, Delay, DelayFs, Recovered, Rng};
use flashlog_wal::fs::{Fs, StdFs};
use flashlog_wal::{Options, Wal};

use super::checks::{check_round, Figures, Found, Timeline};
use super::worker::{Log, Round, Worker};
use super::{full, Disk, Variant, SEGMENT, THREADS, WORKER};
use crate::common::long;

static QUIET_WORKERS: Once = Once::new();

/// Keeps the panics of worker threads (recorded as violations) off the output.
fn quiet_worker_panics() {
    QUIET_WORKERS.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let worker = thread::current()
                .name()
                .is_some_and(|n| n.starts_with(WORKER));
            if !worker {
                previous(info);
            }
        }));
    });
}

fn base_dir(disk: Disk) -> Option<tempfile::TempDir> {
    match disk {
        Disk::Temp => Some(tempfile::tempdir().unwrap()),
        Disk::Shm if Path::new("/dev/shm").is_dir() => tempfile::tempdir_in("/dev/shm").ok(),
        Disk::Shm => None,
    }
}

/// Runs a variant for its time budget; panics with every kind of violation found.
pub(super) fn run_variant(variant: Variant) {
    quiet_worker_panics();
    // Every Linux has /dev/shm: a machine without one fails the variant rather
    // than passing it unrun.
    let Some(base) = base_dir(variant.disk) else {
        panic!("{}: cannot run: no /dev/shm", variant.name);
    };
    let dir = base.path().join("log");
    let budget = if long() {
        let secs = std::env::var("FLASHLOG_CONCURRENT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(180);
        Duration::from_secs(secs)
    } else {
        Duration::from_secs(3)
    };
    let round_length = if long() {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(1200)
    };
    let inner: Arc<dyn Fs> = Arc::new(StdFs);
    let fs: Arc<dyn Fs> = if variant.delays {
        let delays = DelayFs::everywhere(inner, variant.seed, 0.03, Duration::from_micros(300))
            .delay(
                Call::ReadAt,
                Delay::up_to(Duration::from_millis(1)).with_probability(0.3),
            )
            .delay(
                Call::Open,
                Delay::up_to(Duration::from_millis(1)).with_probability(0.3),
            )
            .delay(
                Call::Create,
                Delay::up_to(Duration::from_millis(1)).with_probability(0.3),
            );
        Arc::new(delays)
    } else {
        inner
    };
    let options = Options::default()
        .max_segment_size(SEGMENT)
        .sync_policy(variant.policy)
        .fs(fs);
    let started = Instant::now();
    let mut figures = Figures::default();
    let mut found = Found::default();
    let mut previous: Option<History> = None;
    let mut rng = Rng::new(variant.seed);
    while started.elapsed() < budget {
        figures.rounds += 1;
        let wal = match Wal::open(&dir, options.clone()) {
            Ok(wal) => Arc::new(wal),
            Err(err) => {
                let violation = Violation {
                    kind: "reopening after a round failed",
                    seq: 0,
                    tick: u64::MAX,
                    detail: full(&err),
                };
                found.add(violation, None, started.elapsed());
                break;
            }
        };
        let initial = Recovered::read(&wal).unwrap();
        if let Some(history) = &previous {
            figures.checks += initial.entries.len() as u64 + 1;
            if let Err(violation) = history.check_final(initial.first_seq, &initial.entries) {
                found.add(violation, Some(history), started.elapsed());
            }
        }
        let round = Arc::new(Round {
            wal,
            dir: dir.clone(),
            options: options.clone(),
            clock: Arc::new(Clock::new()),
            stop: AtomicBool::new(false),
            round: figures.rounds,
        });
        let seeds: Vec<u64> = (0..THREADS).map(|_| rng.next_u64()).collect();
        let limit = round_length + Duration::from_secs(60);
        let ran = {
            let round = Arc::clone(&round);
            run_with_timeout(limit, move || {
                play_round(&round, &seeds, round_length, started)
            })
        };
        let (logs, close, timeline) = match ran {
            Ok(ran) => ran,
            Err(err) => {
                let violation = Violation {
                    kind: "a round hung or panicked",
                    seq: 0,
                    tick: u64::MAX,
                    detail: err.to_string(),
                };
                found.add(violation, None, started.elapsed());
                break;
            }
        };
        let history = check_round(&initial, logs, close, &mut figures, &mut found, &timeline);
        previous = Some(history);
        drop(round);
    }
    if let Some(history) = &previous {
        if let Ok(wal) = Wal::open(&dir, options.clone()) {
            let last = Recovered::read(&wal).unwrap();
            figures.checks += last.entries.len() as u64 + 1;
            if let Err(violation) = history.check_final(last.first_seq, &last.entries) {
                found.add(violation, Some(history), started.elapsed());
            }
            wal.close().unwrap();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let total: u64 = figures
        .ops
        .iter()
        .filter(|(name, _)| !name.starts_with("read-only reads"))
        .map(|(_, count)| count)
        .sum();
    eprintln!(
        "{}: seed {}, {} rounds, {seconds:.1} s, {total} calls {:?}, {} checks",
        variant.name, variant.seed, figures.rounds, figures.ops, figures.checks
    );
    if found.by_kind.is_empty() {
        return;
    }
    let mut report = format!(
        "{}: seed {} (FLASHLOG_SEED to repeat the choices), violations by kind:\n",
        variant.name, variant.seed
    );
    for (kind, (count, first, around, after)) in &found.by_kind {
        report.push_str(&format!(
            "- {kind}: {count} times, first found {:.2} s into the run:\n  {first}\n{around}",
            after.as_secs_f64()
        ));
    }
    panic!("{report}");
}

/// Runs the workers for `length`, then closes the log while they still run.
fn play_round(
    round: &Arc<Round>,
    seeds: &[u64],
    length: Duration,
    started: Instant,
) -> (Vec<Log>, (Span, Instant), Timeline) {
    let workers: Vec<_> = seeds
        .iter()
        .enumerate()
        .map(|(id, &seed)| {
            let round = Arc::clone(round);
            thread::Builder::new()
                .name(format!("{WORKER}{id}"))
                .spawn(move || {
                    let worker = Worker {
                        id,
                        round: &round,
                        rng: Rng::new(seed),
                        appended: 0,
                        log: Log::default(),
                    };
                    worker.run()
                })
                .unwrap()
        })
        .collect();
    let mut timeline = Timeline::default();
    let playing = Instant::now();
    while playing.elapsed() < length {
        timeline.0.push((round.clock.tick(), started.elapsed()));
        thread::sleep(Duration::from_millis(5));
    }
    let (span, closed) = round.clock.time(|| round.wal.close());
    let closed_at = Instant::now();
    round.stop.store(true, Ordering::SeqCst);
    let mut logs: Vec<Log> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    if let Err(err) = closed {
        logs[0].violations.push(Violation {
            kind: "close failed",
            seq: 0,
            tick: span.end,
            detail: full(&err),
        });
    }
    (logs, (span, closed_at), timeline)
}
