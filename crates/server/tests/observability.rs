//! What commands leave behind: INFO commandstats / latencystats, SLOWLOG
//! and the sampled command log, compared with a real redis-server where
//! Redis has the same thing, and the same figures in `/v1/stats` and
//! `/metrics` for all three front doors.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `cmdstat_<name>` -> (calls, rejected_calls, failed_calls) from INFO
/// commandstats.
fn commandstats(c: &mut RawClient) -> Vec<(String, u64, u64, u64)> {
    let info = String::from_utf8(c.cmd(&["INFO", "commandstats"])).unwrap();
    let mut out = Vec::new();
    for line in info.lines() {
        let Some(rest) = line.strip_prefix("cmdstat_") else {
            continue;
        };
        let (name, fields) = rest.split_once(':').unwrap();
        let field = |f: &str| -> u64 {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{f}=")))
                .unwrap_or_else(|| panic!("{f} in {line}"))
                .parse()
                .unwrap()
        };
        for f in ["usec", "usec_per_call"] {
            assert!(fields.contains(&format!("{f}=")), "{f} in {line}");
        }
        out.push((
            name.to_owned(),
            field("calls"),
            field("rejected_calls"),
            field("failed_calls"),
        ));
    }
    out.sort();
    out
}

/// The SLOWLOG GET entries' argument lists, newest first, parsed from the
/// raw RESP2 reply; also checks each entry's shape.
fn slowlog_args(c: &mut RawClient) -> Vec<Vec<String>> {
    let raw = c.cmd(&["SLOWLOG", "GET", "-1"]);
    let mut p = Reply { buf: &raw, pos: 0 };
    let n = p.header(b'*');
    (0..n)
        .map(|_| {
            assert_eq!(p.header(b'*'), 6, "six fields per entry");
            let id = p.int();
            let time = p.int();
            let us = p.int();
            assert!(id >= 0 && time > 1_600_000_000 && us >= 0);
            let argc = p.header(b'*');
            let args = (0..argc).map(|_| p.bulk()).collect();
            assert!(p.bulk().starts_with("127.0.0.1:"), "client address");
            p.bulk();
            args
        })
        .collect()
}

/// A tiny RESP2 reader for the replies above.
struct Reply<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reply<'_> {
    fn line(&mut self) -> &str {
        let start = self.pos;
        while &self.buf[self.pos..self.pos + 2] != b"\r\n" {
            self.pos += 1;
        }
        self.pos += 2;
        std::str::from_utf8(&self.buf[start..self.pos - 2]).unwrap()
    }
    fn header(&mut self, kind: u8) -> i64 {
        let line = self.line();
        assert_eq!(line.as_bytes()[0], kind, "{line}");
        line[1..].parse().unwrap()
    }
    fn int(&mut self) -> i64 {
        self.header(b':')
    }
    fn bulk(&mut self) -> String {
        let len = self.header(b'$') as usize;
        let s = String::from_utf8_lossy(&self.buf[self.pos..self.pos + len]).into_owned();
        self.pos += len + 2;
        s
    }
}

const SCRIPT: &[&[&str]] = &[
    &["SET", "a", "1"],
    &["GET", "a"],
    &["GET", "nosuch"],
    &["INCR", "a"],
    &["SET", "s", "x"],
    &["INCR", "s"],
    &["GET"],
    &["SET", "a"],
    &["DEL", "a", "s"],
    &["NOSUCHCOMMAND", "x"],
    &["EXPIRE", "a", "x"],
];

#[test]
fn commandstats_count_calls_rejections_and_failures_as_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let mut results = Vec::new();
    for server in [&redis, &ours] {
        let mut c = server.client();
        assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
        for cmd in SCRIPT {
            c.cmd(cmd);
        }
        let stats: Vec<_> = commandstats(&mut c)
            .into_iter()
            // CONFIG RESETSTAT itself and INFO are counted differently
            // (Redis names subcommands config|resetstat)
            .filter(|(name, ..)| !name.starts_with("config") && name != "info")
            .collect();
        results.push(stats);
    }
    assert_eq!(results[1], results[0]);
    // they are not empty: get ran 2 times, was rejected once
    assert!(
        results[0].contains(&("get".into(), 2, 1, 0)),
        "{:?}",
        results[0]
    );
    assert!(
        results[0].contains(&("incr".into(), 2, 0, 1)),
        "{:?}",
        results[0]
    );
}

