//! [`Entry`]: one entry read back from the log.

use std::fmt;

use crate::codec;
use crate::op::Op;
use crate::position::Position;

/// One entry read back from the log: its sequence number, operation, key and value.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    seq: u64,
    op: Op,
    position: Position,
    /// The key followed by the value, in one allocation.
    data: Vec<u8>,
    key_len: usize,
}

impl Entry {
    pub(crate) fn new(seq: u64, op: Op, position: Position, key: &[u8], value: &[u8]) -> Entry {
        let mut data = Vec::with_capacity(key.len() + value.len());
        data.extend_from_slice(key);
        data.extend_from_slice(value);
        Entry {
            seq,
            op,
            position,
            data,
            key_len: key.len(),
        }
    }

    /// The entry's sequence number: 1 for the first entry ever appended, then +1.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether the entry is a put or a delete.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The entry's key.
    pub fn key(&self) -> &[u8] {
        &self.data[..self.key_len]
    }

    /// The entry's value (usually empty for a delete).
    pub fn value(&self) -> &[u8] {
        &self.data[self.key_len..]
    }

    /// The entry's value, without copying it.
    pub fn into_value(self) -> Vec<u8> {
        let mut data = self.data;
        data.drain(..self.key_len);
        data
    }

    /// Where the entry's bytes are on disk.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The number of bytes the entry takes on disk (CRC included).
    pub fn encoded_len(&self) -> u64 {
        codec::encoded_len(self.key_len, self.data.len() - self.key_len)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("seq", &self.seq)
            .field("op", &self.op)
            .field("position", &format_args!("{}", self.position))
            .field("key_len", &self.key_len)
            .field("value_len", &(self.data.len() - self.key_len))
            .finish()
    }
}
