//! Scrubbing: re-reading the sealed segments at a bounded rate and checking every
//! entry's CRC, so that bit rot is found before someone needs the entries
//! ([`Wal::scrub`](crate::Wal::scrub), [`Options::scrub_every`](crate::Options::scrub_every)).
//!
//! A scrub never writes. It reads each sealed segment (never the active one,
//! which is being written) in chunks of at most 1 MiB, each under the layout pin
//! ([`Shared::pin`]) after checking, under the state lock, that the segment is
//! still the sealed segment it set out to read (same id, first sequence number
//! and length). So a `truncate_front` that removes it, or a `truncate_back` that
//! cuts it (it then becomes the active segment), makes the scrub skip the rest
//! of it, never report it as damage; and no truncation can change the bytes of a
//! chunk while it is read. Between chunks it sleeps as long as the rate asks.
//!
//! Entries are checked as they stream by; at the first damage in a segment the
//! rest of it is read and scanned as recovery scans it, so every damaged region
//! is reported with the offset and kind recovery would give it.

pub(crate) mod background;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{CorruptionKind, Error, Result};
use crate::options::MAX_MAX_SEGMENT_SIZE;
use crate::position::{Position, SegmentId};
use crate::report::Damage;
use crate::scrub_rate::ScrubRate;
use crate::segment::{scan_piece, scan_segment, Piece, Role};
use crate::state::Shared;

/// The largest piece a scrub reads at once.
const MAX_CHUNK: u64 = 1 << 20;
/// The smallest, at low rates.
const MIN_CHUNK: u64 = 4 << 10;

/// What a scrub found: from [`Wal::scrub`](crate::Wal::scrub), or the background
/// scrubber's last run ([`Wal::last_scrub`](crate::Wal::last_scrub)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScrubReport {
    /// Sealed segments read to their end.
    pub segments: u64,
    /// Valid entries checked.
    pub entries: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Every damaged region found, in log order: segment, offset, kind, length.
    /// Damage that recovery skipped at open (`RecoveryMode::SkipCorrupted`) is
    /// still on disk and found again.
    pub damage: Vec<Damage>,
    /// Sealed segments a concurrent truncation removed or cut while the scrub
    /// went (not damage): the rest of each was not read.
    pub skipped: Vec<SegmentId>,
    /// Sealed segments that could not be read (an I/O error, itself a sign of a
    /// failing disk), with the error.
    pub unreadable: Vec<(SegmentId, Arc<Error>)>,
    /// How long the scrub took, sleeps included.
    pub elapsed: Duration,
    /// Whether it stopped before the end because the log closed (background
    /// scrubs only).
    pub stopped: bool,
}

impl ScrubReport {
    /// Whether every segment read was free of damage and readable.
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty() && self.unreadable.is_empty()
    }
}

/// A sealed segment as the index described it when the scrub began: its first
/// sequence number, the entries on disk, its length.
#[derive(Debug, Clone, Copy)]
struct Target {
    id: SegmentId,
    first_seq: u64,
    entries: u64,
    len: u64,
}

/// Keeps a scrub to its rate, and stops it when asked (the background
/// scrubber's `stop`).
pub(crate) struct Pacer<'a> {
    start: Instant,
    bytes_per_second: f64,
    /// Sleeps for the duration unless stopped; returns whether stopped.
    sleep: &'a dyn Fn(Duration) -> bool,
}

impl Pacer<'_> {
    fn chunk(&self) -> u64 {
        if self.bytes_per_second.is_infinite() {
            return MAX_CHUNK;
        }
        // About ten chunks a second.
        ((self.bytes_per_second / 10.0) as u64).clamp(MIN_CHUNK, MAX_CHUNK)
    }

    /// Sleeps until `bytes` read fit the rate; returns whether stopped.
    fn pace(&self, bytes: u64) -> bool {
        let due = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        let elapsed = self.start.elapsed();
        if elapsed < due {
            (self.sleep)(due - elapsed)
        } else {
            (self.sleep)(Duration::ZERO)
        }
    }
}