#[test]
fn plain_info_leaves_out_commandstats_and_latencystats_as_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    for server in [&redis, &ours] {
        let mut c = server.client();
        c.cmd(&["PING"]);
        let sections = |c: &mut RawClient, args: &[&str]| -> Vec<String> {
            String::from_utf8(c.cmd(args))
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix("# ").map(str::to_owned))
                .collect()
        };
        let plain = sections(&mut c, &["INFO"]);
        assert!(!plain.contains(&"Commandstats".to_string()), "{plain:?}");
        assert!(!plain.contains(&"Latencystats".to_string()), "{plain:?}");
        let default = sections(&mut c, &["INFO", "default"]);
        assert_eq!(default, plain);
        let all = sections(&mut c, &["INFO", "everything"]);
        let pos = |s: &str| all.iter().position(|x| x == s).unwrap();
        assert!(pos("Commandstats") < pos("Latencystats"));
        assert!(pos("Latencystats") < pos("Keyspace"));
        let latency = String::from_utf8(c.cmd(&["INFO", "latencystats"])).unwrap();
        let ping = latency
            .lines()
            .find_map(|l| l.strip_prefix("latency_percentiles_usec_ping:"))
            .unwrap_or_else(|| panic!("ping in {latency}"));
        let q: Vec<f64> = ping
            .split(',')
            .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
            .collect();
        assert_eq!(q.len(), 3, "{ping}");
        assert!(q[0] > 0.0 && q[0] <= q[1] && q[1] <= q[2], "{ping}");
    }
}

#[test]
fn slowlog_records_what_redis_records() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let long = "v".repeat(200);
    let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let mut logs = Vec::new();
    for server in [&redis, &ours] {
        let mut c = server.client();
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
            b"+OK\r\n"
        );
        c.cmd(&["SLOWLOG", "RESET"]);
        c.cmd(&["SET", "a", &long]);
        c.cmd(&["GET", "a"]);
        let mut del = vec!["DEL"];
        del.extend(many.iter().map(String::as_str));
        c.cmd(&del);
        c.cmd(&["CLIENT", "SETNAME", "observer"]);
        c.cmd(&["PING"]);
        let log = slowlog_args(&mut c);
        // SLOWLOG GET itself is logged once it has run
        assert_eq!(
            c.cmd(&["SLOWLOG", "LEN"]),
            format!(":{}\r\n", log.len() + 1).into_bytes()
        );
        // the client name is recorded with the entry
        let raw = String::from_utf8_lossy(&c.cmd(&["SLOWLOG", "GET", "1"])).into_owned();
        assert!(raw.contains("observer"), "{raw}");
        // a length limit drops the oldest
        c.cmd(&["CONFIG", "SET", "slowlog-max-len", "2"]);
        assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), b":2\r\n");
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
        c.cmd(&["SLOWLOG", "RESET"]);
        c.cmd(&["GET", "a"]);
        assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), b":0\r\n");
        logs.push(log);
    }
    assert_eq!(logs[1], logs[0]);
    let set = logs[0].iter().find(|a| a[0] == "SET").unwrap();
    assert_eq!(set[2], format!("{}... (72 more bytes)", "v".repeat(128)));
    let del = logs[0].iter().find(|a| a[0] == "DEL").unwrap();
    assert_eq!(del.len(), 32);
    assert_eq!(del[31], "... (10 more arguments)");
}

#[test]
fn slowlog_and_command_log_errors_match_redis() {
    differential(
        "SLOWLOG
SLOWLOG FOO
SLOWLOG HELP
SLOWLOG HELP x
SLOWLOG LEN x
SLOWLOG RESET x
SLOWLOG GET x
SLOWLOG GET -2
SLOWLOG GET 1.5
SLOWLOG GET 1 2
CONFIG GET slowlog-log-slower-than
CONFIG GET slowlog-max-len
CONFIG SET slowlog-log-slower-than -2
CONFIG SET slowlog-log-slower-than x
CONFIG SET slowlog-max-len -1
CONFIG SET slowlog-max-len 0
SLOWLOG RESET
GET a
SLOWLOG LEN
SLOWLOG GET
SLOWLOG GET 0
CONFIG SET slowlog-max-len 128 slowlog-log-slower-than 10000",
    );
}

