//! Redis's protected mode on every door, seen from a "remote" client: the
//! test makes a network namespace joined to this one by a veth pair with
//! private addresses, and connects from a thread moved into it. Needs root
//! and `ip`; elsewhere it says SKIPPED loudly.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;

/// A network namespace with a veth pair to this one, removed when dropped.
struct Netns {
    name: String,
    host_if: String,
    /// This namespace's end of the pair.
    host_ip: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

impl Netns {
    /// None (and a SKIPPED line) where the test cannot make one.
    fn create() -> Option<Netns> {
        let root = unsafe { libc::geteuid() } == 0;
        let has_ip = Command::new("ip").arg("-V").output().is_ok();
        if !root || !has_ip {
            eprintln!(
                "\n*** SKIPPED protected-mode test: needs root and iproute2 to make a network \
                 namespace (root: {root}, ip: {has_ip}) ***\n"
            );
            return None;
        }
        let pid = std::process::id();
        let (b, c) = (100 + pid % 100, (pid / 100) % 250);
        let ns = Netns {
            name: format!("mpm{pid}"),
            host_if: format!("mpm{pid}h"),
            host_ip: format!("10.{b}.{c}.1"),
        };
        let peer_if = format!("mpm{pid}p");
        let peer_ip = format!("10.{b}.{c}.2/30");
        let host_cidr = format!("{}/30", ns.host_ip);
        let n = ns.name.as_str();
        let ok = ip(&["netns", "add", n])
            && ip(&[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer_if,
            ])
            && ip(&["link", "set", &peer_if, "netns", n])
            && ip(&["addr", "add", &host_cidr, "dev", &ns.host_if])
            && ip(&["link", "set", &ns.host_if, "up"])
            && ip(&[
                "netns", "exec", n, "ip", "addr", "add", &peer_ip, "dev", &peer_if,
            ])
            && ip(&["netns", "exec", n, "ip", "link", "set", &peer_if, "up"])
            && ip(&["netns", "exec", n, "ip", "link", "set", "lo", "up"]);
        if !ok {
            eprintln!(
                "\n*** SKIPPED protected-mode test: could not set up the network namespace ***\n"
            );
            return None;
        }
        Some(ns)
    }

    /// Runs `f` on a thread inside the namespace (its sockets are remote
    /// clients of this namespace's `host_ip`).
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("netns handle");
            let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
            assert_eq!(unsafe { libc::setns(fd, libc::CLONE_NEWNET) }, 0, "setns");
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // removing the namespace removes the pair; the second command is
        // for a pair left behind by a failed set-up
        let _ = ip(&["netns", "del", &self.name]);
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Connects, sends `bytes`, returns everything until close (or 3 s).
fn exchange(addr: String, bytes: &'static [u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn remote_clients_are_refused_without_a_password_on_every_door() {
    let Some(ns) = Netns::create() else { return };
    let (mc, http) = (free_port(), free_port());
    let (mc_s, http_s) = (mc.to_string(), http.to_string());
    let s = magpie(&[
        "--bind",
        "0.0.0.0",
        "--memcache-port",
        &mc_s,
        "--http-port",
        &http_s,
    ]);
    let log = std::fs::read_to_string(log_path(s.port)).unwrap();
    assert!(
        log.contains("protected mode is on") && log.contains("--protected-mode no"),
        "{log}"
    );
    let host = ns.host_ip.clone();
    let (resp, mcd, web, probe) = {
        let h = host.clone();
        let port = s.port;
        ns.run(move || {
            (
                exchange(format!("{h}:{port}"), b"PING\r\n"),
                exchange(format!("{h}:{mc}"), b"version\r\n"),
                exchange(
                    format!("{h}:{http}"),
                    b"GET /v1/keys/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                ),
                exchange(
                    format!("{h}:{http}"),
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                ),
            )
        })
    };
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."), "{resp}");
    assert!(
        resp.ends_with("accepting connections from the outside.\r\n"),
        "{resp}"
    );
    assert_eq!(mcd, b"", "memcached closes without a word");
    let web = String::from_utf8_lossy(&web);
    assert!(
        web.starts_with("HTTP/1.1 403") && web.contains("\"protected_mode\""),
        "{web}"
    );
    assert!(String::from_utf8_lossy(&probe).starts_with("HTTP/1.1 200"));
    // loopback clients are served
    let mut c = s.client();
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    // with a password remote clients are let in, to authenticate
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "pw"]), b"+OK\r\n");
    let port = s.port;
    let h = host.clone();
    let got = ns.run(move || {
        exchange(
            format!("{h}:{port}"),
            b"PING\r\nAUTH pw\r\nPING\r\nQUIT\r\n",
        )
    });
    assert_eq!(
        got,
        b"-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n+OK\r\n"
    );
    // protected-mode no lets them in without one
    let mut c = s.client();
    assert_eq!(c.cmd(&["AUTH", "pw"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "protected-mode", "no"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "protected-mode"]),
        "*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n"
    );
    let h = host.clone();
    let (resp, mcd) = ns.run(move || {
        (
            exchange(format!("{h}:{port}"), b"PING\r\nQUIT\r\n"),
            exchange(format!("{h}:{mc}"), b"version\r\nquit\r\n"),
        )
    });
    assert_eq!(resp, b"+PONG\r\n+OK\r\n");
    assert!(String::from_utf8_lossy(&mcd).starts_with("VERSION "));
}

#[test]
fn protected_mode_no_and_loopback_binds_do_not_warn() {
    let s = magpie(&["--bind", "127.0.0.1"]);
    let log = std::fs::read_to_string(log_path(s.port)).unwrap();
    assert!(!log.contains("protected mode"), "{log}");
    let t = magpie(&["--bind", "0.0.0.0", "--protected-mode", "no"]);
    let log = std::fs::read_to_string(log_path(t.port)).unwrap();
    assert!(!log.contains("protected mode"), "{log}");
    let u = magpie(&["--bind", "0.0.0.0", "--requirepass", "pw"]);
    let log = std::fs::read_to_string(log_path(u.port)).unwrap();
    assert!(!log.contains("protected mode"), "{log}");
}
