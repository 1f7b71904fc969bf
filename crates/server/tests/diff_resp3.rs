//! RESP3 (after `HELLO 3`) replies of the string, key, CONFIG and CLIENT
//! commands byte for byte against a real redis-server: nulls as `_`, maps
//! as `%`, verbatim strings as `=`, and the replies Redis 7.0 keeps in their
//! RESP2 shape (INCRBYFLOAT's bulk string, SCAN's array). Where Redis's own
//! reply is not deterministic (the order of a multi-parameter CONFIG GET,
//! the ids and addresses in CLIENT INFO), the parts that are are compared.

mod common;

use std::collections::BTreeSet;

use common::*;

#[test]
fn string_commands_in_resp3_match_redis() {
    differential(
        r#"~ HELLO 3
GET missing
SET k v
GET k
SET k v2 GET
SET missing2 x GET
DEL missing2
SET k v3 NX GET
SET k v4 XX GET
SET k v5 GET EX 100
~ TTL k
PERSIST k
SET k v5 NX
SET k v5 XX KEEPTTL
SET k v5 EX 0
MGET k missing k
MGET missing
GETEX k
GETEX missing
GETEX k PERSIST
GETEX k EX 0
GETEX k FOO
GETDEL missing
GETSET missing3 a
GETSET missing3 b
GETDEL missing3
SETNX k a
SETNX new a
SETEX k 0 v
PSETEX k x v
MSETNX a 1 b 2
MSETNX a 1 c 2
MSET a 1 b 2
MGET a b c
INCRBYFLOAT f 1.5
INCRBYFLOAT f 1e3
INCRBYFLOAT f 0.1
INCRBYFLOAT f -1000.6
INCRBYFLOAT f 5.0e3
INCRBYFLOAT f x
INCRBYFLOAT k 1
INCRBYFLOAT f inf
INCR f
INCR n
INCRBY n 5
DECRBY n 9223372036854775807
DECR n
INCR k
STRLEN k
STRLEN missing
APPEND k xyz
APPEND new2 ""
GETRANGE k 0 1
GETRANGE k 5 1
GETRANGE missing 0 1
SETRANGE k 1 Z
SETRANGE missing 0 ""
GET k"#,
    );
}

#[test]
fn key_commands_in_resp3_match_redis() {
    differential(
        r#"~ HELLO 3
SET k v
TTL k
TTL missing
PTTL k
PTTL missing
EXPIRETIME k
EXPIRETIME missing
PEXPIRETIME k
PEXPIRETIME missing
EXPIREAT k 4102444800
EXPIRETIME k
PEXPIRETIME k
PEXPIREAT k 4102444800123
PEXPIRETIME k
EXPIRETIME k
EXPIRE k 100 NX
EXPIRE k 100 GT
PERSIST k
PERSIST k
EXPIRE missing 10
TYPE k
TYPE missing
EXISTS k missing k
EXISTS missing
KEYS k
KEYS nomatch*
KEYS "[k]"
SCAN 0 MATCH k
SCAN 0 MATCH nomatch*
SCAN 0 MATCH k TYPE string
SCAN 0 MATCH k TYPE list
SCAN 0 COUNT 0
SCAN x
COPY k k2
COPY k k2
COPY k k2 REPLACE
COPY missing k3
COPY k k2 DB 1
COPY k k2 DB 99
SELECT 1
RANDOMKEY
GET k2
DBSIZE
FLUSHDB
RANDOMKEY
DBSIZE
SELECT 0
DEL k2 missing
UNLINK missing
RENAME k kk
RENAMENX kk k
RENAMENX missing x
RENAME missing x
DBSIZE
CLIENT GETNAME
CLIENT SETNAME n3
CLIENT GETNAME
CLIENT SETNAME ""
CLIENT GETNAME
CONFIG GET hz
CONFIG GET nosuch
CONFIG GET maxclients
CONFIG GET databases
CONFIG GET proto-max-bulk-len
CONFIG GET hz HZ
CONFIG SET hz 10
GET
NOSUCH x
SELECT x
TIME x"#,
    );
}

