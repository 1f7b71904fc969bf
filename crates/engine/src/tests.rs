//! Engine tests: direct cases, SCAN completeness under growth, and a property
//! test against a BTreeMap model.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn engine() -> Engine {
    Engine::new(EngineConfig {
        databases: 2,
        shards: 8,
    })
}

#[test]
fn set_get_remove_and_databases_are_separate() {
    let e = engine();
    let cas = e.txn(0, &[b"k"], 1).set(b"k", &[b"v"], 7, None);
    assert!(cas > 0);
    let mut t = e.txn(0, &[b"k"], 1);
    let v = t.get(b"k").unwrap();
    assert_eq!((v.value, v.meta.flags, v.meta.cas), (&b"v"[..], 7, cas));
    drop(t);
    assert!(e.txn(1, &[b"k"], 1).get(b"k").is_none());
    assert!(e.txn(0, &[b"k"], 1).remove(b"k"));
    assert!(!e.txn(0, &[b"k"], 1).remove(b"k"));
    assert_eq!(e.dbsize(0), 0);
}

#[test]
fn cas_changes_on_every_write_but_not_on_touch() {
    let e = engine();
    let c1 = e.txn(0, &[b"k"], 1).set(b"k", &[b"1"], 0, None);
    let c2 = e.txn(0, &[b"k"], 1).set(b"k", &[b"1"], 0, None);
    assert_ne!(c1, c2);
    let mut t = e.txn(0, &[b"k"], 1);
    assert!(t.set_expiry(b"k", Some(100)));
    assert_eq!(t.get(b"k").unwrap().meta.cas, c2);
    let c3 = t.rewrite(b"k", 2, |old, new| {
        new[0] = old[0];
        new[1] = b'2';
    });
    let v = t.get(b"k").unwrap();
    assert_eq!((v.value, v.meta.expire_at), (&b"12"[..], Some(100)));
    assert_eq!(Some(v.meta.cas), c3);
}

#[test]
fn fetched_mark_lives_as_long_as_the_version() {
    let e = engine();
    let mut t = e.txn(0, &[b"k"], 1);
    assert!(t.fetch(b"k", true).is_none());
    t.set(b"k", &[b"12"], 3, None);
    // a read without mark reports and leaves the state
    assert!(!t.fetch(b"k", false).unwrap().fetched_before);
    assert!(!t.fetch(b"k", false).unwrap().fetched_before);
    let f = t.fetch(b"k", true).unwrap();
    assert_eq!(
        (f.view.value, f.view.meta.flags, f.fetched_before),
        (&b"12"[..], 3, false)
    );
    assert!(t.fetch(b"k", true).unwrap().fetched_before);
    assert_eq!(t.get(b"k").unwrap().value, b"12");
    // metadata changes keep it
    assert!(t.set_expiry(b"k", Some(1000)));
    assert!(t.set_flags(b"k", 4));
    let f = t.fetch(b"k", false).unwrap();
    assert_eq!(
        (f.view.meta.expire_at, f.view.meta.flags, f.fetched_before),
        (Some(1000), 4, true)
    );
    // a new version starts unfetched
    t.rewrite(b"k", 3, |old, new| {
        new[..2].copy_from_slice(old);
    });
    assert!(!t.fetch(b"k", true).unwrap().fetched_before);
    assert!(t.fetch(b"k", false).unwrap().fetched_before);
    t.set(b"k", &[b"x"], 0, None);
    assert!(!t.fetch(b"k", false).unwrap().fetched_before);
    // an expired key is a miss, and is collected
    t.set(b"k", &[b"x"], 0, Some(5));
    drop(t);
    let mut t = e.txn(0, &[b"k"], 10);
    assert!(t.fetch(b"k", true).is_none());
    drop(t);
    assert_eq!(e.dbsize(0), 0);
    assert_eq!(e.stats().expired_keys.load(Ordering::Relaxed), 1);
}

/// The engine's bytes summed shard by shard under their locks: what
/// [`Engine::used_memory`] must always equal.
pub(crate) fn counted(e: &Engine) -> usize {
    let m = e.memory();
    m.entries + m.tables + m.tags
}

/// A time (ms) on a whole second, ahead of the engine's clock (which starts
/// at the real time), so tests can move the clock by choosing `now`.
fn future_second(after_secs: u64) -> u64 {
    (now_ms() / 1000 + after_secs) * 1000
}

#[test]
fn reads_and_writes_are_accesses_and_inspection_is_not() {
    let e = engine();
    let t0 = future_second(10);
    let at = |s: u64| t0 + s * 1000;
    e.txn(0, &[b"k"], at(0)).set(b"k", &[b"12"], 0, None);
    assert_eq!(e.txn(0, &[b"k"], at(0)).idle_time(b"k"), Some(0));
    // idle_time, peek, exists and a fetch without access change nothing
    let mut t = e.txn(0, &[b"k"], at(5));
    assert_eq!(t.idle_time(b"k"), Some(5));
    assert!(t.peek(b"k").is_some() && t.exists(b"k"));
    assert_eq!(t.fetch(b"k", false).unwrap().idle_before, 5);
    drop(t);
    assert_eq!(e.txn(0, &[b"k"], at(7)).idle_time(b"k"), Some(7));
    // get is an access
    assert_eq!(e.txn(0, &[b"k"], at(7)).get(b"k").unwrap().value, b"12");
    assert_eq!(e.txn(0, &[b"k"], at(9)).idle_time(b"k"), Some(2));
    // fetch with access reports the idle time from before it, then resets it
    let mut t = e.txn(0, &[b"k"], at(12));
    assert_eq!(t.fetch(b"k", true).unwrap().idle_before, 5);
    assert_eq!(t.idle_time(b"k"), Some(0));
    drop(t);
    // metadata changes keep the access time; new versions take a fresh one
    let mut t = e.txn(0, &[b"k"], at(20));
    assert!(t.set_expiry(b"k", Some(at(1000))));
    assert!(t.set_flags(b"k", 9));
    assert_eq!(t.idle_time(b"k"), Some(8));
    t.rewrite(b"k", 1, |_, d| d[0] = b'x');
    assert_eq!(t.idle_time(b"k"), Some(0));
    drop(t);
    assert_eq!(e.txn(0, &[b"k"], at(30)).idle_time(b"k"), Some(10));
    // COPY reads the source (an access) and writes the destination
    let mut t = e.txn(0, &[&b"k"[..], b"d"], at(31));
    t.copy(b"k", b"d");
    assert_eq!((t.idle_time(b"k"), t.idle_time(b"d")), (Some(0), Some(0)));
    drop(t);
    e.txn(0, &[b"s"], at(31))
        .set(b"s", &[b"v"], 0, Some(at(32)));
    // missing and expired keys have no idle time
    let mut t = e.txn(0, &[&b"s"[..], b"nope"], at(32));
    assert_eq!((t.idle_time(b"s"), t.idle_time(b"nope")), (None, None));
}

