//! Persistence tests: round trips through real files, torn tails, corruption
//! and repair, crashes at each step of a compaction's switch, disk errors,
//! and a property test against the live engine.

use super::*;
use files::{FaultyFs, Manifest};
use magpie_engine::{now_ms, EngineConfig, Meta};
use proptest::prelude::*;
use std::fs;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use writer::PREALLOC_LOW;

fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(EngineConfig {
        databases: 4,
        shards: 4,
    }))
}

fn opts(dir: &Path) -> Options {
    Options {
        fsync: FsyncPolicy::No,
        ..Options::new(dir)
    }
}

fn open(dir: &Path) -> (Arc<Engine>, Arc<Persistence>) {
    let e = engine();
    let p = Persistence::open(e.clone(), opts(dir)).unwrap();
    (e, p)
}

/// Opens `dir` with `appendfsync always`.
fn open_always(dir: &Path) -> (Arc<Engine>, Arc<Persistence>) {
    let e = engine();
    let opts = Options {
        fsync: FsyncPolicy::Always,
        ..Options::new(dir)
    };
    let p = Persistence::open(e.clone(), opts).unwrap();
    (e, p)
}

/// Opens `dir` under `fsync` on a file system whose failures the test
/// switches on and off through `faulty`.
fn open_faulty(
    dir: &Path,
    fsync: FsyncPolicy,
    faulty: &FaultyFs,
) -> (Arc<Engine>, Arc<Persistence>) {
    let e = engine();
    let opts = Options {
        fsync,
        fs: Arc::new(faulty.clone()),
        ..Options::new(dir)
    };
    let p = Persistence::open(e.clone(), opts).unwrap();
    (e, p)
}

type Dump = Vec<(usize, Vec<u8>, Vec<u8>, Meta)>;

/// Every live entry, sorted.
fn dump(e: &Engine) -> Dump {
    let now = now_ms();
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

fn set(e: &Engine, db: usize, k: &str, v: &str) {
    e.txn(db, &[k], now_ms())
        .set(k.as_bytes(), &[v.as_bytes()], 0, None);
}

fn reopen_dump(dir: &Path) -> Dump {
    let (e, p) = open(dir);
    let d = dump(&e);
    p.shutdown();
    d
}

fn last_segment(dir: &Path) -> PathBuf {
    let l = files::list(dir).unwrap();
    files::segment_path(dir, *l.segments.last().unwrap())
}

#[test]
fn writes_survive_reopen_with_metadata_and_cas() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    set(&e, 0, "a", "1");
    set(&e, 3, "b", "2");
    e.txn(1, &[b"c"], now_ms())
        .set(b"c", &[b"x", b"y"], 77, Some(now_ms() + 3_600_000));
    set(&e, 0, "gone", "x");
    assert!(e.txn(0, &[b"gone"], now_ms()).remove(b"gone"));
    e.txn(0, &[b"a"], now_ms()).set_flags(b"a", 5);
    e.flush_db(2);
    let before = dump(&e);
    p.shutdown();
    assert_eq!(before.len(), 3);
    let (e2, p2) = open(dir.path());
    assert_eq!(dump(&e2), before);
    assert_eq!(p2.recovery().log_records, 7);
    // CAS keeps increasing across restarts
    let max = before.iter().map(|x| x.3.cas).max().unwrap();
    assert!(e2.txn(0, &[b"n"], now_ms()).set(b"n", &[b"v"], 0, None) > max);
    p2.shutdown();
}

/// A CAS chosen by the caller (memcached's meta `E`) is logged as given,
/// restored on reopen from the log and from a snapshot, and the reopened
/// counter resumes above it even when it was the largest CAS ever issued.
#[test]
fn a_chosen_cas_survives_reopen_and_compaction_and_the_counter_resumes_above_it() {
    let dir = tempfile::tempdir().unwrap();
    let chosen = 1u64 << 50;
    let (e, p) = open(dir.path());
    set(&e, 0, "auto", "1");
    let mut t = e.txn(0, &[b"e"], now_ms());
    t.use_cas(chosen).unwrap();
    assert_eq!(t.set(b"e", &[b"v"], 3, None), chosen);
    drop(t);
    // and one chosen below the counter: kept as given too
    let mut t = e.txn(0, &[b"low"], now_ms());
    t.use_cas(1).unwrap();
    t.set(b"low", &[b"v"], 0, None);
    drop(t);
    let before = dump(&e);
    p.shutdown();
    let cas_of = |d: &Dump, k: &[u8]| d.iter().find(|x| x.1 == k).unwrap().3.cas;
    let (e2, p2) = open(dir.path());
    let after = dump(&e2);
    assert_eq!(after, before);
    assert_eq!((cas_of(&after, b"e"), cas_of(&after, b"low")), (chosen, 1));
    assert_eq!(
        e2.txn(0, &[b"n"], now_ms()).set(b"n", &[b"v"], 0, None),
        chosen + 1
    );
    // through a snapshot: the same, and the counter still above
    p2.compact().unwrap();
    let want = dump(&e2);
    p2.shutdown();
    let (e3, p3) = open(dir.path());
    assert_eq!(dump(&e3), want);
    assert_eq!(cas_of(&dump(&e3), b"e"), chosen);
    assert_eq!(
        e3.txn(0, &[b"m"], now_ms()).set(b"m", &[b"v"], 0, None),
        chosen + 2
    );
    p3.shutdown();
}

