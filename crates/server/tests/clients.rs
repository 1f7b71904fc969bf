//! Real clients against magpie: the `redis` crate (sync API, pipelining,
//! RESP3), `redis-cli` (one-shot and piped) and a tiny `redis-benchmark`
//! run, as a compatibility check (counts stay small: not a benchmark).

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::*;

/// True if `tool` can be run. In CI (CI=true) a missing tool is a failure;
/// elsewhere the test says loudly that it was skipped.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{tool} is not installed but CI=true: .ci/run must install it");
        }
        eprintln!("\n*** SKIPPED client test: {tool} is not installed (apt-get install redis-tools) ***\n");
    }
    found
}

fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {tool}: {e}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{tool} {args:?} failed: {out:?}");
    out
}

#[test]
fn redis_crate_commands_pipelines_and_resp3() {
    let s = magpie(&[]);
    let client = redis::Client::open(s.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "v");
    let missing: Option<String> = redis::cmd("GET").arg("nope").query(&mut con).unwrap();
    assert_eq!(missing, None);
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    // pipelined: many commands, one round trip, replies in order
    let mut p = redis::pipe();
    for i in 0..50 {
        p.cmd("SET").arg(format!("p{i}")).arg(i).ignore();
    }
    for i in 0..50 {
        p.cmd("GET").arg(format!("p{i}"));
    }
    let got: Vec<i64> = p.query(&mut con).unwrap();
    assert_eq!(got, (0..50).collect::<Vec<i64>>());
    // errors come back as errors with Redis's text
    let err = redis::cmd("SELECT")
        .arg(99)
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string().contains("DB index is out of range"),
        "{err}"
    );
    // the crate announced itself with CLIENT SETINFO on connect
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut con).unwrap();
    assert!(info.contains(" lib-name=redis-rs "), "{info}");

    // RESP3 via HELLO 3 (the crate sends it when asked for protocol=resp3)
    let url = format!("{}?protocol=resp3", s.url());
    let mut con3 = redis::Client::open(url).unwrap().get_connection().unwrap();
    let () = redis::cmd("SET")
        .arg("k3")
        .arg("v3")
        .query(&mut con3)
        .unwrap();
    let v: String = redis::cmd("GET").arg("k3").query(&mut con3).unwrap();
    assert_eq!(v, "v3");
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut con3).unwrap();
    assert!(info.contains(" resp=3 "), "{info}");
    let hello: redis::Value = redis::cmd("HELLO").arg(3).query(&mut con3).unwrap();
    assert!(matches!(hello, redis::Value::Map(_)), "{hello:?}");
    let config: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hz")
        .query(&mut con3)
        .unwrap();
    assert_eq!(config.get("hz").map(String::as_str), Some("10"));
}

#[test]
fn redis_cli_one_shot_and_piped() {
    if !have("redis-cli") {
        return;
    }
    let s = magpie(&[]);
    let port = s.port.to_string();
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["-p", port.as_str()];
        all.extend_from_slice(args);
        String::from_utf8(run("redis-cli", &all, stdin).stdout).unwrap()
    };
    assert_eq!(cli(&["SET", "k", "hello world"], None), "OK\n");
    assert_eq!(cli(&["GET", "k"], None), "hello world\n");
    assert_eq!(cli(&["--raw", "GET", "k"], None), "hello world\n");
    assert_eq!(cli(&["GET", "missing"], None), "\n");
    assert_eq!(cli(&["--no-raw", "GET", "missing"], None), "(nil)\n");
    assert_eq!(cli(&["--no-raw", "GET", "k"], None), "\"hello world\"\n");
    assert!(cli(&["INFO", "server"], None).contains("redis_version:7.0.15"));
    // commands piped on stdin run in order on one connection
    let piped = cli(
        &[],
        Some("SET a 1\nGET a\nSELECT 2\nGET a\nCLIENT SETNAME cli\nCLIENT GETNAME\n"),
    );
    assert_eq!(piped, "OK\n1\nOK\n\nOK\ncli\n");
}

#[test]
fn redis_benchmark_small_run_completes_without_errors() {
    if !have("redis-benchmark") {
        return;
    }
    let s = magpie(&[]);
    let port = s.port.to_string();
    let out = run(
        "redis-benchmark",
        &["-p", &port, "-n", "2000", "-c", "5", "-t", "set,get", "-q"],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("SET: ") && stdout.contains("GET: "),
        "{stdout}"
    );
    assert!(
        !stdout.to_lowercase().contains("error") && !stderr.to_lowercase().contains("error"),
        "{stdout}\n{stderr}"
    );
    // every request reached the server
    let mut c = s.client();
    let stats = c.cmd_str(&["INFO", "stats"]);
    let processed: u64 = stats
        .split("\r\n")
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(processed >= 4000, "{stats}");
}
