//! How keys, values and numbers are printed.

use std::fmt::Write;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// `bytes` as text: printable UTF-8 as is, anything else escaped as `\xNN`.
pub fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_owned(),
        _ => {
            let mut out = String::new();
            for chunk in bytes.utf8_chunks() {
                for c in chunk.valid().chars() {
                    if c.is_control() || c == '\\' {
                        let _ = write!(out, "{}", c.escape_default());
                    } else {
                        out.push(c);
                    }
                }
                for byte in chunk.invalid() {
                    let _ = write!(out, "\\x{byte:02x}");
                }
            }
            out
        }
    }
}

/// The bytes that lowercase or uppercase hex `text` stands for; `None` if it is not
/// hex (an odd length, or another character). The empty text is the empty value.
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// A key for an error message, in double quotes: shown as text (see [`show`]),
/// shortened with its length when long, so that an error never repeats a
/// 17 MiB key.
pub fn quoted(bytes: &[u8]) -> String {
    const MAX_CHARS: usize = 40;
    let text = show(bytes);
    if text.chars().count() <= MAX_CHARS {
        return format!("\"{text}\"");
    }
    let head: String = text.chars().take(MAX_CHARS).collect();
    format!("\"{head}...\" ({} bytes)", bytes.len())
}

/// `1 segment`, `2 segments`: a count and its noun, `one` or `many`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A byte count for people: `512 B`, `4.0 KiB`, `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Prints rows as a table with left-aligned columns two spaces apart.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_text_and_escapes_the_rest() {
        assert_eq!(hex(b"\x00\xffa"), "00ff61");
        assert_eq!(show(b"hello world"), "hello world");
        assert_eq!(show(b"a\nb\xff"), "a\\nb\\xff");
        assert_eq!(bytes(100), "100 B");
        assert_eq!(parse_hex("00fFa1"), Some(vec![0, 0xff, 0xa1]));
        assert_eq!(parse_hex(""), Some(vec![]));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex("+1"), None);
        assert_eq!(quoted(b"user:1"), "\"user:1\"");
        let long = vec![b'k'; 17 << 20];
        assert_eq!(
            quoted(&long),
            format!("\"{}...\" (17825792 bytes)", "k".repeat(40))
        );
        assert_eq!(count(1, "segment", "segments"), "1 segment");
        assert_eq!(count(0, "entry", "entries"), "0 entries");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(
            table(&[
                vec!["a".into(), "1".into()],
                vec!["long".into(), "2".into()]
            ]),
            "a     1\nlong  2\n"
        );
    }
}