#[test]
fn second_open_of_a_locked_dir_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, p) = open(dir.path());
    let err = Persistence::open(engine(), opts(dir.path())).err().unwrap();
    assert!(
        err.to_string().contains("in use by another magpie process"),
        "{err}"
    );
    p.shutdown();
}

#[test]
fn expiry_is_absolute_across_restart_and_persist_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    let soon = now_ms() + 200;
    e.txn(0, &[b"dies"], now_ms())
        .set(b"dies", &[b"v"], 0, Some(soon));
    e.txn(0, &[b"kept"], now_ms())
        .set(b"kept", &[b"v"], 0, Some(soon));
    assert!(e.txn(0, &[b"kept"], now_ms()).set_expiry(b"kept", None));
    e.txn(0, &[b"later"], now_ms())
        .set(b"later", &[b"v"], 0, Some(soon + 3_600_000));
    p.shutdown();
    std::thread::sleep(Duration::from_millis(250));
    let (e2, p2) = open(dir.path());
    let keys: Vec<Vec<u8>> = dump(&e2).into_iter().map(|x| x.1).collect();
    assert_eq!(keys, vec![b"kept".to_vec(), b"later".to_vec()]);
    assert_eq!(p2.recovery().expired, 1);
    assert_eq!(e2.db_info(0).keys, 2, "expired key was not kept in memory");
    p2.shutdown();
}

#[test]
fn torn_tail_is_truncated_and_logging_continues() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    set(&e, 0, "a", "1");
    set(&e, 0, "b", "2");
    p.shutdown();
    let seg = last_segment(dir.path());
    let good = fs::metadata(&seg).unwrap().len();
    // a record cut short: the header says 100 bytes, 10 follow
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(&100u32.to_le_bytes());
    bytes.extend_from_slice(&[0xab; 14]);
    fs::write(&seg, &bytes).unwrap();
    let report = check(dir.path()).unwrap();
    assert!(report.to_string().contains("torn tail"), "{report}");
    let (e2, p2) = open(dir.path());
    assert_eq!(dump(&e2).len(), 2);
    assert!(
        p2.recovery().notes[0].contains("torn tail at offset"),
        "{:?}",
        p2.recovery().notes
    );
    assert_eq!(fs::metadata(&seg).unwrap().len(), good);
    set(&e2, 0, "c", "3");
    p2.shutdown();
    assert_eq!(reopen_dump(dir.path()).len(), 3);
}

#[test]
fn last_record_with_bad_crc_and_zero_filled_tail_are_torn() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    set(&e, 0, "a", "1");
    set(&e, 0, "b", "2");
    p.shutdown();
    let seg = last_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(reopen_dump(dir.path()).len(), 1);
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0; 4096]);
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(reopen_dump(dir.path()).len(), 1);
}

#[test]
fn flipped_bit_mid_log_refuses_to_start_unless_repair() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    for i in 0..10 {
        set(&e, 0, &format!("k{i}"), "value");
    }
    p.shutdown();
    let seg = last_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    let rec = bytes.len() / 10;
    bytes[rec * 4 + 12] ^= 0x10; // inside the 5th record's payload
    fs::write(&seg, &bytes).unwrap();
    let err = Persistence::open(engine(), opts(dir.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&seg.display().to_string()), "{err}");
    assert!(err.contains(&format!("offset {}", rec * 4)), "{err}");
    assert!(err.contains("--repair"), "{err}");
    let err = check(dir.path()).err().unwrap().to_string();
    assert!(err.contains("corrupt record"), "{err}");
    // nothing was changed by the refusal
    assert_eq!(fs::read(&seg).unwrap(), bytes);
    let e2 = engine();
    let p2 = Persistence::open(
        e2.clone(),
        Options {
            repair: true,
            ..opts(dir.path())
        },
    )
    .unwrap();
    assert_eq!(dump(&e2).len(), 4);
    p2.shutdown();
    assert_eq!(fs::metadata(&seg).unwrap().len(), rec as u64 * 4);
    assert_eq!(reopen_dump(dir.path()).len(), 4);
}

