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
use crate::index::{Index, SegmentIndex, Unloaded};
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

/// Scans one segment's bytes. Pure: any bytes give a result, nothing panics.
fn scan_segment(id: SegmentId, bytes: &[u8]) -> Scan {
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
                let resume = resync(bytes, at, &mut budget);
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

/// Finds where the next valid entry after damage at `at` starts: the earliest one.
///
/// Not the damaged entry's own `TOTAL_LEN`, even when a valid entry starts there: a
/// damaged length can point past valid entries, and once an append puts a valid
/// entry where it points, a jump would hide entries an earlier open had found and
/// renumber everything after them (found by fuzzing, under `SkipCorrupted`).
fn resync(bytes: &[u8], at: usize, budget: &mut u64) -> Resume {
    match codec::valid_entry_after(&bytes[at..], budget) {
        codec::Search::Found(offset) => Resume::At((at + offset) as u64),
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
    let scan = scan_segment(record.id, buf);
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
    // to be finished (it must see the segment it cuts). A read-write open also
    // needs it to know which sealed segments are synced already.
    let trust = mode == RecoveryMode::TolerateCorruptedTail && meta.pending_truncate_back.is_none();
    let records = if trust || access == Access::ReadWrite {
        let (records, note) = checkpoint::load(dir);
        report.side_files.extend(note);
        records
    } else {
        HashMap::new()
    };
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
    let (plan_before, report_before) = (plan.clone(), report.clone());
    let index = match apply_mode(dir, mode, &meta, found, &mut plan, &mut report)? {
        Some(index) => index,
        None => {
            // The checkpoint does not fit the segments' sequence numbers: read them all.
            (plan, report) = (plan_before, report_before);
            let found = find_segments(dir, &listing, &live, None, false)?;
            apply_mode(dir, mode, &meta, found, &mut plan, &mut report)?
                .expect("scanned segments always fit")
        }
    };
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
        execute(dir, &plan, &mut recovered.meta, recovered.index.active().id)?;
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
            Some(record) => found.push(Some(Found::Trusted(*record))),
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
            scans.push((*at, scan_segment(*id, &buf)));
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

/// Decides, per the recovery mode, what to keep of each segment. `None` if a
/// trusted segment's sequence numbers do not follow from the segments before it:
/// the checkpoint is stale, and every segment must be scanned.
fn apply_mode(
    dir: &Dir,
    mode: RecoveryMode,
    meta: &Meta,
    found: Vec<Found>,
    plan: &mut Plan,
    report: &mut RecoveryReport,
) -> Result<Option<Index>> {
    let last = found.len() - 1;
    let mut index = Index::default();
    let mut next_seq = meta.first_seq;
    let mut stop_after: Option<usize> = None;
    for (i, found) in found.iter().enumerate() {
        if stop_after.is_some() {
            plan.dropped.push(found.id());
            report.truncated_bytes += found.len();
            continue;
        }
        let scan = match found {
            Found::Scanned(scan) => scan,
            Found::Trusted(record) if record.first_seq == next_seq => {
                let segment = SegmentIndex::trusted(record);
                next_seq = segment.next_seq();
                index.segments.push_back(segment);
                continue;
            }
            Found::Trusted(_) => return Ok(None),
        };
        let mut keep_until = scan.len;
        let mut damages = scan.damage.clone();
        if let Some(zeros) = scan.zero_tail {
            if i == last {
                // Preallocated space: the entries end here; the writer reuses the zeros.
                keep_until = zeros;
                report.preallocated_bytes = scan.len - zeros;
            } else {
                // Older segments are trimmed before the next one starts: zeros there
                // are damage.
                damages.push(ScanDamage {
                    offset: zeros,
                    kind: CorruptionKind::BadLength(0),
                    resume: Resume::Nowhere,
                    last_before: scan.last,
                });
            }
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
            let path = || dir.join(&scan.id.file_name());
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
                RecoveryMode::SkipCorrupted => report.skipped += 1,
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
        let offsets: Vec<u32> = scan
            .offsets
            .iter()
            .copied()
            .filter(|&offset| u64::from(offset) < keep_until)
            .collect();
        // The last entry kept: the scan's last, or the last before the damage the
        // segment is cut at.
        let last = if offsets.len() == scan.offsets.len() {
            scan.last
        } else {
            damages
                .iter()
                .find(|damage| damage.offset == keep_until)
                .and_then(|damage| damage.last_before)
        };
        let mut segment = SegmentIndex::scanned(scan.id, next_seq, offsets, keep_until, last);
        segment.skipped_damage = damages.iter().any(|damage| damage.offset < keep_until);
        next_seq = segment.next_seq();
        index.segments.push_back(segment);
    }
    Ok(Some(index))
}

/// Carries out a plan. Each step is idempotent, and the order keeps every crash
/// point recoverable: stale segments go oldest first (the side file already names
/// the new first segment), dropped segments newest first (the damage that caused
/// the drop stays until the cut, so a second recovery decides the same).
fn execute(dir: &Dir, plan: &Plan, meta: &mut Meta, newest_kept: SegmentId) -> Result<()> {
    if plan.cut.is_some() || !plan.dropped.is_empty() {
        // Segments are about to change: the checkpoint must not outlive them.
        checkpoint::remove(dir)?;
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
    if !plan.dropped.is_empty() {
        // Before the newest segments go, the side file must stop naming them.
        meta.last_segment = Some(newest_kept);
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
        let scan = scan_segment(SegmentId(1), &bytes);
        assert_eq!(scan.offsets.len(), 5);
        assert!(scan.damage.is_empty());
    }

    #[test]
    fn damage_with_valid_entries_after_resumes_at_the_next_entry() {
        let mut bytes = entries(5);
        let entry_len = 26; // 17 + 4 ("key0") + 5 ("value")
        bytes[entry_len + 15] ^= 1; // inside entry 2's key
        let scan = scan_segment(SegmentId(1), &bytes);
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
        let scan = scan_segment(SegmentId(1), &bytes);
        let c_at = (a.len() + b.len()) as u32;
        assert_eq!(scan.offsets, vec![0, c_at, c_at + c.len() as u32]);
        assert_eq!(scan.damage[0].resume, Resume::At(u64::from(c_at)));
    }

    #[test]
    fn damaged_length_field_resynchronises_by_scanning() {
        let mut bytes = entries(5);
        bytes[26 + 5] = 0x7f; // entry 2's TOTAL_LEN: far too large
        let scan = scan_segment(SegmentId(1), &bytes);
        assert_eq!(scan.offsets.len(), 4);
        assert_eq!(scan.damage[0].resume, Resume::At(52));
    }

    #[test]
    fn zeros_to_the_end_are_a_zero_tail_not_damage() {
        let mut bytes = entries(3);
        bytes.extend_from_slice(&[0u8; 100]);
        let scan = scan_segment(SegmentId(1), &bytes);
        assert_eq!(scan.offsets.len(), 3);
        assert!(scan.damage.is_empty());
        assert_eq!(scan.zero_tail, Some(78));
        // Zeros followed by anything else are damage.
        bytes.push(1);
        let scan = scan_segment(SegmentId(1), &bytes);
        assert_eq!((scan.zero_tail, scan.damage.len()), (None, 1));
        assert_eq!(scan.damage[0].kind, CorruptionKind::BadLength(0));
    }
}
