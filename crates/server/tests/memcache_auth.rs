//! memcached's text-protocol authentication against a real `memcached -Y`
//! (byte for byte), mapped to ACL users, and ACL permissions on the
//! memcached door: a read-only user cannot store, key patterns apply,
//! and refusals go to the ACL LOG.

mod common;

use common::*;

/// An aclfile in a fresh temporary directory.
fn aclfile(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.acl");
    std::fs::write(&path, text).unwrap();
    let p = path.display().to_string();
    (dir, p)
}

/// Sends `bytes` and returns what the server answered within 300 ms of
/// its last reply (or until it closed).
fn replies(c: &mut std::net::TcpStream, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    c.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    c.write_all(bytes).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// [`replies`] on a new connection.
fn session(port: u16, bytes: &[u8]) -> String {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    replies(&mut c, bytes)
}

const CASES: &[&str] = &[
    "get foo\r\n",
    "version\r\n",
    "mn\r\n",
    "mg foo v\r\n",
    "stats\r\n",
    "get foo\r\nget foo\r\n",
    "set x 0 0 5\r\nhello\r\nget x\r\n",
    "add a 0 0 12\r\nalice secret\r\nget k\r\n",
    "ms a 12 T0\r\nalice secret\r\nget k\r\n",
    "set a 0 0 11\r\nalice wrong\r\nget a\r\n",
    "set a 0 0 9\r\nalicesecr\r\nget k\r\n",
    "set a 0 0 14\r\nalice secret\r\n\r\nget k\r\n",
    "set a 0 0 12\r\nalice secret\r\nset k 0 0 1\r\nv\r\nget k\r\n",
    "set a 0 0 12 noreply\r\nalice secret\r\nget k\r\n",
    "set a 0 0 13\r\n alice secret\r\nget k\r\n",
    "set a 0 0 18\r\nalice secret extra\r\nget k\r\n",
    "set a 0 0 12\r\nalice secret\r\nset a 0 0 11\r\nalice wrong\r\nget a\r\n",
    "set a 0 0 8\r\nbob nope\r\nget k\r\n",
];

#[test]
fn authentication_matches_memcached_dash_y() {
    let dir = tempfile::tempdir().unwrap();
    let authfile = dir.path().join("auth");
    std::fs::write(&authfile, "alice:secret\n").unwrap();
    let Some(real) = memcached_with(&["-Y", authfile.to_str().unwrap()]) else {
        return;
    };
    let (_acl_dir, acl) =
        aclfile("user default on >other ~* &* +@all\nuser alice on >secret ~* &* +@all\n");
    let (_ours, port) = magpie_mc(&["--aclfile", &acl]);
    for case in CASES {
        assert_eq!(
            session(port, case.as_bytes()),
            session(real.port, case.as_bytes()),
            "{case:?}"
        );
    }
    // refused requests leave the connection open for another try
    let mut conns =
        [real.port, port].map(|p| std::net::TcpStream::connect(("127.0.0.1", p)).unwrap());
    for step in [
        &b"get foo\r\n"[..],
        b"set a 0 0 11\r\nalice wrong\r\n",
        b"set a 0 0 12\r\nalice secret\r\n",
        b"get a\r\n",
    ] {
        let [r, m] = &mut conns;
        assert_eq!(
            replies(m, step),
            replies(r, step),
            "{:?}",
            String::from_utf8_lossy(step)
        );
    }
}

#[test]
fn requirepass_alone_is_user_default_on_memcached() {
    let (_s, port) = magpie_mc(&["--requirepass", "pw"]);
    assert_eq!(
        session(port, b"get k\r\nget k\r\n"),
        "CLIENT_ERROR unauthenticated\r\n"
    );
    assert_eq!(
        session(
            port,
            b"set a 0 0 10\r\ndefault pw\r\nset k 0 0 1\r\nv\r\nget k\r\n"
        ),
        "STORED\r\nSTORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"
    );
    // without a password memcached needs no authentication, and the
    // `set` is an ordinary one
    let (_open, open) = magpie_mc(&[]);
    assert_eq!(
        session(open, b"set a 0 0 10\r\ndefault pw\r\nget a\r\n"),
        "STORED\r\nVALUE a 0 10\r\ndefault pw\r\nEND\r\n"
    );
}

#[test]
fn acl_permissions_apply_on_memcached() {
    let (_d, acl) = aclfile(
        "user default on >adminpw ~* &* +@all\n\
         user ro on >ro ~* -@all +@read\n\
         user cart on >c ~cart:* +@all -@dangerous\n\
         user w on >w %W~w:* +@all\n",
    );
    let (s, port) = magpie_mc(&["--aclfile", &acl]);
    let auth = |u: &str, p: &str| format!("set a 0 0 {}\r\n{u} {p}\r\n", u.len() + p.len() + 1);
    let noperm_set =
        "CLIENT_ERROR NOPERM this user has no permissions to run the 'set' command\r\n";
    let noperm_key =
        "CLIENT_ERROR NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
    // the admin stores a value
    let admin = auth("default", "adminpw") + "set cart:1 0 0 1\r\nv\r\n";
    assert_eq!(session(port, admin.as_bytes()), "STORED\r\nSTORED\r\n");
    // read-only: get yes, set/delete/incr/flush_all no
    let ro = auth("ro", "ro")
        + "get cart:1\r\nset k 0 0 1\r\nv\r\ndelete cart:1\r\nincr n 1\r\nflush_all\r\nmg cart:1 v\r\nms k 1\r\nv\r\n";
    assert_eq!(
        session(port, ro.as_bytes()),
        format!(
            "STORED\r\nVALUE cart:1 0 1\r\nv\r\nEND\r\n{noperm_set}\
             CLIENT_ERROR NOPERM this user has no permissions to run the 'del' command\r\n\
             CLIENT_ERROR NOPERM this user has no permissions to run the 'incrby' command\r\n\
             CLIENT_ERROR NOPERM this user has no permissions to run the 'flushall' command\r\n\
             VA 1\r\nv\r\n{noperm_set}"
        )
    );
    // key patterns: cart:* only, for every key of a multi-get
    let cart = auth("cart", "c")
        + "set cart:2 0 0 1\r\nw\r\nset other 0 0 1\r\nw\r\nget cart:1 cart:2\r\nget cart:1 other\r\nflush_all\r\n";
    assert_eq!(
        session(port, cart.as_bytes()),
        format!(
            "STORED\r\nSTORED\r\n{noperm_key}VALUE cart:1 0 1\r\nv\r\nVALUE cart:2 0 1\r\nw\r\nEND\r\n\
             {noperm_key}CLIENT_ERROR NOPERM this user has no permissions to run the 'flushall' command\r\n"
        )
    );
    // write-only pattern: set yes, get no; a refusal under noreply is silent
    let w = auth("w", "w") + "set w:1 0 0 1\r\nx\r\nget w:1\r\nset r 0 0 1 noreply\r\nx\r\nmn\r\n";
    assert_eq!(
        session(port, w.as_bytes()),
        format!("STORED\r\nSTORED\r\n{noperm_key}MN\r\n")
    );
    // the refusals and the failed authentications are in the ACL LOG
    let mut c = s.client();
    assert_eq!(c.cmd(&["AUTH", "adminpw"]), b"+OK\r\n");
    let _ = session(port, auth("ro", "wrong").as_bytes());
    let log = c.cmd_str(&["ACL", "LOG"]);
    assert!(
        log.contains("\r\nauth\r\n") && log.contains("\r\nro\r\n"),
        "{log}"
    );
    assert!(log.contains("\r\nflushall\r\n"), "{log}");
    assert!(log.contains("\r\ncart\r\n"), "{log}");
    assert!(log.contains("door=memcached"), "{log}");
    assert!(!log.contains("wrong"), "no password in the ACL LOG: {log}");
    // a deleted user's connection closes
    let mut live = McRaw::connect(port);
    live.send(auth("ro", "ro").as_bytes());
    assert_eq!(live.request(b""), b"STORED\r\n");
    assert_eq!(c.cmd(&["ACL", "DELUSER", "ro"]), b":1\r\n");
    let rest = live.send_until_close(b"get cart:1\r\n");
    assert_eq!(String::from_utf8_lossy(&rest), "");
}
