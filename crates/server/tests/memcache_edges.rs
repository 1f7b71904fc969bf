//! The memcached front door at its edges, over real sockets: the
//! "memcached-lite" `set <key> <bytes>` form.

mod common;

use common::*;

#[test]
fn lite_set_stores_with_flags_0_and_no_expiry() {
    let (s, port) = magpie_mc(&[]);
    let mut c = McRaw::connect(port);
    assert_eq!(c.request(b"set k 5\r\nhello\r\n"), b"STORED\r\n");
    assert_eq!(c.request(b"get k\r\n"), b"VALUE k 0 5\r\nhello\r\nEND\r\n");
    assert_eq!(c.request(b"mg k f t s\r\n"), b"HD f0 t-1 s5\r\n");
    // it replaces flags and TTL like a full set 0 0
    assert_eq!(
        c.request(b"set k 9 100 1\r\nx\r\nset k 2\r\nab\r\nmg k f t v\r\n"),
        b"STORED\r\nSTORED\r\nVA 2 f0 t-1\r\nab\r\n"
    );
    // an empty value, pipelined with other commands
    assert_eq!(
        c.request(b"set e 0\r\n\r\nget e k\r\nset e 1\r\nz\r\nget e\r\n"),
        b"STORED\r\nVALUE e 0 0\r\n\r\nVALUE k 0 2\r\nab\r\nEND\r\nSTORED\r\nVALUE e 0 1\r\nz\r\nEND\r\n"
    );
    // the value is the Redis value
    assert_eq!(s.client().cmd(&["GET", "k"]), b"$2\r\nab\r\n");
    assert_eq!(s.client().cmd(&["TTL", "k"]), b":-1\r\n");
}

#[test]
fn lite_set_key_rules_and_memcacheds_other_answers() {
    let (_s, port) = magpie_mc(&[]);
    let mut c = McRaw::connect(port);
    let k60 = "k".repeat(60);
    assert_eq!(
        c.request(format!("set {k60} 3\r\nabc\r\nget {k60}\r\n").as_bytes()),
        format!("STORED\r\nVALUE {k60} 0 3\r\nabc\r\nEND\r\n").as_bytes()
    );
    let k250 = "k".repeat(250);
    assert_eq!(
        c.request(format!("set {k250} 1\r\nx\r\n").as_bytes()),
        b"STORED\r\n"
    );
    // 251 bytes: memcached's answer to an over-long key in set; the data
    // line is then read as a command, as memcached reads it
    let k251 = "k".repeat(251);
    assert_eq!(
        c.request(format!("set {k251} 1\r\nx\r\n").as_bytes()),
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n"
    );
    // not the lite form: memcached's ERROR, nothing stored, and the data
    // line is read as a command too
    assert_eq!(
        c.request(b"set n 5 noreply\r\nhello\r\n"),
        b"ERROR\r\nERROR\r\n"
    );
    assert_eq!(c.request(b"set n five\r\n"), b"ERROR\r\n");
    assert_eq!(c.request(b"add n 1\r\nx\r\n"), b"ERROR\r\nERROR\r\n");
    assert_eq!(c.request(b"get n\r\n"), b"END\r\n");
}
