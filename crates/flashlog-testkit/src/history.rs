//! The history of a log under concurrent calls, and the checks every result of a
//! read, an iterator or a reopen must pass against it.
//!
//! Longer than 500 lines: one idea (the intervals a history derives and the checks
//! against them, which share its private state), and about 100 lines of its tests.
//!
//! Every call is stamped with two ticks of one global [`Clock`], taken just before
//! and just after it ([`Span`]). A call takes effect at some moment strictly inside
//! its span. From the spans of the calls that change the log (appends and the two
//! truncations) the [`History`] derives, for every entry ever appended, two
//! intervals: when it *may* have held its sequence number (from its append's start
//! to the latest moment something surely removed it) and when it *surely* did (from
//! its append's return to the earliest moment anything may have removed it). A
//! result is wrong only if no possible interleaving explains it:
//!
//! - an entry read for `seq` must be a version of `seq` that may have held it at
//!   some moment of the call (keys are unique, so the version is found by key);
//! - "not in the log" is wrong only if one version surely held `seq` throughout;
//! - an iterator yields consecutive sequence numbers, each an entry that may have
//!   held it between the start of the iterator's previous call (or its creation)
//!   and the end of this one; once an entry it yielded was surely removed by
//!   `truncate_back` before a call started, that call must return
//!   `Error::Truncated`, whose `first_cut` is a truncation's and at most the last
//!   sequence number yielded since; it then goes on from `first_cut`.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::Record;

/// A logical clock shared by every thread of a test: each tick is unique.
#[derive(Debug, Default)]
pub struct Clock(AtomicU64);

impl Clock {
    /// A clock whose first tick is 1 (0 stands for "before the test").
    pub fn new() -> Clock {
        Clock(AtomicU64::new(1))
    }

    /// The next tick.
    pub fn tick(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }

    /// Runs `call` between two ticks and returns its result with its span.
    pub fn time<T>(&self, call: impl FnOnce() -> T) -> (Span, T) {
        let start = self.tick();
        let result = call();
        (
            Span {
                start,
                end: self.tick(),
            },
            result,
        )
    }
}

/// The ticks taken just before and just after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Tick taken before the call.
    pub start: u64,
    /// Tick taken after it returned.
    pub end: u64,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.start, self.end)
    }
}

/// A call that changed (or may have changed) the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `append` or `append_batch` returned `Ok`: `records` hold the sequence numbers
    /// it returned.
    Append {
        /// The call's span.
        span: Span,
        /// The entries, in order.
        records: Vec<Record>,
    },
    /// `truncate_back(seq)` returned `Ok`.
    TruncateBack {
        /// The call's span.
        span: Span,
        /// Its argument: the first sequence number removed.
        seq: u64,
    },
    /// `truncate_front` returned `Ok(first)`.
    TruncateFront {
        /// The call's span.
        span: Span,
        /// The first sequence number it returned.
        first: u64,
    },
}

/// One entry ever held by the log, with the intervals (in ticks) in which it may
/// and surely held its sequence number.
#[derive(Debug, Clone)]
pub struct Version {
    /// The entry.
    pub record: Record,
    /// Its append's span (`0..0` for an entry there before the test).
    pub appended: Span,
    /// The latest tick by which something surely removed it (`u64::MAX`: nothing did).
    pub removed_by: u64,
    /// As `removed_by`, counting only removals by `truncate_back`.
    pub cut_by: u64,
    /// The earliest tick at which anything may have removed it.
    pub held_until: u64,
}

impl Version {
    /// Whether it may have held its sequence number at some tick in `from..=to`.
    pub fn may_hold(&self, from: u64, to: u64) -> bool {
        self.appended.start <= to && self.removed_by >= from
    }

    /// Whether it surely held its sequence number through all of `span`.
    pub fn surely_holds(&self, span: Span) -> bool {
        self.appended.end < span.start && self.held_until > span.end
    }
}

