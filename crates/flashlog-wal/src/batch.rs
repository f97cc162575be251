//! [`Batch`]: many entries appended with one write and one sync.

use crate::error::Result;
use crate::op::Op;

/// Entries to append together with [`Wal::append_batch`](crate::Wal::append_batch)
/// (or, for entries carried over from the log's older segments,
/// [`Wal::append_carried`](crate::Wal::append_carried)).
///
/// ```
/// use flashlog_wal::{Batch, Op, Options, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let wal = Wal::open(dir.path(), Options::default())?;
/// let mut batch = Batch::new();
/// batch.put(b"a", b"1").put(b"b", b"2").delete(b"a");
/// assert_eq!(wal.append_batch(&batch)?, 1..=3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Every key and value, back to back.
    data: Vec<u8>,
    entries: Vec<BatchEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchEntry {
    op: Op,
    key_len: usize,
    value_len: usize,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds an entry.
    pub fn push(&mut self, op: Op, key: &[u8], value: &[u8]) -> &mut Batch {
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
        self.entries.push(BatchEntry {
            op,
            key_len: key.len(),
            value_len: value.len(),
        });
        self
    }

    /// Adds a put.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Batch {
        self.push(Op::Put, key, value)
    }

    /// Adds a delete (with an empty value).
    pub fn delete(&mut self, key: &[u8]) -> &mut Batch {
        self.push(Op::Delete, key, b"")
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the batch holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry, keeping the memory for reuse.
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    /// The entries in order, as `(op, key, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (Op, &[u8], &[u8])> + '_ {
        let mut at = 0;
        self.entries.iter().map(move |entry| {
            let key = &self.data[at..at + entry.key_len];
            let value = &self.data[at + entry.key_len..at + entry.key_len + entry.value_len];
            at += entry.key_len + entry.value_len;
            (entry.op, key, value)
        })
    }

    /// The entries checked against `max_len` bytes each, with their checksums.
    pub(crate) fn pending(&self, max_len: u64) -> Result<Vec<crate::segment_writer::Pending<'_>>> {
        self.iter()
            .map(|(op, key, value)| crate::segment_writer::Pending::new(op, key, value, max_len))
            .collect()
    }
}
