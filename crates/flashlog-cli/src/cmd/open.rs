//! How commands open a log: what they accept as a log directory, and how a writer
//! waits for the directory's lock.

use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use flashlog_kv::{Db, DbOptions};
use flashlog_wal::{SegmentId, Wal, META_COPY_FILE, META_FILE};

/// What a command needs to find in `--dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A log: a directory holding at least one segment file (every command but
    /// `put`, `delete` and `shell`).
    Log,
    /// A log, or nothing yet: a missing or empty directory, or one holding only
    /// flashlog side files (`put`, `delete` and `shell`, which create a store).
    LogOrNothing,
}

/// Checks that `dir` is a log (or, for [`Need::LogOrNothing`], nothing yet), so
/// that no command reports "0 entries" for a typo or a folder of other files.
///
/// # Errors
/// `DIR is not a flashlog log: it ...`, saying what it found.
pub fn check_log_dir(dir: &Path, need: Need) -> anyhow::Result<()> {
    let not_a_log = |why: String| anyhow::anyhow!("{} is not a flashlog log: {why}", dir.display());
    let metadata = match std::fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            return match need {
                Need::LogOrNothing => Ok(()),
                Need::Log => Err(not_a_log(
                    "there is no such directory (only put, delete and shell create a store)".into(),
                )),
            };
        }
        Err(err) => return Err(err).with_context(|| format!("cannot stat {}", dir.display())),
    };
    if !metadata.is_dir() {
        return Err(not_a_log("it is a file, not a directory".into()));
    }
    let mut foreign = None;
    let mut side_files = false;
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if SegmentId::parse_file_name(&name).is_some() {
            return Ok(());
        }
        if name.starts_with("flashlog") {
            side_files = true;
        } else if foreign.is_none() {
            foreign = Some(name.into_owned());
        }
    }
    match (need, foreign) {
        (_, Some(found)) => Err(not_a_log(format!("it holds {found:?} and no segment file"))),
        (Need::LogOrNothing, None) => Ok(()),
        (Need::Log, None) if side_files => Err(not_a_log(
            "it holds flashlog side files but no segment file".into(),
        )),
        (Need::Log, None) => Err(not_a_log("it is empty".into())),
    }
}

/// Opens the store in `dir` read-write, creating it if there is none, waiting up
/// to `lock_timeout` for another process to release the directory's lock.
pub fn open_db(dir: &Path, options: DbOptions, lock_timeout: Duration) -> anyhow::Result<Db> {
    check_log_dir(dir, Need::LogOrNothing)?;
    wait_for_lock(lock_timeout, || Db::open(dir, options.clone()))
        .with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// Opens an existing store in `dir` read-write (`compact`): never creates one.
pub fn open_existing_db(
    dir: &Path,
    options: DbOptions,
    lock_timeout: Duration,
) -> anyhow::Result<Db> {
    check_log_dir(dir, Need::Log)?;
    wait_for_lock(lock_timeout, || Db::open(dir, options.clone()))
        .with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// Opens the store in `dir` read-only (no lock: works while another process has it).
pub fn open_db_read_only(dir: &Path, options: DbOptions) -> anyhow::Result<Db> {
    check_log_dir(dir, Need::Log)?;
    Db::open(dir, options.read_only())
        .with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// Opens the log in `dir` read-only, keeping every valid entry and reporting every
/// damaged region (nothing is changed).
pub fn open_wal_inspect(dir: &Path) -> anyhow::Result<Wal> {
    check_log_dir(dir, Need::Log)?;
    Wal::open(dir, flashlog_cli::inspect_options()).map_err(|err| open_error(dir, err))
}

/// The error of a failed open of the log in `dir`, with a hint when the side file
/// is gone: a log truncated at the front opens only with it
/// (`flashlog repair --first-seq N` rebuilds it).
pub fn open_error(dir: &Path, err: flashlog_wal::Error) -> anyhow::Error {
    let hint = side_file_gone(dir, &err);
    let err = anyhow::Error::new(err).context(format!("cannot open the log in {}", dir.display()));
    if hint {
        anyhow::anyhow!(
            "{err:#}; if the log was truncated at the front and lost its side file \
             ({META_FILE}), `flashlog repair --first-seq N` rebuilds it (N: the sequence number \
             of the oldest segment's first entry)"
        )
    } else {
        err
    }
}

/// Whether `err` is a segment missing at the start of a log that has no side file.
fn side_file_gone(dir: &Path, err: &flashlog_wal::Error) -> bool {
    matches!(err, flashlog_wal::Error::MissingSegment { .. })
        && [META_FILE, META_COPY_FILE]
            .iter()
            .all(|name| !dir.join(name).exists())
}

/// The library's open fails at once when another process holds the lock; a
/// command-line writer waits instead (four shell loops of `flashlog put` on one
/// store all succeed), retrying with a growing, jittered pause up to `timeout`.
///
/// # Errors
/// `open`'s error; a lock still held after `timeout` as [`Busy`] around the
/// lock error (exit code 3, see `main`).
pub fn wait_for_lock<T, E>(
    timeout: Duration,
    mut open: impl FnMut() -> Result<T, E>,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match open() {
            Err(err) if is_locked(&err) => {
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(anyhow::Error::new(err).context(Busy { timeout }));
                }
                // Jitter, so that waiting writers do not retry in step.
                let jitter = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let sleep = pause.mul_f64(0.5 + f64::from(jitter % 1000) / 1000.0);
                std::thread::sleep(sleep.min(timeout - waited));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other.map_err(anyhow::Error::new),
        }
    }
}

/// The lock stayed held past `--lock-timeout`: another process is writing.
#[derive(Debug)]
pub struct Busy {
    timeout: Duration,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "busy: still locked after {} s (--lock-timeout)",
            self.timeout.as_secs_f64()
        )
    }
}

impl std::error::Error for Busy {}

/// Whether `err` is (or wraps) the log's "another open log holds the lock".
pub fn is_locked(err: &(dyn std::error::Error + 'static)) -> bool {
    match err.downcast_ref::<flashlog_kv::Error>() {
        Some(flashlog_kv::Error::Wal(flashlog_wal::Error::Locked { .. })) => true,
        _ => matches!(
            err.downcast_ref::<flashlog_wal::Error>(),
            Some(flashlog_wal::Error::Locked { .. })
        ),
    }
}

/// The file name of each segment as it is in the directory: a Go-written
/// `segment-1.log` is shown as that, not as `segment-0001.log`.
#[derive(Debug, Default)]
pub struct SegmentNames(std::collections::BTreeMap<SegmentId, String>);

impl SegmentNames {
    /// Lists `dir`; a directory that cannot be listed gives the usual names.
    pub fn read(dir: &Path) -> SegmentNames {
        let mut names = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = SegmentId::parse_file_name(&name) {
                names.insert(id, name);
            }
        }
        SegmentNames(names)
    }

    /// The file name of segment `id`.
    pub fn name(&self, id: SegmentId) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| id.file_name())
    }
}
