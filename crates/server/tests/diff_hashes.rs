//! The hash command family byte for byte against a real redis-server 7.0,
//! in RESP2 and RESP3: every command with its argument errors, WRONGTYPE
//! both ways (hash commands on a string, string commands on a hash), the
//! deletion of a hash emptied by HDEL, TYPE and SCAN TYPE, the conversion
//! thresholds through CONFIG SET, and HRANDFIELD's deterministic cases.

mod common;

use common::*;

/// The script, run once in RESP2 and once after `HELLO 3`.
const SCRIPT: &str = r#"
HSET h f1 v1
HSET h f1 v1 f2 v2 f3 v3
HSET h f4
HSET h
HSET h f5 v5 f6
HMSET h f1 x
HMSET h f1
HGET h f1
HGET h nope
HGET nokey f1
HGETALL h
HGETALL nokey
HKEYS h
HVALS h
HKEYS nokey
HVALS nokey
HLEN h
HLEN nokey
HMGET h f1 nope f2
HMGET nokey a b
HMGET h
HSTRLEN h f1
HSTRLEN h nope
HSTRLEN nokey f
HEXISTS h f2
HEXISTS h nope
HEXISTS nokey f
HSETNX h f1 again
HSETNX h fnew new
HSETNX newhash f v
HGET h fnew
HGETALL newhash
HDEL h nope
HDEL h f1 f1 f2
HDEL nokey f
HDEL h
HGETALL h
HDEL h f3 fnew
EXISTS h
TYPE h
HDEL newhash f
EXISTS newhash
TYPE newhash
HSET "" "" ""
HGET "" ""
HGETALL ""
HSET bin "f\x00\r\n" "v\x00\xff"
HGETALL bin
HINCRBY c n 5
HINCRBY c n -7
HINCRBY c n 1.5
HINCRBY c n abc
HINCRBY c n 9223372036854775807
HINCRBY c m 9223372036854775807
HINCRBY c m 1
HINCRBY c m 0
HSET c s hello z 007 neg -0 sp " 1" plus +1
HINCRBY c s 1
HINCRBY c z 1
HINCRBY c neg 1
HINCRBY c sp 1
HINCRBY c plus 1
HINCRBY c
HINCRBYFLOAT c f 1.5
HINCRBYFLOAT c f 0.1
HINCRBYFLOAT c f -1.6
HINCRBYFLOAT c n 2.5
HINCRBYFLOAT c s 1
HINCRBYFLOAT c f abc
HINCRBYFLOAT c f inf
HINCRBYFLOAT c f -inf
HINCRBYFLOAT c f nan
HINCRBYFLOAT c f 1e400
HINCRBYFLOAT c g 5.0e3
HINCRBYFLOAT c h 3
HINCRBYFLOAT c h 1.23456789012345678
HINCRBYFLOAT c i 10.5
HINCRBYFLOAT c i 0.1
HLEN c
HMGET c n m s z neg sp plus f g h i
SET str v
HSET str f v
HGET str f
HMGET str f
HGETALL str
HKEYS str
HVALS str
HLEN str
HDEL str f
HEXISTS str f
HSTRLEN str f
HSETNX str f v
HINCRBY str f 1
HINCRBYFLOAT str f 1
HRANDFIELD str
HRANDFIELD str 1
HSCAN str 0
HMSET str f v
HSET hh a 1 b 2 c 3
GET hh
SET hh x NX
SET hh x GET
GETSET hh x
GETDEL hh
GETEX hh
APPEND hh x
STRLEN hh
INCR hh
INCRBYFLOAT hh 1
GETRANGE hh 0 1
SETRANGE hh 0 x
SETRANGE hh -1 x
MGET hh str
TYPE hh
TYPE str
TYPE nokey
HRANDFIELD nokey
HRANDFIELD nokey 5
HRANDFIELD nokey 5 WITHVALUES
HRANDFIELD hh 0
HRANDFIELD hh 3
HRANDFIELD hh 10 WITHVALUES
HRANDFIELD hh 3 withvalues
HRANDFIELD hh 3 WITHVALUE
HRANDFIELD hh 3 WITHVALUES x
HRANDFIELD hh abc
HRANDFIELD hh -9223372036854775808
HSET one f v
HRANDFIELD one
HRANDFIELD one -3
HRANDFIELD one -2 WITHVALUES
HSCAN hh 0
HSCAN hh 0 COUNT 1
HSCAN hh 0 MATCH a*
HSCAN hh 0 MATCH x*
HSCAN hh 0 COUNT 0
HSCAN hh 0 COUNT -1
HSCAN hh 0 COUNT abc
HSCAN hh 0 TYPE hash
HSCAN hh 0 MATCH
HSCAN hh 0 FOO bar
HSCAN hh abc
HSCAN hh -1
HSCAN nokey 0
HSCAN nokey 0 COUNT 0
HSCAN nokey abc
OBJECT ENCODING nokey
RENAME hh hh2
HGETALL hh2
EXISTS hh
COPY hh2 hh3
HGETALL hh3
HSET hh3 d 4
HLEN hh2
COPY hh2 hh3
COPY hh2 hh3 REPLACE
HLEN hh3
COPY hh2 hh4 DB 1
SELECT 1
HGETALL hh4
SELECT 0
EXPIRE hh2 100
TTL hh2
HSET hh2 e 5
TTL hh2
PERSIST hh2
TTL hh2
DEL hh2 hh3
EXISTS hh2 hh3
SET hh3 string
HSET hh3 f v
DEL hh3
HSET hh3 f v
TYPE hh3
SET hh3 string
TYPE hh3
GET hh3
"#;

