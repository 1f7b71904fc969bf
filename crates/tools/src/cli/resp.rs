//! A small blocking RESP2/RESP3 client for `magpie cli`: encodes commands as
//! multibulks and reads whole replies into a [`Reply`] tree.
//!
//! Replies come from a server we may not trust (the cli can point anywhere on
//! loopback), so nothing is allocated by a length the server claims before
//! the bytes arrive, nesting depth is capped, and every framing problem is a
//! [`ReplyError::Protocol`] with hiredis's wording rather than a panic.

use std::io::{self, BufRead, Read, Write};

/// Deepest nesting of aggregates accepted before the reply is called
/// malformed (keeps a hostile server from overflowing our stack).
const MAX_DEPTH: usize = 128;

/// Longest header line (`$123\r\n`, `+OK\r\n`, ...) accepted.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// One decoded reply, RESP2 and RESP3 types alike.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+...` simple string.
    Status(Vec<u8>),
    /// `-...` or `!` blob error.
    Error(Vec<u8>),
    /// `:` integer.
    Integer(i64),
    /// `$` bulk string.
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or RESP3 `_`.
    Nil,
    /// `*` array.
    Array(Vec<Reply>),
    /// RESP3 `%` map, as key/value pairs.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~` set.
    Set(Vec<Reply>),
    /// RESP3 `>` push.
    Push(Vec<Reply>),
    /// RESP3 `,` double, kept as the text the server sent.
    Double(String),
    /// RESP3 `#` boolean.
    Bool(bool),
    /// RESP3 `(` big number, as its digits.
    BigNumber(String),
    /// RESP3 `=` verbatim string: format (`txt`, `mkd`) and text.
    Verbatim(String, Vec<u8>),
}

/// Why a reply could not be read.
#[derive(Debug)]
pub enum ReplyError {
    /// The connection failed or closed.
    Io(io::Error),
    /// The bytes are not RESP; the text follows hiredis's messages.
    Protocol(String),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("Server closed the connection")
            }
            ReplyError::Io(e) => write!(f, "{e}"),
            ReplyError::Protocol(m) => f.write_str(m),
        }
    }
}

impl From<io::Error> for ReplyError {
    fn from(e: io::Error) -> Self {
        ReplyError::Io(e)
    }
}

fn protocol(msg: impl Into<String>) -> ReplyError {
    ReplyError::Protocol(msg.into())
}

