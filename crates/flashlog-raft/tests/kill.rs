//! SIGKILL cycles through the store (issue 17): this test binary re-runs itself as a
//! child (flashlog-testkit's child harness) that opens a `LogStore` and, until it is
//! killed, appends batches of entries (`append ... ` before each `append` call, `ack
//! INDEX TERM` for each entry once the flush callback says `Ok`), now and then saves
//! a vote (`vote TERM NODE` once `save_vote` returned) and purges up to an
//! acknowledged index (`purge INDEX` once `purge` returned). The parent kills it with
//! SIGKILL at a random moment, reopens the store and checks that
//! 1. every acknowledged entry not purged is readable, with the payload derived from
//!    its index and term, and so is every entry the last check read;
//! 2. the readable entries are contiguous from the one after the last purged log id
//!    to the last, each one an entry some child appended (nothing phantom: no index
//!    past the last announced, no other term, no other payload);
//! 3. the vote is at least the last acknowledged one (and at most one further);
//! 4. `get_log_state` agrees: `last_log_id` is the last readable entry's id (the
//!    purged id if none is left), `last_purged_log_id` is at least the last
//!    acknowledged purge.
//!
//! The next cycle's child continues on the same directory after the last readable
//! index, with a higher term; now and then the run starts on a fresh directory.
//! `FLASHLOG_RAFT_KILL_CYCLES=N` sets the number of cycles (default 120, about 10 s,
//! `FLASHLOG_LONG=1` makes it 2,000), `FLASHLOG_KILL_SEED=S` replays a run.
//!
//! A SIGKILL keeps what the child wrote to the page cache: this finds an `Ok` (or a
//! returned `save_vote`/`purge`) given before the write reached the file, and any
//! state the reopen gets wrong; a missing fsync needs a power cut (`tests/crash.rs`).

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flashlog_raft::LogStore;
use flashlog_testkit::child::{child_role, or_exit, work_until_killed, ChildTest, KillRun, Say};
use flashlog_testkit::Rng;
use flashlog_wal::Options;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::testing::log_id;
use openraft::type_config::alias::{EntryOf, VoteOf};
use openraft::type_config::TypeConfigExt;
use openraft::{EntryPayload, RaftLogReader};

openraft::declare_raft_types!(
    pub TypeConfig:
        D = String,
        R = String,
);

type C = TypeConfig;

const TEST_NAME: &str = "sigkill_cycles";
/// The node id of every entry's leader.
const NODE: u64 = 1;
/// Votes are `(term, term % VOTE_NODES)`.
const VOTE_NODES: u64 = 5;
/// The child waits when this many appended entries are not acknowledged yet.
const WINDOW: u64 = 512;
/// Start a fresh directory once the log holds this many readable entries.
const MAX_LOG_ENTRIES: usize = 20_000;

fn options() -> Options {
    // Small segments, so that purges remove whole ones.
    Options::default().max_segment_size(16 << 10)
}

/// The payload of the entry at `index` appended in `term`.
fn payload(index: u64, term: u64) -> String {
    format!("entry {index} of term {term}")
}

fn entry(index: u64, term: u64) -> EntryOf<C> {
    EntryOf::<C>::new_normal(log_id::<C>(term, NODE, index), payload(index, term))
}

fn vote(term: u64) -> VoteOf<C> {
    VoteOf::<C>::new(term, term % VOTE_NODES)
}

#[test]
fn sigkill_cycles() {
    if let Some(role) = child_role() {
        child(&role.dir, role.arg);
    }
    let run = KillRun::from_env("FLASHLOG_RAFT_KILL_CYCLES", 2_000, 120, 0x00F1_A5E1);
    let seed = run.seed;
    let totals = run_cycles(run);
    println!(
        "raft kill (seed {seed}): {} cycles ({} fresh), {} acks checked, {} entries \
         verified, {} votes, {} purges, lost 0, phantoms 0, {:.1} s",
        totals.cycles,
        totals.fresh,
        totals.acks,
        totals.verified,
        totals.votes,
        totals.purges,
        totals.elapsed.as_secs_f64()
    );
}

/// The child: appends in `term` after the last readable entry, votes and purges,
/// until killed.
fn child(dir: &Path, term: u64) -> ! {
    let runtime = or_exit(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build(),
        "building the runtime",
        3,
    );
    runtime.block_on(work(dir, term));
    work_until_killed();
}