/// Scrubs every sealed segment of the log (see the module docs).
///
/// # Errors
/// [`Error::Closed`] for a closed log; [`Error::ViewOutdated`] for a read-only
/// view whose writer truncated back over segments the scrub read.
pub(crate) fn scrub(
    shared: &Shared,
    rate: ScrubRate,
    sleep: &dyn Fn(Duration) -> bool,
) -> Result<ScrubReport> {
    let pacer = Pacer {
        start: Instant::now(),
        bytes_per_second: rate.bytes_per_second(),
        sleep,
    };
    let targets: Vec<Target> = {
        let state = shared.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        let segments = &state.index.segments;
        segments
            .iter()
            .take(segments.len().saturating_sub(1))
            // A group commit places entries in a new segment before it has
            // written the last ones of the segment it leaves: a segment is
            // whole on disk once every entry in it was written.
            .filter(|segment| segment.next_seq() <= state.written_seq + 1)
            .map(|segment| Target {
                id: segment.id,
                first_seq: segment.first_seq,
                // The entries on disk: without the numbers of gaps, which
                // hold none (the offsets are known wherever there are gaps).
                entries: segment
                    .offsets()
                    .map_or(segment.len(), |offsets| offsets.len() as u64),
                len: segment.end,
            })
            .collect()
    };
    let mut report = ScrubReport {
        segments: 0,
        entries: 0,
        bytes: 0,
        damage: Vec::new(),
        skipped: Vec::new(),
        unreadable: Vec::new(),
        elapsed: Duration::ZERO,
        stopped: false,
    };
    for target in targets {
        let mut reader = Reader {
            shared,
            target,
            pacer: &pacer,
            bytes: &mut report.bytes,
            read_to: 0,
        };
        let checked = check_segment(&mut reader);
        let last = target.first_seq + target.entries;
        let found = shared.confirm_view(target.first_seq, last, checked);
        match found {
            Ok(Checked::Whole { entries, damage }) => {
                report.segments += 1;
                report.entries += entries;
                report.damage.extend(damage);
            }
            // A read-only view's writer removed it (`truncate_front`).
            Ok(Checked::Gone) | Err(Error::SeqOutOfRange { .. }) => report.skipped.push(target.id),
            Ok(Checked::Stopped) => {
                report.stopped = true;
                break;
            }
            Err(err @ (Error::ViewOutdated { .. } | Error::Closed)) => return Err(err),
            Err(err) => report.unreadable.push((target.id, Arc::new(err))),
        }
    }
    report.elapsed = pacer.start.elapsed();
    trace_scrub(shared, &report);
    Ok(report)
}

/// Counts a finished scrub and its damage (`Wal::metrics`), and reports it as
/// `tracing` events: a warning per damaged entry and per unreadable segment.
fn trace_scrub(shared: &Shared, report: &ScrubReport) {
    let metrics = &shared.metrics;
    metrics.scrubbed(report.damage.len() as u64);
    for damage in &report.damage {
        tracing::warn!(at = %damage.position, kind = %damage.kind, len = damage.len, "flashlog: scrub found damage");
    }
    for (segment, err) in &report.unreadable {
        tracing::warn!(segment = %segment.file_name(), error = %err, "flashlog: scrub could not read a segment");
    }
    tracing::info!(
        segments = report.segments,
        entries = report.entries,
        bytes = report.bytes,
        damaged = report.damage.len(),
        elapsed_ms = report.elapsed.as_millis() as u64,
        stopped = report.stopped,
        "flashlog: scrub done"
    );
}

/// How one segment's scrub ended.
enum Checked {
    /// Read to its end: its valid entries and its damage.
    Whole { entries: u64, damage: Vec<Damage> },
    /// Removed or cut by a truncation while it was read.
    Gone,
    /// The log is closing.
    Stopped,
}

/// Reads one sealed segment chunk by chunk, each under the pin.
struct Reader<'a> {
    shared: &'a Shared,
    target: Target,
    pacer: &'a Pacer<'a>,
    /// The scrub's bytes read so far.
    bytes: &'a mut u64,
    /// Where the next chunk starts.
    read_to: u64,
}

/// What one chunk read gave.
enum Chunk {
    /// This many bytes were appended to the buffer (0: the file ends early).
    Read(usize),
    Gone,
    Stopped,
}

impl Reader<'_> {
    /// Appends up to `want` bytes from `read_to` to `buf`, then paces.
    fn read(&mut self, buf: &mut Vec<u8>, want: u64) -> Result<Chunk> {
        let want = want.min(self.target.len - self.read_to) as usize;
        let read = {
            // Held until the bytes are read: no truncation changes them meanwhile.
            let _pin = self.shared.pin();
            if !self.still_sealed() {
                return Ok(Chunk::Gone);
            }
            let file = match self.shared.read_file(self.target.id) {
                Ok(file) => file,
                // A read-only view's writer removed it (truncate_front).
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Chunk::Gone);
                }
                Err(err) => return Err(err),
            };
            let at = buf.len();
            buf.resize(at + want, 0);
            let read = file.read_up_to(&mut buf[at..], self.read_to)?;
            buf.truncate(at + read);
            read
        };
        self.read_to += read as u64;
        *self.bytes += read as u64;
        if self.pacer.pace(*self.bytes) {
            return Ok(Chunk::Stopped);
        }
        Ok(Chunk::Read(read))
    }

    /// Whether the segment is still the sealed one the scrub set out to read.
    fn still_sealed(&self) -> bool {
        let state = self.shared.lock();
        let segments = &state.index.segments;
        let t = self.target;
        segments
            .iter()
            .take(segments.len().saturating_sub(1))
            .any(|s| s.id == t.id && s.first_seq == t.first_seq && s.end == t.len)
    }
}

