//! The load itself: `threads` OS threads, each with a single-threaded tokio
//! runtime driving `clients` connections. A client keeps up to `pipeline`
//! requests in flight; in closed loop (the default) it sends the next one as
//! soon as a reply frees a slot, in open loop (`--rate`) on a fixed schedule,
//! and then latency is measured from the *intended* send time so a stalled
//! server is charged for the requests queued behind the stall (no
//! coordinated omission). Each client keeps its own HDR histograms; they
//! are merged once at the end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::keys::{KeyGen, KeySpace, Pattern, Rng};
use super::proto::{self, Op, Outcome, Protocol};

/// How long a client waits without any reply before giving up.
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Everything that defines one run.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Wire protocol.
    pub proto: Protocol,
    /// Where to connect.
    pub addr: SocketAddr,
    /// `Host` header for HTTP.
    pub host_header: String,
    /// OS threads.
    pub threads: usize,
    /// Connections per thread.
    pub clients: usize,
    /// Requests per client (exclusive with `test_time`).
    pub requests: Option<u64>,
    /// Run length (exclusive with `requests`).
    pub test_time: Option<Duration>,
    /// SETs then GETs per cycle.
    pub ratio: (u64, u64),
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Value size range (inclusive).
    pub sizes: (usize, usize),
    /// Key choice for SETs.
    pub set_pattern: Pattern,
    /// Key choice for GETs.
    pub get_pattern: Pattern,
    /// Key range and distribution parameters.
    pub space: KeySpace,
    /// Text before each key number.
    pub prefix: String,
    /// Open loop: total requests per second over all clients.
    pub rate: Option<f64>,
    /// Redis AUTH password.
    pub auth: Option<String>,
    /// Redis SELECT database.
    pub db: Option<u32>,
    /// Base seed; each client derives its own.
    pub seed: u64,
    /// Print a progress line on stderr once a second.
    pub progress: bool,
}

impl Workload {
    fn total_clients(&self) -> u64 {
        (self.threads * self.clients) as u64
    }
}

/// Results for one operation type.
#[derive(Clone, Debug)]
pub struct TypeStats {
    /// Replies received.
    pub count: u64,
    /// GETs that found the key.
    pub hits: u64,
    /// GETs that did not.
    pub misses: u64,
    /// Error replies.
    pub errors: u64,
    /// Bytes sent plus received.
    pub bytes: u64,
    /// Latency in microseconds.
    pub hist: Histogram<u64>,
}

impl TypeStats {
    fn new() -> TypeStats {
        TypeStats {
            count: 0,
            hits: 0,
            misses: 0,
            errors: 0,
            bytes: 0,
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
        }
    }

    /// Adds another's counts and latencies.
    pub fn merge(&mut self, o: &TypeStats) {
        self.count += o.count;
        self.hits += o.hits;
        self.misses += o.misses;
        self.errors += o.errors;
        self.bytes += o.bytes;
        // same bounds on both sides, so this cannot fail
        let _ = self.hist.add(&o.hist);
    }
}

/// Results of one run.
#[derive(Clone, Debug)]
pub struct RunStats {
    /// SET results.
    pub sets: TypeStats,
    /// GET results.
    pub gets: TypeStats,
    /// Open loop with --test-time: sends scheduled before the end that
    /// never went out because the pipeline stayed full.
    pub unsent: u64,
    /// Wall time of the run.
    pub duration: Duration,
    /// Start, ms since the epoch.
    pub start_ms: u64,
    /// Finish, ms since the epoch.
    pub end_ms: u64,
}

impl RunStats {
    /// SETs and GETs together.
    pub fn totals(&self) -> TypeStats {
        let mut t = self.sets.clone();
        t.merge(&self.gets);
        t
    }
}

/// When a client's requests are due and what each one's latency is
/// measured from. Closed loop: a request is due whenever a pipeline slot is
/// free and is timed from when it is sent. Open loop (`--rate`): request `k`
/// of a client is due at `start + phase + k * interval`, and it is timed
/// from that intended moment even if it goes out later (the pipeline was
/// full behind a slow reply), so a stall is charged to every request it
/// delayed rather than to the one that met it (no coordinated omission).
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// When request 0 is due (the run's start plus this client's phase).
    first: Instant,
    /// Open loop: time between one client's requests.
    interval: Option<Duration>,
}

