//! `flashlog tail`: the last entries of the log, as `dump` prints them; with
//! `-f`, also every entry another process appends, until interrupted.
//!
//! Following never takes the writer's lock: it polls with read-only opens (a
//! view of the log as it was, which never grows). Every [`POLL`] it looks at
//! the directory ([`Signature`]: the segment files, the newest one's length and
//! modification time, the side file's bytes) and opens a fresh view when any of
//! that changed, and at least every [`REFRESH`] (a write within the file
//! system's timestamp granularity may leave the modification time as it was).
//! So rotations, `truncate_front` and `truncate_back` by the writer are all seen
//! in the next view, and an idle log costs a listing and two small reads per
//! poll, not a read of its newest segment. A `truncate_back` over entries already
//! printed is found by comparing the new view with what was printed (each
//! printed entry's position and bytes, for the last [`REMEMBERED`]); it is said
//! on standard error, and printing goes on from the first entry cut, in the new
//! history.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use flashlog_wal::{Entry, Error as WalError, Options, SegmentId, Wal, META_FILE};

use super::dump::entry_line;
use super::interrupt::Interrupt;
use super::open::{check_log_dir, open_error, Need};

/// Arguments of `flashlog tail`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start at sequence number SEQ [default: the last 10 entries, as tail does]
    #[arg(long, value_name = "SEQ")]
    from: Option<u64>,
    /// Keep printing entries as another process appends them (read-only, no
    /// lock taken; follows rotations; a truncate_back by the writer is said on
    /// standard error), until Ctrl-C, which ends with exit code 0
    #[arg(short = 'f', long)]
    follow: bool,
    /// Print as dump --hex: SEQ SEGMENT OFFSET OP KEYHEX VALUEHEX
    #[arg(long, conflicts_with = "json")]
    hex: bool,
    /// Print as dump --json: one JSON object per line
    #[arg(long)]
    json: bool,
}

/// How many entries `tail` prints without `--from`.
const LAST: u64 = 10;
/// How often `-f` looks for new entries.
const POLL: Duration = Duration::from_millis(100);
/// How often `-f` opens a fresh view even when the directory looks unchanged.
const REFRESH: Duration = Duration::from_secs(1);
/// How many printed entries `-f` remembers, to tell where a `truncate_back`
/// cut what it printed.
const REMEMBERED: usize = 1 << 16;
/// How long `-f` retries failing reopens before it gives up.
const REOPEN_PATIENCE: Duration = Duration::from_secs(10);

/// Prints the entries from `--from` (or the last 10), then, with `-f`, new ones
/// as they come.
pub fn run(dir: &Path, args: &Args) -> anyhow::Result<ExitCode> {
    check_log_dir(dir, Need::Log)?;
    let interrupt = if args.follow {
        Some(Interrupt::catch()?)
    } else {
        None
    };
    let mut view = open_view(dir)?;
    let start = match args.from {
        Some(seq) => seq,
        None => (view.last_seq() + 1)
            .saturating_sub(LAST)
            .max(view.first_seq()),
    };
    let mut tail = Tail {
        next: start.max(1),
        printed: VecDeque::new(),
        hex: args.hex,
        json: args.json,
    };
    tail.print_new(&view)?;
    let Some(interrupt) = interrupt else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut failing_since: Option<Instant> = None;
    let mut seen = (Signature::read(dir), Instant::now());
    while !sleep_unless(&interrupt, POLL) {
        let now = Signature::read(dir);
        if now == seen.0 && seen.1.elapsed() < REFRESH && failing_since.is_none() {
            continue;
        }
        seen = (now, Instant::now());
        let fresh = match open_view(dir) {
            Ok(fresh) => fresh,
            // The writer may be between two steps that a read-only open does
            // not retry past (a directory being changed): try again, a while.
            Err(err) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() > REOPEN_PATIENCE {
                    return Err(err);
                }
                continue;
            }
        };
        failing_since = None;
        tail.notice_cut(&view, &fresh);
        view = fresh;
        tail.print_new(&view)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a poll compares to tell whether the writer changed the log.
#[derive(Debug, PartialEq, Eq)]
struct Signature {
    /// The segment files' ids.
    segments: Vec<SegmentId>,
    /// The newest segment file's length and modification time.
    newest: Option<(u64, SystemTime)>,
    /// The side file's bytes (rewritten by rotations and truncations).
    meta: Option<Vec<u8>>,
}

impl Signature {
    /// Reads it; whatever cannot be read counts as absent (and differs from
    /// what could be read before, so the view is reopened).
    fn read(dir: &Path) -> Signature {
        let mut segments: Vec<SegmentId> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| SegmentId::parse_file_name(&entry.file_name().to_string_lossy()))
            .collect();
        segments.sort_unstable();
        let newest = segments.last().and_then(|id| {
            let metadata = std::fs::metadata(dir.join(id.file_name())).ok()?;
            Some((metadata.len(), metadata.modified().ok()?))
        });
        Signature {
            segments,
            newest,
            meta: std::fs::read(dir.join(META_FILE)).ok(),
        }
    }
}