async fn work(dir: &Path, term: u64) {
    let say = Arc::new(Say::stdout());
    let mut store = or_exit(LogStore::<C>::open(dir, options()), "opening the store", 3);
    let state = or_exit(store.get_log_state().await, "get_log_state", 3);
    let mut next = state.last_log_id.map_or(0, |id| id.index() + 1);
    let mut purged = state.last_purged_log_id.map(|id| id.index());
    let read = or_exit(store.read_vote().await, "read_vote", 3);
    let mut vote_term = read.map_or(0, |v| v.leader_id.term);
    // One past the highest acknowledged index (0: none yet).
    let acked = Arc::new(AtomicU64::new(0));
    let mut rng = Rng::new(term.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    say.line(format_args!("ready {next}"));
    loop {
        let count = rng.range(1, 8);
        let (first, last) = (next, next + count - 1);
        say.line(format_args!("append {first} {last} {term}"));
        let (tx, rx) = C::oneshot();
        let entries: Vec<EntryOf<C>> = (first..=last).map(|i| entry(i, term)).collect();
        or_exit(
            store.append(entries, IOFlushed::signal(tx)).await,
            "append",
            4,
        );
        let (say_ack, acked_ack) = (Arc::clone(&say), Arc::clone(&acked));
        tokio::spawn(async move {
            match rx.await {
                Ok(Ok(())) => {
                    for index in first..=last {
                        say_ack.line(format_args!("ack {index} {term}"));
                    }
                    acked_ack.fetch_max(last + 1, Ordering::SeqCst);
                }
                Ok(Err(err)) => or_exit(Err(err), "an append's callback", 4),
                Err(err) => or_exit(Err(err), "an append's callback", 4),
            }
        });
        next = last + 1;
        while next.saturating_sub(acked.load(Ordering::SeqCst)) > WINDOW {
            std::thread::sleep(Duration::from_micros(200));
        }
        match rng.below(40) {
            0 => {
                vote_term += 1;
                or_exit(store.save_vote(&vote(vote_term)).await, "save_vote", 4);
                say.line(format_args!("vote {vote_term} {}", vote_term % VOTE_NODES));
            }
            1 => {
                // Up to an acknowledged index, a few entries back from the last.
                let Some(top) = acked.load(Ordering::SeqCst).checked_sub(1) else {
                    continue;
                };
                let target = top.saturating_sub(rng.below(64));
                if purged.is_some_and(|p| p >= target) {
                    continue;
                }
                let found = or_exit(
                    store.try_get_log_entries(target..target + 1).await,
                    "reading the entry to purge to",
                    4,
                );
                let Some(at) = found.first() else {
                    or_exit(Err(format!("index {target} unreadable")), "purge", 4)
                };
                or_exit(store.purge(at.log_id()).await, "purge", 4);
                purged = Some(target);
                say.line(format_args!("purge {target}"));
            }
            _ => {}
        }
    }
}

/// What a child's lines say.
#[derive(Debug, Default)]
struct Report {
    /// Every index an `append` was called for, with its term.
    appended: HashMap<u64, u64>,
    /// Every acknowledged index, with its term.
    acks: Vec<(u64, u64)>,
    /// The terms of the votes `save_vote` returned for, in order.
    votes: Vec<u64>,
    /// The indices purges returned for, in order.
    purges: Vec<u64>,
}

fn parse(lines: &[String], context: &str) -> Report {
    let mut report = Report::default();
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        let num = |k: usize| -> u64 {
            fields
                .get(k)
                .and_then(|f| f.parse().ok())
                .unwrap_or_else(|| panic!("{context}: bad line {line:?}"))
        };
        match fields[0] {
            "append" => {
                for index in num(1)..=num(2) {
                    report.appended.insert(index, num(3));
                }
            }
            "ack" => report.acks.push((num(1), num(2))),
            "vote" => {
                assert_eq!(num(2), num(1) % VOTE_NODES, "{context}: {line}");
                report.votes.push(num(1));
            }
            "purge" => report.purges.push(num(1)),
            _ => {}
        }
    }
    report
}

#[derive(Debug, Default)]
struct Totals {
    cycles: u64,
    fresh: u64,
    acks: u64,
    verified: u64,
    votes: u64,
    purges: u64,
    elapsed: Duration,
}

/// What the parent knows the directory holds, as the last check read it.
#[derive(Debug, Default)]
struct Known {
    /// Every readable entry: index to term.
    entries: BTreeMap<u64, u64>,
    /// The vote's term (0: none).
    vote_term: u64,
    /// The last purged index.
    purged: Option<u64>,
}

