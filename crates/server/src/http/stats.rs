//! Observability endpoints: `/v1/stats` (JSON) and `/metrics` (Prometheus
//! text exposition format 0.0.4), both computed from the same `Snapshot`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Response, StatusCode};
use serde_json::json;

use super::HttpState;
use crate::stats::{bucket_upper_ns, CommandReading, Door, BUCKETS};

/// One consistent-enough reading of the server's figures.
struct Snapshot {
    uptime_seconds: u64,
    /// (db index, keys, keys with a TTL) for every non-empty database.
    keyspace: Vec<(usize, usize, usize)>,
    connected_clients: usize,
    connections_received: u64,
    rejected_connections: u64,
    commands_processed: u64,
    keyspace_hits: u64,
    keyspace_misses: u64,
    expired_keys: u64,
    evicted_keys: u64,
    net_input_bytes: u64,
    net_output_bytes: u64,
    entries_bytes: usize,
    tables_bytes: usize,
    /// The memory limit (0 = none) and its policy.
    maxmemory_bytes: usize,
    maxmemory_policy: &'static str,
    /// jemalloc's allocated and resident bytes (None if unavailable).
    allocated_bytes: Option<usize>,
    resident_bytes: Option<usize>,
    http_responses: [u64; 5],
    /// Per-command figures of each front door that ran any.
    commands: Vec<(Door, Vec<CommandReading>)>,
    /// The log's state, None when `--ephemeral`.
    persistence: Option<LogState>,
}

/// What `/v1/stats` and `/metrics` say about the append-only log.
struct LogState {
    ok: bool,
    log_bytes: u64,
    fsync: String,
}

impl Snapshot {
    fn take(st: &HttpState) -> Snapshot {
        let shared = &st.shared;
        let engine = &shared.engine;
        let c = &shared.counters;
        let keyspace = (0..engine.databases())
            .filter_map(|db| {
                let info = engine.db_info(db);
                (info.keys > 0 || db == 0).then_some((db, info.keys, info.expires))
            })
            .collect();
        let mem = engine.memory();
        let (allocated_bytes, resident_bytes) = match tikv_jemalloc_ctl::epoch::advance() {
            Ok(_) => (
                tikv_jemalloc_ctl::stats::allocated::read().ok(),
                tikv_jemalloc_ctl::stats::resident::read().ok(),
            ),
            Err(_) => (None, None),
        };
        Snapshot {
            uptime_seconds: shared.started.elapsed().as_secs(),
            keyspace,
            connected_clients: shared.connected.load(Ordering::Relaxed),
            connections_received: c.connections_received.load(Ordering::Relaxed),
            rejected_connections: c.rejected_connections.load(Ordering::Relaxed),
            commands_processed: c.commands_processed.load(Ordering::Relaxed),
            keyspace_hits: c.keyspace_hits.load(Ordering::Relaxed),
            keyspace_misses: c.keyspace_misses.load(Ordering::Relaxed),
            expired_keys: engine.stats().expired_keys.load(Ordering::Relaxed),
            evicted_keys: engine.stats().evicted_keys.load(Ordering::Relaxed),
            net_input_bytes: c.net_input_bytes.load(Ordering::Relaxed),
            net_output_bytes: c.net_output_bytes.load(Ordering::Relaxed),
            entries_bytes: mem.entries,
            tables_bytes: mem.tables,
            maxmemory_bytes: engine.memory_limit().max_bytes,
            maxmemory_policy: engine.memory_limit().policy.name(),
            allocated_bytes,
            resident_bytes,
            http_responses: st.responses(),
            commands: Door::ALL
                .iter()
                .map(|&d| (d, shared.command_stats.read(d)))
                .collect(),
            persistence: shared.persist.get().map(|p| LogState {
                ok: p.is_ok(),
                log_bytes: p.log_bytes(),
                fsync: p.policy().to_string(),
            }),
        }
    }
}

