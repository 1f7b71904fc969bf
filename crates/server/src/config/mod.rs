//! `magpie serve` settings: command-line flags (Redis's names where Redis
//! has one), each also readable from a `MAGPIE_*` environment variable.

pub mod file;

use std::path::PathBuf;

use clap::Args;
use magpie_engine::EvictionPolicy;
use magpie_persist::FsyncPolicy;

use crate::pubsub::OutputLimit;
use crate::tls::{AuthClients, TlsSettings};

/// Everything `magpie serve` can be told.
#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "MAGPIE_BIND")]
    pub bind: String,

    /// RESP (Redis protocol) port; 0 turns the listener off.
    #[arg(long, default_value_t = 6379, env = "MAGPIE_PORT")]
    pub port: u16,

    /// memcached protocol port (database 0 of the keyspace); 0 turns the
    /// listener off.
    #[arg(long, default_value_t = 11211, env = "MAGPIE_MEMCACHE_PORT")]
    pub memcache_port: u16,

    /// Largest memcached item in bytes (memcached `-I`): header, key and
    /// value together, counted as memcached counts them.
    #[arg(long, default_value_t = 1024 * 1024, env = "MAGPIE_MEMCACHE_MAX_ITEM_SIZE")]
    pub memcache_max_item_size: usize,

    /// Most simultaneous client connections; more are refused with
    /// `ERR max number of clients reached`.
    #[arg(long, default_value_t = 10000, env = "MAGPIE_MAXCLIENTS")]
    pub maxclients: usize,

    /// The password of the ACL user `default` (Redis `requirepass`): with
    /// it, every door asks for credentials (RESP `AUTH <password>`,
    /// memcached's auth `set`, HTTP Basic or Bearer). See docs/security.md.
    #[arg(long, env = "MAGPIE_REQUIREPASS")]
    pub requirepass: Option<String>,

    /// Close a client of the RESP or memcached door after this many seconds
    /// without a request (Redis `timeout`; 0 = never).
    #[arg(long, default_value_t = 0, env = "MAGPIE_TIMEOUT")]
    pub timeout: u64,

    /// Redis's protected mode (`yes` or `no`): while the ACL user `default`
    /// has no password, clients from addresses other than loopback are
    /// refused on every door (RESP's `-DENIED` text, memcached closes, HTTP
    /// 403). `CONFIG SET protected-mode` changes it while running.
    #[arg(long, default_value = "yes", value_parser = yes_no, action = clap::ArgAction::Set, env = "MAGPIE_PROTECTED_MODE")]
    pub protected_mode: bool,

    /// ACL users file in Redis 7.0's format (`user <name> <rules...>` lines),
    /// loaded at start and by `ACL LOAD`, written by `ACL SAVE`.
    #[arg(long, value_name = "PATH", env = "MAGPIE_ACLFILE")]
    pub aclfile: Option<PathBuf>,

    /// Who may read `/metrics` and `/dashboard` on the HTTP door without
    /// credentials: `loopback` (clients on 127.0.0.1/::1; others must
    /// authenticate when a password is set), `open` (anyone) or
    /// `protected` (everyone authenticates when a password is set).
    #[arg(long, value_enum, default_value_t = ObservabilityAccess::Loopback, env = "MAGPIE_HTTP_METRICS_ACCESS")]
    pub http_metrics_access: ObservabilityAccess,

    /// Number of logical databases (SELECT 0..N-1).
    #[arg(long, default_value_t = 16, env = "MAGPIE_DATABASES")]
    pub databases: usize,

    /// Shards per database (power of two; default 4 x cores, at least 8).
    #[arg(long, env = "MAGPIE_SHARDS")]
    pub shards: Option<usize>,

    /// Largest bulk argument in bytes (Redis `proto-max-bulk-len`).
    #[arg(long, default_value_t = 512 * 1024 * 1024, env = "MAGPIE_PROTO_MAX_BULK_LEN")]
    pub proto_max_bulk_len: usize,

    /// Most arguments in one request.
    #[arg(long, default_value_t = i32::MAX as usize, env = "MAGPIE_MAX_MULTIBULK_LEN")]
    pub max_multibulk_len: usize,

    /// Longest inline request line (and `*N`/`$N` header line) in bytes.
    #[arg(long, default_value_t = 64 * 1024, env = "MAGPIE_MAX_INLINE_LEN")]
    pub max_inline_len: usize,

    /// Most bytes buffered from one client before it is disconnected
    /// (Redis `client-query-buffer-limit`).
    #[arg(long, default_value_t = 1024 * 1024 * 1024, env = "MAGPIE_CLIENT_QUERY_BUFFER_LIMIT")]
    pub client_query_buffer_limit: usize,

    /// When a subscriber that does not read is disconnected (Redis
    /// `client-output-buffer-limit` for the `pubsub` class): `<hard>
    /// <soft> <soft-seconds>`, closed once its unsent messages reach
    /// `hard` bytes or stay at `soft` bytes for over `soft-seconds`; a byte
    /// limit of 0 is none. Units as for `--maxmemory`.
    #[arg(long, default_value = "32mb 8mb 60", value_parser = pubsub_limit_value, env = "MAGPIE_CLIENT_OUTPUT_BUFFER_LIMIT_PUBSUB")]
    pub client_output_buffer_limit_pubsub: OutputLimit,

    /// Active expiry cycles per second (Redis `hz`).
    #[arg(long, default_value_t = 10, env = "MAGPIE_HZ")]
    pub hz: u32,

    /// Memory limit of the keyspace (Redis `maxmemory`): bytes, or with a
    /// unit as Redis reads it (`100mb`, `2gb`; `k`/`m`/`g` are powers of
    /// 1000, `kb`/`mb`/`gb` of 1024). Counted over keys, values and their
    /// hash tables; 0 means no limit. See `--maxmemory-policy`.
    #[arg(long, default_value = "0", value_parser = memory_value, env = "MAGPIE_MAXMEMORY")]
    pub maxmemory: u64,

    /// What goes when a write finds the keyspace over `--maxmemory`:
    /// `noeviction` (refuse the write), `allkeys-lru` (memcached's way),
    /// `allkeys-random`, `volatile-lru`, `volatile-random` or
    /// `volatile-ttl` (only keys with a TTL).
    #[arg(long, default_value = "noeviction", value_parser = eviction_policy, env = "MAGPIE_MAXMEMORY_POLICY")]
    pub maxmemory_policy: EvictionPolicy,

    /// Keys examined per eviction (Redis `maxmemory-samples`, 1 to 64):
    /// more is closer to exact LRU and costs more per eviction.
    #[arg(long, default_value_t = magpie_engine::DEFAULT_SAMPLES, env = "MAGPIE_MAXMEMORY_SAMPLES")]
    pub maxmemory_samples: usize,

    /// Most tags one key may carry (1 to 65535; see docs/tags.md).
    #[arg(long, default_value_t = magpie_engine::tags::DEFAULT_MAX_TAGS_PER_KEY, env = "MAGPIE_MAX_TAGS_PER_KEY")]
    pub max_tags_per_key: usize,

    /// Longest tag in bytes, and longest prefix INVALIDATE PREFIX takes
    /// (1 to 1048576).
    #[arg(long, default_value_t = magpie_engine::tags::DEFAULT_MAX_TAG_LEN, env = "MAGPIE_MAX_TAG_LEN")]
    pub max_tag_len: usize,

    /// Worker threads (default: one per core).
    #[arg(long, env = "MAGPIE_THREADS")]
    pub threads: Option<usize>,

    /// Data directory for the log and snapshots (see docs/persistence.md).
    #[arg(long, default_value = "./magpie-data", env = "MAGPIE_DIR")]
    pub dir: PathBuf,

    /// When the log is fsynced: `always` (before each reply), `everysec`
    /// or `no` (Redis `appendfsync`).
    #[arg(long, default_value = "everysec", env = "MAGPIE_APPENDFSYNC")]
    pub appendfsync: FsyncPolicy,

    /// Keep nothing on disk: no data directory, no log.
    #[arg(long, env = "MAGPIE_EPHEMERAL")]
    pub ephemeral: bool,

    /// Start even if the log is corrupt, truncating it at the first bad
    /// record (the records after it are lost).
    #[arg(long)]
    pub repair: bool,

    /// Compact the log only once it is at least this many bytes...
    #[arg(long, default_value_t = 64 * 1024 * 1024, env = "MAGPIE_COMPACT_MIN_SIZE")]
    pub compact_min_size: u64,

    /// ...and at least this multiple of the last snapshot's size (Redis
    /// `auto-aof-rewrite-percentage` / 100).
    #[arg(long, default_value_t = 1.0, env = "MAGPIE_COMPACT_RATIO")]
    pub compact_ratio: f64,

    /// HTTP/JSON port; 0 turns the listener off.
    #[arg(long, default_value_t = 8080, env = "MAGPIE_HTTP_PORT")]
    pub http_port: u16,

    /// Longest key (in bytes, after percent-decoding) accepted in an HTTP
    /// path; longer keys get 414. At most 21000, so that even a fully
    /// percent-encoded key fits hyper's 65534-byte request-target limit.
    #[arg(long, default_value_t = 16 * 1024, env = "MAGPIE_HTTP_MAX_KEY_LEN")]
    pub http_max_key_len: usize,

    /// Commands taking at least this many microseconds go to the slow log
    /// (Redis `slowlog-log-slower-than`; negative turns it off, 0 logs every
    /// command). Read with `SLOWLOG GET`.
    #[arg(
        long,
        default_value_t = 10000,
        allow_negative_numbers = true,
        env = "MAGPIE_SLOWLOG_LOG_SLOWER_THAN"
    )]
    pub slowlog_log_slower_than: i64,

    /// Most entries the slow log keeps (Redis `slowlog-max-len`).
    #[arg(long, default_value_t = 128, env = "MAGPIE_SLOWLOG_MAX_LEN")]
    pub slowlog_max_len: usize,

    /// Write one RESP or memcached command in this many as a log line
    /// (target `magpie::commands`); 0 turns the sampled log off.
    #[arg(long, default_value_t = 0, env = "MAGPIE_COMMAND_LOG_SAMPLE")]
    pub command_log_sample: u64,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = crate::logging::LogFormat::Logfmt, env = "MAGPIE_LOG_FORMAT")]
    pub log_format: crate::logging::LogFormat,

    /// Write log lines to this file instead of stderr (its directory must
    /// exist). With `--log-rotation`, the file name gets a date suffix
    /// (`magpie.log.2026-12-02`) and a new file starts each period.
    #[arg(long, value_name = "PATH", env = "MAGPIE_LOG_FILE")]
    pub log_file: Option<PathBuf>,

    /// When `--log-file` starts a new file.
    #[arg(long, value_enum, default_value_t = crate::logging::LogRotation::Never, env = "MAGPIE_LOG_ROTATION")]
    pub log_rotation: crate::logging::LogRotation,

    /// Rotated log files to keep (the oldest are deleted); 0 keeps all.
    #[arg(long, default_value_t = 0, env = "MAGPIE_LOG_MAX_FILES")]
    pub log_max_files: usize,

    /// RESP over TLS port (Redis `tls-port`); 0 (the default) turns it off.
    /// Needs `--tls-cert-file` and `--tls-key-file`.
    #[arg(long, default_value_t = 0, env = "MAGPIE_TLS_PORT")]
    pub tls_port: u16,

    /// memcached protocol over TLS port; 0 (the default) turns it off.
    #[arg(long, default_value_t = 0, env = "MAGPIE_TLS_MEMCACHE_PORT")]
    pub tls_memcache_port: u16,

    /// HTTPS port of the HTTP/JSON door; 0 (the default) turns it off.
    #[arg(long, default_value_t = 0, env = "MAGPIE_TLS_HTTP_PORT")]
    pub tls_http_port: u16,

    /// PEM certificate chain the TLS ports present, server certificate
    /// first (Redis `tls-cert-file`). Reread on SIGHUP and CONFIG SET.
    #[arg(long, value_name = "PATH", env = "MAGPIE_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of `--tls-cert-file` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PATH", env = "MAGPIE_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// PEM file of the CAs whose client certificates are trusted (Redis
    /// `tls-ca-cert-file`).
    #[arg(long, value_name = "PATH", env = "MAGPIE_TLS_CA_CERT_FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,

    /// A directory of PEM files with more trusted client CAs (Redis
    /// `tls-ca-cert-dir`; every file is read, names need not be hashes).
    #[arg(long, value_name = "PATH", env = "MAGPIE_TLS_CA_CERT_DIR")]
    pub tls_ca_cert_dir: Option<PathBuf>,

    /// Whether TLS clients must present a certificate signed by a trusted
    /// CA: `yes` (Redis's default), `no`, or `optional` (checked if sent).
    #[arg(long, value_enum, default_value_t = AuthClients::Yes, env = "MAGPIE_TLS_AUTH_CLIENTS")]
    pub tls_auth_clients: AuthClients,

    /// TLS versions offered, space-separated: `"TLSv1.2 TLSv1.3"` (the
    /// default when unset), `TLSv1.2` or `TLSv1.3`.
    #[arg(long, value_name = "VERSIONS", env = "MAGPIE_TLS_PROTOCOLS")]
    pub tls_protocols: Option<String>,

    /// TLSv1.3 cipher suites offered, colon-separated in OpenSSL's names
    /// (`TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256`,
    /// all three when unset).
    #[arg(long, value_name = "SUITES", env = "MAGPIE_TLS_CIPHERSUITES")]
    pub tls_ciphersuites: Option<String>,

    /// Milliseconds a TLS client has, from connecting, to finish its
    /// handshake; one that has not is closed (so stalled handshakes cannot
    /// hold connections open).
    #[arg(long, default_value_t = 10_000, env = "MAGPIE_TLS_HANDSHAKE_TIMEOUT")]
    pub tls_handshake_timeout: u64,
}