/// Checks every entry of one segment.
fn check_segment(reader: &mut Reader<'_>) -> Result<Checked> {
    let target = reader.target;
    let chunk = reader.pacer.chunk();
    let mut buf: Vec<u8> = Vec::new();
    let mut offsets: Vec<u32> = Vec::new();
    // The offset of `buf[0]`: always an entry boundary.
    let mut at = 0u64;
    let mut entries = 0u64;
    // Where the segment's bytes end: its recorded length, or less if the file
    // ends early.
    let mut len = target.len;
    loop {
        if reader.read_to < len {
            let want = chunk.max(needed_more(&buf, at, len));
            match reader.read(&mut buf, want)? {
                Chunk::Read(0) => len = reader.read_to,
                Chunk::Read(_) => {}
                Chunk::Gone => return Ok(Checked::Gone),
                Chunk::Stopped => return Ok(Checked::Stopped),
            }
        }
        offsets.clear();
        match scan_piece(&buf, at, len, &mut offsets) {
            Piece::Scanned(n) => {
                entries += offsets.len() as u64;
                buf.drain(..n);
                at += n as u64;
                if reader.read_to >= len && buf.is_empty() {
                    break;
                }
            }
            Piece::TooShort(_) => {}
            Piece::Damaged(i, _) => {
                // The entries of the piece before the damage are valid.
                entries += offsets.len() as u64;
                return rest_of_damaged(reader, buf.split_off(i), at + i as u64, entries);
            }
        }
    }
    let mut damage = Vec::new();
    if entries != target.entries || len != target.len {
        // Fewer (or more) valid entries than the index holds, all of them valid:
        // cut or rewritten by something other than this log.
        damage.push(Damage {
            position: Position {
                segment: target.id,
                offset: 0,
            },
            kind: CorruptionKind::SegmentChanged {
                recorded_first_seq: target.first_seq,
                recorded_entries: target.entries,
                recorded_len: target.len,
                found_first_seq: target.first_seq,
                found_entries: entries,
                found_len: len,
            },
            len,
        });
    }
    Ok(Checked::Whole { entries, damage })
}

/// How many more bytes than `buf` holds the entry at its start needs (0 if it
/// fits or is damaged: the scan says).
fn needed_more(buf: &[u8], at: u64, len: u64) -> u64 {
    let mut ignored = Vec::new();
    match scan_piece(buf, at, len, &mut ignored) {
        Piece::TooShort(needed) => needed.saturating_sub(buf.len() as u64),
        _ => 0,
    }
}

/// Reads the rest of a segment whose first damage is at `from` (`bytes` holds
/// what was read from there) and scans it as recovery would: every damaged
/// region, with the offset and kind recovery gives it.
fn rest_of_damaged(
    reader: &mut Reader<'_>,
    mut bytes: Vec<u8>,
    from: u64,
    mut entries: u64,
) -> Result<Checked> {
    let target = reader.target;
    let chunk = reader.pacer.chunk();
    while reader.read_to < target.len.min(MAX_MAX_SEGMENT_SIZE) {
        match reader.read(&mut bytes, chunk)? {
            Chunk::Read(0) => break,
            Chunk::Read(_) => {}
            Chunk::Gone => return Ok(Checked::Gone),
            Chunk::Stopped => return Ok(Checked::Stopped),
        }
    }
    let scan = scan_segment(target.id, &bytes, Role::Sealed);
    entries += scan.offsets.len() as u64;
    let end = bytes.len() as u64;
    let at = |offset: u64| Position {
        segment: target.id,
        offset: from + offset,
    };
    let mut damage: Vec<Damage> = scan
        .damage
        .iter()
        .map(|found| Damage {
            position: at(found.offset),
            kind: found.kind,
            len: found.resume.end(end) - found.offset,
        })
        .collect();
    // Zeros to the end of a sealed segment, which the writer trims: damage.
    if let Some(zeros) = scan.zero_tail {
        damage.push(Damage {
            position: at(zeros),
            kind: CorruptionKind::BadLength(0),
            len: end - zeros,
        });
    }
    Ok(Checked::Whole { entries, damage })
}
