//! MULTI, EXEC, DISCARD, WATCH and UNWATCH against a real redis-server 7.0,
//! byte for byte, in RESP2 and RESP3.
//!
//! A script line is `<client>: <command>` (clients A and B on each server,
//! so one client can break another's WATCH); each line's one reply is read
//! from both servers and compared. A line `<client>: HELLO 3` switches that
//! client to RESP3 on both servers (its reply holds the client id, so only
//! its type is compared).

mod common;

use common::*;

/// Runs `script` on two clients of each server and compares every reply.
fn two_clients(script: &str) {
    let Some(redis) = redis() else {
        assert!(!in_ci(), "redis-server is missing");
        return;
    };
    let ours = magpie(&[]);
    let mut r = [redis.client(), redis.client()];
    let mut m = [ours.client(), ours.client()];
    for (n, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (who, cmd) = line.split_once(": ").expect("<client>: <command>");
        let i = match who {
            "A" => 0,
            "B" => 1,
            _ => panic!("line {}: unknown client {who}", n + 1),
        };
        let args = split_quoted(cmd);
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        r[i].send_cmd(&args);
        m[i].send_cmd(&args);
        let (want, got) = (r[i].read_reply(), m[i].read_reply());
        if cmd.eq_ignore_ascii_case("hello 3") {
            assert_eq!(
                got[0],
                want[0],
                "line {}: {line}: reply types differ",
                n + 1
            );
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "line {}: {line}",
            n + 1
        );
    }
}

/// The script every test runs in RESP2 and then in RESP3.
fn both_protocols(script: &str) {
    two_clients(script);
    two_clients(&format!("A: HELLO 3\nB: HELLO 3\n{script}"));
}

#[test]
fn queueing_exec_discard_and_their_errors_match_redis() {
    both_protocols(
        r#"A: EXEC
A: DISCARD
A: EXEC extra
A: DISCARD extra
A: MULTI extra
A: MULTI
A: MULTI
A: SET a 1
A: INCR a
A: GET a
A: EXEC
A: EXEC
A: MULTI
A: SET a 2
A: DISCARD
A: GET a
A: DISCARD
A: MULTI
A: EXEC
A: MULTI
A: SET b x
A: INCR b
A: SET a 1 EX -5
A: GET b
A: EXEC
A: MULTI
A: SELECT 1
A: SET q 1
A: EXEC
A: GET q
A: SELECT 0
A: GET q
"#,
    );
}

#[test]
fn a_refused_queued_command_aborts_exec() {
    both_protocols(
        r#"A: MULTI
A: SET a 1
A: NOSUCHCOMMAND x
A: SET a 2
A: EXEC
A: GET a
A: MULTI
A: SET a
A: EXEC
A: MULTI
A: MULTI x
A: EXEC
A: MULTI
A: SHUTDOWN
A: EXEC
A: MULTI
A: SET a 3
A: EXEC x
A: DISCARD
A: GET a
A: MULTI
A: WATCH a
A: UNWATCH x
A: PING
A: EXEC
"#,
    );
}

