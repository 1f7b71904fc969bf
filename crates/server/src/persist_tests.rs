//! The engine/server boundary of persistence: with a log whose writes fail
//! (an injected file system), write commands and PING are refused with
//! Redis's MISCONF error while reads keep working, until a retry succeeds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use magpie_persist::files::FaultyFs;
use magpie_persist::{FsyncPolicy, Options, Persistence};
use magpie_protocol::resp::{Framing, Parser, Proto, ReplyWriter};

use crate::clients::{ClientInfo, ClientState};
use crate::config::ServeConfig;
use crate::resp::{self, Ctx};
use crate::session::Session;
use crate::shared::Shared;

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    config: ServeConfig,
}

fn run(shared: &Shared, session: &mut Session, line: &str) -> String {
    run_framed(shared, session, line, Framing::Multibulk)
}

/// [`run`] as if the request came in `framing` (the kvs framing has
/// commands of its own).
fn run_framed(shared: &Shared, session: &mut Session, line: &str, framing: Framing) -> String {
    let mut req = Vec::new();
    let words: Vec<&str> = line.split(' ').collect();
    req.extend_from_slice(format!("*{}\r\n", words.len()).as_bytes());
    for w in words {
        req.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
    }
    let mut parser = Parser::new(Default::default());
    parser.parse(&req).unwrap().unwrap();
    let mut out = Vec::new();
    let mut w = ReplyWriter::new(&mut out, Proto::Resp2);
    let mut ctx = Ctx {
        shared,
        session,
        out: &mut w,
        now: magpie_engine::now_ms(),
        framing,
        commands: resp::table(),
    };
    resp::execute(&mut ctx, parser.args(&req));
    String::from_utf8(out).unwrap()
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn failing_log_refuses_writes_and_ping_but_serves_reads_then_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::parse_from(["magpie", "--dir", dir.path().to_str().unwrap()]);
    let shared = Shared::new(cli.config, crate::command_names());
    let fail = Arc::new(AtomicBool::new(false));
    let p = Persistence::open(
        shared.engine.clone(),
        Options {
            fsync: FsyncPolicy::Always,
            fs: Arc::new(FaultyFs {
                fail: fail.clone(),
                ..FaultyFs::default()
            }),
            ..Options::new(dir.path())
        },
    )
    .unwrap();
    let _ = shared.persist.set(p.clone());
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let info = Arc::new(ClientInfo {
        id: 1,
        addr,
        laddr: addr,
        fd: -1,
        created: Instant::now(),
        state: parking_lot::Mutex::new(ClientState::default()),
        memcache_state: Default::default(),
    });
    let mut s = Session::new(info, &shared.acl);

    assert_eq!(run(&shared, &mut s, "SET k v1"), "+OK\r\n");
    // `run` does not wait for the log as a connection does: without this the
    // log thread could meet v1 after the disk starts failing, and v2 would
    // then be refused (this raced in CI)
    p.wait_durable_blocking();
    fail.store(true, Ordering::SeqCst);
    // this write is accepted (the failure is not known yet) and then fails to log
    assert_eq!(run(&shared, &mut s, "SET k v2"), "+OK\r\n");
    wait_until("the failure to be noticed", || !p.is_ok());
    let misconf = "-MISCONF Errors writing to the AOF file: No space left on device\r\n";
    assert_eq!(run(&shared, &mut s, "SET k v3"), misconf);
    assert_eq!(run(&shared, &mut s, "PING"), misconf);
    assert_eq!(run(&shared, &mut s, "GET k"), "$2\r\nv2\r\n");
    // the kvs framing's own SET, DEL and RESET are refused too (KEYS and
    // GET are reads)
    for write in ["SET k v3", "DEL k", "RESET"] {
        assert_eq!(
            run_framed(&shared, &mut s, write, Framing::Kvs),
            misconf,
            "{write}"
        );
    }
    // (rendered by this test's RESP2 writer; a kvs connection's writer
    // renders it as "+v2")
    assert_eq!(
        run_framed(&shared, &mut s, "GET k", Framing::Kvs),
        "$2\r\nv2\r\n"
    );
    // arity errors still come first, as in Redis
    assert!(run(&shared, &mut s, "SET k").starts_with("-ERR wrong number of arguments"));
    fail.store(false, Ordering::SeqCst);
    wait_until("the retry to succeed", || p.is_ok());
    assert_eq!(run(&shared, &mut s, "SET k v4"), "+OK\r\n");
    assert_eq!(run(&shared, &mut s, "PING"), "+PONG\r\n");
    p.wait_durable_blocking();
    p.shutdown();
    // v2, written while the disk failed, was retried and is in the log
    let report = magpie_persist::check(dir.path()).unwrap();
    assert_eq!(report.sets, 3, "{report}");
}

