//! Request limits at their edges, byte for byte against a real
//! redis-server: the inline line and `*N` / `$N` header lines (64 KiB), the
//! multibulk count (INT_MAX), `proto-max-bulk-len` and
//! `client-query-buffer-limit` (both at 1 MiB, the smallest value Redis
//! accepts). Each case is sent to both servers the same way; a refused
//! client gets Redis's error (or, for the query buffer, no reply) and is
//! closed, while another client of the same server is still served.
//!
//! Only the cases whose outcome in Redis does not depend on how its reads
//! happen to split the bytes are compared: a complete inline line longer
//! than 64 KiB is accepted by Redis when it arrives in the same read as the
//! bytes that cross the limit and refused otherwise, where magpie always
//! refuses it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// Redis's `PROTO_INLINE_MAX_SIZE`.
const INLINE_MAX: usize = 64 * 1024;
/// 1 MiB: the smallest `proto-max-bulk-len` and `client-query-buffer-limit`
/// redis-server accepts.
const MIB: usize = 1024 * 1024;

/// What one server did with a staged request.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// What came back after each part was sent (nothing means the server
    /// was still waiting for more).
    replies: Vec<String>,
    /// Whether the server closed the connection after the last part.
    closed: bool,
}

/// Sends `parts` one after the other, each followed by a short wait, then
/// reads until the server closes or goes quiet for a second. Writes that
/// fail because the server already closed are not an error: what it said
/// before closing is what is compared.
fn staged(port: u16, parts: &[&[u8]]) -> Outcome {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut replies = Vec::new();
    let mut closed = false;
    for (i, part) in parts.iter().enumerate() {
        let _ = s.write_all(part);
        let last = i + 1 == parts.len();
        let quiet = if last {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(200)
        };
        let (got, eof) = read_quiet(&mut s, quiet);
        replies.push(String::from_utf8_lossy(&got).into_owned());
        if eof {
            closed = true;
            break;
        }
    }
    Outcome { replies, closed }
}

/// Reads until EOF (true) or until nothing arrives for `quiet`.
fn read_quiet(s: &mut TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            // a reset after a refusal is a close too
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

/// Runs every case against both servers, asserts equal outcomes and that
/// each outcome is the one expected, and that both still serve a new
/// client afterwards.
fn compare(redis: &Server, ours: &Server, cases: &[(&str, Vec<Vec<u8>>, bool)]) {
    for (name, parts, want_close) in cases {
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let want = staged(redis.port, &parts);
        let got = staged(ours.port, &parts);
        assert_eq!(got, want, "{name}");
        assert_eq!(want.closed, *want_close, "{name}: redis-server {want:?}");
        assert_eq!(ours.client().cmd(&["PING"]), b"+PONG\r\n", "{name}");
    }
}

fn repeat(prefix: &[u8], byte: u8, total: usize, suffix: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.resize(total, byte);
    v.extend_from_slice(suffix);
    v
}

#[test]
fn inline_and_header_lines_at_64_kib_match_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let n = INLINE_MAX;
    let cases = vec![
        // exactly N bytes without a newline: still waiting; the newline
        // completes it and the connection goes on
        (
            "inline line of N bytes",
            vec![repeat(b"ECHO ", b'x', n, b""), b"\r\nPING\r\n".to_vec()],
            false,
        ),
        (
            "inline line of N+1 bytes",
            vec![repeat(b"ECHO ", b'x', n + 1, b"")],
            true,
        ),
        (
            "inline line of N+1 bytes in two parts",
            vec![repeat(b"ECHO ", b'x', n, b""), b"x".to_vec()],
            true,
        ),
        // `*N` and `$N` lines: N bytes wait (and then fail as numbers, the
        // leading zeros are refused by string2ll), N+1 are too big
        (
            "multibulk count line of N bytes",
            vec![repeat(b"*", b'0', n, b""), b"\r\n".to_vec()],
            true,
        ),
        (
            "multibulk count line of N+1 bytes",
            vec![repeat(b"*", b'0', n + 1, b"")],
            true,
        ),
        (
            "bulk length line of N bytes",
            vec![repeat(b"*1\r\n$", b'0', n + 4, b""), b"\r\n".to_vec()],
            true,
        ),
        (
            "bulk length line of N+1 bytes",
            vec![repeat(b"*1\r\n$", b'0', n + 5, b"")],
            true,
        ),
    ];
    compare(&redis, &ours, &cases);
}