#[test]
fn watch_is_broken_by_writes_expiry_ttl_changes_and_flushes_as_in_redis() {
    both_protocols(
        r#"A: WATCH
A: UNWATCH x
A: SET a 1
A: WATCH a
B: SET a 1
A: MULTI
A: GET a
A: EXEC
# a read does not break it, a write of the client itself does
A: WATCH a
B: GET a
A: MULTI
A: GET a
A: EXEC
A: WATCH a
A: SET a 2
A: MULTI
A: GET a
A: EXEC
# EXPIRE and PERSIST break it; a write refused (NX) does not
A: WATCH a
B: EXPIRE a 100
A: MULTI
A: TTL a
A: EXEC
A: WATCH a
B: PERSIST a
A: MULTI
A: TTL a
A: EXEC
A: WATCH a
B: SET a 9 NX
A: MULTI
A: GET a
A: EXEC
# INCR and APPEND
A: SET n 1
A: WATCH n
B: INCR n
A: MULTI
A: GET n
A: EXEC
A: WATCH n
B: APPEND n 0
A: MULTI
A: GET n
A: EXEC
# DEL, and a key that appears
A: WATCH n
B: DEL n
A: MULTI
A: GET n
A: EXEC
A: WATCH nothing
B: SET nothing here
A: MULTI
A: GET nothing
A: EXEC
# FLUSHDB breaks a watch on a key it removes, not on an absent one
A: WATCH nosuch
B: FLUSHDB
A: MULTI
A: PING
A: EXEC
A: SET a 1
A: WATCH a
B: FLUSHDB
A: MULTI
A: PING
A: EXEC
A: SET a 1
A: WATCH a
B: FLUSHALL
A: MULTI
A: PING
A: EXEC
# another database's key of the same name does not
A: SET a 1
A: WATCH a
B: SELECT 1
B: SET a 2
B: SELECT 0
A: MULTI
A: GET a
A: EXEC
# UNWATCH, DISCARD and EXEC forget the keys
A: WATCH a
A: UNWATCH
B: SET a 3
A: MULTI
A: GET a
A: EXEC
A: WATCH a
A: MULTI
A: DISCARD
B: SET a 4
A: MULTI
A: GET a
A: EXEC
A: WATCH a b c a
B: SET c 1
A: MULTI
A: PING
A: EXEC
A: MULTI
A: PING
A: EXEC
"#,
    );
}

#[test]
fn a_watched_key_that_expires_breaks_the_watch() {
    // the expiry needs time to pass: the same steps on both servers
    let Some(redis) = redis() else {
        assert!(!in_ci(), "redis-server is missing");
        return;
    };
    let ours = magpie(&[]);
    for port in [redis.port, ours.port] {
        let mut a = RawClient::connect(port);
        assert_eq!(a.cmd(&["SET", "a", "1", "PX", "40"]), b"+OK\r\n");
        assert_eq!(a.cmd(&["WATCH", "a"]), b"+OK\r\n");
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
        assert_eq!(a.cmd(&["PING"]), b"+QUEUED\r\n");
        assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n", "port {port}");
        // a key already gone when watched stays gone: no break
        assert_eq!(a.cmd(&["WATCH", "a"]), b"+OK\r\n");
        assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
        assert_eq!(a.cmd(&["PING"]), b"+QUEUED\r\n");
        assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+PONG\r\n", "port {port}");
    }
}

#[test]
fn subscribe_inside_multi_matches_redis() {
    two_clients(
        r#"A: MULTI
A: SUBSCRIBE x
A: EXEC
B: PUBLISH x hi
"#,
    );
    two_clients(
        r#"A: HELLO 3
A: MULTI
A: SUBSCRIBE x
A: PSUBSCRIBE y*
A: EXEC
"#,
    );
}

#[test]
fn pipelined_transactions_match_redis() {
    let Some(redis) = redis() else {
        assert!(!in_ci(), "redis-server is missing");
        return;
    };
    let ours = magpie(&[]);
    let mut batch = Vec::new();
    for cmd in [
        &["MULTI"][..],
        &["SET", "p", "1"],
        &["INCR", "p"],
        &["NOSUCH"],
        &["EXEC"],
        &["MULTI"],
        &["INCR", "p"],
        &["INCRBY", "p", "10"],
        &["EXEC"],
        &["GET", "p"],
    ] {
        let a: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
        batch.extend_from_slice(&encode(&a));
    }
    let mut replies = Vec::new();
    for port in [redis.port, ours.port] {
        let mut c = RawClient::connect(port);
        c.send(&batch);
        let got: Vec<Vec<u8>> = (0..10).map(|_| c.read_reply()).collect();
        replies.push(got);
    }
    assert_eq!(replies[0], replies[1]);
}