#[test]
fn the_access_clock_never_goes_back() {
    // a transaction whose `now` was taken before another one's write (a
    // long pipelined batch) must not see that write in its future
    let e = engine();
    let t0 = future_second(10);
    e.txn(0, &[b"k"], t0 + 3000).set(b"k", &[b"v"], 0, None);
    assert_eq!(e.txn(0, &[b"k"], t0).idle_time(b"k"), Some(0));
    assert_eq!(e.txn(0, &[b"k"], t0 + 4000).idle_time(b"k"), Some(1));
}

#[test]
fn idle_time_survives_the_24_bit_clock_wrapping() {
    let e = engine();
    let period = ACCESS_CLOCK_PERIOD_SECS;
    let wrap = (now_ms() / 1000 / period + 1) * period;
    e.txn(0, &[b"k"], (wrap - 3) * 1000)
        .set(b"k", &[b"v"], 0, None);
    assert_eq!(
        e.txn(0, &[b"k"], (wrap + 4) * 1000).idle_time(b"k"),
        Some(7)
    );
}

#[test]
fn replayed_keys_count_as_accessed_at_the_replay() {
    let e = engine();
    let start = u64::from(e.clock.0.load(Ordering::Relaxed)) * 1000;
    e.replay(Mutation::Set {
        db: 0,
        key: b"k",
        value: b"v",
        flags: 0,
        expire_at: None,
        cas: 5,
    });
    assert_eq!(e.txn(0, &[b"k"], start).idle_time(b"k"), Some(0));
    assert_eq!(e.txn(0, &[b"k"], start + 60_000).idle_time(b"k"), Some(60));
}

#[test]
fn a_300_byte_key_round_trips_through_the_engine() {
    let e = engine();
    let key = vec![b'q'; 300];
    e.txn(0, &[&key], 1).set(&key, &[b"v"], 3, Some(u64::MAX));
    let mut t = e.txn(0, &[&key], 1);
    let v = t.get(&key).unwrap();
    assert_eq!((v.value, v.meta.flags), (&b"v"[..], 3));
    drop(t);
    let mut keys = Vec::new();
    e.for_each_key(0, 1, |k| keys.push(k.to_vec()));
    assert_eq!(keys, vec![key.clone()]);
    // header + expiry + flags + long key length + key + value
    assert_eq!(e.db_memory(0).entries, 17 + 8 + 4 + 4 + 300 + 1);
    assert!(e.txn(0, &[&key], 1).remove(&key));
}

#[test]
fn db_memory_counts_one_database() {
    let e = engine();
    e.txn(1, &[b"k"], 1).set(b"k", &[b"v"], 0, None);
    assert_eq!(e.db_memory(0).entries, 0);
    // header (17) + key + value
    assert_eq!(e.db_memory(1).entries, 19);
    let (m0, m1, all) = (e.db_memory(0), e.db_memory(1), e.memory());
    assert_eq!(m0.entries + m1.entries, all.entries);
    assert_eq!(m0.tables + m1.tables, all.tables);
}

#[test]
fn expiry_lazy_active_and_past_times() {
    let e = engine();
    e.txn(0, &[b"a"], 0).set(b"a", &[b"1"], 0, Some(10));
    e.txn(0, &[b"b"], 0).set(b"b", &[b"1"], 0, Some(20));
    assert_eq!(
        e.db_info(0),
        DbInfo {
            keys: 2,
            expires: 2
        }
    );
    assert!(
        e.txn(0, &[b"a"], 10).get(b"a").is_none(),
        "expired at its instant"
    );
    assert_eq!(e.expire_cycle(25, 100), 1);
    assert_eq!(e.db_info(0), DbInfo::default());
    assert_eq!(e.stats().expired_keys.load(Ordering::Relaxed), 2);
    // an expiry in the past deletes instead of storing
    e.txn(0, &[b"c"], 50).set(b"c", &[b"1"], 0, None);
    assert_eq!(e.txn(0, &[b"c"], 50).set(b"c", &[b"2"], 0, Some(50)), 0);
    assert_eq!(e.dbsize(0), 0);
    // clearing a TTL removes it from the index
    let mut t = e.txn(0, &[b"d"], 50);
    t.set(b"d", &[b"1"], 0, Some(60));
    assert!(t.set_expiry(b"d", None));
    drop(t);
    assert_eq!(
        e.db_info(0),
        DbInfo {
            keys: 1,
            expires: 0
        }
    );
    assert_eq!(e.expire_cycle(1000, 100), 0);
}

#[test]
fn copy_keeps_value_flags_and_expiry_with_a_new_cas() {
    let e = engine();
    // enough key pairs that some share a shard and some do not
    for i in 0..32 {
        let (src, dst) = (format!("src{i}"), format!("dst{i}"));
        let (src, dst) = (src.as_bytes(), dst.as_bytes());
        let mut t = e.txn(0, &[src, dst], 10);
        let c1 = t.set(src, &[b"val", b"ue"], 9, Some(1000));
        t.set(dst, &[b"old"], 0, None);
        let c2 = t.copy(src, dst).unwrap();
        assert_ne!(c1, c2);
        let v = t.get(dst).unwrap();
        assert_eq!(
            (v.value, v.meta.flags, v.meta.expire_at),
            (&b"value"[..], 9, Some(1000))
        );
        assert_eq!(t.get(src).unwrap().meta.cas, c1, "source untouched");
    }
    let info = e.db_info(0);
    assert_eq!((info.keys, info.expires), (64, 64));
    let mut t = e.txn(0, &[&b"missing"[..], b"dst1"], 10);
    assert_eq!(t.copy(b"missing", b"dst1"), None);
    assert_eq!(t.get(b"dst1").unwrap().value, b"value");
    drop(t);
    // an expired source is absent and the destination is left alone
    let mut t = e.txn(0, &[&b"src0"[..], b"dst0"], 1000);
    assert_eq!(t.copy(b"src0", b"dst0"), None);
    assert!(t.get(b"src0").is_none());
    drop(t);
    assert_eq!(e.expire_cycle(1000, 1000), 31 * 2 + 1);
    assert_eq!(e.dbsize(0), 0);
}