#[test]
fn records_for_databases_beyond_the_configuration_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    set(&e, 3, "k", "v");
    p.shutdown();
    let small = Arc::new(Engine::new(EngineConfig {
        databases: 2,
        shards: 4,
    }));
    let err = Persistence::open(small, opts(dir.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("database 3 but only 2"), "{err}");
}

#[test]
fn compaction_keeps_state_and_frees_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    for round in 0..5 {
        for i in 0..50 {
            set(&e, 0, &format!("k{i}"), &format!("v{round}"));
        }
    }
    let before_bytes = p.log_bytes();
    let c = p.compact().unwrap();
    assert_eq!(c.entries, 50);
    assert!(c.freed >= before_bytes, "{c:?} {before_bytes}");
    assert_eq!(p.log_bytes(), 0);
    set(&e, 1, "after", "x");
    assert!(e.txn(0, &[b"k0"], now_ms()).remove(b"k0"));
    let want = dump(&e);
    p.shutdown();
    let l = files::list(dir.path()).unwrap();
    assert_eq!(
        (l.snapshots, l.segments),
        (vec![c.snapshot], vec![c.snapshot])
    );
    assert_eq!(reopen_dump(dir.path()), want);
    let r = check(dir.path()).unwrap();
    assert_eq!((r.walk.snapshot_records, r.sets, r.dels), (50, 1, 1), "{r}");
}

#[test]
fn a_compaction_retried_after_a_failure_snapshots_over_the_segment_it_switched_to() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    for i in 0..50 {
        set(&e, 0, &format!("k{i}"), "v1");
    }
    let first = *files::list(dir.path()).unwrap().segments.last().unwrap();
    // the snapshot cannot be created: a directory sits where it goes (as a
    // full disk would fail it), for this attempt and for one more switch
    for n in [first + 1, first + 2] {
        fs::create_dir(dir.path().join(format!("snap.{n:06}.tmp"))).unwrap();
    }
    assert!(p.compact().is_err());
    set(&e, 0, "during", "x");
    assert!(p.compact().is_err(), "the retry fails the same way");
    // the two attempts switched the log once
    let l = files::list(dir.path()).unwrap();
    assert_eq!(l.segments, vec![first, first + 1]);
    for n in [first + 1, first + 2] {
        fs::remove_dir(dir.path().join(format!("snap.{n:06}.tmp"))).unwrap();
    }
    set(&e, 0, "after", "y");
    let c = p.compact().unwrap();
    assert_eq!(c.snapshot, first + 1, "{c:?}");
    let want = dump(&e);
    p.shutdown();
    let l = files::list(dir.path()).unwrap();
    assert_eq!(
        (l.snapshots, l.segments),
        (vec![first + 1], vec![first + 1])
    );
    assert_eq!(reopen_dump(dir.path()), want);
}

