//! SIGINT and SIGTERM against the real binary: magpie exits 0 promptly,
//! logs why it stopped, and (with persistence on, under the default
//! `appendfsync everysec`) every write acknowledged before the signal is
//! there after a restart on the same directory.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Waits up to `limit` for the server process to exit; returns its status.
fn wait_exit(s: &mut Server, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "magpie still running {limit:?} after the signal"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stops_gracefully_on(signal: libc::c_int, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut s = magpie(&["--dir", d]);
    let mut c = s.client();
    // a pipelined batch acknowledged just before the signal: under
    // everysec it is not yet fsynced when the signal arrives
    let mut batch = Vec::new();
    for i in 0..1000 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        batch.extend_from_slice(&encode(&[b"SET", k.as_bytes(), v.as_bytes()]));
    }
    c.send(&batch);
    for _ in 0..1000 {
        assert_eq!(c.read_reply(), b"+OK\r\n");
    }
    assert_eq!(c.cmd(&["SET", "last", name]), b"+OK\r\n");
    assert_eq!(c.cmd(&["PEXPIRE", "last", "600000"]), b":1\r\n");
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid has no memory-safety concerns
    let rc = unsafe { libc::kill(s.child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill");
    let status = wait_exit(&mut s, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{name}: {status}");
    eprintln!("{name}: exited in {:?}", sent.elapsed());
    let log = std::fs::read_to_string(log_path(s.port)).unwrap();
    assert!(
        log.contains(&format!("{name} received, shutting down")),
        "{name} logged:\n{log}"
    );
    assert!(log.contains("magpie stopped"), "{log}");
    // the connection was closed by the shutdown
    assert_eq!(c.read_to_close(), b"");
    drop(s);

    let s = magpie(&["--dir", d]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["DBSIZE"]), b":1001\r\n");
    assert_eq!(c.cmd(&["GET", "k0"]), b"$2\r\nv0\r\n");
    assert_eq!(c.cmd(&["GET", "k999"]), b"$4\r\nv999\r\n");
    assert_eq!(
        c.cmd(&["GET", "last"]),
        format!("${}\r\n{name}\r\n", name.len()).into_bytes()
    );
    let ttl = c.cmd_str(&["TTL", "last"]);
    assert!(
        ttl.starts_with(":5") || ttl == ":600\r\n",
        "TTL kept: {ttl}"
    );
}

#[test]
fn sigint_exits_zero_and_keeps_the_data() {
    stops_gracefully_on(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_exits_zero_and_keeps_the_data() {
    stops_gracefully_on(libc::SIGTERM, "SIGTERM");
}

#[test]
fn a_signal_stops_an_ephemeral_server_with_clients_connected() {
    let mut s = magpie(&[]);
    let mut idle = s.client();
    assert_eq!(idle.cmd(&["PING"]), b"+PONG\r\n");
    // a client in the middle of a request does not hold the shutdown up
    let mut partial = s.client();
    partial.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc");
    // SAFETY: as above
    assert_eq!(
        unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = wait_exit(&mut s, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{status}");
    assert_eq!(idle.read_to_close(), b"");
    assert_eq!(partial.read_to_close(), b"");
}
