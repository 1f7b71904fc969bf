//! Crash tests against the real binary: SIGKILL under concurrent writes and
//! deletes (under each fsync policy), restart, and check that every
//! acknowledged write is there; absolute TTLs across restarts; compaction
//! racing with writes and deletes.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{encode, magpie, Server};

/// A small RESP client whose calls fail instead of panicking, because the
/// server is killed under it.
struct Conn(BufReader<TcpStream>);

impl Conn {
    fn connect(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn(BufReader::new(s)))
    }

    /// Sends a command, returns the reply's first line (and bulk body).
    fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Option<Vec<u8>>> {
        self.0.get_mut().write_all(&encode(args))?;
        self.read()
    }

    fn read(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        self.0.read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\r\n") {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        line.truncate(line.len() - 2);
        if line.first() != Some(&b'$') {
            return Ok(Some(line));
        }
        let n: i64 = std::str::from_utf8(&line[1..]).unwrap().parse().unwrap();
        if n < 0 {
            return Ok(None);
        }
        let mut body = vec![0; n as usize + 2];
        self.0.read_exact(&mut body)?;
        body.truncate(n as usize);
        Ok(Some(body))
    }

    /// GETs many keys with one pipelined write.
    fn get_many(&mut self, keys: &[String]) -> Vec<Option<Vec<u8>>> {
        let mut req = Vec::new();
        for k in keys {
            req.extend_from_slice(&encode(&[b"GET", k.as_bytes()]));
        }
        self.0.get_mut().write_all(&req).unwrap();
        keys.iter().map(|_| self.read().unwrap()).collect()
    }
}

/// xorshift, seeded from the clock; the seed is printed so a failure can be
/// replayed by setting MAGPIE_CRASH_SEED.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("MAGPIE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| magpie_engine::now_ms() | 1);
        eprintln!("crash test seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    start_with(dir, "always", extra)
}

fn start_with(dir: &Path, fsync: &str, extra: &[&str]) -> Server {
    let d = dir.to_str().unwrap();
    let mut flags = vec!["--dir", d, "--appendfsync", fsync];
    flags.extend_from_slice(extra);
    magpie(&flags)
}

/// What each writer knows about a key: the value last acknowledged (None:
/// absent) and the SET or DEL sent but not acknowledged when the server
/// died (which may or may not have become durable; `Some(None)` is a DEL).
#[derive(Default, Clone)]
struct KeyState {
    acked: Option<String>,
    in_flight: Option<Option<String>>,
}

type Model = Arc<Mutex<HashMap<String, KeyState>>>;

/// Groups of keys each writer tags alike when `tagged` (key `i` of writer
/// `t` carries tag `w{t}:g{i % GROUPS}`).
const GROUPS: u64 = 10;