fn run_cycles(mut run: KillRun) -> Totals {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut totals = Totals::default();
    let mut tmp = tempfile::tempdir().expect("temporary directory");
    let mut known = Known::default();
    for cycle in 0..run.cycles {
        if cycle > 0 && (known.entries.len() > MAX_LOG_ENTRIES || run.rng.below(10) == 0) {
            tmp = tempfile::tempdir().expect("temporary directory");
            known = Known::default();
            totals.fresh += 1;
        }
        let context = run.context(cycle, tmp.path());
        // Terms grow across the run, fresh directories or not.
        let term = cycle + 1;
        let child = ChildTest::spawn(TEST_NAME, tmp.path(), term);
        let mut lines = Vec::new();
        // Mostly killed once it is working (its start-up takes longer than the
        // kill window), now and then while it starts or recovers.
        if run.rng.below(4) != 0 {
            let line = child
                .next_line(Duration::from_secs(20))
                .unwrap_or_else(|err| panic!("{context}: no line from the child: {err:?}"));
            lines.push(line);
        }
        lines.extend(child.kill_after(Duration::from_millis(run.rng.range(5, 60))));
        let report = parse(&lines, &context);
        known = runtime.block_on(verify(tmp.path(), &known, &report, &context));
        totals.acks += report.acks.len() as u64;
        totals.votes += report.votes.len() as u64;
        totals.purges += report.purges.len() as u64;
        totals.verified += known.entries.len() as u64;
        totals.cycles += 1;
    }
    totals.elapsed = run.began.elapsed();
    totals
}

/// Reopens the store, checks it against what was known and what the child
/// reported, and returns what is known now.
async fn verify(dir: &Path, known: &Known, report: &Report, context: &str) -> Known {
    let mut store = LogStore::<C>::open(dir, options())
        .unwrap_or_else(|err| panic!("{context}: reopen failed: {err}"));
    let state = store.get_log_state().await.expect("get_log_state");
    let purged = state.last_purged_log_id.map(|id| id.index());

    // The purge: at least the last acknowledged one, never moving back.
    let floor = report.purges.iter().copied().max().max(known.purged);
    assert!(
        purged >= floor,
        "{context}: last purged {purged:?}, but a purge to {floor:?} returned"
    );

    // The readable entries: contiguous from the one after the purged ones, each
    // appended by some child with the payload of its index and term.
    let entries = store.try_get_log_entries(..).await.expect("read the log");
    let first = purged.map_or(0, |p| p + 1);
    let mut readable = BTreeMap::new();
    for (k, e) in entries.iter().enumerate() {
        let index = e.index();
        assert_eq!(
            index,
            first + k as u64,
            "{context}: the readable entries are not contiguous from {first}"
        );
        let term = e.log_id().leader_id.term;
        let expected = report
            .appended
            .get(&index)
            .or_else(|| known.entries.get(&index));
        assert_eq!(
            expected,
            Some(&term),
            "{context}: phantom entry at index {index} (term {term})"
        );
        match &e.payload {
            EntryPayload::Normal(data) if *data == payload(index, term) => {}
            other => panic!("{context}: index {index}: wrong payload {other:?}"),
        }
        readable.insert(index, term);
    }

    // Nothing lost: every entry read last time and every acknowledged one is still
    // there, unless purged.
    let acked = report.acks.iter().copied();
    for (index, term) in known.entries.iter().map(|(&i, &t)| (i, t)).chain(acked) {
        if purged.is_some_and(|p| index <= p) {
            continue;
        }
        assert_eq!(
            readable.get(&index),
            Some(&term),
            "{context}: lost the entry at index {index} (term {term})"
        );
    }

    // The log state agrees with what is readable.
    let last = entries.last().map(|e| e.log_id());
    assert_eq!(
        state.last_log_id,
        last.or(state.last_purged_log_id),
        "{context}: get_log_state's last_log_id"
    );

    // The vote: at least the last acknowledged one, at most one save further.
    let vote_floor = report
        .votes
        .last()
        .copied()
        .unwrap_or(0)
        .max(known.vote_term);
    let read = store.read_vote().await.expect("read_vote");
    let vote_term = read.as_ref().map_or(0, |v| v.leader_id.term);
    assert!(
        vote_term >= vote_floor && vote_term <= vote_floor + 1,
        "{context}: vote {read:?}, but the last saved was of term {vote_floor}"
    );
    if vote_term > 0 {
        assert_eq!(read, Some(vote(vote_term)), "{context}: the vote");
    }

    Known {
        entries: readable,
        vote_term,
        purged,
    }
}
