//! How an [`Iter`] reads the next run of entries from disk: under the state lock,
//! which entries are visible and where; waiting at the end of the log when it
//! follows; and reading a sealed segment trusted from the checkpoint piece by piece.

use std::sync::Arc;
use std::time::Instant;

use crate::checkpoint::Sealed;
use crate::error::{Error, Result};
use crate::fs::PathFile;
use crate::index::{Run, Unloaded};
use crate::options::Visibility;
use crate::position::Position;
use crate::reader::{corrupt, Iter, LoadedRun, TrustedScan};
use crate::segment::{self, Piece};
use crate::sync::atomic::Ordering;

/// The most bytes one read of an iterator asks for (at least one entry is read).
const MAX_RUN_BYTES: u64 = 1 << 20;

impl Iter {
    /// Reads the next run of entries from disk; `Ok(false)` at the end of the log.
    pub(super) fn load(&mut self) -> Result<bool> {
        let shared = Arc::clone(&self.shared);
        // No deadline when it lies beyond what an `Instant` can hold.
        let deadline = match self.follow {
            Some(Some(timeout)) => Instant::now().checked_add(timeout),
            _ => None,
        };
        loop {
            // Held until the run's bytes are read: the offsets found under the
            // state lock are still those of the entries the run names when the
            // (unlocked) read below happens. Not held while waiting.
            let pin = shared.pin();
            let mut state = shared.lock();
            // A truncation done before the lock was taken is seen here, so the
            // run below never continues a history that was cut.
            self.check_cuts()?;
            let end = shared.visible_end(&state, self.visibility);
            if self.next_seq < end {
                let first = state.index.first_seq();
                if self.next_seq < first {
                    return Err(Error::SeqOutOfRange {
                        seq: self.next_seq,
                        first,
                        last: end - 1,
                    });
                }
                let run = match state.index.run(self.next_seq, end, MAX_RUN_BYTES) {
                    Ok(Some(run)) => run,
                    Ok(None) => match state.index.gap_end(self.next_seq) {
                        // Skipped damage held these numbers: pass over them.
                        Some(after) => {
                            if self.delivered_from == self.next_seq {
                                // Nothing yielded yet: nothing before `after` either.
                                self.delivered_from = after;
                            }
                            self.next_seq = after;
                            drop(state);
                            drop(pin);
                            continue;
                        }
                        None => return Ok(false),
                    },
                    Err(unloaded) => {
                        drop(state);
                        let record = &unloaded.0;
                        let last = record.first_seq + record.entries.saturating_sub(1);
                        let loaded = self.load_trusted(unloaded);
                        let loaded = shared.confirm_view(self.next_seq, last, loaded);
                        drop(pin);
                        return loaded;
                    }
                };
                // The segment's offsets are known (now): a scan of it, if any, is over.
                self.trusted = None;
                drop(state);
                let read = shared.read_file(run.segment).and_then(|file| {
                    self.buf.clear();
                    self.buf.resize((run.end - run.start) as usize, 0);
                    file.read_exact_at(&mut self.buf, run.start)?;
                    Ok(file)
                });
                let last = run.first_seq + run.offsets.len() as u64 - 1;
                let file = shared.confirm_view(run.first_seq, last, read)?;
                drop(pin);
                self.run = Some(LoadedRun {
                    run,
                    file,
                    next: 0,
                    checked: false,
                });
                return Ok(true);
            }
            drop(pin);
            let Some(timeout) = self.follow else {
                return Ok(false);
            };
            if state.closed {
                return Ok(false);
            }
            if let Some(cause) = &state.poisoned {
                // The log will not grow any more: say why instead of waiting forever.
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if state.read_only {
                // A view of the log as it was opened never grows either.
                return Err(Error::ReadOnly);
            }
            let written = self.visibility == Visibility::Written;
            if written {
                // Counted before looking at the edge again: a leader that
                // publishes it after this look sees the count and wakes us.
                shared.written_followers.fetch_add(1, Ordering::SeqCst);
                if self.next_seq < shared.visible_end(&state, self.visibility) {
                    shared.written_followers.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
            }
            state.tail_waiters += 1;
            state = match (timeout, deadline) {
                (Some(_), Some(deadline)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let (guard, _) = shared
                        .appended
                        .wait_timeout(state, left)
                        .unwrap_or_else(|poison| poison.into_inner());
                    guard
                }
                _ => shared.wait(&shared.appended, state),
            };
            state.tail_waiters -= 1;
            if written {
                shared.written_followers.fetch_sub(1, Ordering::SeqCst);
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline)
                && self.next_seq >= shared.visible_end(&state, self.visibility)
            {
                return Ok(false);
            }
        }
    }

    /// Reads the next piece of a sealed segment trusted from the checkpoint (see
    /// [`TrustedScan`]), continuing the scan under way or starting one.
    fn load_trusted(&mut self, unloaded: Unloaded) -> Result<bool> {
        let record = unloaded.0.clone();
        // A scan under way goes on only from where the iterator is: one that ran
        // ahead of it (the rest of a run dropped, as when a visit of
        // `try_for_each_ref` failed) starts over, or the next piece would be
        // numbered from the iterator's position.
        let scan = match &mut self.trusted {
            Some(scan)
                if scan.unloaded == unloaded
                    && record.first_seq + scan.offsets.len() as u64 <= self.next_seq =>
            {
                scan
            }
            _ => {
                let file = self.shared.read_file(record.id)?;
                let len = file.len()?;
                if len != record.len {
                    return Err(segment_changed(&file, &record, None, len));
                }
                self.trusted.insert(TrustedScan {
                    unloaded: unloaded.clone(),
                    file,
                    pos: 0,
                    offsets: Vec::with_capacity(record.entries as usize),
                })
            }
        };
        let (run, offsets) = loop {
            let start = scan.pos;
            let before = scan.offsets.len();
            let mut want = MAX_RUN_BYTES.min(record.len - start);
            let scanned = loop {
                if self.buf.len() < want as usize {
                    self.buf.resize(want as usize, 0);
                }
                let piece = &mut self.buf[..want as usize];
                scan.file.read_exact_at(piece, start)?;
                match segment::scan_piece(piece, start, record.len, &mut scan.offsets) {
                    Piece::Scanned(bytes) => break bytes as u64,
                    Piece::TooShort(needed) => want = needed,
                    Piece::Damaged(at, kind) => {
                        let position = Position {
                            segment: record.id,
                            offset: start + at as u64,
                        };
                        return Err(corrupt(&scan.file, position, kind));
                    }
                }
            };
            scan.pos += scanned;
            let found = scan.offsets.len() as u64;
            let finished = scan.pos == record.len;
            if found > record.entries || (finished && found != record.entries) {
                return Err(segment_changed(
                    &scan.file,
                    &record,
                    Some(found),
                    record.len,
                ));
            }
            // Entries before the iterator's position are scanned, not yielded.
            let piece_first_seq = record.first_seq + before as u64;
            let skip = self.next_seq.saturating_sub(piece_first_seq) as usize;
            let yielded = scan
                .offsets
                .get(before + skip..)
                .unwrap_or_default()
                .to_vec();
            if !yielded.is_empty() || finished {
                let run = LoadedRun {
                    run: Run {
                        segment: record.id,
                        start,
                        end: start + scanned,
                        first_seq: self.next_seq,
                        offsets: yielded,
                    },
                    file: Arc::clone(&scan.file),
                    next: 0,
                    checked: true,
                };
                break (run, finished.then(|| std::mem::take(&mut scan.offsets)));
            }
        };
        if let Some(offsets) = offsets {
            self.shared.lock().index.install(&unloaded, offsets);
            self.trusted = None;
        }
        self.run = Some(run);
        Ok(true)
    }
}

fn segment_changed(file: &PathFile, record: &Sealed, found: Option<u64>, len: u64) -> Error {
    Error::SegmentChanged {
        segment: record.id,
        path: file.path().to_path_buf(),
        expected_entries: record.entries,
        expected_len: record.len,
        found_entries: found.unwrap_or(0),
        found_len: len,
    }
}
