//! The set command family byte for byte against a real redis-server 7.0,
//! in RESP2 and RESP3: every command with its argument errors, WRONGTYPE
//! both ways, the deletion of a set emptied by SREM / SPOP / SMOVE, and the
//! deterministic cases of SPOP and SRANDMEMBER. Replies whose member order
//! is the server's choice (string sets: Redis 7.0 keeps small ones in a
//! hash table, magpie in a listpack) are compared sorted (`= ` lines); an
//! intset's ascending order is compared as is.

mod common;

use common::*;

const SCRIPT: &str = r#"
SADD s 3 1 2
SADD s 2 4
SADD s
SMEMBERS s
SCARD s
SCARD nokey
SISMEMBER s 1
SISMEMBER s 9
SISMEMBER nokey 1
SISMEMBER s
SMISMEMBER s 1 9 4
SMISMEMBER nokey a b
SMISMEMBER s
SMEMBERS nokey
SREM s 9
SREM s 1 1 2
SREM nokey a
SREM s
SMEMBERS s
SREM s 3 4
EXISTS s
TYPE s
SADD ints -5 0 10 007 +3 -0
= SMEMBERS ints
SADD ints 9223372036854775807 -9223372036854775808 9223372036854775808
= SMEMBERS ints
SADD n 5 -1 100 42
SMEMBERS n
SADD t b a c
= SMEMBERS t
SADD t a d
SCARD t
SADD "" ""
SMEMBERS ""
SADD bin "a\x00\r\n" "\xff"
= SMEMBERS bin
SINTER n
SINTER n nokey
SINTER nokey n
SADD n2 42 5 7
SINTER n n2
SINTER n2 n
SINTER n n2 nokey
= SINTER t t
SUNION n n2
SUNION n nokey n2
SUNION nokey
= SUNION t n
SDIFF n n2
SDIFF n2 n
SDIFF n nokey
SDIFF nokey n
= SDIFF t n
SINTERSTORE dst n n2
SMEMBERS dst
SUNIONSTORE dst n n2
SMEMBERS dst
SDIFFSTORE dst n n2
SMEMBERS dst
SINTERSTORE dst n nokey
EXISTS dst
SET str v
SUNIONSTORE str n
TYPE str
SMEMBERS str
SDIFFSTORE dst nokey
EXISTS dst
SINTERSTORE dst
SINTERCARD 2 n n2
SINTERCARD 2 n n2 LIMIT 1
SINTERCARD 2 n n2 LIMIT 0
SINTERCARD 2 n n2 LIMIT -1
SINTERCARD 2 n n2 LIMIT abc
SINTERCARD 2 n n2 LIMIT
SINTERCARD 2 n n2 FOO 1
SINTERCARD 0 n
SINTERCARD -1 n
SINTERCARD abc n
SINTERCARD 3 n n2
SINTERCARD 1 nokey
SINTERCARD 2 n nokey
SMOVE n n2 100
SMEMBERS n
SMEMBERS n2
SMOVE n n2 100
SMOVE n n 5
SMOVE n n 99
SMOVE nokey n 5
SMOVE n newset 5
SMEMBERS newset
SMOVE newset n 5
EXISTS newset
SMOVE n n2
SET sv v
HSET hv f v
SMOVE sv n 5
SMOVE n sv 5
SMOVE nokey sv 5
SMOVE n hv 5
SADD sv a
SREM sv a
SCARD sv
SISMEMBER sv a
SMISMEMBER sv a
SMEMBERS sv
SRANDMEMBER sv
SRANDMEMBER sv 2
SPOP sv
SPOP sv 2
SINTER sv
SINTER n sv
SINTER nokey sv
SINTER sv nokey
SUNION n sv
SDIFF n sv
SDIFF nokey sv
SINTERCARD 1 sv
SSCAN sv 0
SINTERSTORE dst sv
SADD hh 1 2
GET hh
APPEND hh x
INCR hh
HGET hh f
MGET hh
SRANDMEMBER nokey
SRANDMEMBER nokey 3
SRANDMEMBER nokey 0
SRANDMEMBER n 0
SRANDMEMBER n 100
SRANDMEMBER n abc
SRANDMEMBER n -9223372036854775808
SRANDMEMBER n 1 2
SADD one x
SRANDMEMBER one
SRANDMEMBER one -3
SRANDMEMBER one 1
SPOP nokey
SPOP nokey 2
SPOP n 0
SPOP n -1
SPOP n abc
SPOP n 1 2
SPOP one
EXISTS one
SADD one x
SPOP one 1
EXISTS one
SMEMBERS n2
SPOP n2 10
EXISTS n2
SSCAN n 0
SSCAN n 0 MATCH 1*
SSCAN n 0 COUNT 1
SSCAN n 0 COUNT 0
SSCAN n 0 COUNT abc
SSCAN n 0 TYPE set
SSCAN n abc
SSCAN nokey 0
SSCAN nokey 0 COUNT 0
= SSCAN t 0
TYPE n
OBJECT ENCODING n
COPY n ncopy
SMEMBERS ncopy
RENAME ncopy nc2
SMEMBERS nc2
EXPIRE nc2 100
SADD nc2 77
TTL nc2
DEL nc2
EXISTS nc2
"#;

