//! The string command family: byte-for-byte differential scripts against a
//! real redis-server 7.0, plus checks of what a script cannot see (TTLs kept
//! or dropped over time, configured size limits, atomicity, a real client
//! library).

mod common;

use std::time::Duration;

use common::*;

#[test]
fn get_and_set_with_options_match_redis() {
    differential(
        r#"
GET k
SET k v
GET k
SET k v2 NX
GET k
SET k v3 XX
GET k
SET nokey v XX
GET nokey
SET k v4 GET
SET newk v GET
GET newk
SET k v5 NX GET
GET k
SET k2 v NX GET
GET k2
SET k3 v XX GET
GET k3
SET k v Ex 10 nX
SET k v xx nx
SET k v NX XX
SET k v NX NX
SET k v GET GET
SET k v EX
SET k v PX
SET k v EX 10 PX 100
SET k v PX 100 EX 10
SET k v EXAT 1 PXAT 1
SET k v PXAT 1 EXAT 1
SET k v EX 10 EXAT 10
SET k v KEEPTTL EX 10
SET k v EX 10 KEEPTTL
SET k v KEEPTTL KEEPTTL
SET k v PERSIST
SET k v FOO
SET k v EX 10 FOO
SET k v EXX 10
SET cq v "nx\x00zz"
GET cq
SET k v EX abc
SET k v EX 1.5
SET k v EX 0
SET k v EX -1
SET k v PX 0
SET k v PX -100
SET k v EXAT 0
SET k v PXAT -5
SET k v EX 9223372036854775
SET k v EX 9223372036854776
SET k v EX 9223372036854775808
SET k v PX 9223372036854775807
SET k v PX 9223372036854775000
SET k v EX 10 EX 20
GET k
SET k v EXAT 1
GET k
SET k v PXAT 1000
GET k
SET k v ex 100
GET k
SET k v1 keepttl
GET k
SET k v px 100000 get
SET k v exat 99999999999 xx
SET k v pxat 99999999999999
GET k
SET
SET k
GET
GET a b
SET "" empty
GET ""
SET bin "a\r\nb\x00c"
GET bin
SET big "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
GET big
"#,
    );
}

#[test]
fn setnx_setex_psetex_getset_getdel_getex_match_redis() {
    differential(
        r#"
SETNX a 1
SETNX a 2
GET a
SETNX a
SETEX b 100 v
GET b
SETEX b 0 v
SETEX b -5 v
SETEX b x v
SETEX b 9223372036854775 v
SETEX b 9223372036854776 v
SETEX b 10
PSETEX c 100000 v
GET c
PSETEX c 0 v
PSETEX c -1 v
PSETEX c 9223372036854775807 v
PSETEX c 1.5 v
GETSET a 3
GETSET a 4
GETSET nope 1
GET nope
GETSET a
GETDEL a
GETDEL a
GET a
GETDEL
GETDEL a b
GETEX b
GETEX nope
GETEX b EX 100
GETEX b PX 100000
GETEX b EXAT 99999999999
GETEX b PXAT 99999999999999
GETEX b PERSIST
GETEX b EX 0
GETEX b EX -1
GETEX b EX x
GETEX b PX 9223372036854775807
GETEX b EX 9223372036854776
GETEX nope EX 0
GETEX nope EX x
GETEX b EX
GETEX b EX 10 PX 10
GETEX b PERSIST EX 10
GETEX b EX 10 PERSIST
GETEX b PERSIST PERSIST
GETEX b KEEPTTL
GETEX b NX
GETEX b GET
GETEX b FOO
GETEX nope FOO
GETEX b EX 10 EX 20
GETEX
GET b
GETEX b PXAT 1
GET b
GETEX b
SET e v
GETEX e EXAT 1
GET e
"#,
    );
}

