//! Every client-facing limit at its edge: the last accepted size works, one
//! more gets Redis's error (and, for protocol errors, the connection is
//! closed) while other clients keep being served.

mod common;

use common::*;

#[test]
fn proto_max_bulk_len_accepts_n_and_rejects_n_plus_one() {
    let s = magpie(&["--proto-max-bulk-len", "16"]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SET", "k", "0123456789abcdef"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), b"$16\r\n0123456789abcdef\r\n");
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$17\r\n");
    assert_eq!(
        c.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        s.client().cmd(&["GET", "k"]),
        b"$16\r\n0123456789abcdef\r\n"
    );
}

#[test]
fn max_multibulk_len_accepts_n_and_rejects_n_plus_one() {
    let s = magpie(&["--max-multibulk-len", "3"]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    c.send(b"*4\r\n");
    assert_eq!(
        c.read_to_close(),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_eq!(s.client().cmd(&["GET", "k"]), b"$1\r\nv\r\n");
}

#[test]
fn max_inline_len_accepts_n_and_rejects_n_plus_one() {
    let s = magpie(&["--max-inline-len", "32"]);
    let mut c = s.client();
    let arg = "x".repeat(32 - "ECHO ".len());
    c.send(format!("ECHO {arg}\r\n").as_bytes());
    assert_eq!(c.read_reply(), format!("$27\r\n{arg}\r\n").into_bytes());
    c.send(format!("ECHO {arg}y\r\n").as_bytes());
    assert_eq!(
        c.read_to_close(),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    // an over-long line is refused before its end arrives
    let mut d = s.client();
    d.send(&[b'a'; 40]);
    assert_eq!(
        d.read_to_close(),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    assert_eq!(s.client().cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn client_query_buffer_limit_closes_only_that_client() {
    let s = magpie(&["--client-query-buffer-limit", "4096"]);
    let mut bystander = s.client();
    assert_eq!(bystander.cmd(&["PING"]), b"+PONG\r\n");
    let mut c = s.client();
    // under the limit: a complete 3000-byte value is fine
    let ok = "v".repeat(3000);
    assert_eq!(c.cmd(&["SET", "k", &ok]), b"+OK\r\n");
    // over it: a bulk whose bytes keep coming without completing
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n");
    let chunk = vec![b'z'; 1024];
    for _ in 0..8 {
        if std::io::Write::write_all(c.stream.get_mut(), &chunk).is_err() {
            break;
        }
    }
    let started = std::time::Instant::now();
    assert_eq!(
        c.read_to_close(),
        b"",
        "closed without a reply, as Redis does"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "closed by the server, not by the read timeout"
    );
    assert_eq!(
        bystander.cmd(&["GET", "k"]),
        format!("$3000\r\n{ok}\r\n").into_bytes()
    );
}

#[test]
fn maxclients_refuses_the_next_client_and_frees_slots() {
    let s = magpie(&["--maxclients", "2"]);
    // the harness's port probe holds a slot until the server sees it close
    let mut a = connect_when_admitted(&s);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !a
        .cmd_str(&["INFO", "clients"])
        .contains("connected_clients:1\r\n")
    {
        assert!(std::time::Instant::now() < deadline, "probe never released");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut b = s.client();
    assert_eq!(b.cmd(&["PING"]), b"+PONG\r\n");
    let mut c = s.client();
    assert_eq!(c.read_to_close(), b"-ERR max number of clients reached\r\n");
    drop(b);
    // the slot is released once the server sees the close
    connect_when_admitted(&s);
    let info = a.cmd_str(&["INFO", "stats"]);
    assert!(!info.contains("rejected_connections:0\r\n"), "{info}");
}

/// A client that got past the maxclients gate (retrying while slots are
/// held by connections the server has not yet seen close).
fn connect_when_admitted(s: &Server) -> RawClient {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut c = s.client();
        c.send(b"PING\r\n");
        let got = c.read_to_close_or_line();
        if got == b"+PONG\r\n" {
            return c;
        }
        assert_eq!(got, b"-ERR max number of clients reached\r\n");
        assert!(std::time::Instant::now() < deadline, "no slot freed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

trait LineOrClose {
    fn read_to_close_or_line(&mut self) -> Vec<u8>;
}

impl LineOrClose for RawClient {
    /// The first reply line, or everything until close if there is no line.
    fn read_to_close_or_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let _ = std::io::BufRead::read_until(&mut self.stream, b'\n', &mut line);
        line
    }
}

#[test]
fn requirepass_noauth_flow() {
    let s = magpie(&["--requirepass", "sekret"]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["PING"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(
        c.cmd(&["CLIENT", "ID"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    // the argument count is checked before authentication, as in Redis
    assert_eq!(
        c.cmd(&["GET"]),
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    let noauth_hello = "-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                        HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
                        the RESP protocol version at the same time\r\n";
    assert_eq!(c.cmd_str(&["HELLO"]), noauth_hello);
    assert_eq!(c.cmd_str(&["HELLO", "3", "SETNAME", "x"]), noauth_hello);
    let wrongpass = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_eq!(c.cmd(&["AUTH", "wrong"]), wrongpass);
    assert_eq!(c.cmd(&["AUTH", "bob", "sekret"]), wrongpass);
    assert_eq!(
        c.cmd(&["HELLO", "3", "AUTH", "default", "wrong"]),
        wrongpass
    );
    assert_eq!(
        c.cmd(&["HELLO", "4", "AUTH", "default", "sekret"]),
        b"-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(c.cmd(&["PING"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "default", "sekret"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    // a later failed AUTH does not log the client out (Redis 7.0)
    assert_eq!(c.cmd(&["AUTH", "wrong"]), wrongpass);
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    // HELLO AUTH authenticates, switches protocol and names in one go
    let mut h = s.client();
    let reply = h.cmd_str(&["HELLO", "3", "AUTH", "default", "sekret", "SETNAME", "h"]);
    assert!(reply.starts_with("%7\r\n$6\r\nserver\r\n"), "{reply}");
    assert_eq!(h.cmd(&["CLIENT", "GETNAME"]), b"$1\r\nh\r\n");
    assert_eq!(h.cmd(&["GET", "missing"]), b"_\r\n");
    // QUIT works unauthenticated
    let mut q = s.client();
    assert_eq!(q.cmd(&["QUIT"]), b"+OK\r\n");
}
