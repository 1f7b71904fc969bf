//! The memcached front door at its edges, over real sockets: the
//! "memcached-lite" `set <key> <bytes>` form, the stats groups monitoring
//! tools read, absolute exptimes, CAS across the memcached and Redis
//! protocols, TTLs through append/prepend, one client's garbage not
//! reaching another client's pipeline, and the meta `E` flag (explicit new
//! CAS), including across a restart.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The `t` token of an `HD ... t<n>` meta reply.
fn ttl_of(reply: &str) -> i64 {
    reply
        .split_whitespace()
        .find_map(|f| f.strip_prefix('t'))
        .unwrap_or_else(|| panic!("no t in {reply:?}"))
        .parse()
        .unwrap()
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

/// `stats conns` of a server with one listener and four clients in known
/// states, with descriptors and ports replaced by their order of
/// appearance: the shape memcached 1.6 prints.
fn stats_conns_shape(port: u16) -> String {
    let mut asking = McRaw::connect(port);
    let idle = McRaw::connect(port);
    let mut mid_value = McRaw::connect(port);
    mid_value.send(b"set k 0 0 10\r\nabc");
    let mut answered = McRaw::connect(port);
    assert!(answered.request(b"version\r\n").starts_with(b"VERSION "));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let conns = text(asking.request(b"stats conns\r\n"));
    drop((idle, mid_value, answered));
    // number descriptors and peer ports by first appearance
    let mut names: Vec<String> = Vec::new();
    let mut name = |raw: &str, what: &str| {
        let i = names.iter().position(|n| n == raw).unwrap_or_else(|| {
            names.push(raw.to_string());
            names.len() - 1
        });
        format!("{what}{i}")
    };
    let mut out = String::new();
    for line in conns.lines() {
        let Some(rest) = line.strip_prefix("STAT ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let (key, value) = rest.split_once(' ').unwrap();
        let (fd, field) = key.split_once(':').unwrap();
        let value = match field {
            "addr" | "listen_addr" => {
                let p = value.rsplit(':').next().unwrap();
                if p == port.to_string() {
                    value.replace(p, "PORT")
                } else {
                    value.replace(p, &name(p, "peer"))
                }
            }
            "secs_since_last_cmd" => {
                assert!(value.parse::<u64>().unwrap() < 5, "{conns}");
                "N".to_string()
            }
            _ => value.to_string(),
        };
        out.push_str(&format!("STAT {}:{field} {value}\n", name(fd, "fd")));
    }
    out
}

#[test]
fn stats_conns_lists_the_listener_and_each_client_with_its_state() {
    let (s, port) = magpie_mc(&[]);
    // a RESP client is not a memcached connection
    let mut r = s.client();
    assert_eq!(r.cmd(&["PING"]), b"+PONG\r\n");
    let ours = stats_conns_shape(port);
    let want = "\
STAT fd0:addr tcp:127.0.0.1:PORT
STAT fd0:state conn_listening
STAT fd0:secs_since_last_cmd N
STAT fd2:addr tcp:127.0.0.1:peer1
STAT fd2:listen_addr tcp:127.0.0.1:PORT
STAT fd2:state conn_parse_cmd
STAT fd2:secs_since_last_cmd N
STAT fd4:addr tcp:127.0.0.1:peer3
STAT fd4:listen_addr tcp:127.0.0.1:PORT
STAT fd4:state conn_new_cmd
STAT fd4:secs_since_last_cmd N
STAT fd6:addr tcp:127.0.0.1:peer5
STAT fd6:listen_addr tcp:127.0.0.1:PORT
STAT fd6:state conn_nread
STAT fd6:secs_since_last_cmd N
STAT fd8:addr tcp:127.0.0.1:peer7
STAT fd8:listen_addr tcp:127.0.0.1:PORT
STAT fd8:state conn_read
STAT fd8:secs_since_last_cmd N
END
";
    assert_eq!(ours, want);
    // the same scenario against memcached itself prints the same shape
    if let Some(real) = memcached() {
        assert_eq!(stats_conns_shape(real.port), want);
    }
    // a client that leaves is no longer listed
    let mut a = McRaw::connect(port);
    let mut left = String::new();
    for _ in 0..100 {
        left = text(a.request(b"stats conns\r\n"));
        if left.matches(":addr ").count() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(left.matches(":addr ").count(), 2, "{left}");
}

/// An exptime above 30 days is a Unix time: in the past the item is gone at
/// once (the store still answers STORED), in the future it is the TTL.
#[test]
fn absolute_exptimes() {
    let (s, port) = magpie_mc(&[]);
    let mut c = McRaw::connect(port);
    let now = unix_now();
    let past = now - 100;
    let soon = now + 100;
    assert_eq!(
        c.request(format!("set old 0 {past} 1\r\nx\r\nget old\r\n").as_bytes()),
        b"STORED\r\nEND\r\n"
    );
    assert_eq!(s.client().cmd(&["EXISTS", "old"]), b":0\r\n");
    assert_eq!(
        c.request(format!("set new 3 {soon} 1\r\nx\r\n").as_bytes()),
        b"STORED\r\n"
    );
    let t = ttl_of(&text(c.request(b"mg new t\r\n")));
    assert!((98..=100).contains(&t), "t{t}");
    let resp = text(s.client().cmd(&["TTL", "new"]));
    let ttl: i64 = resp[1..resp.len() - 2].parse().unwrap();
    assert!((98..=100).contains(&ttl), "TTL {ttl}");
    // touch, gat and ms T read exptimes the same way
    let later = now + 500;
    assert_eq!(
        c.request(format!("touch new {later}\r\n").as_bytes()),
        b"TOUCHED\r\n"
    );
    let t = ttl_of(&text(c.request(b"mg new t\r\n")));
    assert!((498..=500).contains(&t), "t{t}");
    assert_eq!(
        c.request(format!("gat {past} new\r\nget new\r\n").as_bytes()),
        b"VALUE new 3 1\r\nx\r\nEND\r\nEND\r\n"
    );
    assert_eq!(
        c.request(format!("ms m 1 T{soon}\r\ny\r\n").as_bytes()),
        b"HD\r\n"
    );
    let t = ttl_of(&text(c.request(b"mg m t\r\n")));
    assert!((98..=100).contains(&t), "t{t}");
    assert_eq!(
        c.request(format!("ms m 1 T{past}\r\ny\r\nmg m v\r\n").as_bytes()),
        b"HD\r\nEN\r\n"
    );
}

/// CAS is the engine's version: a Redis write between `gets` and `cas`
/// makes the cas fail; an expiry change does not (as memcached's touch).
#[test]
fn cas_across_protocols() {
    let (s, port) = magpie_mc(&[]);
    let mut c = McRaw::connect(port);
    let mut r = s.client();
    let gets_cas = |c: &mut McRaw| -> String {
        let reply = text(c.request(b"gets k\r\n"));
        let header = reply.lines().next().unwrap().to_string();
        header.rsplit(' ').next().unwrap().to_string()
    };
    assert_eq!(c.request(b"set k 0 0 2\r\nv1\r\n"), b"STORED\r\n");
    let old = gets_cas(&mut c);
    assert_eq!(r.cmd(&["SET", "k", "v2"]), b"+OK\r\n");
    assert_eq!(
        c.request(format!("cas k 0 0 2 {old}\r\nv3\r\n").as_bytes()),
        b"EXISTS\r\n"
    );
    assert_eq!(c.request(b"get k\r\n"), b"VALUE k 0 2\r\nv2\r\nEND\r\n");
    // with the CAS after the Redis write it goes through
    let fresh = gets_cas(&mut c);
    assert_ne!(fresh, old);
    assert_eq!(r.cmd(&["EXPIRE", "k", "100"]), b":1\r\n");
    assert_eq!(gets_cas(&mut c), fresh, "EXPIRE keeps the CAS");
    assert_eq!(
        c.request(format!("cas k 0 0 2 {fresh}\r\nv3\r\n").as_bytes()),
        b"STORED\r\n"
    );
    // Redis APPEND and INCR are writes too (ms C is the meta form of cas)
    let before = gets_cas(&mut c);
    assert_eq!(r.cmd(&["APPEND", "k", "!"]), b":3\r\n");
    assert_eq!(
        c.request(format!("ms k 1 C{before}\r\nx\r\n").as_bytes()),
        b"EX\r\n"
    );
    assert_eq!(c.request(b"get k\r\n"), b"VALUE k 0 3\r\nv3!\r\nEND\r\n");
    assert_eq!(c.request(b"set n 0 0 1\r\n1\r\n"), b"STORED\r\n");
    let reply = text(c.request(b"mg n c\r\n"));
    let n_cas = reply.trim_end().strip_prefix("HD c").unwrap().to_string();
    assert_eq!(r.cmd(&["INCR", "n"]), b":2\r\n");
    assert_eq!(
        c.request(format!("ma n C{n_cas} v\r\n").as_bytes()),
        b"EX\r\n"
    );
    assert_eq!(c.request(b"incr n 1\r\n"), b"3\r\n");
}

/// append and prepend keep the item's TTL (relative or absolute) and flags.
#[test]
fn append_prepend_keep_ttl_and_flags() {
    let (s, port) = magpie_mc(&[]);
    let mut c = McRaw::connect(port);
    assert_eq!(c.request(b"set k 7 100 1\r\nb\r\n"), b"STORED\r\n");
    // append's own flags and exptime are ignored
    assert_eq!(
        c.request(b"append k 1 5 1\r\nc\r\nprepend k 2 -1 1\r\na\r\n"),
        b"STORED\r\nSTORED\r\n"
    );
    let reply = text(c.request(b"mg k v f t\r\n"));
    assert!(reply.starts_with("VA 3 f7 t"), "{reply}");
    assert!(reply.ends_with("\r\nabc\r\n"), "{reply}");
    assert!((98..=100).contains(&ttl_of(&reply)), "{reply}");
    let resp = text(s.client().cmd(&["TTL", "k"]));
    let ttl: i64 = resp[1..resp.len() - 2].parse().unwrap();
    assert!((98..=100).contains(&ttl), "TTL {ttl}");
    let at = unix_now() + 1000;
    assert_eq!(
        c.request(
            format!("set abs 0 {at} 1\r\nx\r\nappend abs 0 0 1\r\ny\r\nms abs 1 MP\r\nw\r\n")
                .as_bytes()
        ),
        b"STORED\r\nSTORED\r\nHD\r\n"
    );
    let reply = text(c.request(b"mg abs v t\r\n"));
    assert!(reply.ends_with("\r\nwxy\r\n"), "{reply}");
    assert!((998..=1000).contains(&ttl_of(&reply)), "{reply}");
    // no TTL stays no TTL
    assert_eq!(
        c.request(b"set p 0 0 1\r\nx\r\nappend p 0 100 1\r\ny\r\nmg p t\r\n"),
        b"STORED\r\nSTORED\r\nHD t-1\r\n"
    );
}

/// A client sending garbage, binary junk and finally a line over 2048 bytes
/// (which closes it) does not disturb another client's pipelined requests.
#[test]
fn garbage_on_one_connection_does_not_reach_another() {
    let (_s, port) = magpie_mc(&[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noisy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || rounds == 0 {
                let mut g = McRaw::connect(port);
                assert_eq!(
                    String::from_utf8_lossy(&g.request(
                        b"bogus\r\nset k 0 0 zz\r\nset k 0 0 3\r\nabcdef\r\n\x00\xff\x01\r\nget\r\nmg k z\r\n"
                    )),
                    "ERROR\r\nCLIENT_ERROR bad command line format\r\n\
                     CLIENT_ERROR bad data chunk\r\nERROR\r\nERROR\r\nERROR\r\n\
                     CLIENT_ERROR invalid flag\r\n"
                );
                // then a bad data block (noreply) running into a line that
                // never ends: closed without a reply
                let mut tail = b"set x 0 0 5 noreply\r\nab".to_vec();
                tail.extend_from_slice(&[b'x'; 3000]);
                assert_eq!(g.send_until_close(&tail), b"");
                rounds += 1;
            }
            rounds
        })
    };
    let mut c = McRaw::connect(port);
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for i in 0..200 {
        batch.extend_from_slice(
            format!("set p{i} {i} 0 {}\r\n{}\r\n", i % 10, "v".repeat(i % 10)).as_bytes(),
        );
        batch.extend_from_slice(format!("get p{i}\r\nincr c{} 1\r\n", i % 3).as_bytes());
        want.extend_from_slice(b"STORED\r\n");
        want.extend_from_slice(
            format!(
                "VALUE p{i} {i} {}\r\n{}\r\nEND\r\nNOT_FOUND\r\n",
                i % 10,
                "v".repeat(i % 10)
            )
            .as_bytes(),
        );
    }
    for round in 0..20 {
        assert_eq!(
            String::from_utf8_lossy(&c.request(&batch)),
            String::from_utf8_lossy(&want),
            "round {round}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(noisy.join().unwrap() >= 1);
    // the noisy client stored nothing (its lines were all refused)
    assert_eq!(c.request(b"get k x\r\n"), b"END\r\n");
}

/// The CAS of the item a `gets` reply shows.
fn gets_cas(c: &mut McRaw, key: &str) -> u64 {
    let reply = text(c.request(format!("gets {key}\r\n").as_bytes()));
    let first = reply.lines().next().unwrap_or_default();
    first
        .split(' ')
        .nth(4)
        .unwrap_or_else(|| panic!("no cas in {reply:?}"))
        .parse()
        .unwrap()
}

/// Meta `E<cas>` (memcached 1.6.21+): the new version takes the client's
/// CAS on ms (with C comparing the old one), on mg N vivify, md I and ma;
/// later automatic CAS values, from either protocol, are above it.
#[test]
fn meta_e_sets_the_new_cas_and_later_writes_number_above_it() {
    let (s, port) = magpie_mc(&[]);
    let mut c = McRaw::connect(port);
    assert_eq!(c.request(b"ms k 2 E1000 c\r\nhi\r\n"), b"HD c1000\r\n");
    assert_eq!(c.request(b"mg k c v\r\n"), b"VA 2 c1000\r\nhi\r\n");
    assert_eq!(gets_cas(&mut c, "k"), 1000);
    // C compares the old CAS, E sets the new one; a failed compare changes
    // nothing
    assert_eq!(c.request(b"ms k 2 C999 E2000\r\nno\r\n"), b"EX\r\n");
    assert_eq!(c.request(b"mg k c v\r\n"), b"VA 2 c1000\r\nhi\r\n");
    assert_eq!(
        c.request(b"ms k 2 C1000 E2000 c\r\nyo\r\n"),
        b"HD c2000\r\n"
    );
    assert_eq!(c.request(b"mg k c v\r\n"), b"VA 2 c2000\r\nyo\r\n");
    // the classic cas command compares against a chosen CAS like any other
    assert_eq!(c.request(b"cas k 0 0 1 2000\r\nz\r\n"), b"STORED\r\n");
    // a plain set now gets a CAS above every chosen one
    let after_set = gets_cas(&mut c, "k");
    assert!(after_set > 2000, "{after_set}");
    assert_eq!(c.request(b"set k 0 0 1\r\nx\r\n"), b"STORED\r\n");
    assert!(gets_cas(&mut c, "k") > after_set);
    // a Redis SET after an E write changes the CAS (upward)
    assert_eq!(c.request(b"ms k 2 E3000\r\nhi\r\n"), b"HD\r\n");
    assert_eq!(s.client().cmd(&["SET", "k", "redis"]), b"+OK\r\n");
    let redis_cas = gets_cas(&mut c, "k");
    assert!(redis_cas > 3000, "{redis_cas}");
    // a value below the counter is taken as given
    assert_eq!(c.request(b"ms k 2 E7 c\r\nlo\r\n"), b"HD c7\r\n");
    assert_eq!(s.client().cmd(&["GET", "k"]), b"$2\r\nlo\r\n");

    // mg N: the vivified item has the chosen CAS (E is ignored on a hit)
    assert_eq!(
        c.request(b"mg nv N30 E4000 c v\r\n"),
        b"VA 0 c4000 W\r\n\r\n"
    );
    assert_eq!(c.request(b"mg nv E4500 c\r\n"), b"HD c4000 Z\r\n");
    // md I: the stale version has the chosen CAS, and mg wins it
    assert_eq!(c.request(b"md k I E5000\r\n"), b"HD\r\n");
    assert_eq!(c.request(b"mg k c v\r\n"), b"VA 2 c5000 X W\r\nlo\r\n");
    assert_eq!(c.request(b"mg k c\r\n"), b"HD c5000 Z X\r\n");
    // ms E over it stores a fresh, unmarked version
    assert_eq!(c.request(b"ms k 2 E5000\r\nok\r\n"), b"HD\r\n");
    assert_eq!(c.request(b"mg k c v\r\n"), b"VA 2 c5000\r\nok\r\n");
    // md without I deletes; E has nothing to number
    assert_eq!(c.request(b"md k E5100 q\r\nmg k\r\n"), b"EN\r\n");
    // ma: the changed counter, or the vivified one, takes the chosen CAS;
    // a miss or failed compare leaves the counter alone
    assert_eq!(c.request(b"set n 0 0 1\r\n5\r\n"), b"STORED\r\n");
    assert_eq!(c.request(b"ma n E6000 c v\r\n"), b"VA 1 c6000\r\n6\r\n");
    assert_eq!(c.request(b"ma n C1 E6100 c\r\n"), b"EX\r\n");
    assert_eq!(
        c.request(b"ma n C6000 E6200 MD c v\r\n"),
        b"VA 1 c6200\r\n5\r\n"
    );
    assert_eq!(c.request(b"ma nope E6300\r\n"), b"NF\r\n");
    assert_eq!(
        c.request(b"ma nn N0 J10 E6400 c v\r\n"),
        b"VA 2 c6400\r\n10\r\n"
    );
    let me = String::from_utf8(c.request(b"me nn\r\n")).unwrap();
    assert!(me.starts_with("ME nn exp=-1 la="), "{me}");
    assert!(me.contains(" cas=6400 "), "{me}");
    let next = {
        assert_eq!(c.request(b"set p 0 0 1\r\nx\r\n"), b"STORED\r\n");
        gets_cas(&mut c, "p")
    };
    assert!(next > 6400, "{next}");
}

/// Bad and out-of-range `E` tokens are refused before anything changes.
#[test]
fn meta_e_tokens_out_of_range_or_malformed_are_refused() {
    let (_s, port) = magpie_mc(&[]);
    let mut c = McRaw::connect(port);
    assert_eq!(c.request(b"ms k 2 E100 c\r\nhi\r\n"), b"HD c100\r\n");
    let range = "CLIENT_ERROR E token out of range (1 to 9223372036854775807)\r\n";
    let bad = "CLIENT_ERROR bad token in command line format\r\n";
    let md_ma = "CLIENT_ERROR invalid or duplicate flag\r\n";
    for (req, want) in [
        // ms skips its data block after the error
        ("ms k 2 E0\r\nno\r\n", range),
        ("ms k 2 E9223372036854775808\r\nno\r\n", range),
        ("ms k 2 Ex\r\nno\r\n", bad),
        ("ms k 2 E-5\r\nno\r\n", bad),
        ("mg k E18446744073709551615 v\r\n", range),
        ("mg k E v\r\n", bad),
        ("md k I E0\r\n", range),
        ("md k I Ex\r\n", md_ma),
        ("ma k E0\r\n", range),
        ("ma k Ex\r\n", md_ma),
        ("mg nv N30 E0\r\n", range),
    ] {
        assert_eq!(text(c.request(req.as_bytes())), want, "{req:?}");
    }
    assert_eq!(
        c.request(b"mg k c v\r\nmg nv\r\n"),
        b"VA 2 c100\r\nhi\r\nEN\r\n"
    );
    // the largest accepted value, and the counter goes on above it
    assert_eq!(
        c.request(b"ms big 1 E9223372036854775807 c\r\nx\r\n"),
        b"HD c9223372036854775807\r\n"
    );
    assert_eq!(c.request(b"set k 0 0 1\r\ny\r\n"), b"STORED\r\n");
    assert_eq!(gets_cas(&mut c, "k"), 9_223_372_036_854_775_808);
}

/// A chosen CAS is persisted like any other: after a restart the item has
/// it and new writes are numbered above it.
#[test]
fn meta_e_cas_survives_restart_and_the_counter_stays_above_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let flags = ["--dir", d, "--appendfsync", "always"];
    let chosen: u64 = 1 << 40;
    {
        let (_s, port) = magpie_mc(&flags);
        let mut c = McRaw::connect(port);
        let req = format!("ms k 5 E{chosen} F3 T0 c\r\nvalue\r\n");
        assert_eq!(text(c.request(req.as_bytes())), format!("HD c{chosen}\r\n"));
        assert_eq!(c.request(b"ms low 1 E2\r\nx\r\n"), b"HD\r\n");
        // the server is killed when dropped
    }
    let (_s, port) = magpie_mc(&flags);
    let mut c = McRaw::connect(port);
    assert_eq!(
        text(c.request(b"mg k c f v\r\nmg low c\r\n")),
        format!("VA 5 c{chosen} f3\r\nvalue\r\nHD c2\r\n")
    );
    assert_eq!(c.request(b"set n 0 0 1\r\nx\r\n"), b"STORED\r\n");
    let n = gets_cas(&mut c, "n");
    assert!(n > chosen, "{n} after restart, chosen {chosen}");
}
