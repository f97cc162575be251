//! The snapshot file: the whole key-value state at one log id, written by
//! scanning the store (one key at a time, never all in memory) and read back
//! into a fresh store.
//!
//! Layout (integers little-endian):
//! ```text
//! "FLSNAP01" · meta length u32 · meta (JSON: last log id, membership, snapshot id)
//! per key: 1u8 · key length u32 · value length u32 · key · value
//! end:     0u8 · key count u64 · CRC-32 of every byte before it u32
//! ```

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use flashlog_kv::Db;

use crate::error::{io, Error, Result};
use crate::types::SnapshotMeta;

const MAGIC: &[u8; 8] = b"FLSNAP01";
/// The largest meta a snapshot file may claim (a membership of a few nodes is far less).
const MAX_META: u32 = 1 << 20;
/// The largest key plus value a record may claim (a flashlog entry is far smaller).
const MAX_RECORD: u64 = 1 << 30;

/// A writer that keeps the CRC-32 of what went through it.
struct Crc<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that keeps the CRC-32 of what came through it.
struct CrcRead<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for CrcRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes the snapshot of `db` described by `meta` to `path` and fsyncs it.
/// The caller keeps writes to `db` out while this runs. Returns the key count.
///
/// # Errors
/// `Error::Io` naming `path`; the store's read errors.
pub fn write(db: &Db, meta: &SnapshotMeta, path: &Path) -> Result<u64> {
    let file = File::create(path).map_err(io("create", path))?;
    let mut out = Crc {
        inner: BufWriter::with_capacity(1 << 16, file),
        crc: crc32fast::Hasher::new(),
    };
    let meta = serde_json::to_vec(meta).map_err(|e| Error::Invalid(e.to_string()))?;
    let werr = io("write", path);
    let mut count = 0u64;
    let result = (|| -> std::io::Result<std::result::Result<(), flashlog_kv::Error>> {
        out.write_all(MAGIC)?;
        out.write_all(&(meta.len() as u32).to_le_bytes())?;
        out.write_all(&meta)?;
        for pair in db.scan_prefix(b"") {
            let (key, value) = match pair {
                Ok(pair) => pair,
                Err(e) => return Ok(Err(e)),
            };
            out.write_all(&[1])?;
            out.write_all(&(key.len() as u32).to_le_bytes())?;
            out.write_all(&(value.len() as u32).to_le_bytes())?;
            out.write_all(&key)?;
            out.write_all(&value)?;
            count += 1;
        }
        out.write_all(&[0])?;
        out.write_all(&count.to_le_bytes())?;
        let crc = out.crc.clone().finalize();
        out.inner.write_all(&crc.to_le_bytes())?;
        out.inner.flush()?;
        Ok(Ok(()))
    })();
    match result {
        Err(e) => return Err(werr(e)),
        Ok(Err(e)) => return Err(Error::Kv(e)),
        Ok(Ok(())) => {}
    }
    let file = out
        .inner
        .into_inner()
        .map_err(|e| io("write", path)(e.into_error()))?;
    file.sync_all().map_err(io("fsync", path))?;
    Ok(count)
}