#[test]
fn mget_mset_msetnx_match_redis() {
    differential(
        r#"
MSET a 1 b 2 c 3
MGET a b c d
MGET d
MGET a a a
MSET a
MSET a 1 b
MSET
MGET
MSETNX x 1 y 2
MGET x y
MSETNX y 3 z 4
MGET y z
MSETNX z 5 z 6
GET z
MSETNX q
MSETNX q 1 r
MSET a "" b "x y"
MGET a b
MSET k1 v1 k2 v2 k3 v3 k4 v4 k5 v5 k6 v6 k7 v7 k8 v8 k9 v9 k10 v10
MGET k1 k2 k3 k4 k5 k6 k7 k8 k9 k10 k11
"#,
    );
}

#[test]
fn integer_counters_match_redis() {
    differential(
        r#"
INCR n
INCR n
DECR n
DECR n
DECR n
INCRBY n 10
INCRBY n -20
DECRBY n 5
DECRBY n -100
GET n
INCR
INCR a b
INCRBY n
INCRBY n x
INCRBY n 1.5
INCRBY n " 1"
INCRBY n 01
INCRBY n +1
INCRBY n -0
INCRBY n 9223372036854775808
DECRBY n x
DECRBY n -9223372036854775808
DECRBY n 9223372036854775807
SET m 9223372036854775806
INCR m
INCR m
GET m
INCRBY m 0
DECR m
SET m -9223372036854775807
DECR m
DECR m
GET m
INCRBY m -1
INCRBY m 9223372036854775807
INCRBY m 9223372036854775807
SET s abc
INCR s
DECR s
INCRBY s 1
DECRBY s 1
SET s " 1"
INCR s
SET s "1 "
INCR s
SET s 010
INCR s
SET s -0
INCR s
SET s +5
INCR s
SET s 1.0
INCR s
SET s ""
INCR s
SET s 9223372036854775808
INCR s
SET s -9223372036854775808
INCR s
SET s 00
INCR s
SET s 0
INCR s
"#,
    );
}

#[test]
fn incrbyfloat_matches_redis() {
    differential(
        r#"
INCRBYFLOAT f 10.5
INCRBYFLOAT f 0.1
INCRBYFLOAT f -5.6
INCRBYFLOAT f 1e20
INCRBYFLOAT f -1e20
INCRBYFLOAT g 0.1
INCRBYFLOAT g 0.2
INCRBYFLOAT g 0.3
INCRBYFLOAT g 1e-17
INCRBYFLOAT g -0.90000000000000001
GET g
INCRBYFLOAT h 3.0e3
INCRBYFLOAT h 1.5e-1
INCRBYFLOAT h 123456789.123456789
INCRBYFLOAT i 0x10
INCRBYFLOAT i 0x1.8p1
INCRBYFLOAT i .5
INCRBYFLOAT i 5.
INCRBYFLOAT i +1
INCRBYFLOAT i -1E2
INCRBYFLOAT i 1e308
INCRBYFLOAT i 1e4000
INCRBYFLOAT i -1e4000
INCRBYFLOAT j 1e-4940
INCRBYFLOAT j 1e-300
INCRBYFLOAT j 0.00000000000000001
INCRBYFLOAT j 0.000000000000000004
INCRBYFLOAT j 0.000000000000000006
INCRBYFLOAT j -1
INCRBYFLOAT j 1
INCRBYFLOAT j 18446744073709551617
INCRBYFLOAT j 1.1e4932
INCRBYFLOAT j 1.1e4932
INCRBYFLOAT i inf
INCRBYFLOAT i -inf
INCRBYFLOAT i Infinity
INCRBYFLOAT i nan
INCRBYFLOAT i NaN
INCRBYFLOAT i " 1"
INCRBYFLOAT i "1 "
INCRBYFLOAT i 1.5e+
INCRBYFLOAT i 1e
INCRBYFLOAT i .
INCRBYFLOAT i ""
INCRBYFLOAT i 0x
INCRBYFLOAT i 0xp1
INCRBYFLOAT i 1e5000
INCRBYFLOAT i -1e5000
INCRBYFLOAT i 1e-5000
INCRBYFLOAT i 0e-5000
INCRBYFLOAT i abc
INCRBYFLOAT i "1\x00"
INCRBYFLOAT i
GET i
SET s abc
INCRBYFLOAT s 1
INCRBYFLOAT s x
SET s inf
INCRBYFLOAT s 1
INCRBYFLOAT s x
SET s -inf
INCRBYFLOAT s inf
SET s nan
INCRBYFLOAT s 1
SET s 1e400
INCRBYFLOAT s 1
SET s 7
INCRBYFLOAT s 0
SET s 1.50
INCRBYFLOAT s 0
SET s -0.0
INCRBYFLOAT s 0
SET s 9223372036854775807
INCRBYFLOAT s 1
INCR s
"#,
    );
}

