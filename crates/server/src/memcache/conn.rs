//! One memcached-protocol connection: read a batch, parse and execute every
//! complete request in it, write all the replies with one write (memcached
//! itself writes per response; batching gives the same bytes with fewer
//! system calls).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use magpie_protocol::memcache::{Limits, Parsed, Parser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::clients::{ClientInfo, McConnState};
use crate::listener::{accept_loop, tls_accept_loop};
use crate::memcache::auth::McAuth;
use crate::memcache::{command_index, execute, McCounters, McCtx, McState};
use crate::shared::Shared;
use crate::slowlog::{write_down, Observer};
use crate::stats::Door;

/// Replies are flushed early once this many bytes are pending, so a large
/// multi-get does not buffer without bound.
const FLUSH_AT: usize = 1 << 20;
/// Initial read buffer size.
const READ_CHUNK: usize = 16 * 1024;

/// Accepts memcached clients on `listener` until shutdown. They share the
/// maxclients limit and the client registry with RESP clients.
pub async fn run(shared: Arc<Shared>, mc: Arc<McState>, listener: TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let _ = mc.listener.set((fd, addr, Instant::now()));
    }
    accept_loop(
        shared,
        listener,
        // memcached's reply when it is at its connection limit
        b"ERROR Too many open connections\r\n",
        move |shared, stream, info| serve(shared, mc.clone(), stream, info),
    )
    .await
}

/// Accepts memcached clients over TLS on `listener` until shutdown; they
/// share `mc` (its counters and settings) with the plaintext port.
pub async fn run_tls(shared: Arc<Shared>, mc: Arc<McState>, listener: TcpListener) {
    tls_accept_loop(shared, listener, move |shared, stream, info| {
        serve(shared, mc.clone(), stream, info)
    })
    .await
}

