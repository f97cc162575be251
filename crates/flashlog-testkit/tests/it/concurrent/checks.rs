//! The checks of a round: its history built from the workers' logs, every
//! result checked against it, violations gathered by kind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flashlog_testkit::history::{Change, History, Span, Violation};
use flashlog_testkit::Recovered;

use super::worker::Log;
use super::PROMPT;

/// Totals of a variant, printed in the long run.
#[derive(Default)]
pub(super) struct Figures {
    pub(super) ops: BTreeMap<&'static str, u64>,
    pub(super) checks: u64,
    pub(super) rounds: u64,
}

/// The violations of a variant by kind: how many, the first one, when it was found.
#[derive(Default)]
pub(super) struct Found {
    pub(super) by_kind: BTreeMap<&'static str, (u64, Violation, String, Duration)>,
}

impl Found {
    /// Counts `violation`, keeping the earliest of its kind.
    pub(super) fn add(&mut self, violation: Violation, history: Option<&History>, after: Duration) {
        let around = |v: &Violation| history.map(|h| h.around(v.seq, 3)).unwrap_or_default();
        match self.by_kind.get_mut(violation.kind) {
            Some((count, first, first_around, first_after)) => {
                *count += 1;
                if after < *first_after {
                    *first_around = around(&violation);
                    (*first, *first_after) = (violation, after);
                }
            }
            None => {
                let text = around(&violation);
                self.by_kind
                    .insert(violation.kind, (1, violation, text, after));
            }
        }
    }
}

/// When ticks of a round's clock were taken, as time since the variant started.
#[derive(Default)]
pub(super) struct Timeline(pub(super) Vec<(u64, Duration)>);

impl Timeline {
    /// About when `tick` was taken (the last sample before it).
    pub(super) fn time(&self, tick: u64) -> Duration {
        let after = self.0.partition_point(|(sampled, _)| *sampled <= tick);
        match after.checked_sub(1).and_then(|i| self.0.get(i)) {
            Some(&(_, time)) if tick != u64::MAX => time,
            _ => self.0.last().map_or(Duration::ZERO, |&(_, time)| time),
        }
    }
}

/// Builds a round's history and checks every result of it.
pub(super) fn check_round(
    initial: &Recovered,
    logs: Vec<Log>,
    (close, closed_at): (Span, Instant),
    figures: &mut Figures,
    found: &mut Found,
    timeline: &Timeline,
) -> History {
    let changes: Vec<Change> = logs
        .iter()
        .flat_map(|log| log.changes.iter().cloned())
        .collect();
    let history = History::new(initial.first_seq, &initial.entries, &changes);
    let mut report = |result: Result<(), Violation>, figures: &mut Figures| {
        figures.checks += 1;
        if let Err(violation) = result {
            let after = timeline.time(violation.tick);
            found.add(violation, Some(&history), after);
        }
    };
    for log in logs {
        for (name, count) in log.ops {
            *figures.ops.entry(name).or_default() += count;
        }
        for violation in log.violations {
            report(Err(violation), figures);
        }
        for (span, seq, result) in &log.reads {
            report(history.check_read(*span, *seq, result), figures);
        }
        for (span, seq, visible) in &log.waits {
            report(history.check_wait(*span, *seq, *visible), figures);
        }
        for trace in &log.iters {
            figures.checks += trace.steps.len() as u64;
            report(history.check_iter(trace), figures);
        }
        for trace in &log.snapshots {
            figures.checks += trace.steps.len() as u64;
            report(history.check_snapshot(trace), figures);
        }
        for (span, from) in &log.refused_iters {
            report(history.check_iter_refused(*span, *from), figures);
        }
        for (span, seq) in &log.refused_backs {
            let refused = if history.may_be_cut_in_front(*seq, span.end) {
                Ok(())
            } else {
                Err(Violation {
                    kind: "truncate_back said SeqOutOfRange, nothing before it was removed",
                    seq: *seq,
                    tick: span.end,
                    detail: format!("{span}"),
                })
            };
            report(refused, figures);
        }
        for (span, call) in &log.closed {
            let in_time = span.end >= close.start;
            let kind = "a call said Closed before close began";
            let detail = || format!("{call} {span}, close {close}");
            report(unless(in_time, kind, span.end, detail), figures);
        }
        for (ended, call) in &log.blocking_ends {
            let late = ended.saturating_duration_since(closed_at);
            let kind = "a blocked call did not return promptly on close";
            let detail = || format!("{call} returned {late:?} after close");
            report(unless(late <= PROMPT, kind, close.end, detail), figures);
        }
    }
    history
}

/// `Ok` when `holds`, else a violation of `kind` at `tick` (of no one entry).
fn unless(
    holds: bool,
    kind: &'static str,
    tick: u64,
    detail: impl FnOnce() -> String,
) -> Result<(), Violation> {
    if holds {
        return Ok(());
    }
    Err(Violation {
        kind,
        seq: 0,
        tick,
        detail: detail(),
    })
}
