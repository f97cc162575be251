//! How `flashlog dump` prints an entry: as text, as a hex line or as a JSON line.

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

/// One JSON object: `seq`, `segment`, `offset`, `op`, `key` and `value` (as text, or
/// null if not UTF-8), `key_hex`, `value_hex`.
pub fn json_line(entry: &Entry) -> String {
    let text = |bytes: &[u8]| match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::Value::from(text),
        Err(_) => serde_json::Value::Null,
    };
    serde_json::json!({
        "seq": entry.seq(),
        "segment": entry.position().segment.0,
        "offset": entry.position().offset,
        "op": entry.op().to_string(),
        "key": text(entry.key()),
        "value": text(entry.value()),
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