impl Schedule {
    /// The schedule of client `index` of `total` when the run starts at
    /// `start`: `rate` requests per second over all clients, each client
    /// phase-shifted by `index / total` of its interval so they do not all
    /// fire together; `None` for closed loop.
    pub fn new(start: Instant, rate: Option<f64>, index: u64, total: u64) -> Schedule {
        let interval = rate.map(|r| Duration::from_secs_f64(total as f64 / r));
        let phase = interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(index as f64 / total.max(1) as f64)
        });
        Schedule {
            first: start + phase,
            interval,
        }
    }

    /// Whether this is open loop.
    pub fn open_loop(&self) -> bool {
        self.interval.is_some()
    }

    /// Open loop: when request `k` is due.
    pub fn due(&self, k: u64) -> Option<Instant> {
        self.interval.map(|i| self.first + i.mul_f64(k as f64))
    }

    /// What request `k`'s latency is measured from if it is sent at `now`,
    /// or None if it is not due yet: `now` in closed loop, the intended
    /// send time in open loop.
    pub fn send_time(&self, k: u64, now: Instant) -> Option<Instant> {
        match self.due(k) {
            None => Some(now),
            Some(t) if t <= now => Some(t),
            Some(_) => None,
        }
    }

    /// Open loop: how many requests fall due before `deadline` (0 in
    /// closed loop).
    pub fn due_before(&self, deadline: Instant) -> u64 {
        let Some(i) = self.interval else { return 0 };
        let span = deadline.saturating_duration_since(self.first);
        let mut n = (span.as_secs_f64() / i.as_secs_f64()).ceil() as u64;
        // settle float rounding against the same test the sender uses
        let before = |k: u64| self.due(k).is_some_and(|t| t < deadline);
        while n > 0 && !before(n - 1) {
            n -= 1;
        }
        while before(n) {
            n += 1;
        }
        n
    }
}

/// Latency in microseconds of a reply at `now` to a request timed from
/// `since` (at least 1, the histogram's lowest value).
pub fn latency_us(since: Instant, now: Instant) -> u64 {
    now.duration_since(since).as_micros().max(1) as u64
}

