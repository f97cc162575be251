//! Recovery's first step: reading the segments. Each sealed segment the
//! checkpoint vouches for is trusted after one small read; the others (the newest
//! always) are read and scanned, across cores when there is enough to read.

use std::collections::HashMap;

use crate::checkpoint::{self, Sealed};
use crate::dir::Listing;
use crate::error::Result;
use crate::fs::{Dir, PathFile};
use crate::meta::{Loaded, SideFileNote};
use crate::position::SegmentId;
use crate::segment::{open_segment, read_segment, scan_segment, Role, Scan};

/// What recovery read of a log directory, before any policy: the input of
/// [`plan`](crate::recovery::plan::plan).
#[derive(Debug)]
pub(crate) struct Survey {
    /// The side file, from both copies.
    pub(crate) loaded: Loaded,
    /// The directory's segment files and leftover temporary files.
    pub(crate) listing: Listing,
    /// The checkpoint's records (empty without a usable checkpoint).
    pub(crate) records: HashMap<SegmentId, Sealed>,
    /// An unreadable checkpoint, noted for the report.
    pub(crate) checkpoint_note: Option<SideFileNote>,
    /// The live segments, oldest first, each read or trusted.
    pub(crate) found: Vec<Found>,
}

/// A segment as recovery found it: read and scanned, or trusted from the checkpoint.
#[derive(Debug)]
pub(crate) enum Found {
    Scanned(Scan),
    Trusted(Sealed),
}

impl Found {
    pub(crate) fn id(&self) -> SegmentId {
        match self {
            Found::Scanned(scan) => scan.id,
            Found::Trusted(record) => record.id,
        }
    }

    pub(crate) fn len(&self) -> u64 {
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
pub(crate) fn find_segments(
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