/// One RESP3 reply parsed just enough to compare unordered parts.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Bulk(Vec<u8>),
    Other(Vec<u8>),
    Array(char, Vec<Value>),
}

fn parse(reply: &[u8]) -> (Value, &[u8]) {
    let end = reply.windows(2).position(|w| w == b"\r\n").expect("CRLF");
    let (head, rest) = (&reply[..end], &reply[end + 2..]);
    let n = || -> i64 { std::str::from_utf8(&head[1..]).unwrap().parse().unwrap() };
    match head[0] {
        b'$' | b'=' => {
            let len = n() as usize;
            (Value::Bulk(rest[..len].to_vec()), &rest[len + 2..])
        }
        kind @ (b'*' | b'%' | b'~') => {
            let count = n() as usize * if kind == b'%' { 2 } else { 1 };
            let mut items = Vec::new();
            let mut rest = rest;
            for _ in 0..count {
                let (v, r) = parse(rest);
                items.push(v);
                rest = r;
            }
            (Value::Array(kind as char, items), rest)
        }
        _ => (Value::Other(head.to_vec()), rest),
    }
}

/// A map reply's pairs, sorted.
fn map_pairs(reply: &[u8]) -> BTreeSet<(Value, Value)> {
    let (Value::Array('%', items), rest) = parse(reply) else {
        panic!("not a map: {:?}", String::from_utf8_lossy(reply));
    };
    assert!(rest.is_empty());
    let mut it = items.into_iter();
    let mut pairs = BTreeSet::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.insert((k, v));
    }
    pairs
}

/// An array reply's elements, sorted.
fn array_set(reply: &[u8]) -> BTreeSet<Value> {
    let (Value::Array('*', items), rest) = parse(reply) else {
        panic!("not an array: {:?}", String::from_utf8_lossy(reply));
    };
    assert!(rest.is_empty());
    items.into_iter().collect()
}

#[test]
fn multi_key_and_multi_parameter_replies_in_resp3_match_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    for c in [&mut r, &mut m] {
        assert_eq!(c.cmd(&["HELLO", "3"])[0], b'%');
        for i in 0..40 {
            let key = format!("key:{i}");
            assert_eq!(c.cmd(&["SET", &key, "v"]), b"+OK\r\n");
        }
    }
    // Redis answers a multi-parameter CONFIG GET in its dict's order,
    // which changes with every start: compare the pairs
    for params in [
        &["hz", "maxclients"][..],
        &["maxclients", "databases", "hz", "nosuch"],
        &["proto-max-bulk-len", "PROTO-MAX-BULK-LEN", "hz"],
    ] {
        let mut cmd = vec!["CONFIG", "GET"];
        cmd.extend_from_slice(params);
        let (want, got) = (r.cmd(&cmd), m.cmd(&cmd));
        assert_eq!(want[..3], got[..3], "map length of {cmd:?}");
        assert_eq!(map_pairs(&got), map_pairs(&want), "{cmd:?}");
    }
    // KEYS and a whole SCAN: arrays of bulk strings, in any order
    let keys = |c: &mut RawClient, pattern: &str| array_set(&c.cmd(&["KEYS", pattern]));
    for pattern in ["*", "key:1*", "key:[2-3]", "nomatch"] {
        assert_eq!(keys(&mut m, pattern), keys(&mut r, pattern), "{pattern}");
    }
    let scan = |c: &mut RawClient| {
        let mut cursor = b"0".to_vec();
        let mut seen = BTreeSet::new();
        loop {
            let cur = String::from_utf8(cursor.clone()).unwrap();
            let reply = c.cmd(&["SCAN", &cur, "COUNT", "7"]);
            let (Value::Array('*', mut parts), rest) = parse(&reply) else {
                panic!("SCAN reply is an array in RESP3 too: {reply:?}");
            };
            assert!(rest.is_empty() && parts.len() == 2);
            let Value::Array('*', found) = parts.pop().unwrap() else {
                panic!("keys are an array");
            };
            seen.extend(found);
            let Value::Bulk(next) = parts.pop().unwrap() else {
                panic!("cursor is a bulk string");
            };
            if next == b"0" {
                return seen;
            }
            cursor = next;
        }
    };
    assert_eq!(scan(&mut m), scan(&mut r));
    let (want, got) = (
        r.cmd(&["MGET", "key:1", "nosuch", "key:2"]),
        m.cmd(&["MGET", "key:1", "nosuch", "key:2"]),
    );
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    let (want, got) = (r.cmd(&["RANDOMKEY"]), m.cmd(&["RANDOMKEY"]));
    assert!(want.starts_with(b"$6\r\nkey:") || want.starts_with(b"$5\r\nkey:"));
    assert!(
        got.starts_with(b"$6\r\nkey:") || got.starts_with(b"$5\r\nkey:"),
        "{got:?}"
    );
}