/// Who may read the HTTP door's `/metrics` and `/dashboard` without
/// credentials (`--http-metrics-access`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObservabilityAccess {
    /// Loopback clients without credentials, others as any route.
    Loopback,
    /// Everyone without credentials.
    Open,
    /// Everyone as any route.
    Protected,
}

/// Redis's `yes` / `no` (any case).
pub fn yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("expected yes or no".into()),
    }
}

/// Redis's `memtoull`: digits with an optional `b`, `k`, `kb`, `m`, `mb`,
/// `g` or `gb` suffix (any case); `k` = 1000, `kb` = 1024 and so on. For
/// `--maxmemory` and CONFIG SET.
pub fn parse_memory(v: &[u8]) -> Option<u64> {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    let (num, unit) = v.split_at(digits);
    if num.is_empty() {
        return None;
    }
    let mul: u64 = match unit.to_ascii_lowercase().as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    std::str::from_utf8(num)
        .ok()?
        .parse::<u64>()
        .ok()?
        .checked_mul(mul)
}

fn memory_value(v: &str) -> Result<u64, String> {
    parse_memory(v.as_bytes())
        .ok_or_else(|| "expected bytes, optionally with a unit (100mb, 2gb, 512kb)".into())
}

fn pubsub_limit_value(v: &str) -> Result<OutputLimit, String> {
    let words: Vec<&[u8]> = v.as_bytes().split(|&b| b == b' ').collect();
    match words[..] {
        [hard, soft, seconds] => output_limit(hard, soft, seconds)
            .ok_or_else(|| "expected <hard> <soft> <soft-seconds>, e.g. \"32mb 8mb 60\"".into()),
        _ => {
            Err("expected three values: <hard> <soft> <soft-seconds>, e.g. \"32mb 8mb 60\"".into())
        }
    }
}

