//! [`Scan`]: keys of a range or a prefix, in order, with their values.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};

use crate::index::Slot;
use crate::locks::read;
use crate::{Db, Result};

/// Keys are taken from the index this many at a time.
const CHUNK: usize = 256;

/// An iterator over `(key, value)` pairs in key order, from [`Db::scan`] or
/// [`Db::scan_prefix`].
///
/// It is not a snapshot: it takes keys from the index a chunk at a time and reads
/// each value when it reaches it, so it sees writes made meanwhile to keys it has
/// not reached yet, and skips keys deleted before it reads them.
#[derive(Debug)]
pub struct Scan<'db> {
    db: &'db Db,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    chunk: VecDeque<(Box<[u8]>, Slot)>,
    exhausted: bool,
    failed: bool,
}

impl Db {
    /// The keys in `range`, in order, with their values (one positioned read each).
    ///
    /// ```
    /// use flashlog_kv::{Db, DbOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), DbOptions::default())?;
    /// for key in ["a", "b", "c", "d"] {
    ///     db.put(key.as_bytes(), key.to_uppercase().as_bytes())?;
    /// }
    /// let pairs = db.scan(&b"b"[..]..&b"d"[..]).collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(pairs, [(b"b".to_vec(), b"B".to_vec()), (b"c".to_vec(), b"C".to_vec())]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scan<'a>(&self, range: impl RangeBounds<&'a [u8]>) -> Scan<'_> {
        let own = |bound: Bound<&&[u8]>| bound.map(|key| key.to_vec());
        Scan::new(self, own(range.start_bound()), own(range.end_bound()))
    }

    /// The keys that start with `prefix`, in order, with their values.
    ///
    /// ```
    /// use flashlog_kv::{Db, DbOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path(), DbOptions::default())?;
    /// db.put(b"user:1", b"alice")?;
    /// db.put(b"user:2", b"bob")?;
    /// db.put(b"video:1", b"cats")?;
    /// let keys: Vec<Vec<u8>> = db.scan_prefix(b"user:").map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, [b"user:1".to_vec(), b"user:2".to_vec()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scan_prefix(&self, prefix: &[u8]) -> Scan<'_> {
        let upper = match prefix_end(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        Scan::new(self, Bound::Included(prefix.to_vec()), upper)
    }
}

/// The smallest key after every key that starts with `prefix`; `None` if there is
/// none (the prefix is empty or all `0xff`).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl<'db> Scan<'db> {
    fn new(db: &'db Db, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> Scan<'db> {
        Scan {
            db,
            lower,
            upper,
            chunk: VecDeque::new(),
            exhausted: false,
            failed: false,
        }
    }
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    bound.as_ref().map(Vec::as_slice)
}

impl Scan<'_> {
    fn refill(&mut self) {
        // Only the keys are used after the lock is released (each key's slot is
        // looked up again when it is reached), so a chunk never goes stale in a way
        // that matters: a key deleted since is skipped, one added since in a part
        // already passed is not seen, as the type's docs say.
        let keys = read(&self.db.index).range(as_slice(&self.lower), as_slice(&self.upper), CHUNK);
        if keys.len() < CHUNK {
            self.exhausted = true;
        }
        if let Some((last, _)) = keys.last() {
            self.lower = Bound::Excluded(last.to_vec());
        }
        self.chunk.extend(keys);
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            if self.chunk.is_empty() {
                if self.exhausted {
                    return None;
                }
                self.refill();
                continue;
            }
            let (key, _) = self.chunk.pop_front()?;
            // The key may have changed since the chunk was taken: read its latest.
            // The lock is released before the read: `Db::read_value` says why the
            // slot stays good or is followed.
            let Some(slot) = read(&self.db.index).get(&key) else {
                continue;
            };
            match self.db.read_value(&key, slot) {
                Ok(Some(value)) => return Some(Ok((key.into_vec(), value))),
                Ok(None) => continue,
                Err(err) => {
                    self.failed = true;
                    return Some(Err(err));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_carries_past_0xff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
