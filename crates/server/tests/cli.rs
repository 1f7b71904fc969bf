//! `magpie cli` end to end: the real binary against a live magpie, against
//! a scripted fake server (for reply types and broken replies), and byte
//! for byte against redis-cli talking to a real redis-server.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{free_port, magpie, redis};

/// Runs `magpie cli <args>` with `stdin`, returning its output.
fn cli(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .arg("cli")
        .args(args)
        .env("MAGPIE_HISTFILE", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start magpie cli");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    wait(child)
}

/// Waits at most 20 s for a child, so a hang fails instead of stalling.
fn wait(mut child: std::process::Child) -> Output {
    for _ in 0..400 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("magpie cli did not finish: {:?}", child.wait_with_output());
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn one_shot_prints_like_redis_cli() {
    let s = magpie(&[]);
    let p = s.port.to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["-p", &p];
        all.extend_from_slice(args);
        let o = cli(&all, b"");
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    // status
    assert_eq!(run(&["SET", "k", "v\"1\n\x01"]), "OK\n");
    // bulk string: quoted and escaped in human form, as-is in raw form
    assert_eq!(run(&["--no-raw", "GET", "k"]), "\"v\\\"1\\n\\x01\"\n");
    assert_eq!(run(&["GET", "k"]), "v\"1\n\x01\n");
    assert_eq!(run(&["--raw", "GET", "k"]), "v\"1\n\x01\n");
    // nil
    assert_eq!(run(&["--no-raw", "GET", "missing"]), "(nil)\n");
    assert_eq!(run(&["GET", "missing"]), "\n");
    // error (exit code stays 0, as with redis-cli)
    assert_eq!(
        run(&["--no-raw", "NOSUCHCMD", "a"]),
        "(error) ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' \n"
    );
    assert_eq!(
        run(&["NOSUCHCMD"]),
        "ERR unknown command 'NOSUCHCMD', with args beginning with: \n\n"
    );
    // arguments are passed as they are, never re-split
    assert_eq!(
        run(&["--no-raw", "ECHO", "a b \"c\""]),
        "\"a b \\\"c\\\"\"\n"
    );
    // -n selects before the command
    assert_eq!(run(&["-n", "3", "SET", "k", "in3"]), "OK\n");
    assert_eq!(run(&["-n", "3", "GET", "k"]), "in3\n");
    let o = cli(&["-p", &p, "-n", "99999", "PING"], b"");
    assert_eq!(
        stderr(&o),
        "SELECT 99999 failed: ERR DB index is out of range\n"
    );
    assert_eq!(stdout(&o), "PONG\n");
}

/// A one-connection server that answers the first request with `reply`.
fn fake_server(reply: &'static [u8]) -> u16 {
    // an in-process listener: let the kernel pick a free port
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    port
}

#[test]
fn every_reply_type_in_both_forms() {
    let cases: &[(&[u8], &str, &str)] = &[
        (b":42\r\n", "(integer) 42\n", "42\n"),
        (b"*0\r\n", "(empty array)\n", "\n"),
        (
            b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n*0\r\n",
            "1) \"a\"\n2) 1) (integer) 1\n   2) (nil)\n3) (empty array)\n",
            "a\n1\n\n\n",
        ),
        (b"%1\r\n+f\r\n#t\r\n", "1# f => (true)\n", "f (true)\n"),
        (b"~1\r\n,1.5\r\n", "1~ (double) 1.5\n", "1.5\n"),
        (b"_\r\n", "(nil)\n", "\n"),
        (b"=9\r\ntxt:a\nb c\r\n", "a\nb c\n", "a\nb c\n"),
        (
            b"-WRONGTYPE bad\r\n",
            "(error) WRONGTYPE bad\n",
            "WRONGTYPE bad\n\n",
        ),
    ];
    for (reply, human, raw) in cases {
        let p = fake_server(reply).to_string();
        let o = cli(&["-p", &p, "--no-raw", "X"], b"");
        assert_eq!(stdout(&o), *human, "{:?}", String::from_utf8_lossy(reply));
        let p = fake_server(reply).to_string();
        let o = cli(&["-p", &p, "X"], b"");
        assert_eq!(stdout(&o), *raw, "{:?}", String::from_utf8_lossy(reply));
    }
}

#[test]
fn broken_replies_and_connection_errors() {
    let p = fake_server(b"?what\r\n").to_string();
    let o = cli(&["-p", &p, "PING"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: Protocol error, got \"?\" as reply type byte\n"
    );

    let p = fake_server(b"$10\r\nshort").to_string();
    let o = cli(&["-p", &p, "PING"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Error: Server closed the connection\n");

    // nothing listens on a port we just freed
    let p = free_port().to_string();
    let o = cli(&["-p", &p, "PING"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("Could not connect to magpie at 127.0.0.1:{p}: Connection refused\n")
    );
}

#[test]
fn wrong_password_is_reported() {
    let s = magpie(&["--requirepass", "secret"]);
    let p = s.port.to_string();
    let o = cli(&["-p", &p, "-a", "wrong", "PING"], b"");
    let err = stderr(&o);
    assert!(
        err.starts_with(
            "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.\nAUTH failed: "
        ),
        "{err}"
    );
    assert!(stdout(&o).starts_with("NOAUTH"), "{}", stdout(&o));
    let o = cli(&["-p", &p, "--no-auth-warning", "PING"], b"");
    assert!(stdout(&o).starts_with("NOAUTH"), "{}", stdout(&o));
}

#[test]
fn stdin_lines_without_a_terminal() {
    let s = magpie(&[]);
    let p = s.port.to_string();
    let input =
        b"set a \"x y\"\nget a\n\n  'get'   'a'\nget \"unbalanced\nselect 2\nget a\nquit\nping\n";
    let o = cli(&["-p", &p], input);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "OK\nx y\nx y\nInvalid argument(s)\nOK\n\n");
    let o = cli(&["-p", &p, "--no-raw"], b"get a\n3 echo hi\nget nope\n");
    assert_eq!(stdout(&o), "\"x y\"\n\"hi\"\n\"hi\"\n\"hi\"\n(nil)\n");
}

#[test]
fn pipe_mode_counts_replies_and_errors() {
    let s = magpie(&[]);
    let p = s.port.to_string();
    let mut input = Vec::new();
    for i in 0..50 {
        input.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\nk{i}\r\n$1\r\nv\r\n",
                format!("k{i}").len()
            )
            .as_bytes(),
        );
    }
    input.extend_from_slice(b"GET k7\r\nNOSUCH x\r\nSET inline 1");
    let o = cli(&["-p", &p, "--pipe"], &input);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an error reply makes the exit code 1"
    );
    assert_eq!(
        stdout(&o),
        "All data transferred. Waiting for the last reply...\nLast reply received from server.\nerrors: 1, replies: 53\n"
    );
    assert_eq!(
        stderr(&o),
        "ERR unknown command 'NOSUCH', with args beginning with: 'x' \n"
    );
    let mut c = s.client();
    assert_eq!(c.cmd_str(&["GET", "k49"]), "$1\r\nv\r\n");
    assert_eq!(c.cmd_str(&["GET", "inline"]), "$1\r\n1\r\n");

    // SELECT from -n runs first and is not counted
    let o = cli(&["-p", &p, "-n", "2", "--pipe"], b"SET a 1\r\n");
    assert!(o.status.success());
    assert!(stdout(&o).ends_with("errors: 0, replies: 1\n"));
    assert_eq!(c.cmd_str(&["GET", "a"]), "$-1\r\n");
    c.cmd(&["SELECT", "2"]);
    assert_eq!(c.cmd_str(&["GET", "a"]), "$1\r\n1\r\n");
}

/// Same commands through redis-cli and magpie cli against one real
/// redis-server: the printed bytes must be identical.
#[test]
fn differential_against_redis_cli() {
    let Some(r) = redis() else { return };
    let have_cli = Command::new("redis-cli").arg("--version").output().is_ok();
    if !have_cli {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true but redis-cli is missing"
        );
        eprintln!("\n*** SKIPPED: redis-cli is not installed ***\n");
        return;
    }
    let p = r.port.to_string();
    let script = "set s \"a\\x01\\xff\\t\\\"q\\\"\\n\"\nget s\nincr n\nincr s\nrpush l a b \"\" c d e f g h i j\n\
lrange l 0 -1\nlrange none 0 -1\nhset h f v g w\nhgetall h\nsadd st x\nsmembers st\nget nope\n\
eval \"return {1,{2,'x',{}},{}}\" 0\nzadd z 1.5 m\nzrange z 0 -1 withscores\nnosuch cmd\nselect 99\nping\n";
    let cases: &[&[&str]] = &[&[], &["--no-raw"], &["-3", "--no-raw"], &["-3"]];
    for extra in cases {
        let _ = r.client().cmd(&["FLUSHALL"]);
        let mut args = vec!["-p", &p];
        args.extend_from_slice(extra);
        let mut theirs = Command::new("redis-cli")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        theirs
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let want = wait(theirs);
        let _ = r.client().cmd(&["FLUSHALL"]);
        let got = cli(&args, script.as_bytes());
        assert_eq!(stdout(&got), stdout(&want), "flags {extra:?}");
    }
    // one-shot forms too
    for cmd in [
        &["--no-raw", "lrange", "l", "0", "-1"][..],
        &["lrange", "l", "0", "-1"],
    ] {
        let mut args = vec!["-p", &p];
        args.extend_from_slice(cmd);
        let want = Command::new("redis-cli").args(&args).output().unwrap();
        let got = cli(&args, b"");
        assert_eq!(stdout(&got), stdout(&want), "{cmd:?}");
    }
}

#[test]
fn memcache_mode_against_memcached() {
    let found = Command::new("memcached").arg("-h").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true but memcached is missing"
        );
        eprintln!("\n*** SKIPPED: memcached is not installed ***\n");
        return;
    }
    let port = free_port();
    let mut mc = Command::new("memcached")
        .args([
            "-u",
            "nobody",
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = port.to_string();
    let mut ok = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ok, "memcached did not start");
    let one = cli(
        &["--memcache", "-p", &p, "set", "k", "5", "0", "hello world"],
        b"",
    );
    assert_eq!(stdout(&one), "STORED\n");
    let lines = cli(
        &["--memcache", "-p", &p],
        b"get k nope\nmg k v f\nincr k 1\nms n q 12\nincr n 5\nbogus\n",
    );
    let _ = mc.kill();
    let _ = mc.wait();
    assert_eq!(
        stdout(&lines),
        "VALUE k 5 11\nhello world\nEND\nVA 11 f5\nhello world\n\
CLIENT_ERROR cannot increment or decrement non-numeric value\nMN\n17\nERROR\n"
    );
}

