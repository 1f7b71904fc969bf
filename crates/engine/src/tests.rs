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
        }
    }
}
