//! The memcached front door at its edges, over real sockets: the
//! "memcached-lite" `set <key> <bytes>` form and the stats groups
//! monitoring tools read.

mod common;

use common::*;

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

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

/// `stats items|slabs|sizes|conns` in memcached's line format with the
/// figures magpie has.
#[test]
fn stats_groups_have_memcacheds_format() {
    let (s, port) = magpie_mc(&[]);
    let mut c = McRaw::connect(port);
    // empty: no item class at all, as memcached prints for an empty cache
    assert_eq!(c.request(b"stats items\r\n"), b"END\r\n");
    let slabs = text(c.request(b"stats slabs\r\n"));
    let lines: Vec<&str> = slabs.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{slabs}");
    assert_eq!(lines[0], "STAT active_slabs 0");
    let empty_malloced: usize = lines[1]
        .strip_prefix("STAT total_malloced ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(&lines[2..], ["END", ""]);
    assert_eq!(
        c.request(b"stats sizes\r\n"),
        b"STAT sizes_status disabled\r\nEND\r\n"
    );
    // two items: header 17 + key + value, + 8 with a TTL, + 4 with flags
    c.request(b"set a 0 0 1\r\nx\r\nset bb 5 100 3\r\nxyz\r\n");
    // keys in other databases are not memcached's
    let mut r = s.client();
    assert_eq!(r.cmd(&["SELECT", "1"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["SET", "elsewhere", "v"]), b"+OK\r\n");
    assert_eq!(
        text(c.request(b"stats items\r\n")),
        "STAT items:1:number 2\r\n\
         STAT items:1:mem_requested 53\r\n\
         STAT items:1:evicted 0\r\n\
         STAT items:1:evicted_nonzero 0\r\n\
         STAT items:1:evicted_time 0\r\n\
         STAT items:1:outofmemory 0\r\n\
         END\r\n"
    );
    let slabs = text(c.request(b"stats slabs\r\n"));
    let malloced: usize = slabs
        .split("\r\n")
        .find_map(|l| l.strip_prefix("STAT total_malloced "))
        .unwrap()
        .parse()
        .unwrap();
    // the entries, plus whatever the hash tables grew by
    assert!(
        (empty_malloced + 53..empty_malloced + 53 + 4096).contains(&malloced),
        "{empty_malloced} then {slabs}"
    );
    // extra words after the group are ignored, as memcached ignores them
    assert_eq!(
        c.request(b"stats sizes now\r\n"),
        b"STAT sizes_status disabled\r\nEND\r\n"
    );
    assert_eq!(c.request(b"stats sizes_enable\r\n"), b"ERROR\r\n");
}

#[test]
fn stats_conns_lists_each_memcached_client() {
    let (s, port) = magpie_mc(&[]);
    let mut a = McRaw::connect(port);
    let b = McRaw::connect(port);
    // a RESP client is not a memcached connection
    let mut r = s.client();
    assert_eq!(r.cmd(&["PING"]), b"+PONG\r\n");
    // (the harness's readiness probe may still be registered for a moment)
    let mut conns = String::new();
    for _ in 0..100 {
        conns = text(a.request(b"stats conns\r\n"));
        if conns.matches(":addr ").count() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(conns.ends_with("END\r\n"), "{conns}");
    let lines: Vec<&str> = conns.trim_end_matches("END\r\n").lines().collect();
    assert_eq!(lines.len(), 6, "{conns}");
    let mut fds = Vec::new();
    for client in [
        a.stream.local_addr().unwrap(),
        b.stream.local_addr().unwrap(),
    ] {
        let addr_line = lines
            .iter()
            .find(|l| l.ends_with(&format!(":addr tcp:{client}")))
            .unwrap_or_else(|| panic!("no line for {client} in {conns}"));
        let fd: u32 = addr_line
            .strip_prefix("STAT ")
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            lines.contains(&format!("STAT {fd}:listen_addr tcp:127.0.0.1:{port}").as_str()),
            "{conns}"
        );
        let secs: u64 = lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("STAT {fd}:secs_since_last_cmd ")))
            .unwrap_or_else(|| panic!("no secs_since_last_cmd for {fd}: {conns}"))
            .parse()
            .unwrap();
        assert!(secs < 5, "{conns}");
        fds.push(fd);
    }
    // grouped by descriptor, in ascending order, as memcached lists them
    fds.sort();
    assert!(
        lines[0].starts_with(&format!("STAT {}:", fds[0])),
        "{conns}"
    );
    assert!(
        lines[3].starts_with(&format!("STAT {}:", fds[1])),
        "{conns}"
    );
    drop(b);
    let mut left = String::new();
    for _ in 0..100 {
        left = text(a.request(b"stats conns\r\n"));
        if left.matches(":addr ").count() == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(left.matches(":addr ").count(), 1, "{left}");
}
