//! Request parsing for the Redis side: RESP multibulk (`*N` then `$len`
//! arguments), inline commands (a plain line, split like `redis-cli` and
//! `telnet` users expect) and the "kvs" framing (`*N` then N bare lines).
//!
//! The parser is resumable: when a request is incomplete it keeps what it has
//! parsed so far and continues from there on the next call, so a request that
//! arrives in many reads is parsed once. Arguments are byte ranges into the
//! caller's buffer (no copies), except inline arguments with quotes or
//! escapes, which are decoded into owned buffers. It never allocates from a
//! length the client announced before those bytes have arrived, and never
//! recurses.

use std::ops::Range;

use memchr::memchr;

use crate::int::parse_i64;

/// Limits a client's requests must respect; each is configurable.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest argument (Redis `proto-max-bulk-len`, 512 MB). Applies to
    /// kvs lines and inline arguments too, so no framing can exceed it.
    pub max_bulk_len: usize,
    /// Most arguments in one multibulk request (Redis allows up to INT_MAX).
    pub max_multibulk_len: usize,
    /// Longest inline request, and longest `*N` / `$N` / kvs line (64 KB),
    /// counted without the line terminator.
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
        }
    }
}

/// Redis's `PROTO_MBULK_BIG_ARG`: a bulk argument at least this long is
/// read into a buffer of its own, so Redis's query-buffer limit applies to
/// its bytes alone (see [`Parser::query_buffer_len`]).
pub const BIG_ARG: usize = 32 * 1024;

/// How a request was framed; replies are encoded to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `*N` + `$len` bulk arguments (what every Redis client sends).
    Multibulk,
    /// A plain line of space-separated arguments.
    Inline,
    /// `*N` followed by N bare lines (the original kvs design).
    Kvs,
}

/// A malformed request. The connection answers with the message as a RESP
/// error and is then closed, as Redis does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERR Protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

impl ProtocolError {
    fn new(msg: &str) -> ProtocolError {
        ProtocolError(msg.to_string())
    }
}

/// A complete request: its framing and how many buffer bytes it used.
/// Its arguments are read through [`Parser::args`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// How the request was framed.
    pub framing: Framing,
    /// Bytes of the buffer the request occupied.
    pub consumed: usize,
}

/// The parser's progress through a partially received request.
#[derive(Debug, Default)]
enum Progress {
    #[default]
    Start,
    /// Inside `*N`: `remaining` arguments still to read, next one at `pos`.
    Multi {
        framing: Option<Framing>,
        remaining: usize,
        pos: usize,
    },
}

/// Resumable request parser; one per connection.
#[derive(Debug, Default)]
pub struct Parser {
    limits: Limits,
    progress: Progress,
    ranges: Vec<Range<usize>>,
    owned: Vec<Vec<u8>>,
    inline: bool,
}

/// The arguments of the last request parsed, borrowed from the read buffer.
#[derive(Clone, Copy, Debug)]
pub enum Args<'a> {
    /// Ranges into the buffer.
    Ranges(&'a [u8], &'a [Range<usize>]),
    /// Decoded inline arguments.
    Owned(&'a [Vec<u8>]),
}

impl<'a> Args<'a> {
    /// Number of arguments, command name included.
    pub fn len(&self) -> usize {
        match self {
            Args::Ranges(_, r) => r.len(),
            Args::Owned(v) => v.len(),
        }
    }

    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Argument `i` (0 is the command name). Panics when out of range.
    pub fn get(&self, i: usize) -> &'a [u8] {
        match self {
            Args::Ranges(buf, r) => &buf[r[i].clone()],
            Args::Owned(v) => &v[i],
        }
    }

    /// Every argument in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