/// Runs 4 writer threads doing SETs and (one in five) DELs on keys
/// `w{t}:{0..keys}` until the server is killed after `load` of load.
/// With `tagged`, every SET tags its key with its group and one write in
/// twenty invalidates one of the writer's groups instead (for the model, a
/// DEL of each key of the group). Returns when all writers stopped.
fn load_then_kill(
    server: &mut Server,
    model: &Model,
    round: u32,
    load: Duration,
    keys: u64,
    rng: &mut Rng,
    tagged: bool,
) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (model, port) = (model.clone(), server.port);
            let seed = rng.below(u64::MAX) | 1;
            std::thread::spawn(move || {
                let mut rng = Rng(seed);
                let Ok(mut c) = Conn::connect(port) else {
                    return;
                };
                // writes until the kill breaks the connection; bounded all the same
                for i in 0..1_000_000u32 {
                    if tagged && rng.below(20) == 0 {
                        let g = rng.below(GROUPS);
                        let group: Vec<String> = (0..keys)
                            .filter(|k| k % GROUPS == g)
                            .map(|k| format!("w{t}:{k}"))
                            .collect();
                        {
                            let mut m = model.lock().unwrap();
                            for k in &group {
                                m.entry(k.clone()).or_default().in_flight = Some(None);
                            }
                        }
                        let tag = format!("w{t}:g{g}");
                        match c.call(&[b"INVALIDATE", b"TAG", tag.as_bytes()]) {
                            Ok(Some(r)) if r.starts_with(b":") => {
                                let mut m = model.lock().unwrap();
                                for k in &group {
                                    let s = m.get_mut(k).unwrap();
                                    s.acked = None;
                                    s.in_flight = None;
                                }
                            }
                            Ok(other) => panic!("{tag}: invalidation answered {other:?}"),
                            Err(_) => return,
                        }
                        continue;
                    }
                    let n = rng.below(keys);
                    let key = format!("w{t}:{n}");
                    let tag = format!("w{t}:g{}", n % GROUPS);
                    let value = (rng.below(5) != 0)
                        .then(|| format!("r{round}:i{i}:{}", "x".repeat(rng.below(64) as usize)));
                    model
                        .lock()
                        .unwrap()
                        .entry(key.clone())
                        .or_default()
                        .in_flight = Some(value.clone());
                    let reply = match &value {
                        Some(v) if tagged => c.call(&[
                            b"SET",
                            key.as_bytes(),
                            v.as_bytes(),
                            b"TAGS",
                            tag.as_bytes(),
                        ]),
                        Some(v) => c.call(&[b"SET", key.as_bytes(), v.as_bytes()]),
                        None => c.call(&[b"DEL", key.as_bytes()]),
                    };
                    match reply {
                        Ok(Some(r))
                            if r == b"+OK" && value.is_some()
                                || (r == b":1" || r == b":0") && value.is_none() =>
                        {
                            let mut m = model.lock().unwrap();
                            let s = m.get_mut(&key).unwrap();
                            s.acked = value;
                            s.in_flight = None;
                        }
                        Ok(other) => panic!("{key}: {value:?} answered {other:?}"),
                        Err(_) => return,
                    }
                }
                panic!("writer was never stopped");
            })
        })
        .collect();
    std::thread::sleep(load);
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for t in threads {
        t.join().unwrap();
    }
}

/// Every key's value after restart is its last acknowledged value, or the
/// one that was in flight when the server died. Returns how many keys the
/// server holds with their acknowledged (present) value.
fn verify(server: &Server, model: &Model) -> usize {
    let model = model.lock().unwrap().clone();
    let keys: Vec<String> = model.keys().cloned().collect();
    let mut c = Conn::connect(server.port).unwrap();
    let mut acked = 0;
    for chunk in keys.chunks(500) {
        for (k, got) in chunk.iter().zip(c.get_many(chunk)) {
            let s = &model[k];
            let got = got.map(|v| String::from_utf8(v).unwrap());
            if got.is_some() && got == s.acked {
                acked += 1;
            }
            assert!(
                got == s.acked || s.in_flight.as_ref() == Some(&got),
                "{k}: got {got:?}, acknowledged {:?}, in flight {:?}",
                s.acked,
                s.in_flight
            );
        }
    }
    acked
}

/// After each restart the in-flight value (if it survived) is what the key
/// holds: fold that into the model so later rounds compare against it.
fn settle(server: &Server, model: &Model) {
    let mut m = model.lock().unwrap();
    let keys: Vec<String> = m.keys().cloned().collect();
    let mut c = Conn::connect(server.port).unwrap();
    for chunk in keys.chunks(500) {
        for (k, got) in chunk.iter().zip(c.get_many(chunk)) {
            let s = m.get_mut(k).unwrap();
            s.acked = got.map(|v| String::from_utf8(v).unwrap());
            s.in_flight = None;
        }
    }
}

/// Kills a loaded server `rounds` times in a row under `fsync`, restarting
/// it each time, and checks every acknowledged write after each restart.
fn sigkill_rounds(fsync: &str, rounds: u32) {
    sigkill_rounds_with(fsync, rounds, false);
}

