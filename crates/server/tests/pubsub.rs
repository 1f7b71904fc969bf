//! Pub/sub with real clients over real sockets: the `redis` crate's
//! pub/sub consumer, `redis-cli SUBSCRIBE`, and subscribers that do not
//! read, which are disconnected at `client-output-buffer-limit pubsub`
//! while publishers go on and the server's memory stays bounded.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn redis_crate_pubsub_consumer_receives_channel_and_pattern_messages() {
    let s = magpie(&[]);
    let client = redis::Client::open(s.url()).unwrap();
    let mut sub_con = client.get_connection().unwrap();
    let mut pubsub = sub_con.as_pubsub();
    pubsub.subscribe("orders").unwrap();
    pubsub.psubscribe("events.*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let mut pub_con = client.get_connection().unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("orders")
        .arg("o-1")
        .query(&mut pub_con)
        .unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("events.login")
        .arg(&b"\x00bin\xff"[..])
        .query(&mut pub_con)
        .unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("unrelated")
        .arg("x")
        .query(&mut pub_con)
        .unwrap();
    assert_eq!(n, 0);

    let m = pubsub.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "orders");
    assert_eq!(m.get_payload::<String>().unwrap(), "o-1");
    assert!(!m.from_pattern());
    let m = pubsub.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "events.login");
    assert_eq!(m.get_pattern::<String>().unwrap(), "events.*");
    assert_eq!(m.get_payload_bytes(), b"\x00bin\xff");

    // many messages in a row arrive whole and in order
    for i in 0..1000 {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("orders")
            .arg(i)
            .query(&mut pub_con)
            .unwrap();
    }
    for i in 0..1000 {
        let m = pubsub.get_message().unwrap();
        assert_eq!(m.get_payload::<i64>().unwrap(), i);
    }

    pubsub.unsubscribe("orders").unwrap();
    pubsub.punsubscribe("events.*").unwrap();
    drop(pubsub);
    // back out of subscribed mode, the connection serves commands again
    let pong: String = redis::cmd("PING").query(&mut sub_con).unwrap();
    assert_eq!(pong, "PONG");
    let counts: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("orders")
        .query(&mut pub_con)
        .unwrap();
    assert_eq!(counts[1], redis::Value::Int(0));
}