#[test]
fn automatic_compaction_triggers_on_size() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine();
    let p = Persistence::open(
        e.clone(),
        Options {
            compact_min_size: 4096,
            compact_ratio: 1.0,
            ..opts(dir.path())
        },
    )
    .unwrap();
    for i in 0..400 {
        set(&e, 0, &format!("k{}", i % 10), "0123456789");
    }
    let mut compacted = false;
    for _ in 0..200 {
        if Manifest::read(dir.path())
            .unwrap()
            .unwrap()
            .snapshot
            .is_some()
        {
            compacted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(compacted, "no compaction after {} log bytes", p.log_bytes());
    let want = dump(&e);
    p.shutdown();
    assert_eq!(reopen_dump(dir.path()), want);
}

/// Compactions run back to back while four threads set, delete and set
/// with TTLs on a small keyspace in several databases: reopening gives
/// exactly the state the engine ended with.
#[test]
fn compaction_racing_with_writes_and_deletes_keeps_every_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut x = t * 7919 + 1;
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) || ops < 2000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (db, key) = ((x % 3) as usize, format!("k{}", (x >> 8) % 64));
                    let mut txn = e.txn(db, &[&key], now_ms());
                    match (x >> 20) % 4 {
                        0 => {
                            txn.remove(key.as_bytes());
                        }
                        1 => {
                            txn.set(key.as_bytes(), &[b"ttl"], 0, Some(now_ms() + 3_600_000));
                        }
                        _ => {
                            let v = format!("t{t}:{ops}");
                            txn.set(key.as_bytes(), &[v.as_bytes()], 0, None);
                        }
                    }
                    ops += 1;
                }
                ops
            })
        })
        .collect();
    let mut compactions = 0;
    while compactions < 20 {
        p.compact().unwrap();
        compactions += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(ops >= 8000, "{ops}");
    let want = dump(&e);
    p.shutdown();
    assert!(!want.is_empty());
    let got = reopen_dump(dir.path());
    let lost: Vec<_> = want.iter().filter(|w| !got.contains(w)).take(3).collect();
    let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).take(3).collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "after {ops} operations: {} entries live, {} reopened; lost {lost:?}, extra {extra:?}",
        want.len(),
        got.len()
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_crash_at_any_step_of_the_manifest_switch_recovers_the_same_state() {
    let root = tempfile::tempdir().unwrap();
    let before = root.path().join("before");
    let live = root.path().join("live");
    // K1 in log.000001, then a compaction and K2 in log.000002
    let (e, p) = open(&live);
    for i in 0..20 {
        set(&e, 0, &format!("k{i}"), "one");
    }
    e.txn(0, &[b"t"], now_ms())
        .set(b"t", &[b"v"], 0, Some(now_ms() + 3_600_000));
    p.shutdown();
    copy_dir(&live, &before);
    let (e, p) = open(&live);
    let c = p.compact().unwrap();
    for i in 10..30 {
        set(&e, 0, &format!("k{i}"), "two");
    }
    assert!(e.txn(0, &[b"t"], now_ms()).set_expiry(b"t", None));
    assert!(e.txn(0, &[b"k0"], now_ms()).remove(b"k0"));
    let want = dump(&e);
    p.shutdown();
    let after = live;
    let n = c.snapshot;
    let snap = fs::read(files::snapshot_path(&after, n)).unwrap();
    let new_log = fs::read(files::segment_path(&after, n)).unwrap();
    let new_manifest = fs::read(after.join("MANIFEST")).unwrap();

    let step = |name: &str, build: &dyn Fn(&Path)| {
        let d = root.path().join(name);
        build(&d);
        assert_eq!(reopen_dump(&d), want, "crash state {name}");
        let l = files::list(&d).unwrap();
        assert!(l.temps.is_empty(), "{name}: temporary files left");
        assert!(
            l.snapshots.len() <= 1 && !l.segments.is_empty(),
            "{name}: {l:?}"
        );
    };
    // 1. rotated, snapshot half written
    step("s1", &|d| {
        copy_dir(&before, d);
        fs::write(files::segment_path(d, n), &new_log).unwrap();
        fs::write(d.join(format!("snap.{n:06}.tmp")), &snap[..snap.len() / 2]).unwrap();
    });
    // 2. snapshot renamed into place, MANIFEST not yet switched
    step("s2", &|d| {
        copy_dir(&before, d);
        fs::write(files::segment_path(d, n), &new_log).unwrap();
        fs::write(files::snapshot_path(d, n), &snap).unwrap();
    });
    // 3. new MANIFEST written to its temporary name, not renamed
    step("s3", &|d| {
        copy_dir(&before, d);
        fs::write(files::segment_path(d, n), &new_log).unwrap();
        fs::write(files::snapshot_path(d, n), &snap).unwrap();
        fs::write(d.join("MANIFEST.tmp"), &new_manifest).unwrap();
    });
    // 4. MANIFEST switched, old files not yet deleted
    step("s4", &|d| {
        copy_dir(&after, d);
        fs::copy(files::segment_path(&before, 1), files::segment_path(d, 1)).unwrap();
    });
    // 5. done
    step("s5", &|d| copy_dir(&after, d));
}

#[test]
fn disk_errors_refuse_then_resume_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = FaultyFs::default();
    let fail = &faulty.fail;
    let (e, p) = open_faulty(dir.path(), FsyncPolicy::Always, &faulty);
    set(&e, 0, "before", "1");
    p.wait_durable_blocking();
    assert!(p.is_ok());
    fail.store(true, Ordering::SeqCst);
    set(&e, 0, "during", "2");
    for _ in 0..200 {
        if !p.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!p.is_ok());
    assert_eq!(p.last_error(), "No space left on device");
    assert!(
        p.durable_seq() < p.assigned_seq(),
        "a failed write must not count as durable"
    );
    fail.store(false, Ordering::SeqCst);
    p.wait_durable_blocking();
    assert!(p.is_ok());
    p.shutdown();
    let keys: Vec<Vec<u8>> = reopen_dump(dir.path()).into_iter().map(|x| x.1).collect();
    assert_eq!(keys, vec![b"before".to_vec(), b"during".to_vec()]);
}

#[test]
fn always_policy_makes_each_write_durable_before_wait_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open_always(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for i in 0..20 {
        let mark = p.mark();
        set(&e, 0, &format!("k{i}"), "v");
        rt.block_on(p.wait_durable(mark)).unwrap();
        assert!(p.durable_seq() >= p.assigned_seq());
        // durable means on disk: the file already holds the record
        assert!(fs::metadata(last_segment(dir.path())).unwrap().len() > 0);
    }
    p.shutdown();
}