#[test]
fn multi_key_txn_locks_each_shard_once() {
    let e = engine();
    let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
    let mut t = e.txn(0, &keys, 1);
    for k in &keys {
        t.set(k, &[k], 0, None);
    }
    for k in &keys {
        assert_eq!(t.get(k).unwrap().value, &k[..]);
    }
    drop(t);
    assert_eq!(e.dbsize(0), 100);
    let mut n = 0;
    e.for_each_key(0, 1, |_| n += 1);
    assert_eq!(n, 100);
    assert!(e.random_key(0, 1).is_some());
    e.flush_all();
    assert_eq!(e.random_key(0, 1), None);
}

#[test]
fn scan_returns_every_key_present_throughout_while_the_table_grows() {
    let e = engine();
    let stable: BTreeSet<Vec<u8>> = (0..2000).map(|i| format!("s{i}").into_bytes()).collect();
    for k in &stable {
        e.txn(0, &[k], 1).set(k, &[b"v"], 0, None);
    }
    let mut seen = BTreeSet::new();
    let mut cursor = 0;
    let mut added = 0;
    loop {
        cursor = e.scan(0, cursor, 10, 1, |k, _| {
            seen.insert(k.to_vec());
        });
        // grow and churn between calls so tables resize mid-scan
        for _ in 0..30 {
            let k = format!("n{added}").into_bytes();
            e.txn(0, &[&k], 1).set(&k, &[b"v"], 0, None);
            added += 1;
        }
        if cursor == 0 {
            break;
        }
    }
    assert!(stable.is_subset(&seen));
}

#[test]
fn scan_skips_expired_keys() {
    let e = engine();
    e.txn(0, &[b"live"], 0).set(b"live", &[b"v"], 0, None);
    e.txn(0, &[b"dead"], 0).set(b"dead", &[b"v"], 0, Some(5));
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = e.scan(0, cursor, 100, 10, |k, _| seen.push(k.to_vec()));
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen, vec![b"live".to_vec()]);
}

#[derive(Clone, Debug)]
enum Op {
    Set(u8, u8, Option<u64>),
    Get(u8),
    Remove(u8),
    Expire(u8, Option<u64>),
    Append(u8, u8),
    Tick(u64),
    Cycle,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..8;
    prop_oneof![
        (key.clone(), any::<u8>(), proptest::option::of(1u64..40))
            .prop_map(|(k, v, t)| Op::Set(k, v, t)),
        key.clone().prop_map(Op::Get),
        key.clone().prop_map(Op::Remove),
        (key.clone(), proptest::option::of(0u64..40)).prop_map(|(k, t)| Op::Expire(k, t)),
        (key, any::<u8>()).prop_map(|(k, v)| Op::Append(k, v)),
        (1u64..10).prop_map(Op::Tick),
        Just(Op::Cycle),
    ]
}

proptest! {
    /// Random operation sequences give the same answers as a BTreeMap model
    /// that stores (value, absolute expiry) and filters by the clock.
    #[test]
    fn engine_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        let e = engine();
        let mut model: BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> = BTreeMap::new();
        let mut now = 100u64;
        for op in ops {
            model.retain(|_, (_, t)| !matches!(t, Some(t) if *t <= now));
            match op {
                Op::Set(k, v, ttl) => {
                    let key = vec![k];
                    let at = ttl.map(|d| now + d);
                    e.txn(0, &[&key], now).set(&key, &[&[v]], 0, at);
                    model.insert(key, (vec![v], at));
                }
                Op::Get(k) => {
                    let key = vec![k];
                    let mut t = e.txn(0, &[&key], now);
                    let got = t.get(&key).map(|v| (v.value.to_vec(), v.meta.expire_at));
                    prop_assert_eq!(got, model.get(&key).cloned());
                }
                Op::Remove(k) => {
                    let key = vec![k];
                    prop_assert_eq!(e.txn(0, &[&key], now).remove(&key), model.remove(&key).is_some());
                }
                Op::Expire(k, t) => {
                    let key = vec![k];
                    let at = t.map(|d| now + d);
                    let had = e.txn(0, &[&key], now).set_expiry(&key, at);
                    prop_assert_eq!(had, model.contains_key(&key));
                    if had {
                        if matches!(at, Some(t) if t <= now) {
                            model.remove(&key);
                        } else {
                            model.get_mut(&key).unwrap().1 = at;
                        }
                    }
                }
                Op::Append(k, v) => {
                    let key = vec![k];
                    let mut t = e.txn(0, &[&key], now);
                    let len = t.get(&key).map(|v| v.value.len() + 1);
                    if let Some(len) = len {
                        t.rewrite(&key, len, |old, new| {
                            new[..old.len()].copy_from_slice(old);
                            new[old.len()] = v;
                        });
                        model.get_mut(&key).unwrap().0.push(v);
                    }
                }
                Op::Tick(d) => now += d,
                Op::Cycle => {
                    e.expire_cycle(now, 1000);
                    prop_assert_eq!(e.dbsize(0), model.iter().filter(|(_, (_, t))| !matches!(t, Some(t) if *t <= now)).count());
                }
            }
            let mut keys = Vec::new();
            e.for_each_key(0, now, |k| keys.push(k.to_vec()));
            keys.sort();
            let live: Vec<Vec<u8>> = model.iter().filter(|(_, (_, t))| !matches!(t, Some(t) if *t <= now)).map(|(k, _)| k.clone()).collect();
            prop_assert_eq!(keys, live);
            prop_assert_eq!(e.used_memory(), counted(&e));
        }
    }
}

