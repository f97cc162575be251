//! The cursor side file `flashlog.cursors`: each named consumer's position in the
//! log, so that a reader resumes after a restart where it left off
//! ([`Wal::cursor`](crate::Wal::cursor), [`Wal::set_cursor`](crate::Wal::set_cursor)).
//!
//! A cursor is the sequence number of the last entry its consumer has handled
//! (0: none yet); the consumer resumes with `iter_from(cursor + 1)`.
//!
//! Layout, integers little-endian, cursors sorted by name, names unique:
//! ```text
//! | "FLWLCURS" (8) | version u32 = 1 | count u32 |
//! | count x ( name_len u8 | name (name_len bytes) | seq u64 ) |
//! | CRC-32/IEEE of every byte before (4) |
//! ```
//! A name is 1 to [`MAX_CURSOR_NAME_LEN`] bytes of printable ASCII (`!` to `~`);
//! a log keeps at most [`MAX_CURSORS`] cursors (the file then stays under
//! 140 KiB, rewritten whole by each change).
//!
//! Every change replaces the whole file atomically and durably: written to
//! `flashlog.cursors.tmp`, fdatasynced, renamed over `flashlog.cursors`, the
//! directory fsynced. A crash therefore leaves the old file or the new one,
//! never a mix; a leftover `.tmp` is never read (a read-write open removes it).
//! The Go implementation ignores the file (it is not a segment), and the log
//! needs none of it: a damaged file fails only the cursor calls
//! ([`Error::CorruptCursors`], naming the file and the offset) and is noted in
//! the recovery report; [`Wal::clear_cursors`](crate::Wal::clear_cursors)
//! removes it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::dir::{CURSORS_FILE, CURSORS_TMP_FILE};
use crate::error::{Error, Result};
use crate::fs::{Dir, OpenMode, StdFs};
use crate::meta::{SideFileAction, SideFileNote, SideFileProblem};
use crate::position::MAX_SEQ;
use crate::sync::{Mutex, MutexGuard};

/// The longest cursor name, in bytes.
pub const MAX_CURSOR_NAME_LEN: usize = 128;
/// The most cursors a log keeps.
pub const MAX_CURSORS: usize = 1024;

const MAGIC: &[u8; 8] = b"FLWLCURS";
const VERSION: u32 = 1;
/// Magic, version, count.
const HEADER_LEN: usize = 16;
/// The longest file: every cursor with the longest name.
const MAX_LEN: u64 = (HEADER_LEN + MAX_CURSORS * (1 + MAX_CURSOR_NAME_LEN + 8) + 4) as u64;

/// Cursor names and positions, by name.
pub(crate) type Map = BTreeMap<String, u64>;

/// Checks a cursor name (see [`Error::InvalidCursorName`]).
pub(crate) fn check_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "a cursor name is at least one byte"
    } else if name.len() > MAX_CURSOR_NAME_LEN {
        "a cursor name is at most 128 bytes"
    } else if !name.bytes().all(|byte| byte.is_ascii_graphic()) {
        "a cursor name is printable ASCII, '!' to '~' (no space, control or non-ASCII character)"
    } else {
        return Ok(());
    };
    let mut shown: String = name.chars().take(64).collect();
    if shown.len() < name.len() {
        shown.push_str("...");
    }
    Err(Error::InvalidCursorName {
        name: shown,
        reason,
    })
}

fn encode(map: &Map) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + map.len() * 32 + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (name, seq) in map {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes the file's bytes; a failure names the offset where it was found.
fn decode(bytes: &[u8]) -> std::result::Result<Map, (u64, &'static str)> {
    if bytes.len() < HEADER_LEN + 4 {
        return Err((0, "too short for a cursor file"));
    }
    let body = &bytes[..bytes.len() - 4];
    let stored = u32::from_le_bytes(bytes[body.len()..].try_into().unwrap_or([0; 4]));
    if crc32fast::hash(body) != stored {
        return Err((body.len() as u64, "checksum mismatch"));
    }
    if &body[..8] != MAGIC {
        return Err((0, "not a flashlog cursor file"));
    }
    let word = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().unwrap_or([0; 4]));
    if word(8) != VERSION {
        return Err((8, "unsupported version"));
    }
    let count = word(12) as usize;
    if count > MAX_CURSORS {
        return Err((12, "more cursors than a log keeps"));
    }
    let mut map = Map::new();
    let mut at = HEADER_LEN;
    for _ in 0..count {
        let Some(&len) = body.get(at) else {
            return Err((at as u64, "ends inside a cursor"));
        };
        let (name_at, seq_at) = (at + 1, at + 1 + usize::from(len));
        let Some(seq) = body.get(seq_at..seq_at + 8) else {
            return Err((at as u64, "ends inside a cursor"));
        };
        let name = std::str::from_utf8(&body[name_at..seq_at])
            .ok()
            .filter(|name| check_name(name).is_ok())
            .ok_or((name_at as u64, "invalid cursor name"))?;
        if map
            .last_key_value()
            .is_some_and(|(last, _)| last.as_str() >= name)
        {
            return Err((name_at as u64, "cursor names out of order"));
        }
        let seq = u64::from_le_bytes(seq.try_into().unwrap_or([0; 8]));
        if seq > MAX_SEQ {
            return Err((seq_at as u64, "sequence number out of range"));
        }
        map.insert(name.to_owned(), seq);
        at = seq_at + 8;
    }
    if at != body.len() {
        return Err((at as u64, "bytes after the last cursor"));
    }
    Ok(map)
}

