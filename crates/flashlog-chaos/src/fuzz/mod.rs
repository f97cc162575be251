//! The checks behind the fuzz targets in `fuzz/fuzz_targets/`, here so that the
//! saved corpus replays in `cargo test` through exactly the same code.
//!
//! Each check takes arbitrary bytes and panics if a promise is broken: any bytes
//! give `Ok` or an error (never a panic or a hang), a read-only open changes no
//! file, what a read-write open accepts can be appended to and reopens the same,
//! and recovery is idempotent.

mod layout;
mod scratch;

use flashlog_wal::codec;
use flashlog_wal::{Op, RecoveryMode, Wal};

pub use layout::{encode_meta, Layout};
pub use scratch::{Scratch, Store};

/// Every recovery mode, in the order the checks try them.
pub const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

/// An entry as read back: sequence number, operation, key, value.
pub type Record = (u64, Op, Vec<u8>, Vec<u8>);

/// Reads every entry of an open log, checking that sequence numbers run without
/// a gap from `first_seq` to `last_seq`.
///
/// # Panics
/// If reading fails or the sequence numbers are not contiguous.
pub fn read_all(wal: &Wal) -> Vec<Record> {
    let first = wal.first_seq();
    let mut records = Vec::new();
    let iter = wal
        .iter_from(first)
        .expect("iter_from(first_seq) of an open log");
    for (at, entry) in iter.enumerate() {
        let entry = entry.unwrap_or_else(|err| panic!("reading an opened log failed: {err}"));
        assert_eq!(
            entry.seq(),
            first + at as u64,
            "sequence numbers must be contiguous"
        );
        records.push((
            entry.seq(),
            entry.op(),
            entry.key().to_vec(),
            entry.value().to_vec(),
        ));
    }
    assert_eq!(
        records.last().map_or(first - 1, |r| r.0),
        wal.last_seq(),
        "iteration must end at last_seq"
    );
    records
}

/// `decode_entry`: [`codec::decode`] on any bytes gives `Ok` or a
/// [`CorruptionKind`](flashlog_wal::CorruptionKind); an `Ok` entry re-encodes to
/// the very bytes it was decoded from; [`codec::valid_entry_after`] only points at
/// offsets that decode.
///
/// # Panics
/// If one of those fails.
pub fn decode_entry(data: &[u8]) {
    if let Ok(decoded) = codec::decode(data) {
        assert!(decoded.len <= data.len());
        let len = codec::check_len(decoded.key.len(), decoded.value.len()).expect("within limits");
        assert_eq!(len, decoded.len as u64);
        let mut out = Vec::new();
        codec::encode(&mut out, decoded.op, decoded.key, decoded.value);
        assert_eq!(
            out,
            &data[..decoded.len],
            "decode then encode must give the same bytes"
        );
        assert_eq!(codec::decode(&out), Ok(decoded));
    }
    match codec::valid_entry_after(data, &mut codec::search_budget(data.len())) {
        codec::Search::Found(at) => {
            assert!(at > 0 && at < data.len());
            assert!(codec::decode(&data[at..]).is_ok());
            assert!(
                (1..at).all(|earlier| codec::decode(&data[earlier..]).is_err()),
                "the search skipped an earlier valid entry"
            );
        }
        codec::Search::NotFound => {}
        // Each byte offset costs at most the bytes after it, which fuzz cases
        // this small never make add up to the 64 MiB base.
        codec::Search::Exhausted(at) => {
            assert!(
                data.len() > 8 << 10,
                "{} bytes exhausted the search at {at}",
                data.len()
            );
        }
    }
}

/// `segment_reader`: any bytes as the one segment of a log. A read-only open
/// changes nothing; every entry it yields is the bytes at its position; a
/// read-write open yields the same entries and only ever cuts the file.
///
/// # Panics
/// If one of those fails.
pub fn segment_reader(data: &[u8]) {
    segment_reader_in(Store::Memory, data);
}