#[test]
fn append_strlen_getrange_setrange_match_redis() {
    differential(
        r#"
APPEND a hello
APPEND a " world"
GET a
APPEND a ""
APPEND e ""
GET e
APPEND
APPEND a
STRLEN a
STRLEN nope
STRLEN
SET n 12345
APPEND n 6
INCR n
STRLEN n
GETRANGE a 0 4
GETRANGE a -5 -1
GETRANGE a 0 -1
GETRANGE a 0 -100
GETRANGE a -1 -5
GETRANGE a 5 3
GETRANGE a 100 200
GETRANGE a -100 100
GETRANGE a 3 3
GETRANGE a -9223372036854775808 9223372036854775807
GETRANGE a 9223372036854775807 -9223372036854775808
GETRANGE nope 0 -1
GETRANGE e 0 -1
GETRANGE e -1 0
GETRANGE a x 1
GETRANGE a 1 x
GETRANGE nope x 1
GETRANGE a 1.5 2
GETRANGE a 0
SUBSTR a 0 4
SUBSTR a -3 -1
SUBSTR nope 0 1
SETRANGE r 5 abc
GET r
SETRANGE r 0 XY
GET r
SETRANGE r 7 "long tail"
GET r
SETRANGE r 2 ""
SETRANGE nope 100 ""
GET nope
SETRANGE r -1 x
SETRANGE r x x
SETRANGE r 1.5 x
SETRANGE r 536870911 xy
SETRANGE r 9223372036854775807 x
SETRANGE r 9223372036854775808 x
SETRANGE fresh 536870912 x
SETRANGE fresh 9223372036854775807 ""
GET fresh
SETRANGE r 0
SET z 12
SETRANGE z 1 9
INCR z
STRLEN r
"#,
    );
}