#[test]
fn memcached_and_http_commands_reach_the_slowlog_and_the_statistics() {
    let (server, mc_port) = magpie_mc(&["--slowlog-log-slower-than", "0"]);
    let mut mc = McRaw::connect(mc_port);
    assert_eq!(mc.request(b"set k 0 0 1\r\nv\r\n"), b"STORED\r\n");
    assert_eq!(
        mc.request(b"get k nosuch\r\n"),
        b"VALUE k 0 1\r\nv\r\nEND\r\n"
    );
    assert_eq!(
        mc.request(b"incr k 1\r\n"),
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
    let mut c = server.client();
    let log = slowlog_args(&mut c);
    // McRaw ends each request with `mn` to find the end of the replies;
    // those are real commands and are logged too
    let lines: Vec<String> = log
        .iter()
        .map(|a| a.join(" "))
        .filter(|l| l != "mn")
        .collect();
    assert_eq!(lines[..3], ["incr k 1", "get k nosuch", "set k 0 0 1"]);
    let stats = commandstats(&mut c);
    for want in [
        ("memcache_set".to_string(), 1, 0, 0),
        ("memcache_get".to_string(), 1, 0, 0),
        ("memcache_incr".to_string(), 1, 0, 1),
    ] {
        assert!(stats.contains(&want), "{want:?} in {stats:?}");
    }
}

/// Sends one HTTP/1.1 request and returns the status and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[test]
fn metrics_and_stats_show_every_door_per_command() {
    let http_port = free_port();
    let (server, mc_port) = magpie_mc(&["--http-port", &http_port.to_string()]);
    let mut c = server.client();
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET"]);
    McRaw::connect(mc_port).request(b"get a\r\n");
    assert_eq!(http(http_port, "PUT", "/v1/keys/b", "x").0, 201);
    assert_eq!(http(http_port, "GET", "/v1/keys/nosuch", "").0, 404);
    assert_eq!(http(http_port, "GET", "/v1/keys?count=abc", "").0, 400);

    let (status, metrics) = http(http_port, "GET", "/metrics", "");
    assert_eq!(status, 200);
    for want in [
        "magpie_commands_total{door=\"resp\",command=\"get\"} 1",
        "magpie_command_rejections_total{door=\"resp\",command=\"get\"} 1",
        "magpie_commands_total{door=\"memcache\",command=\"get\"} 1",
        "magpie_commands_total{door=\"http\",command=\"keys_put\"} 1",
        "magpie_commands_total{door=\"http\",command=\"keys_get\"} 1",
        "magpie_command_failures_total{door=\"http\",command=\"keys_get\"} 0",
        "magpie_command_failures_total{door=\"http\",command=\"keys_list\"} 1",
        "magpie_command_duration_seconds_bucket{door=\"resp\",command=\"get\",le=\"+Inf\"} 1",
        "magpie_command_duration_seconds_count{door=\"resp\",command=\"set\"} 1",
        "# TYPE magpie_command_duration_seconds histogram",
    ] {
        assert!(metrics.contains(want), "{want} in /metrics:\n{metrics}");
    }
    // histogram buckets are cumulative and end at the count
    let buckets: Vec<u64> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("magpie_command_duration_seconds_bucket{door=\"resp\",command=\"set\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.len() > 20, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(*buckets.last().unwrap(), 1);

    let (_, stats) = http(http_port, "GET", "/v1/stats", "");
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["commands"]["resp"]["get"]["calls"], 1);
    assert_eq!(v["commands"]["resp"]["get"]["rejected"], 1);
    assert_eq!(v["commands"]["memcache"]["get"]["calls"], 1);
    assert_eq!(v["commands"]["http"]["keys_put"]["calls"], 1);
    assert!(v["commands"]["resp"]["set"]["p99_us"].as_f64().unwrap() > 0.0);
    assert_eq!(v["persistence"]["enabled"], false);
}

/// Spawns magpie with its log going to `--log-file` (not stderr) and waits
/// for the file to say it is ready.
fn spawn_logging_to(file: &std::path::Path, extra: &[&str]) -> (std::process::Child, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .arg("serve")
        .args(["--ephemeral", "--memcache-port", "0", "--http-port", "0"])
        .args(["--port", &port.to_string()])
        .arg("--log-file")
        .arg(file)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

fn wait_for_text(path: &std::path::Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(text) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{text:?} not in {}:\n{log}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sampled_command_log_writes_one_in_n_to_the_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("magpie.log");
    let (mut child, port) = spawn_logging_to(&file, &["--command-log-sample", "3"]);
    wait_for_text(&file, "magpie ready");
    let mut c = RawClient::connect(port);
    for i in 0..6 {
        c.cmd(&["SET", &format!("key{i}"), "v"]);
    }
    c.cmd(&["GET", "key0"]);
    c.cmd(&["GET", "key1"]);
    // the 9th command would be sampled, but AUTH is never logged
    c.cmd(&["AUTH", "secret-password"]);
    c.cmd(&["GET", "key2"]);
    c.cmd(&["GET", "key3"]);
    c.cmd(&["GET", "key4"]);
    c.cmd(&["CONFIG", "SET", "command-log-sample", "0"]);
    for _ in 0..5 {
        c.cmd(&["GET", "after"]);
    }
    let log = wait_for_text(&file, "command=\"GET key4\"");
    let sampled: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("sampled command"))
        .collect();
    // commands 3, 6 and 12 of this connection: AUTH (9th) is skipped and
    // the countdown starts again after it
    assert_eq!(sampled.len(), 3, "{log}");
    assert!(
        sampled[0].contains("command=\"SET key2 v\""),
        "{}",
        sampled[0]
    );
    assert!(
        sampled[1].contains("command=\"SET key5 v\""),
        "{}",
        sampled[1]
    );
    assert!(
        sampled[2].contains("command=\"GET key4\""),
        "{}",
        sampled[2]
    );
    for l in &sampled {
        assert!(l.contains("door=resp") && l.contains("duration_us="), "{l}");
        assert!(l.contains("target=magpie::commands"), "{l}");
    }
    assert!(!log.contains("secret-password"), "{log}");
    assert!(
        !log.contains("after"),
        "sampling stops once turned off:\n{log}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn daily_rotation_names_the_log_file_by_date() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.log");
    let (mut child, _) =
        spawn_logging_to(&file, &["--log-rotation", "daily", "--log-max-files", "3"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let dated = loop {
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if let Some(n) = names.iter().find(|n| n.starts_with("server.log.")) {
            break dir.path().join(n);
        }
        assert!(Instant::now() < deadline, "no dated file in {names:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let suffix = dated.file_name().unwrap().to_string_lossy()["server.log.".len()..].to_owned();
    // YYYY-MM-DD
    assert_eq!(suffix.len(), 10, "{suffix}");
    assert!(suffix
        .chars()
        .enumerate()
        .all(|(i, ch)| if i == 4 || i == 7 {
            ch == '-'
        } else {
            ch.is_ascii_digit()
        }));
    wait_for_text(&dated, "magpie ready");
    assert!(!file.exists(), "the undated name is not used with rotation");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_log_file_in_a_missing_directory_stops_the_start() {
    let out = failed_serve(&["--log-file", "/nonexistent-dir/magpie.log"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open log file /nonexistent-dir/magpie.log"),
        "{err}"
    );
}

/// `aof_fsyncs` from INFO persistence.
fn aof_fsyncs(c: &mut RawClient) -> u64 {
    let info = String::from_utf8(c.cmd(&["INFO", "persistence"])).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("aof_fsyncs:"))
        .unwrap_or_else(|| panic!("no aof_fsyncs in {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// INFO persistence counts the log's fsyncs, so an operator can see how
/// many writes each group commit carries under `appendfsync always`: one
/// fsync per write when writes come one at a time, far fewer than writes
/// when they are pipelined.
#[test]
fn info_persistence_counts_fsyncs_per_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let s = magpie(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--appendfsync",
        "always",
    ]);
    let mut c = s.client();
    let start = aof_fsyncs(&mut c);
    for i in 0..20 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), b"+OK\r\n");
    }
    // each SET was acknowledged after a commit of its own
    assert_eq!(aof_fsyncs(&mut c) - start, 20);
    let start = aof_fsyncs(&mut c);
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend(encode(&[b"SET", format!("p{i}").as_bytes(), b"v"]));
    }
    c.send(&batch);
    for _ in 0..200 {
        assert_eq!(c.read_reply(), b"+OK\r\n");
    }
    let fsyncs = aof_fsyncs(&mut c) - start;
    assert!(
        (1..20).contains(&fsyncs),
        "{fsyncs} fsyncs for 200 pipelined SETs"
    );
}