/// Serves `stream` (TCP, or TLS over it) until the client leaves, quits,
/// sends an over-long line, passes the query buffer limit, or the server
/// shuts down.
pub async fn serve<S>(shared: Arc<Shared>, mc: Arc<McState>, mut stream: S, info: Arc<ClientInfo>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if shared.acl.protected_refuses(info.addr.ip()) {
        // memcached has no greeting to refuse with: close (see security.md)
        let _ = stream.shutdown().await;
        return;
    }
    McCounters::bump(&mc.counters.total_connections);
    McCounters::bump(&mc.counters.curr_connections);
    let query_limit = shared.runtime.read().client_query_buffer_limit;
    let mut parser = Parser::new(Limits {
        max_item_size: shared.config.memcache_max_item_size,
        max_get_line: query_limit,
    });
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut observer = Observer::new(Door::Memcache);
    let mut auth = McAuth::new(&shared.acl, info.clone());
    'conn: loop {
        if rbuf.capacity() - rbuf.len() < 512 {
            // grow with what has arrived (doubling), never with what a
            // client announced
            rbuf.reserve(rbuf.len().max(READ_CHUNK));
        }
        // no select on the shutdown Notify: registering with it on every
        // read takes its lock per batch on every connection (see resp_conn)
        let n = match shared.idle_read(stream.read_buf(&mut rbuf)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        shared
            .counters
            .net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        mc.counters
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        info.set_memcache_state(McConnState::ParseCmd);
        let now = magpie_engine::now_ms();
        let mut off = 0;
        // where the log stood before this batch (see `write`)
        let mark = shared.persist.get().map_or(0, |p| p.mark());
        let mut close = false;
        let mut commands = 0u64;
        observer.begin(&shared.slowlog);
        let mut started = Instant::now();
        while off < rbuf.len() {
            match parser.parse(&rbuf[off..]) {
                Parsed::Request(req, used) => {
                    let cmd = command_index(&req);
                    let before = out.len();
                    let mut ctx = McCtx {
                        shared: &shared,
                        mc: &mc,
                        out: &mut out,
                        now,
                        close: false,
                        auth: &mut auth,
                    };
                    execute(&mut ctx, req);
                    let quit = ctx.close;
                    let done = Instant::now();
                    let nanos = done.duration_since(started).as_nanos() as u64;
                    started = done;
                    let failed = is_error(&out[before..]);
                    let notes = observer.finish(cmd, nanos, failed);
                    if notes.any() {
                        let line = request_line(&rbuf[off..off + used]);
                        let words: Vec<&[u8]> = line
                            .split(|&b| b == b' ')
                            .filter(|w| !w.is_empty())
                            .collect();
                        write_down(
                            &shared.slowlog,
                            Door::Memcache,
                            &info,
                            &words,
                            nanos,
                            failed,
                            notes,
                        );
                    }
                    commands += 1;
                    off += used;
                    if auth.after_request(&mut out, off < rbuf.len()) {
                        // refused before authentication: the rest of
                        // what was read goes unanswered (memcached's way)
                        off = rbuf.len();
                        break;
                    }
                    if quit {
                        close = true;
                        break;
                    }
                    if out.len() >= FLUSH_AT {
                        if write(&shared, &mc, &mut stream, &mut out, mark)
                            .await
                            .is_err()
                        {
                            break 'conn;
                        }
                        started = Instant::now();
                    }
                }
                Parsed::Skipped(used) => off += used,
                Parsed::Incomplete => break,
                Parsed::Close => {
                    close = true;
                    break;
                }
            }
        }
        rbuf.advance(off);
        // what this connection waits for next: a data block once its
        // command line is complete, else a line
        let waiting = if memchr::memchr(b'\n', &rbuf).is_some() {
            McConnState::NRead
        } else {
            McConnState::Read
        };
        observer.end(&shared.command_stats);
        if commands > 0 {
            shared
                .counters
                .commands_processed
                .fetch_add(commands, Ordering::Relaxed);
        }
        info.state.lock().last_active = Some(std::time::Instant::now());
        if !out.is_empty() {
            info.set_memcache_state(McConnState::MWrite);
        }
        if write(&shared, &mc, &mut stream, &mut out, mark)
            .await
            .is_err()
            || close
        {
            break;
        }
        info.set_memcache_state(waiting);
        if rbuf.len() > query_limit {
            tracing::warn!(
                client = info.id,
                bytes = rbuf.len(),
                "closing memcached client over the query buffer limit"
            );
            break;
        }
        if shared.stopping.load(Ordering::Relaxed) {
            break;
        }
    }
    mc.counters.curr_connections.fetch_sub(1, Ordering::Relaxed);
    let _ = stream.shutdown().await;
}

/// True when a reply is one of memcached's errors.
fn is_error(reply: &[u8]) -> bool {
    reply.starts_with(b"ERROR")
        || reply.starts_with(b"CLIENT_ERROR")
        || reply.starts_with(b"SERVER_ERROR")
}

/// The command line of a request (without its data block or line end).
fn request_line(request: &[u8]) -> &[u8] {
    let end = memchr::memchr(b'\n', request).unwrap_or(request.len());
    let line = &request[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

async fn write<S: AsyncWrite + Unpin>(
    shared: &Shared,
    mc: &McState,
    stream: &mut S,
    out: &mut Vec<u8>,
    mark: u64,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    if let Some(p) = shared.persist.get() {
        // no reply leaves before the records of the writes it acknowledges
        // (or shows) are durable per the policy; one wait per batch. If the
        // log fails meanwhile the connection closes unanswered (NotDurable)
        if let Err(e) = p.wait_durable(mark).await {
            crate::shared::close_not_durable(&e);
            return Err(std::io::Error::other(e));
        }
    }
    stream.write_all(out).await?;
    // a TLS stream may hold the last record until flushed; a TCP stream's
    // flush does nothing
    stream.flush().await?;
    shared
        .counters
        .net_output_bytes
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    mc.counters
        .bytes_written
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    out.clear();
    if out.capacity() > 4 * FLUSH_AT {
        out.shrink_to(READ_CHUNK);
    }
    Ok(())
}
