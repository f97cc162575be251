//! Keys and values on the wire: a key in a URL path is one percent-encoded
//! segment (any bytes); scan results in JSON carry each key and value as hex
//! (`key_hex`, `value_hex`, always exact) and as text (`key`, `value`, or `null`
//! when the bytes are not UTF-8).

use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Bytes left as they are in an encoded path segment or query value (RFC 3986
/// unreserved characters); everything else is `%XX`.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `bytes` as one percent-encoded path segment or query value.
pub fn encode(bytes: &[u8]) -> String {
    // Non-UTF-8 bytes: encode every byte by hand.
    match std::str::from_utf8(bytes) {
        Ok(text) => utf8_percent_encode(text, ENCODE).to_string(),
        Err(_) => bytes
            .iter()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
                    char::from(*b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect(),
    }
}

/// The bytes of a percent-encoded path segment or query value. `+` stays `+`.
pub fn decode(text: &str) -> Vec<u8> {
    percent_decode(text.as_bytes()).collect()
}

/// Whether `text` is well-formed percent-encoding (every `%` followed by two hex digits).
pub fn is_well_formed(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lower- or upper-case hex, `None` if it is not hex.
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// One key and value as a scan returns it in JSON.
pub fn pair_json(key: &[u8], value: &[u8]) -> serde_json::Value {
    let text = |bytes: &[u8]| match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::Value::from(text),
        Err(_) => serde_json::Value::Null,
    };
    serde_json::json!({
        "key": text(key),
        "value": text(value),
        "key_hex": hex(key),
        "value_hex": hex(value),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn any_bytes_round_trip() {
        for key in [&b"a/b c"[..], b"\xff\x00%", "é".as_bytes(), b"plain"] {
            assert_eq!(decode(&encode(key)), key);
            assert!(is_well_formed(&encode(key)));
        }
        assert!(!is_well_formed("%zz"));
        assert!(!is_well_formed("ab%4"));
        assert_eq!(parse_hex(&hex(b"\x00\xff")).unwrap(), b"\x00\xff");
    }
}
