//! Recovery on open: scan every segment, classify damage under the chosen
//! [`RecoveryMode`], repair what the mode allows, and report what was found.
//!
//! Damage is any place where a valid entry should start and does not. It is a
//! **torn tail** when it lies in the last segment and no valid entry follows it:
//! the mark of a write cut short by a crash. Anything else (damage followed by valid
//! entries, or in an older segment) is **corruption**: acknowledged entries may have
//! been lost there.

use std::collections::HashMap;

use crate::checkpoint::{self, LastEntry, Sealed, INDEX_TMP_FILE};
use crate::codec;
use crate::error::{CorruptionKind, Error, Result};
use crate::fs::{Dir, OpenMode, PathFile};
use crate::index::{Gap, Index, SegmentIndex, Unloaded};
use crate::meta::{self, Meta, SideFileAction, SideFileNote, META_COPY_TMP_FILE, META_TMP_FILE};
use crate::repair::REPAIR_TMP_SUFFIX;
use crate::truncate;
use crate::{Position, RecoveryMode, SegmentId};

/// A damaged region of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Where the damaged region starts.
    pub position: Position,
    /// What is wrong with the bytes there.
    pub kind: CorruptionKind,
    /// Bytes from the damage to the next valid entry, or to the end of the segment.
    pub len: u64,
}

/// What recovery found when the log was opened, and what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segments in the log after recovery.
    pub segments: u64,
    /// Entries in the log after recovery.
    pub entries: u64,
    /// Bytes of the log's segments after recovery.
    pub bytes: u64,
    /// Sequence number of the first entry (of the next one, if the log is empty).
    pub first_seq: u64,
    /// Sequence number of the last entry (`first_seq - 1` if the log is empty).
    pub last_seq: u64,
    /// Every damaged region found, in log order.
    pub damage: Vec<Damage>,
    /// The torn tail that was cut off, if any.
    pub torn_tail: Option<Damage>,
    /// Damaged regions skipped under [`RecoveryMode::SkipCorrupted`].
    pub skipped: u64,
    /// Bytes removed: torn tail, point-in-time cut and the segments it dropped.
    pub truncated_bytes: u64,
    /// Zero bytes after the last entry of the last segment: space preallocated
    /// before a crash, kept for the next appends (not damage).
    pub preallocated_bytes: u64,
    /// Segments deleted: after a point-in-time cut, or left over from an
    /// interrupted `truncate_front` or `truncate_back`.
    pub removed_segments: Vec<SegmentId>,
    /// A `truncate_back(seq)` that a crash had interrupted and recovery finished.
    pub finished_truncate_back: Option<u64>,
    /// Whether the directory held no log and a new one was started.
    pub created: bool,
    /// The first sequence number that may not be the one its entry was appended
    /// with, if any: [`RecoveryMode::SkipCorrupted`] skipped damage before it
    /// whose number of entries nothing recorded (no checkpoint record after it
    /// says, as in a log the Go implementation wrote), and counted it as none.
    /// `None` when every entry kept its number: skipped damage that the
    /// checkpoint counted leaves its sequence numbers as gaps
    /// ([`Error::Skipped`](crate::Error::Skipped)).
    pub numbering_unverified_from: Option<u64>,
    /// Side files recovery could not use, and what it did instead: a damaged or
    /// missing copy of `flashlog.meta` (the other copy was used), an unreadable
    /// checkpoint (ignored). Empty when every side file was fine.
    pub side_files: Vec<SideFileNote>,
}

/// The result of recovery: the log's index, its side file, and the report.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub index: Index,
    pub meta: Meta,
    pub report: RecoveryReport,
    /// Segments whose files are not canonically named (read-only opens only:
    /// read-write ones rename them).
    pub misnamed: HashMap<SegmentId, String>,
}

/// Whether recovery may change files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Repair what the mode allows: cut torn tails, finish interrupted truncations.
    ReadWrite,
    /// Change nothing; report what a read-write recovery would do.
    ReadOnly,
}

/// One segment as scanned: every valid entry and every damaged region.
#[derive(Debug)]
struct Scan {
    id: SegmentId,
    len: u64,
    offsets: Vec<u32>,
    damage: Vec<ScanDamage>,
    /// Where a run of zeros reaching the end of the file starts: preallocated space
    /// (in the last segment) rather than damage.
    zero_tail: Option<u64>,
    /// The last valid entry (for the checkpoint).
    last: Option<LastEntry>,
}

#[derive(Debug, Clone, Copy)]
struct ScanDamage {
    offset: u64,
    kind: CorruptionKind,
    /// Where the scan goes on after the damage.
    resume: Resume,
    /// The last valid entry before the damage: the last one kept if the segment
    /// is cut here.
    last_before: Option<LastEntry>,
}

/// What follows damage in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// The next valid entry, at this offset.
    At(u64),
    /// No valid entry: the damage runs to the end of the segment.
    Nowhere,
    /// Not known: the search gave up (see [`codec::search_budget`]).
    Unsearched,
}

impl Resume {
    /// Where the damaged region ends, in a segment of `len` bytes.
    fn end(self, len: u64) -> u64 {
        match self {
            Resume::At(at) => at,
            Resume::Nowhere | Resume::Unsearched => len,
        }
    }
}

/// Which segment a scan reads: an entry that runs past the end means a different
/// thing in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The newest segment, the only one a crash can leave a write cut short in:
    /// an entry running past its written bytes is a torn tail.
    Newest,
    /// An older one, trimmed and synced before the next one started: an entry
    /// running past its end is damage.
    Sealed,
}

/// Scans one segment's bytes. Pure: any bytes give a result, nothing panics.
fn scan_segment(id: SegmentId, bytes: &[u8], role: Role) -> Scan {
    let mut scan = Scan {
        id,
        len: bytes.len() as u64,
        offsets: Vec::new(),
        damage: Vec::new(),
        zero_tail: None,
        last: None,
    };
    // One budget for every search of the segment, so that many damaged regions
    // cannot each spend a fresh one.
    let mut budget = codec::search_budget(bytes.len());
    // Where the segment's entries must end: found at the first damage.
    let mut end = None;
    let mut at = 0usize;
    while at < bytes.len() {
        match codec::decode(&bytes[at..]) {
            Ok(entry) => {
                scan.offsets.push(at as u32);
                scan.last = LastEntry::at(bytes, at);
                at += entry.len;
            }
            Err(_) if bytes[at..].iter().all(|&byte| byte == 0) => {
                scan.zero_tail = Some(at as u64);
                break;
            }
            Err(kind) => {
                let end = *end.get_or_insert_with(|| match role {
                    Role::Newest => written_len(bytes),
                    Role::Sealed => bytes.len(),
                });
                let (kind, resume) = resync(bytes, at, end, kind, &mut budget);
                scan.damage.push(ScanDamage {
                    offset: at as u64,
                    kind,
                    resume,
                    last_before: scan.last,
                });
                match resume {
                    Resume::At(next) => at = next as usize,
                    Resume::Nowhere | Resume::Unsearched => break,
                }
            }
        }
    }
    scan
}

/// The bytes of the newest segment that a write reached: all but the zeros it
/// ends with. Those are preallocated space, or space a write cut short did not
/// reach (the writer keeps zeros ahead of its entries); no entry lies in zeros.
fn written_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1)
}

