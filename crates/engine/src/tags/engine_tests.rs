//! Tag tests: direct cases for each rule, and a property test against a
//! model on every read path, with replays and compactions.

use crate::tests::{counted, dump, replay_into, Owned, Recorder};
use crate::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn engine() -> Engine {
    Engine::new(EngineConfig {
        databases: 2,
        shards: 8,
    })
}

fn set(e: &Engine, key: &[u8], value: &[u8], tags: &[&[u8]]) -> u64 {
    e.txn(0, &[key], 1)
        .set_tagged(key, &[value], 0, None, tags)
        .unwrap()
}

fn live(e: &Engine, key: &[u8]) -> bool {
    e.txn(0, &[key], 1).get(key).is_some()
}

fn members(e: &Engine, tag: &[u8]) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    let mut cursor = 0;
    loop {
        cursor = e.tag_scan(0, tag, cursor, 3, 1, |k, _| {
            out.insert(k.to_vec());
        });
        if cursor == 0 {
            return out;
        }
    }
}

fn registry_exact(e: &Engine) {
    for db in 0..e.databases() {
        e.with_registry(db, |r, recount| assert_eq!(r.bytes(), recount, "db {db}"));
    }
    assert_eq!(e.used_memory(), counted(e));
}

#[test]
fn invalidating_a_tag_kills_its_keys_at_once_and_not_later_ones() {
    let e = engine();
    for i in 0..1500 {
        let k = format!("get_items_in_cart::13:{}:{}", i % 30, i);
        set(&e, k.as_bytes(), b"v", &[b"cart:13"]);
        let k = format!("get_items_in_cart::14:{}:{}", i % 30, i);
        set(&e, k.as_bytes(), b"v", &[b"cart:14"]);
    }
    assert_eq!(e.tag_card(0, b"cart:13"), 1500);
    assert_eq!(e.invalidate_tags(0, &[b"cart:13"]), 1500);
    assert_eq!(e.tag_card(0, b"cart:13"), 0, "the count resets at once");
    assert!(!live(&e, b"get_items_in_cart::13:0:0"));
    assert!(live(&e, b"get_items_in_cart::14:0:0"));
    assert_eq!(e.tag_card(0, b"cart:14"), 1500);
    let mut n = 0;
    e.for_each_key(0, 1, |_| n += 1);
    assert_eq!(n, 1500, "KEYS skips the dead");
    // a point in time, not a ban
    set(&e, b"get_items_in_cart::13:0:0", b"new", &[b"cart:13"]);
    assert!(live(&e, b"get_items_in_cart::13:0:0"));
    assert_eq!(e.tag_card(0, b"cart:13"), 1);
    registry_exact(&e);
    // the expiry cycle reclaims the dead: DBSIZE and memory converge
    while e.expire_cycle(1, 16) > 0 {}
    assert_eq!(e.dbsize(0), 1501);
    assert_eq!(e.db_tag_summary(0).dead_pending, 0);
    assert_eq!(e.stats().dead_reclaimed.load(Ordering::Relaxed), 1499 + 1);
    registry_exact(&e);
    for s in e.dbs[0].shards.iter() {
        assert!(!s.lock().watch, "nothing pending: reads pay nothing");
    }
}

#[test]
fn a_write_to_an_invalidated_key_is_a_write_to_a_missing_key() {
    let e = engine();
    set(&e, b"n", b"41", &[b"t"]);
    set(&e, b"s", b"abc", &[b"t", b"u"]);
    e.invalidate_tags(0, &[b"t"]);
    assert_eq!(
        e.tag_card(0, b"u"),
        1,
        "dead through t, counted in u until reclaimed"
    );
    assert!(members(&e, b"u").is_empty(), "but never listed");
    let mut t = e.txn(0, &[b"n"], 1);
    assert!(!t.exists(b"n"));
    assert!(
        t.rewrite(b"n", 1, |_, d| d[0] = b'1').is_none(),
        "INCR starts afresh"
    );
    assert!(!t.set_expiry(b"n", Some(100)));
    assert!(!t.remove(b"n"), "DEL of a dead key removes nothing live");
    drop(t);
    let mut t = e.txn(0, &[&b"s"[..], b"d"], 1);
    assert!(t.copy(b"s", b"d").is_none());
    assert!(t.tags(b"s").is_empty());
    assert_eq!(t.tag_add(b"s", &[b"x"]), Ok(0));
    drop(t);
    while e.expire_cycle(1, 4) > 0 {}
    assert_eq!(e.tag_card(0, b"u"), 0);
    assert_eq!(
        e.db_tag_summary(0).tags,
        0,
        "tags with nothing left are forgotten"
    );
    assert_eq!(e.db_memory(0).tags, 0);
    registry_exact(&e);
}

