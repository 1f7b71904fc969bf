//! `magpie bench`: a load generator taking memtier_benchmark's flags, so
//! the same command line measures magpie, Redis and memcached, and its
//! output (table, `--json-out-file`) reads like memtier's.
//!
//! Beyond memtier: `--protocol http`, an open-loop `--rate` that measures
//! latency from the intended send time, `--csv`, and `--compare` which runs
//! one workload against several servers in alternating order and writes a
//! self-contained HTML report. It refuses to run without a bound
//! (`-n` or `--test-time`) and, unless `--allow-remote`, anywhere but
//! loopback.

pub mod keys;
pub mod proto;
pub mod report;
pub mod worker;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use keys::{KeySpace, Pattern};
use proto::Protocol;
use worker::{RunStats, Workload};

/// `magpie bench` flags (memtier_benchmark's names).
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// Server address.
    #[arg(short = 's', long = "server", default_value = "127.0.0.1")]
    pub server: String,

    /// Server port (default: 6379 redis, 11211 memcache_text, 8080 http).
    #[arg(short = 'p', long)]
    pub port: Option<u16>,

    /// Protocol to speak.
    #[arg(short = 'P', long, value_enum, default_value = "redis")]
    pub protocol: Protocol,

    /// Threads.
    #[arg(short = 't', long, default_value_t = 4)]
    pub threads: usize,

    /// Connections per thread.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub clients: usize,

    /// Requests per connection (default 10000 unless --test-time).
    #[arg(short = 'n', long, conflicts_with = "test_time")]
    pub requests: Option<u64>,

    /// Run for this many seconds instead of a request count.
    #[arg(long)]
    pub test_time: Option<u64>,

    /// SET:GET ratio.
    #[arg(long, default_value = "1:10")]
    pub ratio: String,

    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,

    /// Value size in bytes.
    #[arg(short = 'd', long, default_value_t = 32)]
    pub data_size: usize,

    /// Value sizes drawn uniformly from MIN-MAX (overrides -d).
    #[arg(long)]
    pub data_size_range: Option<String>,

    /// SET:GET key patterns: R random, S sequential, G gaussian, Z zipf,
    /// P sequential over each connection's own slice of the range.
    #[arg(long, default_value = "R:R")]
    pub key_pattern: String,

    /// Lowest key number.
    #[arg(long, default_value_t = 0)]
    pub key_minimum: u64,

    /// Highest key number.
    #[arg(long, default_value_t = 10_000_000)]
    pub key_maximum: u64,

    /// Gaussian pattern: standard deviation (default range/6).
    #[arg(long)]
    pub key_stddev: Option<f64>,

    /// Gaussian pattern: centre (default the middle of the range).
    #[arg(long)]
    pub key_median: Option<f64>,

    /// Zipf pattern: exponent, in (0, 5).
    #[arg(long, default_value_t = 1.0)]
    pub key_zipf_exp: f64,

    /// Text before each key number.
    #[arg(long, default_value = "memtier-")]
    pub key_prefix: String,

    /// Open loop: this many requests per second in total, latency measured
    /// from when each request was due.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Redis password (AUTH).
    #[arg(short = 'a', long = "authenticate")]
    pub authenticate: Option<String>,

    /// Redis database (SELECT).
    #[arg(long)]
    pub select_db: Option<u32>,

    /// Seed for keys and sizes (runs are repeatable).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Write results as JSON.
    #[arg(long)]
    pub json_out_file: Option<PathBuf>,

    /// Print the results as JSON on stdout (the same document as
    /// --json-out-file); the header and table then go to stderr.
    #[arg(long)]
    pub json: bool,

    /// Write results as CSV (to stdout when no file is given).
    #[arg(long, num_args = 0..=1, default_missing_value = "-")]
    pub csv: Option<String>,

    /// No progress line.
    #[arg(long)]
    pub hide_progress: bool,

    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,

    /// Compare targets: [name=]host:port[:protocol],... run alternately.
    /// Without a name a target is labelled with the server's own version
    /// (INFO server, memcached `version`) and its address.
    // the brackets are the --help synopsis, not doc links
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_delimiter = ',')]
    pub compare: Vec<String>,

    /// Rounds over the --compare targets (order A B C, C B A, ...).
    #[arg(long, default_value_t = 3)]
    pub compare_rounds: usize,

    /// Where --compare writes its HTML report.
    #[arg(long, default_value = "bench-report.html")]
    pub report_out: PathBuf,
}

