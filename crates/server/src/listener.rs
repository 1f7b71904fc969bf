//! Accepting connections for every TCP front door: binding, the accept
//! loop with the maxclients gate and the client registry, and the
//! background expiry cycle. Each door starts its own listener with
//! [`accept_loop`] and its connection loop; a TLS port's serve function
//! wraps the stream with [`crate::tls::handshake`] first (see
//! [`tls_accept_loop`]), so a connection loop only sees a byte stream.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::clients::{ClientInfo, ClientState};
use crate::shared::Shared;

/// The accept loop every TCP front door shares: admit within maxclients
/// (refusing with `refusal` beyond it), register the client, serve it on
/// its own task, and unregister it when `serve` returns.
pub async fn accept_loop<F, Fut>(
    shared: Arc<Shared>,
    listener: TcpListener,
    refusal: &'static [u8],
    serve: F,
) where
    F: Fn(Arc<Shared>, TcpStream, Arc<ClientInfo>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shared.shutdown.notified() => return,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // e.g. EMFILE: back off instead of spinning
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        let _ = stream.set_nodelay(true);
        shared
            .counters
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        let Some(info) = admit(&shared, &stream, addr) else {
            shared
                .counters
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(stream, refusal));
            continue;
        };
        let id = info.id;
        let conn = serve(shared.clone(), stream, info);
        let shared = shared.clone();
        tokio::spawn(async move {
            conn.await;
            release(&shared, id);
        });
    }
}

/// [`accept_loop`] for a TLS port: each admitted client is handshaken on
/// its own task (so a slow handshake delays no one else) and then served
/// by `serve` over the encrypted stream; a failed handshake closes it. A
/// client beyond maxclients is closed without a word (there is no TLS
/// session to say it in).
pub async fn tls_accept_loop<F, Fut>(shared: Arc<Shared>, listener: TcpListener, serve: F)
where
    F: Fn(Arc<Shared>, TlsStream<TcpStream>, Arc<ClientInfo>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let serve = Arc::new(serve);
    accept_loop(shared, listener, b"", move |shared, stream, info| {
        let serve = serve.clone();
        async move {
            if let Some(stream) = crate::tls::handshake(&shared.tls, stream, info.addr).await {
                serve(shared, stream, info).await;
            }
        }
    })
    .await
}

/// Registers a new client unless maxclients is reached.
fn admit(shared: &Shared, stream: &TcpStream, addr: SocketAddr) -> Option<Arc<ClientInfo>> {
    let max = shared.runtime.read().maxclients;
    let prev = shared.connected.fetch_add(1, Ordering::SeqCst);
    if prev >= max {
        shared.connected.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    let info = Arc::new(ClientInfo {
        id: shared.next_client_id.fetch_add(1, Ordering::Relaxed),
        addr,
        laddr: stream.local_addr().unwrap_or(addr),
        fd: std::os::fd::AsRawFd::as_raw_fd(stream),
        created: Instant::now(),
        state: parking_lot::Mutex::new(ClientState {
            resp: 2,
            ..ClientState::default()
        }),
        memcache_state: Default::default(),
    });
    shared.clients.lock().insert(info.id, info.clone());
    Some(info)
}

fn release(shared: &Shared, id: u64) {
    shared.clients.lock().remove(&id);
    shared.connected.fetch_sub(1, Ordering::SeqCst);
}

async fn refuse(mut stream: TcpStream, reply: &'static [u8]) {
    if !reply.is_empty() {
        let _ = stream.write_all(reply).await;
    }
    let _ = stream.shutdown().await;
}

/// The active expiry cycle: `hz` times a second, remove keys whose TTL has
/// passed, spending at most a quarter of each interval doing so. It also
/// evicts while the keyspace is over its memory limit, so a lowered
/// `maxmemory` takes effect without waiting for writes (Redis's eviction
/// time proc does the same).
pub async fn run_expiry(shared: Arc<Shared>) {
    loop {
        let hz = shared.runtime.read().hz.max(1);
        let period = Duration::from_millis(1000 / hz as u64);
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shared.shutdown.notified() => return,
        }
        let started = Instant::now();
        loop {
            let now = magpie_engine::now_ms();
            let removed = shared.engine.expire_cycle(now, 64);
            // Ok yet still over: the call stopped at its bound, go on
            let evicting =
                shared.engine.make_room(now).is_ok() && shared.engine.over_memory_limit();
            if (removed == 0 && !evicting) || started.elapsed() > period / 4 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Binds one front door's listener, naming the address in any error.
pub async fn bind(host: &str, port: u16, what: &str) -> std::io::Result<TcpListener> {
    let addr = format!("{host}:{port}");
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    tracing::info!(%addr, "{what} listening");
    Ok(listener)
}