fn damaged(path: &Path, what: impl Into<String>) -> Error {
    Error::Damaged {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn read_header<R: Read>(input: &mut R, path: &Path) -> Result<SnapshotMeta> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(io("read", path))?;
    if &magic != MAGIC {
        return Err(damaged(path, "not a flashlog snapshot (bad magic)"));
    }
    let mut len = [0u8; 4];
    input.read_exact(&mut len).map_err(io("read", path))?;
    let len = u32::from_le_bytes(len);
    if len > MAX_META {
        return Err(damaged(path, format!("meta of {len} bytes")));
    }
    let mut meta = vec![0u8; len as usize];
    input.read_exact(&mut meta).map_err(io("read", path))?;
    serde_json::from_slice(&meta).map_err(|e| damaged(path, format!("meta: {e}")))
}

/// The meta at the start of the snapshot file at `path`.
///
/// # Errors
/// `Error::Io`, or `Error::Damaged` for a file that is not a snapshot.
pub fn read_meta(path: &Path) -> Result<SnapshotMeta> {
    let mut input = BufReader::new(File::open(path).map_err(io("open", path))?);
    read_header(&mut input, path)
}

/// The meta at the start of the snapshot in `file` (named `path` in errors),
/// read from the file's current position.
///
/// # Errors
/// As [`read_meta`].
pub fn read_meta_from(file: &mut File, path: &Path) -> Result<SnapshotMeta> {
    read_header(file, path)
}

/// Reads the snapshot in `file` (named `path` in errors) from its start into
/// `db`, which should be empty; checks the key count and the checksum at the end.
/// Returns the meta and the key count. The caller syncs `db`.
///
/// # Errors
/// `Error::Io`, `Error::Damaged` (truncated, bad checksum), the store's errors.
pub fn load(file: &File, path: &Path, db: &Db) -> Result<(SnapshotMeta, u64)> {
    let mut input = CrcRead {
        inner: BufReader::with_capacity(1 << 16, file),
        crc: crc32fast::Hasher::new(),
    };
    let meta = read_header(&mut input, path)?;
    let rerr = |e: std::io::Error| io("read", path)(e);
    let mut count = 0u64;
    loop {
        let mut tag = [0u8; 1];
        input.read_exact(&mut tag).map_err(rerr)?;
        match tag[0] {
            1 => {
                let mut lens = [0u8; 8];
                input.read_exact(&mut lens).map_err(rerr)?;
                let klen = u32::from_le_bytes([lens[0], lens[1], lens[2], lens[3]]) as usize;
                let vlen = u32::from_le_bytes([lens[4], lens[5], lens[6], lens[7]]) as usize;
                if klen as u64 + vlen as u64 > MAX_RECORD {
                    return Err(damaged(
                        path,
                        format!("a key of {klen} and a value of {vlen} bytes"),
                    ));
                }
                let mut key = vec![0u8; klen];
                input.read_exact(&mut key).map_err(rerr)?;
                let mut value = vec![0u8; vlen];
                input.read_exact(&mut value).map_err(rerr)?;
                db.put(&key, &value)?;
                count += 1;
            }
            0 => {
                let mut n = [0u8; 8];
                input.read_exact(&mut n).map_err(rerr)?;
                let computed = input.crc.clone().finalize();
                let mut stored = [0u8; 4];
                input.inner.read_exact(&mut stored).map_err(rerr)?;
                if u64::from_le_bytes(n) != count {
                    return Err(damaged(
                        path,
                        format!("{count} keys, the end says {}", u64::from_le_bytes(n)),
                    ));
                }
                if u32::from_le_bytes(stored) != computed {
                    return Err(damaged(path, "checksum mismatch"));
                }
                return Ok((meta, count));
            }
            other => return Err(damaged(path, format!("record tag {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use flashlog_kv::DbOptions;

    fn options() -> DbOptions {
        DbOptions::default()
            .wal(flashlog_wal::Options::default().sync_policy(flashlog_wal::SyncPolicy::Manual))
    }

    #[test]
    fn round_trip_and_damage_detected() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("a"), options()).unwrap();
        for i in 0..1000u32 {
            db.put(&i.to_be_bytes(), &[i as u8; 3]).unwrap();
        }
        db.put(&[0xff, 0], b"").unwrap();
        let meta = SnapshotMeta::default();
        let path = dir.path().join("snap");
        assert_eq!(write(&db, &meta, &path).unwrap(), 1001);
        let copy = Db::open(dir.path().join("b"), options()).unwrap();
        let (_, n) = load(&File::open(&path).unwrap(), &path, &copy).unwrap();
        assert_eq!(n, 1001);
        let all = |db: &Db| db.scan_prefix(b"").collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(all(&db), all(&copy));

        // One flipped byte in a value: the checksum says so.
        let mut bytes = std::fs::read(&path).unwrap();
        // The end is 13 bytes; before it the 11-byte record of [ff 00]; before
        // that the last value byte of key 999.
        let at = bytes.len() - 13 - 11 - 1;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let other = Db::open(dir.path().join("c"), options()).unwrap();
        assert!(matches!(
            load(&File::open(&path).unwrap(), &path, &other),
            Err(Error::Damaged { .. })
        ));
    }
}