/// One server to load.
#[derive(Clone, Debug)]
pub struct Target {
    /// What reports call it: the `name=` given, else the server's version
    /// and address (`redis 7.0.15 127.0.0.1:6380`), else `host:port
    /// protocol`.
    pub label: String,
    /// `host:port protocol`, and the server's version when known.
    pub detail: String,
    /// Resolved address.
    pub addr: SocketAddr,
    /// Protocol to speak to it.
    pub proto: Protocol,
    /// HTTP Host header.
    pub host: String,
}

/// One `--compare` entry, `[name=]host:port[:protocol]`, before resolving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpec {
    /// The label given before `=`, if any.
    pub name: Option<String>,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Protocol (the `--protocol` default when not given).
    pub proto: Protocol,
}

/// Parses one `--compare` entry.
pub fn parse_target(spec: &str, default_proto: Protocol) -> Result<TargetSpec, String> {
    let bad = || format!("invalid --compare target '{spec}' (want [name=]host:port[:protocol])");
    let spec = spec.trim();
    let (name, rest) = match spec.split_once('=') {
        Some((n, r)) if !n.trim().is_empty() => (Some(n.trim().to_string()), r),
        Some(_) => return Err(bad()),
        None => (None, spec),
    };
    let mut parts = rest.split(':');
    let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    let port: u16 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let proto = match parts.next() {
        None => default_proto,
        Some(p) => <Protocol as clap::ValueEnum>::from_str(p, false).map_err(|_| bad())?,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(TargetSpec {
        name,
        host: host.to_string(),
        port,
        proto,
    })
}

/// The server's name and version from its `INFO server` text:
/// `magpie 0.1.0`, `valkey 8.0.1` or `redis 7.0.15`.
pub fn redis_server_version(info: &str) -> Option<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':'))
            .map(str::to_string)
    };
    ["magpie", "valkey", "redis"]
        .iter()
        .find_map(|p| Some(format!("{p} {}", field(&format!("{p}_version"))?)))
}

/// Asks a target what it is (`INFO server` or memcached `version`), for
/// its default label. None when it will not say.
fn identify(t: &Target, auth: Option<&str>) -> Option<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let s = std::net::TcpStream::connect_timeout(&t.addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut w = s.try_clone().ok()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    match t.proto {
        Protocol::Redis => {
            if let Some(pass) = auth {
                let cmd = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{pass}\r\n", pass.len());
                w.write_all(cmd.as_bytes()).ok()?;
                r.read_line(&mut line).ok()?;
                line.clear();
            }
            w.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n").ok()?;
            r.read_line(&mut line).ok()?;
            let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
            let mut body = vec![0; len.min(1 << 20)];
            r.read_exact(&mut body).ok()?;
            redis_server_version(&String::from_utf8_lossy(&body))
        }
        Protocol::MemcacheText => {
            w.write_all(b"version\r\n").ok()?;
            r.read_line(&mut line).ok()?;
            let v = line.trim_end().strip_prefix("VERSION ")?;
            Some(format!("memcached {v}"))
        }
        Protocol::Http => None,
    }
}

/// `magpie bench ...` as it was invoked (program name without its
/// directory), quoted for a POSIX shell where needed.
pub fn command_line<I: IntoIterator<Item = std::ffi::OsString>>(argv: I) -> String {
    let mut words = Vec::new();
    for (i, a) in argv.into_iter().enumerate() {
        let a = a.to_string_lossy().into_owned();
        let a = if i == 0 {
            std::path::Path::new(&a)
                .file_name()
                .map_or(a.clone(), |f| f.to_string_lossy().into_owned())
        } else {
            a
        };
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_./:=,@%+-".contains(c));
        words.push(if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        });
    }
    words.join(" ")
}

fn parse_pair(s: &str, sep: char, what: &str) -> Result<(u64, u64), String> {
    let bad = || format!("invalid {what} '{s}'");
    let (a, b) = s.split_once(sep).ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

/// Resolves `host:port`, insisting on loopback unless allowed.
pub fn resolve(host: &str, port: u16, allow_remote: bool) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            format!(
                "cannot resolve {host}: {}",
                crate::cli::connect_error_text(&e)
            )
        })?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| format!("cannot resolve {host}"))?;
    if !allow_remote {
        if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "refusing to load {host} ({}): not a loopback address (use --allow-remote)",
                a.ip()
            ));
        }
    }
    Ok(first)
}

