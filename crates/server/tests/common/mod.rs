//! Test harness: starts the real `magpie` binary and, for differential
//! tests, a real `redis-server` on free loopback ports, and talks raw RESP
//! to both.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port. Ports come from a per-process counter (never the
/// same twice in one test binary, where tests run in parallel) starting at a
/// pid-derived base below the ephemeral range, and are checked bindable.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20000 + (std::process::id() % 120) as u16 * 100;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = base + n % 100;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
        assert!(n < 10_000, "no free port found");
    }
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not open port {port}");
}

/// A running server process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: Option<PathBuf>,
}

impl Server {
    /// Connects a raw RESP client.
    pub fn client(&self) -> RawClient {
        RawClient::connect(self.port)
    }

    /// A `redis://` URL for the `redis` crate.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let exited = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // show what the server said, to explain the failure
            let log = std::fs::read_to_string(log_path(self.port)).unwrap_or_default();
            eprintln!(
                "--- server on port {} ({}) stderr ---\n{log}--- end ---",
                self.port,
                match exited {
                    Some(status) => format!("had exited: {status}"),
                    None => "was running".to_string(),
                }
            );
        }
        let _ = std::fs::remove_file(log_path(self.port));
    }
}

/// Where a test server's stderr goes (shown if the test fails).
pub fn log_path(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("magpie-test-{}-{port}.log", std::process::id()))
}

/// The test server's log once it holds `needle`, waiting up to 5 s (the
/// server's log lines reach the file through a background writer, so a
/// line can land a moment after what it reports); the log as it stands if
/// the line never comes, for the caller's assertion to show.
pub fn log_once_it_has(port: u16, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(log_path(port)).unwrap_or_default();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_file(port: u16) -> Stdio {
    std::fs::File::create(log_path(port)).map_or(Stdio::null(), Stdio::from)
}

/// Runs `magpie serve --ephemeral` with every listener's port at 0 and
/// `args`, for a start that must fail: its output once it exited.
pub fn failed_serve(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args(["serve", "--ephemeral", "--port", "0"])
        .args(["--memcache-port", "0", "--http-port", "0"])
        .args(args)
        .output()
        .expect("run magpie")
}

/// Starts `magpie serve` on a free port with extra flags.
pub fn magpie(extra: &[&str]) -> Server {
    retry_on_port_clash("magpie", || spawn_magpie(free_port(), extra))
}

/// A port is checked free and then handed to a server, which binds it a
/// moment later; if something else took it in between, start again on
/// another port instead of failing.
fn retry_on_port_clash(what: &str, mut start: impl FnMut() -> Result<Server, String>) -> Server {
    for _ in 0..5 {
        match start() {
            Ok(server) => return server,
            Err(log) if log.contains("Address already in use") => continue,
            Err(log) => panic!("{what} failed to start:\n{log}"),
        }
    }
    panic!("{what}: five port clashes in a row");
}

/// Spawns magpie on `port` and waits for its "magpie ready" log line, which
/// it prints once every listener is bound (so we never mistake another
/// process on the port for ours). On an early exit, returns its log.
fn spawn_magpie(port: u16, extra: &[&str]) -> Result<Server, String> {
    // unless the test says otherwise: nothing on disk, and no listeners on
    // the default memcached/HTTP ports (parallel test servers would clash)
    const DEFAULTS: [(&str, &[&str]); 3] = [
        ("--dir", &["--ephemeral"]),
        ("--memcache-port", &["--memcache-port", "0"]),
        ("--http-port", &["--http-port", "0"]),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_magpie"));
    cmd.arg("serve").args(["--port", &port.to_string()]);
    for (flag, default) in DEFAULTS {
        if !extra.contains(&flag) {
            cmd.args(default);
        }
    }
    let mut child = cmd
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log_file(port))
        .spawn()
        .expect("start magpie");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(log_path(port)).unwrap_or_default();
        if log.contains("magpie ready") {
            return Ok(Server {
                child,
                port,
                dir: None,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_file(log_path(port));
            return Err(format!("exited with {status}:\n{log}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("magpie did not become ready on port {port}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Spawns a reference server built by `command(port)` and waits until it
/// accepts connections and is still running (a server that lost its port
/// to someone else exits at once). On an early exit, returns its output.
fn spawn_reference(what: &str, mut command: impl FnMut(u16) -> Command) -> Server {
    retry_on_port_clash(what, || {
        let port = free_port();
        // redis logs to stdout, memcached to stderr: keep both
        let log = std::fs::File::create(log_path(port)).expect("test log file");
        let mut child = command(port)
            .stdout(log.try_clone().expect("test log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        match child.try_wait() {
            Ok(None) => Ok(Server {
                child,
                port,
                dir: None,
            }),
            _ => {
                let log = std::fs::read_to_string(log_path(port)).unwrap_or_default();
                let _ = std::fs::remove_file(log_path(port));
                // redis and memcached say "Address already in use" too
                Err(log)
            }
        }
    })
}

/// Starts a real `redis-server` if it is installed. In CI (CI=true) a missing
/// redis-server is a failure; elsewhere the differential tests say loudly
/// that they were skipped and why.
pub fn redis() -> Option<Server> {
    redis_with(&[])
}

/// [`redis`] with extra redis-server options (e.g. `--proto-max-bulk-len`).
pub fn redis_with(extra: &[&str]) -> Option<Server> {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("redis-server is not installed but CI=true: .ci/run must install it");
        }
        eprintln!(
            "\n*** SKIPPED differential test: redis-server is not installed \
             (apt-get install redis-server) ***\n"
        );
        return None;
    }
    Some(spawn_reference("redis-server", |port| {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--databases", "16"])
            .args(extra);
        cmd
    }))
}

/// A blocking RESP client that sends raw bytes and reads whole replies.
pub struct RawClient {
    pub stream: BufReader<TcpStream>,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RawClient {
            stream: BufReader::new(s),
        }
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).unwrap();
    }

    /// Sends a command as a RESP multibulk.
    pub fn send_cmd(&mut self, args: &[&[u8]]) {
        self.send(&encode(args));
    }

    /// Sends a command and returns its raw reply bytes.
    pub fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.send_cmd(&a);
        self.read_reply()
    }

    /// Like [`RawClient::cmd`], as a lossy string.
    pub fn cmd_str(&mut self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.cmd(args)).into_owned()
    }

    fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.stream
            .read_until(b'\n', &mut line)
            .expect("read reply line");
        assert!(
            line.ends_with(b"\r\n"),
            "truncated reply line {:?}",
            String::from_utf8_lossy(&line)
        );
        line
    }

    /// Reads exactly one RESP2/RESP3 reply, returning its bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        let mut out = self.read_line();
        let n = || -> i64 {
            std::str::from_utf8(&out[1..out.len() - 2])
                .unwrap()
                .parse()
                .unwrap()
        };
        match out[0] {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'$' | b'=' | b'!' => {
                let len = n();
                if len >= 0 {
                    let mut body = vec![0; len as usize + 2];
                    self.stream.read_exact(&mut body).unwrap();
                    out.extend_from_slice(&body);
                }
            }
            b'*' | b'~' | b'>' => {
                let len = n();
                for _ in 0..len.max(0) {
                    let r = self.read_reply();
                    out.extend_from_slice(&r);
                }
            }
            b'%' | b'|' => {
                let len = n();
                for _ in 0..len * 2 {
                    let r = self.read_reply();
                    out.extend_from_slice(&r);
                }
            }
            other => panic!("unexpected reply type byte {:?}", other as char),
        }
        out
    }

    /// Reads until the server closes the connection; returns what came.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        let _ = self.stream.read_to_end(&mut rest);
        rest
    }
}