/// How a piece of a trusted segment scanned, for [`scan_piece`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// The entries of the piece's first `n` bytes were valid; the next one (if
    /// any) runs past the piece.
    Scanned(usize),
    /// The piece's first entry needs this many bytes: read a larger piece.
    TooShort(u64),
    /// Damage at this offset of the piece.
    Damaged(usize, CorruptionKind),
}

/// Scans a piece of a sealed segment that starts on an entry boundary at
/// `base` of a segment of `len` bytes: every entry that lies wholly in the piece
/// is checked and its offset pushed to `offsets`. An entry cut by the piece's
/// end is left for the next piece, unless the segment ends there too (damage).
pub(crate) fn scan_piece(bytes: &[u8], base: u64, len: u64, offsets: &mut Vec<u32>) -> Piece {
    let mut at = 0usize;
    while at < bytes.len() {
        match codec::decode(&bytes[at..]) {
            Ok(entry) => {
                offsets.push((base + at as u64) as u32);
                at += entry.len;
            }
            Err(CorruptionKind::Incomplete { needed, .. }) if base + at as u64 + needed <= len => {
                return if at == 0 {
                    Piece::TooShort(needed)
                } else {
                    Piece::Scanned(at)
                };
            }
            Err(kind) => return Piece::Damaged(at, kind),
        }
    }
    Piece::Scanned(at)
}

/// Decides where the scan goes on after the entry at `at` failed to decode with
/// `kind`, in a segment whose entries all end by `end` (its written bytes, see
/// [`Role`]), and what to report there.
///
/// **An entry owns its declared bytes.** When its header agrees with itself
/// ([`codec::declared_len`]: `TOTAL_LEN`, `KEY_LEN` and `VAL_LEN` add up), the
/// entry ends where it says, whatever its CRC (a torn write, a bit flip in its
/// body, the Go writer's placeholder CRC), and nothing inside it is looked at:
/// a value may hold bytes in this very format (a shipped segment, a snapshot, a
/// Raft payload), and reading entries out of it would surface entries nobody
/// appended (issue 12). So:
/// - an entry that runs past `end` is a write cut short, FORMAT.md's end of the
///   log: [`Resume::Nowhere`], reported as [`CorruptionKind::Incomplete`] (in
///   the newest segment, a torn tail; in a sealed one, damage to its end);
/// - one that fits is skipped whole, and the next one is checked where it ends
///   (and skipped too if it is such an entry).
///
/// Only where the lengths disagree (damage in the header itself, or bytes that
/// are no entry at all) is the end unknown; then the search goes byte by byte
/// for the **earliest** valid entry, as it always did. Never at such a header's
/// own `TOTAL_LEN`: a damaged length can point past valid entries, and once an
/// append puts a valid entry where it points, a jump would hide entries an
/// earlier open had found and renumber everything after them (found by fuzzing,
/// under `SkipCorrupted`). A header that agrees cannot cause that: if it runs
/// past `end` of the newest segment it is cut with the torn tail before anything
/// is appended, and if it fits, appends do not change it.
///
/// What this trades away: damage that leaves a header agreeing with itself but
/// wrong (`TOTAL_LEN` and `VAL_LEN` changed together; a single bit flip in one
/// length field is caught by the others) hides the entries inside the extent it
/// declares. Near the end of the newest segment that is reported as a torn tail,
/// of kind `Incomplete`, and the entries after it are cut with it.
fn resync(
    bytes: &[u8],
    at: usize,
    end: usize,
    kind: CorruptionKind,
    budget: &mut u64,
) -> (CorruptionKind, Resume) {
    let mut from = at;
    loop {
        if from >= end {
            return (kind, Resume::Nowhere);
        }
        let declared = match codec::declared_len(&bytes[from..end]) {
            Ok(declared) => declared,
            Err(header) => {
                // `decode` says "incomplete" before it looks at the lengths; when
                // they disagree, that is what is wrong (a damaged TOTAL_LEN).
                let kind = match (kind, header) {
                    (_, CorruptionKind::Incomplete { .. }) => kind,
                    (CorruptionKind::Incomplete { .. }, _) if from == at => header,
                    _ => kind,
                };
                return (kind, search(bytes, from, budget));
            }
        };
        let next = from as u64 + declared;
        if next > end as u64 {
            // Zeros after the written bytes are not part of the entry: it has
            // `end - at` bytes, whatever `decode` saw.
            let kind = if from == at {
                CorruptionKind::Incomplete {
                    needed: declared,
                    available: (end - at) as u64,
                }
            } else {
                kind
            };
            return (kind, Resume::Nowhere);
        }
        let next = next as usize;
        match codec::check_entry(&bytes[next..], budget) {
            codec::Check::Valid => return (kind, Resume::At(next as u64)),
            codec::Check::OverBudget => return (kind, Resume::Unsearched),
            codec::Check::Invalid => from = next,
        }
    }
}

/// Where the earliest valid entry after the first byte of `bytes[from..]` starts.
fn search(bytes: &[u8], from: usize, budget: &mut u64) -> Resume {
    match codec::valid_entry_after(&bytes[from..], budget) {
        codec::Search::Found(offset) => Resume::At((from + offset) as u64),
        codec::Search::NotFound => Resume::Nowhere,
        codec::Search::Exhausted(_) => Resume::Unsearched,
    }
}

/// The segment files of a directory.
#[derive(Debug, Default)]
struct Listing {
    /// Segment ids, sorted.
    ids: Vec<SegmentId>,
    /// Segments whose file name is not the canonical `segment-%04d.log` (e.g.
    /// `segment-7.log`, which the pattern accepts too), by id.
    misnamed: HashMap<SegmentId, String>,
    /// Whether a leftover temporary side file is there.
    has_tmp: bool,
    /// Whether a leftover temporary copy of the side file is there.
    has_copy_tmp: bool,
    /// Whether a leftover temporary checkpoint is there.
    has_index_tmp: bool,
    /// Leftover temporary copies of `remove_skipped_damage`.
    repair_tmps: Vec<String>,
}

impl Listing {
    /// The name of segment `id`'s file in the directory.
    fn name(&self, id: SegmentId) -> String {
        self.misnamed
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.file_name())
    }
}

/// Lists a directory's segment files; two files with the same id are an error.
fn list_segments(dir: &Dir) -> Result<Listing> {
    let mut listing = Listing::default();
    let mut names: HashMap<SegmentId, String> = HashMap::new();
    for name in dir.list()? {
        listing.has_tmp |= name == META_TMP_FILE;
        listing.has_copy_tmp |= name == META_COPY_TMP_FILE;
        listing.has_index_tmp |= name == INDEX_TMP_FILE;
        if name.ends_with(REPAIR_TMP_SUFFIX) {
            listing.repair_tmps.push(name.clone());
        }
        let Some(id) = SegmentId::parse_file_name(&name) else {
            continue;
        };
        if id > SegmentId::MAX {
            return Err(Error::SegmentIdOutOfRange {
                path: dir.join(&name),
            });
        }
        if let Some(other) = names.insert(id, name.clone()) {
            let (first, second) = if other < name {
                (other, name)
            } else {
                (name, other)
            };
            return Err(Error::DuplicateSegment {
                dir: dir.path().to_path_buf(),
                id,
                first,
                second,
            });
        }
    }
    listing.ids = names.keys().copied().collect();
    listing.ids.sort_unstable();
    listing.misnamed = names
        .into_iter()
        .filter(|(id, name)| *name != id.file_name())
        .collect();
    Ok(listing)
}

