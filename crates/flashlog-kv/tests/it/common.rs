//! Helpers shared by the tests: a model of the contents, and copies of logs.

use std::path::Path;

use flashlog_kv::{AutoCompact, DbOptions};
use flashlog_testkit::crc32_ieee;
use flashlog_wal::Options;

/// The store's contents checked three ways, and the model they must equal: the
/// test kit's (`flashlog_testkit::kv_model`).
pub use flashlog_testkit::kv_model::{kv_contents as contents, KvModel as Model};

/// Options with small segments and no automatic compaction.
pub fn small(segment: u64) -> DbOptions {
    DbOptions::default()
        .wal(Options::default().max_segment_size(segment))
        .auto_compact(AutoCompact::Never)
}

/// A fresh directory on the disk and, where `/dev/shm` exists, one on tmpfs: the
/// concurrent tests run on both (tmpfs makes I/O fast, so races hit other gaps).
pub fn disk_and_tmpfs() -> Vec<(&'static str, tempfile::TempDir)> {
    let mut dirs = vec![("disk", tempfile::tempdir().unwrap())];
    if Path::new("/dev/shm").is_dir() {
        dirs.push(("tmpfs", tempfile::tempdir_in("/dev/shm").unwrap()));
    }
    dirs
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The directory of the Go-written fixtures.
pub fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../flashlog-wal/tests/fixtures")
}

/// Reads `dir`'s segment files as the Go implementation's reader does, checking
/// them against FORMAT.md without any flashlog code (the CRC is computed here):
/// ids contiguous; each file entries back to back from byte 0 with nothing after
/// the last; every entry checks out (CRC, lengths, at most 16 MiB). Returns each
/// segment's entry sizes, in order.
pub fn go_segments(dir: &Path) -> Vec<(u64, Vec<u64>)> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let id = name.strip_prefix("segment-")?.strip_suffix(".log")?;
            Some(id.parse().unwrap())
        })
        .collect();
    ids.sort_unstable();
    assert!(
        ids.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "segment ids not contiguous: {ids:?}"
    );
    let u32_at =
        |bytes: &[u8], at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    ids.into_iter()
        .map(|id| {
            let name = format!("segment-{id:04}.log");
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            let mut sizes = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                assert!(bytes.len() - at >= 17, "{name}:{at}: cut short");
                let total = u32_at(&bytes, at + 4) as usize;
                assert!(
                    (13..=16 << 20).contains(&total),
                    "{name}:{at}: TOTAL_LEN {total}"
                );
                assert!(at + 4 + total <= bytes.len(), "{name}:{at}: cut short");
                let body = &bytes[at + 4..at + 4 + total];
                assert_eq!(u32_at(&bytes, at), crc32_ieee(body), "{name}:{at}: CRC");
                assert!(body[4] <= 1, "{name}:{at}: TYPE {}", body[4]);
                let key_len = u32_at(body, 5) as usize;
                assert!(9 + key_len + 4 <= total, "{name}:{at}: KEY_LEN");
                let value_len = u32_at(body, 9 + key_len) as usize;
                assert_eq!(13 + key_len + value_len, total, "{name}:{at}: VAL_LEN");
                sizes.push(4 + total as u64);
                at += 4 + total;
            }
            (id, sizes)
        })
        .collect()
}

/// Checks that `dir` holds valid Go segments (see [`go_segments`]) that the Go
/// writer's rotation rule allows with `max_segment_size`: a segment holds at most
/// `max_segment_size` bytes, or else exactly one entry (one larger than the limit,
/// carried over from a log written with a larger one). Returns the bytes of all.
pub fn assert_go_layout(dir: &Path, max_segment_size: u64) -> u64 {
    let segments = go_segments(dir);
    for (id, sizes) in &segments {
        let bytes: u64 = sizes.iter().sum();
        assert!(
            bytes <= max_segment_size || sizes.len() == 1,
            "segment {id} holds {bytes} bytes in {} entries, above {max_segment_size}",
            sizes.len()
        );
    }
    segments.iter().flat_map(|(_, sizes)| sizes).sum()
}