#[test]
fn hash_commands_match_redis_in_resp2() {
    differential(SCRIPT);
}

#[test]
fn hash_commands_match_redis_in_resp3() {
    differential(&format!("~ HELLO 3\n{SCRIPT}"));
}

/// The listpack limits: a hash converts past `hash-max-listpack-entries`
/// fields or on a field or value longer than `hash-max-listpack-value`,
/// never back; CONFIG SET moves the limits; a table-encoded hash replies in
/// its own order, so those replies are compared sorted.
#[test]
fn hash_encodings_follow_the_listpack_limits_like_redis() {
    // (redis-server without a config file starts at 512 entries; magpie
    // and redis.conf at 128)
    let script = r#"
CONFIG SET hash-max-listpack-entries 128
CONFIG GET hash-max-listpack-entries
CONFIG GET hash-max-listpack-value
CONFIG GET hash-max-ziplist-entries
CONFIG GET hash-max-ziplist-value
HSET small a 1 b 2
OBJECT ENCODING small
HSET long f 0123456789012345678901234567890123456789012345678901234567890123
OBJECT ENCODING long
HSET longer f 01234567890123456789012345678901234567890123456789012345678901234
OBJECT ENCODING longer
HSET longfield 01234567890123456789012345678901234567890123456789012345678901234 v
OBJECT ENCODING longfield
CONFIG SET hash-max-listpack-entries 3
CONFIG GET hash-max-listpack-entries
HSET small c 3
OBJECT ENCODING small
HSET small d 4
OBJECT ENCODING small
HDEL small a b c
OBJECT ENCODING small
HGETALL small
CONFIG SET hash-max-listpack-entries -1
CONFIG SET hash-max-listpack-entries abc
CONFIG SET hash-max-listpack-value 2
HSET tiny ab cd
OBJECT ENCODING tiny
HSET tiny2 abc d
OBJECT ENCODING tiny2
CONFIG SET hash-max-ziplist-entries 7
CONFIG GET hash-max-listpack-entries
CONFIG SET hash-max-listpack-entries 128 hash-max-listpack-value 64
"#;
    if !differential(script) {
        return;
    }
    // a big hash: sorted replies, counts, and a full HSCAN
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    for c in [&mut r, &mut m] {
        c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "128"]);
        let mut args: Vec<String> = vec!["HSET".into(), "big".into()];
        for i in 0..300 {
            args.push(format!("field{i}"));
            args.push(format!("value{i}"));
        }
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        assert_eq!(c.cmd_str(&refs), ":300\r\n");
    }
    for cmd in [
        &["OBJECT", "ENCODING", "big"][..],
        &["HLEN", "big"],
        &["HGET", "big", "field299"],
        &["HMGET", "big", "field0", "nope", "field150"],
        &["HDEL", "big", "field0", "field1", "nope"],
        &["HINCRBY", "big", "n", "3"],
        &["HRANDFIELD", "big", "0"],
    ] {
        assert_eq!(m.cmd_str(cmd), r.cmd_str(cmd), "{cmd:?}");
    }
    let sorted_reply = |c: &mut RawClient, cmd: &[&str]| {
        let reply = c.cmd_str(cmd);
        let mut lines: Vec<String> = reply.lines().skip(1).map(|l| l.to_string()).collect();
        lines.sort();
        (reply.lines().next().map(|l| l.to_string()), lines)
    };
    for cmd in [
        &["HKEYS", "big"][..],
        &["HVALS", "big"],
        &["HRANDFIELD", "big", "1000"],
    ] {
        assert_eq!(
            sorted_reply(&mut m, cmd),
            sorted_reply(&mut r, cmd),
            "{cmd:?}"
        );
    }
    // HGETALL as pairs, sorted
    let pairs = |c: &mut RawClient| {
        c.send_cmd(&[b"HGETALL", b"big"]);
        let reply = String::from_utf8(c.read_reply()).unwrap();
        let items: Vec<&str> = reply
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with('$'))
            .collect();
        let mut p: Vec<(String, String)> = items
            .chunks(2)
            .map(|c| (c[0].to_string(), c[1].to_string()))
            .collect();
        p.sort();
        p
    };
    assert_eq!(pairs(&mut m), pairs(&mut r));
    // HSCAN with COUNT 10 visits every field once the cursor is back at 0
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        m.send_cmd(&[b"HSCAN", b"big", cursor.as_bytes(), b"COUNT", b"10"]);
        let reply = String::from_utf8(m.read_reply()).unwrap();
        let lines: Vec<&str> = reply.lines().collect();
        cursor = lines[2].to_string();
        let items: Vec<&str> = lines[4..]
            .iter()
            .copied()
            .filter(|l| !l.starts_with('$'))
            .collect();
        assert!(
            items.len() <= 2 * 40,
            "a step returned {} items",
            items.len()
        );
        for pair in items.chunks(2) {
            seen.insert(pair[0].to_string());
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 299);
    // HRANDFIELD with a positive count returns distinct fields
    let reply = m.cmd_str(&["HRANDFIELD", "big", "50"]);
    let fields: std::collections::BTreeSet<&str> = reply
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with('$'))
        .collect();
    assert_eq!(fields.len(), 50);
    assert!(m
        .cmd_str(&["HRANDFIELD", "big", "16777217"])
        .starts_with("-ERR value is out of range"));
}