#[test]
fn redis_cli_subscribe_prints_messages() {
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("\n*** SKIPPED: redis-cli is not installed ***\n");
        return;
    }
    let s = magpie(&[]);
    let mut cli = Command::new("redis-cli")
        .args(["-p", &s.port.to_string(), "SUBSCRIBE", "news"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-cli");
    let mut lines = BufReader::new(cli.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("a line").expect("read");
    assert_eq!([next(), next(), next()], ["subscribe", "news", "1"]);
    let mut c = s.client();
    assert_eq!(c.cmd_str(&["PUBLISH", "news", "hello world"]), ":1\r\n");
    assert_eq!([next(), next(), next()], ["message", "news", "hello world"]);
    assert_eq!(
        c.cmd_str(&["PUBSUB", "NUMSUB", "news"]),
        "*2\r\n$4\r\nnews\r\n:1\r\n"
    );
    let _ = cli.kill();
    let _ = cli.wait();
    // the registry forgets a subscriber that went away
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.cmd_str(&["PUBLISH", "news", "x"]) != ":0\r\n" {
        assert!(Instant::now() < deadline, "subscriber still registered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server's resident memory in bytes (Linux).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// A raw subscriber to `channel` that then stops reading.
fn idle_subscriber(s: &Server, channel: &str) -> RawClient {
    let mut sub = s.client();
    assert_eq!(
        sub.cmd_str(&["SUBSCRIBE", channel]),
        format!(
            "*3\r\n$9\r\nsubscribe\r\n${}\r\n{channel}\r\n:1\r\n",
            channel.len()
        )
    );
    sub
}

/// Reads what the server still sends until it closes the connection;
/// panics if it stays open.
fn assert_closed_by_server(mut sub: RawClient) -> usize {
    sub.stream
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match sub.stream.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return total,
            Err(e) => panic!("subscriber was not disconnected: {e}"),
        }
    }
}

#[test]
fn a_subscriber_that_does_not_read_is_disconnected_at_the_hard_limit_with_memory_bounded() {
    let s = magpie(&["--client-output-buffer-limit-pubsub", "4mb 0 0"]);
    let sub = idle_subscriber(&s, "firehose");
    let mut publisher = s.client();
    let before = rss(s.child.id());
    let payload = "p".repeat(64 * 1024);
    // 256 MB offered to a subscriber that reads nothing: every PUBLISH
    // answers at once (the publisher never waits for the subscriber)
    let started = Instant::now();
    let mut delivered = 0;
    for _ in 0..4096 {
        let r = publisher.cmd_str(&["PUBLISH", "firehose", &payload]);
        delivered += (r == ":1\r\n") as usize;
    }
    let took = started.elapsed();
    let grown = rss(s.child.id()).saturating_sub(before);
    // the limit (4 MB) plus what the sockets hold, far below 256 MB
    assert!(grown < 48 << 20, "server grew by {grown} bytes");
    assert!(delivered < 4096, "the subscriber was never dropped");
    assert!(took < Duration::from_secs(60), "publishing took {took:?}");
    // once dropped, it is gone from the registry and from CLIENT LIST
    assert_eq!(
        publisher.cmd_str(&["PUBSUB", "NUMSUB", "firehose"]),
        "*2\r\n$8\r\nfirehose\r\n:0\r\n"
    );
    let list = publisher.cmd_str(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert_eq!(list, "$0\r\n\r\n");
    let received = assert_closed_by_server(sub);
    eprintln!("offered 256 MB: delivered {delivered} messages, server grew {grown} bytes, subscriber received {received} bytes, publishing took {took:?}");
    // it got at most what was queued before the limit, never the rest
    assert!(received < 48 << 20, "subscriber received {received}");
}

#[test]
fn the_soft_limit_disconnects_only_after_its_seconds() {
    let s = magpie(&["--client-output-buffer-limit-pubsub", "0 256kb 5"]);
    let sub = idle_subscriber(&s, "c");
    let mut publisher = s.client();
    let payload = "p".repeat(64 * 1024);
    // 19 MB: more than the sockets hold, so the queue passes the soft limit
    let started = Instant::now();
    for _ in 0..300 {
        publisher.cmd_str(&["PUBLISH", "c", &payload]);
    }
    // within its seconds the subscriber stays
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "machine too slow"
    );
    assert_eq!(publisher.cmd_str(&["PUBLISH", "c", "x"]), ":1\r\n");
    // past them, the next message closes it
    std::thread::sleep(Duration::from_secs(7).saturating_sub(started.elapsed()));
    publisher.cmd_str(&["PUBLISH", "c", "x"]);
    assert_eq!(publisher.cmd_str(&["PUBLISH", "c", "x"]), ":0\r\n");
    assert_closed_by_server(sub);
}

#[test]
fn a_reading_subscriber_survives_traffic_far_above_the_limit() {
    let s = magpie(&["--client-output-buffer-limit-pubsub", "256kb 0 0"]);
    let mut sub = idle_subscriber(&s, "c");
    let mut publisher = s.client();
    let payload = "p".repeat(1000);
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        while got < 5000 {
            let r = sub.read_reply();
            assert!(r.starts_with(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1000\r\n"));
            got += 1;
        }
        sub
    });
    // 5 MB in all, 20 times the limit, each message answered in turn
    for _ in 0..5000 {
        assert_eq!(publisher.cmd_str(&["PUBLISH", "c", &payload]), ":1\r\n");
    }
    let mut sub = reader.join().unwrap();
    assert_eq!(sub.cmd_str(&["PING"]), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}

#[test]
fn lowering_the_limit_with_config_set_applies_to_the_next_message() {
    let s = magpie(&[]);
    let sub = idle_subscriber(&s, "c");
    let mut publisher = s.client();
    let payload = "p".repeat(64 * 1024);
    for _ in 0..200 {
        assert_eq!(publisher.cmd_str(&["PUBLISH", "c", &payload]), ":1\r\n");
    }
    assert_eq!(
        publisher.cmd_str(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 0 0"
        ]),
        "+OK\r\n"
    );
    publisher.cmd_str(&["PUBLISH", "c", &payload]);
    // that message went over the new limit: the subscriber is closed, and
    // its subscription goes once its connection task has ended (a moment
    // later, on another thread)
    let deadline = Instant::now() + Duration::from_secs(5);
    while publisher.cmd_str(&["PUBLISH", "c", "x"]) != ":0\r\n" {
        assert!(
            Instant::now() < deadline,
            "the subscriber is still subscribed 5 s after passing the limit"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_closed_by_server(sub);
}

#[test]
fn client_list_shows_subscriptions() {
    let s = magpie(&[]);
    let mut sub = s.client();
    sub.send_cmd(&[b"SUBSCRIBE", b"a", b"b"]);
    sub.read_reply();
    sub.read_reply();
    sub.send_cmd(&[b"PSUBSCRIBE", b"p*"]);
    sub.read_reply();
    sub.send_cmd(&[b"SSUBSCRIBE", b"s"]);
    sub.read_reply();
    let mut c = s.client();
    let list = c.cmd_str(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert!(
        list.contains(" flags=P db=0 sub=2 psub=1 ssub=1 "),
        "{list}"
    );
    assert_eq!(list.matches("id=").count(), 1);
    let normal = c.cmd_str(&["CLIENT", "LIST", "TYPE", "normal"]);
    assert!(
        normal.contains(" flags=N db=0 sub=0 psub=0 ssub=0 "),
        "{normal}"
    );
    assert_eq!(normal.matches("id=").count(), 1);
    let info = c.cmd_str(&["INFO", "stats"]);
    assert!(info.contains("pubsub_channels:2\r\n"), "{info}");
    assert!(info.contains("pubsub_patterns:1\r\n"), "{info}");
    assert!(info.contains("pubsubshard_channels:1\r\n"), "{info}");
}
