//! Server and connection commands (INFO, COMMAND, CONFIG, TIME, SHUTDOWN,
//! AUTH, HELLO, CLIENT): byte-for-byte against a real redis-server where
//! the reply is deterministic, and by parsing where it is not.

mod common;

use common::*;

#[test]
fn connection_commands_match_redis() {
    differential(
        "HELLO 4
HELLO 1
HELLO x
HELLO 3 AUTH
HELLO 3 AUTH default
HELLO 3 SETNAME
HELLO 3 SETNAME \"a b\"
HELLO 2 FOO
HELLO AUTH default x
~ HELLO 2 SETNAME bar SETNAME baz
CLIENT GETNAME
AUTH
AUTH x
AUTH default x
AUTH bob x
AUTH a b c
CLIENT
CLIENT ID x
CLIENT FOO
CLIENT SETNAME
CLIENT SETNAME x y
CLIENT SETNAME \"a b\"
CLIENT SETNAME \"a\\nb\"
CLIENT SETNAME \"\\x01\"
CLIENT SETNAME conn-1
CLIENT GETNAME
CLIENT GETNAME x
CLIENT SETNAME \"\"
CLIENT GETNAME
CLIENT NO-EVICT on
CLIENT NO-EVICT OFF
CLIENT NO-EVICT x
CLIENT LIST x
CLIENT LIST TYPE
CLIENT LIST TYPE foo
CLIENT LIST TYPE pubsub
CLIENT LIST TYPE normal x
CLIENT LIST ID
CLIENT LIST ID x
CLIENT LIST ID 0
CLIENT LIST ID -5
CLIENT INFO x
~ CLIENT ID
~ HELLO 3
CLIENT GETNAME
CLIENT SETNAME r3
CLIENT GETNAME
~ CLIENT INFO
~ HELLO 2
CLIENT GETNAME",
    );
}

#[test]
fn config_matches_redis() {
    differential(
        "CONFIG
CONFIG GET
CONFIG FOO
CONFIG GET maxclients
CONFIG GET MAXCLIENTS
CONFIG GET requirepass
CONFIG GET databases
CONFIG GET proto-max-bulk-len
CONFIG GET client-query-buffer-limit
CONFIG GET hz
CONFIG GET bind
CONFIG GET save
CONFIG GET appendonly
CONFIG GET nosuch
CONFIG GET nosuch*
CONFIG GET hz hz
CONFIG GET hz HZ
CONFIG SET
CONFIG SET hz
CONFIG SET nosuch 1
CONFIG SET hz x
CONFIG SET hz -1
CONFIG SET hz 1e3
CONFIG SET hz 0
CONFIG GET hz
CONFIG SET hz 1000
CONFIG GET hz
CONFIG SET HZ 10
CONFIG SET maxclients x
CONFIG SET maxclients \" 100\"
CONFIG SET maxclients 0
CONFIG SET maxclients 99999999999
CONFIG SET maxclients 5000
CONFIG GET maxclients
CONFIG SET maxclients 10000
# magpie's upper bound is the engine's 4 GiB value limit, not LLONG_MAX
~ CONFIG SET proto-max-bulk-len 100
CONFIG SET proto-max-bulk-len x
CONFIG SET proto-max-bulk-len -1
CONFIG SET proto-max-bulk-len 1.5mb
CONFIG SET proto-max-bulk-len 2mB
CONFIG GET proto-max-bulk-len
CONFIG SET proto-max-bulk-len 2097153b
CONFIG GET proto-max-bulk-len
CONFIG SET proto-max-bulk-len 512mb
CONFIG SET client-query-buffer-limit 1
CONFIG SET client-query-buffer-limit 1gb
CONFIG SET requirepass \"\"
CONFIG GET requirepass
CONFIG SET hz 10 hz 11
CONFIG SET hz 10 nosuch 1
CONFIG SET hz 11 maxclients x
CONFIG GET hz
CONFIG SET hz 12 maxclients 9000
CONFIG GET hz
CONFIG GET maxclients
CONFIG SET hz 10 maxclients 10000
CONFIG SET hz 1 maxclients
CONFIG SET databases 3
CONFIG SET appendonly x
CONFIG SET appendonly no
CONFIG SET save \"\"
CONFIG RESETSTAT
CONFIG RESETSTAT x
~ HELLO 3
CONFIG GET hz
CONFIG GET maxclients",
    );
}