/// The fields of a CLIENT INFO line, in order.
fn client_fields(line: &str) -> Vec<(String, String)> {
    line.trim_end_matches('\n')
        .split(' ')
        .map(|f| {
            let (k, v) = f.split_once('=').expect("name=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The text of a CLIENT INFO reply: a verbatim string in RESP3, a bulk
/// string in RESP2; checks the framing.
fn client_info_text(reply: &[u8], resp3: bool) -> String {
    let text = String::from_utf8_lossy(reply).into_owned();
    let (head, body) = text.split_once("\r\n").unwrap();
    let body = body.strip_suffix("\r\n").expect("CRLF after the body");
    assert_eq!(head[1..].parse::<usize>().unwrap(), body.len(), "{text}");
    let body = if resp3 {
        assert!(head.starts_with('='), "verbatim string in RESP3: {text}");
        body.strip_prefix("txt:").expect("txt: format")
    } else {
        assert!(head.starts_with('$'), "bulk string in RESP2: {text}");
        body
    };
    assert!(body.ends_with('\n'), "{text}");
    body.to_string()
}

#[test]
fn client_info_in_resp3_has_redis_fields_and_values() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    // values that are the process's own: ids, addresses, buffer sizes
    const VOLATILE: [&str; 10] = [
        "id",
        "addr",
        "laddr",
        "fd",
        "age",
        "idle",
        "qbuf",
        "qbuf-free",
        "argv-mem",
        "tot-mem",
    ];
    const BUFFERS: [&str; 2] = ["rbs", "rbp"];
    let mut lines = Vec::new();
    for s in [&redis, &ours] {
        let mut c = s.client();
        let mut got = Vec::new();
        for (setup, resp3) in [
            (&["HELLO", "3", "SETNAME", "ci"][..], true),
            (&["SELECT", "3"], true),
            (&["HELLO", "2"], false),
        ] {
            c.cmd(setup);
            let text = client_info_text(&c.cmd(&["CLIENT", "INFO"]), resp3);
            got.push(client_fields(&text));
            let list = c.cmd(&["CLIENT", "LIST"]);
            assert_eq!(
                client_fields(&client_info_text(&list, resp3)).len(),
                got[got.len() - 1].len()
            );
        }
        lines.push(got);
    }
    let ours_lines = lines.pop().unwrap();
    for (want, got) in lines.pop().unwrap().into_iter().zip(ours_lines) {
        let names = |f: &[(String, String)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "CLIENT INFO fields");
        for ((k, w), (_, g)) in want.iter().zip(&got) {
            if !VOLATILE.contains(&k.as_str()) && !BUFFERS.contains(&k.as_str()) {
                assert_eq!(g, w, "CLIENT INFO {k}");
            }
        }
    }
}
