//! Reply encoding helpers: memcached replies are plain lines, VALUE headers
//! and data blocks, appended to the connection's output buffer.

/// Appends `line` and "\r\n".
pub fn line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

/// Appends a decimal number.
pub fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
pub fn value(out: &mut Vec<u8>, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    out.reserve(key.len() + data.len() + 48);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    num(out, flags);
    out.push(b' ');
    num(out, data.len());
    if let Some(c) = cas {
        out.push(b' ');
        num(out, c);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends `" <flag><number>"` (meta reply flags such as `c123`, `t-1`).
pub fn flag_num(out: &mut Vec<u8>, flag: u8, n: impl itoa::Integer) {
    out.push(b' ');
    out.push(flag);
    num(out, n);
}