/// Owned copy of a [`Mutation`], for tests that record and replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Owned {
    Set(usize, Vec<u8>, Vec<u8>, u32, Option<u64>, u64),
    Del(usize, Vec<u8>),
    Expire(usize, Vec<u8>, Option<u64>),
    FlushDb(usize),
    FlushAll,
    SetTagged(usize, Vec<u8>, Vec<u8>, u32, Option<u64>, u64, Vec<Vec<u8>>),
    SetTags(usize, Vec<u8>, Vec<Vec<u8>>, u64),
    InvalidateTags(usize, u64, Vec<Vec<u8>>),
    InvalidatePrefixes(usize, u64, Vec<Vec<u8>>),
    /// AddItem (value Some) or RemoveItem (value None).
    Item(
        usize,
        Vec<u8>,
        Kind,
        Vec<u8>,
        Option<Vec<u8>>,
        Option<u64>,
        u64,
    ),
}

fn owned_list(l: TagList<'_>) -> Vec<Vec<u8>> {
    l.iter().map(|t| t.to_vec()).collect()
}

fn encoded(l: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_tag_list(l.iter().map(|t| &t[..]), &mut buf);
    buf
}

#[derive(Default)]
pub(crate) struct Recorder(pub(crate) parking_lot::Mutex<Vec<Owned>>);

impl MutationSink for Recorder {
    fn record(&self, m: Mutation<'_>) {
        let o = match m {
            Mutation::Set {
                db,
                key,
                value,
                flags,
                expire_at,
                cas,
            } => Owned::Set(db, key.to_vec(), value.to_vec(), flags, expire_at, cas),
            Mutation::Del { db, key } => Owned::Del(db, key.to_vec()),
            Mutation::Expire { db, key, at } => Owned::Expire(db, key.to_vec(), at),
            Mutation::FlushDb { db } => Owned::FlushDb(db),
            Mutation::FlushAll => Owned::FlushAll,
            Mutation::SetTagged {
                db,
                key,
                value,
                flags,
                expire_at,
                cas,
                tags,
            } => Owned::SetTagged(
                db,
                key.to_vec(),
                value.to_vec(),
                flags,
                expire_at,
                cas,
                owned_list(tags),
            ),
            Mutation::SetTags { db, key, tags, cas } => {
                Owned::SetTags(db, key.to_vec(), owned_list(tags), cas)
            }
            Mutation::InvalidateTags { db, epoch, tags } => {
                Owned::InvalidateTags(db, epoch, owned_list(tags))
            }
            Mutation::InvalidatePrefixes {
                db,
                epoch,
                prefixes,
            } => Owned::InvalidatePrefixes(db, epoch, owned_list(prefixes)),
            Mutation::AddItem {
                db,
                key,
                kind,
                item,
                value,
                expire_at,
                cas,
            } => Owned::Item(
                db,
                key.to_vec(),
                kind,
                item.to_vec(),
                Some(value.to_vec()),
                expire_at,
                cas,
            ),
            Mutation::RemoveItem {
                db,
                key,
                kind,
                item,
                expire_at,
                cas,
            } => Owned::Item(db, key.to_vec(), kind, item.to_vec(), None, expire_at, cas),
        };
        self.0.lock().push(o);
    }
}

pub(crate) fn replay_into(e: &Engine, log: &[Owned]) {
    for o in log {
        let buf = match o {
            Owned::SetTagged(.., t)
            | Owned::SetTags(_, _, t, _)
            | Owned::InvalidateTags(_, _, t)
            | Owned::InvalidatePrefixes(_, _, t) => encoded(t),
            _ => Vec::new(),
        };
        let list = TagList::from_encoded(&buf).unwrap();
        e.replay(match o {
            Owned::Set(db, k, v, f, x, c) => Mutation::Set {
                db: *db,
                key: k,
                value: v,
                flags: *f,
                expire_at: *x,
                cas: *c,
            },
            Owned::Del(db, k) => Mutation::Del { db: *db, key: k },
            Owned::Expire(db, k, at) => Mutation::Expire {
                db: *db,
                key: k,
                at: *at,
            },
            Owned::FlushDb(db) => Mutation::FlushDb { db: *db },
            Owned::FlushAll => Mutation::FlushAll,
            Owned::SetTagged(db, k, v, f, x, c, _) => Mutation::SetTagged {
                db: *db,
                key: k,
                value: v,
                flags: *f,
                expire_at: *x,
                cas: *c,
                tags: list,
            },
            Owned::SetTags(db, k, _, c) => Mutation::SetTags {
                db: *db,
                key: k,
                tags: list,
                cas: *c,
            },
            Owned::InvalidateTags(db, epoch, _) => Mutation::InvalidateTags {
                db: *db,
                epoch: *epoch,
                tags: list,
            },
            Owned::InvalidatePrefixes(db, epoch, _) => Mutation::InvalidatePrefixes {
                db: *db,
                epoch: *epoch,
                prefixes: list,
            },
            Owned::Item(db, k, kind, item, Some(v), x, c) => Mutation::AddItem {
                db: *db,
                key: k,
                kind: *kind,
                item,
                value: v,
                expire_at: *x,
                cas: *c,
            },
            Owned::Item(db, k, kind, item, None, x, c) => Mutation::RemoveItem {
                db: *db,
                key: k,
                kind: *kind,
                item,
                expire_at: *x,
                cas: *c,
            },
        });
    }
}

/// Every entry of every database as (db, key, value, meta), sorted.
pub(crate) fn dump(e: &Engine, now: u64) -> Vec<(usize, Vec<u8>, Vec<u8>, Meta)> {
    let mut out = Vec::new();
    for db in 0..e.databases() {
        for s in 0..e.shards() {
            e.visit_shard(db, s, |k, v| {
                if !matches!(v.meta.expire_at, Some(t) if t <= now) {
                    out.push((db, k.to_vec(), v.value.to_vec(), v.meta));
                }
            });
        }
    }
    out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    out
}

