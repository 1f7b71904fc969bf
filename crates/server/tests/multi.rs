//! MULTI/EXEC across doors, over real sockets: a WATCH is broken by a
//! memcached `set` and by an HTTP PUT of the watched key, and no memcached
//! or HTTP write lands in the middle of an EXEC.

mod common;

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// magpie with its memcached and HTTP doors on free ports: (server,
/// memcached port, HTTP port).
fn three_doors() -> (Server, u16, u16) {
    let (mc, http) = (free_port(), free_port());
    let (mc_s, http_s) = (mc.to_string(), http.to_string());
    let server = magpie(&["--memcache-port", &mc_s, "--http-port", &http_s]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(Instant::now() < deadline, "HTTP port never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, mc, http)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn http_put(agent: &ureq::Agent, port: u16, key: &str, value: &str) -> u16 {
    agent
        .put(format!("http://127.0.0.1:{port}/v1/keys/{key}"))
        .send(value)
        .expect("PUT")
        .status()
        .as_u16()
}

/// WATCH `key`, let `write` change it through another door, and EXEC.
fn watch_then(c: &mut RawClient, key: &str, write: impl FnOnce()) -> Vec<u8> {
    assert_eq!(c.cmd(&["WATCH", key]), b"+OK\r\n");
    write();
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", key, "from-exec"]), b"+QUEUED\r\n");
    c.cmd(&["EXEC"])
}

#[test]
fn a_memcached_set_and_an_http_put_break_a_watch() {
    let (server, mc, http) = three_doors();
    let mut c = server.client();
    let mut m = McRaw::connect(mc);
    let agent = agent();

    // memcached set of an absent key, then of an existing one
    let got = watch_then(&mut c, "k", || {
        assert_eq!(m.request(b"set k 0 0 2\r\nmc\r\n"), b"STORED\r\n");
    });
    assert_eq!(got, b"*-1\r\n");
    let got = watch_then(&mut c, "k", || {
        assert_eq!(m.request(b"set k 0 0 3\r\nmc2\r\n"), b"STORED\r\n");
    });
    assert_eq!(got, b"*-1\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), b"$3\r\nmc2\r\n", "EXEC wrote nothing");
    // memcached touch changes only the TTL: Redis's EXPIRE breaks a watch too
    let got = watch_then(&mut c, "k", || {
        assert_eq!(m.request(b"touch k 100\r\n"), b"TOUCHED\r\n");
    });
    assert_eq!(got, b"*-1\r\n");

    // HTTP PUT
    let got = watch_then(&mut c, "h", || {
        assert_eq!(http_put(&agent, http, "h", "x"), 201)
    });
    assert_eq!(got, b"*-1\r\n");
    let got = watch_then(&mut c, "h", || {
        assert_eq!(http_put(&agent, http, "h", "y"), 204)
    });
    assert_eq!(got, b"*-1\r\n");
    assert_eq!(c.cmd(&["GET", "h"]), b"$1\r\ny\r\n");

    // with nothing in between, the same transaction runs
    let got = watch_then(&mut c, "h", || {});
    assert_eq!(got, b"*1\r\n+OK\r\n");
    let got = agent
        .get(format!("http://127.0.0.1:{http}/v1/keys/h"))
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap();
    assert_eq!(got, b"from-exec");
}

/// The elements of EXEC's reply of bulk strings and integers, as text.
fn elements(reply: &[u8]) -> Vec<String> {
    let s = std::str::from_utf8(reply).unwrap();
    let mut lines = s.split("\r\n");
    assert!(lines.next().unwrap().starts_with('*'), "{s}");
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        match l.as_bytes().first() {
            Some(b'$') => out.push(lines.next().unwrap().to_owned()),
            Some(b':') => out.push(l[1..].to_owned()),
            Some(_) => panic!("unexpected element {l:?} in {s}"),
            None => {}
        }
    }
    out
}

#[test]
fn no_memcached_or_http_write_interleaves_with_exec() {
    let (server, mc, http) = three_doors();
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "mc-counter", "0"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "http-counter", "0"]), b"+OK\r\n");
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let mc_writer = {
        let (stop, writes) = (stop.clone(), writes.clone());
        std::thread::spawn(move || {
            let mut m = McRaw::connect(mc);
            while !stop.load(Ordering::Relaxed) {
                let r = m.request(b"incr mc-counter 1\r\n");
                assert!(r.ends_with(b"\r\n") && r[0].is_ascii_digit(), "{r:?}");
                writes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let http_writer = {
        let (stop, writes) = (stop.clone(), writes.clone());
        std::thread::spawn(move || {
            let agent = agent();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let status = http_put(&agent, http, "http-counter", &n.to_string());
                assert_eq!(status, 204);
                writes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut queued: Vec<Vec<&[u8]>> =
        vec![vec![b"GET", b"mc-counter"], vec![b"GET", b"http-counter"]];
    let names: Vec<String> = (0..5).map(|i| format!("x{i}")).collect();
    queued.extend(names.iter().map(|k| vec![&b"INCR"[..], k.as_bytes()]));
    queued.extend([
        vec![&b"GET"[..], b"mc-counter"],
        vec![b"GET", b"http-counter"],
    ]);
    let mut batch = encode(&[b"MULTI"]);
    for q in &queued {
        batch.extend_from_slice(&encode(q));
    }
    batch.extend_from_slice(&encode(&[b"EXEC"]));
    let (mut seen_mc, mut seen_http) = (Vec::new(), Vec::new());
    for round in 1..=300u64 {
        c.send(&batch);
        assert_eq!(c.read_reply(), b"+OK\r\n");
        for _ in &queued {
            assert_eq!(c.read_reply(), b"+QUEUED\r\n");
        }
        let got = elements(&c.read_reply());
        assert_eq!(got.len(), 9);
        // the other doors' counters read the same before and after the INCRs
        assert_eq!((&got[0], &got[1]), (&got[7], &got[8]), "round {round}");
        for x in &got[2..7] {
            assert_eq!(x, &round.to_string(), "every INCR of the round ran");
        }
        seen_mc.push(got[0].clone());
        seen_http.push(got[1].clone());
    }
    stop.store(true, Ordering::Relaxed);
    mc_writer.join().unwrap();
    http_writer.join().unwrap();
    // the writers did run while the transactions did (so the check could fail)
    seen_mc.dedup();
    seen_http.dedup();
    assert!(writes.load(Ordering::Relaxed) > 0);
    assert!(
        seen_mc.len() > 1 && seen_http.len() > 1,
        "the counters moved between rounds"
    );
}

#[test]
fn a_tag_or_prefix_invalidation_breaks_a_watch() {
    let server = magpie(&[]);
    let mut c = server.client();
    assert_eq!(c.cmd(&["SET", "cart:1", "x", "TAGS", "cart"]), b"+OK\r\n");
    let got = watch_then(&mut c, "cart:1", || {
        let mut other = server.client();
        assert_eq!(other.cmd(&["INVALIDATE", "TAG", "cart"])[0], b':');
    });
    assert_eq!(got, b"*-1\r\n");
    assert_eq!(c.cmd(&["SET", "user:1", "x"]), b"+OK\r\n");
    let got = watch_then(&mut c, "user:1", || {
        let mut other = server.client();
        assert_eq!(other.cmd(&["INVALIDATE", "PREFIX", "user:"])[0], b':');
    });
    assert_eq!(got, b"*-1\r\n");
    // and inside EXEC an invalidation runs like any command
    assert_eq!(c.cmd(&["SET", "cart:2", "y", "TAGS", "cart"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["INVALIDATE", "TAG", "cart"]), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&["GET", "cart:2"]), b"+QUEUED\r\n");
    let exec = c.cmd(&["EXEC"]);
    assert!(
        exec.ends_with(b"$-1\r\n"),
        "{}",
        String::from_utf8_lossy(&exec)
    );
}
