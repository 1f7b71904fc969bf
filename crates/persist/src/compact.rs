//! Compaction without fork: switch the log to a fresh segment, write a
//! snapshot of the keyspace one shard at a time while writes go on (they
//! land in the fresh segment), then point the MANIFEST at the snapshot and
//! that segment and delete what came before.
//!
//! Why replaying the fresh segment over the snapshot is exact: every record
//! in it happened after the switch. A key's snapshot state was taken after
//! the switch too, so it already includes some prefix of that key's records;
//! replaying them again changes nothing that a later record does not also
//! rewrite, because records are outcomes (whole values, absolute expiries,
//! deletes, one collection item's presence or absence with the key's
//! metadata after the change), never increments.
//!
//! A collection is written as one ADDITEM record per item, in chunks of
//! [`SNAPSHOT_STEP`] items, each chunk under its own short hold of the key's
//! shard lock: a 10M-field hash never holds a shard for long. Between chunks
//! the collection may change; every item present throughout is written
//! (the engine's walk restarts rather than skip one when the table moves),
//! and every change in between is in the fresh segment, replayed on top.

use std::fs::{self, File};
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use magpie_engine::{Engine, Kind, Mutation};

use crate::files::{segment_path, snapshot_path, sync_dir, Manifest};
use crate::record::encode;
use crate::writer::Core;

/// What one compaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compacted {
    /// Number of the new snapshot (and of the first segment after it).
    pub snapshot: u64,
    /// Records written to the snapshot: one per string key, one per
    /// collection item.
    pub entries: u64,
    /// Bytes of the snapshot.
    pub bytes: u64,
    /// Log bytes the compaction freed.
    pub freed: u64,
}

/// Runs one compaction. The caller guarantees only one runs at a time.
///
/// If the last compaction failed after switching the log and nothing has
/// switched it since, this one takes that segment as its fresh one: every
/// record in it still came after the switch, and the snapshot is taken
/// later still, so the replay argument above holds unchanged.
pub(crate) fn compact(core: &Core, engine: &Engine) -> io::Result<Compacted> {
    let dir = &core.dir;
    let old = Manifest::read(dir)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "MANIFEST vanished"))?;
    let unfinished = core.unfinished_compaction.swap(0, Ordering::Relaxed);
    let n = if unfinished != 0 && core.segment.load(Ordering::Relaxed) == unfinished {
        unfinished
    } else {
        core.rotate()?
    };
    let r = finish(core, engine, old, n);
    if r.is_err() {
        core.unfinished_compaction.store(n, Ordering::Relaxed);
    }
    r
}

/// The part of [`compact`] after the switch to segment `n`.
fn finish(core: &Core, engine: &Engine, old: Manifest, n: u64) -> io::Result<Compacted> {
    let dir = &core.dir;
    let tmp = dir.join(format!("snap.{n:06}.tmp"));
    let written = write_snapshot(engine, &tmp);
    let (entries, bytes) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    fs::rename(&tmp, snapshot_path(dir, n))?;
    sync_dir(dir)?;
    Manifest {
        snapshot: Some(n),
        first_segment: n,
    }
    .write(dir)?;
    // the switch is done; what follows only frees space
    let mut freed = 0;
    for s in old.first_segment..n {
        let p = segment_path(dir, s);
        freed += fs::metadata(&p).map_or(0, |m| m.len());
        let _ = fs::remove_file(&p);
    }
    if let Some(s) = old.snapshot {
        let p = snapshot_path(dir, s);
        freed += fs::metadata(&p).map_or(0, |m| m.len());
        let _ = fs::remove_file(&p);
    }
    sync_dir(dir)?;
    core.closed_bytes.store(0, Ordering::Relaxed);
    core.snapshot_bytes.store(bytes, Ordering::Relaxed);
    Ok(Compacted {
        snapshot: n,
        entries,
        bytes,
        freed,
    })
}

/// Entries copied per shard-lock hold while writing a snapshot.
const SNAPSHOT_STEP: usize = 512;