#[test]
fn no_sink_means_no_records_and_sink_installs_once() {
    let e = engine();
    e.txn(0, &[b"k"], 1).set(b"k", &[b"v"], 0, None);
    let r = Arc::new(Recorder::default());
    assert!(e.set_sink(r.clone()));
    assert!(!e.set_sink(r.clone()));
    e.txn(0, &[b"k"], 1).set(b"k", &[b"w"], 3, Some(99));
    // a lazy expiry removal is not a record; a DEL of an expired key is
    assert!(e.txn(0, &[b"k"], 100).get(b"k").is_none());
    e.txn(0, &[b"j"], 1).set(b"j", &[b"v"], 0, Some(5));
    assert!(!e.txn(0, &[b"j"], 10).remove(b"j"));
    let log = r.0.lock().clone();
    assert_eq!(log.len(), 2 + 1);
    assert!(matches!(&log[0], Owned::Set(0, k, v, 3, Some(99), _) if k == b"k" && v == b"w"));
    assert_eq!(log[2], Owned::Del(0, b"j".to_vec()));
}

#[test]
fn replay_keeps_cas_and_later_writes_get_higher_cas() {
    let e = engine();
    e.replay(Mutation::Set {
        db: 1,
        key: b"k",
        value: b"v",
        flags: 9,
        expire_at: None,
        cas: 500,
    });
    assert_eq!(e.txn(1, &[b"k"], 1).get(b"k").unwrap().meta.cas, 500);
    assert!(e.txn(1, &[b"x"], 1).set(b"x", &[b"v"], 0, None) > 500);
}

#[test]
fn a_chosen_cas_is_used_once_and_the_counter_moves_past_it() {
    let e = engine();
    let r = Arc::new(Recorder::default());
    e.set_sink(r.clone());
    let auto = e.txn(0, &[b"a"], 1).set(b"a", &[b"1"], 0, None);
    let mut t = e.txn(0, &[b"k"], 1);
    t.use_cas(1000).unwrap();
    assert_eq!(t.set(b"k", &[b"v"], 3, None), 1000);
    // used once: the next write in the same transaction is numbered again
    let next = t.set(b"k", &[b"w"], 3, None);
    assert_eq!(next, 1001);
    drop(t);
    assert!(next > auto);
    // a chosen value below the counter is taken as given (may repeat an
    // old CAS) and leaves the counter where it was
    let mut t = e.txn(0, &[b"k"], 1);
    t.use_cas(auto).unwrap();
    assert_eq!(t.set(b"k", &[b"x"], 0, None), auto);
    assert_eq!(t.get(b"k").unwrap().meta.cas, auto);
    assert_eq!(t.set(b"k", &[b"y"], 0, None), 1002);
    // rewrite, set_flags and copy take it too; set_expiry leaves it pending
    t.use_cas(5000).unwrap();
    assert!(t.set_expiry(b"k", Some(99)));
    assert_eq!(t.get(b"k").unwrap().meta.cas, 1002);
    assert_eq!(t.rewrite(b"k", 1, |_, d| d[0] = b'r'), Some(5000));
    t.use_cas(6000).unwrap();
    assert!(t.set_flags(b"k", 8));
    assert_eq!(t.get(b"k").unwrap().meta.cas, 6000);
    drop(t);
    let mut t = e.txn(0, &[&b"k"[..], b"c", b"absent"], 1);
    t.use_cas(7000).unwrap();
    assert_eq!(t.copy(b"k", b"c"), Some(7000));
    // consumed even when the write stores nothing
    t.use_cas(8000).unwrap();
    assert_eq!(t.rewrite(b"absent", 1, |_, _| {}), None);
    assert_eq!(t.set(b"c", &[b"z"], 0, None), 7001);
    t.use_cas(9000).unwrap();
    assert_eq!(t.set(b"c", &[b"z"], 0, Some(1)), 0, "expired: deleted");
    assert_eq!(t.set(b"c", &[b"z"], 0, None), 7002, "9000 was not used");
    drop(t);
    // every chosen CAS reached the log as given
    let logged: Vec<u64> =
        r.0.lock()
            .iter()
            .filter_map(|o| match o {
                Owned::Set(_, _, _, _, _, c) => Some(*c),
                _ => None,
            })
            .collect();
    assert_eq!(
        logged,
        [auto, 1000, 1001, auto, 1002, 5000, 6000, 7000, 7001, 7002]
    );
}

#[test]
fn chosen_cas_range_is_1_to_2_pow_63_minus_1_and_the_counter_never_wraps() {
    let e = engine();
    let mut t = e.txn(0, &[b"k"], 1);
    for bad in [0, MAX_CHOSEN_CAS + 1, u64::MAX] {
        assert_eq!(t.use_cas(bad), Err(CasOutOfRange));
    }
    // a refused value leaves no choice pending
    let auto = t.set(b"k", &[b"v"], 0, None);
    assert!(auto < 100);
    t.use_cas(MAX_CHOSEN_CAS).unwrap();
    assert_eq!(t.set(b"k", &[b"v"], 0, None), MAX_CHOSEN_CAS);
    assert_eq!(t.set(b"k", &[b"v"], 0, None), MAX_CHOSEN_CAS + 1);
    assert_eq!(
        CasOutOfRange.to_string(),
        "CAS must be between 1 and 9223372036854775807"
    );
}

#[test]
fn replay_of_a_chosen_cas_resumes_the_counter_above_it() {
    let live = engine();
    let r = Arc::new(Recorder::default());
    live.set_sink(r.clone());
    let mut t = live.txn(0, &[b"k"], 1);
    t.use_cas(1 << 40).unwrap();
    t.set(b"k", &[b"v"], 0, None);
    drop(t);
    let rebuilt = engine();
    replay_into(&rebuilt, &r.0.lock());
    assert_eq!(
        rebuilt.txn(0, &[b"k"], 1).get(b"k").unwrap().meta.cas,
        1 << 40
    );
    assert_eq!(
        rebuilt.txn(0, &[b"n"], 1).set(b"n", &[b"v"], 0, None),
        (1 << 40) + 1
    );
}

#[derive(Clone, Debug)]
enum LogOp {
    Set(u8, u8, Option<u64>),
    /// A set with a chosen CAS (small, so keys share and repeat values).
    SetCas(u8, Option<u64>, u64),
    Append(u8),
    Remove(u8),
    Expire(u8, Option<u64>),
    Flags(u8, u32),
    Copy(u8, u8),
    Get(u8),
    Cycle,
    FlushDb,
    FlushAll,
    Tick(u64),
    /// A write's [`Engine::make_room`] under a limit of this many bytes and
    /// this policy (an index into [`EvictionPolicy::ALL`]).
    Evict(usize, usize),
}