#[test]
fn command_errors_time_and_shutdown_arguments_match_redis() {
    differential(
        "COMMAND COUNT x
COMMAND INFO nosuch
COMMAND DOCS nosuch
COMMAND LIST x
COMMAND LIST FILTERBY MODULE x
COMMAND LIST FILTERBY ACLCAT nosuch
COMMAND LIST FILTERBY FOO x
COMMAND LIST FILTERBY
COMMAND FOO
~ COMMAND INFO get
~ TIME
TIME x
~ LASTSAVE
LASTSAVE x
SHUTDOWN FOO
SHUTDOWN ABORT
SHUTDOWN NOSAVE SAVE
SHUTDOWN ABORT NOW
SHUTDOWN NOW FORCE ABORT
INFO nosuch
INFO nosuch other",
    );
}

/// Parses a RESP2 array of bulk strings.
fn bulk_array(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply);
    let mut lines = text.split("\r\n");
    let head = lines.next().unwrap();
    assert!(head.starts_with('*'), "not an array: {text:?}");
    let n: usize = head[1..].parse().unwrap();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        assert!(lines.next().unwrap().starts_with('$'));
        out.push(lines.next().unwrap().to_string());
    }
    out
}

/// The body of a RESP2 bulk string reply.
fn bulk_body(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply).into_owned();
    let (head, body) = text.split_once("\r\n").unwrap();
    let len: usize = head[1..].parse().unwrap();
    assert_eq!(body.len(), len + 2);
    body[..len].to_string()
}

#[test]
fn command_count_and_list_cover_every_command() {
    let s = magpie(&[]);
    let mut c = s.client();
    let count = c.cmd_str(&["COMMAND", "COUNT"]);
    let all: Vec<&str> = magpie::resp::all().map(|c| c.name).collect();
    assert_eq!(count, format!(":{}\r\n", all.len()));
    let list = bulk_array(&c.cmd(&["COMMAND", "LIST"]));
    let top: Vec<&str> = list
        .iter()
        .map(|s| s.as_str())
        .filter(|n| !n.contains('|'))
        .collect();
    assert_eq!(
        top, all,
        "COMMAND LIST top-level names = the dispatch table"
    );
    for sub in ["client|setname", "config|get", "command|docs"] {
        assert!(list.iter().any(|n| n == sub), "{sub} listed");
    }
    // COMMAND (no args) has one entry per command
    assert!(c
        .cmd_str(&["COMMAND"])
        .starts_with(&format!("*{}\r\n*10\r\n", all.len())));
    let info = c.cmd_str(&["COMMAND", "INFO", "get", "nosuch", "CLIENT|ID"]);
    assert!(info.starts_with("*3\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n"), "{info}");
    assert!(
        info.contains("$-1\r\n*10\r\n$9\r\nclient|id\r\n:2\r\n"),
        "{info}"
    );
    let pattern = bulk_array(&c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "CONF*"]));
    assert_eq!(pattern[0], "config");
    assert!(pattern.iter().all(|n| n.starts_with("config")));
    let cat = bulk_array(&c.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection"]));
    for name in ["ping", "auth", "hello", "client|id"] {
        assert!(
            cat.iter().any(|n| n == name),
            "{name} in @connection: {cat:?}"
        );
    }
    assert!(!cat.iter().any(|n| n == "get"));
}

#[test]
fn command_docs_have_summary_since_group_and_arguments_in_both_protocols() {
    let s = magpie(&[]);
    let mut c = s.client();
    let docs = c.cmd_str(&["COMMAND", "DOCS", "get"]);
    assert!(
        docs.starts_with("*2\r\n$3\r\nget\r\n*8\r\n$7\r\nsummary\r\n"),
        "{docs}"
    );
    assert!(
        docs.contains("$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$9\r\narguments\r\n*1\r\n"),
        "{docs}"
    );
    // a command without arguments has no `arguments` field, as in Redis
    let dbsize = c.cmd_str(&["COMMAND", "DOCS", "dbsize"]);
    assert!(!dbsize.contains("arguments"), "{dbsize}");
    c.cmd(&["HELLO", "3"]);
    let docs = c.cmd_str(&["COMMAND", "DOCS", "get", "nosuch"]);
    assert!(
        docs.starts_with("%1\r\n$3\r\nget\r\n%4\r\n$7\r\nsummary\r\n"),
        "{docs}"
    );
    let client = c.cmd_str(&["COMMAND", "DOCS", "client"]);
    assert!(client.contains("$11\r\nsubcommands\r\n%"), "{client}");
    assert!(
        client.contains("$14\r\nclient|setname\r\n%4\r\n"),
        "{client}"
    );
    assert!(
        client.contains("$9\r\narguments\r\n*1\r\n%2\r\n$4\r\nname\r\n$15\r\nconnection-name\r\n"),
        "{client}"
    );
}

