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

use crate::commands::{self, Ctx};
use crate::config::ServeConfig;
use crate::session::Session;
use crate::shared::{ClientInfo, ClientState, Shared};

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    config: ServeConfig,
}

fn run(shared: &Shared, session: &mut Session, line: &str) -> String {
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
        framing: Framing::Multibulk,
    };
    commands::execute(&mut ctx, parser.args(&req));
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
    let shared = Shared::new(cli.config);
    let fail = Arc::new(AtomicBool::new(false));
    let p = Persistence::open(
        shared.engine.clone(),
        Options {
            fsync: FsyncPolicy::Always,
            fs: Arc::new(FaultyFs { fail: fail.clone() }),
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
    });
    let mut s = Session::new(info, false);

    assert_eq!(run(&shared, &mut s, "SET k v1"), "+OK\r\n");
    fail.store(true, Ordering::SeqCst);
    // this write is accepted (the failure is not known yet) and then fails to log
    assert_eq!(run(&shared, &mut s, "SET k v2"), "+OK\r\n");
    wait_until("the failure to be noticed", || !p.is_ok());
    let misconf = "-MISCONF Errors writing to the AOF file: No space left on device\r\n";
    assert_eq!(run(&shared, &mut s, "SET k v3"), misconf);
    assert_eq!(run(&shared, &mut s, "PING"), misconf);
    assert_eq!(run(&shared, &mut s, "GET k"), "$2\r\nv2\r\n");
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