/// RESP multibulk encoding of a command.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Runs `script` (one command per line, arguments split on spaces; a line
/// starting with `#` is a comment) against magpie and redis-server, and
/// asserts every reply is byte-for-byte equal. Lines whose first word is `~`
/// only check that both reply with the same RESP type (for values that
/// legitimately differ, like TIME). Returns false if redis-server is missing.
pub fn differential(script: &str) -> bool {
    differential_with(&[], script)
}

/// [`differential`] with extra magpie flags.
pub fn differential_with(flags: &[&str], script: &str) -> bool {
    let Some(redis) = redis() else { return false };
    let ours = magpie(flags);
    let (mut r, mut m) = (redis.client(), ours.client());
    run_differential(&mut r, &mut m, script);
    true
}

/// The body of [`differential`], on clients the caller already has (to
/// prepare something between starting the servers and running `script`).
pub fn run_differential(r: &mut RawClient, m: &mut RawClient, script: &str) {
    for (n, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (loose, line) = match line.strip_prefix("~ ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        // "= ": the reply is a flat array or set of bulk strings whose order
        // the servers may choose differently: compare it sorted
        let (unordered, line) = match line.strip_prefix("= ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let args = split_quoted(line);
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        r.send_cmd(&args);
        m.send_cmd(&args);
        let (want, got) = (r.read_reply(), m.read_reply());
        if unordered {
            assert_eq!(
                sorted_elements(&got),
                sorted_elements(&want),
                "line {}: {line} (compared unordered)",
                n + 1
            );
        } else if loose {
            assert_eq!(
                got[0],
                want[0],
                "line {}: {line}: reply types differ",
                n + 1
            );
        } else {
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "line {}: {line}",
                n + 1
            );
        }
    }
}

/// A reply's header line and its bulk-string elements sorted (for replies
/// whose order is the server's choice); other replies are kept whole.
pub fn sorted_elements(reply: &[u8]) -> (String, Vec<String>) {
    let text = String::from_utf8_lossy(reply);
    let mut lines = text.split("\r\n");
    let head = lines.next().unwrap_or_default().to_string();
    let mut items = Vec::new();
    while let Some(l) = lines.next() {
        if l.starts_with('$') {
            items.push(format!("{l}\r\n{}", lines.next().unwrap_or_default()));
        } else if !l.is_empty() {
            items.push(l.to_string());
        }
    }
    items.sort();
    (head, items)
}

/// Sleeps until `margin_ms` past the next whole second of the wall clock
/// (at most about a second), so that the next few hundred milliseconds
/// fall in one second of magpie's and Redis's access clocks, which count
/// whole wall-clock seconds (Redis's lags by up to 100 ms, its cron period).
pub fn start_of_a_second(margin_ms: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let wait = 1000 - now % 1000 + margin_ms;
    std::thread::sleep(Duration::from_millis(wait));
}

/// Splits on spaces; `"..."` groups (with `\r`, `\n`, `\"`, `\\`, `\xHH`
/// escapes) so scripts can hold spaces, empty strings and binary bytes.
pub fn split_quoted(line: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut cur = Vec::new();
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                    match b[i] {
                        b'r' => cur.push(b'\r'),
                        b'n' => cur.push(b'\n'),
                        b'x' => {
                            let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                            cur.push(u8::from_str_radix(h, 16).unwrap());
                            i += 2;
                        }
                        c => cur.push(c),
                    }
                } else {
                    cur.push(b[i]);
                }
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != b' ' {
                cur.push(b[i]);
                i += 1;
            }
        }
        out.push(cur);
    }
    out
}