/// Appends `args` to `out` as a RESP multibulk request.
pub fn encode_command(out: &mut Vec<u8>, args: &[impl AsRef<[u8]>]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes one command and flushes.
pub fn send_command(w: &mut impl Write, args: &[impl AsRef<[u8]>]) -> io::Result<()> {
    let mut buf = Vec::new();
    encode_command(&mut buf, args);
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one `\r\n`-terminated line (without the terminator).
fn read_line(r: &mut impl BufRead) -> Result<Vec<u8>, ReplyError> {
    let mut line = Vec::new();
    let n = r.take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(ReplyError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    if !line.ends_with(b"\r\n") {
        if line.len() >= MAX_LINE {
            return Err(protocol("Protocol error: reply line too long"));
        }
        return Err(ReplyError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(line: &[u8], what: &str) -> Result<i64, ReplyError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| protocol(format!("Bad {what} value")))
}

/// Reads exactly `len` bytes plus the trailing `\r\n`, growing the buffer
/// only as bytes arrive.
fn read_blob(r: &mut impl BufRead, len: i64) -> Result<Vec<u8>, ReplyError> {
    let len = u64::try_from(len).map_err(|_| protocol("Bad bulk string length"))?;
    let mut body = Vec::with_capacity(len.min(64 * 1024) as usize);
    let got = r.take(len).read_to_end(&mut body)?;
    if (got as u64) < len {
        return Err(ReplyError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    let mut crlf = [0u8; 2];
    r.read_exact(&mut crlf)?;
    if crlf != *b"\r\n" {
        return Err(protocol("Bad bulk string terminator"));
    }
    Ok(body)
}

fn read_items(r: &mut impl BufRead, n: i64, depth: usize) -> Result<Vec<Reply>, ReplyError> {
    let n = usize::try_from(n).map_err(|_| protocol("Bad multi-bulk length"))?;
    let mut items = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        items.push(read_at(r, depth + 1)?);
    }
    Ok(items)
}

/// Reads one whole reply. RESP3 attributes (`|`) are read and dropped, as
/// they describe the reply that follows rather than being one.
pub fn read_reply(r: &mut impl BufRead) -> Result<Reply, ReplyError> {
    read_at(r, 0)
}

fn read_at(r: &mut impl BufRead, depth: usize) -> Result<Reply, ReplyError> {
    if depth > MAX_DEPTH {
        return Err(protocol("Protocol error: reply nested too deeply"));
    }
    loop {
        let line = read_line(r)?;
        let Some((&kind, rest)) = line.split_first() else {
            return Err(protocol("Protocol error, got \"\\r\" as reply type byte"));
        };
        return Ok(match kind {
            b'+' => Reply::Status(rest.to_vec()),
            b'-' => Reply::Error(rest.to_vec()),
            b':' => Reply::Integer(parse_int(rest, "integer")?),
            b'$' => match parse_int(rest, "bulk string length")? {
                -1 => Reply::Nil,
                n => Reply::Bulk(read_blob(r, n)?),
            },
            b'!' => Reply::Error(read_blob(r, parse_int(rest, "blob error length")?)?),
            b'=' => {
                let body = read_blob(r, parse_int(rest, "verbatim string length")?)?;
                if body.len() < 4 || body[3] != b':' {
                    return Err(protocol("Bad verbatim string format"));
                }
                let format = String::from_utf8_lossy(&body[..3]).into_owned();
                Reply::Verbatim(format, body[4..].to_vec())
            }
            b'*' => match parse_int(rest, "multi-bulk length")? {
                -1 => Reply::Nil,
                n => Reply::Array(read_items(r, n, depth)?),
            },
            b'~' => Reply::Set(read_items(r, parse_int(rest, "set length")?, depth)?),
            b'>' => Reply::Push(read_items(r, parse_int(rest, "push length")?, depth)?),
            b'%' => {
                let n = parse_int(rest, "map length")?;
                let n = usize::try_from(n).map_err(|_| protocol("Bad map length"))?;
                let mut pairs = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let k = read_at(r, depth + 1)?;
                    let v = read_at(r, depth + 1)?;
                    pairs.push((k, v));
                }
                Reply::Map(pairs)
            }
            b'|' => {
                let n = parse_int(rest, "attribute length")?;
                for _ in 0..n.max(0).saturating_mul(2) {
                    read_at(r, depth + 1)?;
                }
                continue;
            }
            b'_' if rest.is_empty() => Reply::Nil,
            b'#' => match rest {
                b"t" => Reply::Bool(true),
                b"f" => Reply::Bool(false),
                _ => return Err(protocol("Bad bool value")),
            },
            b',' => {
                let s = std::str::from_utf8(rest).map_err(|_| protocol("Bad double value"))?;
                let ok = matches!(s, "inf" | "-inf" | "nan") || s.parse::<f64>().is_ok();
                if !ok {
                    return Err(protocol("Bad double value"));
                }
                Reply::Double(s.to_owned())
            }
            b'(' => {
                let digits = rest.strip_prefix(b"-").unwrap_or(rest);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(protocol("Bad big number value"));
                }
                Reply::BigNumber(String::from_utf8_lossy(rest).into_owned())
            }
            other => {
                return Err(protocol(format!(
                    "Protocol error, got {} as reply type byte",
                    super::repr::repr(&[other])
                )))
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Reply, ReplyError> {
        read_reply(&mut &bytes[..])
    }

    #[test]
    fn resp2_and_resp3_types() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Status(b"OK".to_vec()));
        assert_eq!(parse(b":-5\r\n").unwrap(), Reply::Integer(-5));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Nil);
        assert_eq!(parse(b"*-1\r\n").unwrap(), Reply::Nil);
        assert_eq!(parse(b"_\r\n").unwrap(), Reply::Nil);
        assert_eq!(
            parse(b"$3\r\na\r\n\r\n").unwrap(),
            Reply::Bulk(b"a\r\n".to_vec())
        );
        assert_eq!(
            parse(b"*2\r\n:1\r\n*0\r\n").unwrap(),
            Reply::Array(vec![Reply::Integer(1), Reply::Array(vec![])])
        );
        assert_eq!(
            parse(b"%1\r\n+a\r\n#t\r\n").unwrap(),
            Reply::Map(vec![(Reply::Status(b"a".to_vec()), Reply::Bool(true))])
        );
        assert_eq!(
            parse(b"|1\r\n+k\r\n+v\r\n,1.5\r\n").unwrap(),
            Reply::Double("1.5".into())
        );
        assert_eq!(
            parse(b"=8\r\ntxt:abcd\r\n").unwrap(),
            Reply::Verbatim("txt".into(), b"abcd".to_vec())
        );
        assert_eq!(parse(b"(-12\r\n").unwrap(), Reply::BigNumber("-12".into()));
        assert_eq!(
            parse(b"!3\r\nERR\r\n").unwrap(),
            Reply::Error(b"ERR".to_vec())
        );
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        for bad in [
            &b"?x\r\n"[..],
            b"$abc\r\n",
            b"$5\r\nab\r\n",
            b"$2\r\nabXY",
            b"*2\r\n:1\r\n",
            b":1",
            b"#x\r\n",
            b",nope\r\n",
            b"*-2\r\n",
            b"$9999999999\r\nshort\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 10);
        assert!(parse(deep.as_bytes()).is_err());
        match parse(b"?x\r\n") {
            Err(ReplyError::Protocol(m)) => {
                assert_eq!(m, "Protocol error, got \"?\" as reply type byte")
            }
            other => panic!("{other:?}"),
        }
    }
}
