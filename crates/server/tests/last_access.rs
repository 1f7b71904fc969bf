//! The per-key last access time, seen through memcached's meta `l` flag and
//! `me`'s `la=`, and Redis's `OBJECT IDLETIME`, over one keyspace: which
//! requests count as an access and which only look. One test lets two
//! seconds pass (the clock counts whole seconds); the other needs none.

mod common;

use std::time::Duration;

use common::*;

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn l_is_zero_right_after_a_write_or_a_read() {
    let (_s, port) = magpie_mc(&[]);
    let mut c = McRaw::connect(port);
    start_of_a_second(50);
    assert_eq!(
        text(c.request(
            b"set a 0 0 1\r\nx\r\nmg a l\r\nmg a v l h t k O9\r\nmg a l u q\r\n\
              mg nope l\r\nmg nope l q\r\nmg viv N30 l h\r\nms a 1 l\r\ny\r\nmg a s l\r\n"
        )),
        "STORED\r\nHD l0\r\nVA 1 l0 h1 t-1 ka O9\r\nx\r\nHD l0\r\n\
         EN\r\nHD l0 h0 W\r\nHD\r\nHD s1 l0\r\n"
    );
    let me = text(c.request(b"me a\r\n"));
    assert!(me.starts_with("ME a exp=-1 la=0 cas="), "{me}");
}

#[test]
fn idle_time_grows_until_an_access_and_inspection_leaves_it_alone() {
    let (s, port) = magpie_mc(&[]);
    let mut mc = McRaw::connect(port);
    let mut resp = s.client();
    start_of_a_second(50);
    for k in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        assert_eq!(
            mc.request(format!("set {k} 0 0 1\r\nx\r\n").as_bytes()),
            b"STORED\r\n"
        );
    }
    assert_eq!(mc.request(b"mg a l h\r\n"), b"HD l0 h0\r\n");
    std::thread::sleep(Duration::from_millis(2000));
    // two whole seconds later (and less than three)

    // memcached: `u` and `me` look without touching; mg reports the idle
    // time from before its own access, then it is 0
    assert_eq!(mc.request(b"mg a l u\r\n"), b"HD l2\r\n");
    let me = text(mc.request(b"me a\r\n"));
    assert!(me.starts_with("ME a exp=-1 la=2 cas="), "{me}");
    assert_eq!(mc.request(b"mg a l h v\r\n"), b"VA 1 l2 h1\r\nx\r\n");
    assert_eq!(mc.request(b"mg a l u\r\n"), b"HD l0\r\n");
    // get, gat and a store are accesses
    assert_eq!(mc.request(b"mg b l u\r\n"), b"HD l2\r\n");
    assert_eq!(mc.request(b"get b\r\n"), b"VALUE b 0 1\r\nx\r\nEND\r\n");
    assert_eq!(mc.request(b"mg b l u\r\n"), b"HD l0\r\n");
    assert_eq!(
        mc.request(b"gat 100 c\r\nmg c l u t\r\n"),
        b"VALUE c 0 1\r\nx\r\nEND\r\nHD l0 t100\r\n"
    );
    assert_eq!(
        mc.request(b"append d 0 0 1\r\ny\r\nmg d l u\r\n"),
        b"STORED\r\nHD l0\r\n"
    );

    // md I keeps the item (now stale) without an access, as memcached
    assert_eq!(mc.request(b"md h I T30\r\n"), b"HD\r\n");
    assert_eq!(mc.request(b"mg h l u\r\n"), b"HD l2 X W\r\n");

    // Redis: OBJECT, EXISTS, TYPE and TTL look (LOOKUP_NOTOUCH); GET and
    // EXPIRE are accesses
    assert_eq!(resp.cmd_str(&["OBJECT", "IDLETIME", "e"]), ":2\r\n");
    assert_eq!(resp.cmd_str(&["EXISTS", "e"]), ":1\r\n");
    assert_eq!(resp.cmd_str(&["TYPE", "e"]), "+string\r\n");
    assert_eq!(resp.cmd_str(&["TTL", "e"]), ":-1\r\n");
    assert!(resp
        .cmd_str(&["OBJECT", "FREQ", "e"])
        .starts_with("-ERR An LFU maxmemory policy is not selected"));
    assert_eq!(resp.cmd_str(&["OBJECT", "IDLETIME", "e"]), ":2\r\n");
    assert_eq!(resp.cmd_str(&["GET", "e"]), "$1\r\nx\r\n");
    assert_eq!(resp.cmd_str(&["OBJECT", "IDLETIME", "e"]), ":0\r\n");
    assert_eq!(resp.cmd_str(&["EXPIRE", "f", "100"]), ":1\r\n");
    assert_eq!(resp.cmd_str(&["OBJECT", "IDLETIME", "f"]), ":0\r\n");
    // and the two doors see one clock
    assert_eq!(mc.request(b"mg e l u\r\n"), b"HD l0\r\n");
    assert_eq!(resp.cmd_str(&["OBJECT", "IDLETIME", "a"]), ":0\r\n");
    assert_eq!(resp.cmd_str(&["OBJECT", "IDLETIME", "g"]), ":2\r\n");
}
