//! The expiry commands (EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with NX XX GT
//! LT, TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST) checked byte for byte
//! against a real redis-server, plus what needs time to pass: lazy expiry
//! on access and the active expiry cycle.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn arity_options_and_their_errors_match_redis() {
    differential(
        r#"EXPIRE
EXPIRE k
PEXPIRE k
EXPIREAT k
PEXPIREAT k
TTL
TTL a b
PTTL
EXPIRETIME
PEXPIRETIME a b
PERSIST
PERSIST a b
EXPIRE missing 10
EXPIRE missing x
EXPIRE missing 10 foo
EXPIRE missing 10 nx xx
SET k v
EXPIRE k x
EXPIRE k 1.5
EXPIRE k ""
EXPIRE k " 1"
EXPIRE k 10 foo
EXPIRE k x foo
EXPIRE k x nx
EXPIRE k 10 nx foo
EXPIRE k 10 "fo o"
EXPIRE k 10 "foo\r\n"
EXPIRE k 10 "\r\nfoo\r\nbar\n"
EXPIRE k 10 "\r\n"
EXPIRE k 10 "a\x00b"
EXPIRE k 10 "\xff\xfe"
PEXPIRE k 10 ""
EXPIRE k 10 nx xx
EXPIRE k 10 nx gt
EXPIRE k 10 nx lt
EXPIRE k 10 NX NX XX
EXPIRE k 10 gt lt
EXPIRE k 10 lt gt
EXPIRE k 10 xx gt lt
EXPIRE k 10 nx gt lt
PEXPIREAT k 10 Lt Gt
TTL k"#,
    );
}

#[test]
fn overflow_is_an_error_and_extremes_are_stored_as_redis_does() {
    differential(
        r#"SET k v
EXPIRE k 9223372036854775
EXPIRE k 9223372036854776
EXPIRE k -9223372036854775
SET k v
EXPIRE k -9223372036854776
EXPIRE k 9223372036854775808
PEXPIRE k 9223372036854775807
PEXPIRE k -9223372036854775808
SET k v
EXPIREAT k 9223372036854776
EXPIREAT k 9223372036854775
EXPIRETIME k
PEXPIRETIME k
SET k v
PEXPIREAT k 9223372036854775807
EXPIRETIME k
PEXPIRETIME k
~ TTL k
~ PTTL k
PEXPIREAT k 9223372036854775500
EXPIRETIME k
PEXPIREAT k 9223372036854775499
EXPIRETIME k
EXPIRE missing 9223372036854776
PEXPIREAT k -9223372036854775808
EXISTS k"#,
    );
}

#[test]
fn set_read_and_persist_match_redis() {
    differential(
        r#"TTL missing
PTTL missing
EXPIRETIME missing
PEXPIRETIME missing
PERSIST missing
SET k v
TTL k
PTTL k
EXPIRETIME k
PEXPIRETIME k
PERSIST k
EXPIRE k 100
TTL k
~ PTTL k
PEXPIRE k 100400
TTL k
PEXPIRE k 100600
TTL k
PEXPIRE k 1499
TTL k
EXPIREAT k 4102444800
EXPIRETIME k
PEXPIRETIME k
TTL missing
PEXPIREAT k 4102444800123
EXPIRETIME k
PEXPIRETIME k
PEXPIREAT k 4102444800500
EXPIRETIME k
PEXPIREAT k 4102444800499
EXPIRETIME k
GET k
PERSIST k
PERSIST k
TTL k
EXPIRETIME k
GET k
# expiry does not change the value; SET drops the TTL
EXPIRE k 100
SET k w
TTL k
GET k"#,
    );
}

#[test]
fn past_and_non_positive_times_delete_the_key() {
    differential(
        r#"SET k v
EXPIRE k 0
EXISTS k
EXPIRE k 0
SET k v
EXPIRE k -5
EXISTS k
SET k v
PEXPIRE k 0
EXISTS k
SET k v
EXPIREAT k 0
EXISTS k
SET k v
EXPIREAT k 1
EXISTS k
SET k v
PEXPIREAT k 1000
GET k
SET k v
PEXPIREAT k -1
TTL k
DBSIZE"#,
    );
}