#[test]
fn overwrites_replace_tags_and_in_place_changes_keep_them() {
    let e = engine();
    set(&e, b"k", b"1", &[b"b", b"a", b"a"]);
    let mut t = e.txn(0, &[b"k"], 1);
    assert_eq!(t.tags(b"k"), [b"a".to_vec(), b"b".to_vec()]);
    t.rewrite(b"k", 2, |old, d| {
        d[0] = old[0];
        d[1] = b'2';
    });
    assert!(t.set_expiry(b"k", Some(1000)));
    assert!(t.set_flags(b"k", 7));
    assert_eq!(t.tags(b"k").len(), 2, "APPEND, EXPIRE, flags keep tags");
    assert_eq!(t.tag_add(b"k", &[b"c", b"a"]), Ok(1));
    assert_eq!(t.tag_remove(b"k", &[b"b", b"zz"]), 1);
    assert_eq!(t.tags(b"k"), [b"a".to_vec(), b"c".to_vec()]);
    let v = t.get(b"k").unwrap();
    assert_eq!(
        (v.value, v.meta.flags, v.meta.expire_at),
        (&b"12"[..], 7, Some(1000))
    );
    t.set(b"k", &[b"plain"], 0, None);
    assert!(t.tags(b"k").is_empty(), "a plain SET clears them");
    drop(t);
    assert!(members(&e, b"a").is_empty());
    assert_eq!(e.tag_card(0, b"a"), 0);
    // rename and copy carry them
    set(&e, b"src", b"v", &[b"x"]);
    let mut t = e.txn(0, &[&b"src"[..], b"dst"], 1);
    t.copy(b"src", b"dst").unwrap();
    t.remove(b"src");
    assert_eq!(t.tags(b"dst"), [b"x".to_vec()]);
    drop(t);
    assert_eq!(members(&e, b"x"), BTreeSet::from([b"dst".to_vec()]));
    e.invalidate_tags(0, &[b"x"]);
    assert!(!live(&e, b"dst"));
    registry_exact(&e);
}

#[test]
fn the_index_story_add_eagerly_remove_lazily() {
    let e = engine();
    for id in 1..=5 {
        let k = format!("Item:{id}");
        set(&e, k.as_bytes(), b"{}", &[b"Item:CategoryID=5"]);
    }
    // item 3 moves to category 6: one write, no client-side cleanup
    set(&e, b"Item:3", b"{}", &[b"Item:CategoryID=6"]);
    let five = members(&e, b"Item:CategoryID=5");
    assert_eq!(five.len(), 4);
    assert!(!five.contains(b"Item:3".as_slice()));
    assert_eq!(e.tag_card(0, b"Item:CategoryID=5"), 4);
    assert_eq!(
        members(&e, b"Item:CategoryID=6"),
        BTreeSet::from([b"Item:3".to_vec()])
    );
    // deleted and expired members go too
    e.txn(0, &[b"Item:1"], 1).remove(b"Item:1");
    e.txn(0, &[b"Item:2"], 1)
        .set_tagged(b"Item:2", &[b"{}"], 0, Some(10), &[b"Item:CategoryID=5"])
        .unwrap();
    let mut later = BTreeSet::new();
    let mut c = 0;
    loop {
        c = e.tag_scan(0, b"Item:CategoryID=5", c, 10, 20, |k, v| {
            assert_eq!(v.value, b"{}");
            later.insert(k.to_vec());
        });
        if c == 0 {
            break;
        }
    }
    assert_eq!(later.len(), 2);
    e.expire_cycle(20, 100);
    assert_eq!(e.tag_card(0, b"Item:CategoryID=5"), 2);
    registry_exact(&e);
}