/// Many pseudo-random sums, so the long-double arithmetic and `%.17Lf`
/// printing are checked well beyond hand-picked cases.
#[test]
fn incrbyfloat_matches_redis_on_generated_inputs() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut script = String::new();
    for i in 0..150 {
        let key = format!("k{}", i % 10);
        let sign = if next(3) == 0 { "-" } else { "" };
        let int = next(1_000_000);
        let frac = format!(
            "{:0width$}",
            next(1_000_000_000),
            width = next(9) as usize + 1
        );
        let value = match next(4) {
            0 => format!("{sign}{int}.{frac}"),
            1 => format!("{sign}0.{frac}"),
            2 => format!("{sign}{int}.{frac}e{}", next(40) as i64 - 20),
            _ => format!("{sign}{int}"),
        };
        script.push_str(&format!("INCRBYFLOAT {key} {value}\n"));
    }
    differential(&script);
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// TTLs cannot be read yet (TTL/PTTL live in another family), so these
/// check them by letting short ones run out.
#[test]
fn ttls_are_kept_or_dropped_like_redis() {
    let s = magpie(&[]);
    let mut c = s.client();
    let ok = b"+OK\r\n".to_vec();
    for key in [
        "plain", "keep", "incr", "append", "setrange", "getset", "getex", "persist", "incrf",
    ] {
        assert_eq!(c.cmd(&["SET", key, "1", "PX", "300"]), ok, "{key}");
    }
    assert_eq!(c.cmd(&["SET", "plain", "2"]), ok);
    assert_eq!(c.cmd(&["SET", "keep", "2", "KEEPTTL"]), ok);
    assert_eq!(c.cmd(&["INCR", "incr"]), b":2\r\n");
    assert_eq!(c.cmd(&["INCRBYFLOAT", "incrf", "1"]), b"$1\r\n2\r\n");
    assert_eq!(c.cmd(&["APPEND", "append", "x"]), b":2\r\n");
    assert_eq!(c.cmd(&["SETRANGE", "setrange", "0", "y"]), b":1\r\n");
    assert_eq!(c.cmd(&["GETSET", "getset", "2"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["GETEX", "getex", "PX", "100000"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["GETEX", "persist", "PERSIST"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["SETEX", "setex", "100", "v"]), ok);
    assert_eq!(c.cmd(&["PSETEX", "psetex", "100", "v"]), ok);
    assert_eq!(c.cmd(&["GETEX", "short", "PX", "100"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["SET", "short", "v"]), ok);
    assert_eq!(c.cmd(&["GETEX", "short", "PX", "100"]), b"$1\r\nv\r\n");
    sleep_ms(450);
    let gone = b"$-1\r\n".to_vec();
    assert_eq!(
        c.cmd(&["GET", "plain"]),
        b"$1\r\n2\r\n",
        "SET drops the TTL"
    );
    assert_eq!(c.cmd(&["GET", "keep"]), gone, "KEEPTTL keeps it");
    assert_eq!(c.cmd(&["GET", "incr"]), gone, "INCR keeps it");
    assert_eq!(c.cmd(&["GET", "incrf"]), gone, "INCRBYFLOAT keeps it");
    assert_eq!(c.cmd(&["GET", "append"]), gone, "APPEND keeps it");
    assert_eq!(c.cmd(&["GET", "setrange"]), gone, "SETRANGE keeps it");
    assert_eq!(c.cmd(&["GET", "getset"]), b"$1\r\n2\r\n", "GETSET drops it");
    assert_eq!(
        c.cmd(&["GET", "getex"]),
        b"$1\r\n1\r\n",
        "GETEX PX replaces it"
    );
    assert_eq!(
        c.cmd(&["GET", "persist"]),
        b"$1\r\n1\r\n",
        "GETEX PERSIST drops it"
    );
    assert_eq!(c.cmd(&["GET", "setex"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd(&["GET", "psetex"]), gone);
    assert_eq!(c.cmd(&["GET", "short"]), gone);
    // INCR on an expired key starts from 0
    assert_eq!(c.cmd(&["INCR", "incr"]), b":1\r\n");
}

#[test]
fn configured_max_bulk_len_limits_built_strings() {
    let s = magpie(&["--proto-max-bulk-len", "10"]);
    let mut c = s.client();
    let too_long = b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n".to_vec();
    assert_eq!(c.cmd(&["APPEND", "a", "12345"]), b":5\r\n");
    assert_eq!(c.cmd(&["APPEND", "a", "67890"]), b":10\r\n");
    assert_eq!(c.cmd(&["APPEND", "a", "x"]), too_long);
    assert_eq!(c.cmd(&["SETRANGE", "a", "9", "xy"]), too_long);
    assert_eq!(c.cmd(&["SETRANGE", "a", "9", "x"]), b":10\r\n");
    assert_eq!(c.cmd(&["SETRANGE", "b", "10", "x"]), too_long);
    assert_eq!(c.cmd(&["SETRANGE", "b", "9", "x"]), b":10\r\n");
    assert_eq!(
        c.cmd(&["GET", "b"]),
        b"$10\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00x\r\n"
    );
    assert_eq!(c.cmd(&["GET", "a"]), b"$10\r\n123456789x\r\n");
}

/// MSET writes and MGET reads all their keys under one lock set, so a reader
/// never sees half of a write.
#[test]
fn mset_and_mget_are_atomic() {
    let s = magpie(&[]);
    let port = s.port;
    let keys: Vec<String> = (0..16).map(|i| format!("key{i}")).collect();
    let writer = {
        let keys = keys.clone();
        std::thread::spawn(move || {
            let mut c = RawClient::connect(port);
            for round in 0..300 {
                let v = round.to_string();
                let mut args = vec!["MSET"];
                for k in &keys {
                    args.push(k);
                    args.push(&v);
                }
                assert_eq!(c.cmd(&args), b"+OK\r\n");
            }
        })
    };
    let mut c = s.client();
    let mut args = vec!["MGET"];
    args.extend(keys.iter().map(|k| k.as_str()));
    for _ in 0..300 {
        let reply = c.cmd(&args);
        let text = String::from_utf8(reply).unwrap();
        let values: Vec<&str> = text
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.starts_with('$'))
            .collect();
        let values = &values[..values.len() - 1];
        assert!(
            values.iter().all(|v| *v == values[0]),
            "torn MSET seen: {text:?}"
        );
    }
    writer.join().unwrap();
}

#[test]
fn msetnx_is_all_or_nothing_under_races() {
    let s = magpie(&[]);
    let port = s.port;
    // two clients race to claim overlapping key pairs; exactly one of each
    // conflicting pair may win and a winner owns all its keys
    let racers: Vec<_> = (0..2)
        .map(|who| {
            std::thread::spawn(move || {
                let mut c = RawClient::connect(port);
                let me = who.to_string();
                let mut won = Vec::new();
                for i in 0..100 {
                    let (a, b) = (format!("a{i}"), format!("b{i}"));
                    let (first, second) = if who == 0 { (&a, &b) } else { (&b, &a) };
                    if c.cmd(&["MSETNX", first, &me, second, &me]) == b":1\r\n" {
                        won.push(i);
                    }
                }
                won
            })
        })
        .collect();
    let won: Vec<Vec<i32>> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    let mut c = s.client();
    for i in 0..100 {
        let owner = match (won[0].contains(&i), won[1].contains(&i)) {
            (true, false) => "0",
            (false, true) => "1",
            other => panic!("pair {i}: winners {other:?}"),
        };
        let want = format!("*2\r\n$1\r\n{owner}\r\n$1\r\n{owner}\r\n");
        assert_eq!(
            c.cmd_str(&["MGET", &format!("a{i}"), &format!("b{i}")]),
            want
        );
    }
}

#[test]
fn a_real_client_library_works() -> redis::RedisResult<()> {
    let s = magpie(&[]);
    let mut con = redis::Client::open(s.url())?.get_connection()?;
    redis::cmd("SET").arg("name").arg("magpie").exec(&mut con)?;
    let name: String = redis::cmd("GET").arg("name").query(&mut con)?;
    assert_eq!(name, "magpie");
    let missing: Option<String> = redis::cmd("GET").arg("nothing").query(&mut con)?;
    assert_eq!(missing, None);
    let n: i64 = redis::cmd("INCRBY").arg("count").arg(41).query(&mut con)?;
    assert_eq!(n, 41);
    let n: i64 = redis::cmd("INCR").arg("count").query(&mut con)?;
    assert_eq!(n, 42);
    let f: f64 = redis::cmd("INCRBYFLOAT")
        .arg("float")
        .arg(2.5)
        .query(&mut con)?;
    assert_eq!(f, 2.5);
    redis::cmd("MSET")
        .arg("x")
        .arg(1)
        .arg("y")
        .arg(b"\x00\xff")
        .exec(&mut con)?;
    let (x, y, z): (i64, Vec<u8>, Option<String>) = redis::cmd("MGET")
        .arg("x")
        .arg("y")
        .arg("z")
        .query(&mut con)?;
    assert_eq!((x, y, z), (1, vec![0, 255], None));
    let old: Option<String> = redis::cmd("SET")
        .arg("name")
        .arg("pie")
        .arg("GET")
        .query(&mut con)?;
    assert_eq!(old.as_deref(), Some("magpie"));
    let len: usize = redis::cmd("APPEND").arg("name").arg("!").query(&mut con)?;
    assert_eq!(len, 4);
    let part: String = redis::cmd("GETRANGE")
        .arg("name")
        .arg(0)
        .arg(2)
        .query(&mut con)?;
    assert_eq!(part, "pie");
    let err = redis::cmd("INCR")
        .arg("name")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some("value is not an integer or out of range")
    );
    // pipelines come back in order
    let (a, b): (String, i64) = redis::pipe()
        .cmd("GETDEL")
        .arg("name")
        .cmd("STRLEN")
        .arg("name")
        .query(&mut con)?;
    assert_eq!((a.as_str(), b), ("pie!", 0));
    Ok(())
}