#[test]
fn nx_xx_gt_lt_match_redis() {
    differential(
        r#"SET k v
EXPIRE k 100 XX
TTL k
# same TTL again: 1 if a millisecond ticked in between, else 0 (on both)
~ EXPIRE k 100 GT
TTL k
EXPIRE k 100 LT
TTL k
EXPIRE k 200 NX
TTL k
EXPIRE k 300 NX
TTL k
EXPIRE k 100 XX
TTL k
EXPIRE k 50 GT
~ EXPIRE k 100 GT
TTL k
EXPIRE k 300 GT
TTL k
EXPIRE k 400 LT
EXPIRE k 300 LT
TTL k
EXPIRE k 200 LT
TTL k
EXPIRE k 500 xx gt
TTL k
EXPIRE k 100 xx gt
EXPIRE k 100 XX LT
TTL k
# repeated flags; the same TTL again, so 1 only if a millisecond ticked
~ EXPIRE k 100 gt gt
EXPIRE k 100 lt LT
PEXPIRE k 50000 lt
TTL k
EXPIREAT k 4102444800 gt
EXPIRETIME k
PEXPIREAT k 4102444800000 gt
PEXPIREAT k 4102444799999 lt
PEXPIRETIME k
# a time in the past still has to pass the condition first
EXPIRE k -1 GT
EXISTS k
EXPIRE k -1 NX
EXISTS k
EXPIRE k -1 LT
EXISTS k
SET k v
EXPIRE k -1 XX
EXISTS k
EXPIRE k -1 LT
EXISTS k
SET k v
EXPIRE k -1 GT
EXISTS k
EXPIRE k -1 NX
EXISTS k
EXPIRE missing 10 NX
EXPIRE missing 10 XX
EXPIRE missing 10 GT
EXPIRE missing 10 LT"#,
    );
}

/// Polls `cond` every 10 ms for at most `limit`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

#[test]
fn keys_expire_on_access_after_their_time() {
    let s = magpie(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["PEXPIRE", "k", "50"]), b":1\r\n");
    let pttl = c.cmd_str(&["PTTL", "k"]);
    let ms: i64 = pttl.trim_start_matches(':').trim().parse().unwrap();
    assert!((0..=50).contains(&ms), "PTTL {ms}");
    assert_eq!(c.cmd(&["TTL", "k"]), b":0\r\n", "50 ms rounds to 0 s");
    assert_eq!(c.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(c.cmd(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["TTL", "k"]), b":-2\r\n");
    assert_eq!(c.cmd(&["PTTL", "k"]), b":-2\r\n");
    assert_eq!(c.cmd(&["EXISTS", "k"]), b":0\r\n");
    // an expired key cannot be renamed, copied, persisted or re-expired
    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["PEXPIRE", "k", "30"]), b":1\r\n");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(c.cmd(&["PERSIST", "k"]), b":0\r\n");
    assert_eq!(c.cmd(&["EXPIRE", "k", "100"]), b":0\r\n");
    assert_eq!(c.cmd(&["RENAME", "k", "j"]), b"-ERR no such key\r\n");
    assert_eq!(c.cmd(&["COPY", "k", "j"]), b":0\r\n");
    // PERSIST in time keeps the key
    assert_eq!(c.cmd(&["SET", "p", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["PEXPIRE", "p", "50"]), b":1\r\n");
    assert_eq!(c.cmd(&["PERSIST", "p"]), b":1\r\n");
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(c.cmd(&["GET", "p"]), b"$1\r\nv\r\n");
    // a renamed key keeps its deadline
    assert_eq!(c.cmd(&["SET", "r", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["PEXPIRE", "r", "50"]), b":1\r\n");
    assert_eq!(c.cmd(&["RENAME", "r", "r2"]), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(c.cmd(&["EXISTS", "r", "r2"]), b":0\r\n");
}

#[test]
fn active_expiry_removes_keys_nobody_reads() {
    let s = magpie(&[]);
    let mut c = s.client();
    let mut batch = Vec::new();
    for i in 0..200 {
        let k = format!("k{i}");
        batch.extend_from_slice(&encode(&[b"SET", k.as_bytes(), b"v"]));
        batch.extend_from_slice(&encode(&[b"PEXPIRE", k.as_bytes(), b"1000"]));
    }
    c.send(&batch);
    for _ in 0..200 {
        assert_eq!(c.read_reply(), b"+OK\r\n");
        assert_eq!(c.read_reply(), b":1\r\n");
    }
    assert_eq!(c.cmd(&["SET", "keep", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]), b":201\r\n");
    // expiry is due after 1 s (long enough that the first DBSIZE sees every
    // key even on a loaded machine) and the cycle runs 10 times a second, so
    // DBSIZE (which counts keys until they are collected) drops to 1 soon
    // after; nothing reads the keys meanwhile
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        eventually(Duration::from_secs(3), || c.cmd(&["DBSIZE"]) == b":1\r\n"),
        "DBSIZE stayed at {}",
        c.cmd_str(&["DBSIZE"])
    );
    assert_eq!(c.cmd(&["GET", "keep"]), b"$1\r\nv\r\n");
}