fn log_op() -> impl Strategy<Value = LogOp> {
    let key = 0u8..12;
    let ttl = proptest::option::of(0u64..40);
    prop_oneof![
        4 => (key.clone(), any::<u8>(), ttl.clone()).prop_map(|(k, v, t)| LogOp::Set(k, v, t)),
        2 => (key.clone(), ttl.clone(), 1u64..20).prop_map(|(k, t, c)| LogOp::SetCas(k, t, c)),
        2 => key.clone().prop_map(LogOp::Append),
        2 => key.clone().prop_map(LogOp::Remove),
        2 => (key.clone(), ttl).prop_map(|(k, t)| LogOp::Expire(k, t)),
        1 => (key.clone(), any::<u32>()).prop_map(|(k, f)| LogOp::Flags(k, f)),
        2 => (key.clone(), key.clone()).prop_map(|(a, b)| LogOp::Copy(a, b)),
        2 => key.prop_map(LogOp::Get),
        1 => Just(LogOp::Cycle),
        1 => Just(LogOp::FlushDb),
        1 => Just(LogOp::FlushAll),
        2 => (1u64..15).prop_map(LogOp::Tick),
        2 => (0usize..3000, 0usize..EvictionPolicy::ALL.len()).prop_map(|(b, p)| LogOp::Evict(b, p)),
    ]
}

proptest! {
    /// Replaying the records of any operation sequence (expiry ignored during
    /// replay, swept at the end) rebuilds exactly the live state.
    #[test]
    fn replaying_records_rebuilds_the_state(ops in proptest::collection::vec((0usize..2, log_op()), 1..120)) {
        let live = engine();
        let r = Arc::new(Recorder::default());
        live.set_sink(r.clone());
        let mut now = 100u64;
        for (db, op) in ops {
            let k = |i: u8| vec![b'k', i];
            match op {
                LogOp::Set(i, v, t) => { live.txn(db, &[k(i)], now).set(&k(i), &[&[v]], 0, t.map(|t| now + t)); }
                LogOp::SetCas(i, t, c) => {
                    let mut txn = live.txn(db, &[k(i)], now);
                    txn.use_cas(c).unwrap();
                    txn.set(&k(i), &[b"c"], 0, t.map(|t| now + t));
                }
                LogOp::Append(i) => {
                    let mut t = live.txn(db, &[k(i)], now);
                    let len = t.get(&k(i)).map(|v| v.value.len());
                    match len {
                        Some(n) => { t.rewrite(&k(i), n + 1, |old, new| { new[..n].copy_from_slice(old); new[n] = b'+'; }); }
                        None => { t.set(&k(i), &[b"+"], 0, None); }
                    }
                }
                LogOp::Remove(i) => { live.txn(db, &[k(i)], now).remove(&k(i)); }
                LogOp::Expire(i, t) => { live.txn(db, &[k(i)], now).set_expiry(&k(i), t.map(|t| now + t - 5)); }
                LogOp::Flags(i, f) => { live.txn(db, &[k(i)], now).set_flags(&k(i), f); }
                LogOp::Copy(a, b) => { live.txn(db, &[k(a), k(b)], now).copy(&k(a), &k(b)); }
                LogOp::Get(i) => { live.txn(db, &[k(i)], now).get(&k(i)); }
                LogOp::Cycle => { live.expire_cycle(now, 3); }
                LogOp::FlushDb => live.flush_db(db),
                LogOp::FlushAll => live.flush_all(),
                LogOp::Tick(d) => now += d,
                LogOp::Evict(max_bytes, p) => {
                    live.set_memory_limit(MemoryLimit { max_bytes, policy: EvictionPolicy::ALL[p], samples: 3 });
                    let _ = live.make_room(now);
                    live.set_memory_limit(MemoryLimit::default());
                }
            }
            prop_assert_eq!(live.used_memory(), counted(&live));
        }
        let rebuilt = engine();
        replay_into(&rebuilt, &r.0.lock());
        rebuilt.expire_cycle(now, usize::MAX);
        prop_assert_eq!(dump(&rebuilt, now), dump(&live, now));
        // the rebuilt counter resumes above every CAS seen, chosen or not
        let max = dump(&live, 0).iter().map(|x| x.3.cas).max().unwrap_or(0);
        prop_assert!(rebuilt.txn(0, &[b"new"], now).set(b"new", &[b"v"], 0, None) > max);
    }
}

// ------------------------------------------------------------ memory limit

/// An engine of one database and one shard, so a sample of 64 sees the
/// whole table and LRU is exact.
fn one_shard() -> Engine {
    Engine::new(EngineConfig {
        databases: 1,
        shards: 1,
    })
}

fn limit(max_bytes: usize, policy: EvictionPolicy) -> MemoryLimit {
    MemoryLimit {
        max_bytes,
        policy,
        samples: MAX_SAMPLES,
    }
}

fn put(e: &Engine, key: &str, ttl_at: Option<u64>, now: u64) {
    e.txn(0, &[key], now)
        .set(key.as_bytes(), &[b"0123456789"], 0, ttl_at);
}

fn present(e: &Engine, key: &str, now: u64) -> bool {
    e.txn(0, &[key], now).exists(key.as_bytes())
}

#[test]
fn without_a_limit_make_room_never_evicts_or_refuses() {
    let e = one_shard();
    for i in 0..100 {
        put(&e, &format!("k{i}"), None, 1000);
    }
    assert_eq!(e.make_room(1000), Ok(()));
    e.set_memory_limit(limit(0, EvictionPolicy::AllKeysLru));
    assert_eq!(e.make_room(1000), Ok(()));
    assert_eq!(e.dbsize(0), 100);
    assert_eq!(e.stats().evicted_keys.load(Ordering::Relaxed), 0);
}

