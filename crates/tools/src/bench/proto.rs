//! Request encoding and incremental reply framing for the three protocols
//! `magpie bench` speaks: Redis (RESP), memcached text, and HTTP/1.1 with
//! keep-alive against `/v1/keys/{key}`.
//!
//! Replies are framed straight out of the read buffer without copying; all
//! a benchmark needs from each is its length and whether it was a hit, a
//! miss or an error.

use clap::ValueEnum;

/// Which wire protocol to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Redis RESP: `SET key value` / `GET key`.
    #[value(name = "redis")]
    Redis,
    /// memcached text: `set key 0 0 n` / `get key`.
    #[value(name = "memcache_text")]
    MemcacheText,
    /// HTTP/1.1: `PUT` / `GET /v1/keys/{key}`.
    #[value(name = "http")]
    Http,
}

impl Protocol {
    /// The port used when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Redis => 6379,
            Protocol::MemcacheText => 11211,
            Protocol::Http => 8080,
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Redis => "redis",
            Protocol::MemcacheText => "memcache_text",
            Protocol::Http => "http",
        }
    }
}

/// The two operations a workload mixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A write.
    Set,
    /// A read.
    Get,
}

/// What a reply said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A write was accepted.
    Stored,
    /// A read found its key.
    Hit,
    /// A read found nothing.
    Miss,
    /// Any error reply or unexpected status.
    Error,
}

fn push_num(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn push_path_key(out: &mut Vec<u8>, key: &[u8]) {
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// Appends one request to `out`. `host` is the HTTP `Host` header value.
pub fn encode(proto: Protocol, op: Op, key: &[u8], value: &[u8], host: &str, out: &mut Vec<u8>) {
    match (proto, op) {
        (Protocol::Redis, Op::Set) => {
            out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$");
            push_num(out, key.len());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n$");
            push_num(out, value.len());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Redis, Op::Get) => {
            out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$");
            push_num(out, key.len());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::MemcacheText, Op::Set) => {
            out.extend_from_slice(b"set ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" 0 0 ");
            push_num(out, value.len());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::MemcacheText, Op::Get) => {
            out.extend_from_slice(b"get ");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Http, op) => {
            out.extend_from_slice(if op == Op::Set { b"PUT " } else { b"GET " });
            out.extend_from_slice(b"/v1/keys/");
            push_path_key(out, key);
            out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
            out.extend_from_slice(host.as_bytes());
            if op == Op::Set {
                out.extend_from_slice(b"\r\nContent-Length: ");
                push_num(out, value.len());
                out.extend_from_slice(b"\r\n\r\n");
                out.extend_from_slice(value);
            } else {
                out.extend_from_slice(b"\r\n\r\n");
            }
        }
    }
}

/// A reply that cannot be framed: the connection is unusable.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameError(pub String);

/// Longest line (status, header, RESP header) accepted while framing.
const MAX_LINE: usize = 64 * 1024;

fn line_end(buf: &[u8], from: usize) -> Result<Option<usize>, FrameError> {
    match memchr::memmem::find(&buf[from..], b"\r\n") {
        Some(i) => Ok(Some(from + i)),
        None if buf.len() - from > MAX_LINE => Err(FrameError("reply line too long".into())),
        None => Ok(None),
    }
}

fn num(bytes: &[u8]) -> Result<i64, FrameError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| FrameError(format!("bad length {:?}", String::from_utf8_lossy(bytes))))
}

/// Skips one RESP value starting at `at`; returns where it ends.
fn skip_resp(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, FrameError> {
    if depth > 64 {
        return Err(FrameError("reply nested too deeply".into()));
    }
    let Some(eol) = line_end(buf, at)? else {
        return Ok(None);
    };
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let next = eol + 2;
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(next)),
        b'$' | b'!' | b'=' => {
            let n = num(&buf[at + 1..eol])?;
            if n < 0 {
                return Ok(Some(next));
            }
            let end = usize::try_from(n)
                .ok()
                .and_then(|n| next.checked_add(n)?.checked_add(2))
                .ok_or_else(|| FrameError("bulk length out of range".into()))?;
            Ok((buf.len() >= end).then_some(end))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = num(&buf[at + 1..eol])?;
            let items = if matches!(kind, b'%' | b'|') {
                n * 2
            } else {
                n
            };
            let mut pos = next;
            for _ in 0..items.max(0) {
                match skip_resp(buf, pos, depth + 1)? {
                    Some(p) => pos = p,
                    None => return Ok(None),
                }
            }
            Ok(Some(pos))
        }
        other => Err(FrameError(format!(
            "unexpected RESP type byte {:?}",
            other as char
        ))),
    }
}