/// [`segment_reader`] in the given store.
///
/// # Panics
/// As [`segment_reader`].
pub fn segment_reader_in(store: Store, data: &[u8]) {
    let name = flashlog_wal::SegmentId(1).file_name();
    let scratch = Scratch::new(store, &[(name.clone(), data.to_vec())]);
    let before = scratch.snapshot();
    let read_only = Wal::open(scratch.dir(), scratch.options().read_only());
    assert_eq!(scratch.snapshot(), before, "a read-only open changed files");
    let records = read_only.as_ref().ok().map(|wal| {
        for entry in wal.iter_from(1).expect("iter_from(1)") {
            let entry = entry.expect("reading an opened log");
            let at = entry.position().offset as usize;
            let mut bytes = Vec::new();
            codec::encode(&mut bytes, entry.op(), entry.key(), entry.value());
            assert_eq!(
                &data[at..at + bytes.len()],
                &bytes[..],
                "entry bytes at its position"
            );
        }
        read_all(wal)
    });
    drop(read_only);
    assert_eq!(scratch.snapshot(), before, "reading changed files");
    let read_write = Wal::open(scratch.dir(), scratch.options());
    assert_eq!(
        read_write.is_ok(),
        records.is_some(),
        "read-only and read-write opens disagree"
    );
    if let Ok(wal) = read_write {
        assert_eq!(Some(read_all(&wal)), records);
        wal.close().expect("close");
        let after = scratch.snapshot();
        let segment = after.get(&name).expect("the segment stays");
        assert!(
            data.starts_with(segment),
            "recovery may only cut the segment"
        );
    }
}

/// `recovery`: any bytes as a directory (see [`Layout`]), opened under every
/// recovery mode. Read-only and read-write opens agree and a read-only one changes
/// nothing; what opens can be appended to once, closes cleanly and reopens to the
/// same entries plus the new one; a second reopen changes no file (idempotent).
///
/// # Panics
/// If one of those fails.
pub fn recovery(data: &[u8]) {
    recovery_in(Store::Memory, data);
}

/// [`recovery`] in the given store.
///
/// # Panics
/// As [`recovery`].
pub fn recovery_in(store: Store, data: &[u8]) {
    let files = Layout::parse(data).files();
    for mode in MODES {
        recover_once(store, &files, mode);
    }
}

/// One case of the `recovery` fuzz target: [`recovery`] under the one mode the
/// input's length picks (`MODES[len % 4]`), a quarter of the opens per case. The
/// bytes mean the same directory as for [`recovery`], so the saved corpus, which
/// `cargo test` replays under all four modes, covers every case the fuzzer tried.
///
/// # Panics
/// As [`recovery`].
pub fn recovery_case(data: &[u8]) {
    let files = Layout::parse(data).files();
    recover_once(Store::Memory, &files, MODES[data.len() % MODES.len()]);
}