#[test]
fn noeviction_refuses_while_over_the_limit_and_accepts_again_once_under() {
    let e = one_shard();
    // the table already has room for "one-more", so only its entry counts
    for i in 0..10 {
        put(&e, &format!("k{i}"), None, 1000);
    }
    put(&e, "one-more", None, 1000);
    assert!(e.txn(0, &["one-more"], 1000).remove(b"one-more"));
    let used = e.used_memory();
    e.set_memory_limit(limit(used, EvictionPolicy::NoEviction));
    assert_eq!(e.make_room(1000), Ok(()), "at the limit is not over it");
    put(&e, "one-more", None, 1000);
    assert_eq!(e.make_room(1000), Err(OutOfMemory));
    assert_eq!(e.dbsize(0), 11, "noeviction removes nothing");
    assert!(e.txn(0, &["one-more"], 1000).remove(b"one-more"));
    assert_eq!(e.make_room(1000), Ok(()));
}

#[test]
fn allkeys_lru_evicts_the_least_recently_used_keys_first() {
    let e = one_shard();
    let t0 = future_second(10);
    for i in 0..200 {
        put(&e, &format!("k{i}"), None, t0);
    }
    let full = e.used_memory();
    // the even keys are read 100 s later: the odd ones are idle for longer
    let later = t0 + 100_000;
    for i in (0..200).step_by(2) {
        assert!(e
            .txn(0, &[format!("k{i}")], later)
            .get(format!("k{i}").as_bytes())
            .is_some());
    }
    e.set_memory_limit(limit(full * 3 / 4, EvictionPolicy::AllKeysLru));
    assert_eq!(e.make_room(later), Ok(()));
    assert!(e.used_memory() <= full * 3 / 4);
    let evicted = e.stats().evicted_keys.load(Ordering::Relaxed) as usize;
    assert!(evicted > 0 && evicted < 100, "{evicted}");
    assert_eq!(e.dbsize(0), 200 - evicted);
    for i in (0..200).step_by(2) {
        assert!(
            present(&e, &format!("k{i}"), later),
            "recently used k{i} was evicted"
        );
    }
}

#[test]
fn over_many_shards_lru_keeps_nearly_every_recently_used_key() {
    let e = Engine::new(EngineConfig {
        databases: 4,
        shards: 16,
    });
    let t0 = future_second(10);
    for i in 0..4000 {
        put(&e, &format!("k{i}"), None, t0);
    }
    let later = t0 + 50_000;
    for i in 0..1000 {
        e.txn(0, &[format!("k{i}")], later)
            .get(format!("k{i}").as_bytes());
    }
    // room for 5/8 of the entries: 1500 of the 3000 idle keys must go
    e.set_memory_limit(MemoryLimit {
        max_bytes: e.used_memory() - e.memory().entries * 3 / 8,
        policy: EvictionPolicy::AllKeysLru,
        samples: DEFAULT_SAMPLES,
    });
    while e.used_memory() > e.memory_limit().max_bytes {
        e.make_room(later).unwrap();
    }
    let kept = (0..1000)
        .filter(|i| present(&e, &format!("k{i}"), later))
        .count();
    // with 5 samples a hot key goes only when all 5 drawn are hot: 1 in
    // 4^5 at first, 1 in 243 at the end (hot keys a third of the table),
    // if the shards ran out of idle keys evenly. They do not: samples come
    // from one shard at a time, and a shard left with few idle keys gives
    // up hot ones. Over 80 runs (a random hash seed each) the median kept
    // 975 and the worst 877; random eviction would keep about 625, so 850
    // still tells LRU from no LRU without failing on an unlucky seed.
    assert!(kept >= 850, "{kept} of 1000 recently used keys kept");
    let left = e.dbsize(0);
    assert!((2450..=2550).contains(&left), "{left} keys left");
}

#[test]
fn volatile_policies_evict_only_keys_with_a_ttl_and_refuse_when_none_is_left() {
    for policy in [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
    ] {
        let e = one_shard();
        let now = 1000;
        for i in 0..50 {
            put(&e, &format!("persistent{i}"), None, now);
            put(&e, &format!("volatile{i}"), Some(1_000_000 + i), now);
        }
        e.set_memory_limit(limit(e.used_memory() / 4, policy));
        assert_eq!(e.make_room(now), Err(OutOfMemory), "{policy}");
        for i in 0..50 {
            assert!(present(&e, &format!("persistent{i}"), now), "{policy}");
            assert!(!present(&e, &format!("volatile{i}"), now), "{policy}");
        }
        assert_eq!(e.stats().evicted_keys.load(Ordering::Relaxed), 50);
    }
}

#[test]
fn volatile_ttl_evicts_the_keys_that_expire_soonest() {
    let e = one_shard();
    let now = 1000;
    for i in 0..100u64 {
        put(&e, &format!("k{i}"), Some(1_000_000 + i * 1000), now);
    }
    e.set_memory_limit(limit(e.used_memory() * 3 / 4, EvictionPolicy::VolatileTtl));
    e.make_room(now).unwrap();
    let evicted = e.stats().evicted_keys.load(Ordering::Relaxed) as usize;
    assert!(evicted > 0);
    for i in 0..100 {
        assert_eq!(present(&e, &format!("k{i}"), now), i >= evicted, "k{i}");
    }
}

#[test]
fn allkeys_random_stays_under_the_limit() {
    let e = one_shard();
    for i in 0..300 {
        put(&e, &format!("k{i}"), None, 1000);
    }
    // room for a third of the entries
    let max = e.used_memory() - e.memory().entries * 2 / 3;
    e.set_memory_limit(limit(max, EvictionPolicy::AllKeysRandom));
    for i in 300..600 {
        e.make_room(1000).unwrap();
        put(&e, &format!("k{i}"), None, 1000);
    }
    e.make_room(1000).unwrap();
    assert!(e.used_memory() <= max);
    assert!(e.dbsize(0) > 0);
}

#[test]
fn an_expired_entry_goes_first_and_counts_as_expired_not_evicted() {
    let e = one_shard();
    let t0 = future_second(10);
    put(&e, "expires", Some(t0 + 500), t0);
    for i in 0..20 {
        put(&e, &format!("k{i}"), None, t0);
    }
    let later = t0 + 1000;
    for i in 0..20 {
        e.txn(0, &[format!("k{i}")], later)
            .get(format!("k{i}").as_bytes());
    }
    e.set_memory_limit(limit(e.used_memory() - 1, EvictionPolicy::AllKeysLru));
    e.make_room(later).unwrap();
    assert_eq!(e.dbsize(0), 20);
    assert_eq!(e.stats().expired_keys.load(Ordering::Relaxed), 1);
    assert_eq!(e.stats().evicted_keys.load(Ordering::Relaxed), 0);
}