/// One class's `<hard> <soft> <soft-seconds>` of Redis's
/// `client-output-buffer-limit`: byte sizes as `memtoull` reads them, and
/// seconds as a non-negative integer that Redis then keeps in a C `int`
/// (so larger values wrap as they do there).
pub fn output_limit(hard: &[u8], soft: &[u8], seconds: &[u8]) -> Option<OutputLimit> {
    let seconds = magpie_protocol::int::parse_i64(seconds).filter(|s| *s >= 0)?;
    Some(OutputLimit {
        hard: parse_memory(hard)?,
        soft: parse_memory(soft)?,
        soft_seconds: seconds as i32,
    })
}

/// The list CONFIG SET and `--maxmemory-policy` name when refusing one.
pub fn eviction_policy_names() -> String {
    EvictionPolicy::ALL.map(|p| p.name()).join(", ")
}

/// Parses a `maxmemory-policy` name; Redis's LFU policies are named as
/// not offered rather than as unknown.
pub fn eviction_policy(v: &str) -> Result<EvictionPolicy, String> {
    EvictionPolicy::from_name(v).ok_or_else(|| {
        if v.to_ascii_lowercase().ends_with("-lfu") {
            format!(
                "magpie has no LFU eviction (entries keep an access time, not a counter); one of: {}",
                eviction_policy_names()
            )
        } else {
            format!("must be one of: {}", eviction_policy_names())
        }
    })
}