/// Frames the reply at the front of `buf` for a request of type `op`:
/// `Ok(None)` until all of it has arrived, then its length and outcome.
pub fn frame(proto: Protocol, op: Op, buf: &[u8]) -> Result<Option<(usize, Outcome)>, FrameError> {
    match proto {
        Protocol::Redis => {
            let Some(end) = skip_resp(buf, 0, 0)? else {
                return Ok(None);
            };
            let outcome = match (buf[0], op) {
                (b'-' | b'!', _) => Outcome::Error,
                (_, Op::Set) => Outcome::Stored,
                (b'_', Op::Get) => Outcome::Miss,
                (b'$', Op::Get) if buf.starts_with(b"$-1\r\n") => Outcome::Miss,
                (b'$', Op::Get) => Outcome::Hit,
                _ => Outcome::Error,
            };
            Ok(Some((end, outcome)))
        }
        Protocol::MemcacheText => {
            let Some(eol) = line_end(buf, 0)? else {
                return Ok(None);
            };
            let line = &buf[..eol];
            if op == Op::Set {
                let o = if line == b"STORED" {
                    Outcome::Stored
                } else {
                    Outcome::Error
                };
                return Ok(Some((eol + 2, o)));
            }
            if line == b"END" {
                return Ok(Some((eol + 2, Outcome::Miss)));
            }
            if !line.starts_with(b"VALUE ") {
                return Ok(Some((eol + 2, Outcome::Error)));
            }
            // VALUE <key> <flags> <bytes> [<cas>]
            let len = line
                .split(|&b| b == b' ')
                .nth(3)
                .ok_or_else(|| FrameError("VALUE line without a length".into()))?;
            let n =
                usize::try_from(num(len)?).map_err(|_| FrameError("bad VALUE length".into()))?;
            let end = n
                .checked_add(eol + 2 + 2 + b"END\r\n".len())
                .ok_or_else(|| FrameError("bad VALUE length".into()))?;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[end - 5..end] != b"END\r\n" {
                return Err(FrameError("VALUE not followed by END".into()));
            }
            Ok(Some((end, Outcome::Hit)))
        }
        Protocol::Http => frame_http(op, buf),
    }
}