/// The memcached door refuses writes (with SERVER_ERROR; silently under
/// noreply) while the log fails, and keeps serving reads.
#[test]
fn failing_log_refuses_memcached_writes_but_serves_reads() {
    use magpie_protocol::memcache::{Limits, Parsed, Parser as McParser};

    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::parse_from(["magpie", "--dir", dir.path().to_str().unwrap()]);
    let shared = Shared::new(cli.config, crate::command_names());
    let fail = Arc::new(AtomicBool::new(false));
    let p = Persistence::open(
        shared.engine.clone(),
        Options {
            fsync: FsyncPolicy::Always,
            fs: Arc::new(FaultyFs {
                fail: fail.clone(),
                ..FaultyFs::default()
            }),
            ..Options::new(dir.path())
        },
    )
    .unwrap();
    let _ = shared.persist.set(p.clone());
    let mc = Arc::new(crate::memcache::McState::new());
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let info = Arc::new(ClientInfo {
        id: 1,
        addr,
        laddr: addr,
        fd: -1,
        created: Instant::now(),
        state: parking_lot::Mutex::new(ClientState::default()),
        memcache_state: Default::default(),
    });
    let mut auth = crate::memcache::auth::McAuth::new(&shared.acl, info);
    let mut run = |input: &str| -> String {
        let mut parser = McParser::new(Limits {
            max_item_size: 1 << 20,
            max_get_line: 1 << 20,
        });
        let mut out = Vec::new();
        let mut off = 0;
        while off < input.len() {
            match parser.parse(&input.as_bytes()[off..]) {
                Parsed::Request(req, used) => {
                    let mut ctx = crate::memcache::McCtx {
                        shared: &shared,
                        mc: &mc,
                        out: &mut out,
                        now: magpie_engine::now_ms(),
                        close: false,
                        auth: &mut auth,
                    };
                    crate::memcache::execute(&mut ctx, req);
                    off += used;
                }
                Parsed::Skipped(used) => off += used,
                other => panic!(
                    "unexpected parse result {:?}",
                    std::mem::discriminant(&other)
                ),
            }
        }
        String::from_utf8(out).unwrap()
    };

    assert_eq!(run("set k 0 0 2\r\nv1\r\n"), "STORED\r\n");
    // v1 on disk before the disk fails, so that v2 is the write the failure
    // catches (as in the RESP test above)
    p.wait_durable_blocking();
    fail.store(true, Ordering::SeqCst);
    run("set k 0 0 2\r\nv2\r\n");
    wait_until("the failure to be noticed", || !p.is_ok());
    let refused = "SERVER_ERROR errors writing to the log: No space left on device\r\n";
    assert_eq!(run("set k 0 0 2\r\nv3\r\n"), refused);
    // silent under noreply, as memcached's SERVER_ERRORs are: a client
    // that reads no reply would take it for its next command's answer
    assert_eq!(run("set k 0 0 2 noreply\r\nv3\r\n"), "");
    assert_eq!(run("delete k\r\n"), refused);
    assert_eq!(run("incr k 1\r\n"), refused);
    assert_eq!(run("ms k 2\r\nv3\r\n"), refused);
    assert_eq!(run("get k\r\n"), "VALUE k 0 2\r\nv2\r\nEND\r\n");
    fail.store(false, Ordering::SeqCst);
    wait_until("the retry to succeed", || p.is_ok());
    assert_eq!(run("set k 0 0 2\r\nv4\r\n"), "STORED\r\n");
    p.wait_durable_blocking();
    p.shutdown();
}