/// Largest `--proto-max-bulk-len` with persistence on: a key and a value
/// of this size each still fit one log record.
pub const MAX_PERSISTED_BULK_LEN: usize = (1 << 31) - 4096;

impl ServeConfig {
    /// True when some door listens for TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls_port != 0 || self.tls_memcache_port != 0 || self.tls_http_port != 0
    }

    /// The `tls-*` settings given at start.
    pub fn tls_settings(&self) -> TlsSettings {
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        TlsSettings {
            cert_file: path(&self.tls_cert_file),
            key_file: path(&self.tls_key_file),
            ca_cert_file: path(&self.tls_ca_cert_file),
            ca_cert_dir: path(&self.tls_ca_cert_dir),
            auth_clients: self.tls_auth_clients,
            protocols: self.tls_protocols.clone().unwrap_or_default(),
            ciphersuites: self.tls_ciphersuites.clone().unwrap_or_default(),
        }
    }

    /// Checks values that clap cannot; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.databases == 0 || self.databases > 1_000_000 {
            return Err("--databases must be between 1 and 1000000".into());
        }
        if let Some(s) = self.shards {
            if s == 0 || s > 256 {
                return Err("--shards must be between 1 and 256".into());
            }
        }
        if self.proto_max_bulk_len == 0 || self.proto_max_bulk_len > magpie_engine::MAX_PART_LEN {
            return Err(format!(
                "--proto-max-bulk-len must be between 1 and {}",
                magpie_engine::MAX_PART_LEN
            ));
        }
        if self.max_inline_len < 16 {
            return Err("--max-inline-len must be at least 16".into());
        }
        if self.hz == 0 || self.hz > 500 {
            return Err("--hz must be between 1 and 500".into());
        }
        if self.memcache_max_item_size < 1024 || self.memcache_max_item_size > 1024 * 1024 * 1024 {
            return Err("--memcache-max-item-size must be between 1024 and 1073741824".into());
        }
        if self.http_max_key_len == 0 || self.http_max_key_len > 21_000 {
            return Err("--http-max-key-len must be between 1 and 21000".into());
        }
        if !(1..=magpie_engine::MAX_SAMPLES).contains(&self.maxmemory_samples) {
            return Err(format!(
                "--maxmemory-samples must be between 1 and {}",
                magpie_engine::MAX_SAMPLES
            ));
        }
        if !(1..=magpie_engine::tags::MAX_TAGS_PER_KEY_CEILING).contains(&self.max_tags_per_key) {
            return Err(format!(
                "--max-tags-per-key must be between 1 and {}",
                magpie_engine::tags::MAX_TAGS_PER_KEY_CEILING
            ));
        }
        if !(1..=magpie_engine::tags::MAX_TAG_LEN_CEILING).contains(&self.max_tag_len) {
            return Err(format!(
                "--max-tag-len must be between 1 and {}",
                magpie_engine::tags::MAX_TAG_LEN_CEILING
            ));
        }
        if self.maxclients == 0 {
            return Err("--maxclients must be at least 1".into());
        }
        if let Some(file) = &self.log_file {
            if file.file_name().is_none() {
                return Err(format!(
                    "--log-file {} does not name a file",
                    file.display()
                ));
            }
        }
        if self.tls_handshake_timeout == 0 || self.tls_handshake_timeout > 3_600_000 {
            return Err("--tls-handshake-timeout must be between 1 and 3600000 (ms)".into());
        }
        if self.tls_enabled() && (self.tls_cert_file.is_none() || self.tls_key_file.is_none()) {
            return Err(
                "--tls-port, --tls-memcache-port and --tls-http-port need --tls-cert-file and --tls-key-file"
                    .into(),
            );
        }
        if !self.compact_ratio.is_finite() || self.compact_ratio < 0.0 {
            return Err("--compact-ratio must be a number >= 0".into());
        }
        // a log record holds key and value in one u32-sized payload
        if !self.ephemeral && self.proto_max_bulk_len > MAX_PERSISTED_BULK_LEN {
            return Err(format!(
                "--proto-max-bulk-len must be at most {MAX_PERSISTED_BULK_LEN} with persistence on (or use --ephemeral)"
            ));
        }
        Ok(())
    }
}
