//! State shared by every connection: the engine, the settings that CONFIG SET
//! can change, the client registry and the server-wide counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use magpie_engine::{Engine, EngineConfig, MemoryLimit};
use magpie_persist::{NotDurable, Persistence};
use magpie_protocol::resp::Limits;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::acl::Acl;
use crate::clients::ClientInfo;
use crate::config::ServeConfig;
use crate::pubsub::{OutputLimit, PubSub};
use crate::slowlog::SlowLog;
use crate::stats::CommandStats;
use crate::tls::Tls;

/// Settings that may change while the server runs (CONFIG SET).
#[derive(Clone, Debug)]
pub struct Runtime {
    /// Password required by AUTH, if any.
    pub requirepass: Option<String>,
    /// Idle seconds before a client is closed (0 = never; kept in
    /// [`Shared::client_timeout`] by [`Shared::set_runtime`]).
    pub timeout: u64,
    /// Redis's protected mode (kept in the ACL by
    /// [`Shared::set_runtime`]).
    pub protected_mode: bool,
    /// Maximum simultaneous clients.
    pub maxclients: usize,
    /// Parser limits for new requests.
    pub limits: Limits,
    /// Per-client query buffer limit in bytes.
    pub client_query_buffer_limit: usize,
    /// Active expiry frequency.
    pub hz: u32,
    /// Slow log threshold in microseconds (< 0: off).
    pub slowlog_log_slower_than: i64,
    /// Slow log length.
    pub slowlog_max_len: usize,
    /// Log one command in this many (0: off).
    pub command_log_sample: u64,
    /// The keyspace's memory limit (kept in the engine by
    /// [`Shared::set_runtime`]).
    pub memory_limit: MemoryLimit,
    /// `client-output-buffer-limit` for subscribers (kept in the pub/sub
    /// registry by [`Shared::set_runtime`]).
    pub pubsub_output_limit: OutputLimit,
    /// The tag limits (kept in the engine by [`Shared::set_runtime`]).
    pub tag_limits: magpie_engine::TagLimits,
    /// Collection encoding thresholds (`hash-max-listpack-entries`...; kept
    /// in the engine by [`Shared::set_runtime`]).
    pub type_limits: magpie_engine::TypeLimits,
}

/// Server-wide counters reported by INFO (and later stats and /metrics).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted since start.
    pub connections_received: AtomicU64,
    /// Connections refused because of maxclients.
    pub rejected_connections: AtomicU64,
    /// Commands executed.
    pub commands_processed: AtomicU64,
    /// Reads that found a key.
    pub keyspace_hits: AtomicU64,
    /// Reads that found nothing.
    pub keyspace_misses: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
}

/// Everything a connection needs from the rest of the server.
pub struct Shared {
    /// The keyspace (shared with the persistence threads).
    pub engine: Arc<Engine>,
    /// The data directory's log, once recovery is done (unset when
    /// `--ephemeral`).
    pub persist: OnceLock<Arc<Persistence>>,
    /// The async runtime's park/unpark gauge, when the binary installed
    /// one: the log's group commit under `always` times itself by it.
    pub runtime_activity: OnceLock<Arc<magpie_persist::RuntimeActivity>>,
    /// Settings fixed at start.
    pub config: ServeConfig,
    /// Settings CONFIG SET may change.
    pub runtime: RwLock<Runtime>,
    /// Counters for INFO.
    pub counters: Counters,
    /// Connected clients by id.
    pub clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// Clients currently connected.
    pub connected: AtomicUsize,
    /// Source of client ids.
    pub next_client_id: AtomicU64,
    /// Server start, for uptime.
    pub started: Instant,
    /// Set once SHUTDOWN or a signal asked the server to stop.
    pub stopping: AtomicBool,
    /// Wakes the accept loop and connections when stopping.
    pub shutdown: Notify,
    /// Random 40-hex run id, as Redis reports.
    pub run_id: String,
    /// Calls, failures and latency per command, per front door.
    pub command_stats: CommandStats,
    /// SLOWLOG entries and the command logs' settings (kept in step with
    /// [`Runtime`] by [`Shared::set_runtime`]).
    pub slowlog: SlowLog,
    /// The `tls-*` settings and the certificate new TLS connections get.
    pub tls: Tls,
    /// Pub/sub channels, patterns and their subscribers' queues.
    pub pubsub: Arc<PubSub>,
    /// Users and permissions, consulted by every door.
    pub acl: Acl,
    /// Redis's `timeout` in seconds, read once per read batch.
    pub client_timeout: AtomicU64,
}