/// A result that no interleaving of the history explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// A short name of what went wrong, to group violations by.
    pub kind: &'static str,
    /// The sequence number concerned, for [`History::around`].
    pub seq: u64,
    /// The clock's tick at the end of the call concerned (`u64::MAX` after the
    /// test).
    pub tick: u64,
    /// What was seen and why it is wrong.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (seq {}): {}", self.kind, self.seq, self.detail)
    }
}

fn violation(tick: u64, kind: &'static str, seq: u64, detail: String) -> Violation {
    Violation {
        kind,
        seq,
        tick,
        detail,
    }
}

/// What one call of an iterator's `next` (or a seek) gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IterOutcome {
    /// `Some(Ok(entry))`.
    Entry(Record),
    /// `Some(Err(Error::Truncated { first_cut }))`.
    Truncated(u64),
    /// `Some(Err(Error::SeqOutOfRange { .. }))`.
    OutOfRange,
    /// `None`.
    End,
    /// `Iter::seek(seq)` (not a call of `next`).
    Seek(u64),
    /// Any other error, as text.
    Failed(String),
}

/// Everything an iterator gave, in order.
#[derive(Debug, Clone)]
pub struct IterTrace {
    /// The span of `iter_from`.
    pub created: Span,
    /// Its argument.
    pub from: u64,
    /// Each call and its outcome.
    pub steps: Vec<(Span, IterOutcome)>,
}

/// The history of one run: every version of every sequence number.
#[derive(Debug, Default)]
pub struct History {
    versions: HashMap<u64, Vec<Version>>,
    by_key: HashMap<Vec<u8>, (u64, usize)>,
    backs: Vec<(Span, u64)>,
    fronts: Vec<(Span, u64)>,
    /// The log's first sequence number before the test.
    initial_first: u64,
}

impl History {
    /// Builds the history from the entries the log held before the test (first
    /// sequence number and entries) and every change made during it.
    pub fn new(initial_first: u64, initial: &[Record], changes: &[Change]) -> History {
        let mut history = History {
            initial_first,
            ..History::default()
        };
        let before = Span { start: 0, end: 0 };
        let mut appends: Vec<(Span, &Record)> = initial.iter().map(|r| (before, r)).collect();
        for change in changes {
            match change {
                Change::Append { span, records } => {
                    appends.extend(records.iter().map(|record| (*span, record)));
                }
                Change::TruncateBack { span, seq } => history.backs.push((*span, *seq)),
                Change::TruncateFront { span, first } => history.fronts.push((*span, *first)),
            }
        }
        for (appended, record) in appends {
            let seq = record.seq;
            let (mut removed_by, mut cut_by, mut held_until) = (u64::MAX, u64::MAX, u64::MAX);
            for &(span, _) in history.backs.iter().filter(|(_, cut)| *cut <= seq) {
                if span.end > appended.start {
                    held_until = held_until.min(span.start);
                }
                if span.start > appended.end {
                    removed_by = removed_by.min(span.end);
                    cut_by = cut_by.min(span.end);
                }
            }
            // After truncate_front returned `first`, no entry before `first` can be
            // appended: every version below it was there before, and went.
            for &(span, _) in history.fronts.iter().filter(|(_, first)| seq < *first) {
                held_until = held_until.min(span.start);
                removed_by = removed_by.min(span.end);
            }
            let versions = history.versions.entry(seq).or_default();
            history
                .by_key
                .insert(record.key.clone(), (seq, versions.len()));
            versions.push(Version {
                record: record.clone(),
                appended,
                removed_by,
                cut_by,
                held_until,
            });
        }
        // A later version of the same sequence number means an earlier one was cut.
        for versions in history.versions.values_mut() {
            let spans: Vec<Span> = versions.iter().map(|v| v.appended).collect();
            for version in versions.iter_mut() {
                for later in spans.iter().filter(|s| s.start > version.appended.end) {
                    version.removed_by = version.removed_by.min(later.end);
                    version.cut_by = version.cut_by.min(later.end);
                }
            }
        }
        history
    }