/// Where the RESP value starting at `at` ends.
fn value_end(buf: &[u8], at: usize) -> usize {
    let nl = at + buf[at..].windows(2).position(|w| w == b"\r\n").unwrap();
    let n = || -> i64 {
        std::str::from_utf8(&buf[at + 1..nl])
            .unwrap()
            .parse()
            .unwrap()
    };
    match buf[at] {
        b'$' | b'=' | b'!' => match n() {
            -1 => nl + 2,
            len => nl + 2 + len as usize + 2,
        },
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let items = n().max(0) * if matches!(buf[at], b'%' | b'|') { 2 } else { 1 };
            (0..items).fold(nl + 2, |pos, _| value_end(buf, pos))
        }
        _ => nl + 2,
    }
}

/// The raw bytes of the `arguments` field of the one entry of a
/// `COMMAND DOCS <name>` reply (RESP2 or RESP3), or None without one.
fn docs_arguments(reply: &[u8]) -> Option<&[u8]> {
    let text = String::from_utf8_lossy(reply);
    assert!(
        reply.starts_with(b"*2\r\n") || reply.starts_with(b"%1\r\n"),
        "one entry: {text}"
    );
    let doc = value_end(reply, 4); // past the name
    let fields = value_end(reply, doc);
    let mut pos = reply[doc..].iter().position(|&b| b == b'\n').unwrap() + doc + 1;
    while pos < fields {
        let key_end = value_end(reply, pos);
        let val_end = value_end(reply, key_end);
        if &reply[pos..key_end] == b"$9\r\narguments\r\n" {
            return Some(&reply[key_end..val_end]);
        }
        pos = val_end;
    }
    None
}

#[test]
fn command_docs_arguments_match_redis_byte_for_byte() {
    let Some(r) = redis() else { return };
    let m = magpie(&[]);
    let (mut mc, mut rc) = (m.client(), r.client());
    let served = bulk_array(&mc.cmd(&["COMMAND", "LIST"]));
    for proto in ["2", "3"] {
        mc.cmd(&["HELLO", proto]);
        rc.cmd(&["HELLO", proto]);
        for name in ["get", "set", "expire", "scan"] {
            let ours = mc.cmd(&["COMMAND", "DOCS", name]);
            let theirs = rc.cmd(&["COMMAND", "DOCS", name]);
            let (a, b) = (docs_arguments(&ours), docs_arguments(&theirs));
            assert!(b.is_some(), "redis-server documents {name}'s arguments");
            assert_eq!(
                a.map(String::from_utf8_lossy),
                b.map(String::from_utf8_lossy),
                "RESP{proto} COMMAND DOCS {name}"
            );
        }
        // and every other command (and subcommand) Redis 7.0 also has
        for name in served.iter().filter(|n| *n != "client|setinfo") {
            let ours = mc.cmd(&["COMMAND", "DOCS", name]);
            let theirs = rc.cmd(&["COMMAND", "DOCS", name]);
            assert_eq!(
                docs_arguments(&ours).map(String::from_utf8_lossy),
                docs_arguments(&theirs).map(String::from_utf8_lossy),
                "RESP{proto} COMMAND DOCS {name}"
            );
        }
    }
}

/// INFO text as `section -> [(field, value)]`, checking the layout.
fn parse_info(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    assert!(text.ends_with("\r\n"), "{text:?}");
    let mut sections = Vec::new();
    for block in text.trim_end_matches("\r\n").split("\r\n\r\n") {
        let mut lines = block.split("\r\n");
        let title = lines.next().unwrap();
        let name = title
            .strip_prefix("# ")
            .unwrap_or_else(|| panic!("bad title {title:?}"));
        let fields = lines
            .map(|l| {
                let (k, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad line {l:?}"));
                (k.to_string(), v.to_string())
            })
            .collect();
        sections.push((name.to_string(), fields));
    }
    sections
}

fn field<'a>(info: &'a [(String, Vec<(String, String)>)], section: &str, name: &str) -> &'a str {
    let (_, fields) = info
        .iter()
        .find(|(s, _)| s == section)
        .unwrap_or_else(|| panic!("no section {section}"));
    &fields
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {section}.{name}"))
        .1
}

