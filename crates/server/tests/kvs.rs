//! The kvs framing over raw sockets, exact bytes out: `*N` then N bare
//! lines in, `+value` / `-error` / `*N` + bare lines back (docs/protocol-kvs.md).

mod common;

use std::io::BufRead;
use std::time::{Duration, Instant};

use common::*;

/// A kvs request: `*N` then one bare line per argument.
fn req(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn line(c: &mut RawClient) -> Vec<u8> {
    let mut l = Vec::new();
    c.stream.read_until(b'\n', &mut l).expect("read kvs line");
    assert!(
        l.ends_with(b"\r\n"),
        "truncated line {:?}",
        String::from_utf8_lossy(&l)
    );
    l
}

/// Reads one kvs reply: a `+`/`-` line, or `*N` and N bare lines.
fn reply(c: &mut RawClient) -> Vec<u8> {
    let mut out = line(c);
    if out[0] == b'*' {
        let n: usize = std::str::from_utf8(&out[1..out.len() - 2])
            .unwrap()
            .parse()
            .unwrap();
        for _ in 0..n {
            let l = line(c);
            out.extend_from_slice(&l);
        }
    }
    out
}

/// Sends one kvs request and returns its reply as a (lossy) string.
fn kvs(c: &mut RawClient, args: &[&str]) -> String {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&req(&a));
    String::from_utf8_lossy(&reply(c)).into_owned()
}

/// A `*N` reply's lines after the header, sorted (KEYS order is unspecified).
fn sorted_elements(reply: &str) -> (String, Vec<String>) {
    let mut lines = reply.split_terminator("\r\n").map(str::to_string);
    let head = lines.next().unwrap();
    let mut rest: Vec<String> = lines.collect();
    rest.sort();
    (head, rest)
}