    /// The versions of `seq`.
    pub fn versions(&self, seq: u64) -> &[Version] {
        self.versions.get(&seq).map_or(&[], Vec::as_slice)
    }

    /// Every sequence number that ever had a version.
    pub fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.versions.keys().copied()
    }

    /// The version an entry read for `seq` is, if it is one that may have held
    /// `seq` in `from..=to`.
    fn matching(&self, seq: u64, record: &Record, from: u64, to: u64) -> Result<&Version, String> {
        let Some(&(at, index)) = self.by_key.get(&record.key) else {
            return Err(format!(
                "an entry with key {:?} that was never appended",
                text(&record.key)
            ));
        };
        let version = &self.versions[&at][index];
        if record.seq != seq || at != seq {
            return Err(format!(
                "entry {} (key {:?}, appended as {at}) for seq {seq}",
                record.seq,
                text(&record.key)
            ));
        }
        if version.record != *record {
            return Err(format!(
                "key {:?} with other bytes than appended ({:?})",
                text(&record.key),
                record
            ));
        }
        if !version.may_hold(from, to) {
            return Err(format!(
                "key {:?}, which held {seq} only in ticks {}..={}, not in {from}..={to}",
                text(&record.key),
                version.appended.start,
                version.removed_by
            ));
        }
        Ok(version)
    }

    /// Whether some version surely held `seq` through all of `span`.
    fn surely_held(&self, seq: u64, span: Span) -> Option<&Version> {
        self.versions(seq).iter().find(|v| v.surely_holds(span))
    }

    /// Whether `seq` may have been before the log's first entry at some moment
    /// before `by` (it was before the test, or a `truncate_front` may have removed it).
    pub fn may_be_cut_in_front(&self, seq: u64, by: u64) -> bool {
        seq < self.initial_first
            || self
                .fronts
                .iter()
                .any(|&(span, first)| seq < first && span.start < by)
    }

    /// Checks the result of `read(seq)`; `Err(None)` stands for `SeqOutOfRange`.
    pub fn check_read(
        &self,
        span: Span,
        seq: u64,
        result: &Result<Record, Option<String>>,
    ) -> Result<(), Violation> {
        match result {
            Ok(record) => self
                .matching(seq, record, span.start, span.end)
                .map(drop)
                .map_err(|why| violation(span.end, "read returned a wrong entry", seq, why)),
            Err(None) => match self.surely_held(seq, span) {
                Some(v) => Err(violation(
                    span.end,
                    "read said SeqOutOfRange for an entry held throughout",
                    seq,
                    format!(
                        "{:?} held it from {} to {}, read {span}",
                        text(&v.record.key),
                        v.appended.end,
                        v.held_until
                    ),
                )),
                None => Ok(()),
            },
            Err(Some(error)) => Err(violation(
                span.end,
                "read failed",
                seq,
                format!("{error} (read {span})"),
            )),
        }
    }

    /// Checks the result of `wait_for(seq)`, which says whether the log reached
    /// `seq`: `true` needs a version that may have held `seq` during the call, or
    /// `seq` being before the first entry; `false` must not come while a version
    /// surely held `seq` throughout.
    pub fn check_wait(&self, span: Span, seq: u64, visible: bool) -> Result<(), Violation> {
        let may = self.may_be_cut_in_front(seq, span.end)
            || self
                .versions(seq)
                .iter()
                .any(|v| v.may_hold(span.start, span.end));
        match (visible, self.surely_held(seq, span)) {
            (true, _) if !may => Err(violation(
                span.end,
                "wait_for saw an entry that was not there",
                seq,
                format!("wait {span}"),
            )),
            (false, Some(v)) => Err(violation(
                span.end,
                "wait_for missed an entry held throughout",
                seq,
                format!(
                    "{:?} held it from {}, wait {span}",
                    text(&v.record.key),
                    v.appended.end
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Checks `iter_from(from)` returning `SeqOutOfRange`.
    pub fn check_iter_refused(&self, span: Span, from: u64) -> Result<(), Violation> {
        if self.may_be_cut_in_front(from, span.end) {
            return Ok(());
        }
        Err(violation(
            span.end,
            "iter_from said SeqOutOfRange, nothing before it was removed",
            from,
            format!("iter_from {span}"),
        ))
    }

    /// Checks everything an iterator gave; returns the first violation.
    pub fn check_iter(&self, trace: &IterTrace) -> Result<(), Violation> {
        let mut next = trace.from;
        let mut window_start = trace.created.start;
        // Entries yielded since the start, the last `Truncated` or seek: (seq, cut_by).
        let mut yielded: Vec<(u64, u64)> = Vec::new();
        for (index, (span, outcome)) in trace.steps.iter().enumerate() {
            let at = |what: String| format!("step {index} {span}: {what}");
            if let IterOutcome::Seek(seq) = outcome {
                next = *seq;
                yielded.clear();
                continue;
            }
            if !matches!(outcome, IterOutcome::Truncated(_)) {
                if let Some(&(seq, cut_by)) =
                    yielded.iter().find(|(_, cut_by)| *cut_by < span.start)
                {
                    return Err(violation(
                        span.end,
                        "iterator went on past a truncate_back without Error::Truncated",
                        seq,
                        at(format!(
                            "it had yielded {seq}, surely cut by tick {cut_by}, and now gave {}; trace from {} created {}: {}",
                            describe(outcome), trace.from, trace.created,
                            trace.steps.iter().map(|(s, o)| format!("{s} {}", describe(o))).collect::<Vec<_>>().join(" | ")
                        )),
                    ));
                }
            }
            match outcome {
                IterOutcome::Entry(record) => {
                    if record.seq != next {
                        return Err(violation(
                            span.end,
                            "iterator skipped or repeated a sequence number",
                            next,
                            at(format!("expected {next}, got {}", record.seq)),
                        ));
                    }
                    let version = self
                        .matching(next, record, window_start, span.end)
                        .map_err(|why| {
                            violation(span.end, "iterator yielded a wrong entry", next, at(why))
                        })?;
                    yielded.push((next, version.cut_by));
                    next += 1;
                }
                IterOutcome::Truncated(first_cut) => {
                    let cut_yielded = yielded.iter().any(|(seq, _)| seq >= first_cut);
                    let cut = self.backs.iter().any(|&(back, seq)| {
                        seq == *first_cut && back.end > trace.created.start && back.start < span.end
                    });
                    if !cut_yielded || !cut {
                        return Err(violation(span.end,
                            "iterator returned a Truncated it should not have",
                            *first_cut,
                            at(format!(
                                "first_cut {first_cut}; yielded {} since the last one, a truncate_back({first_cut}) during its life: {cut}",
                                describe_yielded(&yielded)
                            )),
                        ));
                    }
                    yielded.retain(|(seq, _)| seq < first_cut);
                    next = *first_cut;
                }
                IterOutcome::OutOfRange => {
                    if self.may_be_cut_in_front(next, span.end) {
                        return Ok(());
                    }
                    return Err(violation(
                        span.end,
                        "iterator said SeqOutOfRange, nothing was removed in front",
                        next,
                        at(String::new()),
                    ));
                }
                IterOutcome::End => {
                    if let Some(v) = self.surely_held(next, *span) {
                        return Err(violation(
                            span.end,
                            "iterator ended before an entry held throughout",
                            next,
                            at(format!(
                                "{:?} held it from {}",
                                text(&v.record.key),
                                v.appended.end
                            )),
                        ));
                    }
                }
                IterOutcome::Failed(error) => {
                    return Err(violation(
                        span.end,
                        "iterator failed",
                        next,
                        at(error.clone()),
                    ));
                }
                IterOutcome::Seek(_) => {}
            }
            window_start = span.start;
        }
        Ok(())
    }

    /// Checks what an iterator over a snapshot gave (a log opened read-only while
    /// the test ran, whose view is fixed at its open in `trace.created`): consecutive
    /// entries, each one that may have held its sequence number between the open's
    /// start and the end of the call that yielded it.
    pub fn check_snapshot(&self, trace: &IterTrace) -> Result<(), Violation> {
        let mut next = trace.from;
        for (index, (span, outcome)) in trace.steps.iter().enumerate() {
            let at = |what: String| format!("read-only step {index} {span}: {what}");
            match outcome {
                IterOutcome::Entry(record) if record.seq == next => {
                    self.matching(next, record, trace.created.start, span.end)
                        .map_err(|why| {
                            violation(
                                span.end,
                                "read-only log yielded a wrong entry",
                                next,
                                at(why),
                            )
                        })?;
                    next += 1;
                }
                IterOutcome::End => return Ok(()),
                other => {
                    return Err(violation(
                        span.end,
                        "read-only log's iterator failed",
                        next,
                        at(describe(other)),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Checks a log read whole after the test (every call had returned): each entry
    /// is a version nothing surely removed, and every version nothing may have
    /// removed is there.
    pub fn check_final(&self, first_seq: u64, entries: &[Record]) -> Result<(), Violation> {
        for (expected, record) in (first_seq..).zip(entries) {
            if record.seq != expected {
                return Err(violation(
                    u64::MAX,
                    "reopened log is not contiguous",
                    expected,
                    format!("expected {expected}, found {}", record.seq),
                ));
            }
            self.matching(record.seq, record, u64::MAX, u64::MAX)
                .map_err(|why| {
                    violation(
                        u64::MAX,
                        "reopened log holds a wrong entry",
                        record.seq,
                        why,
                    )
                })?;
        }
        let held: HashMap<u64, &Record> = entries.iter().map(|r| (r.seq, r)).collect();
        for (&seq, versions) in &self.versions {
            for version in versions.iter().filter(|v| v.held_until == u64::MAX) {
                if held.get(&seq) != Some(&&version.record) {
                    return Err(violation(
                        u64::MAX,
                        "reopened log lost an entry nothing removed",
                        seq,
                        format!(
                            "{:?}, appended {}",
                            text(&version.record.key),
                            version.appended
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The history near `seq`: every version of `seq - radius ..= seq + radius`
    /// and every truncation, as text for a failure message.
    pub fn around(&self, seq: u64, radius: u64) -> String {
        let mut out = String::new();
        for at in seq.saturating_sub(radius)..=seq.saturating_add(radius) {
            for v in self.versions(at) {
                let _ = writeln!(
                    out,
                    "  seq {at}: {:?} ({} bytes) appended {}, surely held {}..{}, may hold until {}, cut by {}",
                    text(&v.record.key),
                    v.record.value.len(),
                    v.appended,
                    v.appended.end,
                    tick(v.held_until),
                    tick(v.removed_by),
                    tick(v.cut_by),
                );
            }
        }
        for (span, cut) in self
            .backs
            .iter()
            .filter(|(_, cut)| cut.abs_diff(seq) <= radius * 4)
        {
            let _ = writeln!(out, "  truncate_back({cut}) {span}");
        }
        for (span, first) in self
            .fronts
            .iter()
            .filter(|(_, first)| first.abs_diff(seq) <= radius * 4)
        {
            let _ = writeln!(out, "  truncate_front -> first {first} {span}");
        }
        out
    }
}

fn tick(value: u64) -> String {
    if value == u64::MAX {
        "never".into()
    } else {
        value.to_string()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An outcome in a line: an entry by its sequence number and key.
fn describe(outcome: &IterOutcome) -> String {
    match outcome {
        IterOutcome::Entry(record) => format!("entry {} {:?}", record.seq, text(&record.key)),
        other => format!("{other:?}"),
    }
}

fn describe_yielded(yielded: &[(u64, u64)]) -> String {
    match (yielded.first(), yielded.last()) {
        (Some(first), Some(last)) => format!("{}..={}", first.0, last.0),
        _ => "nothing".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, key: &str) -> Record {
        Record::put(seq, key.as_bytes(), &[1, 2, 3])
    }

    fn span(start: u64, end: u64) -> Span {
        Span { start, end }
    }

    /// 1..=3 before the test; truncate_back(2) in 10..20; a new 2 in 30..40.
    fn cut_and_reappended() -> History {
        let initial = [record(1, "a"), record(2, "b"), record(3, "c")];
        let changes = [
            Change::TruncateBack {
                span: span(10, 20),
                seq: 2,
            },
            Change::Append {
                span: span(30, 40),
                records: vec![record(2, "B")],
            },
        ];
        History::new(1, &initial, &changes)
    }

    #[test]
    fn reads_must_match_a_version_of_their_moment() {
        let history = cut_and_reappended();
        // (span, what the read of 2 returned, whether some moment explains it)
        let reads = [
            ((5, 15), "b", true),
            ((25, 26), "b", false),
            ((35, 50), "B", true),
            ((5, 15), "c", false),
            ((5, 15), "zz", false),
        ];
        for ((start, end), key, explained) in reads {
            let checked = history.check_read(span(start, end), 2, &Ok(record(2, key)));
            assert_eq!(checked.is_ok(), explained, "{key:?} over {start}..{end}");
        }
        // Not there: fine while a truncation may have run, wrong before it.
        assert!(history.check_read(span(15, 25), 2, &Err(None)).is_ok());
        assert!(history.check_read(span(3, 5), 2, &Err(None)).is_err());
        assert!(history.check_read(span(45, 50), 2, &Err(None)).is_err());
        assert!(history
            .check_read(span(3, 5), 2, &Err(Some("corrupt".into())))
            .is_err());
    }

    #[test]
    fn iterators_must_report_a_truncation_of_what_they_yielded() {
        let history = cut_and_reappended();
        let trace = |steps: Vec<(Span, IterOutcome)>| IterTrace {
            created: span(1, 2),
            from: 1,
            steps,
        };
        let mixed = trace(vec![
            (span(3, 4), IterOutcome::Entry(record(1, "a"))),
            (span(5, 6), IterOutcome::Entry(record(2, "b"))),
            (span(45, 46), IterOutcome::Entry(record(3, "c"))),
        ]);
        let err = history.check_iter(&mixed).unwrap_err();
        assert_eq!(
            err.kind,
            "iterator went on past a truncate_back without Error::Truncated"
        );
        let reported = trace(vec![
            (span(3, 4), IterOutcome::Entry(record(1, "a"))),
            (span(5, 6), IterOutcome::Entry(record(2, "b"))),
            (span(45, 46), IterOutcome::Truncated(2)),
            (span(47, 48), IterOutcome::Entry(record(2, "B"))),
            (span(49, 50), IterOutcome::End),
        ]);
        history.check_iter(&reported).unwrap();
        let twice = trace(vec![
            (span(5, 6), IterOutcome::Entry(record(1, "a"))),
            (span(7, 8), IterOutcome::Entry(record(2, "b"))),
            (span(45, 46), IterOutcome::Truncated(2)),
            (span(47, 48), IterOutcome::Truncated(2)),
        ]);
        assert!(history.check_iter(&twice).is_err());
        let skipped = trace(vec![(span(3, 4), IterOutcome::Entry(record(2, "b")))]);
        assert!(history.check_iter(&skipped).is_err());
    }

    #[test]
    fn the_final_log_must_hold_what_nothing_removed() {
        let history = cut_and_reappended();
        history
            .check_final(1, &[record(1, "a"), record(2, "B")])
            .unwrap();
        assert!(history.check_final(1, &[record(1, "a")]).is_err());
        assert!(history
            .check_final(1, &[record(1, "a"), record(2, "b")])
            .is_err());
    }
}