#[test]
fn prefix_invalidation_is_a_point_in_time_and_forgotten_after_a_pass() {
    let e = engine();
    for i in 0..300 {
        set(&e, format!("user:1:{i}").as_bytes(), b"v", &[]);
        set(&e, format!("user:2:{i}").as_bytes(), b"v", &[]);
    }
    assert_eq!(e.invalidate_prefixes(0, &[b"user:1:"]), Ok(1));
    assert!(!live(&e, b"user:1:7"));
    assert!(live(&e, b"user:2:7"));
    set(&e, b"user:1:new", b"v", &[]);
    assert!(live(&e, b"user:1:new"));
    let mut seen = 0;
    let mut cursor = 0;
    loop {
        cursor = e.scan(0, cursor, 50, 1, |k, _| {
            assert!(!k.starts_with(b"user:1:") || k == b"user:1:new");
            seen += 1;
        });
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen, 301);
    for _ in 0..100 {
        let k = e.random_key(0, 1).unwrap();
        assert!(!k.starts_with(b"user:1:") || k == b"user:1:new");
    }
    assert_eq!(e.db_tag_summary(0).prefixes_pending, 1);
    let mut rounds = 0;
    while e.expire_cycle(1, 8) > 0 {
        rounds += 1;
    }
    assert!(rounds > 1, "the pass is spread over several cycles");
    assert_eq!(e.dbsize(0), 301);
    assert_eq!(e.db_tag_summary(0).prefixes_pending, 0);
    for s in e.dbs[0].shards.iter() {
        assert!(!s.lock().watch);
    }
    registry_exact(&e);
    // the empty prefix is every key
    e.invalidate_prefixes(0, &[b""]).unwrap();
    assert_eq!(e.random_key(0, 1), None);
}

#[test]
fn limits_are_checked_at_their_edges_and_change_nothing_when_broken() {
    let e = engine();
    e.set_tag_limits(TagLimits {
        max_tags_per_key: 3,
        max_tag_len: 4,
    });
    let mut t = e.txn(0, &[b"k"], 1);
    assert!(t
        .set_tagged(b"k", &[b"v"], 0, None, &[b"aaaa", b"b", b"c"])
        .is_ok());
    assert_eq!(
        t.set_tagged(b"k", &[b"w"], 0, None, &[b"aaaaa"]),
        Err(TagError::TagTooLong { max: 4 })
    );
    assert_eq!(
        t.set_tagged(b"k", &[b"w"], 0, None, &[b"1", b"2", b"3", b"4"]),
        Err(TagError::TooManyTags { max: 3 })
    );
    // repeats count once
    assert!(t
        .set_tagged(b"k", &[b"v"], 0, None, &[b"1", b"1", b"2", b"3"])
        .is_ok());
    assert!(t
        .set_tagged(b"k", &[b"v"], 0, None, &[b"aaaa", b"b", b"c"])
        .is_ok());
    assert_eq!(t.get(b"k").unwrap().value, b"v");
    assert_eq!(
        t.tag_add(b"k", &[b"d"]),
        Err(TagError::TooManyTags { max: 3 })
    );
    assert_eq!(
        t.tag_add(b"k", &[b"zzzzz"]),
        Err(TagError::TagTooLong { max: 4 })
    );
    assert_eq!(t.tags(b"k").len(), 3);
    drop(t);
    assert_eq!(e.tag_card(0, b"d"), 0);
    assert_eq!(
        e.db_tag_summary(0).tags,
        3,
        "refused and replaced tags are not kept"
    );
    assert_eq!(
        TagError::TooManyTags { max: 3 }.to_string(),
        "a key may carry at most 3 tags (max-tags-per-key)"
    );
    assert_eq!(e.invalidate_prefixes(0, &[b"abcd"]), Ok(1));
    assert_eq!(
        e.invalidate_prefixes(0, &[b"ab", b"abcde"]),
        Err(TagError::PrefixTooLong { max: 4 })
    );
    assert_eq!(e.db_tag_summary(0).prefixes_pending, 1, "nothing done");
    e.set_tag_limits(TagLimits {
        max_tags_per_key: 0,
        max_tag_len: 0,
    });
    assert_eq!(e.tag_limits().max_tags_per_key, 1, "at least one");
}

