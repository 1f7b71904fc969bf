//! ACL users over real sockets: the aclfile (load at start, ACL SAVE with
//! hashes only, ACL LOAD all or nothing), live rule changes, a deleted
//! user's connections closing, ACL LOG entries, and passwords kept out of
//! SLOWLOG, CLIENT LIST and the server's log.

mod common;

use common::*;

fn aclfile(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.acl");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn aclfile_loads_at_start_saves_hashes_and_reloads_all_or_nothing() {
    let (_d, path) =
        aclfile("# team\nuser alice on >apw ~a:* +@all\n\nuser default on nopass ~* &* +@all\n");
    let p = path.to_str().unwrap();
    let s = magpie(&["--aclfile", p]);
    let mut c = s.client();
    assert_eq!(
        c.cmd_str(&["ACL", "USERS"]),
        "*2\r\n$5\r\nalice\r\n$7\r\ndefault\r\n"
    );
    assert_eq!(
        c.cmd(&["ACL", "SETUSER", "bob", "on", ">bpw", "+get", "~*"]),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd(&["ACL", "SAVE"]), b"+OK\r\n");
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(!saved.contains("bpw") && !saved.contains("apw"), "{saved}");
    let bob_hash = "user bob on #"; // the SHA-256 of bpw follows
    assert!(saved.contains(bob_hash), "{saved}");
    assert_eq!(saved.lines().count(), 3, "{saved}");
    // a broken file changes nothing
    std::fs::write(&path, "user carol on\nnonsense\n").unwrap();
    let err = c.cmd_str(&["ACL", "LOAD"]);
    assert!(
        err.starts_with("-ERR ") && err.contains(":2 should start with user keyword"),
        "{err}"
    );
    assert!(c.cmd_str(&["ACL", "USERS"]).contains("bob"));
    // a good one replaces every user; default comes back as created
    std::fs::write(&path, "user carol on >cpw +@all ~*\n").unwrap();
    assert_eq!(c.cmd(&["ACL", "LOAD"]), b"+OK\r\n");
    assert_eq!(
        c.cmd_str(&["ACL", "USERS"]),
        "*2\r\n$5\r\ncarol\r\n$7\r\ndefault\r\n"
    );
    let mut carol = s.client();
    assert_eq!(carol.cmd(&["AUTH", "carol", "cpw"]), b"+OK\r\n");
    // a file that does not parse stops the server at start
    std::fs::write(&path, "user x +nosuch\n").unwrap();
    let out = failed_serve(&["--aclfile", p]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Unknown command or category name in ACL"),
        "{text}"
    );
}

#[test]
fn rule_changes_reach_live_connections_and_deleted_users_are_disconnected() {
    let s = magpie(&[]);
    let mut admin = s.client();
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "u", "on", ">p", "~*", "+get"]),
        b"+OK\r\n"
    );
    let mut u = s.client();
    assert_eq!(u.cmd(&["AUTH", "u", "p"]), b"+OK\r\n");
    assert_eq!(u.cmd(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(
        u.cmd_str(&["SET", "k", "v"]),
        "-NOPERM this user has no permissions to run the 'set' command\r\n"
    );
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "u", "+set"]), b"+OK\r\n");
    assert_eq!(u.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert!(admin.cmd_str(&["CLIENT", "LIST"]).contains("user=u "));
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "u"]), b":1\r\n");
    u.send_cmd(&[b"GET", b"k"]);
    assert_eq!(u.read_to_close(), b"");
}

