//! [`Op`]: the operation an entry records, the `TYPE` byte of the format.

use std::fmt;

/// The operation an entry records, stored as the `TYPE` byte of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `TYPE` 0: a key was set to a value.
    Put,
    /// `TYPE` 1: a key was removed; the value is usually empty.
    Delete,
}

impl Op {
    /// The `TYPE` byte written to disk for this operation.
    pub const fn as_byte(self) -> u8 {
        match self {
            Op::Put => 0,
            Op::Delete => 1,
        }
    }

    /// The operation a `TYPE` byte stands for, or `None` for an unknown byte.
    pub const fn from_byte(byte: u8) -> Option<Op> {
        match byte {
            0 => Some(Op::Put),
            1 => Some(Op::Delete),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Put => "put",
            Op::Delete => "delete",
        })
    }
}
