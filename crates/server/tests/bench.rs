//! `magpie bench` end to end with tiny runs: the counts it reports must
//! match what the server itself counted.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{free_port, magpie, memcached, RawClient};

fn bench(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .arg("bench")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start magpie bench");
    let mut child = child;
    for _ in 0..400 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!(
        "magpie bench did not finish: {:?}",
        child.wait_with_output()
    );
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("magpie-bench-{}-{name}", std::process::id()))
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The numeric `INFO stats` fields.
fn info_stats(c: &mut RawClient) -> HashMap<String, u64> {
    let r = c.cmd_str(&["INFO", "stats"]);
    assert!(r.starts_with('$'), "INFO stats: {r}");
    r.lines()
        .filter_map(|l| l.split_once(':'))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect()
}

/// A memcached `stats` reply as name -> value.
fn mc_stats(port: u16) -> HashMap<String, String> {
    let conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect for stats");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = conn.try_clone().unwrap();
    w.write_all(b"stats\r\n").unwrap();
    let mut r = BufReader::new(conn);
    let mut m = HashMap::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.starts_with("END") || line.is_empty() {
            break;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if let ["STAT", k, v] = f[..] {
            m.insert(k.to_string(), v.to_string());
        }
    }
    m
}

/// `magpie bench --json`: stdout must be exactly one JSON document.
fn stdout_json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