#[test]
fn a_chosen_cas_below_an_invalidation_still_writes_a_live_key() {
    let e = engine();
    set(&e, b"k", b"v", &[b"t"]);
    e.invalidate_tags(0, &[b"t"]);
    e.invalidate_prefixes(0, &[b"k"]).unwrap();
    let mut t = e.txn(0, &[b"k"], 1);
    t.use_cas(1).unwrap();
    t.set_tagged(b"k", &[b"w"], 0, None, &[b"t"]).unwrap();
    assert_eq!(t.get(b"k").unwrap().meta.cas, 1);
    drop(t);
    let mut t = e.txn(0, &[b"k:j"], 1);
    t.use_cas(2).unwrap();
    t.set(b"k:j", &[b"w"], 0, None);
    assert!(
        t.exists(b"k:j"),
        "under the invalidated prefix, with a CAS below it"
    );
    drop(t);
    assert!(live(&e, b"k"));
    assert_eq!(members(&e, b"t"), BTreeSet::from([b"k".to_vec()]));
    // and a later invalidation still kills it
    e.invalidate_tags(0, &[b"t"]);
    assert!(!live(&e, b"k"));
}

#[test]
fn eviction_and_flush_take_keys_out_of_their_tags() {
    let e = Engine::new(EngineConfig {
        databases: 1,
        shards: 1,
    });
    for i in 0..200 {
        set(&e, format!("k{i}").as_bytes(), &[b'v'; 100], &[b"all"]);
    }
    let used = e.used_memory();
    e.set_memory_limit(MemoryLimit {
        max_bytes: used / 2,
        policy: EvictionPolicy::AllKeysRandom,
        samples: 5,
    });
    e.make_room(1).unwrap();
    let left = e.dbsize(0);
    assert!(left < 200);
    assert_eq!(e.tag_card(0, b"all"), left);
    assert_eq!(members(&e, b"all").len(), left);
    registry_exact(&e);
    e.set_memory_limit(MemoryLimit::default());
    e.flush_db(0);
    assert_eq!(e.tag_card(0, b"all"), 0);
    assert_eq!(e.used_memory(), counted(&e));
    assert_eq!(e.db_memory(0).tags, 0);
}

#[test]
fn tag_bookkeeping_counts_in_used_memory_and_bounds_the_index() {
    let e = engine();
    let before = e.used_memory();
    for i in 0..10_000 {
        set(&e, format!("key:{i}").as_bytes(), b"v", &[b"big"]);
    }
    let full = e.db_memory(0).tags;
    assert!(full > 10_000 * 8, "a slot per member: {full}");
    for i in 0..9_990 {
        let k = format!("key:{i}");
        e.txn(0, &[k.as_bytes()], 1).remove(k.as_bytes());
    }
    let small = e.db_memory(0).tags;
    assert!(
        small * 20 < full,
        "the index shrinks with its members: {small} vs {full}"
    );
    registry_exact(&e);
    e.flush_all();
    assert_eq!(e.used_memory(), before);
}

#[test]
fn a_tagged_key_pays_at_most_8_bytes_per_tag_beyond_its_entry() {
    let e = engine();
    set(&e, b"plain-key-15-by", &[b'v'; 32], &[]);
    let plain = e.db_memory(0).entries;
    e.flush_all();
    set(&e, b"plain-key-15-by", &[b'v'; 32], &[b"a", b"b", b"c"]);
    assert!(e.db_memory(0).entries - plain <= 3 * 8);
}

