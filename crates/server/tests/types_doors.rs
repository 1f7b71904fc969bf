//! What the memcached door sees of a key holding a hash or a set (written
//! over RESP): a miss for every read, a refusal for every write, and no
//! delete, so a memcached client can never overwrite or drop a collection
//! by accident. Persistence of collections across a restart, through the
//! real binary.

mod common;

use common::*;

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

#[test]
fn memcached_sees_a_collection_as_a_miss_and_cannot_change_it() {
    let (server, mc_port) = magpie_mc(&[]);
    let mut r = server.client();
    assert_eq!(r.cmd_str(&["HSET", "h", "f", "v"]), ":1\r\n");
    assert_eq!(r.cmd_str(&["SADD", "s", "m"]), ":1\r\n");
    let mut mc = McRaw::connect(mc_port);
    for k in ["h", "s"] {
        // reads: a miss
        assert_eq!(
            text(mc.request(format!("get {k}\r\n").as_bytes())),
            "END\r\n"
        );
        assert_eq!(
            text(mc.request(format!("gets {k}\r\n").as_bytes())),
            "END\r\n"
        );
        assert_eq!(
            text(mc.request(format!("gat 100 {k}\r\n").as_bytes())),
            "END\r\n"
        );
        assert_eq!(
            text(mc.request(format!("touch {k} 100\r\n").as_bytes())),
            "NOT_FOUND\r\n"
        );
        assert_eq!(
            text(mc.request(format!("mg {k} v\r\n").as_bytes())),
            "EN\r\n"
        );
        // writes: refused, and nothing changes
        for op in ["set", "add", "replace", "append", "prepend"] {
            let req = format!("{op} {k} 0 0 1\r\nx\r\n");
            assert_eq!(text(mc.request(req.as_bytes())), "NOT_STORED\r\n", "{op}");
        }
        assert_eq!(
            text(mc.request(format!("cas {k} 0 0 1 1\r\nx\r\n").as_bytes())),
            "NOT_STORED\r\n"
        );
        assert_eq!(
            text(mc.request(format!("ms {k} 1\r\nx\r\n").as_bytes())),
            "NS\r\n"
        );
        assert_eq!(
            text(mc.request(format!("incr {k} 1\r\n").as_bytes())),
            "NOT_FOUND\r\n"
        );
        assert_eq!(text(mc.request(format!("ma {k}\r\n").as_bytes())), "NF\r\n");
        assert_eq!(
            text(mc.request(format!("ma {k} N0 J5\r\n").as_bytes())),
            "NF\r\n"
        );
        assert_eq!(
            text(mc.request(format!("mg {k} N30 v\r\n").as_bytes())),
            "EN\r\n"
        );
        // deletes: not found, and the collection stays
        assert_eq!(
            text(mc.request(format!("delete {k}\r\n").as_bytes())),
            "NOT_FOUND\r\n"
        );
        assert_eq!(text(mc.request(format!("md {k}\r\n").as_bytes())), "NF\r\n");
    }
    assert_eq!(r.cmd_str(&["HGET", "h", "f"]), "$1\r\nv\r\n");
    assert_eq!(r.cmd_str(&["SMEMBERS", "s"]), "*1\r\n$1\r\nm\r\n");
    assert_eq!(r.cmd_str(&["TTL", "h"]), ":-1\r\n");
    // a string key is served as before
    assert_eq!(text(mc.request(b"set str 0 0 1\r\nx\r\n")), "STORED\r\n");
    assert_eq!(
        r.cmd_str(&["HSET", "str", "f", "v"]),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
}

#[test]
fn collections_survive_a_restart_of_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let want = {
        let server = magpie(&["--dir", d]);
        let mut c = server.client();
        assert_eq!(c.cmd_str(&["HSET", "h", "a", "1", "b", "2"]), ":2\r\n");
        assert_eq!(c.cmd_str(&["HDEL", "h", "a"]), ":1\r\n");
        assert_eq!(
            c.cmd_str(&["HINCRBYFLOAT", "h", "f", "1.5"]),
            "$3\r\n1.5\r\n"
        );
        assert_eq!(c.cmd_str(&["SADD", "s", "1", "2", "x"]), ":3\r\n");
        assert_eq!(c.cmd_str(&["SREM", "s", "2"]), ":1\r\n");
        assert_eq!(c.cmd_str(&["EXPIRE", "s", "1000"]), ":1\r\n");
        assert_eq!(c.cmd_str(&["SADD", "gone", "x"]), ":1\r\n");
        assert_eq!(c.cmd_str(&["SREM", "gone", "x"]), ":1\r\n");
        let mut args: Vec<String> = vec!["SADD".into(), "big".into()];
        args.extend((0..1000).map(|i| format!("m{i}")));
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        assert_eq!(c.cmd_str(&refs), ":1000\r\n");
        (
            c.cmd_str(&["HGETALL", "h"]),
            c.cmd_str(&["SMEMBERS", "s"]),
            c.cmd_str(&["SCARD", "big"]),
            c.cmd_str(&["OBJECT", "ENCODING", "s"]),
        )
    };
    let server = magpie(&["--dir", d]);
    let mut c = server.client();
    let got = (
        c.cmd_str(&["HGETALL", "h"]),
        c.cmd_str(&["SMEMBERS", "s"]),
        c.cmd_str(&["SCARD", "big"]),
        c.cmd_str(&["OBJECT", "ENCODING", "s"]),
    );
    assert_eq!(got, want);
    assert_eq!(c.cmd_str(&["EXISTS", "gone"]), ":0\r\n");
    let ttl: i64 = c
        .cmd_str(&["TTL", "s"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!((990..=1000).contains(&ttl), "{ttl}");
    assert_eq!(c.cmd_str(&["SISMEMBER", "big", "m999"]), ":1\r\n");
}

#[test]
fn http_reads_a_collection_as_absent_and_refuses_to_write_it() {
    let port = free_port();
    let p = port.to_string();
    let server = magpie(&["--http-port", &p]);
    let mut r = server.client();
    assert_eq!(r.cmd_str(&["HSET", "h", "f", "v"]), ":1\r\n");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://127.0.0.1:{port}/v1/keys/h");
    let status = |res: Result<ureq::http::Response<ureq::Body>, ureq::Error>| {
        let mut res = res.unwrap();
        let code = res.status().as_u16();
        let body = res.body_mut().read_to_string().unwrap_or_default();
        (code, body)
    };
    // the HTTP listener may still be starting
    let mut get = (0, String::new());
    for _ in 0..100 {
        match agent.get(&url).call() {
            Ok(res) => {
                get = status(Ok(res));
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    assert_eq!(get.0, 404, "{get:?}");
    let put = status(agent.put(&url).send("x"));
    assert_eq!(put.0, 409, "{put:?}");
    assert!(put.1.contains("wrong_type"), "{put:?}");
    let del = status(agent.delete(&url).call());
    assert_eq!(del.0, 409, "{del:?}");
    let incr = status(agent.post(&format!("{url}/incr")).send(""));
    assert_eq!(incr.0, 409, "{incr:?}");
    assert!(incr.1.contains("wrong_type"), "{incr:?}");
    assert_eq!(r.cmd_str(&["HGETALL", "h"]), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
}

/// A hash or a set carries no tags: TAG ADD refuses it with WRONGTYPE and
/// changes nothing, a tagged string a collection replaces leaves its tag,
/// and every tag listing (TAG SCAN WITHVALUES, memcached's tag_keys) stays
/// clean; overwriting, invalidating, expiring and renaming the hash after
/// the refused TAG ADD all work, and the server keeps serving.
#[test]
fn tags_refuse_a_collection_and_listings_never_show_one() {
    let (server, mc_port) = magpie_mc(&[]);
    let mut r = server.client();
    let wrongtype = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(r.cmd_str(&["HSET", "h", "f", "v"]), ":1\r\n");
    assert_eq!(r.cmd_str(&["SADD", "s", "m"]), ":1\r\n");
    assert_eq!(r.cmd_str(&["TAG", "ADD", "h", "t"]), wrongtype);
    assert_eq!(r.cmd_str(&["TAG", "ADD", "s", "t"]), wrongtype);
    assert_eq!(r.cmd_str(&["TAG", "REMOVE", "h", "t"]), ":0\r\n");
    assert_eq!(r.cmd_str(&["TAG", "GET", "h"]), "*0\r\n");
    assert_eq!(r.cmd_str(&["HGET", "h", "f"]), "$1\r\nv\r\n");
    // a tagged string, then a collection copied over it: the tag is gone
    assert_eq!(r.cmd_str(&["SET", "k", "x", "TAGS", "t"]), "+OK\r\n");
    assert_eq!(r.cmd_str(&["SET", "j", "y", "TAGS", "t"]), "+OK\r\n");
    assert_eq!(r.cmd_str(&["COPY", "h", "k", "REPLACE"]), ":1\r\n");
    assert_eq!(r.cmd_str(&["TAG", "CARD", "t"]), ":1\r\n");
    assert_eq!(
        r.cmd_str(&["TAG", "SCAN", "t", "0", "WITHVALUES"]),
        "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nj\r\n$1\r\ny\r\n"
    );
    let mut mc = McRaw::connect(mc_port);
    assert_eq!(text(mc.request(b"tag_keys t 0\r\n")), "KEY j\r\nEND 0\r\n");
    // the hash under every path that rebuilds or drops an entry
    assert_eq!(r.cmd_str(&["EXPIRE", "h", "100"]), ":1\r\n");
    assert_eq!(r.cmd_str(&["PERSIST", "h"]), ":1\r\n");
    assert_eq!(r.cmd_str(&["RENAME", "h", "h2"]), "+OK\r\n");
    assert_eq!(r.cmd_str(&["HGET", "h2", "f"]), "$1\r\nv\r\n");
    assert_eq!(r.cmd_str(&["INVALIDATE", "PREFIX", "h"]), ":1\r\n");
    assert_eq!(r.cmd_str(&["EXISTS", "h2"]), ":0\r\n");
    assert_eq!(r.cmd_str(&["HSET", "h2", "f", "w"]), ":1\r\n");
    assert_eq!(r.cmd_str(&["PEXPIRE", "k", "1"]), ":1\r\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(r.cmd_str(&["EXISTS", "k"]), ":0\r\n");
    assert_eq!(r.cmd_str(&["SET", "s", "str", "TAGS", "t"]), "+OK\r\n");
    assert_eq!(r.cmd_str(&["TAG", "CARD", "t"]), ":2\r\n");
    assert_eq!(r.cmd_str(&["INVALIDATE", "TAG", "t"]), ":2\r\n");
    assert_eq!(r.cmd_str(&["EXISTS", "j", "s"]), ":0\r\n");
    assert_eq!(r.cmd_str(&["HGET", "h2", "f"]), "$1\r\nw\r\n");
    assert_eq!(r.cmd_str(&["PING"]), "+PONG\r\n");
}