fn recover_once(store: Store, files: &[(String, Vec<u8>)], mode: RecoveryMode) {
    let scratch = Scratch::new(store, files);
    let options = scratch.options().recovery_mode(mode);
    let before = scratch.snapshot();
    let read_only = Wal::open(scratch.dir(), options.clone().read_only()).map(|wal| read_all(&wal));
    assert_eq!(
        scratch.snapshot(),
        before,
        "a read-only open changed files ({mode:?})"
    );
    let wal = match Wal::open(scratch.dir(), options.clone()) {
        Ok(wal) => wal,
        Err(err) => {
            assert!(
                read_only.is_err(),
                "read-write open failed where read-only did not: {err}"
            );
            return;
        }
    };
    let report = wal.recovery_report().clone();
    let records = read_all(&wal);
    match &read_only {
        Ok(seen) => assert_eq!(
            seen, &records,
            "read-only open saw other entries ({mode:?})"
        ),
        Err(err) => panic!("read-only open failed where read-write did not ({mode:?}): {err}"),
    }
    assert_eq!(report.entries, records.len() as u64);
    if mode == RecoveryMode::AbsoluteConsistency {
        assert!(
            report.damage.is_empty(),
            "AbsoluteConsistency accepted damage"
        );
    }
    let next = wal.last_seq() + 1;
    match wal.append(Op::Put, b"fuzz", b"appended") {
        Ok(seq) => assert_eq!(seq, next, "append after recovery"),
        Err(err) => panic!("append after a successful open failed ({mode:?}): {err}"),
    }
    wal.close().expect("close after append");
    drop(wal);

    let wal = Wal::open(scratch.dir(), options.clone())
        .unwrap_or_else(|err| panic!("reopen after append failed ({mode:?}): {err}"));
    let mut expected = records;
    expected.push((next, Op::Put, b"fuzz".to_vec(), b"appended".to_vec()));
    assert_eq!(
        read_all(&wal),
        expected,
        "reopen gave other entries ({mode:?})"
    );
    if mode != RecoveryMode::SkipCorrupted {
        let damage = &wal.recovery_report().damage;
        assert!(
            damage.is_empty(),
            "damage left after recovery ({mode:?}): {damage:?}"
        );
    }
    drop(wal);
    let settled = scratch.snapshot();
    let wal = Wal::open(scratch.dir(), options)
        .unwrap_or_else(|err| panic!("second reopen failed ({mode:?}): {err}"));
    assert_eq!(
        read_all(&wal),
        expected,
        "second reopen gave other entries ({mode:?})"
    );
    drop(wal);
    assert_eq!(
        scratch.snapshot(),
        settled,
        "recovery is not idempotent ({mode:?})"
    );
}

/// `dump`: the path of `flashlog dump`, through the tool's own library: a read-only
/// open with [`flashlog_cli::inspect_options`], then every entry from `first_seq`
/// in each of the three formats. A hex line parses back to the entry, a JSON line
/// is valid JSON that names the entry, a text line starts with its sequence number
/// and position; no file changes.
///
/// # Panics
/// If one of those fails.
pub fn dump(data: &[u8]) {
    dump_in(Store::Memory, data);
}

/// [`dump`] in the given store.
///
/// # Panics
/// As [`dump`].
pub fn dump_in(store: Store, data: &[u8]) {
    use flashlog_cli::format::{hex_line, json_line, text_line};

    let scratch = Scratch::new(store, &Layout::parse(data).files());
    let before = scratch.snapshot();
    let options = flashlog_cli::inspect_options().fs(scratch.fs());
    if let Ok(wal) = Wal::open(scratch.dir(), options) {
        let iter = wal
            .iter_from(wal.first_seq())
            .expect("iter_from(first_seq)");
        for entry in iter {
            let entry = entry.expect("dump reads every entry it lists");
            let line = hex_line(&entry);
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 6, "{line}");
            assert_eq!(fields[0], entry.seq().to_string());
            assert_eq!(unhex(fields[4]), entry.key());
            assert_eq!(unhex(fields[5]), entry.value());

            let json: serde_json::Value =
                serde_json::from_str(&json_line(&entry)).expect("a JSON line");
            assert_eq!(json["seq"], entry.seq());
            assert_eq!(json["offset"], entry.position().offset);
            let key_hex = json["key_hex"].as_str().expect("key_hex");
            assert_eq!(unhex_or_empty(key_hex), entry.key());
            let value_hex = json["value_hex"].as_str().expect("value_hex");
            assert_eq!(unhex_or_empty(value_hex), entry.value());

            let text = text_line(&entry);
            let head = format!("#{} at {} ", entry.seq(), entry.position());
            assert!(text.starts_with(&head), "{text}");
        }
    }
    assert_eq!(scratch.snapshot(), before, "dump changed files");
}

fn unhex_or_empty(text: &str) -> Vec<u8> {
    if text.is_empty() {
        Vec::new()
    } else {
        unhex(text)
    }
}

fn unhex(text: &str) -> Vec<u8> {
    if text == "-" {
        return Vec::new();
    }
    assert_eq!(text.len() % 2, 0, "hex of whole bytes: {text}");
    let digit = |c: u8| char::from(c).to_digit(16).expect("a hex digit") as u8;
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| digit(pair[0]) << 4 | digit(pair[1]))
        .collect()
}