#[test]
fn replay_rebuilds_the_tags_and_the_invalidations() {
    let live_e = engine();
    let r = Arc::new(Recorder::default());
    live_e.set_sink(r.clone());
    set(&live_e, b"a", b"1", &[b"t", b"u"]);
    set(&live_e, b"b", b"2", &[b"u"]);
    set(&live_e, b"p:1", b"3", &[]);
    live_e.txn(0, &[b"b"], 1).tag_add(b"b", &[b"t"]).unwrap();
    live_e.invalidate_tags(0, &[b"t"]);
    live_e.invalidate_prefixes(0, &[b"p:"]).unwrap();
    set(&live_e, b"c", b"4", &[b"t"]);
    let log = r.0.lock().clone();
    assert_eq!(
        log.iter()
            .filter(|o| matches!(o, Owned::InvalidateTags(..) | Owned::InvalidatePrefixes(..)))
            .count(),
        2,
        "one record per invalidation, none per key"
    );
    let rebuilt = engine();
    replay_into(&rebuilt, &log);
    rebuilt.reclaim_all();
    assert_eq!(dump(&rebuilt, 1), dump(&live_e, 1));
    assert_eq!(members(&rebuilt, b"t"), BTreeSet::from([b"c".to_vec()]));
    assert_eq!(rebuilt.dbsize(0), 1);
    registry_exact(&rebuilt);
}

// ------------------------------------------------------------ property test

const KEYS: [&str; 8] = ["a:1", "a:2", "a:b:1", "a:b:2", "b:1", "b:2", "c", "a"];
const TAGS: [&str; 4] = ["t0", "t1", "t2", "t3"];
const PREFIXES: [&str; 5] = ["a", "a:b", "b:", "c", ""];

fn tag_names(mask: u8) -> Vec<&'static [u8]> {
    (0..4)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| TAGS[i].as_bytes())
        .collect()
}

#[derive(Clone, Debug)]
enum TOp {
    Set(usize, u8, Option<u64>, u8),
    SetPlain(usize, u8),
    SetCas(usize, u8, u64),
    Append(usize, u8),
    Expire(usize, Option<u64>),
    Remove(usize),
    Copy(usize, usize),
    Rename(usize, usize),
    TagAdd(usize, u8),
    TagRemove(usize, u8),
    InvTags(u8),
    InvPrefix(usize),
    Tick(u64),
    Cycle(usize),
    Reclaim,
    Compact,
    Restart,
}

fn t_op() -> impl Strategy<Value = TOp> {
    let k = 0usize..KEYS.len();
    let mask = 0u8..16;
    prop_oneof![
        6 => (k.clone(), any::<u8>(), proptest::option::of(1u64..30), mask.clone())
            .prop_map(|(k, v, t, m)| TOp::Set(k, v, t, m)),
        2 => (k.clone(), any::<u8>()).prop_map(|(k, v)| TOp::SetPlain(k, v)),
        1 => (k.clone(), mask.clone(), 1u64..50).prop_map(|(k, m, c)| TOp::SetCas(k, m, c)),
        2 => (k.clone(), any::<u8>()).prop_map(|(k, v)| TOp::Append(k, v)),
        2 => (k.clone(), proptest::option::of(0u64..30)).prop_map(|(k, t)| TOp::Expire(k, t)),
        2 => k.clone().prop_map(TOp::Remove),
        1 => (k.clone(), k.clone()).prop_map(|(a, b)| TOp::Copy(a, b)),
        1 => (k.clone(), k.clone()).prop_map(|(a, b)| TOp::Rename(a, b)),
        2 => (k.clone(), mask.clone()).prop_map(|(k, m)| TOp::TagAdd(k, m)),
        1 => (k, mask.clone()).prop_map(|(k, m)| TOp::TagRemove(k, m)),
        3 => mask.prop_map(TOp::InvTags),
        2 => (0usize..PREFIXES.len()).prop_map(TOp::InvPrefix),
        2 => (1u64..10).prop_map(TOp::Tick),
        2 => (1usize..4).prop_map(TOp::Cycle),
        1 => Just(TOp::Reclaim),
        1 => Just(TOp::Compact),
        1 => Just(TOp::Restart),
    ]
}

/// The model: key -> (value, expiry, tags).
type Model = BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>, BTreeSet<Vec<u8>>)>;

fn fresh(log: Vec<Owned>) -> (Engine, Arc<Recorder>) {
    let e = engine();
    replay_into(&e, &log);
    let r = Arc::new(Recorder(parking_lot::Mutex::new(log)));
    e.set_sink(r.clone());
    (e, r)
}