/// `GET /v1/stats`: keys per database, counters, memory and uptime as JSON.
pub async fn stats(State(st): State<Arc<HttpState>>) -> Response<Body> {
    let s = Snapshot::take(&st);
    let keyspace: serde_json::Map<String, serde_json::Value> = s
        .keyspace
        .iter()
        .map(|&(db, keys, expires)| {
            (
                format!("db{db}"),
                json!({ "keys": keys, "expires": expires }),
            )
        })
        .collect();
    let [r1, r2, r3, r4, r5] = s.http_responses;
    let body = json!({
        "uptime_seconds": s.uptime_seconds,
        "keyspace": keyspace,
        "connected_clients": s.connected_clients,
        "counters": {
            "connections_received": s.connections_received,
            "rejected_connections": s.rejected_connections,
            "commands_processed": s.commands_processed,
            "keyspace_hits": s.keyspace_hits,
            "keyspace_misses": s.keyspace_misses,
            "expired_keys": s.expired_keys,
            "evicted_keys": s.evicted_keys,
            "net_input_bytes": s.net_input_bytes,
            "net_output_bytes": s.net_output_bytes,
        },
        "memory": {
            "entries_bytes": s.entries_bytes,
            "tables_bytes": s.tables_bytes,
            "maxmemory_bytes": s.maxmemory_bytes,
            "maxmemory_policy": s.maxmemory_policy,
            "allocated_bytes": s.allocated_bytes,
            "resident_bytes": s.resident_bytes,
        },
        "http_responses": { "1xx": r1, "2xx": r2, "3xx": r3, "4xx": r4, "5xx": r5 },
        "commands": commands_json(&s.commands),
        "persistence": match &s.persistence {
            None => json!({ "enabled": false }),
            Some(p) => json!({
                "enabled": true,
                "ok": p.ok,
                "log_bytes": p.log_bytes,
                "appendfsync": p.fsync,
            }),
        },
    });
    super::json_response(StatusCode::OK, body)
}

/// `{door: {command: {calls, failed, rejected, usec, p50_us, p99_us,
/// p999_us}}}` for the commands that ran.
fn commands_json(doors: &[(Door, Vec<CommandReading>)]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (door, readings) in doors {
        let mut cmds = serde_json::Map::new();
        for c in readings {
            let us = |q: f64| c.quantile_ns(q) as f64 / 1000.0;
            cmds.insert(
                c.name.to_owned(),
                json!({
                    "calls": c.calls,
                    "failed": c.failed,
                    "rejected": c.rejected,
                    "usec": c.nanos / 1000,
                    "p50_us": us(0.5),
                    "p99_us": us(0.99),
                    "p999_us": us(0.999),
                }),
            );
        }
        out.insert(door.label().to_owned(), cmds.into());
    }
    out.into()
}