#[test]
fn multibulk_count_and_bulk_length_edges_match_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let b = |s: &str| s.as_bytes().to_vec();
    let cases = vec![
        // INT_MAX arguments are announced fine (nothing is allocated for
        // them up front); one more is refused
        (
            "*INT_MAX",
            vec![b("*2147483647\r\n"), b("$4\r\nPING\r\n")],
            false,
        ),
        ("*INT_MAX+1", vec![b("*2147483648\r\n")], true),
        (
            "*-1 and *0",
            vec![b("*-1\r\n*0\r\n*1\r\n$4\r\nPING\r\n")],
            false,
        ),
        ("*x", vec![b("*x\r\n")], true),
        ("*1x", vec![b("*1x\r\n")], true),
        // 512 MB is announced fine; one byte more is refused
        (
            "$512mb",
            vec![b("*2\r\n$4\r\nECHO\r\n$536870912\r\n"), b("abc")],
            false,
        ),
        (
            "$512mb+1",
            vec![b("*2\r\n$4\r\nECHO\r\n$536870913\r\n")],
            true,
        ),
        ("$-1", vec![b("*2\r\n$4\r\nECHO\r\n$-1\r\n")], true),
        ("$x", vec![b("*2\r\n$4\r\nECHO\r\n$x\r\n")], true),
        ("$ missing", vec![b("*2\r\n$4\r\nECHO\r\n:1\r\n")], true),
    ];
    compare(&redis, &ours, &cases);
}

#[test]
fn proto_max_bulk_len_at_one_mib_matches_redis() {
    let flag = MIB.to_string();
    let Some(redis) = redis_with(&["--proto-max-bulk-len", &flag]) else {
        return;
    };
    let ours = magpie(&["--proto-max-bulk-len", &flag]);
    let set = |len: usize| encode(&[b"SET", b"k", &vec![b'v'; len]]);
    let header = |len: usize| format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${len}\r\n").into_bytes();
    let cases = vec![
        ("bulk of N bytes", vec![set(MIB)], false),
        ("bulk of N+1 bytes", vec![header(MIB + 1)], true),
    ];
    compare(&redis, &ours, &cases);
    for s in [&redis, &ours] {
        assert_eq!(s.client().cmd(&["STRLEN", "k"]), b":1048576\r\n");
    }
}

#[test]
fn client_query_buffer_limit_at_one_mib_matches_redis() {
    let flag = MIB.to_string();
    let Some(redis) = redis_with(&["--client-query-buffer-limit", &flag]) else {
        return;
    };
    let ours = magpie(&["--client-query-buffer-limit", &flag]);
    let mut bystanders = [redis.client(), ours.client()];
    for b in &mut bystanders {
        assert_eq!(b.cmd(&["SET", "b", "1"]), b"+OK\r\n");
    }
    let set = |len: usize| encode(&[b"SET", b"k", &vec![b'v'; len]]);
    // a big argument sits alone in Redis's query buffer with its CRLF: a
    // value of limit-2 bytes fits, limit-1 does not (and the client is
    // closed without a reply, the command not run)
    // the same request in three parts, the last byte alone
    let pieces = |req: Vec<u8>| {
        let (half, last) = (req.len() / 2, req.len() - 1);
        vec![
            req[..half].to_vec(),
            req[half..last].to_vec(),
            req[last..].to_vec(),
        ]
    };
    let mut partial = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", 2 * MIB).into_bytes();
    partial.resize(partial.len() + MIB + 100, b'v');
    let cases = vec![
        ("value of limit-2 bytes", vec![set(MIB - 2)], false),
        ("value of limit-1 bytes", vec![set(MIB - 1)], true),
        (
            "value of limit-1 bytes in pieces",
            pieces(set(MIB - 1)),
            true,
        ),
        (
            "value of limit-2 bytes in pieces",
            pieces(set(MIB - 2)),
            false,
        ),
        // a value still arriving when the buffer passes the limit
        ("unfinished value past the limit", vec![partial], true),
    ];
    compare(&redis, &ours, &cases);
    for (s, b) in [&redis, &ours].into_iter().zip(&mut bystanders) {
        assert_eq!(b.cmd(&["GET", "b"]), b"$1\r\n1\r\n", "bystander served");
        let want = format!(":{}\r\n", MIB - 2).into_bytes();
        assert_eq!(
            s.client().cmd(&["STRLEN", "k"]),
            want,
            "refused SETs not run"
        );
    }
}