#[test]
fn under_everysec_and_no_a_reply_waits_until_its_records_are_in_the_file() {
    for policy in [FsyncPolicy::EverySec, FsyncPolicy::No] {
        let dir = tempfile::tempdir().unwrap();
        let e = engine();
        let p = Persistence::open(
            e.clone(),
            Options {
                fsync: policy,
                ..Options::new(dir.path())
            },
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let len = || fs::metadata(last_segment(dir.path())).unwrap().len();
        for i in 0..20 {
            let mark = p.mark();
            let before = len();
            set(&e, 0, &format!("k{i}"), "v");
            rt.block_on(p.wait_durable(mark)).unwrap();
            assert!(p.durable_seq() >= p.assigned_seq(), "{policy}");
            // a crash of the process after the reply loses nothing: the
            // record is in the file (the page cache), fsynced or not
            assert!(len() > before, "{policy}: write {i} is not in the file");
        }
        if policy == FsyncPolicy::No {
            assert_eq!(p.fsyncs(), 0, "`no` never fsyncs while running");
        }
        // a record no reply waits for is written by the log thread
        let before = len();
        set(&e, 0, "leftover", "v");
        let t = std::time::Instant::now();
        while len() == before {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{policy}: never written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        p.shutdown();
        assert_eq!(reopen_dump(dir.path()).len(), 21, "{policy}");
    }
}

#[test]
fn while_the_log_fails_a_batch_that_wrote_is_not_acknowledged_and_one_that_only_read_is() {
    for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
        let dir = tempfile::tempdir().unwrap();
        let faulty = FaultyFs::default();
        let fail = &faulty.fail;
        let (e, p) = open_faulty(dir.path(), policy, &faulty);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        set(&e, 0, "before", "1");
        p.wait_durable_blocking();
        fail.store(true, Ordering::SeqCst);
        let mark = p.mark();
        set(&e, 0, "during", "2");
        let writer = rt.spawn({
            let p = p.clone();
            async move { p.wait_durable(mark).await }
        });
        let t = std::time::Instant::now();
        while p.is_ok() {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{policy}: no failure seen"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // the write is neither acknowledged nor left waiting for a disk
        // that may never come back
        let wrote = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), writer).await })
            .expect("{policy}: a write waited for the failing log")
            .unwrap();
        assert_eq!(
            wrote,
            Err(NotDurable("No space left on device".into())),
            "{policy}"
        );
        // a batch of reads: no record accepted since its mark
        let read_mark = p.mark();
        let read = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), p.wait_durable(read_mark)).await
        });
        assert_eq!(
            read,
            Ok(Ok(())),
            "{policy}: a read waited for the failing log"
        );
        // the record stays queued: once a retry succeeds it is durable
        fail.store(false, Ordering::SeqCst);
        let t = std::time::Instant::now();
        while !p.is_ok() || p.durable_seq() < p.assigned_seq() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{policy}: no recovery"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        p.shutdown();
        let keys: Vec<Vec<u8>> = reopen_dump(dir.path()).into_iter().map(|x| x.1).collect();
        assert_eq!(
            keys,
            vec![b"before".to_vec(), b"during".to_vec()],
            "{policy}"
        );
    }
}

#[test]
fn under_everysec_a_failing_disk_never_takes_acknowledged_records_out_of_the_file() {
    // under everysec a reply acknowledges a write once its record is in the
    // file, not yet fsynced: a kill -9 while the disk fails must still find
    // it there, whether the failing call is the fsync or the write
    let dir = tempfile::tempdir().unwrap();
    let faulty = FaultyFs::default();
    let (e, p) = open_faulty(dir.path(), FsyncPolicy::EverySec, &faulty);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acked = |key: &str| {
        let mark = p.mark();
        set(&e, 0, key, "v");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), p.wait_durable(mark)).await
        })
        .unwrap_or_else(|_| panic!("{key} was not acknowledged"))
        .unwrap();
    };
    // what a restart after kill -9 would find: the files as they are now
    let crash_copy = || {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let keys: Vec<Vec<u8>> = reopen_dump(copy.path()).into_iter().map(|x| x.1).collect();
        keys
    };
    acked("before");
    // 1. the once-a-second fsync fails; the records it covered were
    //    acknowledged, and a write made after it is too (writes still work)
    faulty.fail_sync.store(true, Ordering::SeqCst);
    acked("between");
    let t = std::time::Instant::now();
    while p.is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the fsync never failed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(p.last_error(), "Input/output error");
    assert_eq!(
        crash_copy(),
        vec![b"before".to_vec(), b"between".to_vec()],
        "a failed fsync took acknowledged records out of the file"
    );
    // a write() that works again proves nothing while the fsync fails:
    // writes stay refused, and a record written then is not acknowledged
    set(&e, 0, "unacknowledged", "v");
    assert!(
        !writer::write_now(&p.writer),
        "acknowledged without an fsync"
    );
    assert!(!p.is_ok(), "a successful write() ended the fsync error");
    // 2. now the writes fail too: the write in flight is not acknowledged,
    //    and what was acknowledged stays in the file
    faulty.fail.store(true, Ordering::SeqCst);
    let mark = p.mark();
    set(&e, 0, "during", "v");
    let writer = rt.spawn({
        let p = p.clone();
        async move { p.wait_durable(mark).await }
    });
    let wrote = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), writer).await })
        .expect("a write waited for the failing log")
        .unwrap();
    assert!(wrote.is_err(), "acknowledged an unwritten write");
    let keys = crash_copy();
    assert!(
        keys.contains(&b"before".to_vec()) && keys.contains(&b"between".to_vec()),
        "a failed write took acknowledged records out of the file: {keys:?}"
    );
    // 3. the disk recovers: everything is written and fsynced, the write
    //    that was not acknowledged included
    let fsyncs = p.fsyncs();
    faulty.fail.store(false, Ordering::SeqCst);
    faulty.fail_sync.store(false, Ordering::SeqCst);
    let t = std::time::Instant::now();
    while !p.is_ok() || p.fsyncs() == fsyncs {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no fsync after recovery"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    p.shutdown();
    let keys: Vec<Vec<u8>> = reopen_dump(dir.path()).into_iter().map(|x| x.1).collect();
    assert_eq!(
        keys,
        vec![
            b"before".to_vec(),
            b"between".to_vec(),
            b"during".to_vec(),
            b"unacknowledged".to_vec()
        ]
    );
}