/// `magpie cli`'s flags as the binary would parse them.
fn cli_args(args: &[&str]) -> magpie_tools::cli::CliArgs {
    use clap::{Args, FromArgMatches};
    let cmd =
        magpie_tools::cli::CliArgs::augment_args(clap::Command::new("cli").disable_help_flag(true));
    let m = cmd
        .try_get_matches_from(std::iter::once("cli").chain(args.iter().copied()))
        .unwrap();
    magpie_tools::cli::CliArgs::from_arg_matches(&m).unwrap()
}

#[test]
fn hints_come_from_a_live_servers_command_docs() {
    use magpie_tools::cli::repl::Docs;
    let s = magpie(&[]);
    let p = s.port.to_string();
    let set = " key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]";
    // the REPL's own fetch, in both protocols (RESP3 sends maps and sets)
    for extra in [&[][..], &["-3"][..]] {
        let mut args = vec!["-p", &p];
        args.extend_from_slice(extra);
        let mut conn = magpie_tools::cli::Conn::open(&cli_args(&args)).unwrap();
        let docs = Docs::fetch(&mut conn);
        assert_eq!(docs.hint("SET").as_deref(), Some(set), "{extra:?}");
        assert_eq!(
            docs.hint("set k v ").as_deref(),
            Some("[NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]")
        );
        assert_eq!(docs.hint("del").as_deref(), Some(" key [key ...]"));
        assert_eq!(
            docs.hint("expire k ").as_deref(),
            Some("seconds [NX|XX|GT|LT]")
        );
        assert_eq!(docs.hint("dbsize"), None);
        // subcommands, from the `subcommands` of their container's entry
        assert_eq!(
            docs.hint("CLIENT SETNAME").as_deref(),
            Some(" connection-name")
        );
        assert_eq!(
            docs.hint("config get ").as_deref(),
            Some("parameter [parameter ...]")
        );
        assert_eq!(docs.hint("client nosuch "), None);
        assert_eq!(docs.complete("cl"), ["client"]);
        assert_eq!(
            docs.complete("SE"),
            ["SELECT", "SET", "SETEX", "SETNX", "SETRANGE"]
        );
    }
    // the same hint redis-server's own COMMAND DOCS gives
    if let Some(r) = redis() {
        let rp = r.port.to_string();
        let mut conn = magpie_tools::cli::Conn::open(&cli_args(&["-p", &rp])).unwrap();
        assert_eq!(Docs::fetch(&mut conn).hint("SET").as_deref(), Some(set));
    }
}
