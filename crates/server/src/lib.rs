//! # magpie (server)
//!
//! Wires sockets, protocols and the engine together, one folder per front
//! door: [`resp`] (the Redis protocol and the kvs framing: its connection
//! loop and one file per command family), [`memcache`] (the memcached text
//! and meta protocol: its connection loop and one file per family) and
//! [`http`] (the HTTP/JSON API over database 0). Beside them, what every
//! door shares, each in a room of its own: [`acl`] (users and permissions,
//! which every door consults), [`config`] (flags, environment
//! and the `--config` file), [`listener`] (binding, the accept loop, the
//! expiry cycle), [`clients`] (the client registry's entries),
//! [`session`] (a RESP connection's state), [`pubsub`] (the channel
//! registry and subscribers' queues), [`shared`] (state every
//! connection sees), [`stats`] and [`slowlog`] (per-command statistics and
//! the slow log), [`logging`] (the log format) and [`tls`] (the TLS
//! settings, certificates and handshake every door's TLS port uses). The shared rooms never
//! import a door: each door hands its command table to [`Shared::new`]
//! (see [`command_names`]). The client tools live in the `magpie-tools`
//! crate. docs/architecture.md is the map.

pub mod acl;
pub mod clients;
pub mod config;
pub mod http;
pub mod listener;
pub mod logging;
pub mod memcache;
pub mod pubsub;
pub mod resp;
pub mod session;
pub mod shared;
pub mod slowlog;
pub mod stats;
pub mod tls;

#[cfg(test)]
mod persist_tests;

use std::sync::Arc;

use shared::{DoorCommands, Shared};

/// What the doors say of their commands: the names of each, in
/// [`stats::Door::ALL`] order, which [`Shared::new`] builds the statistics
/// tables from, and the ACL's catalog of the RESP commands.
pub fn command_names() -> DoorCommands {
    DoorCommands {
        names: [
            resp::names(),
            memcache::COMMANDS.to_vec(),
            http::ROUTES.to_vec(),
        ],
        catalog: resp::acl::catalog(),
    }
}

/// Recovers the data directory (unless `--ephemeral`), then binds the
/// configured listeners and starts serving in the background. Returns once
/// every listener is bound, so an open port means recovery is done.
pub async fn start(shared: Arc<Shared>) -> std::io::Result<()> {
    let cfg = &shared.config;
    // a certificate or key that does not load stops the start, before
    // recovery spends any time
    shared
        .tls
        .load()
        .map_err(|e| std::io::Error::other(format!("TLS: {e}")))?;
    if shared.acl.file().is_some() {
        shared.acl.load().map_err(std::io::Error::other)?;
    }
    if !cfg.ephemeral {
        open_data_dir(&shared)?;
    }
    if cfg.port != 0 {
        let listener = listener::bind(&cfg.bind, cfg.port, "RESP").await?;
        tokio::spawn(resp::conn::run(shared.clone(), listener));
    }
    if cfg.tls_port != 0 {
        let listener = listener::bind(&cfg.bind, cfg.tls_port, "RESP over TLS").await?;
        tokio::spawn(resp::conn::run_tls(shared.clone(), listener));
    }
    if cfg.memcache_port != 0 || cfg.tls_memcache_port != 0 {
        let mc = Arc::new(memcache::McState::new());
        if cfg.memcache_port != 0 {
            let listener = listener::bind(&cfg.bind, cfg.memcache_port, "memcached").await?;
            tokio::spawn(memcache::conn::run(shared.clone(), mc.clone(), listener));
        }
        if cfg.tls_memcache_port != 0 {
            let listener =
                listener::bind(&cfg.bind, cfg.tls_memcache_port, "memcached over TLS").await?;
            tokio::spawn(memcache::conn::run_tls(shared.clone(), mc, listener));
        }
    }
    let http = if cfg.http_port != 0 || cfg.tls_http_port != 0 {
        Some(http::start(shared.clone()).await?)
    } else {
        None
    };
    tokio::spawn(listener::run_expiry(shared.clone()));
    warn_if_protected(&shared);
    if let Some(http) = http {
        http.set_ready();
    }
    // every listener is bound: tools and tests wait for this line
    tracing::info!("magpie ready");
    Ok(())
}

/// Says at start when protected mode will refuse clients: listening beyond
/// loopback with no password for `default`, as Redis warns.
fn warn_if_protected(shared: &Shared) {
    let cfg = &shared.config;
    let beyond_loopback = cfg
        .bind
        .parse::<std::net::IpAddr>()
        .map_or(true, |ip| !ip.is_loopback());
    if beyond_loopback && shared.runtime.read().protected_mode && shared.acl.default_user().nopass {
        tracing::warn!(
            bind = %cfg.bind,
            "protected mode is on: no password is set for the default user, so clients from              addresses other than loopback are refused on every door (RESP -DENIED, memcached              closes, HTTP 403). To serve them, set a password (--requirepass, or an aclfile), or,              on a trusted network only, start with --protected-mode no"
        );
    }
}

/// Opens `--dir`, replays it into the engine and installs the log.
fn open_data_dir(shared: &Arc<Shared>) -> std::io::Result<()> {
    let cfg = &shared.config;
    let opts = magpie_persist::Options {
        fsync: cfg.appendfsync,
        repair: cfg.repair,
        compact_min_size: cfg.compact_min_size,
        compact_ratio: cfg.compact_ratio,
        activity: shared.runtime_activity.get().cloned(),
        ..magpie_persist::Options::new(&cfg.dir)
    };
    let p = magpie_persist::Persistence::open(shared.engine.clone(), opts)?;
    let r = p.recovery();
    tracing::info!(
        dir = %cfg.dir.display(),
        snapshot_entries = r.snapshot_records,
        log_records = r.log_records,
        segments = r.segments,
        expired = r.expired,
        ms = r.millis as u64,
        appendfsync = %cfg.appendfsync,
        "data loaded"
    );
    tokio::spawn(p.clone().relay_durability());
    let _ = shared.persist.set(p);
    Ok(())
}