fn write_snapshot(engine: &Engine, path: &std::path::Path) -> io::Result<(u64, u64)> {
    let mut f = File::create(path)?;
    let mut buf = Vec::new();
    let (mut entries, mut bytes) = (0u64, 0u64);
    for db in 0..engine.databases() {
        // Copy the keyspace in small steps of the engine's SCAN cursor, so no
        // shard lock is held for more than SNAPSHOT_STEP entries (copying a
        // whole shard under its lock put p99 at 6 ms while a 2M-key
        // keyspace was compacted). The snapshot need not be a point in
        // time: every change after the log rotation that preceded it is
        // replayed on top of it. SCAN returns every key present throughout;
        // a key it repeats is written twice, and the later copy wins.
        let mut cursor = 0;
        let mut collections: Vec<Vec<u8>> = Vec::new();
        loop {
            // invalidated keys are not live: scan skips them, so only live
            // keys and their tags are written
            cursor = engine.scan_tagged(db, cursor, SNAPSHOT_STEP, 0, |key, v, tags| {
                if v.kind != Kind::String {
                    // written below, after this step let go of the shard
                    // (a collection carries no tags)
                    collections.push(key.to_vec());
                    return;
                }
                let m = if tags.is_empty() {
                    Mutation::Set {
                        db,
                        key,
                        value: v.value,
                        flags: v.meta.flags,
                        expire_at: v.meta.expire_at,
                        cas: v.meta.cas,
                    }
                } else {
                    Mutation::SetTagged {
                        db,
                        key,
                        value: v.value,
                        flags: v.meta.flags,
                        expire_at: v.meta.expire_at,
                        cas: v.meta.cas,
                        tags,
                    }
                };
                encode(&m, &mut buf);
                entries += 1;
            });
            for key in collections.drain(..) {
                let mut at = 0;
                loop {
                    at = engine.collection_records(db, &key, at, SNAPSHOT_STEP, |m| {
                        encode(&m, &mut buf);
                        entries += 1;
                    });
                    if buf.len() >= 1 << 20 {
                        f.write_all(&buf)?;
                        bytes += buf.len() as u64;
                        buf.clear();
                    }
                    if at == 0 {
                        break;
                    }
                }
            }
            if buf.len() >= 1 << 20 || cursor == 0 {
                f.write_all(&buf)?;
                bytes += buf.len() as u64;
                buf.clear();
            }
            if cursor == 0 {
                break;
            }
        }
    }
    f.sync_all()?;
    Ok((entries, bytes))
}

/// The compaction thread: waits until the log thread says the log outgrew
/// its threshold, compacts, and backs off after a failure.
pub(crate) fn run(core: &Core, engine: &Engine, lock: &parking_lot::Mutex<()>) {
    loop {
        {
            let mut wanted = core.compact_wanted.lock();
            while !*wanted && !core.compact_stop.load(Ordering::SeqCst) {
                core.compact_wake.wait(&mut wanted);
            }
            if core.compact_stop.load(Ordering::SeqCst) {
                return;
            }
            *wanted = false;
        }
        let _one = lock.lock();
        core.compacting.store(true, Ordering::Relaxed);
        let before = core.log_bytes();
        let started = std::time::Instant::now();
        let r = compact(core, engine);
        core.compacting.store(false, Ordering::Relaxed);
        drop(_one);
        match r {
            Ok(c) => tracing::info!(
                "compacted {before} log bytes into snapshot {} ({} entries, {} bytes) in {} ms; freed {} bytes",
                c.snapshot,
                c.entries,
                c.bytes,
                started.elapsed().as_millis(),
                c.freed
            ),
            Err(e) => {
                tracing::error!("compaction failed: {e}; retrying later");
                let mut wanted = core.compact_wanted.lock();
                if !core.compact_stop.load(Ordering::SeqCst) {
                    core.compact_wake.wait_for(&mut wanted, Duration::from_secs(10));
                }
            }
        }
    }
}