/// [`sigkill_rounds`], with tagged writes and invalidations when `tagged`;
/// then each tag's TAG CARD must equal its keys found after the restart.
fn sigkill_rounds_with(fsync: &str, rounds: u32, tagged: bool) {
    let dir = tempfile::tempdir().unwrap();
    let model: Model = Arc::default();
    let mut rng = Rng::new();
    let mut total = 0;
    for round in 0..rounds {
        let mut server = start_with(dir.path(), fsync, &[]);
        if round > 0 {
            verify(&server, &model);
            settle(&server, &model);
        }
        let load = Duration::from_millis(100 + rng.below(500));
        load_then_kill(&mut server, &model, round, load, 300, &mut rng, tagged);
        total = model
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.acked.is_some())
            .count();
    }
    let server = start_with(dir.path(), fsync, &[]);
    let acked = verify(&server, &model);
    // each of the 4 writers had at most one request in flight at the last
    // kill: one key for a SET, a whole group's keys for an INVALIDATE TAG
    // (verify checked each of them is either its acknowledged value or
    // what was in flight)
    let in_flight = model
        .lock()
        .unwrap()
        .values()
        .filter(|s| s.in_flight.is_some())
        .count();
    let writes_in_flight = if tagged { in_flight } else { in_flight.min(4) };
    assert!(
        acked + writes_in_flight.max(4) >= total,
        "{acked} of {total} acknowledged values found ({in_flight} keys in flight)"
    );
    assert!(
        total > 100,
        "too little load to mean anything: {total} keys"
    );
    if tagged {
        // the index survived too: every group's count is its keys present
        let mut c = Conn::connect(server.port).unwrap();
        for t in 0..4 {
            for g in 0..GROUPS {
                let keys: Vec<String> = (0..300u64)
                    .filter(|k| k % GROUPS == g)
                    .map(|k| format!("w{t}:{k}"))
                    .collect();
                let present = c.get_many(&keys).iter().filter(|v| v.is_some()).count();
                let tag = format!("w{t}:g{g}");
                let card = c.call(&[b"TAG", b"CARD", tag.as_bytes()]).unwrap().unwrap();
                assert_eq!(card, format!(":{present}").into_bytes(), "{tag}");
            }
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    sigkill_rounds("always", 8);
}

#[test]
fn tagged_writes_and_invalidations_survive_sigkill() {
    sigkill_rounds_with("always", 6, true);
}

/// A kill of the process (not of the machine) loses nothing acknowledged
/// under the other policies too: a reply leaves only once its records are
/// in the file, as with Redis, which writes its AOF before replying.
#[test]
fn acknowledged_writes_survive_sigkill_under_everysec_and_no() {
    sigkill_rounds("everysec", 6);
    sigkill_rounds("no", 3);
}

#[test]
fn compaction_racing_with_writes_and_deletes_then_crash() {
    let dir = tempfile::tempdir().unwrap();
    let model: Model = Arc::default();
    let mut rng = Rng::new();
    let small = ["--compact-min-size", "16384", "--compact-ratio", "1"];
    for round in 0..3 {
        let mut server = start(dir.path(), &small);
        if round > 0 {
            verify(&server, &model);
            settle(&server, &model);
        }
        // few keys, many overwrites: the log outgrows its snapshot quickly
        load_then_kill(
            &mut server,
            &model,
            round,
            Duration::from_millis(600),
            40,
            &mut rng,
            round % 2 == 1,
        );
    }
    let manifest = std::fs::read_to_string(dir.path().join("MANIFEST")).unwrap();
    assert!(
        !manifest.contains("snapshot none"),
        "no compaction happened:\n{manifest}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("snapshot: ") && text.contains("status: ok"),
        "{text}"
    );
    let server = start(dir.path(), &[]);
    verify(&server, &model);
}

#[test]
fn ttl_is_absolute_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    // write the data directory with the library, as a previous run would
    let engine = Arc::new(magpie_engine::Engine::new(
        magpie_engine::EngineConfig::default(),
    ));
    let p =
        magpie_persist::Persistence::open(engine.clone(), magpie_persist::Options::new(dir.path()))
            .unwrap();
    let now = magpie_engine::now_ms();
    let set = |k: &str, exp: Option<u64>| {
        engine.txn(0, &[k], now).set(k.as_bytes(), &[b"v"], 0, exp);
    };
    set("past", Some(now + 300));
    set("hour", Some(now + 3_600_000));
    set("plain", None);
    p.shutdown();
    std::thread::sleep(Duration::from_millis(400));

    let mut server = start(dir.path(), &[]);
    let mut c = Conn::connect(server.port).unwrap();
    let keys = ["past".to_string(), "hour".to_string(), "plain".to_string()];
    let v = Some(b"v".to_vec());
    assert_eq!(c.get_many(&keys), vec![None, v.clone(), v.clone()]);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());

    // the data directory is locked while a server runs
    let server = start(dir.path(), &[]);
    let started = Instant::now();
    let second = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args([
            "serve",
            "--port",
            "0",
            "--dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use by another magpie process"));
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut c = Conn::connect(server.port).unwrap();
    assert_eq!(c.get_many(&keys), vec![None, v.clone(), v]);
}

