//! The generic keyspace commands (DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN,
//! RANDOMKEY, RENAME, RENAMENX, COPY, DBSIZE, FLUSHDB, FLUSHALL, OBJECT) checked
//! against a real redis-server: byte-exact where the reply is
//! deterministic, as sorted key sets where only the order may differ
//! (KEYS, SCAN).

mod common;

use std::collections::BTreeSet;

use common::*;

#[test]
fn del_unlink_exists_type_match_redis() {
    differential(
        r#"DEL
UNLINK
EXISTS
TYPE
TYPE a b
DEL missing
SET a 1
SET b 2
DEL a a b missing
EXISTS a b
SET a 1
SET "" empty
EXISTS a a missing a ""
UNLINK a missing a
EXISTS a
TYPE ""
TYPE a
TYPE missing
del ""
Exists """#,
    );
}

#[test]
fn randomkey_dbsize_flush_match_redis() {
    differential(
        r#"RANDOMKEY
RANDOMKEY x
DBSIZE
DBSIZE x
SET only 1
RANDOMKEY
DBSIZE
SELECT 1
SET x 1
SET y 2
DBSIZE
FLUSHDB x
FLUSHDB async x
FLUSHDB SYNC
DBSIZE
SELECT 0
DBSIZE
SET z 1
FLUSHDB ASYNC
DBSIZE
SET z 1
FLUSHDB
RANDOMKEY
SET z 1
SELECT 2
SET w 1
FLUSHALL x
FLUSHALL sync x
FLUSHALL Async
DBSIZE
SELECT 0
DBSIZE
SET z 1
FLUSHALL SYNC
DBSIZE
SET z 1
FLUSHALL
DBSIZE"#,
    );
}

#[test]
fn rename_and_renamenx_match_redis() {
    differential(
        r#"RENAME
RENAME a
RENAME a b c
RENAMENX a
RENAME missing x
RENAME missing missing
RENAMENX missing x
RENAMENX missing missing
SET a 1
RENAME a a
RENAMENX a a
GET a
RENAME a b
GET a
GET b
SET c 3
RENAME b c
GET b
GET c
SET d 4
RENAMENX c d
GET c
RENAMENX c e
GET c
GET e
EXISTS c e
RENAME e ""
GET ""
RENAME "" "a b"
GET "a b"
# the TTL moves with the value, and a TTL on the old destination goes
SET t v
PEXPIRE t 100400
SET u w
PEXPIRE u 500000
RENAME t u
TTL t
TTL u
GET u
SET p v
RENAME u p
TTL p
SET n v
RENAMENX p n
TTL p
TTL n
RENAMENX p m
TTL m"#,
    );
}

#[test]
fn copy_matches_redis() {
    differential(
        r#"COPY
COPY a
COPY missing b
COPY missing missing
COPY missing b DB 1
SET a 1
COPY a a
COPY a a DB 0
COPY a a REPLACE
COPY a a DB 1
GET a
SELECT 1
GET a
SELECT 0
COPY a b
GET b
COPY a b
SET a 2
COPY a b
GET b
COPY a b replace
GET b
COPY a b REPLACE REPLACE
COPY a b foo
COPY a b DB
COPY a b DB x
COPY a b DB 16
COPY a b DB -1
COPY a b DB 4294967296
COPY a b DB 2147483648
COPY a b DB -2147483649
COPY a b DB 99 foo
COPY a b foo DB 99
COPY a b DB 1.5
COPY a c DB 3 DB 2
SELECT 2
GET c
SELECT 3
GET c
SELECT 0
COPY missing c DB 2 REPLACE
# the TTL is copied, the source keeps its own
PEXPIRE a 100400
COPY a t
TTL t
TTL a
COPY a t DB 5
SELECT 5
TTL t
GET t
SET u old
PEXPIRE u 500000
SELECT 0
COPY a u db 5
COPY a u db 5 replace
SELECT 5
TTL u
GET u
SELECT 0
SET plain v
COPY plain u DB 5 REPLACE
SELECT 5
TTL u
GET u"#,
    );
}

#[test]
fn keys_and_scan_errors_and_single_key_replies_match_redis() {
    // with at most one key a reply's order cannot differ, so these compare
    // byte for byte (both servers finish a 1-key scan in one call)
    differential(
        r#"KEYS
KEYS a b
KEYS *
SCAN
SCAN 0
SCAN x
SCAN " 0"
SCAN "0 "
SCAN 0x1
SCAN -
SCAN +
SCAN 18446744073709551616
SCAN x COUNT 0
SCAN 0 COUNT
SCAN 0 COUNT 0
SCAN 0 COUNT -1
SCAN 0 COUNT x
SCAN 0 COUNT 9223372036854775808
SCAN 0 MATCH
SCAN 0 TYPE
SCAN 0 foo
SCAN 0 foo bar
SCAN 0 COUNT 10 MATCH
SET "" empty
KEYS *
KEYS ""
KEYS **
KEYS ?
SCAN 0
SCAN 0 MATCH *
SCAN 0 MATCH ""
SCAN 0 MATCH **
DEL ""
SET "hello world" v
KEYS *
KEYS hello*
KEYS "h[a-f]llo?world"
KEYS nope
SCAN 0 MATCH hello*
SCAN 0 MATCH nope
SCAN 0 TYPE string
SCAN 0 TYPE STRING
SCAN 0 TYPE none
SCAN 0 TYPE hash
SCAN 0 TYPE bogus
SCAN 0 count 5 match * type string
SCAN "" COUNT 3
SCAN "0\x00junk"
SCAN "-0"
SCAN "\x00"
SCAN 0 COUNT 9223372036854775807"#,
    );
}

/// The string elements of a flat RESP array reply.
fn parse_array(reply: &[u8]) -> Vec<Vec<u8>> {
    let (items, rest) = parse_array_at(reply);
    assert!(rest.is_empty(), "trailing bytes after the array");
    items
}

fn read_line(buf: &[u8]) -> (&[u8], &[u8]) {
    let end = buf.windows(2).position(|w| w == b"\r\n").expect("CRLF");
    (&buf[..end], &buf[end + 2..])
}

fn parse_array_at(reply: &[u8]) -> (Vec<Vec<u8>>, &[u8]) {
    let (head, mut rest) = read_line(reply);
    assert_eq!(
        head[0],
        b'*',
        "not an array: {:?}",
        String::from_utf8_lossy(reply)
    );
    let n: usize = std::str::from_utf8(&head[1..]).unwrap().parse().unwrap();
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let (len, after) = read_line(rest);
        assert_eq!(len[0], b'$');
        let len: usize = std::str::from_utf8(&len[1..]).unwrap().parse().unwrap();
        items.push(after[..len].to_vec());
        rest = &after[len + 2..];
    }
    (items, rest)
}

/// The reply of `SCAN ...`: next cursor and keys.
fn parse_scan(reply: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (head, rest) = read_line(reply);
    assert_eq!(head, b"*2");
    let (len, after) = read_line(rest);
    let len: usize = std::str::from_utf8(&len[1..]).unwrap().parse().unwrap();
    let cursor = after[..len].to_vec();
    let (keys, rest) = parse_array_at(&after[len + 2..]);
    assert!(rest.is_empty());
    (cursor, keys)
}

/// Stores `keys` (value "v") with one pipelined write.
fn set_all(c: &mut RawClient, keys: &[Vec<u8>]) {
    let mut batch = Vec::new();
    for k in keys {
        batch.extend_from_slice(&encode(&[b"SET", k, b"v"]));
    }
    c.send(&batch);
    for _ in keys {
        assert_eq!(c.read_reply(), b"+OK\r\n");
    }
}

fn sorted_keys(c: &mut RawClient, pattern: &[u8]) -> BTreeSet<Vec<u8>> {
    c.send_cmd(&[b"KEYS", pattern]);
    parse_array(&c.read_reply()).into_iter().collect()
}

/// Keys chosen to exercise the glob corner cases: the empty key, glob
/// metacharacters as literal key bytes, a NUL, and high bytes (which the
/// Redis matcher compares as signed chars inside ranges).
fn glob_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = [
        "", "a", "b", "c", "z", "A", "Z", "ab", "abc", "abcabc", "aaa", "ba", "a*", "a?", "*", "?",
        "[", "]", "[]", "^", "-", "a-b", "a^b", "\\", "a\\b", "a\\", "\\a", "hello", "hallo",
        "hbllo", "hllo", "heeeello", "h*llo", "h[e]llo", "foo.bar", "foo:1", "foo:12", "x[y",
        "a]b", "!a", "a b", "0", "9",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    keys.push(b"\x00".to_vec());
    keys.push(b"a\x00b".to_vec());
    keys.push(b"\x7f".to_vec());
    keys.push(b"\x80".to_vec());
    keys.push(b"\xff".to_vec());
    keys.push(b"a\xffb".to_vec());
    keys
}

const GLOB_PATTERNS: &[&[u8]] = &[
    b"*",
    b"**",
    b"***",
    b"",
    b"?",
    b"??",
    b"???",
    b"*?",
    b"?*",
    b"*?*",
    b"a*",
    b"*a",
    b"*a*",
    b"a?",
    b"a*b",
    b"a*b*c",
    b"*b*",
    b"?b*",
    b"a\\*",
    b"a\\?",
    b"\\*",
    b"\\?",
    b"\\",
    b"a\\",
    b"\\\\",
    b"*\\\\*",
    b"\\a",
    b"*\\",
    b"[",
    b"[a",
    b"[ab",
    b"[a\\",
    b"a[",
    b"a[b",
    b"x[",
    b"*[",
    b"[]",
    b"[]]",
    b"[]a]",
    b"[\\]]",
    b"[\\]",
    b"[[]",
    b"[[]*",
    b"[*]",
    b"[?]",
    b"\\[",
    b"\\]",
    b"[a-c]",
    b"[c-a]",
    b"[z-a]*",
    b"[a-]",
    b"[-a]",
    b"[a-b-c]",
    b"[a-\\]]",
    b"[\\-]",
    b"[\\^]",
    b"[\\a]",
    b"[^a]",
    b"[^a-c]*",
    b"[^]",
    b"[^",
    b"[^]]",
    b"^a",
    b"a^",
    b"a^b",
    b"[!a]",
    b"!a",
    b"[A-Z]",
    b"[a-z]",
    b"[0-9]",
    b"h[ae]llo",
    b"h[^e]llo",
    b"h*llo",
    b"h?llo",
    b"h[a-b]llo",
    b"h[b-a]llo",
    b"h\\*llo",
    b"h[e]llo",
    b"h\\[e]llo",
    b"foo:*",
    b"foo:?",
    b"foo:??",
    b"foo.*",
    b"a\x00*",
    b"?\x00?",
    b"[\x00]",
    b"[\x80-\xff]",
    b"[\xff-\x80]",
    b"[a-\xff]",
    b"[\x7f-\x80]",
    b"*\xff*",
    b"[^\x00-\x7f]",
];

#[test]
fn keys_glob_patterns_match_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    let keys = glob_keys();
    set_all(&mut r, &keys);
    set_all(&mut m, &keys);
    assert_eq!(
        sorted_keys(&mut m, b"*").len(),
        keys.len(),
        "every key stored"
    );
    for pattern in GLOB_PATTERNS {
        let (want, got) = (sorted_keys(&mut r, pattern), sorted_keys(&mut m, pattern));
        assert_eq!(got, want, "KEYS {:?}", String::from_utf8_lossy(pattern));
    }
}

/// The options after a SCAN cursor.
type ScanOptions<'a> = &'a [&'a [u8]];
/// A sorted set of keys.
type KeySet = BTreeSet<Vec<u8>>;

/// Runs a whole SCAN with `options`, bounded, returning every key seen.
fn scan_all(c: &mut RawClient, options: &[&[u8]]) -> BTreeSet<Vec<u8>> {
    let mut cursor = b"0".to_vec();
    let mut seen = BTreeSet::new();
    for _ in 0..10_000 {
        let mut cmd: Vec<&[u8]> = vec![b"SCAN", &cursor];
        cmd.extend_from_slice(options);
        c.send_cmd(&cmd);
        let (next, keys) = parse_scan(&c.read_reply());
        seen.extend(keys);
        if next == b"0" {
            return seen;
        }
        cursor = next;
    }
    panic!("SCAN did not finish in 10000 calls");
}

#[test]
fn scan_iterates_every_key_like_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    let keys: Vec<Vec<u8>> = (0..600)
        .map(|i| match i % 3 {
            0 => format!("user:{i}"),
            1 => format!("item:{i}"),
            _ => format!("u{i}"),
        })
        .map(String::into_bytes)
        .collect();
    set_all(&mut r, &keys);
    set_all(&mut m, &keys);
    let all: BTreeSet<Vec<u8>> = keys.iter().cloned().collect();
    let users: BTreeSet<Vec<u8>> = all
        .iter()
        .filter(|k| k.starts_with(b"user:"))
        .cloned()
        .collect();
    let cases: &[(ScanOptions, &KeySet)] = &[
        (&[], &all),
        (&[b"COUNT", b"7"], &all),
        (&[b"COUNT", b"1"], &all),
        (&[b"COUNT", b"1000"], &all),
        (&[b"MATCH", b"user:*"], &users),
        (&[b"MATCH", b"user:*", b"COUNT", b"3"], &users),
        (&[b"match", b"*", b"count", b"50"], &all),
        (&[b"TYPE", b"string"], &all),
        (
            &[b"TYPE", b"String", b"MATCH", b"user:*", b"COUNT", b"13"],
            &users,
        ),
    ];
    for (options, want) in cases {
        let label: Vec<_> = options.iter().map(|o| String::from_utf8_lossy(o)).collect();
        assert_eq!(&scan_all(&mut m, options), *want, "magpie SCAN {label:?}");
        assert_eq!(&scan_all(&mut r, options), *want, "redis SCAN {label:?}");
    }
    for options in [&[b"TYPE".as_slice(), b"none"][..], &[b"TYPE", b"list"]] {
        assert!(scan_all(&mut m, options).is_empty());
        assert!(scan_all(&mut r, options).is_empty());
    }
    // COUNT is a hint for how much work one call does: with COUNT 1 a
    // 600-key database takes many calls, each returning few keys
    m.send_cmd(&[b"SCAN", b"0", b"COUNT", b"1"]);
    let (next, page) = parse_scan(&m.read_reply());
    assert_ne!(next, b"0");
    assert!(page.len() < 100, "COUNT 1 returned {} keys", page.len());
    // any cursor a client sends, even one magpie never issued, ends the
    // scan without an error
    for cursor in [
        "12345678901234567",
        "18446744073709551615",
        "-1",
        "1",
        "72057594037927935",
    ] {
        let mut c = cursor.as_bytes().to_vec();
        let mut calls = 0;
        while c != b"0" {
            calls += 1;
            assert!(calls <= 10_000, "SCAN from {cursor} did not finish");
            m.send_cmd(&[b"SCAN", &c, b"COUNT", b"100"]);
            c = parse_scan(&m.read_reply()).0;
        }
    }
}

#[test]
fn keys_and_scan_skip_expired_keys() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    for mut c in [redis.client(), ours.client()] {
        set_all(&mut c, &[b"live".to_vec(), b"dying".to_vec()]);
        assert_eq!(c.cmd(&["PEXPIRE", "dying", "20"]), b":1\r\n");
        std::thread::sleep(std::time::Duration::from_millis(60));
        let live: BTreeSet<Vec<u8>> = [b"live".to_vec()].into_iter().collect();
        assert_eq!(sorted_keys(&mut c, b"*"), live);
        assert_eq!(scan_all(&mut c, &[]), live);
        assert_eq!(c.cmd(&["RANDOMKEY"]), b"$4\r\nlive\r\n");
    }
}

#[test]
fn multi_key_commands_are_atomic_under_concurrency() {
    // two clients RENAME a key back and forth while a third checks that
    // exactly one of the names exists at every instant
    let ours = magpie(&[]);
    let mut setup = ours.client();
    assert_eq!(setup.cmd(&["SET", "left", "v"]), b"+OK\r\n");
    let port = ours.port;
    let movers: Vec<_> = [("left", "right"), ("right", "left")]
        .into_iter()
        .map(|(from, to)| {
            std::thread::spawn(move || {
                let mut c = RawClient::connect(port);
                for _ in 0..300 {
                    let r = c.cmd(&["RENAMENX", from, to]);
                    assert!(r == b":1\r\n" || r == b":0\r\n" || r == b"-ERR no such key\r\n");
                }
            })
        })
        .collect();
    let mut checker = ours.client();
    for _ in 0..300 {
        assert_eq!(checker.cmd(&["EXISTS", "left", "right"]), b":1\r\n");
    }
    for m in movers {
        m.join().unwrap();
    }
    assert_eq!(checker.cmd(&["DBSIZE"]), b":1\r\n");
}

/// Redis 7.0's `stringmatchlen` gives up (no match) once a pattern nests
/// more than 1000 `*` recursions deep. Each `*` followed by more pattern
/// recurses once (a run of `*` counts as one, a trailing `*` matches without
/// recursing), so `*a` repeated 1000 times still matches and 1001 times
/// never does, while `a*` repeated 1001 times still matches. Long patterns
/// that cannot match must finish promptly (the CVE-2022-36021 early stop).
#[test]
fn glob_nesting_limit_matches_redis_at_the_edge() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    let keys: Vec<Vec<u8>> = [999, 1000, 1001, 1002, 1100]
        .iter()
        .map(|&n| vec![b'a'; n])
        .chain([b"b".to_vec(), b"ab".to_vec()])
        .collect();
    set_all(&mut r, &keys);
    set_all(&mut m, &keys);
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    for n in [999, 1000, 1001, 1002] {
        patterns.push(b"*a".repeat(n));
        patterns.push(b"a*".repeat(n));
        patterns.push(b"*?".repeat(n));
        patterns.push(b"*[a]".repeat(n));
        patterns.push(b"*\\a".repeat(n));
        patterns.push([b"*a".repeat(n), b"*".to_vec()].concat());
    }
    patterns.push(b"*".repeat(5000));
    patterns.push([b"*".repeat(5000), b"b".to_vec()].concat());
    patterns.push([b"*a".repeat(5000), b"b".to_vec()].concat());
    patterns.push([b"a*".repeat(3000), b"b".to_vec()].concat());
    for pattern in &patterns {
        let what = format!(
            "{}... ({} bytes)",
            String::from_utf8_lossy(&pattern[..pattern.len().min(12)]),
            pattern.len()
        );
        let started = std::time::Instant::now();
        let got = sorted_keys(&mut m, pattern);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "KEYS {what} took {:?}",
            started.elapsed()
        );
        assert_eq!(got, sorted_keys(&mut r, pattern), "KEYS {what}");
        let options: [&[u8]; 4] = [b"MATCH", pattern, b"COUNT", b"3"];
        assert_eq!(
            scan_all(&mut m, &options),
            scan_all(&mut r, &options),
            "SCAN MATCH {what}"
        );
    }
    // the edge itself, spelled out
    let edge = sorted_keys(&mut m, &b"*a".repeat(1000));
    assert_eq!(edge.len(), 4, "a^1000 and longer match");
    assert!(sorted_keys(&mut m, &b"*a".repeat(1001)).is_empty());
    assert_eq!(sorted_keys(&mut m, &b"a*".repeat(1001)).len(), 3);
}

/// OBJECT IDLETIME / FREQ / HELP errors and replies, byte for byte. Both
/// servers count idle time in whole wall-clock seconds, so the script runs
/// just after a second starts: every idle time is then 0 on both (a key
/// just written or read). Which reads count as accesses only shows once
/// time passes: last_access.rs covers that on magpie alone. Values are not
/// integers: Redis stores 0..9999 as shared objects with one idle time
/// between them (see object.rs).
#[test]
fn object_matches_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    start_of_a_second(150);
    run_differential(
        &mut r,
        &mut m,
        r#"OBJECT
OBJECT IDLETIME
OBJECT IDLETIME a b
OBJECT FREQ
OBJECT FREQ a b
OBJECT foo
OBJECT foo a
object Help x
OBJECT IDLETIME missing
OBJECT FREQ missing
SET a v1
OBJECT IDLETIME a
object idletime a
OBJECT FREQ a
GET a
OBJECT IdleTime a
SELECT 1
OBJECT IDLETIME a
SET a v2
OBJECT IDLETIME a
~ HELLO 3
OBJECT IDLETIME a
OBJECT FREQ a"#,
    );
    // RESP3 nil is `_`
    assert_eq!(r.cmd(&["OBJECT", "IDLETIME", "missing"]), b"_\r\n");
    assert_eq!(m.cmd(&["OBJECT", "IDLETIME", "missing"]), b"_\r\n");
}