/// Appends the per-command families: call, failure and rejection counters
/// and the latency histogram (bounds at each power of two of nanoseconds).
fn command_families(out: &mut String, doors: &[(Door, Vec<CommandReading>)]) {
    let labelled = |f: &dyn Fn(&CommandReading) -> u64| {
        doors
            .iter()
            .flat_map(|(d, cs)| {
                cs.iter().map(move |c| {
                    (
                        format!("door=\"{}\",command=\"{}\"", d.label(), c.name),
                        f(c),
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    family(
        out,
        "magpie_commands_total",
        "counter",
        "Commands run, by front door and command.",
        &labelled(&|c| c.calls),
    );
    family(
        out,
        "magpie_command_failures_total",
        "counter",
        "Commands that ran and answered with an error.",
        &labelled(&|c| c.failed),
    );
    family(
        out,
        "magpie_command_rejections_total",
        "counter",
        "Commands refused before running (arity, authentication, a failing log).",
        &labelled(&|c| c.rejected),
    );
    let name = "magpie_command_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time to parse and run a command and encode its reply."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (d, cs) in doors {
        for c in cs.iter().filter(|c| c.calls > 0) {
            let labels = format!("door=\"{}\",command=\"{}\"", d.label(), c.name);
            let mut cumulative = 0;
            for (i, n) in c.hist.iter().enumerate().take(BUCKETS - 1) {
                cumulative += n;
                let upper = bucket_upper_ns(i);
                if upper.is_power_of_two() {
                    let le = upper as f64 / 1e9;
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
                }
            }
            let count: u64 = c.hist.iter().sum();
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", c.nanos as f64 / 1e9);
            let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        }
    }
}

/// Appends one metric family: HELP and TYPE lines, then `samples` as
/// (label set without braces, value) pairs.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// `GET /metrics`: the same figures in the Prometheus text format.
pub async fn metrics(State(st): State<Arc<HttpState>>) -> Response<Body> {
    let s = Snapshot::take(&st);
    let one = |v: u64| vec![(String::new(), v)];
    let mut out = String::with_capacity(2048);
    family(
        &mut out,
        "magpie_keys",
        "gauge",
        "Keys stored, per database (expired keys count until collected).",
        &s.keyspace
            .iter()
            .map(|&(db, keys, _)| (format!("db=\"{db}\""), keys as u64))
            .collect::<Vec<_>>(),
    );
    family(
        &mut out,
        "magpie_keys_with_expiry",
        "gauge",
        "Keys with a TTL, per database.",
        &s.keyspace
            .iter()
            .map(|&(db, _, e)| (format!("db=\"{db}\""), e as u64))
            .collect::<Vec<_>>(),
    );
    family(
        &mut out,
        "magpie_commands_processed_total",
        "counter",
        "Commands executed by the RESP and memcached front doors.",
        &one(s.commands_processed),
    );
    family(
        &mut out,
        "magpie_keyspace_hits_total",
        "counter",
        "Key reads that found a value.",
        &one(s.keyspace_hits),
    );
    family(
        &mut out,
        "magpie_keyspace_misses_total",
        "counter",
        "Key reads that found nothing.",
        &one(s.keyspace_misses),
    );
    family(
        &mut out,
        "magpie_expired_keys_total",
        "counter",
        "Keys removed because their TTL passed.",
        &one(s.expired_keys),
    );
    family(
        &mut out,
        "magpie_evicted_keys_total",
        "counter",
        "Keys removed to stay under the memory limit (maxmemory).",
        &one(s.evicted_keys),
    );
    family(
        &mut out,
        "magpie_maxmemory_bytes",
        "gauge",
        "The keyspace's memory limit (entries and tables, as magpie_memory_bytes counts them); 0 = none.",
        &one(s.maxmemory_bytes as u64),
    );
    family(
        &mut out,
        "magpie_connected_clients",
        "gauge",
        "Client connections open now (RESP and memcached).",
        &one(s.connected_clients as u64),
    );
    family(
        &mut out,
        "magpie_connections_received_total",
        "counter",
        "Client connections accepted since start.",
        &one(s.connections_received),
    );
    family(
        &mut out,
        "magpie_rejected_connections_total",
        "counter",
        "Client connections refused because of maxclients.",
        &one(s.rejected_connections),
    );
    family(
        &mut out,
        "magpie_net_input_bytes_total",
        "counter",
        "Bytes read from RESP and memcached clients.",
        &one(s.net_input_bytes),
    );
    family(
        &mut out,
        "magpie_net_output_bytes_total",
        "counter",
        "Bytes written to RESP and memcached clients.",
        &one(s.net_output_bytes),
    );
    let mut memory = vec![
        ("kind=\"entries\"".to_owned(), s.entries_bytes as u64),
        ("kind=\"tables\"".to_owned(), s.tables_bytes as u64),
    ];
    if let Some(a) = s.allocated_bytes {
        memory.push(("kind=\"allocated\"".to_owned(), a as u64));
    }
    if let Some(r) = s.resident_bytes {
        memory.push(("kind=\"resident\"".to_owned(), r as u64));
    }
    family(
        &mut out,
        "magpie_memory_bytes",
        "gauge",
        "Memory: keyspace entries and tables as the engine counts them; allocated and resident as jemalloc reports.",
        &memory,
    );
    family(
        &mut out,
        "magpie_http_responses_total",
        "counter",
        "HTTP responses sent, by status class.",
        &s.http_responses
            .iter()
            .enumerate()
            .map(|(i, &n)| (format!("class=\"{}xx\"", i + 1), n))
            .collect::<Vec<_>>(),
    );
    command_families(&mut out, &s.commands);
    if let Some(p) = &s.persistence {
        family(
            &mut out,
            "magpie_log_ok",
            "gauge",
            "1 while the append-only log can be written, 0 while writes are refused.",
            &[(format!("appendfsync=\"{}\"", p.fsync), p.ok as u64)],
        );
        family(
            &mut out,
            "magpie_log_bytes",
            "gauge",
            "Bytes of the live log segments.",
            &one(p.log_bytes),
        );
    }
    family(
        &mut out,
        "magpie_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &one(s.uptime_seconds),
    );
    let mut res = Response::new(Body::from(out));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