impl BenchArgs {
    /// Checks the flags and builds the workload for `target`.
    pub fn workload(&self, target: &Target) -> Result<Workload, String> {
        if self.threads == 0 || self.clients == 0 {
            return Err("--threads and --clients must be at least 1".into());
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        let (requests, test_time) = match (self.requests, self.test_time) {
            (Some(0), _) => return Err("--requests must be at least 1".into()),
            (_, Some(0)) => return Err("--test-time must be at least 1 second".into()),
            (Some(n), None) => (Some(n), None),
            (None, Some(t)) => (None, Some(Duration::from_secs(t))),
            (None, None) => (Some(10_000), None),
            (Some(_), Some(_)) => {
                return Err("--requests and --test-time exclude each other".into())
            }
        };
        let ratio = parse_pair(&self.ratio, ':', "--ratio")?;
        if ratio.0 + ratio.1 == 0 {
            return Err("--ratio needs at least one SET or GET".into());
        }
        let sizes = match &self.data_size_range {
            Some(r) => {
                let (lo, hi) = parse_pair(r, '-', "--data-size-range")?;
                if lo == 0 || lo > hi {
                    return Err(format!("invalid --data-size-range '{r}'"));
                }
                (lo as usize, hi as usize)
            }
            None => (self.data_size, self.data_size),
        };
        if sizes.1 > 256 * 1024 * 1024 {
            return Err("values larger than 256 MiB are not supported".into());
        }
        let bad_pattern = || format!("invalid --key-pattern '{}'", self.key_pattern);
        let mut letters = self.key_pattern.split(':');
        let (Some(sp), Some(gp), None) = (letters.next(), letters.next(), letters.next()) else {
            return Err(bad_pattern());
        };
        let one = |s: &str| {
            let mut c = s.chars();
            match (c.next(), c.next()) {
                (Some(l), None) => Pattern::from_letter(l).ok_or_else(bad_pattern),
                _ => Err(bad_pattern()),
            }
        };
        let (set_pattern, get_pattern) = (one(sp)?, one(gp)?);
        if self.key_minimum > self.key_maximum {
            return Err("--key-minimum must not exceed --key-maximum".into());
        }
        if !(self.key_zipf_exp > 0.0 && self.key_zipf_exp < 5.0) {
            return Err("--key-zipf-exp must be in (0, 5)".into());
        }
        let span = (self.key_maximum - self.key_minimum) as f64;
        let stddev = self.key_stddev.unwrap_or(span / 6.0);
        if stddev.is_nan() || stddev < 0.0 {
            return Err("--key-stddev must be positive".into());
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err("--rate must be a positive number of requests per second".into());
            }
        }
        Ok(Workload {
            proto: target.proto,
            addr: target.addr,
            host_header: target.host.clone(),
            threads: self.threads,
            clients: self.clients,
            requests,
            test_time,
            ratio,
            pipeline: self.pipeline,
            sizes,
            set_pattern,
            get_pattern,
            space: KeySpace {
                min: self.key_minimum,
                max: self.key_maximum,
                median: self
                    .key_median
                    .unwrap_or((self.key_minimum as f64 + self.key_maximum as f64) / 2.0),
                stddev,
                zipf_exp: self.key_zipf_exp,
            },
            prefix: self.key_prefix.clone(),
            rate: self.rate,
            auth: self.authenticate.clone(),
            db: self.select_db,
            seed: self.seed,
            progress: !self.hide_progress,
        })
    }

    fn main_target(&self) -> Result<Target, String> {
        let port = self.port.unwrap_or(self.protocol.default_port());
        Ok(Target {
            label: format!("{}:{port}", self.server),
            detail: format!("{}:{port} {}", self.server, self.protocol.name()),
            addr: resolve(&self.server, port, self.allow_remote)?,
            proto: self.protocol,
            host: format!("{}:{port}", self.server),
        })
    }

    /// Parses and resolves `--compare` entries. Labels are the given names,
    /// else `host:port protocol` until `label_targets` asks the servers.
    pub fn compare_targets(&self) -> Result<Vec<Target>, String> {
        self.compare
            .iter()
            .map(|spec| {
                let t = parse_target(spec, self.protocol)?;
                let address = format!("{}:{}", t.host, t.port);
                Ok(Target {
                    label: t
                        .name
                        .unwrap_or_else(|| format!("{address} {}", t.proto.name())),
                    detail: format!("{address} {}", t.proto.name()),
                    addr: resolve(&t.host, t.port, self.allow_remote)?,
                    proto: t.proto,
                    host: address,
                })
            })
            .collect()
    }
}