/// The HTTP door answers 503 to writes while the log fails, and keeps
/// serving reads.
#[test]
fn failing_log_refuses_http_writes_but_serves_reads() {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt as _;

    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::parse_from(["magpie", "--dir", dir.path().to_str().unwrap()]);
    let shared = Shared::new(cli.config, crate::command_names());
    let fail = Arc::new(AtomicBool::new(false));
    let p = Persistence::open(
        shared.engine.clone(),
        Options {
            fsync: FsyncPolicy::Always,
            fs: Arc::new(FaultyFs {
                fail: fail.clone(),
                ..FaultyFs::default()
            }),
            ..Options::new(dir.path())
        },
    )
    .unwrap();
    let _ = shared.persist.set(p.clone());
    let state = crate::http::HttpState::new(shared.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let request = |method: Method, path: &str, body: &'static str| {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body))
            .unwrap();
        let router = crate::http::router(state.clone());
        async move { router.oneshot(req).await.unwrap().status() }
    };
    let call = |method: Method, path: &str, body: &'static str| -> StatusCode {
        rt.block_on(request(method, path, body))
    };
    assert_eq!(call(Method::PUT, "/v1/keys/k", "v1"), StatusCode::CREATED);
    fail.store(true, Ordering::SeqCst);
    // accepted before the failure is known: applied in memory but never
    // durable while the log fails, so neither 204 nor a wait for the disk
    let pending = rt.spawn(request(Method::PUT, "/v1/keys/k", "v2"));
    wait_until("the failure to be noticed", || !p.is_ok());
    let status = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), pending).await })
        .expect("a write waited for the failing log")
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        call(Method::PUT, "/v1/keys/k", "v3"),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(Method::DELETE, "/v1/keys/k", ""),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(Method::POST, "/v1/keys/n/incr", ""),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(call(Method::GET, "/v1/keys/k", ""), StatusCode::OK);
    fail.store(false, Ordering::SeqCst);
    wait_until("the retry to succeed", || p.is_ok());
    assert_eq!(
        call(Method::PUT, "/v1/keys/k", "v4"),
        StatusCode::NO_CONTENT
    );
    p.wait_durable_blocking();
    p.shutdown();
}

/// Sends one RESP command on `s` and reads until `expected.len()` bytes came
/// (or the read timeout passes).
fn exchange(s: &mut std::net::TcpStream, line: &str, expected: &str) -> std::io::Result<String> {
    use std::io::Write as _;
    send(s, line);
    let _ = s.flush();
    read_reply(s, expected.len())
}

fn send(s: &mut std::net::TcpStream, line: &str) {
    use std::io::Write as _;
    let words: Vec<&str> = line.split(' ').collect();
    let mut req = format!("*{}\r\n", words.len());
    for w in words {
        req.push_str(&format!("${}\r\n{w}\r\n", w.len()));
    }
    s.write_all(req.as_bytes()).unwrap();
}

fn read_reply(s: &mut std::net::TcpStream, len: usize) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf)?;
    Ok(String::from_utf8(buf).unwrap())
}

