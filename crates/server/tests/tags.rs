//! Tags over the RESP door, through real sockets with the `redis` crate and
//! raw bytes: the two stories, every command's replies and errors,
//! the limits at their edges, COMMAND DOCS, CONFIG, INFO, and a restart.

mod common;

use std::collections::BTreeSet;

use common::*;

fn con(s: &Server) -> redis::Connection {
    redis::Client::open(s.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Every key TAG SCAN lists for `tag`, walking the cursor to its end.
fn members(c: &mut redis::Connection, tag: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("TAG")
            .arg("SCAN")
            .arg(tag)
            .arg(&cursor)
            .arg("COUNT")
            .arg(100)
            .query(c)
            .unwrap();
        out.extend(keys);
        if next == "0" {
            return out;
        }
        cursor = next;
    }
}

#[test]
fn a_cart_of_1500_keys_goes_in_one_call_and_the_next_cart_stays() {
    let s = magpie(&[]);
    let mut c = con(&s);
    let mut pipe = redis::pipe();
    for cart in [13, 14] {
        for i in 0..1500 {
            let key = format!("get_items_in_cart::{cart}:{}:{}", 10 + i % 7, i);
            pipe.cmd("SET")
                .arg(key)
                .arg("[items]")
                .arg("EX")
                .arg(3600)
                .arg("TAGS")
                .arg(format!("cart:{cart}"))
                .ignore();
        }
    }
    let () = pipe.query(&mut c).unwrap();
    let card: i64 = redis::cmd("TAG")
        .arg("CARD")
        .arg("cart:13")
        .query(&mut c)
        .unwrap();
    assert_eq!(card, 1500);
    let n: i64 = redis::cmd("INVALIDATE")
        .arg("TAG")
        .arg("cart:13")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1500);
    // gone on every read path at once
    let k13 = "get_items_in_cart::13:10:0";
    let k14 = "get_items_in_cart::14:10:0";
    let v: Option<String> = redis::cmd("GET").arg(k13).query(&mut c).unwrap();
    assert_eq!(v, None);
    let both: Vec<Option<String>> = redis::cmd("MGET").arg(k13).arg(k14).query(&mut c).unwrap();
    assert_eq!(both, [None, Some("[items]".to_string())]);
    let e: i64 = redis::cmd("EXISTS").arg(k13).query(&mut c).unwrap();
    assert_eq!(e, 0);
    let ttl: i64 = redis::cmd("TTL").arg(k13).query(&mut c).unwrap();
    assert_eq!(ttl, -2);
    let t: String = redis::cmd("TYPE").arg(k13).query(&mut c).unwrap();
    assert_eq!(t, "none");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("get_items_in_cart::13:*")
        .query(&mut c)
        .unwrap();
    assert!(keys.is_empty());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("get_items_in_cart::14:*")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys.len(), 1500);
    for _ in 0..50 {
        let k: String = redis::cmd("RANDOMKEY").query(&mut c).unwrap();
        assert!(k.starts_with("get_items_in_cart::14:"), "{k}");
    }
    assert!(members(&mut c, "cart:13").is_empty());
    assert_eq!(members(&mut c, "cart:14").len(), 1500);
    // a write to an invalidated key is a write to a missing key
    let added: i64 = redis::cmd("SETNX").arg(k13).arg("x").query(&mut c).unwrap();
    assert_eq!(added, 1);
    let k13b = "get_items_in_cart::13:10:7";
    let n: i64 = redis::cmd("INCR").arg(k13b).query(&mut c).unwrap();
    assert_eq!(n, 1);
    // the background cycle reclaims the rest: DBSIZE converges
    let mut size = 0;
    for _ in 0..200 {
        size = redis::cmd("DBSIZE").query(&mut c).unwrap();
        if size == 1502 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(size, 1502);
}