fn f64_at(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn redis_counts_match_the_server() {
    let s = magpie(&[]);
    let out = tmp("redis.json");
    let mut c = s.client();
    let before = info_stats(&mut c);
    let o = bench(&[
        "-p",
        &s.port.to_string(),
        "-n",
        "200",
        "-c",
        "2",
        "-t",
        "1",
        "--ratio",
        "1:1",
        "--pipeline",
        "4",
        "--key-pattern",
        "P:P",
        "--key-minimum",
        "1",
        "--key-maximum",
        "400",
        "--json-out-file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("ALL STATS") && text.contains("Totals"),
        "{text}"
    );
    let j = json(&out);
    let _ = std::fs::remove_file(&out);
    let all = &j["ALL STATS"];
    let (sets, gets) = (
        all["Sets"]["Count"].as_u64().unwrap(),
        all["Gets"]["Count"].as_u64().unwrap(),
    );
    assert_eq!((sets, gets), (200, 200));
    // each GET follows the SET of the same key on the same connection
    assert_eq!(all["Gets"]["Hits"].as_u64(), Some(200));
    assert_eq!(all["Gets"]["Misses"].as_u64(), Some(0));
    assert_eq!(all["Totals"]["Errors"].as_u64(), Some(0));

    let after = info_stats(&mut c);
    let delta = |f: &str| {
        let (x, y) = (before.get(f), after.get(f));
        let (Some(x), Some(y)) = (x, y) else {
            panic!("INFO stats lacks {f}: {after:?}");
        };
        y - x
    };
    // +1: the first INFO counts once it has run
    assert_eq!(delta("total_commands_processed"), sets + gets + 1);
    assert_eq!(delta("keyspace_hits"), 200);
    assert_eq!(delta("keyspace_misses"), 0);
    // the server's own view of what was written: P:P gives the two
    // connections keys 1..=200 and 201..=400, and each SET a new key
    assert_eq!(c.cmd_str(&["DBSIZE"]), format!(":{sets}\r\n"));
    assert_eq!(
        c.cmd_str(&["GET", "memtier-100"]).len(),
        "$32\r\n\r\n".len() + 32
    );
    assert_eq!(c.cmd_str(&["GET", "memtier-101"]), "$-1\r\n");
}

#[test]
fn memcache_counts_match_memcached_stats() {
    // the harness starts a real memcached, or says loudly why it cannot
    let Some(mc) = memcached() else {
        return;
    };
    let port = mc.port;
    let out = tmp("mc.json");
    let o = bench(&[
        "-p",
        &port.to_string(),
        "--protocol",
        "memcache_text",
        "-n",
        "60",
        "-c",
        "2",
        "-t",
        "2",
        "--ratio",
        "1:2",
        "--pipeline",
        "3",
        "--key-maximum",
        "50",
        "--data-size-range",
        "10-200",
        "--hide-progress",
        "--json-out-file",
        out.to_str().unwrap(),
    ]);
    let stats = mc_stats(port);
    drop(mc);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = json(&out);
    let _ = std::fs::remove_file(&out);
    let all = &j["ALL STATS"];
    let n = |t: &str, f: &str| all[t][f].as_u64().unwrap().to_string();
    assert_eq!(n("Sets", "Count"), "80");
    assert_eq!(n("Gets", "Count"), "160");
    assert_eq!(stats["cmd_set"], n("Sets", "Count"));
    assert_eq!(stats["cmd_get"], n("Gets", "Count"));
    assert_eq!(stats["get_hits"], n("Gets", "Hits"));
    assert_eq!(stats["get_misses"], n("Gets", "Misses"));
}

#[test]
fn memcache_counts_match_magpies_memcached_stats() {
    let mport = free_port();
    let s = magpie(&["--memcache-port", &mport.to_string()]);
    let before = mc_stats(mport);
    let o = bench(&[
        "-p",
        &mport.to_string(),
        "--protocol",
        "memcache_text",
        "-n",
        "90",
        "-c",
        "2",
        "-t",
        "1",
        "--ratio",
        "1:2",
        "--pipeline",
        "4",
        "--key-maximum",
        "40",
        "--hide-progress",
        "--json",
    ]);
    let after = mc_stats(mport);
    drop(s);
    let j = stdout_json(&o);
    let all = &j["ALL STATS"];
    let n = |t: &str, f: &str| all[t][f].as_u64().unwrap();
    assert_eq!((n("Sets", "Count"), n("Gets", "Count")), (60, 120));
    let delta = |f: &str| {
        let v = |m: &HashMap<String, String>| -> u64 {
            m.get(f)
                .unwrap_or_else(|| panic!("stats lacks {f}: {m:?}"))
                .parse()
                .unwrap()
        };
        v(&after) - v(&before)
    };
    assert_eq!(delta("cmd_set"), n("Sets", "Count"));
    assert_eq!(delta("cmd_get"), n("Gets", "Count"));
    assert_eq!(delta("get_hits"), n("Gets", "Hits"));
    assert_eq!(delta("get_misses"), n("Gets", "Misses"));
    assert_eq!(n("Gets", "Hits") + n("Gets", "Misses"), 120);
}

#[test]
fn json_goes_to_stdout_alone() {
    let s = magpie(&[]);
    let p = s.port.to_string();
    let o = bench(&["-p", &p, "-n", "30", "-c", "1", "-t", "1", "--json"]);
    let j = stdout_json(&o);
    assert_eq!(j["ALL STATS"]["Totals"]["Count"].as_u64(), Some(30));
    assert_eq!(j["configuration"]["port"].as_u64(), Some(s.port as u64));
    // the human table is still shown, on stderr
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ALL STATS") && err.contains("Totals"), "{err}");
    // --csv without a file would share stdout
    let o = bench(&["-p", &p, "-n", "1", "--json", "--csv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--csv"));
}

#[test]
fn open_loop_keeps_to_the_rate() {
    let s = magpie(&[]);
    // 200 req/s for 2 s over 2 connections: 400 sends fall due. Closed
    // loop would do thousands; allow the short run to lose half
    let o = bench(&[
        "-p",
        &s.port.to_string(),
        "--rate",
        "200",
        "--test-time",
        "2",
        "-c",
        "2",
        "-t",
        "1",
        "--pipeline",
        "8",
        "--ratio",
        "1:1",
        "--hide-progress",
        "--json",
    ]);
    let j = stdout_json(&o);
    assert_eq!(j["configuration"]["rate"].as_f64(), Some(200.0));
    let all = &j["ALL STATS"];
    let count = all["Totals"]["Count"].as_u64().unwrap();
    let unsent = all["Unsent"].as_u64().unwrap();
    // every due send was either answered or reported unsent
    assert!(
        (398..=402).contains(&(count + unsent)),
        "{count} + {unsent}"
    );
    assert!((200..=402).contains(&count), "{count} requests");
    let ops = f64_at(&all["Totals"]["Ops/sec"]);
    assert!((100.0..=205.0).contains(&ops), "{ops} ops/s for --rate 200");
    assert!(all["Runtime"]["Total duration"].as_u64().unwrap() >= 2000);
}

#[test]
fn open_loop_charges_a_stall_to_the_requests_behind_it() {
    // a RESP server that reads nothing on a connection for its first
    // 600 ms, then answers +OK to every command (bench connects once to
    // probe, then for the load)
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(600));
                let mut w = s.try_clone().unwrap();
                for line in BufReader::new(s).lines() {
                    let Ok(line) = line else { return };
                    if line.starts_with('*') && w.write_all(b"+OK\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    // one connection, one request in flight, one SET due every 20 ms for
    // 1 s: the 30 due in the stall go out one by one after it
    let o = bench(&[
        "-p",
        &port.to_string(),
        "--rate",
        "50",
        "--test-time",
        "1",
        "-c",
        "1",
        "-t",
        "1",
        "--pipeline",
        "1",
        "--ratio",
        "1:0",
        "--hide-progress",
        "--json",
    ]);
    let j = stdout_json(&o);
    let t = &j["ALL STATS"]["Totals"];
    assert_eq!(t["Count"].as_u64(), Some(50), "{t}");
    assert_eq!(j["ALL STATS"]["Unsent"].as_u64(), Some(0));
    // from the intended send time, requests k = 0..4 waited at least
    // 600 - 20k ms; timed from the wire only the first would look slow
    let p90 = f64_at(&t["Percentile Latencies"]["p90.00"]);
    assert!(p90 >= 400.0, "p90 {p90} ms: the stall was not charged");
    assert!(f64_at(&t["Max Latency"]) >= 590.0, "{t}");
}

/// A keep-alive HTTP/1.1 key-value server good enough to check the HTTP
/// client: PUT stores, GET answers 200 or 404. Counts what it served.
/// PUTs, GET hits and GET misses served.
type Counts = std::sync::Arc<std::sync::Mutex<(u64, u64, u64)>>;

fn http_server() -> (u16, Counts) {
    // an in-process listener: let the kernel pick a free port
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let counts = std::sync::Arc::new(std::sync::Mutex::new((0u64, 0u64, 0u64)));
    let store = std::sync::Arc::new(std::sync::Mutex::new(HashMap::<String, Vec<u8>>::new()));
    let c2 = counts.clone();
    std::thread::spawn(move || {
        for _ in 0..4 {
            let Ok((s, _)) = l.accept() else { return };
            let (counts, store) = (c2.clone(), store.clone());
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                loop {
                    let mut req = String::new();
                    if r.read_line(&mut req).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let path = req.split(' ').nth(1).unwrap().to_string();
                    let mut c = counts.lock().unwrap();
                    let resp = if req.starts_with("PUT ") {
                        c.0 += 1;
                        store.lock().unwrap().insert(path, body);
                        "HTTP/1.1 204 No Content\r\n\r\n".to_string()
                    } else if let Some(v) = store.lock().unwrap().get(&path) {
                        c.1 += 1;
                        format!(
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                            v.len(),
                            String::from_utf8_lossy(v)
                        )
                    } else {
                        c.2 += 1;
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_string()
                    };
                    drop(c);
                    w.write_all(resp.as_bytes()).unwrap();
                }
            });
        }
    });
    (port, counts)
}

#[test]
fn http_counts_match_the_server() {
    let (port, counts) = http_server();
    let out = tmp("http.json");
    let o = bench(&[
        "-p",
        &port.to_string(),
        "--protocol",
        "http",
        "-n",
        "50",
        "-c",
        "2",
        "-t",
        "1",
        "--ratio",
        "1:1",
        "--pipeline",
        "2",
        "--key-maximum",
        "30",
        "--hide-progress",
        "--json-out-file",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = json(&out);
    let _ = std::fs::remove_file(&out);
    let all = &j["ALL STATS"];
    let (puts, hits, misses) = *counts.lock().unwrap();
    assert_eq!(all["Sets"]["Count"].as_u64(), Some(puts));
    assert_eq!(puts, 50);
    assert_eq!(all["Gets"]["Hits"].as_u64(), Some(hits));
    assert_eq!(all["Gets"]["Misses"].as_u64(), Some(misses));
    assert_eq!(hits + misses, 50);
}

#[test]
fn compare_writes_a_self_contained_report() {
    let (a, b) = (magpie(&[]), magpie(&[]));
    let html = tmp("report.html");
    let out = tmp("compare.json");
    // one target named, the other labelled by what the server says it is
    let targets = format!("first=127.0.0.1:{},localhost:{}:redis", a.port, b.port);
    let o = bench(&[
        "--compare",
        &targets,
        "--compare-rounds",
        "2",
        "-n",
        "20",
        "-c",
        "1",
        "-t",
        "1",
        "--hide-progress",
        "--report-out",
        html.to_str().unwrap(),
        "--json-out-file",
        out.to_str().unwrap(),
        "--csv",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("COMPARISON"), "{stdout}");
    assert!(stdout.contains("target,type,count"), "{stdout}");
    let page = std::fs::read_to_string(&html).unwrap();
    let j = json(&out);
    let _ = (std::fs::remove_file(&html), std::fs::remove_file(&out));
    let runs = j["compare"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["rounds ops/sec"].as_array().unwrap().len(), 2);
        assert_eq!(r["ALL STATS"]["Totals"]["Count"].as_u64(), Some(40));
    }
    let version = env!("CARGO_PKG_VERSION");
    let auto = format!("magpie {version} localhost:{}", b.port);
    assert_eq!(runs[0]["target"], "first");
    assert_eq!(runs[1]["target"], auto.as_str());
    assert_eq!(
        runs[0]["detail"],
        format!("127.0.0.1:{} redis, magpie {version}", a.port).as_str()
    );
    // both labels on the bars, the legend and in the table
    assert!(page.matches(">first<").count() >= 3, "{page}");
    assert!(page.matches(&format!(">{auto}<")).count() >= 3, "{page}");
    // the command that made it, as given
    let cmd = format!("magpie bench --compare {targets} --compare-rounds 2 -n 20");
    assert!(page.contains(&format!("<pre>{cmd}")), "{page}");
    assert_eq!(
        j["command"].as_str().map(|c| c.starts_with(&cmd)),
        Some(true)
    );
    assert!(page.contains("<svg"));
    assert!(
        !page.contains("src=") && !page.contains("<link") && !page.contains("url("),
        "no external assets"
    );
    // no address but the SVG namespace name, which is never fetched
    let rest = page.replace(r#"xmlns="http://www.w3.org/2000/svg""#, "");
    assert!(!rest.contains("http://") && !rest.contains("https://"));

    // two targets with one label could not be told apart
    let o = bench(&[
        "--compare",
        &format!("x=127.0.0.1:{0},x=127.0.0.1:{0}", a.port),
        "-n",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("labelled 'x'"));
}

#[test]
fn refuses_unsafe_or_unbounded_runs() {
    let o = bench(&["-s", "192.0.2.1", "-n", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--allow-remote"));
    let o = bench(&["-n", "0"]);
    assert_eq!(o.status.code(), Some(1));
    let o = bench(&["-n", "5", "--test-time", "5"]);
    assert!(!o.status.success());
    let p = free_port().to_string();
    let o = bench(&["-p", &p, "-n", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Connection refused"));
}