fn frame_http(op: Op, buf: &[u8]) -> Result<Option<(usize, Outcome)>, FrameError> {
    let Some(head_end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_LINE {
            return Err(FrameError("HTTP header too long".into()));
        }
        return Ok(None);
    };
    let head = &buf[..head_end];
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(|&b| b == b' ')
        .nth(1)
        .map(num)
        .transpose()?
        .ok_or_else(|| FrameError("HTTP status line without a status".into()))?;
    let mut content_length = None;
    let mut chunked = false;
    for l in lines {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&l[..colon], &l[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            content_length = Some(num(value)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            && String::from_utf8_lossy(value)
                .to_ascii_lowercase()
                .contains("chunked")
        {
            chunked = true;
        }
    }
    let body_start = head_end + 4;
    let end = if chunked {
        let mut pos = body_start;
        loop {
            let Some(eol) = line_end(buf, pos)? else {
                return Ok(None);
            };
            let size_field = buf[pos..eol]
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default();
            let size = std::str::from_utf8(size_field)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| FrameError("bad chunk size".into()))?;
            pos = eol + 2;
            if size == 0 {
                // trailers until an empty line
                loop {
                    let Some(eol) = line_end(buf, pos)? else {
                        return Ok(None);
                    };
                    let empty = eol == pos;
                    pos = eol + 2;
                    if empty {
                        break;
                    }
                }
                break pos;
            }
            pos = size
                .checked_add(pos + 2)
                .ok_or_else(|| FrameError("bad chunk size".into()))?;
            if buf.len() < pos {
                return Ok(None);
            }
        }
    } else {
        let n = usize::try_from(content_length.unwrap_or(0))
            .map_err(|_| FrameError("bad Content-Length".into()))?;
        let end = body_start
            .checked_add(n)
            .ok_or_else(|| FrameError("bad Content-Length".into()))?;
        if buf.len() < end {
            return Ok(None);
        }
        end
    };
    let outcome = match (op, status) {
        (Op::Set, 200..=299) => Outcome::Stored,
        (Op::Get, 200) => Outcome::Hit,
        (Op::Get, 404) => Outcome::Miss,
        _ => Outcome::Error,
    };
    Ok(Some((end, outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(proto: Protocol, op: Op) -> String {
        let mut v = Vec::new();
        encode(proto, op, b"k 1", b"val", "h:1", &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn encodings() {
        assert_eq!(
            enc(Protocol::Redis, Op::Set),
            "*3\r\n$3\r\nSET\r\n$3\r\nk 1\r\n$3\r\nval\r\n"
        );
        assert_eq!(
            enc(Protocol::Redis, Op::Get),
            "*2\r\n$3\r\nGET\r\n$3\r\nk 1\r\n"
        );
        assert_eq!(
            enc(Protocol::MemcacheText, Op::Set),
            "set k 1 0 0 3\r\nval\r\n"
        );
        assert_eq!(
            enc(Protocol::Http, Op::Set),
            "PUT /v1/keys/k%201 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\n\r\nval"
        );
        assert_eq!(
            enc(Protocol::Http, Op::Get),
            "GET /v1/keys/k%201 HTTP/1.1\r\nHost: h:1\r\n\r\n"
        );
    }

    #[test]
    fn framing_waits_for_whole_replies() {
        use Outcome::*;
        let r = |op, b: &[u8]| frame(Protocol::Redis, op, b).unwrap();
        assert_eq!(r(Op::Set, b"+OK\r\n+OK"), Some((5, Stored)));
        assert_eq!(r(Op::Get, b"$3\r\nab"), None);
        assert_eq!(r(Op::Get, b"$3\r\nabc\r\n"), Some((9, Hit)));
        assert_eq!(r(Op::Get, b"$-1\r\n"), Some((5, Miss)));
        assert_eq!(r(Op::Get, b"-ERR x\r\n"), Some((8, Error)));
        assert_eq!(r(Op::Get, b"*2\r\n:1\r\n"), None);
        assert!(frame(Protocol::Redis, Op::Get, b"?\r\n").is_err());

        let m = |op, b: &[u8]| frame(Protocol::MemcacheText, op, b).unwrap();
        assert_eq!(m(Op::Set, b"STORED\r\n"), Some((8, Stored)));
        assert_eq!(m(Op::Get, b"END\r\n"), Some((5, Miss)));
        assert_eq!(m(Op::Get, b"VALUE k 0 2\r\nab\r\nEN"), None);
        assert_eq!(m(Op::Get, b"VALUE k 0 2\r\nab\r\nEND\r\n"), Some((22, Hit)));
        assert_eq!(
            m(Op::Set, b"SERVER_ERROR out of memory\r\n"),
            Some((28, Error))
        );

        let h = |op, b: &[u8]| frame(Protocol::Http, op, b).unwrap();
        assert_eq!(
            h(Op::Get, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab"),
            None
        );
        assert_eq!(
            h(Op::Get, b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcX"),
            Some((41, Hit))
        );
        assert_eq!(
            h(Op::Get, b"HTTP/1.1 404 Not Found\r\n\r\n"),
            Some((26, Miss))
        );
        assert_eq!(
            h(Op::Set, b"HTTP/1.1 204 No Content\r\n\r\n"),
            Some((27, Stored))
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(h(Op::Get, chunked), Some((chunked.len(), Hit)));
        assert_eq!(h(Op::Get, &chunked[..chunked.len() - 1]), None);
    }
}