#[test]
fn the_category_index_story_needs_no_client_side_cleanup() {
    let s = magpie(&[]);
    let mut c = con(&s);
    for id in 1..=20 {
        let () = redis::cmd("SET")
            .arg(format!("Item:{id}"))
            .arg(format!("{{\"id\":{id},\"category\":5}}"))
            .arg("TAGS")
            .arg("Item:CategoryID=5")
            .query(&mut c)
            .unwrap();
    }
    // item 7 moves to category 6: one write, its new tag replaces the old
    let () = redis::cmd("SET")
        .arg("Item:7")
        .arg("{\"id\":7,\"category\":6}")
        .arg("TAGS")
        .arg("Item:CategoryID=6")
        .query(&mut c)
        .unwrap();
    let five = members(&mut c, "Item:CategoryID=5");
    assert_eq!(five.len(), 19);
    assert!(!five.contains("Item:7"));
    assert_eq!(
        members(&mut c, "Item:CategoryID=6"),
        BTreeSet::from(["Item:7".to_string()])
    );
    let card: i64 = redis::cmd("TAG")
        .arg("CARD")
        .arg("Item:CategoryID=5")
        .query(&mut c)
        .unwrap();
    assert_eq!(card, 19);
    // WITHVALUES gives the index node's rows in one reply
    let (next, flat): (String, Vec<String>) = redis::cmd("TAG")
        .arg("SCAN")
        .arg("Item:CategoryID=6")
        .arg(0)
        .arg("WITHVALUES")
        .query(&mut c)
        .unwrap();
    assert_eq!(next, "0");
    assert_eq!(flat, ["Item:7", "{\"id\":7,\"category\":6}"]);
    // deleted members leave the index too
    let _: i64 = redis::cmd("DEL").arg("Item:1").query(&mut c).unwrap();
    assert!(!members(&mut c, "Item:CategoryID=5").contains("Item:1"));
}