#[test]
fn info_sections_fields_and_keyspace_counts() {
    let s = magpie(&["--databases", "4"]);
    let mut c = s.client();
    let mut other = s.client();
    other.cmd(&["PING"]);
    // the harness's port probe counts until the server sees it close
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !c
        .cmd_str(&["INFO", "clients"])
        .contains("connected_clients:2\r\n")
    {
        assert!(std::time::Instant::now() < deadline, "expected 2 clients");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let info = parse_info(&bulk_body(&c.cmd(&["INFO"])));
    let names: Vec<&str> = info.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Server",
            "Clients",
            "Memory",
            "Persistence",
            "Stats",
            "Replication",
            "Keyspace"
        ]
    );
    assert_eq!(field(&info, "Server", "redis_version"), "7.0.15");
    assert_eq!(
        field(&info, "Server", "magpie_version"),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(field(&info, "Server", "tcp_port"), s.port.to_string());
    assert_eq!(
        field(&info, "Server", "process_id"),
        s.child.id().to_string()
    );
    assert_eq!(field(&info, "Server", "run_id").len(), 40);
    assert_eq!(field(&info, "Clients", "connected_clients"), "2");
    assert_eq!(field(&info, "Clients", "maxclients"), "10000");
    let used: u64 = field(&info, "Memory", "used_memory").parse().unwrap();
    let rss: u64 = field(&info, "Memory", "used_memory_rss").parse().unwrap();
    assert!(used > 0 && rss > 0, "used {used} rss {rss}");
    assert_eq!(field(&info, "Replication", "role"), "master");
    assert!(
        info.last().unwrap().1.is_empty(),
        "empty keyspace lists no db"
    );

    // keyspace numbers, hits/misses and commands counted
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["SET", "b", "1"]);
    c.cmd(&["SET", "c", "1"]);
    c.cmd(&["SELECT", "2"]);
    c.cmd(&["SET", "d", "1"]);
    c.cmd(&["GET", "d"]);
    c.cmd(&["GET", "nope"]);
    let text = bulk_body(&c.cmd(&["INFO", "KEYSPACE", "stats", "nosuch"]));
    let info = parse_info(&text);
    assert_eq!(info.len(), 2);
    assert_eq!(info[0].0, "Stats");
    assert!(
        text.ends_with(
            "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\ndb2:keys=1,expires=0,avg_ttl=0\r\n"
        ),
        "{text}"
    );
    assert_eq!(field(&info, "Stats", "keyspace_hits"), "1");
    assert_eq!(field(&info, "Stats", "keyspace_misses"), "1");
    assert!(
        field(&info, "Stats", "total_commands_processed")
            .parse::<u64>()
            .unwrap()
            >= 8
    );
    assert!(
        field(&info, "Stats", "total_connections_received")
            .parse::<u64>()
            .unwrap()
            >= 2
    );

    // RESETSTAT zeroes the counters
    c.cmd(&["CONFIG", "RESETSTAT"]);
    let info = parse_info(&bulk_body(&c.cmd(&["INFO", "stats"])));
    assert_eq!(field(&info, "Stats", "keyspace_hits"), "0");
    assert_eq!(field(&info, "Stats", "keyspace_misses"), "0");

    // default gives the seven plain sections; all / everything add
    // commandstats and latencystats, as Redis does. RESP3 is verbatim text
    for (arg, sections) in [("all", 9), ("EVERYTHING", 9), ("default", 7)] {
        assert_eq!(
            parse_info(&bulk_body(&c.cmd(&["INFO", arg]))).len(),
            sections,
            "INFO {arg}"
        );
    }
    c.cmd(&["HELLO", "3"]);
    let v = c.cmd_str(&["INFO", "server"]);
    assert!(
        v.starts_with('=') && v.contains("\r\ntxt:# Server\r\nredis_version:7.0.15\r\n"),
        "{v}"
    );
}