#[test]
fn acl_log_records_refusals_grouped_and_without_passwords() {
    let s = magpie(&[]);
    let mut admin = s.client();
    admin.cmd(&["ACL", "SETUSER", "u", "on", ">p", "~k:*", "+get"]);
    let mut u = s.client();
    assert!(u
        .cmd_str(&["AUTH", "u", "not-the-password"])
        .starts_with("-WRONGPASS"));
    u.cmd(&["AUTH", "u", "p"]);
    for _ in 0..3 {
        u.cmd(&["SET", "k:1", "v"]);
    }
    assert_eq!(
        u.cmd_str(&["GET", "other"]),
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
    let log = admin.cmd_str(&["ACL", "LOG"]);
    let entries: Vec<&str> = log.split("$5\r\ncount\r\n").skip(1).collect();
    assert_eq!(entries.len(), 3, "{log}");
    let field = |e: &str, name: &str| -> String {
        let at = e
            .find(&format!("${}\r\n{name}\r\n", name.len()))
            .unwrap_or_else(|| panic!("{name} in {e}"));
        let rest = &e[at + name.len() + 5 + name.len().to_string().len()..];
        let value = rest.split("\r\n").nth(1).unwrap();
        value.to_string()
    };
    // most recent first: the key, the command (three times), the login
    assert!(entries[0].starts_with(":1\r\n"), "{}", entries[0]);
    assert_eq!(field(entries[0], "reason"), "key");
    assert_eq!(field(entries[0], "object"), "other");
    assert!(entries[1].starts_with(":3\r\n"), "{}", entries[1]);
    assert_eq!(field(entries[1], "reason"), "command");
    assert_eq!(field(entries[1], "object"), "set");
    assert_eq!(field(entries[1], "username"), "u");
    assert_eq!(field(entries[2], "reason"), "auth");
    assert_eq!(field(entries[2], "object"), "AUTH");
    assert!(field(entries[2], "client-info").contains(" cmd=auth user=default "));
    assert!(!log.contains("not-the-password"));
    assert_eq!(
        admin
            .cmd_str(&["ACL", "LOG", "1"])
            .matches("$5\r\ncount\r\n")
            .count(),
        1
    );
    assert_eq!(admin.cmd(&["ACL", "LOG", "RESET"]), b"+OK\r\n");
    assert_eq!(admin.cmd(&["ACL", "LOG"]), b"*0\r\n");
}

#[test]
fn secrets_stay_out_of_slowlog_client_list_and_the_log() {
    let s = magpie(&[
        "--slowlog-log-slower-than",
        "0",
        "--command-log-sample",
        "1",
    ]);
    let mut c = s.client();
    c.cmd(&[
        "ACL",
        "SETUSER",
        "u",
        "on",
        ">hunter2-setuser",
        "+@all",
        "~*",
    ]);
    c.cmd(&["AUTH", "u", "hunter2-setuser"]);
    c.cmd(&["AUTH", "u", "hunter2-wrong"]);
    c.cmd(&["HELLO", "2", "AUTH", "u", "hunter2-setuser"]);
    c.cmd(&["CONFIG", "SET", "requirepass", "hunter2-config"]);
    c.cmd(&["AUTH", "hunter2-config"]);
    c.cmd(&["SET", "visible", "v"]);
    let slow = c.cmd_str(&["SLOWLOG", "GET", "100"]);
    assert!(slow.contains("visible"), "the slow log works: {slow}");
    let list = c.cmd_str(&["CLIENT", "LIST"]);
    let acl_log = c.cmd_str(&["ACL", "LOG"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let server_log = std::fs::read_to_string(log_path(s.port)).unwrap();
    assert!(
        server_log.contains("visible"),
        "the command log works: {server_log}"
    );
    for text in [&slow, &list, &acl_log, &server_log] {
        assert!(!text.contains("hunter2"), "a password leaked: {text}");
    }
}

#[test]
fn tag_invalidation_and_listing_are_dangerous_commands_on_every_door() {
    // INVALIDATE and TAG SCAN reach keys by tag or prefix, which key
    // patterns cannot limit: a user without @dangerous is refused them
    // over RESP, memcached and HTTP, and keeps the keyed TAG commands
    let (_d, path) = aclfile(
        "user default on >pw ~* &* +@all\n\
         user app on >apw ~cart:* +@all -@dangerous\n",
    );
    let (s, mc) = magpie_mc(&["--aclfile", path.to_str().unwrap()]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["AUTH", "app", "apw"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "cart:1", "v", "TAGS", "cart"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["TAG", "GET", "cart:1"]), b"*1\r\n$4\r\ncart\r\n");
    for cmd in [
        &["INVALIDATE", "TAG", "cart"][..],
        &["INVALIDATE", "PREFIX", "cart:"],
        &["TAG", "SCAN", "cart", "0"],
    ] {
        let reply = c.cmd_str(cmd);
        assert!(reply.starts_with("-NOPERM"), "{cmd:?}: {reply}");
    }
    assert_eq!(c.cmd(&["EXISTS", "cart:1"]), b":1\r\n");
    let category = c.cmd_str(&["ACL", "CAT", "dangerous"]);
    for name in ["invalidate|tag", "invalidate|prefix", "tag|scan"] {
        assert!(category.contains(name), "{category}");
    }
    // memcached: authenticated as app, the tag extension's mass operations
    // are refused
    let mut m = McRaw::connect(mc);
    assert_eq!(m.request(b"set a 0 0 7\r\napp apw\r\n"), b"STORED\r\n");
    for req in [
        &b"invalidate_tag cart\r\n"[..],
        b"invalidate_prefix cart:\r\n",
    ] {
        let reply = m.request(req);
        assert!(reply.starts_with(b"CLIENT_ERROR NOPERM"), "{reply:?}");
    }
    assert_eq!(c.cmd(&["EXISTS", "cart:1"]), b":1\r\n");
}