/// The segment ids of a directory, sorted; errors as for an open's listing.
pub(crate) fn segment_ids(dir: &Dir) -> Result<Vec<SegmentId>> {
    list_segments(dir).map(|listing| listing.ids)
}

/// Gives misnamed segments their canonical names, which the rest of the library
/// (and the Go implementation's writer) use. Renaming changes no content, so a
/// crash part way leaves a log the next recovery finishes renaming.
fn rename_misnamed(dir: &Dir, listing: &mut Listing) -> Result<()> {
    if listing.misnamed.is_empty() {
        return Ok(());
    }
    for (id, name) in listing.misnamed.drain() {
        dir.rename(&name, &id.file_name())?;
    }
    dir.sync()
}

/// Opens a segment and checks that its length is one segments can have.
fn open_segment(dir: &Dir, name: &str) -> Result<(PathFile, u64)> {
    let file = dir.open(name, OpenMode::Read)?;
    let len = file.len()?;
    // Offsets inside a segment are u32; the Go writer's segments are far smaller.
    if len > crate::options::MAX_MAX_SEGMENT_SIZE {
        return Err(Error::SegmentTooLarge {
            path: file.path().to_path_buf(),
            len,
            max: crate::options::MAX_MAX_SEGMENT_SIZE,
        });
    }
    Ok((file, len))
}

/// Reads the first `len` bytes of a segment into `buf` (fewer if the file is shorter).
fn read_segment(file: &PathFile, len: u64, buf: &mut Vec<u8>) -> Result<()> {
    let len = len as usize;
    // Grow without re-zeroing bytes the buffer already has: the read overwrites them.
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let read = file.read_up_to(&mut buf[..len], 0)?;
    buf.truncate(read);
    Ok(())
}

/// Reads a segment that recovery trusted from the checkpoint into `buf` and
/// returns its entries' offsets, after checking every entry: any damage is an
/// [`Error::Corrupt`], a file that no longer matches the record an
/// [`Error::SegmentChanged`].
pub(crate) fn read_trusted(
    file: &PathFile,
    unloaded: &Unloaded,
    buf: &mut Vec<u8>,
) -> Result<Vec<u32>> {
    let record = &unloaded.0;
    let len = file.len()?;
    read_segment(file, len.min(crate::options::MAX_MAX_SEGMENT_SIZE), buf)?;
    let scan = scan_segment(record.id, buf, Role::Sealed);
    let damage = scan
        .damage
        .first()
        .map(|damage| (damage.offset, damage.kind));
    let zeros = scan.zero_tail.map(|at| (at, CorruptionKind::BadLength(0)));
    if let Some((offset, kind)) = damage.or(zeros) {
        return Err(Error::Corrupt {
            segment: record.id,
            path: file.path().to_path_buf(),
            offset,
            kind,
        });
    }
    if len != record.len || scan.offsets.len() as u64 != record.entries {
        return Err(Error::SegmentChanged {
            segment: record.id,
            path: file.path().to_path_buf(),
            expected_entries: record.entries,
            expected_len: record.len,
            found_entries: scan.offsets.len() as u64,
            found_len: len,
        });
    }
    Ok(scan.offsets)
}

/// A change recovery makes to the segments, decided before any is made.
#[derive(Debug, Clone, Default)]
struct Plan {
    /// Segments older than the side file's first segment (an interrupted
    /// `truncate_front`), removed oldest first.
    stale: Vec<SegmentId>,
    /// Segments after a point-in-time cut, removed newest first.
    dropped: Vec<SegmentId>,
    /// A segment to cut to a length.
    cut: Option<(SegmentId, u64)>,
    /// Store the side file again: its copies differ (one bad, missing or older).
    rewrite_meta: bool,
    remove_tmp: bool,
    remove_copy_tmp: bool,
    remove_index_tmp: bool,
    remove_repair_tmps: Vec<String>,
}

/// Recovers the log in `dir` under `mode`.
///
/// A read-write open holds the directory lock, so no flashlog writer changes the
/// files meanwhile. A read-only open takes no lock: see [`recover_live`].
pub(crate) fn recover(dir: &Dir, mode: RecoveryMode, access: Access) -> Result<Recovered> {
    match access {
        Access::ReadWrite => recover_from(dir, mode, access, meta::inspect(dir)?),
        Access::ReadOnly => recover_live(dir, mode),
    }
}

/// How long a read-only open keeps trying before it reports what the last try
/// found: a writer would have to change the log's segments without a pause of a
/// few milliseconds for this long.
const LIVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Recovers, read-only, a log that another process may be writing: every try
/// reads the side file before it lists the directory and again at its end, and a
/// try during which the side file changed in a way that can make what it read
/// inconsistent is repeated (for at most [`LIVE_PATIENCE`]).
///
/// Why reading the side file first and last is enough: the writer records a
/// change of the segment set in the side file before the files can disagree with
/// the old side file. A rotation creates the new segment (and syncs the
/// directory) before the side file names it, so a listing made after the side
/// file was read holds every segment it names. `truncate_front` names the new
/// first segment before it removes older ones, and `truncate_back` records its
/// intent before it removes or cuts any: a segment missing from the listing, one
/// that vanished before it was opened, or one cut while it was read all come with
/// a side file that changed during the try. A try that saw no change and failed
/// failed for real (a log nobody writes is reported at once), and one that
/// succeeded while only rotations or `truncate_front` happened saw the log as it
/// was when it began (the files it opened stay readable once removed).
///
/// Every `truncate_back` counts itself in the side file (`truncations`) before it
/// changes anything, so even one that cuts only the newest segment and finishes
/// within one try, leaving the other fields as they were, makes the try repeat.
fn recover_live(dir: &Dir, mode: RecoveryMode) -> Result<Recovered> {
    let started = std::time::Instant::now();
    let mut attempt: u32 = 1;
    loop {
        let loaded = meta::inspect(dir)?;
        let before = loaded.meta;
        let outcome = recover_from(dir, mode, Access::ReadOnly, loaded);
        let after = meta::load(dir)?;
        let consistent = match &outcome {
            Ok(_) => before == after || only_grew(before, after),
            // A failure while a truncate_back is under way (its intent recorded,
            // its segments going) may be the writer's doing: try again. (A log
            // whose writer crashed then, read-only, recovers without failing.)
            Err(_) => before == after && before.is_none_or(|m| m.pending_truncate_back.is_none()),
        };
        if consistent || started.elapsed() >= LIVE_PATIENCE {
            return outcome;
        }
        attempt += 1;
        // The writer is in the middle of a change: give it a moment to finish.
        std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt.min(10))));
    }
}

/// Whether the side file went from `before` to `after` by rotations and
/// `truncate_front`s only: changes that leave a try's view of the log as it was
/// when the try began.
fn only_grew(before: Option<Meta>, after: Option<Meta>) -> bool {
    let (Some(before), Some(after)) = (before, after) else {
        // A side file that appeared: the first one a new log stores.
        return before.is_none();
    };
    before.pending_truncate_back.is_none()
        && after.pending_truncate_back.is_none()
        && after.truncations == before.truncations
        && after.first_segment >= before.first_segment
        && after.first_seq >= before.first_seq
        && after.last_segment >= before.last_segment
}

