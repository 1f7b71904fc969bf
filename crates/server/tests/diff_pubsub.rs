//! Pub/sub against a real redis-server 7.0, byte for byte, in RESP2 and
//! RESP3: confirmations, messages delivered to other connections,
//! subscribed mode's refusals, PUBSUB introspection, glob patterns,
//! the output-buffer limit's CONFIG syntax.
//!
//! A script line is `<client>: <command>` (clients A, B, C on each
//! server). After each line every client of redis-server is read until it
//! goes quiet, and the same number of replies is then read from the same
//! client of magpie (blocking, so magpie's timing does not matter) and
//! compared. `<client>~` compares every client's replies' lines as a
//! multiset, for Redis's unordered answers (UNSUBSCRIBE without arguments
//! over several channels, PUBSUB CHANNELS, the pmessages of one PUBLISH
//! that several patterns match: both servers go through a hash table); `<client>?` only the replies' types (for
//! HELLO, whose reply holds the client id).

mod common;

use std::io::{BufRead, Read};
use std::time::Duration;

use common::*;

const CLIENTS: usize = 3;

/// Splits `bytes` into whole RESP frames (bytes of each).
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    fn line_end(b: &[u8], at: usize) -> usize {
        at + b[at..].windows(2).position(|w| w == b"\r\n").expect("CRLF") + 2
    }
    fn frame(b: &[u8], at: usize) -> usize {
        let end = line_end(b, at);
        let n = || -> i64 {
            std::str::from_utf8(&b[at + 1..end - 2])
                .unwrap()
                .parse()
                .unwrap()
        };
        match b[at] {
            b'$' | b'=' | b'!' => {
                let len = n();
                if len < 0 {
                    end
                } else {
                    end + len as usize + 2
                }
            }
            b'*' | b'~' | b'>' => (0..n().max(0)).fold(end, |p, _| frame(b, p)),
            b'%' | b'|' => (0..n() * 2).fold(end, |p, _| frame(b, p)),
            _ => end,
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let end = frame(bytes, at);
        out.push(bytes[at..end].to_vec());
        at = end;
    }
    out
}

