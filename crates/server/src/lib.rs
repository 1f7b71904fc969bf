//! # magpie (server)
//!
//! Wires sockets, protocols and the engine together. One file per concern:
//! [`config`] (flags), [`shared`] (state every connection sees),
//! [`listener`] (accept loops and background tasks), [`resp_conn`] (one
//! Redis-protocol connection), [`session`] (per-connection state) and
//! [`commands`] (one file per command family). [`http`] is the HTTP/JSON
//! front door over database 0.

pub mod commands;
pub mod config;
pub mod http;
pub mod listener;
pub mod resp_conn;
pub mod session;
pub mod shared;

use std::sync::Arc;

use tokio::net::TcpListener;

use shared::Shared;

/// Binds the configured listeners and starts serving in the background.
/// Returns once every listener is bound (so callers know the ports are open).
pub async fn start(shared: Arc<Shared>) -> std::io::Result<()> {
    let cfg = &shared.config;
    if cfg.port != 0 {
        let addr = format!("{}:{}", cfg.bind, cfg.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        tracing::info!(%addr, "RESP listening");
        tokio::spawn(listener::run_resp(shared.clone(), listener));
    }
    let http = if cfg.http_port != 0 {
        Some(http::start(shared.clone()).await?)
    } else {
        None
    };
    tokio::spawn(listener::run_expiry(shared.clone()));
    if let Some(http) = http {
        http.set_ready();
    }
    Ok(())
}