/// Reads the cursors of the log in `dir` from its cursor file, without opening
/// the log (what `flashlog stats` shows): as [`Wal::cursors`](crate::Wal::cursors)
/// of a read-only view. No file: no cursors.
///
/// ```
/// use flashlog_wal::{Op, Options, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let wal = Wal::open(dir.path(), Options::default())?;
/// wal.append(Op::Put, b"k", b"v")?;
/// wal.set_cursor("indexer", 1)?;
/// assert_eq!(flashlog_wal::read_cursors(dir.path())?.get("indexer"), Some(&1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::CorruptCursors`], [`Error::Io`].
pub fn read_cursors(dir: impl AsRef<Path>) -> Result<BTreeMap<String, u64>> {
    let dir = Dir::new(Arc::new(StdFs), dir.as_ref().to_path_buf());
    match read(&dir)? {
        Cache::Loaded(map) => Ok(map),
        Cache::Damaged { offset, reason } => Err(Error::CorruptCursors {
            path: dir.join(CURSORS_FILE),
            offset,
            reason,
        }),
        Cache::Unloaded => Ok(Map::new()),
    }
}

/// What the cursor file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cache {
    /// The cursors (none when there is no file).
    Loaded(Map),
    /// The file is damaged: every cursor call fails until it is cleared.
    Damaged { offset: u64, reason: &'static str },
    /// Not read yet (the read at open failed): read at the next call.
    Unloaded,
}

