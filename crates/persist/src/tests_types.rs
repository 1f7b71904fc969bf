//! Persistence of collections: item records through real files, reopen,
//! compaction (chunked) with and without concurrent writes, `check`, and
//! the byte layout of the record types older logs hold.

use super::*;
use magpie_engine::{now_ms, EngineConfig, Kind, Meta};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(EngineConfig {
        databases: 4,
        shards: 4,
    }))
}

fn open(dir: &Path) -> (Arc<Engine>, Arc<Persistence>) {
    let e = engine();
    let opts = Options {
        fsync: FsyncPolicy::No,
        ..Options::new(dir)
    };
    let p = Persistence::open(e.clone(), opts).unwrap();
    (e, p)
}

/// (db, key) -> (kind, meta, string value, items) of every live key.
type Dump = BTreeMap<(usize, Vec<u8>), (Kind, Meta, Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>)>;

fn dump(e: &Engine) -> Dump {
    let now = now_ms();
    let mut out = BTreeMap::new();
    for db in 0..e.databases() {
        let mut keys = Vec::new();
        for s in 0..e.shards() {
            e.visit_shard(db, s, |k, v| {
                if !matches!(v.meta.expire_at, Some(t) if t <= now) {
                    keys.push((k.to_vec(), v.kind, v.meta, v.value.to_vec()));
                }
            });
        }
        for (k, kind, meta, value) in keys {
            let mut items = BTreeMap::new();
            let mut at = 0;
            loop {
                at = e.collection_records(db, &k, at, 100, |m| {
                    if let Mutation::AddItem { item, value, .. } = m {
                        items.insert(item.to_vec(), value.to_vec());
                    }
                });
                if at == 0 {
                    break;
                }
            }
            out.insert((db, k), (kind, meta, value, items));
        }
    }
    out
}

fn reopen_dump(dir: &Path) -> Dump {
    let (e, p) = open(dir);
    let d = dump(&e);
    p.shutdown();
    d
}

fn fill(e: &Engine) {
    let now = now_ms();
    let fields: Vec<Vec<u8>> = (0..2000)
        .map(|i| format!("field{i}").into_bytes())
        .collect();
    let pairs: Vec<(&[u8], &[u8])> = fields.iter().map(|f| (&f[..], &b"value"[..])).collect();
    let mut t = e.txn(0, &[b"big"], now);
    t.hash_put(b"big", &pairs).unwrap();
    t.hash_remove(b"big", &[b"field7", b"nope"]).unwrap();
    drop(t);
    let mut t = e.txn(1, &[&b"small"[..], b"ints", b"names", b"gone", b"str"], now);
    t.hash_put(b"small", &[(b"a", b"1"), (b"b", b"")]).unwrap();
    t.set_expiry(b"small", Some(now + 3_600_000));
    t.set_add(b"ints", &[b"3", b"-1", b"100"]).unwrap();
    let many: Vec<Vec<u8>> = (0..700).map(|i| format!("name{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = many.iter().map(|m| &m[..]).collect();
    t.set_add(b"names", &refs).unwrap();
    t.set_remove(b"names", &[b"name0"]).unwrap();
    t.set_add(b"gone", &[b"x"]).unwrap();
    t.set_remove(b"gone", &[b"x"]).unwrap();
    t.set(b"str", &[b"plain"], 9, None);
}

#[test]
fn collections_survive_reopen_and_compaction_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    fill(&e);
    let want = dump(&e);
    assert_eq!(want.len(), 5, "{:?}", want.keys().collect::<Vec<_>>());
    assert_eq!(want[&(0, b"big".to_vec())].3.len(), 1999);
    p.shutdown();
    assert_eq!(reopen_dump(dir.path()), want);
    let r = check(dir.path()).unwrap();
    // 2000 + 2 + 3 + 700 + 1 added, 1 + 1 + 1 removed; a Del before each
    // new collection's first item
    assert_eq!((r.items, r.sets, r.dels), (2706 + 3, 1, 5), "{r}");
    assert!(r.to_string().contains("2709 item"), "{r}");
    // compaction writes each item once, chunked, and reopening gives the same
    let (e, p) = open(dir.path());
    let c = p.compact().unwrap();
    assert_eq!(c.entries, 1999 + 2 + 3 + 699 + 1);
    let mut t = e.txn(0, &[b"big"], now_ms());
    t.hash_put(b"big", &[(b"after", b"compaction")]).unwrap();
    drop(t);
    let want = dump(&e);
    p.shutdown();
    assert_eq!(reopen_dump(dir.path()), want);
    let r = check(dir.path()).unwrap();
    assert_eq!(
        (
            r.walk.snapshot_records,
            r.walk.snapshot_items,
            r.items,
            r.sets
        ),
        (2704, 2703, 1, 0),
        "{r}"
    );
    // the encodings come back as they were
    let (e, p) = open(dir.path());
    let mut t = e.txn(1, &[&b"small"[..], b"ints", b"names"], now_ms());
    assert_eq!(t.collection_encoding(b"small"), Some("listpack"));
    assert_eq!(t.collection_encoding(b"ints"), Some("intset"));
    assert_eq!(t.collection_encoding(b"names"), Some("hashtable"));
    drop(t);
    p.shutdown();
}

#[test]
fn a_one_field_write_to_a_big_hash_logs_one_small_record() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    fill(&e);
    p.wait_durable_blocking();
    let before = p.log_bytes();
    let mut t = e.txn(0, &[b"big"], now_ms());
    t.hash_put(b"big", &[(b"field1", b"changed")]).unwrap();
    t.hash_remove(b"big", &[b"field2"]).unwrap();
    drop(t);
    p.wait_durable_blocking();
    let grew = p.log_bytes() - before;
    // two records of header + 30 + key + field (+ value): not the hash
    assert!(grew <= 2 * (8 + 30 + 3 + 6) + 7, "{grew} bytes");
    p.shutdown();
}

