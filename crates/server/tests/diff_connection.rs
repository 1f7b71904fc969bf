//! QUIT, ECHO and PING byte for byte against a real redis-server, in RESP2
//! and after `HELLO 3`: QUIT answers +OK and closes, and whatever was
//! pipelined after it is neither answered nor executed.

mod common;

use common::*;

/// Sends `setup` commands one by one (replies compared), then `pipeline`
/// in a single write, and returns what each server sent until it closed.
fn until_close(
    redis: &Server,
    ours: &Server,
    setup: &[&[&str]],
    pipeline: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    for s in [redis, ours] {
        let mut c = s.client();
        for cmd in setup {
            c.cmd(cmd);
        }
        c.send(pipeline);
        out.push(c.read_to_close());
    }
    let ours = out.pop().unwrap();
    (out.pop().unwrap(), ours)
}

fn cmds(list: &[&[&str]]) -> Vec<u8> {
    let mut out = Vec::new();
    for args in list {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        out.extend_from_slice(&encode(&a));
    }
    out
}

#[test]
fn quit_replies_ok_closes_and_runs_nothing_after_it() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    // (name, commands sent first one by one, the pipeline ending with QUIT)
    type Case<'a> = (&'a str, Vec<&'a [&'a str]>, Vec<u8>);
    let cases: Vec<Case> = vec![
        ("QUIT alone", vec![], cmds(&[&["QUIT"]])),
        (
            "RESP2 pipeline",
            vec![],
            cmds(&[
                &["SET", "q1", "v"],
                &["QUIT"],
                &["SET", "q2", "v"],
                &["PING"],
            ]),
        ),
        (
            "QUIT with arguments (arity -1 in 7.0)",
            vec![],
            cmds(&[&["QUIT", "now", "please"], &["SET", "q3", "v"]]),
        ),
        (
            "RESP3 pipeline",
            vec![&["HELLO", "3"]],
            cmds(&[&["GET", "nosuch"], &["QUIT"], &["SET", "q4", "v"]]),
        ),
        (
            "RESP3 QUIT alone",
            vec![&["HELLO", "3"], &["CLIENT", "SETNAME", "x"]],
            cmds(&[&["QUIT"]]),
        ),
        (
            "inline",
            vec![],
            b"PING\r\nquit\r\nSET q5 v\r\nPING\r\n".to_vec(),
        ),
        (
            "kvs framing",
            vec![],
            b"*1\r\nQUIT\r\n*3\r\nSET\r\nq6\r\nv\r\n".to_vec(),
        ),
    ];
    for (name, setup, pipeline) in &cases {
        let (want, got) = until_close(&redis, &ours, setup, pipeline);
        if *name != "kvs framing" {
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{name}"
            );
        }
        assert!(got.ends_with(b"+OK\r\n"), "{name}: {got:?}");
    }
    // the commands before QUIT ran, none after it did
    for s in [&redis, &ours] {
        let mut c = s.client();
        assert_eq!(c.cmd(&["GET", "q1"]), b"$1\r\nv\r\n");
        for key in ["q2", "q3", "q4", "q5"] {
            assert_eq!(c.cmd(&["EXISTS", key]), b":0\r\n", "{key}");
        }
    }
    assert_eq!(ours.client().cmd(&["EXISTS", "q6"]), b":0\r\n");
}

const ECHO_PING: &str = r#"ECHO
ECHO a b
ECHO hello
ECHO ""
ECHO "a b\r\nc"
ECHO "\x00\xff"
echo MiXeD
PING
PING ""
PING hello
PING "a b"
PING a b
PING a b c
ping x"#;

#[test]
fn echo_and_ping_match_redis_in_resp2_and_resp3() {
    let script = format!("{ECHO_PING}\n~ HELLO 3\n{ECHO_PING}\n~ HELLO 2\n{ECHO_PING}");
    differential(&script);
}

#[test]
fn inline_echo_and_ping_match_redis() {
    let Some(redis) = redis() else { return };
    let ours = magpie(&[]);
    let pipeline = b"ECHO\r\nECHO \"a b\"\r\nPING 'x y'\r\nPING a b\r\nQUIT\r\n";
    let (want, got) = until_close(&redis, &ours, &[], pipeline);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    let (want, got) = until_close(&redis, &ours, &[&["HELLO", "3"]], pipeline);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}