/// Recovers the log in `dir` from the side file `loaded` (read before the
/// directory is listed: see [`recover_live`]).
fn recover_from(
    dir: &Dir,
    mode: RecoveryMode,
    access: Access,
    loaded: meta::Loaded,
) -> Result<Recovered> {
    let stored_meta = loaded.meta;
    let mut listing = list_segments(dir)?;
    if access == Access::ReadWrite {
        rename_misnamed(dir, &mut listing)?;
    }
    let ids = listing.ids.clone();
    let has_tmp = listing.has_tmp;
    let mut meta = stored_meta.unwrap_or_default();
    if stored_meta.is_none() {
        // Without a side file no truncate_front ever ran, so no segment is stale: a
        // log whose files start at segment-0000.log starts there.
        if let Some(&lowest) = ids.first() {
            meta.first_segment = meta.first_segment.min(lowest);
        }
    }
    let mut plan = Plan {
        rewrite_meta: loaded.rewrite,
        remove_tmp: has_tmp,
        remove_copy_tmp: listing.has_copy_tmp,
        remove_index_tmp: listing.has_index_tmp,
        remove_repair_tmps: listing.repair_tmps.clone(),
        ..Plan::default()
    };
    let (stale, live): (Vec<SegmentId>, Vec<SegmentId>) =
        ids.iter().partition(|&&id| id < meta.first_segment);
    plan.stale = stale;

    let mut report = RecoveryReport {
        segments: 0,
        entries: 0,
        bytes: 0,
        first_seq: meta.first_seq,
        last_seq: meta.first_seq - 1,
        damage: Vec::new(),
        torn_tail: None,
        skipped: 0,
        truncated_bytes: 0,
        preallocated_bytes: 0,
        removed_segments: Vec::new(),
        finished_truncate_back: None,
        created: false,
        numbering_unverified_from: None,
        side_files: Vec::new(),
    };
    if let Some(mut note) = loaded.bad_copy {
        note.action = SideFileAction::UsedOtherCopy {
            rewritten: access == Access::ReadWrite,
        };
        report.side_files.push(note);
    }

    if live.is_empty() {
        if stored_meta.is_some() || !ids.is_empty() {
            return Err(Error::MissingSegment {
                dir: dir.path().to_path_buf(),
                id: meta.first_segment,
            });
        }
        report.created = true;
        let mut index = Index::default();
        index.segments.push_back(SegmentIndex::new(SegmentId(1), 1));
        if access == Access::ReadWrite {
            remove_leftovers(dir, &plan)?;
            drop(dir.open(&SegmentId(1).file_name(), crate::fs::OpenMode::CreateNew)?);
            dir.sync()?;
            // From now on, losing segment 1 is an error, not a new empty log.
            meta.last_segment = Some(SegmentId(1));
            meta::store(dir, &meta)?;
        }
        report.segments = 1;
        return Ok(Recovered {
            index,
            meta,
            report,
            misnamed: HashMap::new(),
        });
    }
    check_contiguous(dir, meta.first_segment, &live)?;
    if let Some(last) = meta.last_segment {
        if live.last().is_some_and(|&newest| newest < last) {
            return Err(Error::MissingSegment {
                dir: dir.path().to_path_buf(),
                id: last,
            });
        }
    }

    // The checkpoint stands in for scanning sealed segments only under the default
    // mode (the others promise to look at every byte) and when no truncate_back is
    // to be finished (it must see the segment it cuts). Every mode checks each
    // sealed segment against its record: a mismatch is damage. (Whatever changes a
    // sealed segment removes the checkpoint durably first, so a record that is
    // there is true of the segment it names, or something else changed it.)
    let trust = mode == RecoveryMode::TolerateCorruptedTail && meta.pending_truncate_back.is_none();
    // Every mode loads it (each checks sealed segments against their records);
    // an unreadable one is a lost hint, noted in the report.
    let (records, note) = checkpoint::load(dir);
    report.side_files.extend(note);
    // What a failed fsync did not write may still sit in the page cache as clean
    // pages: a read-write open reads the newest segment from the disk. Only the
    // newest can hold such pages; the sealed ones were synced before the writer
    // moved on.
    let drop_newest_cache = access == Access::ReadWrite;
    let found = find_segments(
        dir,
        &listing,
        &live,
        trust.then_some(&records),
        drop_newest_cache,
    )?;
    let index = apply_mode(dir, mode, &meta, found, &records, &mut plan, &mut report)?;
    if access == Access::ReadWrite {
        sync_unrecorded(dir, &index, &records)?;
    }
    let mut recovered = Recovered {
        index,
        meta,
        report,
        misnamed: listing.misnamed,
    };
    if access == Access::ReadWrite {
        execute(dir, &plan, &mut recovered.meta, &recovered.index)?;
    }
    recovered.report.removed_segments = plan
        .stale
        .iter()
        .chain(plan.dropped.iter())
        .copied()
        .collect();

    if let Some(seq) = recovered.meta.pending_truncate_back {
        let finished =
            truncate::finish_back(dir, &mut recovered.index, &mut recovered.meta, seq, access)?;
        recovered.report.removed_segments.extend(finished);
        recovered.report.finished_truncate_back = Some(seq);
    }
    // Record the newest segment where the side file does not (a Go-written log,
    // or one the Go implementation appended segments to).
    let active = recovered.index.active().id;
    if access == Access::ReadWrite && recovered.meta.last_segment != Some(active) {
        recovered.meta.last_segment = Some(active);
        meta::store(dir, &recovered.meta)?;
    }
    summarise(&recovered.index, &mut recovered.report);
    Ok(recovered)
}

/// A segment as recovery found it: read and scanned, or trusted from the checkpoint.
#[derive(Debug)]
enum Found {
    Scanned(Scan),
    Trusted(Sealed),
}

impl Found {
    fn id(&self) -> SegmentId {
        match self {
            Found::Scanned(scan) => scan.id,
            Found::Trusted(record) => record.id,
        }
    }

    fn len(&self) -> u64 {
        match self {
            Found::Scanned(scan) => scan.len,
            Found::Trusted(record) => record.len,
        }
    }
}

/// Below this many bytes to scan, one thread does it: starting threads would cost
/// more than they save.
const PARALLEL_SCAN_BYTES: u64 = 8 << 20;