/// Live counters a thread bumps so the progress line can be printed.
#[derive(Default)]
struct Progress {
    ops: AtomicU64,
    latency_us: AtomicU64,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs the workload to completion.
pub fn run(w: &Workload) -> Result<RunStats, String> {
    let w = Arc::new(w.clone());
    let values = Arc::new(value_pool(w.sizes.1, w.seed));
    let start = Instant::now();
    let start_ms = epoch_ms();
    let deadline = w.test_time.map(|t| start + t);
    let progress: Arc<Progress> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for t in 0..w.threads {
        let (w, values, progress, tx) = (w.clone(), values.clone(), progress.clone(), tx.clone());
        let h = std::thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || {
                let r = thread_main(&w, t, &values, start, deadline, &progress);
                let _ = tx.send(r);
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        handles.push(h);
    }
    drop(tx);

    let mut sets = TypeStats::new();
    let mut gets = TypeStats::new();
    let mut unsent = 0;
    let mut first_error = None;
    let mut done = 0;
    let (mut last_ops, mut last_lat, mut last_tick) = (0u64, 0u64, start);
    let total_requests = w.requests.map(|n| n * w.total_clients());
    while done < w.threads {
        let next_tick = last_tick + Duration::from_secs(1);
        match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(Ok(r)) => {
                sets.merge(&r.0);
                gets.merge(&r.1);
                unsent += r.2;
                done += 1;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
                done += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let ops = progress.ops.load(Ordering::Relaxed);
                let lat = progress.latency_us.load(Ordering::Relaxed);
                if w.progress {
                    let secs = now.duration_since(start).as_secs_f64();
                    let pct = match (total_requests, w.test_time) {
                        (Some(n), _) => ops * 100 / n.max(1),
                        (_, Some(t)) => (secs / t.as_secs_f64() * 100.0) as u64,
                        _ => 0,
                    };
                    let window = now.duration_since(last_tick).as_secs_f64().max(1e-9);
                    let d_ops = ops - last_ops;
                    let cur_lat = if d_ops > 0 {
                        (lat - last_lat) as f64 / d_ops as f64 / 1000.0
                    } else {
                        0.0
                    };
                    let avg_lat = if ops > 0 {
                        lat as f64 / ops as f64 / 1000.0
                    } else {
                        0.0
                    };
                    eprint!(
                        "\r[RUN #1 {pct:3}%, {:3.0} secs] {:2} threads: {ops:11} ops, {:9.0} (avg: {:9.0}) ops/sec, {cur_lat:.3} (avg: {avg_lat:.3}) msec latency ",
                        secs,
                        w.threads,
                        d_ops as f64 / window,
                        ops as f64 / secs.max(1e-9),
                    );
                }
                (last_ops, last_lat, last_tick) = (ops, lat, now);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                first_error.get_or_insert_with(|| "a benchmark thread died".to_string());
                break;
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    if w.progress && last_tick != start {
        eprintln!();
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(RunStats {
        sets,
        gets,
        unsent,
        duration: start.elapsed(),
        start_ms,
        end_ms: epoch_ms(),
    })
}

/// Printable bytes the values are cut from (memtier also sends fixed
/// rather than per-request random data).
fn value_pool(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    (0..len)
        .map(|_| {
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                [(rng.next_u64() % 62) as usize]
        })
        .collect()
}

type ThreadResult = Result<(TypeStats, TypeStats, u64), String>;

fn thread_main(
    w: &Arc<Workload>,
    thread: usize,
    values: &Arc<Vec<u8>>,
    start: Instant,
    deadline: Option<Instant>,
    progress: &Arc<Progress>,
) -> ThreadResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for c in 0..w.clients {
            let index = (thread * w.clients + c) as u64;
            set.spawn(client(
                w.clone(),
                index,
                values.clone(),
                start,
                deadline,
                progress.clone(),
            ));
        }
        let (mut sets, mut gets, mut unsent) = (TypeStats::new(), TypeStats::new(), 0);
        while let Some(r) = set.join_next().await {
            let (s, g, u) = r.map_err(|e| format!("client task failed: {e}"))??;
            sets.merge(&s);
            gets.merge(&g);
            unsent += u;
        }
        Ok((sets, gets, unsent))
    })
}

/// One request waiting for its reply.
struct InFlight {
    op: Op,
    /// When it was sent (closed loop) or meant to be sent (open loop).
    since: Instant,
    bytes: usize,
}

/// Reads one reply during connection setup (AUTH, SELECT).
async fn setup_call(stream: &TcpStream, cmd: &[&[u8]], what: &str) -> Result<(), String> {
    let mut req = format!("*{}\r\n", cmd.len()).into_bytes();
    for a in cmd {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    let mut pos = 0;
    while pos < req.len() {
        stream.writable().await.map_err(|e| e.to_string())?;
        match stream.try_write(&req[pos..]) {
            Ok(n) => pos += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
    let mut buf = Vec::with_capacity(256);
    loop {
        if let Some((len, outcome)) =
            proto::frame(Protocol::Redis, Op::Set, &buf).map_err(|e| format!("{what}: {}", e.0))?
        {
            if outcome == Outcome::Error {
                let text = String::from_utf8_lossy(&buf[1..len - 2]).into_owned();
                return Err(format!("{what} failed: {text}"));
            }
            return Ok(());
        }
        stream.readable().await.map_err(|e| e.to_string())?;
        match stream.try_read_buf(&mut buf) {
            Ok(0) => return Err(format!("{what}: server closed the connection")),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}

async fn client(
    w: Arc<Workload>,
    index: u64,
    values: Arc<Vec<u8>>,
    start: Instant,
    deadline: Option<Instant>,
    progress: Arc<Progress>,
) -> ThreadResult {
    let stream = TcpStream::connect(w.addr).await.map_err(|e| {
        format!(
            "connection to {} failed: {}",
            w.addr,
            crate::cli::connect_error_text(&e)
        )
    })?;
    let _ = stream.set_nodelay(true);
    if w.proto == Protocol::Redis {
        if let Some(pass) = &w.auth {
            setup_call(&stream, &[b"AUTH", pass.as_bytes()], "AUTH").await?;
        }
        if let Some(db) = w.db {
            setup_call(&stream, &[b"SELECT", db.to_string().as_bytes()], "SELECT").await?;
        }
    }

    let total = w.total_clients();
    let mut rng = Rng::new(
        w.seed
            .wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    );
    let mut set_keys = KeyGen::new(w.set_pattern, &w.space, index, total);
    let mut get_keys = KeyGen::new(w.get_pattern, &w.space, index, total);
    let (mut sets, mut gets) = (TypeStats::new(), TypeStats::new());
    let cycle = w.ratio.0 + w.ratio.1;
    let mut cycle_pos = 0u64;
    let mut issued = 0u64;
    // open loop: this client's share of the rate, phase-shifted
    let schedule = Schedule::new(start, w.rate, index, total);

    let mut inflight = std::collections::VecDeque::with_capacity(w.pipeline);
    let mut wbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut wpos = 0;
    let mut rbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut rpos = 0;
    let mut key = Vec::with_capacity(w.prefix.len() + 20);
    let mut last_reply = Instant::now();

    loop {
        let now = Instant::now();
        // issue what the pipeline and the schedule allow
        while inflight.len() < w.pipeline {
            let more = match (w.requests, deadline) {
                (Some(n), _) => issued < n,
                (None, Some(d)) => now < d,
                (None, None) => false,
            };
            if !more {
                break;
            }
            let Some(since) = schedule.send_time(issued, now) else {
                break;
            };
            let op = if cycle_pos < w.ratio.0 {
                Op::Set
            } else {
                Op::Get
            };
            cycle_pos = (cycle_pos + 1) % cycle;
            let n = match op {
                Op::Set => set_keys.next(&mut rng),
                Op::Get => get_keys.next(&mut rng),
            };
            key.clear();
            key.extend_from_slice(w.prefix.as_bytes());
            key.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            let size = if w.sizes.0 == w.sizes.1 {
                w.sizes.0
            } else {
                rng.range(w.sizes.0 as u64, w.sizes.1 as u64) as usize
            };
            let before = wbuf.len();
            proto::encode(
                w.proto,
                op,
                &key,
                &values[..size],
                &w.host_header,
                &mut wbuf,
            );
            inflight.push_back(InFlight {
                op,
                since,
                bytes: wbuf.len() - before,
            });
            issued += 1;
        }
        let finished_issuing = match (w.requests, deadline) {
            (Some(n), _) => issued >= n,
            (None, Some(d)) => now >= d,
            (None, None) => true,
        };
        if inflight.is_empty() && finished_issuing {
            break;
        }

        let mut progressed = false;
        if wpos < wbuf.len() {
            match stream.try_write(&wbuf[wpos..]) {
                Ok(n) => {
                    wpos += n;
                    progressed = n > 0;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("write to {} failed: {e}", w.addr)),
            }
            if wpos == wbuf.len() {
                wbuf.clear();
                wpos = 0;
            }
        }
        if rbuf.capacity() - rbuf.len() < 16 * 1024 {
            if rpos > 0 {
                rbuf.drain(..rpos);
                rpos = 0;
            }
            rbuf.reserve(64 * 1024);
        }
        match stream.try_read_buf(&mut rbuf) {
            Ok(0) => return Err(format!("{} closed the connection", w.addr)),
            Ok(_) => {
                progressed = true;
                let now = Instant::now();
                let (mut ops, mut lat) = (0u64, 0u64);
                while let Some(front) = inflight.front() {
                    let framed = proto::frame(w.proto, front.op, &rbuf[rpos..])
                        .map_err(|e| format!("bad reply from {}: {}", w.addr, e.0))?;
                    let Some((len, outcome)) = framed else { break };
                    let req = inflight.pop_front().expect("front exists");
                    rpos += len;
                    let us = latency_us(req.since, now);
                    let st = if req.op == Op::Set {
                        &mut sets
                    } else {
                        &mut gets
                    };
                    st.count += 1;
                    st.bytes += (req.bytes + len) as u64;
                    match outcome {
                        Outcome::Hit => st.hits += 1,
                        Outcome::Miss => st.misses += 1,
                        Outcome::Error => st.errors += 1,
                        Outcome::Stored => {}
                    }
                    st.hist.saturating_record(us);
                    ops += 1;
                    lat += us;
                }
                if rpos == rbuf.len() {
                    rbuf.clear();
                    rpos = 0;
                }
                if ops > 0 {
                    last_reply = now;
                    progress.ops.fetch_add(ops, Ordering::Relaxed);
                    progress.latency_us.fetch_add(lat, Ordering::Relaxed);
                }
                if inflight.is_empty() && rpos < rbuf.len() {
                    return Err(format!("{} sent bytes nobody asked for", w.addr));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("read from {} failed: {e}", w.addr)),
        }
        if progressed {
            continue;
        }

        // nothing to do right now: wait for the socket or the schedule
        let mut interest = Interest::READABLE;
        if wpos < wbuf.len() {
            interest |= Interest::WRITABLE;
        }
        let next_send = (!finished_issuing && inflight.len() < w.pipeline)
            .then(|| schedule.due(issued))
            .flatten();
        let stall_at = last_reply + STALL_LIMIT;
        let wake = next_send.map_or(stall_at, |t| t.min(stall_at));
        tokio::select! {
            r = stream.ready(interest) => { r.map_err(|e| format!("{}: {e}", w.addr))?; }
            _ = tokio::time::sleep_until(wake.into()) => {
                if !inflight.is_empty() && Instant::now() >= stall_at {
                    return Err(format!("no reply from {} for {} seconds", w.addr, STALL_LIMIT.as_secs()));
                }
            }
        }
    }

    // sends scheduled before the deadline that never went out
    let unsent = match deadline {
        Some(d) if schedule.open_loop() => schedule.due_before(d).saturating_sub(issued),
        _ => 0,
    };
    Ok((sets, gets, unsent))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn closed_loop_times_from_the_send() {
        let start = Instant::now();
        let s = Schedule::new(start, None, 3, 4);
        assert!(!s.open_loop());
        let now = start + 500 * MS;
        assert_eq!(s.send_time(1_000_000, now), Some(now));
        assert_eq!(s.due_before(start + 10_000 * MS), 0);
    }

    #[test]
    fn open_loop_times_from_the_intended_send() {
        let start = Instant::now();
        // 100 req/s over 2 clients: each every 20 ms, the second 10 ms late
        let s = Schedule::new(start, Some(100.0), 1, 2);
        assert_eq!(s.due(0), Some(start + 10 * MS));
        assert_eq!(s.due(3), Some(start + 70 * MS));
        // not due yet: nothing to send
        assert_eq!(s.send_time(3, start + 69 * MS), None);
        assert_eq!(s.send_time(3, start + 70 * MS), Some(start + 70 * MS));
        // sent 430 ms late behind a stall, answered 1 ms after going out:
        // charged 431 ms, not the 1 ms the wire saw
        let sent = start + 500 * MS;
        let since = s.send_time(3, sent).unwrap();
        assert_eq!(since, start + 70 * MS);
        assert_eq!(latency_us(since, sent + MS), 431_000);
        assert_eq!(latency_us(sent, sent), 1);
    }

    #[test]
    fn open_loop_due_counts_add_up_to_the_rate() {
        let start = Instant::now();
        for (rate, clients, secs) in [(100.0, 2, 1), (1000.0, 7, 3), (333.0, 3, 2)] {
            let end = start + Duration::from_secs(secs);
            let due: u64 = (0..clients)
                .map(|i| Schedule::new(start, Some(rate), i, clients).due_before(end))
                .sum();
            let want = rate * secs as f64;
            assert!(
                (due as f64 - want).abs() <= clients as f64,
                "{rate}/s x {secs}s over {clients}: {due} due"
            );
            // each client's count agrees with its own due times
            for i in 0..clients {
                let s = Schedule::new(start, Some(rate), i, clients);
                let n = s.due_before(end);
                assert!(s.due(n - 1).unwrap() < end && s.due(n).unwrap() >= end);
            }
        }
        // 100/s over 2 clients for 1 s: exactly 50 each (0, 20, ..., 980 ms
        // and 10, 30, ..., 990 ms)
        let end = start + 1000 * MS;
        assert_eq!(Schedule::new(start, Some(100.0), 0, 2).due_before(end), 50);
        assert_eq!(Schedule::new(start, Some(100.0), 1, 2).due_before(end), 50);
    }
}