/// Everything `c` has to read until it stays quiet for a moment.
fn read_quiet(c: &mut RawClient) -> Vec<u8> {
    let s = c.stream.get_mut();
    s.set_read_timeout(Some(Duration::from_millis(60))).unwrap();
    let mut got = c.stream.buffer().to_vec();
    let n = got.len();
    c.stream.consume(n);
    let mut buf = [0u8; 65536];
    loop {
        match c.stream.get_mut().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    c.stream
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    got
}

fn sorted_lines(frames: &[Vec<u8>]) -> Vec<String> {
    let mut lines: Vec<String> = frames
        .iter()
        .flat_map(|f| {
            String::from_utf8_lossy(f)
                .split("\r\n")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

/// Runs `script` (see the file's comment) on both servers.
fn pubsub_differential(script: &str) {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let mut r: Vec<RawClient> = (0..CLIENTS).map(|_| redis.client()).collect();
    let mut m: Vec<RawClient> = (0..CLIENTS).map(|_| ours.client()).collect();
    for (n, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (who, cmd) = line.split_once(' ').expect("<client>: <command>");
        let loose = who.ends_with('~');
        let types_only = who.ends_with('?');
        let idx = (who.as_bytes()[0] - b'A') as usize;
        let args = split_quoted(cmd);
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        r[idx].send_cmd(&args);
        m[idx].send_cmd(&args);
        // every command answers its sender: wait for that reply first, so
        // a slow moment of redis-server's is not taken for silence (the
        // messages to other clients leave in the same event-loop pass)
        let first = r[idx].read_reply();
        for c in 0..CLIENTS {
            let mut bytes = if c == idx { first.clone() } else { Vec::new() };
            bytes.extend_from_slice(&read_quiet(&mut r[c]));
            let want = frames(&bytes);
            let got: Vec<Vec<u8>> = (0..want.len()).map(|_| m[c].read_reply()).collect();
            let show = |f: &[Vec<u8>]| String::from_utf8_lossy(&f.concat()).into_owned();
            if types_only && c == idx {
                let heads = |f: &[Vec<u8>]| f.iter().map(|x| x[0]).collect::<Vec<u8>>();
                assert_eq!(heads(&got), heads(&want), "line {}: {line}", n + 1);
            } else if loose {
                assert_eq!(
                    sorted_lines(&got),
                    sorted_lines(&want),
                    "line {}: {line}: client {}",
                    n + 1,
                    (b'A' + c as u8) as char
                );
            } else {
                assert_eq!(
                    show(&got),
                    show(&want),
                    "line {}: {line}: client {}",
                    n + 1,
                    (b'A' + c as u8) as char
                );
            }
        }
    }
    // nothing more on either side
    for c in 0..CLIENTS {
        assert_eq!(read_quiet(&mut r[c]), b"", "redis client {c} has more");
        assert_eq!(
            String::from_utf8_lossy(&read_quiet(&mut m[c])),
            "",
            "magpie client {c} has more"
        );
    }
}

#[test]
fn subscribe_publish_and_subscribed_mode_in_resp2_match_redis() {
    pubsub_differential(
        r#"
A: UNSUBSCRIBE
A: PUNSUBSCRIBE
A: SUNSUBSCRIBE
A: SUBSCRIBE news
A: SUBSCRIBE a b a
B: PUBLISH news hello
B: PUBLISH nobody hello
B: PUBLISH a ""
A: PSUBSCRIBE n* h?llo h[ae]llo x\* n*
B: PUBLISH news again
B~ PUBLISH hallo there
B: PUBLISH hxllo there
B: PUBLISH x* star
B: PUBLISH xy star
A: SSUBSCRIBE s1 s2
B: SPUBLISH s1 shard
B: PUBLISH s1 plain
B: SPUBLISH news shard
# subscribed mode: only a few commands
A: GET x
A: SET x y
A: PUBLISH news x
A: PUBSUB NUMPAT
A: CLIENT ID
A: CLIENT NOSUCH
A: CLIENT
A: CONFIG GET x y z
A: NOSUCH
A: PING
A: PING hi
A: PING a b
A: SUBSCRIBE
A: PSUBSCRIBE
A: HELLO 3
# introspection from outside
B: PUBSUB NUMSUB news a zz
B: PUBSUB NUMSUB
B: PUBSUB NUMPAT
B: PUBSUB SHARDNUMSUB s1 news
B: PUBSUB CHANNELS ne*
B~ PUBSUB CHANNELS
B~ PUBSUB SHARDCHANNELS
B: PUBSUB SHARDCHANNELS s1
B: PUBSUB CHANNELS a b
B: PUBSUB shardchannels a b
B: PUBSUB NUMPAT x
B: PUBSUB
B: PUBSUB NOSUCH
B: PUBSUB HELP
B: PUBSUB help x
B: PUBLISH
B: PUBLISH a
B: SPUBLISH a
B: SSUBSCRIBE
# leaving
A: UNSUBSCRIBE a zz
A~ UNSUBSCRIBE
A: PUNSUBSCRIBE n*
A: PUNSUBSCRIBE
B: PUBLISH news gone
A: GET x
B: SPUBLISH s2 still
A: SUNSUBSCRIBE s2
A: SUNSUBSCRIBE
A: GET x
A: PING
B: PUBSUB NUMPAT
B: PUBSUB CHANNELS
B: PUBSUB SHARDCHANNELS
"#,
    );
}

#[test]
fn push_messages_in_resp3_match_redis() {
    pubsub_differential(
        r#"
A? HELLO 3
A: UNSUBSCRIBE
A: SUBSCRIBE c
A: PSUBSCRIBE c*
A: PING
A: GET x
A: SET x y
B: PUBLISH c from-b
A: PUBLISH c to-myself
A: SSUBSCRIBE q
A: SPUBLISH q z
A: UNSUBSCRIBE
A: UNSUBSCRIBE
A: PUNSUBSCRIBE nope
A: PUNSUBSCRIBE
A: SUNSUBSCRIBE
A: PUBSUB NUMSUB c
# a RESP2 subscriber and a RESP3 one on the same channel
C: SUBSCRIBE both
A: SUBSCRIBE both
B: PUBLISH both "two ways"
A? HELLO 2
B: PUBLISH both "now resp2"
A: GET x
A: PING
"#,
    );
}

#[test]
fn binary_channels_and_large_payloads_match_redis() {
    let big = "x".repeat(100_000);
    pubsub_differential(&format!(
        "A: SUBSCRIBE \"a\\r\\nb\" \"\"\n\
         A: PSUBSCRIBE \"\\x00*\"\n\
         B: PUBLISH \"a\\r\\nb\" \"\\x00\\xff\"\n\
         B: PUBLISH \"\" {big}\n\
         B: PUBLISH \"\\x00z\" y\n\
         B: PUBSUB NUMSUB \"\" \"a\\r\\nb\"\n"
    ));
}

#[test]
fn output_buffer_limit_config_matches_redis() {
    differential(
        r#"CONFIG GET client-output-buffer-limit
CONFIG SET client-output-buffer-limit "pubsub 1mb 2kb 3"
CONFIG GET client-output-buffer-limit
CONFIG SET client-output-buffer-limit "PUBSUB 1g 2G 9999999999"
CONFIG GET client-output-buffer-limit
CONFIG SET client-output-buffer-limit ""
CONFIG GET client-output-buffer-limit
CONFIG SET client-output-buffer-limit "pubsub"
CONFIG SET client-output-buffer-limit "pubsub 1 2"
CONFIG SET client-output-buffer-limit "pubsub  1 2 3"
CONFIG SET client-output-buffer-limit "foo 1 2 3"
CONFIG SET client-output-buffer-limit "master 1 2 3"
CONFIG SET client-output-buffer-limit "pubsub x 2 3"
CONFIG SET client-output-buffer-limit "pubsub -1 2 3"
CONFIG SET client-output-buffer-limit "pubsub 1 2 -3"
CONFIG SET client-output-buffer-limit "pubsub 1.5 1 1"
CONFIG SET client-output-buffer-limit "pubsub 1 1 99999999999999999999"
CONFIG SET client-output-buffer-limit "pubsub 1 2 3 foo 1 2 3"
CONFIG GET client-output-buffer-limit
CONFIG SET client-output-buffer-limit "normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60"
CONFIG GET client-output-buffer-limit
CONFIG SET client-output-buffer-limit "replica 268435456 67108864 60 pubsub 0 0 0"
CONFIG GET client-output-buffer-limit
"#,
    );
}

#[test]
fn unenforced_classes_keep_their_values() {
    let s = magpie(&[]);
    let mut c = s.client();
    assert_eq!(
        c.cmd_str(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0"
        ]),
        "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - \
         magpie limits only the pubsub class; normal stays '0 0 0'\r\n"
    );
    // nothing of a refused value applies
    assert!(c
        .cmd_str(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1 1 1 slave 1 2 3"
        ])
        .starts_with("-ERR CONFIG SET failed"));
    assert!(c
        .cmd_str(&["CONFIG", "GET", "client-output-buffer-limit"])
        .contains("pubsub 33554432 8388608 60"));
}

#[test]
fn start_flag_sets_the_pubsub_limit() {
    let s = magpie(&["--client-output-buffer-limit-pubsub", "1mb 0 0"]);
    let mut c = s.client();
    assert!(c
        .cmd_str(&["CONFIG", "GET", "client-output-buffer-limit"])
        .contains("pubsub 1048576 0 0"));
    let out = failed_serve(&["--client-output-buffer-limit-pubsub", "1mb 0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected three values"));
}

#[test]
fn frames_splits_nested_replies() {
    let f = frames(b"*2\r\n$1\r\na\r\n:1\r\n>3\r\n$1\r\nx\r\n_\r\n:0\r\n+OK\r\n");
    assert_eq!(f.len(), 3);
    assert_eq!(f[2], b"+OK\r\n");
}
