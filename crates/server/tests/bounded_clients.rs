//! Bounded clients: Redis's idle `timeout` on the RESP and memcached doors
//! (live clients stay, idle ones are closed, CONFIG SET changes it), and
//! ten thousand idle connections held and then shed by it.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Waits until the server closes `s` (EOF or reset), at most `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn idle_clients_are_closed_after_timeout_on_resp_and_memcached() {
    let (s, mc) = magpie_mc(&["--timeout", "1"]);
    let mut c = s.client();
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "timeout"]),
        "*2\r\n$7\r\ntimeout\r\n$1\r\n1\r\n"
    );
    let mut idle = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut idle_mc = TcpStream::connect(("127.0.0.1", mc)).unwrap();
    // a client that keeps talking stays
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)),
        "idle RESP client closed"
    );
    assert!(
        closed_within(&mut idle_mc, Duration::from_secs(3)),
        "idle memcached client closed"
    );
    // 0 turns it off again
    assert_eq!(c.cmd(&["CONFIG", "SET", "timeout", "0"]), b"+OK\r\n");
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "timeout", "-1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive\r\n"
    );
    let mut kept = s.client();
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(kept.cmd(&["PING"]), b"+PONG\r\n");
}

/// Raises this process's open-file limit (the server inherits it).
fn raise_fd_limit(want: u64) -> bool {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return false;
        }
        if l.rlim_cur >= want {
            return true;
        }
        l.rlim_cur = want;
        if l.rlim_max < want {
            l.rlim_max = want;
        }
        libc::setrlimit(libc::RLIMIT_NOFILE, &l) == 0
    }
}

fn connected_clients(c: &mut RawClient) -> u64 {
    let info = c.cmd_str(&["INFO", "clients"]);
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{info}"))
}

#[test]
fn ten_thousand_idle_connections_are_held_then_shed_by_timeout() {
    const N: usize = 10_000;
    if !raise_fd_limit(2 * N as u64 + 1000) {
        eprintln!("\n*** SKIPPED 10,000 idle connections: cannot raise the open-file limit ***\n");
        return;
    }
    let s = magpie(&["--timeout", "3", "--maxclients", "10001"]);
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        match TcpStream::connect(("127.0.0.1", s.port)) {
            Ok(c) => conns.push(c),
            Err(e) => panic!("connection {i}: {e}"),
        }
    }
    let mut c = s.client();
    // the server holds them all and still answers
    let deadline = Instant::now() + Duration::from_secs(20);
    while connected_clients(&mut c) < N as u64 + 1 {
        assert!(
            Instant::now() < deadline,
            "{} clients",
            connected_clients(&mut c)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // one more is over maxclients
    let mut over = s.client();
    assert_eq!(over.read_reply(), b"-ERR max number of clients reached\r\n");
    // the idle ones are closed by the timeout; this one keeps talking
    let deadline = Instant::now() + Duration::from_secs(30);
    while connected_clients(&mut c) > 1 {
        assert!(
            Instant::now() < deadline,
            "{} clients left",
            connected_clients(&mut c)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(conns);
}