/// Starts magpie with its memcached listener on a free port; returns the
/// server and that port.
pub fn magpie_mc(extra: &[&str]) -> (Server, u16) {
    let mut mc_port = 0;
    let server = retry_on_port_clash("magpie", || {
        mc_port = free_port();
        let port_s = mc_port.to_string();
        let mut flags = vec!["--memcache-port", port_s.as_str()];
        flags.extend_from_slice(extra);
        spawn_magpie(free_port(), &flags)
    });
    (server, mc_port)
}

/// True when a missing external tool should fail the test (CI=true)
/// rather than skip it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Starts a real `memcached` (1.6) if installed, one worker thread, TCP
/// only. In CI a missing memcached is a failure; elsewhere the caller skips
/// loudly.
pub fn memcached() -> Option<Server> {
    memcached_with(&[])
}

/// [`memcached`] with extra command-line options (e.g. `-I 2048`).
pub fn memcached_with(extra: &[&str]) -> Option<Server> {
    let found = Command::new("memcached")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if in_ci() {
            panic!("memcached is not installed but CI=true: .ci/run must install it");
        }
        eprintln!("\n*** SKIPPED memcached differential test: memcached is not installed (apt-get install memcached) ***\n");
        return None;
    }
    // memcached refuses to run as root without -u
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let as_root = uid.trim_ascii() == b"0";
    Some(spawn_reference("memcached", |port| {
        let mut cmd = Command::new("memcached");
        cmd.args([
            "-p",
            &port.to_string(),
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-t",
            "1",
        ]);
        if as_root {
            cmd.args(["-u", "root"]);
        }
        cmd.args(extra);
        cmd
    }))
}

/// A raw memcached-protocol client.
pub struct McRaw {
    pub stream: TcpStream,
}

impl McRaw {
    pub fn connect(port: u16) -> McRaw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        McRaw { stream: s }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends `bytes` followed by `mn`, and returns everything the server
    /// answered before `MN` (so requests without a reply are covered too).
    pub fn request(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b.extend_from_slice(b"mn\r\n");
        self.send(&b);
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        while !(got.ends_with(b"MN\r\n")
            && (got.len() == 4 || got[..got.len() - 4].ends_with(b"\r\n")))
        {
            let n = self.stream.read(&mut chunk).expect("read reply");
            assert!(
                n > 0,
                "connection closed; got {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&chunk[..n]);
        }
        got.truncate(got.len() - 4);
        got
    }

    /// Sends bytes and reads until the server closes the connection.
    pub fn send_until_close(&mut self, bytes: &[u8]) -> Vec<u8> {
        let _ = self.stream.write_all(bytes);
        let mut rest = Vec::new();
        let _ = self.stream.read_to_end(&mut rest);
        rest
    }
}