#[test]
fn set_commands_match_redis_in_resp2() {
    differential(SCRIPT);
}

#[test]
fn set_commands_match_redis_in_resp3() {
    differential(&format!("~ HELLO 3\n{SCRIPT}"));
}

/// Encodings: integers are an intset up to `set-max-intset-entries`, then a
/// hash table; a string member takes a small intset to magpie's listpack
/// (Redis 7.0: a hash table). Only the intset side is Redis 7.0's, so the
/// listpack cases are checked on magpie alone.
#[test]
fn set_encodings_follow_the_intset_and_listpack_limits() {
    let script = r#"
CONFIG GET set-max-intset-entries
SADD i 1 2 3
OBJECT ENCODING i
CONFIG SET set-max-intset-entries 3
SADD i 4
OBJECT ENCODING i
= SMEMBERS i
CONFIG SET set-max-intset-entries 512
SADD j 1 2 3
OBJECT ENCODING j
"#;
    if !differential(script) {
        return;
    }
    let ours = magpie(&[]);
    let mut m = ours.client();
    assert_eq!(m.cmd_str(&["SADD", "j", "1", "2"]), ":2\r\n");
    assert_eq!(m.cmd_str(&["SADD", "j", "9223372036854775808"]), ":1\r\n");
    assert_eq!(
        m.cmd_str(&["OBJECT", "ENCODING", "j"]),
        "$8\r\nlistpack\r\n"
    );
    assert_eq!(m.cmd_str(&["SADD", "s", "1", "a"]), ":2\r\n");
    assert_eq!(
        m.cmd_str(&["OBJECT", "ENCODING", "s"]),
        "$8\r\nlistpack\r\n"
    );
    assert_eq!(
        m.cmd_str(&["SMEMBERS", "s"]),
        "*2\r\n$1\r\n1\r\n$1\r\na\r\n"
    );
    assert_eq!(
        m.cmd_str(&["CONFIG", "GET", "set-max-listpack-entries"]),
        "*2\r\n$24\r\nset-max-listpack-entries\r\n$3\r\n128\r\n"
    );
    let long = "x".repeat(65);
    assert_eq!(m.cmd_str(&["SADD", "s", &long]), ":1\r\n");
    assert_eq!(
        m.cmd_str(&["OBJECT", "ENCODING", "s"]),
        "$9\r\nhashtable\r\n"
    );
    assert_eq!(
        m.cmd_str(&["CONFIG", "SET", "set-max-listpack-entries", "2"]),
        "+OK\r\n"
    );
    assert_eq!(m.cmd_str(&["SADD", "p", "a", "b"]), ":2\r\n");
    assert_eq!(
        m.cmd_str(&["OBJECT", "ENCODING", "p"]),
        "$8\r\nlistpack\r\n"
    );
    assert_eq!(m.cmd_str(&["SADD", "p", "c"]), ":1\r\n");
    assert_eq!(
        m.cmd_str(&["OBJECT", "ENCODING", "p"]),
        "$9\r\nhashtable\r\n"
    );
    // a big set: SSCAN visits every member, SPOP / SRANDMEMBER draw members
    let mut args: Vec<String> = vec!["SADD".into(), "big".into()];
    args.extend((0..1000).map(|i| format!("m{i}")));
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    assert_eq!(m.cmd_str(&refs), ":1000\r\n");
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = m.cmd_str(&["SSCAN", "big", &cursor, "COUNT", "20"]);
        let lines: Vec<&str> = reply.lines().collect();
        cursor = lines[2].to_string();
        for l in &lines[4..] {
            if !l.starts_with('$') {
                seen.insert(l.to_string());
            }
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    let reply = m.cmd_str(&["SRANDMEMBER", "big", "100"]);
    let picked: std::collections::BTreeSet<&str> = reply
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with('$'))
        .collect();
    assert_eq!(picked.len(), 100, "distinct members");
    let reply = m.cmd_str(&["SPOP", "big", "300"]);
    assert!(reply.starts_with("*300\r\n"));
    assert_eq!(m.cmd_str(&["SCARD", "big"]), ":700\r\n");
    for l in reply.lines().skip(1).filter(|l| !l.starts_with('$')) {
        assert_eq!(
            m.cmd_str(&["SISMEMBER", "big", l]),
            ":0\r\n",
            "{l} was popped"
        );
    }
}
