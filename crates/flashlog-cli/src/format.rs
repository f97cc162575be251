//! How `flashlog dump` prints an entry (as text, as a hex line or as a JSON line),
//! and how `get` and `scan` print a key and its value.

use flashlog_wal::{Entry, Op};

use crate::text::{hex, show};

/// `#SEQ at SEGMENT:OFFSET put KEY = VALUE` (or `delete KEY`), keys and values shown
/// as text with anything unprintable escaped.
pub fn text_line(entry: &Entry) -> String {
    let head = format!("#{} at {}", entry.seq(), entry.position());
    match entry.op() {
        Op::Put => format!("{head} put {} = {}", show(entry.key()), show(entry.value())),
        Op::Delete => format!("{head} delete {}", show(entry.key())),
    }
}

/// `SEQ SEGMENT OFFSET OP KEYHEX VALUEHEX`, `-` for an empty key or value.
pub fn hex_line(entry: &Entry) -> String {
    let position = entry.position();
    format!(
        "{} {} {} {} {} {}",
        entry.seq(),
        position.segment,
        position.offset,
        entry.op(),
        hex_or_dash(entry.key()),
        hex_or_dash(entry.value())
    )
}

/// A key and its value as one JSON object: `key` and `value` (as text, or null if
/// not UTF-8), `key_hex`, `value_hex` (`get --json`, `scan --json`).
pub fn pair_json(key: &[u8], value: &[u8]) -> String {
    serde_json::json!({
        "key": json_text(key),
        "value": json_text(value),
        "key_hex": hex(key),
        "value_hex": hex(value),
    })
    .to_string()
}

/// `KEYHEX VALUEHEX`, `-` for an empty key or value (`scan --hex`).
pub fn pair_hex(key: &[u8], value: &[u8]) -> String {
    format!("{} {}", hex_or_dash(key), hex_or_dash(value))
}

/// Bytes as a JSON string if they are UTF-8, else null (the `_hex` field has them).
fn json_text(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::Value::from(text),
        Err(_) => serde_json::Value::Null,
    }
}

/// One JSON object: `seq`, `segment`, `offset`, `op`, `key` and `value` (as text, or
/// null if not UTF-8), `key_hex`, `value_hex`.
pub fn json_line(entry: &Entry) -> String {
    serde_json::json!({
        "seq": entry.seq(),
        "segment": entry.position().segment.0,
        "offset": entry.position().offset,
        "op": entry.op().to_string(),
        "key": json_text(entry.key()),
        "value": json_text(entry.value()),
        "key_hex": hex(entry.key()),
        "value_hex": hex(entry.value()),
    })
    .to_string()
}

fn hex_or_dash(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "-".to_owned()
    } else {
        hex(bytes)
    }
}
