//! redis-cli's quoting of bytes for display (`sdscatrepr`): what the
//! terminal form of a reply and the tools' error messages print a value as.

/// redis-cli's `sdscatrepr`: a double-quoted string with `\n \r \t \a \b
/// \" \\` escaped, other bytes outside printable ASCII as `\xHH`.
pub fn repr(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x07 => s.push_str("\\a"),
            0x08 => s.push_str("\\b"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_sdscatrepr() {
        assert_eq!(
            repr(b"a\x01\xff\t\x07\x08\xc3\xa9\"\\\r\n "),
            r#""a\x01\xff\t\a\b\xc3\xa9\"\\\r\n ""#
        );
    }
}