#[test]
fn tag_commands_reply_as_documented() {
    let s = magpie(&[]);
    let mut r = s.client();
    assert_eq!(r.cmd(&["SET", "k", "v", "TAGS", "b", "a", "b"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["TAG", "GET", "k"]), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(r.cmd(&["TAG", "ADD", "k", "c", "a"]), b":1\r\n");
    assert_eq!(r.cmd(&["TAG", "REMOVE", "k", "b", "nope"]), b":1\r\n");
    assert_eq!(r.cmd(&["TAG", "GET", "k"]), b"*2\r\n$1\r\na\r\n$1\r\nc\r\n");
    assert_eq!(r.cmd(&["TAG", "GET", "missing"]), b"*0\r\n");
    assert_eq!(r.cmd(&["TAG", "ADD", "missing", "a"]), b":0\r\n");
    assert_eq!(r.cmd(&["TAG", "CARD", "a"]), b":1\r\n");
    assert_eq!(r.cmd(&["TAG", "CARD", "none"]), b":0\r\n");
    assert_eq!(
        r.cmd(&["TAG", "SCAN", "a", "0"]),
        b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"
    );
    assert_eq!(
        r.cmd(&["TAG", "SCAN", "a", "0", "COUNT", "5", "WITHVALUES"]),
        b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n"
    );
    // in-place changes keep the tags, a plain SET clears them
    assert_eq!(r.cmd(&["APPEND", "k", "w"]), b":2\r\n");
    assert_eq!(r.cmd(&["EXPIRE", "k", "100"]), b":1\r\n");
    assert_eq!(r.cmd(&["TAG", "CARD", "c"]), b":1\r\n");
    assert_eq!(r.cmd(&["RENAME", "k", "k2"]), b"+OK\r\n");
    assert_eq!(
        r.cmd(&["TAG", "GET", "k2"]),
        b"*2\r\n$1\r\na\r\n$1\r\nc\r\n"
    );
    assert_eq!(r.cmd(&["COPY", "k2", "k3"]), b":1\r\n");
    assert_eq!(r.cmd(&["TAG", "CARD", "a"]), b":2\r\n");
    assert_eq!(r.cmd(&["COPY", "k2", "k2", "DB", "1"]), b":1\r\n");
    assert_eq!(r.cmd(&["SELECT", "1"]), b"+OK\r\n");
    assert_eq!(
        r.cmd(&["TAG", "GET", "k2"]),
        b"*2\r\n$1\r\na\r\n$1\r\nc\r\n"
    );
    assert_eq!(
        r.cmd(&["TAG", "CARD", "a"]),
        b":1\r\n",
        "tags belong to their database"
    );
    assert_eq!(r.cmd(&["SELECT", "0"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["SET", "k2", "plain"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["TAG", "GET", "k2"]), b"*0\r\n");
    // SET's other options work beside TAGS, which comes last
    assert_eq!(
        r.cmd(&["SET", "n", "1", "NX", "EX", "50", "TAGS", "t"]),
        b"+OK\r\n"
    );
    assert_eq!(r.cmd(&["SET", "n", "2", "NX", "TAGS", "t"]), b"$-1\r\n");
    assert_eq!(
        r.cmd(&["SET", "n", "3", "GET", "TAGS", "u"]),
        b"$1\r\n1\r\n"
    );
    assert_eq!(r.cmd(&["TAG", "GET", "n"]), b"*1\r\n$1\r\nu\r\n");
    assert_eq!(r.cmd(&["SET", "n", "3", "TAGS"]), b"-ERR syntax error\r\n");
    assert_eq!(
        r.cmd(&["SET", "n", "3", "TAGS", "x", "EX", "5"]),
        b"+OK\r\n"
    );
    assert_eq!(
        r.cmd(&["TAG", "GET", "n"]),
        b"*3\r\n$1\r\n5\r\n$2\r\nEX\r\n$1\r\nx\r\n",
        "TAGS takes the rest of the arguments"
    );
    // invalidation
    assert_eq!(r.cmd(&["INVALIDATE", "TAG", "a", "x"]), b":2\r\n");
    assert_eq!(r.cmd(&["EXISTS", "k3", "n"]), b":0\r\n");
    assert_eq!(r.cmd(&["INVALIDATE", "TAG", "nosuch"]), b":0\r\n");
    assert_eq!(
        r.cmd(&["MSET", "user:1:a", "1", "user:1:b", "2", "user:2:a", "3"]),
        b"+OK\r\n"
    );
    assert_eq!(r.cmd(&["INVALIDATE", "PREFIX", "user:1:"]), b":1\r\n");
    assert_eq!(
        r.cmd(&["MGET", "user:1:a", "user:2:a"]),
        b"*2\r\n$-1\r\n$1\r\n3\r\n"
    );
    assert_eq!(r.cmd(&["SET", "user:1:a", "new"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["GET", "user:1:a"]), b"$3\r\nnew\r\n");
    // errors in Redis's style
    assert_eq!(
        r.cmd(&["TAG", "ADD", "k3"]),
        b"-ERR wrong number of arguments for 'tag|add' command\r\n"
    );
    assert_eq!(
        r.cmd(&["TAG", "NOPE"]),
        b"-ERR unknown subcommand 'NOPE'. Try TAG HELP.\r\n"
    );
    assert_eq!(
        r.cmd(&["TAG", "SCAN", "a", "x"]),
        b"-ERR invalid cursor\r\n"
    );
    assert_eq!(
        r.cmd(&["TAG", "SCAN", "a", "0", "COUNT", "0"]),
        b"-ERR syntax error\r\n"
    );
    assert_eq!(
        r.cmd(&["TAG", "SCAN", "a", "0", "COUNT", "z"]),
        b"-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        r.cmd(&["TAG", "SCAN", "a", "0", "BOGUS"]),
        b"-ERR syntax error\r\n"
    );
    assert_eq!(
        r.cmd(&["INVALIDATE", "KEY", "a"]),
        b"-ERR unknown subcommand 'KEY'. Try INVALIDATE HELP.\r\n"
    );
    assert!(r.cmd_str(&["TAG", "HELP"]).contains("SCAN <tag> <cursor>"));
}

#[test]
fn tag_limits_are_enforced_at_their_edges_and_configurable() {
    let s = magpie(&["--max-tags-per-key", "3", "--max-tag-len", "5"]);
    let mut r = s.client();
    assert_eq!(
        r.cmd(&["SET", "k", "v", "TAGS", "a", "b", "ccccc"]),
        b"+OK\r\n"
    );
    assert_eq!(
        r.cmd(&["SET", "k", "w", "TAGS", "a", "b", "c", "d"]),
        b"-ERR a key may carry at most 3 tags (max-tags-per-key)\r\n"
    );
    assert_eq!(
        r.cmd(&["SET", "k", "w", "GET", "TAGS", "dddddd"]),
        b"-ERR a tag may be at most 5 bytes long (max-tag-len)\r\n",
        "refused before GET replies"
    );
    assert_eq!(r.cmd(&["GET", "k"]), b"$1\r\nv\r\n", "nothing changed");
    assert_eq!(
        r.cmd(&["TAG", "ADD", "k", "z"]),
        b"-ERR a key may carry at most 3 tags (max-tags-per-key)\r\n"
    );
    assert_eq!(
        r.cmd(&["INVALIDATE", "PREFIX", "abcdef"]),
        b"-ERR a prefix may be at most 5 bytes long (max-tag-len)\r\n"
    );
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "max-tag*"]),
        b"*4\r\n$16\r\nmax-tags-per-key\r\n$1\r\n3\r\n$11\r\nmax-tag-len\r\n$1\r\n5\r\n"
    );
    assert_eq!(
        r.cmd(&["CONFIG", "SET", "max-tags-per-key", "4"]),
        b"+OK\r\n"
    );
    assert_eq!(r.cmd(&["TAG", "ADD", "k", "z"]), b":1\r\n");
    assert!(r
        .cmd_str(&["CONFIG", "SET", "max-tag-len", "0"])
        .starts_with("-ERR CONFIG SET failed"));
    let out = failed_serve(&["--max-tags-per-key", "0"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--max-tags-per-key must be between 1 and 65535"));
    let out = failed_serve(&["--max-tag-len", "2000000"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--max-tag-len must be between 1 and 1048576"));
}

#[test]
fn command_docs_and_info_know_the_tag_commands() {
    let s = magpie(&[]);
    let mut r = s.client();
    let docs = r.cmd_str(&["COMMAND", "DOCS", "tag"]);
    assert!(
        docs.contains("tag|scan") && docs.contains("WITHVALUES"),
        "{docs}"
    );
    let docs = r.cmd_str(&["COMMAND", "DOCS", "set"]);
    assert!(docs.contains("TAGS"), "{docs}");
    let docs = r.cmd_str(&["COMMAND", "DOCS", "invalidate"]);
    assert!(docs.contains("invalidate|prefix"), "{docs}");
    assert_eq!(r.cmd(&["SET", "a", "1", "TAGS", "t"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["INVALIDATE", "TAG", "t"]), b":1\r\n");
    assert_eq!(r.cmd(&["SET", "p:1", "1"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["INVALIDATE", "PREFIX", "p:"]), b":1\r\n");
    let info = r.cmd_str(&["INFO", "tags"]);
    for field in [
        "# Tags",
        "tag_invalidations:1",
        "prefix_invalidations:1",
        "keys_invalidated:1",
        "tags:",
        "dead_entries_pending:",
        "dead_entries_reclaimed:",
        "prefix_invalidations_pending:",
        "tag_memory_bytes:",
    ] {
        assert!(info.contains(field), "{field} missing from {info}");
    }
}

#[test]
fn tags_and_invalidations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    {
        let s = magpie(&["--dir", d, "--appendfsync", "always"]);
        let mut r = s.client();
        assert_eq!(r.cmd(&["SET", "a", "1", "TAGS", "t", "u"]), b"+OK\r\n");
        assert_eq!(r.cmd(&["SET", "b", "2", "TAGS", "u"]), b"+OK\r\n");
        assert_eq!(r.cmd(&["SET", "c:1", "3", "TAGS", "u"]), b"+OK\r\n");
        assert_eq!(r.cmd(&["INVALIDATE", "TAG", "t"]), b":1\r\n");
        assert_eq!(r.cmd(&["INVALIDATE", "PREFIX", "c:"]), b":1\r\n");
        assert_eq!(r.cmd(&["SET", "d", "4", "TAGS", "t"]), b"+OK\r\n");
    }
    let s = magpie(&["--dir", d]);
    let mut r = s.client();
    assert_eq!(
        r.cmd(&["MGET", "a", "b", "c:1", "d"]),
        b"*4\r\n$-1\r\n$1\r\n2\r\n$-1\r\n$1\r\n4\r\n"
    );
    assert_eq!(r.cmd(&["DBSIZE"]), b":2\r\n");
    assert_eq!(r.cmd(&["TAG", "CARD", "u"]), b":1\r\n");
    assert_eq!(r.cmd(&["TAG", "GET", "d"]), b"*1\r\n$1\r\nt\r\n");
}

#[test]
fn the_memcached_extension_stores_with_tags_invalidates_and_lists() {
    let (s, port) = magpie_mc(&["--max-tags-per-key", "3"]);
    let mut mc = McRaw::connect(port);
    for i in 0..200 {
        let req = format!("set get_items_in_cart::13:10:{i} 0 0 1 tags=cart:13,all\r\nv\r\n");
        assert_eq!(mc.request(req.as_bytes()), b"STORED\r\n");
        let req = format!("ms get_items_in_cart::14:10:{i} 1 T3600 Gcart:14 Gall\r\nw\r\n");
        assert_eq!(mc.request(req.as_bytes()), b"HD\r\n");
    }
    // the same keyspace and tags on the RESP door
    let mut r = s.client();
    assert_eq!(r.cmd(&["TAG", "CARD", "all"]), b":400\r\n");
    assert_eq!(
        r.cmd(&["TAG", "GET", "get_items_in_cart::13:10:0"]),
        b"*2\r\n$3\r\nall\r\n$7\r\ncart:13\r\n"
    );
    // listing, walking the cursor
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let got =
            String::from_utf8(mc.request(format!("tag_keys cart:14 {cursor} 50\r\n").as_bytes()))
                .unwrap();
        let mut lines: Vec<&str> = got.trim_end().split("\r\n").collect();
        let end = lines.pop().unwrap();
        cursor = end.strip_prefix("END ").expect(end).to_string();
        for l in lines {
            seen.insert(l.strip_prefix("KEY ").expect(l).to_string());
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 200);
    assert!(seen.contains("get_items_in_cart::14:10:7"));
    // one call invalidates cart 13; cart 14 stays
    assert_eq!(
        mc.request(b"invalidate_tag cart:13\r\n"),
        b"INVALIDATED 200\r\n"
    );
    assert_eq!(
        mc.request(b"get get_items_in_cart::13:10:1\r\n"),
        b"END\r\n"
    );
    assert_eq!(
        mc.request(b"get get_items_in_cart::14:10:1\r\n"),
        b"VALUE get_items_in_cart::14:10:1 0 1\r\nw\r\nEND\r\n"
    );
    assert_eq!(
        mc.request(b"mg get_items_in_cart::13:10:1 v\r\n"),
        b"EN\r\n"
    );
    // an add of an invalidated key succeeds: it is missing
    assert_eq!(
        mc.request(b"add get_items_in_cart::13:10:1 0 0 1\r\nx\r\n"),
        b"STORED\r\n"
    );
    // prefixes, noreply
    assert_eq!(
        mc.request(b"invalidate_prefix get_items_in_cart::14: noreply\r\n"),
        b""
    );
    assert_eq!(
        mc.request(b"get get_items_in_cart::14:10:1\r\n"),
        b"END\r\n"
    );
    // a page may be empty before the end, as SSCAN's: walk to the end
    let mut cursor = "0".to_string();
    loop {
        let got =
            String::from_utf8(mc.request(format!("tag_keys cart:14 {cursor} 1000\r\n").as_bytes()))
                .unwrap();
        assert!(got.starts_with("END "), "no live member: {got}");
        cursor = got.trim_end()["END ".len()..].to_string();
        if cursor == "0" {
            break;
        }
    }
    // a plain set clears the tags
    assert_eq!(
        mc.request(b"set get_items_in_cart::13:10:1 0 0 1\r\ny\r\n"),
        b"STORED\r\n"
    );
    assert_eq!(
        r.cmd(&["TAG", "GET", "get_items_in_cart::13:10:1"]),
        b"*0\r\n"
    );
    // errors
    assert_eq!(
        mc.request(b"set k 0 0 1 tags=a,b,c,d\r\nv\r\n"),
        b"CLIENT_ERROR a key may carry at most 3 tags (max-tags-per-key)\r\n"
    );
    assert_eq!(
        mc.request(b"append k 0 0 1 tags=a\r\nv\r\n"),
        b"CLIENT_ERROR tags only with set, add, replace and cas\r\n"
    );
    assert_eq!(
        mc.request(b"mg k v Ga\r\n"),
        b"CLIENT_ERROR invalid flag\r\n"
    );
    assert_eq!(mc.request(b"get k\r\n"), b"END\r\n", "nothing stored");
    assert_eq!(mc.request(b"tag_keys\r\n"), b"ERROR\r\n");
    assert_eq!(mc.request(b"invalidate_tag\r\n"), b"ERROR\r\n");
    // a key no memcached key could be is listed in base64
    assert_eq!(r.cmd(&["SET", "a b", "v", "TAGS", "odd"]), b"+OK\r\n");
    assert_eq!(
        mc.request(b"tag_keys odd 0\r\n"),
        b"KEY YSBi b\r\nEND 0\r\n"
    );
}

#[test]
fn an_ordinary_memcached_client_never_meets_the_extension() {
    // the memcache crate: stores, gets, deletes, incr, over one connection
    let (_s, port) = magpie_mc(&[]);
    let c = memcache::connect(format!("memcache://127.0.0.1:{port}?protocol=ascii")).unwrap();
    c.set("tags=x", "v", 0).unwrap();
    let v: Option<String> = c.get("tags=x").unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let mut mc = McRaw::connect(port);
    assert_eq!(
        mc.request(b"tag_keys x 0\r\n"),
        b"END 0\r\n",
        "no tag was made"
    );
    // memcached's grammar ignores a sixth token that is not noreply; so does magpie
    assert_eq!(mc.request(b"set k 0 0 1 junk\r\nv\r\n"), b"STORED\r\n");
}