/// Trusts each sealed segment that `records` describes and that the record still
/// fits ([`checkpoint::vouches`]: one read of its last entry), and reads and scans
/// the others (the newest one always, after dropping its cached
/// pages if `drop_newest_cache`), spreading them over the machine's cores when
/// there is enough to read (scanning is CPU-bound once the files are in the page
/// cache).
fn find_segments(
    dir: &Dir,
    listing: &Listing,
    ids: &[SegmentId],
    records: Option<&HashMap<SegmentId, Sealed>>,
    drop_newest_cache: bool,
) -> Result<Vec<Found>> {
    let newest = ids.last().copied();
    let mut found: Vec<Option<Found>> = Vec::with_capacity(ids.len());
    let mut to_scan: Vec<(usize, SegmentId, PathFile, u64)> = Vec::new();
    for (at, &id) in ids.iter().enumerate() {
        let (file, len) = open_segment(dir, &listing.name(id))?;
        if drop_newest_cache && Some(id) == newest {
            file.drop_cache()?;
        }
        let record = match records.and_then(|records| records.get(&id)) {
            Some(record) if Some(id) != newest && checkpoint::vouches(&file, len, record)? => {
                Some(record)
            }
            _ => None,
        };
        match record {
            Some(record) => found.push(Some(Found::Trusted(record.clone()))),
            None => {
                found.push(None);
                to_scan.push((at, id, file, len));
            }
        }
    }
    let total: u64 = to_scan.iter().map(|(_, _, _, len)| len).sum();
    let workers = if total < PARALLEL_SCAN_BYTES {
        1
    } else {
        available_parallelism().clamp(1, 4).min(to_scan.len())
    };
    let scan_some = |worker: usize| -> Result<Vec<(usize, Scan)>> {
        let mut buf = Vec::new();
        let mut scans = Vec::new();
        for (at, id, file, len) in to_scan.iter().skip(worker).step_by(workers) {
            read_segment(file, *len, &mut buf)?;
            let role = if Some(*id) == newest {
                Role::Newest
            } else {
                Role::Sealed
            };
            scans.push((*at, scan_segment(*id, &buf, role)));
        }
        Ok(scans)
    };
    let per_worker: Vec<Result<Vec<(usize, Scan)>>> = if workers <= 1 {
        vec![scan_some(0)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|worker| scope.spawn(move || scan_some(worker)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    for scans in per_worker {
        for (at, scan) in scans? {
            found[at] = Some(Found::Scanned(scan));
        }
    }
    Ok(found
        .into_iter()
        .map(|found| found.expect("every segment trusted or scanned"))
        .collect())
}

/// The machine's cores, asked once (the answer reads cgroup files each time).
fn available_parallelism() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Syncs the sealed segments that recovery accepted and the checkpoint does not
/// describe (those of a Go writer, or of a writer that crashed before its next
/// checkpoint): their entries count as durable from now on, and a later
/// checkpoint will name them. Segments this library sealed were synced then, and
/// syncing a clean file again costs little.
fn sync_unrecorded(dir: &Dir, index: &Index, records: &HashMap<SegmentId, Sealed>) -> Result<()> {
    let active = index.active().id;
    let sealed: HashMap<SegmentId, Sealed> = index
        .sealed(active)
        .into_iter()
        .map(|record| (record.id, record))
        .collect();
    for segment in &index.segments {
        let recorded = records
            .get(&segment.id)
            .is_some_and(|record| sealed.get(&segment.id) == Some(record));
        if segment.id != active && !recorded {
            dir.open(&segment.id.file_name(), OpenMode::Read)?
                .sync_data()?;
        }
    }
    Ok(())
}

fn check_contiguous(dir: &Dir, first: SegmentId, live: &[SegmentId]) -> Result<()> {
    let mut expected = first;
    for &id in live {
        if id != expected {
            return Err(Error::MissingSegment {
                dir: dir.path().to_path_buf(),
                id: expected,
            });
        }
        expected = id.next();
    }
    Ok(())
}

/// How a sealed segment compares with the checkpoint's record of it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// No record: the newest segment (which no record vouches for), or one the
    /// checkpoint does not name.
    Unrecorded,
    /// As recorded: trusted after the one-read check, or scanned and equal.
    Matches(Sealed),
    /// The recorded length and last entry, with damaged regions that held the
    /// recorded entries the scan did not find (bit rot, a failing disk).
    Damaged(Sealed, Split),
    /// Not what the record says: the segment was cut, replaced, grown, emptied,
    /// or the segments before it no longer number its entries as recorded.
    Changed(Sealed),
}

impl Verdict {
    fn record(&self) -> Option<Sealed> {
        match self {
            Verdict::Unrecorded => None,
            Verdict::Matches(record) | Verdict::Damaged(record, _) | Verdict::Changed(record) => {
                Some(record.clone())
            }
        }
    }
}

/// How the recorded entries a segment's damage held are shared among its
/// damaged regions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Split {
    /// Entries each region held, in order.
    PerRegion(Vec<u64>),
    /// Not known: the regions, and the valid entries between the first and the
    /// last, are taken for one gap (the entries between are not kept).
    Merged,
}

/// Compares a scanned sealed segment (its damaged regions `damages`, zeros
/// included) with its checkpoint record.
fn check_scan(scan: &Scan, damages: &[ScanDamage], record: Sealed) -> Verdict {
    if !record.gaps.is_empty() {
        return check_gapped(scan, damages, record);
    }
    let found = scan.offsets.len() as u64;
    if scan.len != record.len {
        return Verdict::Changed(record);
    }
    let Some(last_damage) = damages.last() else {
        return if found == record.entries && scan.last == record.last {
            Verdict::Matches(record)
        } else {
            Verdict::Changed(record)
        };
    };
    let regions = damages.len() as u64;
    // Damage in bytes that kept their length starts where a recorded entry
    // did, so each region held one entry at least.
    if found + regions > record.entries {
        return Verdict::Changed(record);
    }
    let tail_damaged = !matches!(last_damage.resume, Resume::At(_));
    let last_fits = scan.last == record.last
        || (tail_damaged
            && record
                .last
                .is_some_and(|last| last.offset >= last_damage.offset));
    if !last_fits {
        return Verdict::Changed(record);
    }
    let missing = record.entries - found;
    let split = if regions == 1 {
        Split::PerRegion(vec![missing])
    } else if missing == regions {
        Split::PerRegion(vec![1; damages.len()])
    } else {
        Split::Merged
    };
    Verdict::Damaged(record, split)
}

/// Compares a scanned sealed segment with a record that has gaps: what
/// [`remove_skipped_damage`](crate::remove_skipped_damage) recorded before it
/// took the damaged bytes out. Until it has (a crash in between), the damage is
/// still there: one damaged region where each gap is.
fn check_gapped(scan: &Scan, damages: &[ScanDamage], record: Sealed) -> Verdict {
    let found = scan.offsets.len() as u64;
    if found + record.in_gaps() != record.entries {
        return Verdict::Changed(record);
    }
    if damages.is_empty() {
        return if scan.len == record.len && scan.last == record.last {
            Verdict::Matches(record)
        } else {
            Verdict::Changed(record)
        };
    }
    // The damaged bytes still in place move the last entry, not its CRC.
    let crc = |last: Option<LastEntry>| last.map(|last| last.crc);
    if damages.len() != record.gaps.len() || crc(scan.last) != crc(record.last) {
        return Verdict::Changed(record);
    }
    let mut earlier = 0;
    for (damage, gap) in damages.iter().zip(&record.gaps) {
        let before = scan
            .offsets
            .iter()
            .filter(|&&at| u64::from(at) < damage.offset)
            .count() as u64;
        if before + earlier != gap.at {
            return Verdict::Changed(record);
        }
        earlier += gap.len;
    }
    let held = record.gaps.iter().map(|gap| gap.len).collect();
    Verdict::Damaged(record, Split::PerRegion(held))
}

/// Damage skipped under [`RecoveryMode::SkipCorrupted`] whose number of
/// entries is not known (yet): a later record may tell.
#[derive(Debug, Clone, Copy)]
struct Uncounted {
    /// Where its segment is in the index.
    segment: usize,
    /// Sequence numbers of its segment before it, counted from the first.
    at: u64,
    /// Where the damaged bytes start.
    offset: u64,
    /// The sequence number the first entry after it got.
    seq: u64,
}

/// Gives the entries that skipped damage held, `missing` of them (a record
/// after it says how many), their sequence numbers: a gap at the last
/// uncounted region, so that the entries after it have the recorded numbers.
/// With more than one region, how many each held is unknown: the numbering
/// between the first and the last stays unverified.
fn count_skipped(
    index: &mut Index,
    uncounted: &[Uncounted],
    missing: u64,
    report: &mut RecoveryReport,
) {
    let Some(last) = uncounted.last() else {
        return;
    };
    if missing > 0 {
        index.segments[last.segment].add_gap(Gap {
            at: last.at,
            len: missing,
            offset: last.offset,
        });
        for later in index.segments.iter_mut().skip(last.segment + 1) {
            later.first_seq += missing;
        }
    }
    if uncounted.len() > 1 {
        for region in &uncounted[..uncounted.len() - 1] {
            index.segments[region.segment].unverified = true;
        }
        unverified_from(report, uncounted[0].seq);
    }
}

/// Records that sequence numbers from `seq` on may not be those the entries
/// were appended with.
fn unverified_from(report: &mut RecoveryReport, seq: u64) {
    let from = report.numbering_unverified_from.get_or_insert(seq);
    *from = (*from).min(seq);
}

/// Decides, per the recovery mode, what to keep of each segment, checking each
/// sealed segment against its checkpoint record (see [`Verdict`]).
fn apply_mode(
    dir: &Dir,
    mode: RecoveryMode,
    meta: &Meta,
    found: Vec<Found>,
    records: &HashMap<SegmentId, Sealed>,
    plan: &mut Plan,
    report: &mut RecoveryReport,
) -> Result<Index> {
    let last = found.len() - 1;
    let mut index = Index::default();
    let mut next_seq = meta.first_seq;
    let mut stop_after: Option<usize> = None;
    let mut uncounted: Vec<Uncounted> = Vec::new();
    for (i, found) in found.iter().enumerate() {
        if stop_after.is_some() {
            plan.dropped.push(found.id());
            report.truncated_bytes += found.len();
            continue;
        }
        let id = found.id();
        let path = || dir.join(&id.file_name());
        // Zeros reaching the end of a sealed segment are damage (it was trimmed
        // before the next one started); in the newest, preallocated space.
        let mut damages = match found {
            Found::Scanned(scan) => {
                let mut damages = scan.damage.clone();
                if let (Some(zeros), false) = (scan.zero_tail, i == last) {
                    damages.push(ScanDamage {
                        offset: zeros,
                        kind: CorruptionKind::BadLength(0),
                        resume: Resume::Nowhere,
                        last_before: scan.last,
                    });
                }
                damages
            }
            Found::Trusted(_) => Vec::new(),
        };
        // The newest segment is never vouched for: the writer appends to it.
        let record = records.get(&id).cloned().filter(|_| i != last);
        let mut verdict = match (found, record) {
            (Found::Trusted(record), _) => Verdict::Matches(record.clone()),
            (Found::Scanned(scan), Some(record)) => check_scan(scan, &damages, record),
            (Found::Scanned(_), None) => Verdict::Unrecorded,
        };
        // The record's sequence numbers must continue the segments before it.
        let mut renumbered = false;
        if let Some(record) = verdict.record() {
            if record.first_seq == next_seq {
                // Skipped damage before held no recorded entry.
                uncounted.clear();
            } else if mode == RecoveryMode::SkipCorrupted
                && record.first_seq > next_seq
                && !uncounted.is_empty()
            {
                count_skipped(&mut index, &uncounted, record.first_seq - next_seq, report);
                next_seq = record.first_seq;
                uncounted.clear();
            } else {
                verdict = Verdict::Changed(record);
                renumbered = true;
            }
        }
        if let Verdict::Changed(record) = verdict {
            let found_entries = match found {
                Found::Scanned(scan) => scan.offsets.len() as u64,
                Found::Trusted(record) => record.entries,
            };
            let kind = CorruptionKind::SegmentChanged {
                recorded_first_seq: record.first_seq,
                recorded_entries: record.entries,
                recorded_len: record.len,
                found_first_seq: next_seq,
                found_entries,
                found_len: found.len(),
            };
            report.damage.push(Damage {
                position: Position {
                    segment: id,
                    offset: 0,
                },
                kind,
                len: found.len(),
            });
            match mode {
                RecoveryMode::AbsoluteConsistency | RecoveryMode::TolerateCorruptedTail => {
                    return Err(Error::Corrupt {
                        segment: id,
                        path: path(),
                        offset: 0,
                        kind,
                    });
                }
                RecoveryMode::PointInTime => {
                    // Cut before it: it stays, empty, as the newest segment.
                    if found.len() > 0 {
                        plan.cut = Some((id, 0));
                        report.truncated_bytes += found.len();
                    }
                    index.segments.push_back(SegmentIndex::new(id, next_seq));
                    stop_after = Some(i);
                }
                RecoveryMode::SkipCorrupted => {
                    // Which of its entries are the recorded ones cannot be told:
                    // all of it is skipped, and its recorded entries are a gap.
                    report.skipped += 1;
                    if renumbered {
                        unverified_from(report, next_seq);
                    }
                    let mut segment =
                        SegmentIndex::scanned(id, next_seq, Vec::new(), found.len(), None);
                    if record.entries > 0 {
                        segment.add_gap(Gap {
                            at: 0,
                            len: record.entries,
                            offset: 0,
                        });
                    }
                    segment.skipped_damage = true;
                    segment.record = Some(record);
                    next_seq = segment.next_seq();
                    index.segments.push_back(segment);
                }
            }
            continue;
        }
        let scan = match found {
            Found::Scanned(scan) => scan,
            Found::Trusted(record) => {
                let segment = SegmentIndex::trusted(record);
                next_seq = segment.next_seq();
                index.segments.push_back(segment);
                continue;
            }
        };
        let mut keep_until = scan.len;
        if let (Some(zeros), true) = (scan.zero_tail, i == last) {
            // Preallocated space: the entries end here; the writer reuses the zeros.
            keep_until = zeros;
            report.preallocated_bytes = scan.len - zeros;
        }
        if scan.len == 0 && i != last && verdict == Verdict::Unrecorded {
            // The writer starts a segment only to put an entry in it.
            damages.push(ScanDamage {
                offset: 0,
                kind: CorruptionKind::EmptySegment,
                resume: Resume::Nowhere,
                last_before: None,
            });
        }
        for damage in &damages {
            let found = Damage {
                position: Position {
                    segment: scan.id,
                    offset: damage.offset,
                },
                kind: damage.kind,
                len: damage.resume.end(scan.len) - damage.offset,
            };
            report.damage.push(found);
            let torn_tail = i == last && damage.resume == Resume::Nowhere;
            let corrupt = || Error::Corrupt {
                segment: scan.id,
                path: path(),
                offset: damage.offset,
                kind: damage.kind,
            };
            if damage.resume == Resume::Unsearched
                && matches!(
                    mode,
                    RecoveryMode::TolerateCorruptedTail | RecoveryMode::SkipCorrupted
                )
            {
                // Neither a torn tail (valid entries may follow) nor a region to
                // skip (where it ends is unknown).
                return Err(Error::UnboundedDamage {
                    segment: scan.id,
                    path: path(),
                    offset: damage.offset,
                    kind: damage.kind,
                });
            }
            match mode {
                RecoveryMode::AbsoluteConsistency => return Err(corrupt()),
                RecoveryMode::TolerateCorruptedTail if !torn_tail => return Err(corrupt()),
                RecoveryMode::TolerateCorruptedTail => {
                    keep_until = damage.offset;
                    report.torn_tail = Some(found);
                }
                RecoveryMode::SkipCorrupted if torn_tail => {
                    keep_until = damage.offset;
                    report.torn_tail = Some(found);
                }
                RecoveryMode::SkipCorrupted => {
                    report.skipped += 1;
                    if verdict == Verdict::Unrecorded {
                        let at = scan
                            .offsets
                            .iter()
                            .filter(|&&offset| u64::from(offset) < damage.offset)
                            .count() as u64;
                        uncounted.push(Uncounted {
                            segment: index.segments.len(),
                            at,
                            offset: damage.offset,
                            seq: next_seq + at,
                        });
                    }
                }
                RecoveryMode::PointInTime => {
                    keep_until = damage.offset;
                    if torn_tail {
                        report.torn_tail = Some(found);
                    }
                    stop_after = Some(i);
                    break;
                }
            }
        }
        let data_end = scan.len
            - if i == last {
                report.preallocated_bytes
            } else {
                0
            };
        if keep_until < data_end {
            plan.cut = Some((scan.id, keep_until));
            report.truncated_bytes += scan.len - keep_until;
            report.preallocated_bytes = 0;
        }
        let gaps = match &verdict {
            Verdict::Damaged(record, split) if mode == RecoveryMode::SkipCorrupted => {
                gaps_of(scan, &damages, record.entries, split)
            }
            Verdict::Matches(record) => recorded_gaps(scan, record),
            _ => Vec::new(),
        };
        // Valid entries between damaged regions whose split is unknown are part
        // of the one gap.
        let dropped = |offset: u64| {
            gaps.iter()
                .any(|&(gap, end)| gap.offset < offset && offset < end && gap.len > 0)
        };
        let offsets: Vec<u32> = scan
            .offsets
            .iter()
            .copied()
            .filter(|&offset| u64::from(offset) < keep_until && !dropped(u64::from(offset)))
            .collect();
        // The last entry kept: the scan's last, or the last before the damage the
        // segment is cut at.
        let last_kept = if offsets.len() == scan.offsets.len() {
            scan.last
        } else {
            damages
                .iter()
                .find(|damage| damage.offset == keep_until)
                .and_then(|damage| damage.last_before)
        };
        let mut segment = SegmentIndex::scanned(scan.id, next_seq, offsets, keep_until, last_kept);
        for &(gap, _) in &gaps {
            if gap.len > 0 {
                segment.add_gap(gap);
            }
        }
        segment.skipped_damage = damages.iter().any(|damage| damage.offset < keep_until);
        segment.record = verdict.record();
        next_seq = segment.next_seq();
        index.segments.push_back(segment);
    }
    if let Some(first) = uncounted.first() {
        // No record after the damage says how many entries it held.
        for region in &uncounted {
            index.segments[region.segment].unverified = true;
        }
        unverified_from(report, first.seq);
    }
    Ok(index)
}

/// The gaps of a record, in a segment whose damaged bytes are gone: each
/// where the next entry starts.
fn recorded_gaps(scan: &Scan, record: &Sealed) -> Vec<(Gap, u64)> {
    let mut earlier = 0;
    record
        .gaps
        .iter()
        .map(|gap| {
            let next = scan
                .offsets
                .get((gap.at - earlier) as usize)
                .map_or(scan.len, |&at| u64::from(at));
            earlier += gap.len;
            let gap = Gap {
                at: gap.at,
                len: gap.len,
                offset: next,
            };
            (gap, next)
        })
        .collect()
}

/// The gaps a damaged segment's regions leave in its numbering, each with the
/// end of the bytes it covers (the valid entries up to there are part of it).
fn gaps_of(scan: &Scan, damages: &[ScanDamage], recorded: u64, split: &Split) -> Vec<(Gap, u64)> {
    let before = |offset: u64| {
        scan.offsets
            .iter()
            .filter(|&&at| u64::from(at) < offset)
            .count() as u64
    };
    match split {
        Split::PerRegion(held) => {
            let mut earlier = 0;
            damages
                .iter()
                .zip(held)
                .map(|(damage, &len)| {
                    let gap = Gap {
                        at: before(damage.offset) + earlier,
                        len,
                        offset: damage.offset,
                    };
                    earlier += len;
                    (gap, damage.offset)
                })
                .collect()
        }
        Split::Merged => {
            let (Some(first), Some(last)) = (damages.first(), damages.last()) else {
                return Vec::new();
            };
            let at = before(first.offset);
            let after = scan.offsets.len() as u64 - before(last.offset);
            let gap = Gap {
                at,
                len: recorded - at - after,
                offset: first.offset,
            };
            vec![(gap, last.offset)]
        }
    }
}

/// Carries out a plan. Each step is idempotent, and the order keeps every crash
/// point recoverable: stale segments go oldest first (the side file already names
/// the new first segment), dropped segments newest first (the damage that caused
/// the drop stays until the cut, so a second recovery decides the same).
fn execute(dir: &Dir, plan: &Plan, meta: &mut Meta, index: &Index) -> Result<()> {
    let newest_kept = index.active().id;
    let changed = plan
        .cut
        .map(|(id, _)| id)
        .into_iter()
        .chain(plan.dropped.iter().copied())
        .min();
    if let Some(changed) = changed {
        // Segments are about to change: their records must not outlive them
        // (those of the segments before stay if they hold gaps, see checkpoint).
        let kept: Vec<Sealed> = index
            .sealed(newest_kept)
            .into_iter()
            .filter(|record| record.id < changed)
            .collect();
        checkpoint::retain(dir, &kept)?;
    }
    remove_leftovers(dir, plan)?;
    if plan.rewrite_meta {
        // Before any segment changes, both copies of the side file say the same.
        meta::store(dir, meta)?;
    }
    for &id in &plan.stale {
        truncate::remove_segment(dir, id)?;
    }
    if !plan.stale.is_empty() {
        dir.sync()?;
    }
    if changed.is_some() {
        // Positions from the cut on will hold other entries: counted, before any
        // segment changes, for read-only views in other processes (see
        // `Shared::confirm_view`). And before the newest segments go, the side
        // file must stop naming them.
        meta.truncations += 1;
        meta.last_cut = index.next_seq();
        if !plan.dropped.is_empty() {
            meta.last_segment = Some(newest_kept);
        }
        meta::store(dir, meta)?;
    }
    truncate::remove_newest_first(dir, &plan.dropped)?;
    if let Some((id, len)) = plan.cut {
        truncate::cut_segment(dir, id, len)?;
    }
    Ok(())
}

/// Removes the temporary files a crash left (never the truth: each is renamed
/// into place only once complete). A directory in the place of one is an error
/// that names it, not a failed removal.
fn remove_leftovers(dir: &Dir, plan: &Plan) -> Result<()> {
    let mut names: Vec<&str> = Vec::new();
    if plan.remove_index_tmp {
        names.push(INDEX_TMP_FILE);
    }
    names.extend(plan.remove_repair_tmps.iter().map(String::as_str));
    if plan.remove_tmp {
        names.push(META_TMP_FILE);
    }
    if plan.remove_copy_tmp {
        names.push(META_COPY_TMP_FILE);
    }
    for name in names {
        match dir.remove_if_exists(name) {
            Err(Error::Io { source, path, .. })
                if source.kind() == std::io::ErrorKind::IsADirectory =>
            {
                return Err(Error::UnexpectedDirectory { path });
            }
            other => drop(other?),
        }
    }
    Ok(())
}

fn summarise(index: &Index, report: &mut RecoveryReport) {
    report.segments = index.segments.len() as u64;
    report.entries = index.segments.iter().map(SegmentIndex::len).sum();
    report.bytes = index.segments.iter().map(|s| s.end).sum();
    report.first_seq = index.first_seq();
    report.last_seq = index.next_seq() - 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;

    fn entries(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            codec::encode(&mut out, Op::Put, format!("key{i}").as_bytes(), b"value");
        }
        out
    }

    #[test]
    fn clean_segment_has_no_damage() {
        let bytes = entries(5);
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets.len(), 5);
        assert!(scan.damage.is_empty());
    }

    #[test]
    fn damage_with_valid_entries_after_resumes_at_the_next_entry() {
        let mut bytes = entries(5);
        let entry_len = 26; // 17 + 4 ("key0") + 5 ("value")
        bytes[entry_len + 15] ^= 1; // inside entry 2's key
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets.len(), 4);
        assert_eq!(scan.damage.len(), 1);
        assert_eq!(scan.damage[0].offset, entry_len as u64);
        assert_eq!(scan.damage[0].resume, Resume::At(2 * entry_len as u64));
    }

    /// A damaged entry whose length points past a valid entry at another valid one
    /// must not hide the first: an append landing where it points would otherwise
    /// change what a reopen finds.
    #[test]
    fn regression_resync_resumes_at_the_earliest_valid_entry() {
        let mut a = Vec::new();
        codec::encode(&mut a, Op::Put, b"a", b"first");
        let mut b = Vec::new();
        codec::encode(&mut b, Op::Put, b"b", b"damaged");
        let mut c = Vec::new();
        codec::encode(&mut c, Op::Put, b"c", b"hidden by a jump");
        let mut d = Vec::new();
        codec::encode(&mut d, Op::Put, b"d", b"where the length points");
        // B's TOTAL_LEN now spans B and C: a jump by it lands on D.
        let total = (b.len() + c.len() - 4) as u32;
        b[4..8].copy_from_slice(&total.to_le_bytes());
        let bytes = [a.clone(), b.clone(), c.clone(), d].concat();
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        let c_at = (a.len() + b.len()) as u32;
        assert_eq!(scan.offsets, vec![0, c_at, c_at + c.len() as u32]);
        assert_eq!(scan.damage[0].resume, Resume::At(u64::from(c_at)));
    }

    #[test]
    fn damaged_length_field_resynchronises_by_scanning() {
        let mut bytes = entries(5);
        bytes[26 + 5] = 0x7f; // entry 2's TOTAL_LEN: far too large
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets.len(), 4);
        assert_eq!(scan.damage[0].resume, Resume::At(52));
    }

    #[test]
    fn zeros_to_the_end_are_a_zero_tail_not_damage() {
        let mut bytes = entries(3);
        bytes.extend_from_slice(&[0u8; 100]);
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets.len(), 3);
        assert!(scan.damage.is_empty());
        assert_eq!(scan.zero_tail, Some(78));
        // Zeros followed by anything else are damage.
        bytes.push(1);
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!((scan.zero_tail, scan.damage.len()), (None, 1));
        assert_eq!(scan.damage[0].kind, CorruptionKind::BadLength(0));
    }

    /// An entry whose value holds encoded entries, as a shipped segment would.
    fn entry_holding_entries(key: &[u8]) -> Vec<u8> {
        let mut value = vec![b'x'; 10];
        codec::encode(&mut value, Op::Delete, b"alice", b"");
        codec::encode(&mut value, Op::Put, b"mallory", b"phantom");
        value.extend_from_slice(&[b'y'; 40]);
        let mut out = Vec::new();
        codec::encode(&mut out, Op::Put, key, &value);
        out
    }

    /// Issue 12: a write cut short inside a value that holds entries, the file
    /// ending there or zeros after it, is a torn tail of kind `Incomplete`; in a
    /// sealed segment it is damage to the end. Nothing inside is searched.
    #[test]
    fn regression_an_entry_cut_short_owns_its_declared_bytes() {
        let mut bytes = entries(2);
        let start = bytes.len();
        let whole = entry_holding_entries(b"big");
        // Cut inside TOTAL_LEN, inside the key, inside the value, before the last byte.
        for cut in [start + 6, start + 16, start + 30, start + whole.len() - 1] {
            bytes.truncate(start);
            bytes.extend_from_slice(&whole);
            bytes.truncate(cut);
            for zeros in [0, 1, 4096] {
                let mut image = bytes.clone();
                image.resize(cut + zeros, 0);
                for role in [Role::Newest, Role::Sealed] {
                    let scan = scan_segment(SegmentId(1), &image, role);
                    let context = format!("cut at {cut}, {zeros} zeros, {role:?}");
                    assert_eq!(scan.offsets.len(), 2, "{context}");
                    assert_eq!(scan.damage.len(), 1, "{context}");
                    let damage = scan.damage[0];
                    assert_eq!(damage.offset, start as u64, "{context}");
                    assert_eq!(damage.resume, Resume::Nowhere, "{context}");
                    // (At `start + 6` the written bytes end with TOTAL_LEN's zero
                    // high byte: too few to hold a length.)
                    if cut != start + 6 && (role == Role::Newest || zeros == 0) {
                        assert_eq!(
                            damage.kind,
                            CorruptionKind::Incomplete {
                                needed: whole.len() as u64,
                                available: (cut - start) as u64
                            },
                            "{context}"
                        );
                    }
                }
            }
        }
    }

    /// A damaged entry whose lengths agree (here: a CRC that does not match its
    /// body) is skipped whole, chained over a second one: the entries inside their
    /// values never surface, the next real entry does.
    #[test]
    fn damaged_entries_whose_lengths_agree_are_skipped_whole() {
        let mut bytes = entries(1);
        let first = bytes.len();
        let mut damaged = entry_holding_entries(b"one");
        damaged[0] ^= 1;
        bytes.extend_from_slice(&damaged);
        let mut placeholder = entry_holding_entries(b"two");
        placeholder[..4].copy_from_slice(&codec::PLACEHOLDER_CRC.to_le_bytes());
        bytes.extend_from_slice(&placeholder);
        let after = bytes.len();
        codec::encode(&mut bytes, Op::Put, b"after", b"value");
        let scan = scan_segment(SegmentId(1), &bytes, Role::Newest);
        assert_eq!(scan.offsets, vec![0, after as u32]);
        assert_eq!(scan.damage.len(), 1);
        assert_eq!(scan.damage[0].offset, first as u64);
        assert_eq!(scan.damage[0].resume, Resume::At(after as u64));
        // Without the entry after them, they are the tail: nothing valid follows.
        let scan = scan_segment(SegmentId(1), &bytes[..after], Role::Newest);
        assert_eq!(scan.offsets, vec![0]);
        assert_eq!(scan.damage[0].resume, Resume::Nowhere);
    }
}