#[test]
fn client_list_and_info_show_names_db_and_protocol() {
    let s = magpie(&[]);
    let mut a = s.client();
    let mut b = s.client();
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", "alpha"]), b"+OK\r\n");
    assert_eq!(
        a.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"]),
        b"+OK\r\n"
    );
    assert_eq!(a.cmd(&["CLIENT", "SETINFO", "lib-ver", "1.2"]), b"+OK\r\n");
    assert_eq!(
        a.cmd(&["CLIENT", "SETINFO", "lib-ver", "1 2"]),
        b"-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        a.cmd(&["CLIENT", "SETINFO", "x", "1"]),
        b"-ERR Unrecognized option 'x'\r\n"
    );
    a.cmd(&["SELECT", "5"]);
    b.cmd(&["HELLO", "3", "SETNAME", "beta"]);
    let a_id = a.cmd_str(&["CLIENT", "ID"]);
    let a_id = a_id.trim_start_matches(':').trim_end();
    let list = bulk_body(&a.cmd(&["CLIENT", "LIST"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    let mine = lines
        .iter()
        .find(|l| l.starts_with(&format!("id={a_id} ")))
        .unwrap();
    for part in [
        "name=alpha",
        "db=5",
        "cmd=client|list",
        "resp=2",
        "lib-name=mylib",
        "lib-ver=1.2",
        "flags=N",
        "user=default",
    ] {
        assert!(mine.split(' ').any(|f| f == part), "{part} in {mine}");
    }
    let fields: Vec<&str> = mine
        .split(' ')
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert_eq!(
        &fields[..8],
        ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags"],
        "Redis field order"
    );
    let theirs = lines
        .iter()
        .find(|l| !l.starts_with(&format!("id={a_id} ")))
        .unwrap();
    assert!(
        theirs.contains(" name=beta ") && theirs.contains(" resp=3"),
        "{theirs}"
    );
    assert!(theirs.contains(" cmd=hello "), "{theirs}");
    // ID filter and the verbatim form in RESP3
    let only = bulk_body(&a.cmd(&["CLIENT", "LIST", "ID", a_id, "999999"]));
    assert_eq!(only.lines().count(), 1);
    let info = b.cmd_str(&["CLIENT", "INFO"]);
    assert!(
        info.starts_with('=') && info.contains("txt:id=") && info.contains(" name=beta "),
        "{info}"
    );
    assert!(info.contains(" cmd=client|info "), "{info}");
    let help = a.cmd_str(&["CLIENT", "HELP"]);
    assert!(
        help.starts_with("*") && help.contains("+SETNAME <name>\r\n"),
        "{help}"
    );
}

#[test]
fn config_set_changes_take_effect() {
    let s = magpie(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "pw"]), b"+OK\r\n");
    // existing connections stay authenticated, new ones must AUTH
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    let mut n = s.client();
    assert_eq!(n.cmd(&["PING"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(n.cmd(&["AUTH", "pw"]), b"+OK\r\n");
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "requirepass"]),
        "*2\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    assert_eq!(s.client().cmd(&["PING"]), b"+PONG\r\n");
    // a new maxclients applies to the next connection
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxclients", "2"]), b"+OK\r\n");
    let mut third = s.client();
    assert_eq!(
        third.read_to_close(),
        b"-ERR max number of clients reached\r\n"
    );
    // save/appendonly exist so tools work; persistence is chosen at start
    // (this server is --ephemeral), never switched by CONFIG SET
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"])[0], b'-');
    let globbed = bulk_array(&c.cmd(&["CONFIG", "GET", "*"]));
    for name in [
        "maxclients",
        "requirepass",
        "databases",
        "proto-max-bulk-len",
        "client-query-buffer-limit",
        "hz",
        "port",
        "bind",
        "save",
        "appendonly",
    ] {
        assert!(
            globbed.iter().step_by(2).any(|n| n == name),
            "{name} in CONFIG GET *"
        );
    }
}

#[test]
fn shutdown_closes_without_reply_and_stops_the_server() {
    let mut s = magpie(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SHUTDOWN", "FOO"]), b"-ERR syntax error\r\n");
    c.send(&encode(&[b"SHUTDOWN", b"NOSAVE", b"NOW"]));
    assert_eq!(c.read_to_close(), b"", "no reply, connection closed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server still running after SHUTDOWN"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
