//! Raw-bytes-in, exact-bytes-out tests of the RESP front door, plus the
//! same basics checked against a real redis-server.

mod common;

use common::*;

#[test]
fn pipelined_mixed_framings_answer_in_order() {
    let s = magpie(&[]);
    let mut c = s.client();
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n*2\r\nGET\r\nk\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert_eq!(c.read_reply(), b"+PONG\r\n");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut c.stream, &mut line).unwrap();
    assert_eq!(line, "+v\r\n", "kvs framing answers +value");
    assert_eq!(c.read_reply(), b"$1\r\nv\r\n");
}

#[test]
fn protocol_error_replies_then_closes_and_others_are_unaffected() {
    let s = magpie(&[]);
    let mut bystander = s.client();
    let mut c = s.client();
    c.send(b"*1\r\n$-5\r\n");
    assert_eq!(
        c.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(bystander.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn basics_match_redis() {
    differential(
        "PING
PING hello
ECHO \"a b\"
SET k v
GET k
GET missing
SELECT 1
GET k
SELECT 16
SELECT x
GET
NOSUCH a b
PING a b",
    );
}
