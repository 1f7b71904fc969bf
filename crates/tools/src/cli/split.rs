//! Splitting a typed line into arguments with redis-cli's rules (a port of
//! `sdssplitargs`): blanks separate arguments; `"..."` takes `\n \r \t \b \a
//! \xHH` and `\<any>` escapes; `'...'` takes only `\'`; a closing quote must
//! be followed by a blank or the end of the line.

/// The arguments of `line`, or `None` for unbalanced quotes (redis-cli says
/// "Invalid argument(s)").
pub fn split_args(line: &str) -> Option<Vec<Vec<u8>>> {
    let p = line.as_bytes();
    let at = |i: usize| p.get(i).copied().unwrap_or(0);
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < p.len() && is_space(p[i]) {
            i += 1;
        }
        if i >= p.len() {
            return Some(out);
        }
        let (mut inq, mut insq, mut done) = (false, false, false);
        let mut cur = Vec::new();
        while !done {
            let c = at(i);
            if inq {
                if c == b'\\'
                    && at(i + 1) == b'x'
                    && at(i + 2).is_ascii_hexdigit()
                    && at(i + 3).is_ascii_hexdigit()
                {
                    let hex = |d: u8| (d as char).to_digit(16).unwrap_or(0) as u8;
                    cur.push(hex(at(i + 2)) * 16 + hex(at(i + 3)));
                    i += 3;
                } else if c == b'\\' && at(i + 1) != 0 {
                    i += 1;
                    cur.push(match at(i) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(i + 1) != 0 && !is_space(at(i + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(i + 1) == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(i + 1) != 0 && !is_space(at(i + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    _ => cur.push(c),
                }
            }
            if i < p.len() {
                i += 1;
            }
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::split_args;

    fn s(line: &str) -> Option<Vec<String>> {
        split_args(line).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect()
        })
    }

    #[test]
    fn quoting_rules() {
        assert_eq!(s("  set  a b ").unwrap(), ["set", "a", "b"]);
        assert_eq!(s(r#"set "a b" 'c d'"#).unwrap(), ["set", "a b", "c d"]);
        assert_eq!(
            s(r#"x "\x41\n\"\\q" 'it\'s' """#).unwrap(),
            ["x", "A\n\"\\q", "it's", ""]
        );
        assert_eq!(s(r#"a"b c" d"#).unwrap(), ["ab c", "d"]);
        assert_eq!(s(r#"'\n'"#).unwrap(), ["\\n"]);
        assert_eq!(split_args(r#""\xff""#).unwrap(), [vec![0xffu8]]);
        assert!(s("").unwrap().is_empty());
        assert!(s(r#""unterminated"#).is_none());
        assert!(s(r#""a"b"#).is_none());
        assert!(s("'a").is_none());
    }
}