/// Finds the next line in `buf[from..]`: returns (end of content, start of next line).
/// A line ends at `\r\n`; content excludes the `\r`.
fn line(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let nl = find_newline(&buf[from..])? + from;
    let end = if nl > from && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

/// True when `partial`, the start of a line whose LF has not arrived yet, is
/// already certain to be longer than `max` once complete. A trailing CR may
/// still turn out to be part of the terminator, so it is not counted. With
/// the check on complete lines (content length > `max`) this makes every
/// limit decision independent of how the bytes were split into reads.
fn partial_too_long(partial: &[u8], max: usize) -> bool {
    partial.len() - usize::from(partial.ends_with(b"\r")) > max
}

/// Position of the first `\n`. Header lines (`*3`, `$5`) are a few bytes,
/// where memchr's vector setup costs more than it saves (callgrind: ~150
/// instructions per call), so the first bytes are scanned plainly.
fn find_newline(hay: &[u8]) -> Option<usize> {
    const SHORT: usize = 16;
    let head = &hay[..hay.len().min(SHORT)];
    if let Some(i) = head.iter().position(|&b| b == b'\n') {
        return Some(i);
    }
    if hay.len() <= SHORT {
        return None;
    }
    memchr(b'\n', &hay[SHORT..]).map(|i| i + SHORT)
}

impl Parser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            ..Parser::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The arguments of the request last returned by [`Parser::parse`], read
    /// from the same `buf` that was passed to it.
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        if self.inline {
            Args::Owned(&self.owned)
        } else {
            Args::Ranges(buf, &self.ranges)
        }
    }

    /// Parses the request at the start of `buf`. `Ok(None)` means more bytes
    /// are needed (progress is kept; call again with the same start and more
    /// bytes). A request with no arguments (`*0`, an empty line) is returned
    /// with empty args and should be skipped.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
        if let Progress::Start = self.progress {
            self.ranges.clear();
            self.owned.clear();
            self.inline = false;
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            if first != b'*' {
                return self.parse_inline(buf);
            }
            let Some((end, next)) = line(buf, 0) else {
                if partial_too_long(buf, self.limits.max_inline_len) {
                    return Err(ProtocolError::new("too big mbulk count string"));
                }
                return Ok(None);
            };
            if end > self.limits.max_inline_len {
                return Err(ProtocolError::new("too big mbulk count string"));
            }
            let n = parse_i64(&buf[1..end])
                .ok_or_else(|| ProtocolError::new("invalid multibulk length"))?;
            if n > self.limits.max_multibulk_len as i64 || n > i32::MAX as i64 {
                return Err(ProtocolError::new("invalid multibulk length"));
            }
            if n <= 0 {
                return Ok(Some(Request {
                    framing: Framing::Multibulk,
                    consumed: next,
                }));
            }
            self.progress = Progress::Multi {
                framing: None,
                remaining: n as usize,
                pos: next,
            };
        }
        let Progress::Multi {
            framing,
            remaining,
            pos,
        } = &mut self.progress
        else {
            unreachable!()
        };
        while *remaining > 0 {
            let Some(&first) = buf.get(*pos) else {
                return Ok(None);
            };
            let kind = *framing.get_or_insert(if first == b'$' {
                Framing::Multibulk
            } else {
                Framing::Kvs
            });
            if kind == Framing::Kvs {
                let Some((end, next)) = line(buf, *pos) else {
                    if partial_too_long(&buf[*pos..], self.limits.max_inline_len) {
                        self.progress = Progress::Start;
                        return Err(ProtocolError::new("too big inline request"));
                    }
                    return Ok(None);
                };
                if end - *pos > self.limits.max_inline_len {
                    self.progress = Progress::Start;
                    return Err(ProtocolError::new("too big inline request"));
                }
                if end - *pos > self.limits.max_bulk_len {
                    self.progress = Progress::Start;
                    return Err(ProtocolError::new("invalid bulk length"));
                }
                self.ranges.push(*pos..end);
                *pos = next;
                *remaining -= 1;
                continue;
            }
            if first != b'$' {
                self.progress = Progress::Start;
                return Err(ProtocolError(expected_dollar(first)));
            }
            let Some((end, next)) = line(buf, *pos) else {
                if partial_too_long(&buf[*pos..], self.limits.max_inline_len) {
                    self.progress = Progress::Start;
                    return Err(ProtocolError::new("too big bulk count string"));
                }
                return Ok(None);
            };
            if end - *pos > self.limits.max_inline_len {
                self.progress = Progress::Start;
                return Err(ProtocolError::new("too big bulk count string"));
            }
            let len = match parse_i64(&buf[*pos + 1..end]) {
                Some(n) if n >= 0 && n as u64 <= self.limits.max_bulk_len as u64 => n as usize,
                _ => {
                    self.progress = Progress::Start;
                    return Err(ProtocolError::new("invalid bulk length"));
                }
            };
            // the value and its trailing CRLF (not checked, as in Redis)
            if buf.len() < next + len + 2 {
                return Ok(None);
            }
            self.ranges.push(next..next + len);
            *pos = next + len + 2;
            *remaining -= 1;
        }
        let request = Request {
            framing: framing.unwrap_or(Framing::Multibulk),
            consumed: *pos,
        };
        self.progress = Progress::Start;
        Ok(Some(request))
    }

    /// Bytes the current partial request needs in total before it can
    /// complete, when that is known (a bulk whose length has been read).
    /// Lets the caller grow its buffer once instead of many times.
    pub fn needed(&self, buf: &[u8]) -> Option<usize> {
        let Progress::Multi {
            framing: Some(Framing::Multibulk),
            pos,
            ..
        } = self.progress
        else {
            return None;
        };
        let (end, next) = line(buf, pos)?;
        let len = parse_i64(&buf[pos + 1..end])?;
        Some(next + usize::try_from(len).ok()? + 2)
    }

    /// How many bytes of `buf` (the buffer of [`Parser::parse`], minus any
    /// complete requests already consumed) count against the client's query
    /// buffer limit, counted as Redis counts its query buffer: arguments of a
    /// partial request that are already parsed do not count (Redis has moved
    /// them out of the buffer), and neither does the `$N` line of a bulk of
    /// at least 32 KiB whose bytes are still arriving (Redis reads such a
    /// "big argument" into a buffer of its own, holding only its bytes and
    /// CRLF). So a bulk of `limit - 2` bytes fits and one more does not.
    /// Bytes pipelined after such a bulk are not counted either: Redis does
    /// not read past the end of a big argument.
    pub fn query_buffer_len(&self, buf: &[u8]) -> usize {
        let Progress::Multi { framing, pos, .. } = self.progress else {
            return buf.len();
        };
        let pos = pos.min(buf.len());
        if framing == Some(Framing::Multibulk) {
            if let Some((end, next)) = line(buf, pos) {
                if let Some(n) = parse_i64(&buf[pos + 1..end]) {
                    if n >= BIG_ARG as i64 {
                        return (buf.len() - next).min(n as usize + 2);
                    }
                }
            }
        }
        buf.len() - pos
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
        let Some((end, next)) = line(buf, 0) else {
            if partial_too_long(buf, self.limits.max_inline_len) {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(None);
        };
        if end > self.limits.max_inline_len {
            return Err(ProtocolError::new("too big inline request"));
        }
        self.inline = true;
        split_args(&buf[..end], &mut self.owned)
            .ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))?;
        if self.owned.len() > self.limits.max_multibulk_len {
            return Err(ProtocolError::new("invalid multibulk length"));
        }
        if self
            .owned
            .iter()
            .any(|a| a.len() > self.limits.max_bulk_len)
        {
            return Err(ProtocolError::new("invalid bulk length"));
        }
        Ok(Some(Request {
            framing: Framing::Inline,
            consumed: next,
        }))
    }
}