#[test]
fn set_get_del_reply_plain_values_and_errors() {
    let s = magpie(&[]);
    let mut c = s.client();
    assert_eq!(kvs(&mut c, &["SET", "greeting", "hello world"]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["GET", "greeting"]), "+hello world\r\n");
    assert_eq!(kvs(&mut c, &["get", "greeting"]), "+hello world\r\n");
    assert_eq!(kvs(&mut c, &["SET", "empty", ""]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["GET", "empty"]), "+\r\n");
    assert_eq!(kvs(&mut c, &["GET", "missing"]), "-invalid key missing\r\n");
    assert_eq!(kvs(&mut c, &["DEL", "greeting"]), "+OK\r\n");
    assert_eq!(
        kvs(&mut c, &["DEL", "greeting"]),
        "-invalid key greeting\r\n"
    );
    assert_eq!(
        kvs(&mut c, &["GET", "greeting"]),
        "-invalid key greeting\r\n"
    );
    // the same keyspace as RESP: GET over RESP framing answers RESP
    assert_eq!(kvs(&mut c, &["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd(&["GET", "missing"]), b"$-1\r\n");
}

#[test]
fn missing_key_error_is_sanitized() {
    let s = magpie(&[]);
    let mut c = s.client();
    // a bare CR inside a line is part of the argument; the error echoes it as a space
    c.send(b"*2\r\nGET\r\na\rb\r\n");
    assert_eq!(reply(&mut c), b"-invalid key a b\r\n");
    c.send(b"*2\r\nDEL\r\n\rx\r\n");
    assert_eq!(reply(&mut c), b"-invalid key  x\r\n");
}

#[test]
fn keys_takes_a_regex_anchored_at_the_start() {
    let s = magpie(&[]);
    let mut c = s.client();
    for k in ["user:1", "user:22", "user:x", "xuser:3", "session"] {
        assert_eq!(kvs(&mut c, &["SET", k, "v"]), "+OK\r\n");
    }
    let (head, keys) = sorted_elements(&kvs(&mut c, &["KEYS", "user:[0-9]+$"]));
    assert_eq!(
        (head.as_str(), keys),
        ("*2", vec!["user:1".to_string(), "user:22".to_string()])
    );
    let (head, keys) = sorted_elements(&kvs(&mut c, &["KEYS", "user"]));
    assert_eq!(head, "*3");
    assert_eq!(keys, ["user:1", "user:22", "user:x"]);
    let (head, keys) = sorted_elements(&kvs(&mut c, &["KEYS", ".*"]));
    assert_eq!((head.as_str(), keys.len()), ("*5", 5));
    assert_eq!(kvs(&mut c, &["KEYS", "nothing"]), "*0\r\n");
    assert_eq!(kvs(&mut c, &["KEYS", "ser"]), "*0\r\n");
    assert_eq!(
        kvs(&mut c, &["KEYS", "a("]),
        "-invalid regex: unclosed group\r\n"
    );
    assert_eq!(
        kvs(&mut c, &["KEYS", "(?x)ser # a comment"]),
        "*0\r\n",
        "verbose-mode comments cannot escape the anchoring"
    );
    let huge = kvs(&mut c, &["KEYS", "(a{1000}){1000}"]);
    assert!(
        huge.starts_with("-invalid regex: compiled pattern exceeds the size limit"),
        "{huge}"
    );
    assert!(
        huge.ends_with("\r\n") && huge.matches('\n').count() == 1,
        "{huge}"
    );
}

#[test]
fn binary_keys_match_bytewise() {
    let s = magpie(&[]);
    let mut c = s.client();
    c.send_cmd(&[b"SET", b"bin\xff\x00z", b"v"]);
    assert_eq!(c.read_reply(), b"+OK\r\n");
    c.send(b"*2\r\nKEYS\r\nbin\\xFF\\x00\r\n");
    assert_eq!(reply(&mut c), b"*1\r\nbin\xff\x00z\r\n");
    c.send(b"*2\r\nKEYS\r\nbin..z$\r\n");
    assert_eq!(reply(&mut c), b"*1\r\nbin\xff\x00z\r\n");
    c.send(b"*2\r\nGET\r\nbin\xff\x00z\r\n");
    assert_eq!(reply(&mut c), b"+v\r\n");
}

#[test]
fn data_with_cr_or_lf_is_refused_rather_than_misframed() {
    let s = magpie(&[]);
    let mut c = s.client();
    c.send(b"*3\r\nSET\r\nk\r\na\rb\r\n");
    assert_eq!(
        reply(&mut c),
        b"-ERR kvs framing cannot carry CR in keys or values\r\n"
    );
    c.send(b"*2\r\nGET\r\nk\r\n");
    assert_eq!(
        reply(&mut c),
        b"-invalid key k\r\n",
        "the refused SET stored nothing"
    );
    // stored over RESP, then read in kvs framing
    c.send_cmd(&[b"SET", b"multi", b"line1\r\nline2"]);
    assert_eq!(c.read_reply(), b"+OK\r\n");
    let unsendable =
        "-ERR data contains CR or LF, which kvs framing cannot carry; read it over RESP\r\n";
    assert_eq!(kvs(&mut c, &["GET", "multi"]), unsendable);
    c.send_cmd(&[b"SET", b"bad\nkey", b"v"]);
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert_eq!(kvs(&mut c, &["KEYS", "bad"]), unsendable);
    assert_eq!(kvs(&mut c, &["KEYS", "mul"]), "*1\r\nmulti\r\n");
}

#[test]
fn reset_empties_only_the_current_database() {
    let s = magpie(&[]);
    let mut c = s.client();
    assert_eq!(kvs(&mut c, &["SET", "a", "0"]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["SELECT", "1"]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["SET", "a", "1"]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["SET", "b", "1"]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["RESET"]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["KEYS", ""]), "*0\r\n");
    assert_eq!(kvs(&mut c, &["GET", "a"]), "-invalid key a\r\n");
    assert_eq!(kvs(&mut c, &["SELECT", "0"]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["GET", "a"]), "+0\r\n");
    // over RESP, RESET is not the kvs command (and is not a flush)
    assert_eq!(c.cmd(&["GET", "a"]), b"$1\r\n0\r\n");
}

#[test]
fn other_commands_fall_through_to_the_regular_table() {
    let s = magpie(&[]);
    let mut c = s.client();
    assert_eq!(kvs(&mut c, &["PING"]), "+PONG\r\n");
    assert_eq!(kvs(&mut c, &["PING", "hi there"]), "+hi there\r\n");
    assert_eq!(kvs(&mut c, &["ECHO", "x"]), "+x\r\n");
    assert_eq!(
        kvs(&mut c, &["SELECT", "99"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        kvs(&mut c, &["NOSUCH", "a"]),
        "-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n"
    );
    // SET with Redis options goes to the regular SET, CR check included
    assert_eq!(kvs(&mut c, &["SET", "k", "v", "EX", "100"]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["SET", "k", "w", "GET"]), "+v\r\n");
    assert_eq!(kvs(&mut c, &["GET", "k"]), "+w\r\n");
    c.send(b"*5\r\nSET\r\nk\r\nv\rw\r\nEX\r\n10\r\n");
    assert_eq!(
        reply(&mut c),
        b"-ERR kvs framing cannot carry CR in keys or values\r\n"
    );
}

#[test]
fn arity_errors_in_kvs_form() {
    let s = magpie(&[]);
    let mut c = s.client();
    let wrong = |c: &str| format!("-ERR wrong number of arguments for '{c}' command\r\n");
    assert_eq!(kvs(&mut c, &["GET"]), wrong("get"));
    assert_eq!(kvs(&mut c, &["GET", "a", "b"]), wrong("get"));
    assert_eq!(kvs(&mut c, &["SET", "k"]), wrong("set"));
    assert_eq!(kvs(&mut c, &["DEL"]), wrong("del"));
    assert_eq!(kvs(&mut c, &["DEL", "a", "b"]), wrong("del"));
    assert_eq!(kvs(&mut c, &["KEYS"]), wrong("keys"));
    assert_eq!(kvs(&mut c, &["RESET", "now"]), wrong("reset"));
    assert_eq!(kvs(&mut c, &["SHUTDOWN", "NOSAVE"]), wrong("shutdown"));
    assert_eq!(kvs(&mut c, &["PING"]), "+PONG\r\n", "still serving");
}

#[test]
fn kvs_commands_need_auth_when_a_password_is_set() {
    let s = magpie(&["--requirepass", "secret"]);
    let mut c = s.client();
    assert_eq!(
        kvs(&mut c, &["GET", "k"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        kvs(&mut c, &["RESET"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        kvs(&mut c, &["SHUTDOWN"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        kvs(&mut c, &["PING"]),
        "-NOAUTH Authentication required.\r\n"
    );
    c.send(b"*5\r\nSET\r\nk\r\nv\rw\r\nEX\r\n10\r\n");
    assert_eq!(reply(&mut c), b"-NOAUTH Authentication required.\r\n");
}

#[test]
fn malformed_framing_is_a_protocol_error_then_close() {
    let s = magpie(&[]);
    for bad in [
        &b"*x\r\n"[..],
        b"*1x\r\nGET\r\n",
        b"*-\r\n",
        b"*+2\r\nGET\r\nk\r\n",
    ] {
        let mut c = s.client();
        c.send(bad);
        assert_eq!(
            c.read_to_close(),
            b"-ERR Protocol error: invalid multibulk length\r\n",
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // requests before the bad one are answered first
    let mut c = s.client();
    c.send(b"*1\r\nPING\r\n*2x\r\n");
    assert_eq!(
        c.read_to_close(),
        b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    );
}

#[test]
fn line_and_count_limits_at_the_edge() {
    let s = magpie(&["--max-inline-len", "16", "--max-multibulk-len", "3"]);
    let k16 = "k".repeat(16);
    let v16 = "v".repeat(16);
    let mut c = s.client();
    assert_eq!(kvs(&mut c, &["SET", &k16, &v16]), "+OK\r\n");
    assert_eq!(kvs(&mut c, &["GET", &k16]), format!("+{v16}\r\n"));
    // a 17-byte line, whole or split across writes
    for split in [None, Some(10), Some(17)] {
        let mut c = s.client();
        let request = req(&[b"GET", "k".repeat(17).as_bytes()]);
        match split {
            None => c.send(&request),
            Some(at) => {
                c.send(&request[..at]);
                std::thread::sleep(Duration::from_millis(50));
                c.send(&request[at..]);
            }
        }
        assert_eq!(
            c.read_to_close(),
            b"-ERR Protocol error: too big inline request\r\n"
        );
    }
    // N at the limit, then over it
    let mut c = s.client();
    assert_eq!(kvs(&mut c, &["SET", "a", "b"]), "+OK\r\n");
    c.send(b"*4\r\nSET\r\na\r\nb\r\nc\r\n");
    assert_eq!(
        c.read_to_close(),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
}

#[test]
fn argument_length_limit_applies_to_kvs_lines() {
    let s = magpie(&["--proto-max-bulk-len", "4"]);
    let mut c = s.client();
    assert_eq!(kvs(&mut c, &["SET", "abcd", "wxyz"]), "+OK\r\n");
    c.send(b"*3\r\nSET\r\nabcd\r\nvwxyz\r\n");
    assert_eq!(
        c.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
}

#[test]
fn shutdown_replies_ok_closes_and_stops_the_server() {
    let mut s = magpie(&[]);
    let mut bystander = s.client();
    let mut c = s.client();
    c.send(b"*1\r\nSHUTDOWN\r\n*1\r\nPING\r\n");
    assert_eq!(
        c.read_to_close(),
        b"+OK\r\n",
        "nothing after SHUTDOWN is run"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "server still running after SHUTDOWN"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert_eq!(
        bystander.read_to_close(),
        b"",
        "other clients are disconnected"
    );
}

/// The original kvs design's throughput-style check, untimed: sequential
/// round trips for 1000 keys, every reply verified.
#[test]
fn thousand_keys_sequential_round_trips() {
    let s = magpie(&[]);
    let mut c = s.client();
    for i in 0..1000 {
        let (k, v) = (format!("key:{i}"), format!("value-{i}"));
        assert_eq!(kvs(&mut c, &["SET", &k, &v]), "+OK\r\n", "SET {k}");
    }
    for i in 0..1000 {
        let k = format!("key:{i}");
        assert_eq!(
            kvs(&mut c, &["GET", &k]),
            format!("+value-{i}\r\n"),
            "GET {k}"
        );
    }
    let (head, keys) = sorted_elements(&kvs(&mut c, &["KEYS", "key:"]));
    assert_eq!((head.as_str(), keys.len()), ("*1000", 1000));
    for i in 0..1000 {
        let k = format!("key:{i}");
        assert_eq!(kvs(&mut c, &["DEL", &k]), "+OK\r\n", "DEL {k}");
    }
    assert_eq!(kvs(&mut c, &["KEYS", "key:"]), "*0\r\n");
    assert_eq!(kvs(&mut c, &["GET", "key:0"]), "-invalid key key:0\r\n");
}

/// Over `--maxmemory` under `noeviction`, the kvs SET gets Redis's OOM
/// error as a kvs error line; DEL, GET and KEYS go on.
#[test]
fn over_the_memory_limit_set_is_refused_and_del_and_reads_go_on() {
    let s = magpie(&["--maxmemory", "1"]);
    let mut c = s.client();
    // an empty keyspace is under any limit
    assert_eq!(kvs(&mut c, &["SET", "a", "1"]), "+OK\r\n");
    let oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_eq!(kvs(&mut c, &["SET", "b", "2"]), oom);
    assert_eq!(kvs(&mut c, &["GET", "a"]), "+1\r\n");
    assert_eq!(kvs(&mut c, &["KEYS", "."]), "*1\r\na\r\n");
    assert_eq!(kvs(&mut c, &["DEL", "a"]), "+OK\r\n");
}