/// A read-only view of the log: no lock, nothing changed; the default recovery
/// mode, so that a reopen trusts the checkpoint and reads only the newest
/// segment (damage is an error, as for `get`).
fn open_view(dir: &Path) -> anyhow::Result<Wal> {
    Wal::open(dir, Options::default().read_only()).map_err(|err| open_error(dir, err))
}

/// Sleeps `duration`, waking early for Ctrl-C; returns whether it came.
fn sleep_unless(interrupt: &Interrupt, duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        if interrupt.raised() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    interrupt.raised()
}

/// What `tail` printed, and where it goes on.
struct Tail {
    /// The next sequence number to print.
    next: u64,
    /// The last printed entries: sequence number and fingerprint, oldest first.
    printed: VecDeque<(u64, u64)>,
    hex: bool,
    json: bool,
}

/// An entry's position and bytes, hashed: the same after a `truncate_back`
/// only if the writer appended the very same entry at the very same place.
fn fingerprint(entry: &Entry) -> u64 {
    let mut hasher = DefaultHasher::new();
    let position = entry.position();
    (position.segment.0, position.offset, entry.op() as u8).hash(&mut hasher);
    entry.key().hash(&mut hasher);
    entry.value().hash(&mut hasher);
    hasher.finish()
}

impl Tail {
    /// Prints every entry of `view` from `next` on.
    fn print_new(&mut self, view: &Wal) -> anyhow::Result<()> {
        let first = view.first_seq();
        if self.next < first {
            errln!(
                "flashlog tail: entries {} to {} were removed (truncate_front) before they were printed",
                self.next,
                first - 1
            );
            self.next = first;
        }
        if self.next > view.last_seq() {
            return Ok(());
        }
        let entries = view.iter_from(self.next).context("cannot read the log")?;
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                // The writer truncated since the view opened: the next view
                // shows what happened (and `notice_cut` says it).
                Err(WalError::ViewOutdated { .. } | WalError::SeqOutOfRange { .. }) => break,
                Err(err) => return Err(anyhow::Error::new(err).context("cannot read the log")),
            };
            outln!("{}", entry_line(&entry, self.hex, self.json))?;
            if self.printed.len() == REMEMBERED {
                self.printed.pop_front();
            }
            self.printed.push_back((entry.seq(), fingerprint(&entry)));
            self.next = entry.seq() + 1;
        }
        Ok(())
    }

    /// Says on standard error if the writer cut entries already printed (a
    /// `truncate_back` between the `old` view and the `fresh` one), and goes on
    /// from the first one cut.
    fn notice_cut(&mut self, old: &Wal, fresh: &Wal) {
        let Some(&(last_printed, last_print)) = self.printed.back() else {
            return;
        };
        let same = |seq: u64, print: u64| {
            seq < fresh.first_seq()
                || (seq <= fresh.last_seq()
                    && fresh
                        .read(seq)
                        .is_ok_and(|entry| fingerprint(&entry) == print))
        };
        // The old view says whether its writer truncated back at or before an
        // entry it read; the fresh one, what the entry is now.
        let outdated = matches!(old.read(last_printed), Err(WalError::ViewOutdated { .. }));
        if !outdated && same(last_printed, last_print) {
            return;
        }
        let mut first_cut = None;
        for &(seq, print) in self.printed.iter().rev() {
            if same(seq, print) {
                break;
            }
            first_cut = Some(seq);
        }
        if let Some(cut) = first_cut {
            errln!(
                "flashlog tail: entries from {cut} on were cut (truncate_back by the writer) after they were printed; going on from {cut} in the new history"
            );
            self.printed.retain(|&(seq, _)| seq < cut);
            self.next = cut;
        }
    }
}