/// Like [`acknowledged_writes_survive_sigkill`] for hashes and sets: four
/// writers HSET / HDEL fields of their own hash and SADD / SREM members of
/// their own set (emptying and recreating them now and then) while the
/// server is killed; after each restart every field and member is as last
/// acknowledged, or as the write in flight at the kill left it.
#[test]
fn acknowledged_collection_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // (key, item) -> state; a set member's value is "1" when present
    let model: Arc<Mutex<HashMap<(String, String), KeyState>>> = Arc::default();
    let mut rng = Rng::new();
    let read = |c: &mut Conn, key: &str, item: &str| -> Option<String> {
        if key.starts_with('h') {
            c.call(&[b"HGET", key.as_bytes(), item.as_bytes()])
                .unwrap()
                .map(|v| String::from_utf8(v).unwrap())
        } else {
            let r = c
                .call(&[b"SISMEMBER", key.as_bytes(), item.as_bytes()])
                .unwrap();
            (r.as_deref() == Some(b":1")).then(|| "1".to_string())
        }
    };
    for round in 0..5u32 {
        // small compaction thresholds: snapshots of the collections are
        // taken (chunked) while the writers run and the kills land
        let mut server = start(
            dir.path(),
            &["--compact-min-size", "65536", "--compact-ratio", "1"],
        );
        {
            let mut m = model.lock().unwrap();
            let mut c = Conn::connect(server.port).unwrap();
            for ((key, item), s) in m.iter_mut() {
                let got = read(&mut c, key, item);
                assert!(
                    got == s.acked || s.in_flight.as_ref() == Some(&got),
                    "round {round}: {key} {item}: got {got:?}, acknowledged {:?}, in flight {:?}",
                    s.acked,
                    s.in_flight
                );
                s.acked = got;
                s.in_flight = None;
            }
        }
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (model, port) = (model.clone(), server.port);
                let seed = rng.below(u64::MAX) | 1;
                std::thread::spawn(move || {
                    let mut rng = Rng(seed);
                    let Ok(mut c) = Conn::connect(port) else {
                        return;
                    };
                    for i in 0..1_000_000u32 {
                        let hash = rng.below(2) == 0;
                        let key = format!("{}{t}", if hash { 'h' } else { 's' });
                        let item = format!("i{}", rng.below(40));
                        let add = rng.below(3) != 0;
                        let value = add.then(|| {
                            if hash {
                                format!("r{round}:{i}")
                            } else {
                                "1".into()
                            }
                        });
                        model
                            .lock()
                            .unwrap()
                            .entry((key.clone(), item.clone()))
                            .or_default()
                            .in_flight = Some(value.clone());
                        let (k, f) = (key.as_bytes(), item.as_bytes());
                        let reply = match (hash, &value) {
                            (true, Some(v)) => c.call(&[b"HSET", k, f, v.as_bytes()]),
                            (true, None) => c.call(&[b"HDEL", k, f]),
                            (false, Some(_)) => c.call(&[b"SADD", k, f]),
                            (false, None) => c.call(&[b"SREM", k, f]),
                        };
                        match reply {
                            Ok(Some(r)) if r == b":1" || r == b":0" => {
                                let mut m = model.lock().unwrap();
                                let s = m.get_mut(&(key, item)).unwrap();
                                s.acked = value;
                                s.in_flight = None;
                            }
                            Ok(other) => panic!("{key} {item}: answered {other:?}"),
                            Err(_) => return,
                        }
                    }
                    panic!("writer was never stopped");
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + rng.below(400)));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        for t in threads {
            t.join().unwrap();
        }
    }
    let server = start(dir.path(), &[]);
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("snap.")),
        "no compaction ran"
    );
    let m = model.lock().unwrap();
    let mut c = Conn::connect(server.port).unwrap();
    let mut present = 0;
    for ((key, item), s) in m.iter() {
        let got = read(&mut c, key, item);
        present += got.is_some() as usize;
        assert!(
            got == s.acked || s.in_flight.as_ref() == Some(&got),
            "{key} {item}: got {got:?}, acknowledged {:?}, in flight {:?}",
            s.acked,
            s.in_flight
        );
    }
    assert!(
        present > 50,
        "too little load to mean anything: {present} items"
    );
}