/// What each door tells the shared state about its commands (see
/// [`crate::command_names`]): their names, in [`crate::stats::Door::ALL`]
/// order, for the statistics tables, and the ACL's command catalog.
pub struct DoorCommands {
    /// Each door's command names.
    pub names: [Vec<&'static str>; 3],
    /// What the ACL knows of the RESP commands, which the other doors map
    /// their requests to.
    pub catalog: crate::acl::Catalog,
}

impl Shared {
    /// Builds the shared state from the serve configuration and what the
    /// doors say of their commands ([`crate::command_names`] has it): the
    /// statistics tables count by their names, the ACL guards by the
    /// catalog. The doors register their tables here, so this layer never
    /// imports a door.
    pub fn new(config: ServeConfig, doors: DoorCommands) -> Arc<Shared> {
        let mut ec = EngineConfig {
            databases: config.databases,
            ..EngineConfig::default()
        };
        if let Some(s) = config.shards {
            ec.shards = s;
        }
        let runtime = Runtime {
            requirepass: config.requirepass.clone(),
            protected_mode: config.protected_mode,
            timeout: config.timeout,
            maxclients: config.maxclients,
            limits: Limits {
                max_bulk_len: config.proto_max_bulk_len,
                max_multibulk_len: config.max_multibulk_len,
                max_inline_len: config.max_inline_len,
            },
            client_query_buffer_limit: config.client_query_buffer_limit,
            hz: config.hz,
            slowlog_log_slower_than: config.slowlog_log_slower_than,
            slowlog_max_len: config.slowlog_max_len,
            command_log_sample: config.command_log_sample,
            memory_limit: MemoryLimit {
                max_bytes: usize::try_from(config.maxmemory).unwrap_or(usize::MAX),
                policy: config.maxmemory_policy,
                samples: config.maxmemory_samples,
            },
            pubsub_output_limit: config.client_output_buffer_limit_pubsub,
            tag_limits: magpie_engine::TagLimits {
                max_tags_per_key: config.max_tags_per_key,
                max_tag_len: config.max_tag_len,
            },
            type_limits: magpie_engine::TypeLimits::default(),
        };
        let pubsub = Arc::new(PubSub::new(runtime.pubsub_output_limit));
        let engine = Arc::new(Engine::new(ec));
        engine.set_memory_limit(runtime.memory_limit);
        engine.set_tag_limits(runtime.tag_limits);
        let slowlog = SlowLog::new(
            runtime.slowlog_log_slower_than,
            runtime.slowlog_max_len,
            runtime.command_log_sample,
        );
        let command_stats = CommandStats::new(doors.names);
        let tls = Tls::new(
            config.tls_settings(),
            config.tls_enabled(),
            std::time::Duration::from_millis(config.tls_handshake_timeout),
        );
        let acl = Acl::new(
            doors.catalog,
            config.requirepass.as_deref(),
            config.aclfile.clone(),
        );
        acl.set_protected_mode(config.protected_mode);
        let client_timeout = AtomicU64::new(config.timeout);
        Arc::new(Shared {
            engine,
            persist: OnceLock::new(),
            runtime_activity: OnceLock::new(),
            config,
            runtime: RwLock::new(runtime),
            counters: Counters::default(),
            clients: Mutex::new(BTreeMap::new()),
            connected: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            stopping: AtomicBool::new(false),
            shutdown: Notify::new(),
            run_id: random_hex40(),
            command_stats,
            slowlog,
            tls,
            pubsub,
            acl,
            client_timeout,
        })
    }

    /// Publishes new runtime settings (CONFIG SET) to every part that
    /// reads them.
    pub fn set_runtime(&self, rt: Runtime) {
        if rt.requirepass != self.runtime.read().requirepass {
            // Redis's requirepass is the default user's only password
            self.acl
                .set_default_password(rt.requirepass.as_deref().map(str::as_bytes));
        }
        self.acl.set_protected_mode(rt.protected_mode);
        self.client_timeout.store(rt.timeout, Ordering::Relaxed);
        self.slowlog.configure(
            rt.slowlog_log_slower_than,
            rt.slowlog_max_len,
            rt.command_log_sample,
        );
        self.engine.set_memory_limit(rt.memory_limit);
        self.pubsub.set_limit(rt.pubsub_output_limit);
        self.engine.set_tag_limits(rt.tag_limits);
        self.engine.set_type_limits(rt.type_limits);
        *self.runtime.write() = rt;
    }

    /// Waits for a client's next bytes (`read`), giving up with
    /// `TimedOut` once it has been idle for `timeout` seconds (Redis's
    /// idle-client timeout; without one, just the read).
    pub async fn idle_read(
        &self,
        read: impl std::future::Future<Output = std::io::Result<usize>>,
    ) -> std::io::Result<usize> {
        let secs = self.client_timeout.load(Ordering::Relaxed);
        if secs == 0 {
            return read.await;
        }
        match tokio::time::timeout(std::time::Duration::from_secs(secs), read).await {
            Ok(r) => r,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    /// The MISCONF error text while writing the log fails (write commands
    /// are refused then, reads keep working), None when writes may proceed.
    pub fn write_refusal(&self) -> Option<String> {
        self.log_error()
            .map(|e| format!("MISCONF Errors writing to the AOF file: {e}"))
    }

    /// While the log cannot be written: the error, which every front door
    /// reports in its own form when it refuses a write.
    pub fn log_error(&self) -> Option<String> {
        let p = self.persist.get()?;
        if p.is_ok() {
            None
        } else {
            Some(p.last_error())
        }
    }

    /// Asks every part of the server to stop.
    pub fn request_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
    }
}

fn random_hex40() -> String {
    use std::hash::{BuildHasher, RandomState};
    (0..3)
        .map(|i| format!("{:016x}", RandomState::new().hash_one(i)))
        .collect::<String>()[..40]
        .to_string()
}

/// Logs why a RESP or memcached connection closes without the replies of
/// its last batch: the log failed while they waited (see [`NotDurable`]).
pub fn close_not_durable(e: &NotDurable) {
    tracing::warn!("closing a connection unanswered: {e}");
}