/// SCAN's TYPE filter sees each key's type (the order of keys differs
/// between servers, so the keys are compared sorted).
#[test]
fn scan_type_filters_by_the_keys_type_like_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let (mut r, mut m) = (redis.client(), ours.client());
    let sorted = |c: &mut RawClient, args: &[&str]| {
        let reply = c.cmd_str(args);
        let mut lines: Vec<String> = reply.lines().skip(4).map(|l| l.to_string()).collect();
        lines.sort();
        (
            reply
                .lines()
                .take(4)
                .map(|l| l.to_string())
                .collect::<Vec<_>>(),
            lines,
        )
    };
    for c in [&mut r, &mut m] {
        c.cmd(&["HSET", "h1", "f", "v"]);
        c.cmd(&["HSET", "h2", "f", "v"]);
        c.cmd(&["HSET", "x", "f", "v"]);
        c.cmd(&["SET", "s1", "v"]);
        c.cmd(&["SET", "h3", "v"]);
    }
    for args in [
        &["SCAN", "0", "TYPE", "hash", "COUNT", "1000"][..],
        &["SCAN", "0", "TYPE", "HASH", "MATCH", "h*", "COUNT", "1000"],
        &["SCAN", "0", "TYPE", "string", "COUNT", "1000"],
        &["SCAN", "0", "TYPE", "list", "COUNT", "1000"],
        &["SCAN", "0", "TYPE", "nosuchtype", "COUNT", "1000"],
        &["SCAN", "0", "COUNT", "1000"],
    ] {
        assert_eq!(sorted(&mut m, args), sorted(&mut r, args), "{args:?}");
    }
}