#[test]
fn under_everysec_replies_do_not_wait_for_the_once_a_second_fsync() {
    // a slow disk: each fsync takes 1.5 s; writes made while one runs are
    // written to the file and acknowledged at once, not after it
    let dir = tempfile::tempdir().unwrap();
    let faulty = FaultyFs::default();
    let (e, p) = open_faulty(dir.path(), FsyncPolicy::EverySec, &faulty);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mark = p.mark();
    set(&e, 0, "before", "v");
    rt.block_on(p.wait_durable(mark)).unwrap();
    faulty.sync_delay_ms.store(1500, Ordering::SeqCst);
    let t = std::time::Instant::now();
    while faulty.syncs.load(Ordering::SeqCst) == 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "no fsync started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let len = || fs::metadata(last_segment(dir.path())).unwrap().len();
    for i in 0..10 {
        let before = len();
        let mark = p.mark();
        set(&e, 0, &format!("during{i}"), "v");
        let t = std::time::Instant::now();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(500), p.wait_durable(mark)).await
        })
        .expect("a reply waited for the fsync")
        .unwrap();
        assert!(t.elapsed() < Duration::from_millis(500));
        assert!(len() > before, "during{i} is not in the file");
    }
    assert_eq!(p.fsyncs(), 0, "the first fsync is still running");
    faulty.sync_delay_ms.store(0, Ordering::SeqCst);
    let t = std::time::Instant::now();
    while p.fsyncs() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the fsync never ended"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    p.shutdown();
    assert_eq!(reopen_dump(dir.path()).len(), 11);
}

#[test]
fn always_waiters_share_commits_and_a_cohort_that_leaves_does_not_stall_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open_always(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // 16 writers wait together for 20 rounds, then 14 of them leave: the
    // log thread expects them back for a while but must not hold the two
    // that remain for longer than a commit
    let writers = 16;
    let rounds = |w: usize| if w < 2 { 100 } else { 20 };
    let slowest = rt.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let (e, p) = (e.clone(), p.clone());
                tokio::spawn(async move {
                    let mut slowest = Duration::ZERO;
                    for i in 0..rounds(w) {
                        let mark = p.mark();
                        set(&e, 0, &format!("w{w}:{i}"), "v");
                        let mine = p.assigned_seq();
                        let t = std::time::Instant::now();
                        p.wait_durable(mark).await.unwrap();
                        slowest = slowest.max(t.elapsed());
                        assert!(p.durable_seq() >= mine);
                    }
                    slowest
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for t in tasks {
            slowest = slowest.max(t.await.unwrap());
        }
        slowest
    });
    let writes: u64 = (0..writers).map(|w| rounds(w) as u64).sum();
    let fsyncs = p.fsyncs();
    assert!(
        fsyncs < writes / 2,
        "{fsyncs} fsyncs for {writes} writes: commits are not shared"
    );
    assert!(slowest < Duration::from_secs(2), "a wait took {slowest:?}");
    p.shutdown();
    assert_eq!(reopen_dump(dir.path()).len() as u64, writes);
}