/// What a snapshot holds: a SET or SET-with-tags record per live key.
fn snapshot(e: &Engine) -> Vec<Owned> {
    let mut out = Vec::new();
    for db in 0..e.databases() {
        let mut cursor = 0;
        loop {
            cursor = e.scan_tagged(db, cursor, 4, 0, |k, v, tags| {
                let m = v.meta;
                out.push(if tags.is_empty() {
                    Owned::Set(
                        db,
                        k.to_vec(),
                        v.value.to_vec(),
                        m.flags,
                        m.expire_at,
                        m.cas,
                    )
                } else {
                    let t = tags.iter().map(|t| t.to_vec()).collect();
                    Owned::SetTagged(
                        db,
                        k.to_vec(),
                        v.value.to_vec(),
                        m.flags,
                        m.expire_at,
                        m.cas,
                        t,
                    )
                });
            });
            if cursor == 0 {
                break;
            }
        }
    }
    out
}

fn check_reads(e: &Engine, model: &Model, now: u64) -> Result<(), TestCaseError> {
    let live: Model = model
        .iter()
        .filter(|(_, (_, t, _))| !matches!(t, Some(t) if *t <= now))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for k in KEYS {
        let key = k.as_bytes();
        let want = live.get(key);
        let mut t = e.txn(0, &[key], now);
        prop_assert_eq!(t.exists(key), want.is_some(), "exists {}", k);
        let peek = t.peek(key).map(|v| (v.value.to_vec(), v.meta.expire_at));
        prop_assert_eq!(peek, want.map(|w| (w.0.clone(), w.1)), "peek {}", k);
        let f = t.fetch(key, false).map(|f| f.view.value.to_vec());
        prop_assert_eq!(f, want.map(|w| w.0.clone()), "fetch {}", k);
        prop_assert_eq!(t.idle_time(key).is_some(), want.is_some());
        let tags: Vec<Vec<u8>> = want.map_or(Vec::new(), |w| w.2.iter().cloned().collect());
        prop_assert_eq!(t.tags(key), tags, "tags {}", k);
        let got = t.get(key).map(|v| (v.value.to_vec(), v.meta.expire_at));
        prop_assert_eq!(got, want.map(|w| (w.0.clone(), w.1)), "get {}", k);
    }
    let want_keys: Vec<Vec<u8>> = live.keys().cloned().collect();
    let mut keys = Vec::new();
    e.for_each_key(0, now, |k| keys.push(k.to_vec()));
    keys.sort();
    prop_assert_eq!(&keys, &want_keys, "keys");
    let mut scanned = BTreeMap::new();
    let mut cursor = 0;
    loop {
        cursor = e.scan_tagged(0, cursor, 3, now, |k, _, tags| {
            scanned.insert(
                k.to_vec(),
                tags.iter().map(|t| t.to_vec()).collect::<BTreeSet<_>>(),
            );
        });
        if cursor == 0 {
            break;
        }
    }
    let want_scan: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> =
        live.iter().map(|(k, v)| (k.clone(), v.2.clone())).collect();
    prop_assert_eq!(scanned, want_scan, "scan");
    match e.random_key(0, now) {
        Some(k) => prop_assert!(live.contains_key(&k)),
        None => prop_assert!(live.is_empty()),
    }
    prop_assert!(e.dbsize(0) >= live.len());
    for tag in TAGS {
        let want: BTreeSet<Vec<u8>> = live
            .iter()
            .filter(|(_, v)| v.2.contains(tag.as_bytes()))
            .map(|(k, _)| k.clone())
            .collect();
        let mut got = BTreeSet::new();
        let mut cursor = 0;
        loop {
            cursor = e.tag_scan(0, tag.as_bytes(), cursor, 2, now, |k, v| {
                assert_eq!(Some(&v.value.to_vec()), live.get(k).map(|w| &w.0));
                got.insert(k.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        prop_assert_eq!(&got, &want, "tag scan {}", tag);
        prop_assert!(e.tag_card(0, tag.as_bytes()) >= want.len(), "card {}", tag);
    }
    prop_assert_eq!(e.used_memory(), counted(e));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// Random sequences of tagged and untagged writes, overwrites, in-place
    /// changes, deletes, expiries, tag and prefix invalidations, copies,
    /// renames, compactions and restarts give the model's answers on every
    /// read path after every step.
    #[test]
    fn tags_match_the_model_on_every_read_path(ops in proptest::collection::vec(t_op(), 1..80)) {
        let (mut e, mut r) = fresh(Vec::new());
        let mut model: Model = BTreeMap::new();
        let mut now = 1000u64;
        for op in ops {
            model.retain(|_, (_, t, _)| !matches!(t, Some(t) if *t <= now));
            let key = |i: usize| KEYS[i].as_bytes().to_vec();
            match op {
                TOp::Set(k, v, ttl, mask) => {
                    let at = ttl.map(|d| now + d);
                    let tags = tag_names(mask);
                    e.txn(0, &[key(k)], now).set_tagged(&key(k), &[&[v]], 0, at, &tags).unwrap();
                    model.insert(key(k), (vec![v], at, tags.iter().map(|t| t.to_vec()).collect()));
                }
                TOp::SetPlain(k, v) => {
                    e.txn(0, &[key(k)], now).set(&key(k), &[&[v]], 0, None);
                    model.insert(key(k), (vec![v], None, BTreeSet::new()));
                }
                TOp::SetCas(k, mask, c) => {
                    let tags = tag_names(mask);
                    let mut t = e.txn(0, &[key(k)], now);
                    t.use_cas(c).unwrap();
                    t.set_tagged(&key(k), &[b"c"], 0, None, &tags).unwrap();
                    model.insert(key(k), (b"c".to_vec(), None, tags.iter().map(|t| t.to_vec()).collect()));
                }
                TOp::Append(k, v) => {
                    let mut t = e.txn(0, &[key(k)], now);
                    let len = t.get(&key(k)).map(|x| x.value.len());
                    if let Some(n) = len {
                        t.rewrite(&key(k), n + 1, |old, new| { new[..n].copy_from_slice(old); new[n] = v; });
                        model.get_mut(&key(k)).unwrap().0.push(v);
                    } else {
                        prop_assert!(!model.contains_key(&key(k)));
                    }
                }
                TOp::Expire(k, t) => {
                    let at = t.map(|d| now + d);
                    let had = e.txn(0, &[key(k)], now).set_expiry(&key(k), at);
                    prop_assert_eq!(had, model.contains_key(&key(k)));
                    if had {
                        if matches!(at, Some(t) if t <= now) {
                            model.remove(&key(k));
                        } else {
                            model.get_mut(&key(k)).unwrap().1 = at;
                        }
                    }
                }
                TOp::Remove(k) => {
                    prop_assert_eq!(e.txn(0, &[key(k)], now).remove(&key(k)), model.remove(&key(k)).is_some());
                }
                TOp::Copy(a, b) | TOp::Rename(a, b) => {
                    let rename = matches!(op, TOp::Rename(..));
                    let mut t = e.txn(0, &[key(a), key(b)], now);
                    let copied = t.copy(&key(a), &key(b)).is_some();
                    prop_assert_eq!(copied, model.contains_key(&key(a)));
                    if copied {
                        let v = model[&key(a)].clone();
                        model.insert(key(b), v);
                        if rename && a != b {
                            t.remove(&key(a));
                            model.remove(&key(a));
                        }
                    }
                }
                TOp::TagAdd(k, mask) => {
                    let tags = tag_names(mask);
                    let n = e.txn(0, &[key(k)], now).tag_add(&key(k), &tags).unwrap();
                    let want = match model.get_mut(&key(k)) {
                        Some(m) => tags.iter().filter(|t| m.2.insert(t.to_vec())).count(),
                        None => 0,
                    };
                    prop_assert_eq!(n, want);
                }
                TOp::TagRemove(k, mask) => {
                    let tags = tag_names(mask);
                    let n = e.txn(0, &[key(k)], now).tag_remove(&key(k), &tags);
                    let want = match model.get_mut(&key(k)) {
                        Some(m) => tags.iter().filter(|t| m.2.remove(**t)).count(),
                        None => 0,
                    };
                    prop_assert_eq!(n, want);
                }
                TOp::InvTags(mask) => {
                    let tags = tag_names(mask);
                    let n = e.invalidate_tags(0, &tags);
                    let hit: usize = tags.iter().map(|t| model.values().filter(|v| v.2.contains(*t)).count()).sum();
                    prop_assert!(n >= hit, "invalidated {} of at least {}", n, hit);
                    model.retain(|_, v| !tags.iter().any(|t| v.2.contains(*t)));
                    for t in &tags {
                        prop_assert_eq!(e.tag_card(0, t), 0);
                    }
                }
                TOp::InvPrefix(p) => {
                    let p = PREFIXES[p].as_bytes();
                    e.invalidate_prefixes(0, &[p]).unwrap();
                    model.retain(|k, _| !k.starts_with(p));
                }
                TOp::Tick(d) => now += d,
                TOp::Cycle(b) => { e.expire_cycle(now, b); }
                TOp::Reclaim => {
                    e.reclaim_all();
                    e.expire_cycle(now, usize::MAX);
                    prop_assert_eq!(e.dbsize(0), model.len());
                    for tag in TAGS {
                        let n = model.values().filter(|v| v.2.contains(tag.as_bytes())).count();
                        prop_assert_eq!(e.tag_card(0, tag.as_bytes()), n, "card {} after reclamation", tag);
                    }
                    prop_assert_eq!(e.db_tag_summary(0).dead_pending, 0);
                    prop_assert_eq!(e.db_tag_summary(0).prefixes_pending, 0);
                }
                TOp::Compact => {
                    let snap = snapshot(&e);
                    *r.0.lock() = snap;
                }
                TOp::Restart => {
                    let log = r.0.lock().clone();
                    let (e2, r2) = fresh(log);
                    e2.reclaim_all();
                    e2.expire_cycle(now, usize::MAX);
                    prop_assert_eq!(dump(&e2, now), dump(&e, now));
                    e = e2;
                    r = r2;
                }
            }
            check_reads(&e, &model, now)?;
            e.with_registry(0, |reg, recount| assert_eq!(reg.bytes(), recount));
            for tag in TAGS {
                if let Some((members, dead)) = e.with_registry(0, |reg, _| reg.counts(tag.as_bytes())) {
                    prop_assert!(members + dead > 0, "an empty tag is forgotten");
                }
            }
        }
    }
}

#[test]
fn memory_returns_after_invalidating_a_million_keys() {
    let e = Engine::new(EngineConfig {
        databases: 1,
        shards: 16,
    });
    set(&e, b"keep", b"v", &[b"other"]);
    let before = e.used_memory();
    for i in 0..1_000_000u32 {
        let k = format!("get_items_in_cart::13:{i}");
        e.txn(0, &[k.as_bytes()], 1)
            .set_tagged(k.as_bytes(), &[&[b'v'; 16]], 0, None, &[b"cart:13"])
            .unwrap();
    }
    let loaded = e.used_memory();
    assert!(loaded > before + 1_000_000 * 40, "{loaded}");
    assert_eq!(e.invalidate_tags(0, &[b"cart:13"]), 1_000_000);
    assert_eq!(e.tag_card(0, b"cart:13"), 0);
    // the expiry cycle's bounded steps give it all back
    let mut cycles = 0;
    while e.expire_cycle(1, 64) > 0 {
        cycles += 1;
    }
    assert!(cycles > 100, "bounded work per cycle: {cycles} cycles");
    assert_eq!(e.dbsize(0), 1);
    assert_eq!(e.db_tag_summary(0).dead_pending, 0);
    // what stays is the tables' capacity (hashbrown does not shrink), not
    // entries or tag bookkeeping
    let m = e.memory();
    assert_eq!(m.entries, e.db_memory(0).entries);
    assert!(m.entries < 200 && m.tags < 1000, "{m:?}");
    assert_eq!(e.used_memory(), counted(&e));
    assert!(live(&e, b"keep"));
}