/// Reads the cursor file; a missing one holds no cursors.
fn read(dir: &Dir) -> Result<Cache> {
    let Some(file) = dir.open_if_exists(CURSORS_FILE, OpenMode::Read)? else {
        return Ok(Cache::Loaded(Map::new()));
    };
    let len = file.len()?;
    if len > MAX_LEN {
        return Ok(Cache::Damaged {
            offset: MAX_LEN,
            reason: "longer than a cursor file can be",
        });
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(match decode(&bytes) {
        Ok(map) => Cache::Loaded(map),
        Err((offset, reason)) => Cache::Damaged { offset, reason },
    })
}

/// The cursors of an open log. A read-write log keeps them in memory (its
/// directory lock makes it the file's only writer) and serializes changes: each
/// writes the file with every change before it. A read-only view reads the file
/// at each call, so it sees what the writer stored last.
#[derive(Debug)]
pub(crate) struct Cursors {
    dir: Dir,
    read_only: bool,
    cache: Mutex<Cache>,
}

impl Cursors {
    /// Loads the cursors of a log opened read-only or read-write. A read-write
    /// open lowers cursors past `last_seq` (entries a crash took back, under
    /// `SyncPolicy::Manual` or `Interval`) to it, durably: otherwise the entries
    /// appended next would get numbers their consumers believe handled. A
    /// damaged file is returned as a note for the report (the cursor calls then
    /// fail, the log works), and so is an unreadable one at a read-only open.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read at a read-write open (which
    /// must lower the cursors in it), or lowered cursors cannot be stored.
    pub(crate) fn open(
        dir: &Dir,
        read_only: bool,
        last_seq: u64,
    ) -> Result<(Cursors, Option<SideFileNote>)> {
        let (cache, problem) = match read(dir) {
            Ok(Cache::Damaged { offset, reason }) => (
                Cache::Damaged { offset, reason },
                Some(SideFileProblem::Damaged(reason)),
            ),
            Ok(cache) => (cache, None),
            Err(err) => (
                Cache::Unloaded,
                Some(SideFileProblem::Unreadable(err.with_causes())),
            ),
        };
        let note = problem.map(|problem| SideFileNote {
            path: dir.join(CURSORS_FILE),
            problem,
            action: SideFileAction::CursorsUnavailable,
        });
        let cursors = Cursors {
            dir: dir.clone(),
            read_only,
            cache: Mutex::new(cache),
        };
        if !read_only {
            // Never read: a crash before its rename.
            let _ = dir.remove_if_exists(CURSORS_TMP_FILE);
            cursors.lower_from(last_seq + 1)?;
        }
        Ok((cursors, note))
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Every cursor, by name.
    ///
    /// # Errors
    /// [`Error::CorruptCursors`], [`Error::Io`].
    pub(crate) fn all(&self) -> Result<Map> {
        if self.read_only {
            return self.loaded(read(&self.dir)?);
        }
        let mut cache = self.lock();
        if *cache == Cache::Unloaded {
            *cache = read(&self.dir)?;
        }
        self.loaded(cache.clone())
    }

    fn loaded(&self, cache: Cache) -> Result<Map> {
        match cache {
            Cache::Loaded(map) => Ok(map),
            Cache::Damaged { offset, reason } => Err(Error::CorruptCursors {
                path: self.dir.join(CURSORS_FILE),
                offset,
                reason,
            }),
            Cache::Unloaded => read(&self.dir).and_then(|cache| self.loaded(cache)),
        }
    }

    /// Changes the cursors with `change` (which returns whether it changed
    /// anything) and stores them durably before the change is seen, all under
    /// one lock: concurrent changes are serialized, none is lost.
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; `change`'s error; [`Error::CorruptCursors`],
    /// [`Error::Io`] (the file and the cursors are then as before).
    pub(crate) fn update(&self, change: impl FnOnce(&mut Map) -> Result<bool>) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let mut cache = self.lock();
        if *cache == Cache::Unloaded {
            *cache = read(&self.dir)?;
        }
        let mut map = self.loaded(cache.clone())?;
        if change(&mut map)? {
            self.dir
                .replace_durably(CURSORS_FILE, CURSORS_TMP_FILE, &encode(&map))?;
            *cache = Cache::Loaded(map);
        }
        Ok(())
    }

    /// Lowers every cursor at or past `first_cut` to `first_cut - 1`, durably:
    /// before `truncate_back(first_cut)` changes a file, so that a crash at any
    /// point leaves no cursor past the log's end. A damaged file is left as it is.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn lower_from(&self, first_cut: u64) -> Result<()> {
        let lowered = self.update(|map| {
            let mut changed = false;
            for seq in map.values_mut().filter(|seq| **seq >= first_cut) {
                *seq = first_cut - 1;
                changed = true;
            }
            Ok(changed)
        });
        match lowered {
            Err(Error::CorruptCursors { .. }) => Ok(()),
            other => other,
        }
    }

    /// Removes the cursor file, damaged or not: no cursors are left.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Io`].
    pub(crate) fn clear(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let mut cache = self.lock();
        if self.dir.remove_if_exists(CURSORS_FILE)? {
            self.dir.sync()?;
        }
        *cache = Cache::Loaded(Map::new());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "consumer-1", "replica:eu/2", &"x".repeat(128), "~!"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", " ", "a b", "tab\t", "é", "nul\0", &"x".repeat(129)] {
            assert!(
                matches!(check_name(bad), Err(Error::InvalidCursorName { .. })),
                "{bad:?}"
            );
        }
        let Err(Error::InvalidCursorName { name, .. }) = check_name(&"y".repeat(500)) else {
            panic!("accepted")
        };
        assert_eq!(name, format!("{}...", "y".repeat(64)));
    }

    #[test]
    fn round_trip_and_every_flip_detected() {
        let mut map = Map::new();
        assert_eq!(decode(&encode(&map)), Ok(map.clone()));
        map.insert("a".into(), 0);
        map.insert("reader-2".into(), 77);
        map.insert("z".repeat(128), MAX_SEQ);
        let bytes = encode(&map);
        assert_eq!(decode(&bytes), Ok(map));
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x04;
            assert!(decode(&damaged).is_err(), "flip at {at} not detected");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "cut at {len} not detected");
        }
    }

    /// A checksum that holds over contents no cursor file has is damage too.
    #[test]
    fn crafted_contents_are_refused_with_their_offset() {
        let seal = |mut body: Vec<u8>| {
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            body
        };
        let header = |count: u32| {
            let mut out = MAGIC.to_vec();
            out.extend_from_slice(&VERSION.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out
        };
        let cursor = |name: &[u8], seq: u64| {
            let mut out = vec![name.len() as u8];
            out.extend_from_slice(name);
            out.extend_from_slice(&seq.to_le_bytes());
            out
        };
        let cases: Vec<(Vec<u8>, u64)> = vec![
            ([header(2), cursor(b"b", 1), cursor(b"a", 1)].concat(), 27),
            ([header(2), cursor(b"a", 1), cursor(b"a", 1)].concat(), 27),
            ([header(1), cursor(b"a b", 1)].concat(), 17),
            ([header(1), cursor(b"a", u64::MAX)].concat(), 18),
            ([header(2), cursor(b"a", 1)].concat(), 26),
            ([header(0), cursor(b"a", 1)].concat(), 16),
            (header(u32::MAX), 12),
        ];
        for (body, offset) in cases {
            let err = decode(&seal(body.clone())).unwrap_err();
            assert_eq!(err.0, offset, "{body:?}: {err:?}");
        }
    }
}
