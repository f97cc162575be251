//! [`Layout`]: arbitrary fuzz bytes read as a log directory (up to four segment
//! files and an optional `flashlog.meta`), and back, for writing seed inputs.
//!
//! ```text
//! | control (1) | [meta: raw? (1), 40 raw bytes or first_segment u64, first_seq u64, pending u64]
//! | per segment but the last: len u16 LE, bytes | last segment: the rest |
//! ```
//! The control byte: bits 0–1 segments − 1; bit 2 a side file; bits 3–4 the first
//! segment id − 1; bit 5 leaves a gap in the ids (a missing segment).

use flashlog_wal::SegmentId;

/// The side file's magic, version and length (see `flashlog_wal`'s meta module).
const META_MAGIC: &[u8; 8] = b"FLWLMETA";
const META_VERSION: u32 = 1;
const META_LEN: usize = 40;

/// A log directory to write: its files, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// Segment files: id and bytes.
    pub segments: Vec<(SegmentId, Vec<u8>)>,
    /// The bytes of `flashlog.meta`, if there is one.
    pub meta: Option<Vec<u8>>,
}

/// A side file's fields, encoded as `flashlog_wal` writes them (with a valid CRC).
pub fn encode_meta(first_segment: u64, first_seq: u64, pending_truncate_back: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(META_LEN);
    out.extend_from_slice(META_MAGIC);
    out.extend_from_slice(&META_VERSION.to_le_bytes());
    out.extend_from_slice(&first_segment.to_le_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&pending_truncate_back.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads bytes one field at a time; missing bytes read as zero.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn u16(&mut self) -> u16 {
        let mut word = [0u8; 2];
        let head = self.take(2);
        word[..head.len()].copy_from_slice(head);
        u16::from_le_bytes(word)
    }

    fn u64(&mut self) -> u64 {
        let mut word = [0u8; 8];
        let head = self.take(8);
        word[..head.len()].copy_from_slice(head);
        u64::from_le_bytes(word)
    }
}

impl Layout {
    /// Reads any bytes as a directory; never fails.
    pub fn parse(data: &[u8]) -> Layout {
        let mut cursor = Cursor { data };
        let control = cursor.u8();
        let count = 1 + usize::from(control & 3);
        let first = 1 + u64::from((control >> 3) & 3);
        let gap = control & 0x20 != 0;
        let meta = (control & 4 != 0).then(|| {
            if cursor.u8() & 1 == 1 {
                cursor.take(META_LEN).to_vec()
            } else {
                let (segment, seq, pending) = (cursor.u64(), cursor.u64(), cursor.u64());
                encode_meta(segment, seq, pending)
            }
        });
        let mut segments = Vec::with_capacity(count);
        for at in 0..count {
            let bytes = if at + 1 == count {
                cursor.take(usize::MAX)
            } else {
                let len = usize::from(cursor.u16());
                cursor.take(len)
            };
            let mut id = first + at as u64;
            if gap && at > 0 {
                id += 1;
            }
            segments.push((SegmentId(id), bytes.to_vec()));
        }
        Layout { segments, meta }
    }

    /// The fuzz input that [`Layout::parse`] reads back as this layout: contiguous
    /// segment ids from the first (at most 4, at most 64 KiB each but the last) and
    /// a raw side file.
    ///
    /// ```
    /// use flashlog_chaos::fuzz::Layout;
    /// use flashlog_wal::SegmentId;
    ///
    /// let layout = Layout {
    ///     segments: vec![(SegmentId(2), vec![1, 2]), (SegmentId(3), vec![3])],
    ///     meta: Some(vec![9; 40]),
    /// };
    /// assert_eq!(Layout::parse(&layout.to_input()), layout);
    /// ```
    pub fn to_input(&self) -> Vec<u8> {
        let count = self.segments.len().clamp(1, 4);
        let first = self.segments.first().map_or(1, |(id, _)| id.0).clamp(1, 4);
        let mut control = (count - 1) as u8 | (((first - 1) as u8) << 3);
        if self.meta.is_some() {
            control |= 4;
        }
        let mut out = vec![control];
        if let Some(meta) = &self.meta {
            out.push(1);
            let mut raw = meta.clone();
            raw.resize(META_LEN, 0);
            out.extend_from_slice(&raw);
        }
        for (at, (_, bytes)) in self.segments.iter().take(count).enumerate() {
            if at + 1 == count {
                out.extend_from_slice(bytes);
            } else {
                let len = bytes.len().min(usize::from(u16::MAX));
                out.extend_from_slice(&(len as u16).to_le_bytes());
                out.extend_from_slice(&bytes[..len]);
            }
        }
        out
    }

    /// The files as (name, bytes) pairs.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = self
            .segments
            .iter()
            .map(|(id, bytes)| (id.file_name(), bytes.clone()))
            .collect();
        if let Some(meta) = &self.meta {
            files.push((flashlog_wal::META_FILE.to_owned(), meta.clone()));
        }
        files
    }
}