#[test]
fn evictions_are_recorded_as_deletes_so_a_replay_forgets_them() {
    let e = engine();
    let r = Arc::new(Recorder::default());
    e.set_sink(r.clone());
    for db in 0..2 {
        for i in 0..100 {
            e.txn(db, &[format!("k{i}")], 1000).set(
                format!("k{i}").as_bytes(),
                &[b"value"],
                0,
                None,
            );
        }
    }
    e.set_memory_limit(limit(e.used_memory() / 2, EvictionPolicy::AllKeysRandom));
    e.make_room(1000).unwrap();
    let evicted = e.stats().evicted_keys.load(Ordering::Relaxed) as usize;
    let dels =
        r.0.lock()
            .iter()
            .filter(|o| matches!(o, Owned::Del(..)))
            .count();
    assert_eq!(dels, evicted);
    let rebuilt = engine();
    replay_into(&rebuilt, &r.0.lock());
    assert_eq!(dump(&rebuilt, 1000), dump(&e, 1000));
}

#[test]
fn one_call_evicts_a_bounded_number_of_keys_and_later_calls_go_on() {
    let e = one_shard();
    let n = MAX_EVICTIONS_PER_CALL * 2 + 100;
    for i in 0..n {
        put(&e, &format!("k{i}"), None, 1000);
    }
    // tables keep their buckets: a limit just above them needs every entry gone
    e.set_memory_limit(limit(e.memory().tables + 1, EvictionPolicy::AllKeysLru));
    assert_eq!(
        e.make_room(1000),
        Ok(()),
        "a call that reached the bound lets its write through"
    );
    assert_eq!(e.dbsize(0), n - MAX_EVICTIONS_PER_CALL);
    assert_eq!(e.make_room(1000), Ok(()));
    assert_eq!(e.make_room(1000), Ok(()), "the last entries go");
    assert_eq!(e.dbsize(0), 0);
    assert_eq!(e.make_room(1000), Ok(()), "under the limit again");
    e.set_memory_limit(limit(1, EvictionPolicy::AllKeysLru));
    assert_eq!(
        e.make_room(1000),
        Err(OutOfMemory),
        "the empty tables alone are over"
    );
}

#[test]
fn policy_names_round_trip_and_lfu_is_not_one() {
    for p in EvictionPolicy::ALL {
        assert_eq!(EvictionPolicy::from_name(p.name()), Some(p));
        assert_eq!(EvictionPolicy::from_name(&p.name().to_uppercase()), Some(p));
    }
    assert_eq!(EvictionPolicy::from_name("allkeys-lfu"), None);
    assert_eq!(EvictionPolicy::default(), EvictionPolicy::NoEviction);
}

#[test]
fn version_changes_with_every_kind_of_change_and_not_with_reads() {
    let e = engine();
    let v = |k: &[u8], now| e.txn(0, &[k], now).version(k);
    let absent = v(b"k", 1000);
    assert_eq!(absent, v(b"other", 1000), "absent keys share one version");
    e.txn(0, &[b"k"], 1000).set(b"k", &[b"1"], 0, None);
    let set = v(b"k", 1000);
    assert_ne!(set, absent);
    e.txn(0, &[b"k"], 1000).get(b"k");
    assert_eq!(v(b"k", 1000), set, "a read is not a change");
    e.txn(0, &[b"k"], 1000).set(b"k", &[b"1"], 0, None);
    let same_value = v(b"k", 1000);
    assert_ne!(same_value, set, "the same value written again is a change");
    e.txn(0, &[b"k"], 1000).set_expiry(b"k", Some(5000));
    let ttl = v(b"k", 1000);
    assert_ne!(
        ttl, same_value,
        "a TTL keeps the CAS but changes the version"
    );
    e.txn(0, &[b"k"], 1000).set_expiry(b"k", None);
    assert_ne!(v(b"k", 1000), ttl, "so does clearing it");
    e.txn(0, &[b"k"], 1000)
        .rewrite(b"k", 2, |_, d| d.copy_from_slice(b"22"));
    let rewritten = v(b"k", 1000);
    e.txn(0, &[b"k"], 1000).set_expiry(b"k", Some(2000));
    assert_eq!(v(b"k", 3000), absent, "an expired key reads as absent");
    e.txn(0, &[b"k"], 1000).set(b"k", &[b"1"], 0, None);
    assert_ne!(v(b"k", 1000), rewritten);
    e.flush_all();
    assert_eq!(v(b"k", 1000), absent, "a flush removes it");
}

#[test]
fn an_exclusive_section_keeps_other_threads_out_and_lets_its_own_thread_in() {
    let e = Arc::new(engine());
    let section = e.exclusive();
    // this thread's own transactions (and nested ones) run inside it
    {
        let mut a = e.txn(0, &[b"a"], 1000);
        a.set(b"a", &[b"1"], 0, None);
        let mut b = e.txn(1, &[b"b", b"c"], 1000);
        b.set(b"b", &[b"1"], 0, None);
    }
    e.flush_db(1);
    // every walk and count works inside it too
    assert_eq!(e.dbsize(0), 1);
    let mut keys = Vec::new();
    e.for_each_key(0, 1000, |k| keys.push(k.to_vec()));
    assert_eq!(keys, [b"a".to_vec()]);
    assert_eq!(e.random_key(0, 1000), Some(b"a".to_vec()));
    assert_eq!(e.scan(0, 0, 10, 1000, |_, _| {}), 0);
    assert!(e.memory().entries > 0);
    e.expire_cycle(1000, 10);
    let other = {
        let e = e.clone();
        std::thread::spawn(move || {
            e.txn(0, &[b"a"], 1000).set(b"a", &[b"2"], 0, None);
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        e.txn(0, &[b"a"], 1000).get(b"a").unwrap().value,
        b"1",
        "the other thread waits"
    );
    drop(section);
    other.join().unwrap();
    assert_eq!(e.txn(0, &[b"a"], 1000).get(b"a").unwrap().value, b"2");
    // the thread locks shards itself again, and can open another section
    let t = e.txn(0, &[b"a"], 1000);
    drop(t);
    drop(e.exclusive());
    assert_eq!(e.db_memory(0).entries, e.memory().entries);
}