/// Over real sockets, under each policy: while the log fails, a write
/// accepted before the failure was known is not acknowledged (its
/// connection closes unanswered: the write is in memory, not in the log),
/// another connection's reads are answered, new writes get MISCONF, and
/// once a retry succeeds the unacknowledged write is in the log too.
#[test]
fn over_a_socket_a_write_caught_by_the_failing_log_closes_its_connection_and_reads_go_on() {
    for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
        let dir = tempfile::tempdir().unwrap();
        let cli = Cli::parse_from(["magpie", "--dir", dir.path().to_str().unwrap()]);
        let shared = Shared::new(cli.config, crate::command_names());
        let fail = Arc::new(AtomicBool::new(false));
        let p = Persistence::open(
            shared.engine.clone(),
            Options {
                fsync: policy,
                fs: Arc::new(FaultyFs {
                    fail: fail.clone(),
                    ..FaultyFs::default()
                }),
                ..Options::new(dir.path())
            },
        )
        .unwrap();
        let _ = shared.persist.set(p.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(crate::resp::conn::run(shared.clone(), listener));
        let mc_listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let mc_port = mc_listener.local_addr().unwrap().port();
        let mc = Arc::new(crate::memcache::McState::new());
        rt.spawn(crate::memcache::conn::run(shared.clone(), mc, mc_listener));
        let connect_to = |port: u16| {
            let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        };
        let connect = || connect_to(port);
        let closed_unanswered = |s: &mut std::net::TcpStream| {
            // end of stream, not a reply (nor a timeout)
            let mut rest = Vec::new();
            let closed = std::io::Read::read_to_end(s, &mut rest);
            assert!(
                closed.is_ok() && rest.is_empty(),
                "{policy}: the write's connection got {rest:?} ({closed:?})"
            );
        };
        let (mut writer, mut reader) = (connect(), connect());
        assert_eq!(
            exchange(&mut writer, "SET k v1", "+OK\r\n").unwrap(),
            "+OK\r\n"
        );

        fail.store(true, Ordering::SeqCst);
        send(&mut writer, "SET k v2");
        wait_until("the failure to be noticed", || !p.is_ok());
        closed_unanswered(&mut writer);
        let got = exchange(&mut reader, "GET k", "$2\r\nv2\r\n").unwrap();
        assert_eq!(got, "$2\r\nv2\r\n", "{policy}");
        let misconf = "-MISCONF Errors writing to the AOF file: No space left on device\r\n";
        assert_eq!(exchange(&mut reader, "SET k v3", misconf).unwrap(), misconf);

        fail.store(false, Ordering::SeqCst);
        wait_until("the retry to succeed", || p.is_ok());
        assert_eq!(
            exchange(&mut reader, "SET k v4", "+OK\r\n").unwrap(),
            "+OK\r\n"
        );

        // the same on the memcached door
        let (mut mc_writer, mut mc_reader) = (connect_to(mc_port), connect_to(mc_port));
        let mc_exchange = |s: &mut std::net::TcpStream, req: &str, expected: &str| {
            std::io::Write::write_all(s, req.as_bytes()).unwrap();
            read_reply(s, expected.len()).unwrap()
        };
        fail.store(true, Ordering::SeqCst);
        std::io::Write::write_all(&mut mc_writer, b"set m 0 0 2\r\nm1\r\n").unwrap();
        wait_until("the failure to be noticed", || !p.is_ok());
        closed_unanswered(&mut mc_writer);
        let value = "VALUE m 0 2\r\nm1\r\nEND\r\n";
        assert_eq!(mc_exchange(&mut mc_reader, "get m\r\n", value), value);
        let refused = "SERVER_ERROR errors writing to the log: No space left on device\r\n";
        assert_eq!(
            mc_exchange(&mut mc_reader, "set m 0 0 2\r\nm2\r\n", refused),
            refused
        );
        fail.store(false, Ordering::SeqCst);
        wait_until("the retry to succeed", || p.is_ok());

        shared.stopping.store(true, Ordering::SeqCst);
        shared.shutdown.notify_waiters();
        drop(rt);
        p.shutdown();
        // v1, v2 (not acknowledged, written by the retry), v4, m1 (the same)
        let report = magpie_persist::check(dir.path()).unwrap();
        assert_eq!(report.sets, 4, "{policy}: {report}");
    }
}