/// Gives unnamed `--compare` targets the server's version as label
/// (`redis 7.0.15 127.0.0.1:6380`), adds the version to every target's
/// detail, and insists the labels differ.
fn label_targets(args: &BenchArgs, targets: &mut [Target]) -> Result<(), String> {
    for (t, spec) in targets.iter_mut().zip(&args.compare) {
        let named = parse_target(spec, args.protocol)?.name.is_some();
        if let Some(v) = identify(t, args.authenticate.as_deref()) {
            if !named {
                t.label = format!("{v} {}", t.host);
            }
            t.detail = format!("{}, {v}", t.detail);
        }
    }
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].iter().any(|o| o.label == t.label) {
            return Err(format!(
                "two --compare targets are labelled '{}': name them (name=host:port)",
                t.label
            ));
        }
    }
    Ok(())
}

/// Checks the server answers before starting threads, for a clear message.
fn probe(t: &Target) -> Result<(), String> {
    std::net::TcpStream::connect_timeout(&t.addr, Duration::from_secs(5))
        .map(drop)
        .map_err(|e| {
            format!(
                "Could not connect to {}: {}",
                t.addr,
                crate::cli::connect_error_text(&e)
            )
        })
}

/// Where the human-readable output goes: stdout, or stderr when stdout
/// carries the JSON document (`--json`).
struct Out {
    to_stderr: bool,
}

impl Out {
    fn say(&self, text: &str) {
        if self.to_stderr {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
}

fn header(w: &Workload) -> String {
    let mut s = format!(
        "{:<9} Threads\n{:<9} Connections per thread\n",
        w.threads, w.clients
    );
    match (w.requests, w.test_time) {
        (Some(n), _) => s += &format!("{n:<9} Requests per client\n"),
        (_, Some(t)) => s += &format!("{:<9} Seconds\n", t.as_secs()),
        _ => {}
    }
    if let Some(r) = w.rate {
        s += &format!("{r:<9} Requests per second (open loop)\n");
    }
    s + "\n"
}

/// Runs `magpie bench`; returns the exit code.
pub fn run(args: BenchArgs) -> i32 {
    match run_inner(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("magpie bench: {e}");
            1
        }
    }
}

/// Writes the JSON document to `--json-out-file` and/or stdout (`--json`).
fn emit_json(args: &BenchArgs, doc: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())?;
    if let Some(path) = &args.json_out_file {
        write_file(path, text.as_bytes())?;
    }
    if args.json {
        println!("{text}");
    }
    Ok(())
}

fn emit_csv(args: &BenchArgs, rows: &[(&str, &RunStats)]) -> Result<(), String> {
    if let Some(csv) = &args.csv {
        let text = report::csv(rows);
        if csv == "-" {
            print!("{text}");
        } else {
            write_file(csv.as_ref(), text.as_bytes())?;
        }
    }
    Ok(())
}