/// Compactions run back to back while threads add to and remove from big
/// and small collections, expire and delete them: reopening gives exactly
/// the state the engine ended with.
#[test]
fn compaction_racing_with_collection_writes_keeps_every_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut x = t * 7919 + 1;
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) || ops < 3000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("c{}", (x >> 8) % 6);
                    let item = format!("{}", (x >> 16) % 1500);
                    let mut txn = e.txn(0, &[&key], now_ms());
                    let k = key.as_bytes();
                    let hash = (x >> 8) % 2 == 0;
                    match (x >> 30) % 10 {
                        0 => {
                            txn.remove(k);
                        }
                        1 => {
                            txn.set_expiry(k, Some(now_ms() + 3_600_000));
                        }
                        2..=4 if hash => {
                            let _ = txn.hash_remove(k, &[item.as_bytes()]);
                        }
                        2..=4 => {
                            let _ = txn.set_remove(k, &[item.as_bytes()]);
                        }
                        _ if hash => {
                            let v = format!("t{t}:{ops}");
                            let _ = txn.hash_put(k, &[(item.as_bytes(), v.as_bytes())]);
                        }
                        _ => {
                            let _ = txn.set_add(k, &[item.as_bytes()]);
                        }
                    }
                    ops += 1;
                }
                ops
            })
        })
        .collect();
    for _ in 0..15 {
        p.compact().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let want = dump(&e);
    p.shutdown();
    assert!(!want.is_empty());
    let got = reopen_dump(dir.path());
    assert!(
        got == want,
        "after {ops} operations the reopened state differs"
    );
}

#[test]
fn the_records_older_logs_hold_keep_their_bytes() {
    // layouts written before collections existed: a change here would make
    // existing data directories unreadable
    let mut buf = Vec::new();
    record::encode(
        &Mutation::Set {
            db: 1,
            key: b"k",
            value: b"v",
            flags: 2,
            expire_at: Some(3),
            cas: 4,
        },
        &mut buf,
    );
    record::encode(&Mutation::Del { db: 1, key: b"k" }, &mut buf);
    record::encode(
        &Mutation::Expire {
            db: 1,
            key: b"k",
            at: None,
        },
        &mut buf,
    );
    record::encode(&Mutation::FlushDb { db: 1 }, &mut buf);
    record::encode(&Mutation::FlushAll, &mut buf);
    let payloads: Vec<u8> = [
        &[
            1u8, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
        ][..],
        b"kv",
        &[2, 1, 0, 0, 0],
        b"k",
        &[3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        b"k",
        &[4, 1, 0, 0, 0],
        &[5],
    ]
    .concat();
    // strip the record headers (length + CRC) and compare the payloads
    let mut at = 0;
    let mut got = Vec::new();
    while at < buf.len() {
        let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        got.extend_from_slice(&buf[at + 8..at + 8 + len]);
        at += 8 + len;
    }
    assert_eq!(got, payloads);
}