fn expected_dollar(got: u8) -> String {
    format!("expected '$', got '{}'", got as char)
}

/// Splits an inline request line into arguments the way Redis's
/// `sdssplitargs` does: spaces separate, `"..."` understands `\n \r \t \b \a
/// \\ \" \xHH`, `'...'` understands `\'`, and a closing quote must be followed
/// by a space or the end. Returns None on unbalanced quotes.
pub fn split_args(line: &[u8], out: &mut Vec<Vec<u8>>) -> Option<()> {
    out.clear();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(());
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && is_hex(line[i + 2])
                    && is_hex(line[i + 3])
                {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex(c: u8) -> u8 {
    (c as char).to_digit(16).unwrap_or(0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = Vec<(Framing, Vec<Vec<u8>>)>;

    fn parse_all(input: &[u8]) -> Result<Parsed, ProtocolError> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        let mut at = 0;
        while at < input.len() {
            match p.parse(&input[at..])? {
                Some(r) => {
                    let args = p.args(&input[at..]).iter().map(|a| a.to_vec()).collect();
                    out.push((r.framing, args));
                    at += r.consumed;
                }
                None => break,
            }
        }
        Ok(out)
    }

    fn v(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_inline_and_kvs() {
        let got =
            parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*3\r\nSET\r\nk\r\nv\r\n").unwrap();
        assert_eq!(
            got,
            vec![
                (Framing::Multibulk, v(&["GET", "k"])),
                (Framing::Inline, v(&["PING"])),
                (Framing::Kvs, v(&["SET", "k", "v"])),
            ]
        );
    }

    #[test]
    fn resumes_byte_by_byte() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$0\r\n\r\n";
        let mut p = Parser::default();
        for cut in 0..input.len() {
            assert_eq!(p.parse(&input[..cut]).unwrap(), None, "cut {cut}");
        }
        let r = p.parse(input).unwrap().unwrap();
        assert_eq!(r.consumed, input.len());
        let args: Vec<_> = p.args(input).iter().collect();
        assert_eq!(args, vec![&b"SET"[..], b"hello", b""]);
    }

    #[test]
    fn errors_match_redis() {
        let err = |i: &[u8]| parse_all(i).unwrap_err().to_string();
        assert_eq!(
            err(b"*x\r\n"),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err(b"*2\r\n$3\r\nGET\r\n+k\r\n"),
            "ERR Protocol error: expected '$', got '+'"
        );
        assert_eq!(
            err(b"*1\r\n$-1\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            err(b"*1\r\n$01\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            err(b"SET \"a\r\n"),
            "ERR Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            err(b"SET \"a\"b\r\n"),
            "ERR Protocol error: unbalanced quotes in request"
        );
    }

    #[test]
    fn limits_are_enforced_at_the_edge() {
        let limits = Limits {
            max_bulk_len: 4,
            max_multibulk_len: 2,
            max_inline_len: 8,
        };
        let mut p = Parser::new(limits.clone());
        assert!(p.parse(b"*1\r\n$4\r\nabcd\r\n").unwrap().is_some());
        assert_eq!(
            p.parse(b"*1\r\n$5\r\n").unwrap_err().0,
            "invalid bulk length"
        );
        let mut p = Parser::new(limits.clone());
        assert!(p.parse(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n").unwrap().is_some());
        assert_eq!(
            p.parse(b"*3\r\n").unwrap_err().0,
            "invalid multibulk length"
        );
        let mut p = Parser::new(limits.clone());
        assert!(p.parse(b"1234 678\r\n").unwrap().is_some());
        assert_eq!(
            p.parse(b"12345 78\r\n").unwrap_err().0,
            "invalid bulk length"
        );
        // a CR that may be the terminator's is not counted until LF decides
        assert_eq!(p.parse(b"1234 678\r").unwrap(), None);
        assert_eq!(
            p.parse(b"123456789").unwrap_err().0,
            "too big inline request"
        );
        assert_eq!(
            p.parse(b"123456789\r\n").unwrap_err().0,
            "too big inline request"
        );
        // kvs lines: same line limit, and the bulk limit per argument
        let mut p = Parser::new(limits.clone());
        assert!(p.parse(b"*2\r\nabcd\r\nefgh\r\n").unwrap().is_some());
        assert_eq!(
            p.parse(b"*1\r\nabcde\r\n").unwrap_err().0,
            "invalid bulk length"
        );
        assert_eq!(
            p.parse(b"*1\r\n123456789").unwrap_err().0,
            "too big inline request"
        );
        assert_eq!(
            p.parse(b"*1\r\n123456789\r\n").unwrap_err().0,
            "too big inline request"
        );
        // header lines, complete or not
        assert_eq!(
            p.parse(b"*00000001\r\n").unwrap_err().0,
            "too big mbulk count string"
        );
        assert_eq!(
            p.parse(b"*000000001").unwrap_err().0,
            "too big mbulk count string"
        );
        assert_eq!(
            p.parse(b"*1\r\n$00000004\r\n").unwrap_err().0,
            "too big bulk count string"
        );
    }

    #[test]
    fn empty_requests_are_skippable() {
        let got = parse_all(b"*0\r\n*-1\r\n\r\n").unwrap();
        assert!(got.iter().all(|(_, a)| a.is_empty()));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn inline_quoting_like_sdssplitargs() {
        let mut out = Vec::new();
        split_args(br#"set "a b" 'c\'d' "\x41\n" plain"#, &mut out).unwrap();
        assert_eq!(out, v(&["set", "a b", "c'd", "A\n", "plain"]));
    }

    #[test]
    fn query_buffer_len_leaves_out_parsed_arguments_and_big_bulk_headers() {
        let mut p = Parser::default();
        // nothing parsed yet: everything counts
        assert_eq!(p.query_buffer_len(b"*2\r\n$3"), 6);
        // the first argument is parsed; the partial second one counts,
        // its `$N` line included (a small bulk)
        let buf = b"*2\r\n$3\r\nSET\r\n$5\r\nab";
        assert_eq!(p.parse(buf).unwrap(), None);
        assert_eq!(p.query_buffer_len(buf), b"$5\r\nab".len());
        // a bulk of 32 KiB or more counts only its own bytes
        let mut p = Parser::default();
        let mut buf = b"*2\r\n$3\r\nSET\r\n$32768\r\n".to_vec();
        buf.extend_from_slice(&[b'x'; 100]);
        assert_eq!(p.parse(&buf).unwrap(), None);
        assert_eq!(p.query_buffer_len(&buf), 100);
        // ... and never more than the bulk and its CRLF
        buf.extend_from_slice(&[b'x'; 32768 - 100]);
        buf.extend_from_slice(b"\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(p.query_buffer_len(&buf), 32768 + 2);
        let mut p = Parser::default();
        let mut buf = b"*2\r\n$3\r\nSET\r\n$32767\r\n".to_vec();
        buf.extend_from_slice(&[b'x'; 100]);
        assert_eq!(p.parse(&buf).unwrap(), None);
        assert_eq!(p.query_buffer_len(&buf), b"$32767\r\n".len() + 100);
    }

    #[test]
    fn needed_reports_a_known_bulk() {
        let mut p = Parser::default();
        let buf = b"*1\r\n$100\r\nab";
        assert_eq!(p.parse(buf).unwrap(), None);
        assert_eq!(p.needed(buf), Some(10 + 100 + 2));
    }
}