#[derive(Clone, Debug)]
enum Op {
    Set(usize, u8, u8, i8),
    Append(usize, u8),
    Del(usize, u8),
    Expire(usize, u8, i8),
    Flags(usize, u8, u32),
    FlushDb(usize),
    FlushAll,
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    let db = 0usize..3;
    let key = 0u8..16;
    // ttl: negative = in the past (a delete), 0 = none, positive = an hour+
    prop_oneof![
        6 => (db.clone(), key.clone(), any::<u8>(), -1i8..3).prop_map(|(d, k, v, t)| Op::Set(d, k, v, t)),
        2 => (db.clone(), key.clone()).prop_map(|(d, k)| Op::Append(d, k)),
        2 => (db.clone(), key.clone()).prop_map(|(d, k)| Op::Del(d, k)),
        2 => (db.clone(), key.clone(), -1i8..3).prop_map(|(d, k, t)| Op::Expire(d, k, t)),
        1 => (db.clone(), key, any::<u32>()).prop_map(|(d, k, f)| Op::Flags(d, k, f)),
        1 => db.prop_map(Op::FlushDb),
        1 => Just(Op::FlushAll),
        1 => Just(Op::Compact),
    ]
}

fn ttl(t: i8) -> Option<u64> {
    match t {
        0 => None,
        t if t < 0 => Some(1),
        t => Some(now_ms() + 3_600_000 * t as u64),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Replaying the log (and snapshots made at random points) of any
    /// operation sequence rebuilds exactly the state the live engine had.
    #[test]
    fn reopening_rebuilds_the_live_state(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let (e, p) = open(dir.path());
        for op in ops {
            let now = now_ms();
            let k = |i: u8| vec![b'k', i];
            match op {
                Op::Set(d, i, v, t) => { e.txn(d, &[k(i)], now).set(&k(i), &[&[v]], 0, ttl(t)); }
                Op::Append(d, i) => {
                    let mut t = e.txn(d, &[k(i)], now);
                    match t.get(&k(i)).map(|v| v.value.len()) {
                        Some(n) => { t.rewrite(&k(i), n + 1, |old, new| { new[..n].copy_from_slice(old); new[n] = b'+'; }); }
                        None => { t.set(&k(i), &[b"+"], 0, None); }
                    }
                }
                Op::Del(d, i) => { e.txn(d, &[k(i)], now).remove(&k(i)); }
                Op::Expire(d, i, t) => { e.txn(d, &[k(i)], now).set_expiry(&k(i), ttl(t)); }
                Op::Flags(d, i, f) => { e.txn(d, &[k(i)], now).set_flags(&k(i), f); }
                Op::FlushDb(d) => e.flush_db(d),
                Op::FlushAll => e.flush_all(),
                Op::Compact => { p.compact().unwrap(); }
            }
        }
        let want = dump(&e);
        p.shutdown();
        prop_assert_eq!(reopen_dump(dir.path()), want);
    }
}

/// Copies a live data directory's files, as a crash would leave them (the
/// page cache survives a process kill), except the lock.
fn copy_as_crashed(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap() != files::LOCK {
            fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn always_preallocates_ahead_and_a_clean_stop_cuts_the_space() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open_always(dir.path());
    for i in 0..20 {
        set(&e, 0, &format!("k{i}"), "v");
        p.wait_durable_blocking();
    }
    let seg = last_segment(dir.path());
    let records = p.log_bytes();
    let on_disk = fs::metadata(&seg).unwrap().len();
    assert!(records > 0);
    assert!(
        on_disk >= records + PREALLOC_LOW,
        "no space preallocated: {on_disk} bytes on disk for {records} of records"
    );
    // the zeros are not records: check sees 20 and says what follows
    let report = check(dir.path()).unwrap().to_string();
    assert!(report.contains("preallocated space"), "{report}");
    assert!(
        report.contains(&format!(
            "20 records in {records} bytes, file {on_disk} bytes"
        )),
        "{report}"
    );
    p.shutdown();
    assert_eq!(fs::metadata(&seg).unwrap().len(), records);
    let (e2, p2) = open_always(dir.path());
    assert_eq!(dump(&e2).len(), 20);
    assert!(p2.recovery().notes.is_empty(), "{:?}", p2.recovery().notes);
    p2.shutdown();
}

#[test]
fn a_crash_under_always_leaves_preallocated_space_that_recovery_cuts() {
    let live = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let (e, p) = open_always(live.path());
    for i in 0..10 {
        set(&e, 1, &format!("k{i}"), "value");
        p.wait_durable_blocking();
    }
    copy_as_crashed(live.path(), crashed.path());
    p.shutdown();
    let (e2, p2) = open_always(crashed.path());
    assert_eq!(dump(&e2), dump(&e));
    let notes = &p2.recovery().notes;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("preallocated space"), "{notes:?}");
    // writing goes on right after the last record, not after the zeros
    set(&e2, 1, "after", "crash");
    p2.wait_durable_blocking();
    p2.shutdown();
    assert_eq!(reopen_dump(crashed.path()).len(), 11);
}

#[test]
fn a_record_cut_short_inside_preallocated_space_is_a_torn_tail() {
    let live = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let (e, p) = open_always(live.path());
    set(&e, 0, "a", "1");
    p.wait_durable_blocking();
    let good = p.log_bytes();
    set(&e, 0, "b", "a longer value than the first one");
    p.wait_durable_blocking();
    let end = p.log_bytes();
    copy_as_crashed(live.path(), crashed.path());
    p.shutdown();
    // the second record's last bytes never reached the disk: zeros, as the
    // preallocated space had them
    let seg = last_segment(crashed.path());
    let mut bytes = fs::read(&seg).unwrap();
    assert!(
        bytes.len() as u64 > end,
        "no preallocated space to tear into"
    );
    for b in &mut bytes[(end - 5) as usize..end as usize] {
        *b = 0;
    }
    fs::write(&seg, &bytes).unwrap();
    let report = check(crashed.path()).unwrap().to_string();
    assert!(report.contains("torn tail"), "{report}");
    let (e2, p2) = open_always(crashed.path());
    assert_eq!(dump(&e2).len(), 1);
    assert!(
        p2.recovery().notes[0].contains(&format!("torn tail at offset {good}")),
        "{:?}",
        p2.recovery().notes
    );
    p2.shutdown();
    assert_eq!(fs::metadata(&seg).unwrap().len(), good);
}

#[test]
fn a_bad_record_followed_by_records_is_still_corruption_with_zeros_after() {
    let dir = tempfile::tempdir().unwrap();
    let (e, p) = open(dir.path());
    for i in 0..4 {
        set(&e, 0, &format!("k{i}"), "value");
    }
    p.shutdown();
    let seg = last_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    let rec = bytes.len() / 4;
    bytes[rec + 12] ^= 0x10; // the 2nd record's payload
    bytes.extend_from_slice(&[0; 8192]);
    fs::write(&seg, &bytes).unwrap();
    let err = check(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains(&format!("corrupt record at offset {rec}")),
        "{err}"
    );
}

#[test]
fn commits_under_always_follow_the_runtime_going_idle() {
    // a runtime reporting its park/unpark as the server's does: 40
    // connections write at once, so each commit should carry many of them
    let activity = RuntimeActivity::new(1);
    let (a, b) = (activity.clone(), activity.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_park(move || a.parked())
        .on_thread_unpark(move || b.unparked())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = engine();
    let p = Persistence::open(
        e.clone(),
        Options {
            fsync: FsyncPolicy::Always,
            activity: Some(activity),
            ..Options::new(dir.path())
        },
    )
    .unwrap();
    let (clients, rounds) = (40, 25);
    rt.block_on(async {
        tokio::spawn(p.clone().relay_durability());
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (e, p) = (e.clone(), p.clone());
            tasks.push(tokio::spawn(async move {
                for r in 0..rounds {
                    let k = format!("c{c}");
                    let mark = p.mark();
                    set(&e, 0, &k, &format!("r{r}"));
                    let before = p.assigned_seq();
                    p.wait_durable(mark).await.unwrap();
                    assert!(p.durable_seq() >= before, "acknowledged before durable");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let writes = (clients * rounds) as u64;
    let fsyncs = p.fsyncs();
    assert!(
        fsyncs * 4 <= writes,
        "{fsyncs} fsyncs for {writes} writes: commits did not gather"
    );
    p.shutdown();
    let d = reopen_dump(dir.path());
    assert_eq!(d.len(), clients);
    assert!(d
        .iter()
        .all(|x| x.2 == format!("r{}", rounds - 1).into_bytes()));
}

#[test]
fn a_failed_preallocation_only_means_commits_append_until_a_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = FaultyFs::default();
    faulty.fail_zero_fill.store(true, Ordering::SeqCst);
    let (e, p) = open_faulty(dir.path(), FsyncPolicy::Always, &faulty);
    let seg = last_segment(dir.path());
    for i in 0..20 {
        set(&e, 0, &format!("k{i}"), "v");
        p.wait_durable_blocking();
    }
    assert!(p.is_ok(), "a failed preallocation refused writes");
    // the half-written zeros were cut: the file ends with the last record
    assert_eq!(fs::metadata(&seg).unwrap().len(), p.log_bytes());
    faulty.fail_zero_fill.store(false, Ordering::SeqCst);
    // retried a second after the failure, between two commits
    let mut on_disk = 0;
    for i in 0..300 {
        set(&e, 0, &format!("later{i}"), "v");
        p.wait_durable_blocking();
        on_disk = fs::metadata(&seg).unwrap().len();
        if on_disk > p.log_bytes() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(on_disk >= p.log_bytes() + PREALLOC_LOW, "{on_disk}");
    let live = dump(&e);
    p.shutdown();
    assert_eq!(reopen_dump(dir.path()), live);
}