fn run_inner(args: &BenchArgs) -> Result<(), String> {
    if args.json && args.csv.as_deref() == Some("-") {
        return Err("--json and --csv without a file both want stdout: give --csv a file".into());
    }
    if !args.compare.is_empty() {
        return run_compare(args);
    }
    let out = Out {
        to_stderr: args.json,
    };
    let target = args.main_target()?;
    let w = args.workload(&target)?;
    probe(&target)?;
    out.say(&header(&w));
    let stats = worker::run(&w)?;
    out.say(&report::table(&stats));
    if stats.unsent > 0 {
        out.say(&format!(
            "{} requests were due but not sent before the end (pipeline full): the server could not keep up with --rate\n",
            stats.unsent
        ));
    }
    let doc = serde_json::json!({
        "configuration": report::config_json(args, &w),
        "ALL STATS": report::stats_json(&stats),
    });
    emit_json(args, &doc)?;
    emit_csv(args, &[(target.label.as_str(), &stats)])
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The order targets run in for `round`: forward, then backward, ... so
/// no target always runs first (warm caches, thermal state).
pub fn round_order(n: usize, round: usize) -> Vec<usize> {
    if round & 1 == 0 {
        (0..n).collect()
    } else {
        (0..n).rev().collect()
    }
}

fn run_compare(args: &BenchArgs) -> Result<(), String> {
    let out = Out {
        to_stderr: args.json,
    };
    let mut targets = args.compare_targets()?;
    if args.compare_rounds == 0 {
        return Err("--compare-rounds must be at least 1".into());
    }
    let workloads = targets
        .iter()
        .map(|t| args.workload(t))
        .collect::<Result<Vec<_>, _>>()?;
    for t in &targets {
        probe(t)?;
    }
    label_targets(args, &mut targets)?;
    out.say(&header(&workloads[0]));
    let mut runs: Vec<Vec<RunStats>> = vec![Vec::new(); targets.len()];
    for round in 0..args.compare_rounds {
        for i in round_order(targets.len(), round) {
            eprintln!(
                "round {}/{}: {} ({})",
                round + 1,
                args.compare_rounds,
                targets[i].label,
                targets[i].detail
            );
            let stats = worker::run(&workloads[i])?;
            runs[i].push(stats);
        }
    }
    let summary: Vec<report::TargetSummary> = targets
        .iter()
        .zip(&runs)
        .map(|(t, r)| report::TargetSummary::new(&t.label, &t.detail, r))
        .collect();
    out.say(&report::compare_table(&summary));
    let command = command_line(std::env::args_os());
    let html = report::html(args, &workloads[0], &summary, &command);
    write_file(&args.report_out, html.as_bytes())?;
    out.say(&format!(
        "report written to {}\n",
        args.report_out.display()
    ));
    let doc = serde_json::json!({
        "configuration": report::config_json(args, &workloads[0]),
        "command": command,
        "compare": summary.iter().map(report::TargetSummary::json).collect::<Vec<_>>(),
    });
    emit_json(args, &doc)?;
    let rows: Vec<(&str, &RunStats)> = summary
        .iter()
        .map(|s| (s.label.as_str(), &s.merged))
        .collect();
    emit_csv(args, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternating_order() {
        assert_eq!(round_order(3, 0), [0, 1, 2]);
        assert_eq!(round_order(3, 1), [2, 1, 0]);
        assert_eq!(round_order(3, 2), [0, 1, 2]);
    }

    #[test]
    fn refuses_remote_targets() {
        assert!(resolve("127.0.0.1", 1, false).is_ok());
        assert!(resolve("localhost", 1, false).is_ok());
        let e = resolve("192.0.2.1", 1, false).unwrap_err();
        assert!(e.contains("--allow-remote"), "{e}");
        assert!(resolve("192.0.2.1", 1, true).is_ok());
    }

    #[test]
    fn compare_target_syntax() {
        let t = parse_target("magpie=127.0.0.1:6379", Protocol::Redis).unwrap();
        assert_eq!(t.name.as_deref(), Some("magpie"));
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 6379));
        assert_eq!(t.proto, Protocol::Redis);
        let t = parse_target(" localhost:11211:memcache_text", Protocol::Redis).unwrap();
        assert_eq!(t.name, None);
        assert_eq!(t.proto, Protocol::MemcacheText);
        let t = parse_target("my mc=localhost:1:memcache_text", Protocol::Redis).unwrap();
        assert_eq!(t.name.as_deref(), Some("my mc"));
        for bad in ["=h:1", "h", "h:x", "h:1:gopher", "h:1:redis:2", "n=:1"] {
            assert!(parse_target(bad, Protocol::Redis).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_version_from_info() {
        let redis = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n";
        assert_eq!(redis_server_version(redis).as_deref(), Some("redis 7.0.15"));
        let magpie = "# Server\r\nredis_version:7.2.0\r\nmagpie_version:0.1.0\r\n";
        assert_eq!(
            redis_server_version(magpie).as_deref(),
            Some("magpie 0.1.0")
        );
        assert_eq!(redis_server_version("# Server\r\nos:Linux\r\n"), None);
    }

    #[test]
    fn command_line_is_quoted_for_a_shell() {
        let argv = [
            "/x/target/release/magpie",
            "bench",
            "--compare",
            "a=127.0.0.1:1,b c=h:2",
            "it's",
        ]
        .map(std::ffi::OsString::from);
        assert_eq!(
            command_line(argv),
            "magpie bench --compare 'a=127.0.0.1:1,b c=h:2' 'it'\\''s'"
        );
    }
}
