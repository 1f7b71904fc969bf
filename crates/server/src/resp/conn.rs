//! One Redis-protocol connection: read a batch, parse and execute every
//! complete request in it, write all the replies with one write.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use magpie_protocol::resp::parse::BIG_ARG;
use magpie_protocol::resp::{Args, Framing, Parser, Proto, ReplyWriter};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::clients::ClientInfo;
use crate::listener::{accept_loop, tls_accept_loop};
use crate::pubsub::Subscriber;
use crate::resp::{self, Ctx};
use crate::session::Session;
use crate::shared::Shared;
use crate::slowlog::{write_down, Observer};
use crate::stats::Door;

/// Replies are flushed early once this many bytes are pending, so a batch
/// of large GETs does not buffer without bound.
const FLUSH_AT: usize = 1 << 20;
/// Initial read buffer size.
const READ_CHUNK: usize = 16 * 1024;

/// Accepts RESP clients on `listener` until shutdown.
pub async fn run(shared: Arc<Shared>, listener: TcpListener) {
    accept_loop(
        shared,
        listener,
        b"-ERR max number of clients reached\r\n",
        serve,
    )
    .await
}

/// Accepts RESP clients over TLS on `listener` until shutdown.
pub async fn run_tls(shared: Arc<Shared>, listener: TcpListener) {
    tls_accept_loop(shared, listener, serve).await
}

/// Serves `stream` (TCP, or TLS over it) until the client leaves, QUIT, a
/// protocol error, a limit, or server shutdown.
pub async fn serve<S>(shared: Arc<Shared>, mut stream: S, info: Arc<ClientInfo>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if shared.acl.protected_refuses(info.addr.ip()) {
        let _ = stream.write_all(resp::acl::PROTECTED_MODE_DENIED).await;
        let _ = stream.shutdown().await;
        return;
    }
    let (limits, query_limit) = {
        let rt = shared.runtime.read();
        (rt.limits.clone(), rt.client_query_buffer_limit)
    };
    let mut session = Session::new(info, &shared.acl);
    let mut parser = Parser::new(limits);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut observer = Observer::new(Door::Resp);
    let commands = resp::table();

    loop {
        if rbuf.capacity() - rbuf.len() < 512 {
            rbuf.reserve(READ_CHUNK);
        }
        // No select on the shutdown Notify here: registering with it on every
        // read would take its internal lock per batch on every connection.
        // Shutdown is noticed after the batch (below) or by runtime teardown.
        let read = match session.pubsub.subscriber() {
            // Redis's idle timeout spares subscribers
            None => shared.idle_read(stream.read_buf(&mut rbuf)).await,
            // a subscriber also wakes for messages (both futures are
            // cancel-safe: nothing is lost when the other one wins)
            Some(sub) => {
                let sub = sub.clone();
                tokio::select! {
                    r = stream.read_buf(&mut rbuf) => r,
                    () = sub.ready() => {
                        // no write of this connection to wait for
                        let mark = shared.persist.get().map_or(0, |p| p.mark());
                        if !sub.drain_into(&mut out)
                            || write(&shared, &mut stream, &mut out, mark, Some(&sub)).await.is_err()
                        {
                            break;
                        }
                        continue;
                    }
                }
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        shared
            .counters
            .net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);

        let mut off = 0;
        let now = magpie_engine::now_ms();
        // where the log stood before this batch (see `write`)
        let mark = shared.persist.get().map_or(0, |p| p.mark());
        let mut failed = false;
        // a subscriber closed over its output limit: close unanswered
        let mut killed = false;
        let mut over_limit = false;
        observer.begin(&shared.slowlog);
        let mut started = Instant::now();
        while off < rbuf.len() && !session.close {
            let buf = &rbuf[off..];
            match parser.parse(buf) {
                Ok(Some(req)) => {
                    let args = parser.args(buf);
                    if req.consumed > query_limit && big_arg_over(args, query_limit) {
                        // Redis sees such an argument whole in its query
                        // buffer before running the command, and closes
                        over_limit = true;
                        break;
                    }
                    let proto = match req.framing {
                        Framing::Kvs => Proto::Kvs,
                        _ => session.proto,
                    };
                    if let Some(sub) = session.pubsub.subscriber() {
                        // messages that came before this command go first
                        if !sub.drain_into(&mut out) {
                            killed = true;
                            break;
                        }
                    }
                    let before = out.len();
                    let mut w = ReplyWriter::new(&mut out, proto);
                    let mut ctx = Ctx {
                        shared: &shared,
                        session: &mut session,
                        out: &mut w,
                        now,
                        framing: req.framing,
                        commands,
                    };
                    resp::execute(&mut ctx, args);
                    let done = Instant::now();
                    let nanos = done.duration_since(started).as_nanos() as u64;
                    started = done;
                    let cmd = session.last_index.take();
                    let error = matches!(out.get(before), Some(b'-' | b'!'));
                    let notes = observer.finish(cmd, nanos, error);
                    if notes.any() && !resp::is_secret(args.get(0)) {
                        let words: Vec<&[u8]> = args.iter().collect();
                        write_down(
                            &shared.slowlog,
                            Door::Resp,
                            &session.info,
                            &words,
                            nanos,
                            error,
                            notes,
                        );
                    }
                    off += req.consumed;
                    if out.len() >= FLUSH_AT {
                        let sub = session.pubsub.subscriber();
                        if write(&shared, &mut stream, &mut out, mark, sub)
                            .await
                            .is_err()
                        {
                            return;
                        }
                        started = Instant::now();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    ReplyWriter::new(&mut out, session.proto).error(&e.to_string());
                    failed = true;
                    break;
                }
            }
        }
        rbuf.advance(off);
        session.flush_counters(&shared.counters);
        observer.end(&shared.command_stats);
        {
            let mut st = session.info.state.lock();
            st.last_active = Some(std::time::Instant::now());
            st.db = session.db;
            st.resp = resp::proto_version(session.proto) as u8;
            st.last_cmd.clear();
            st.last_cmd.push_str(session.last_cmd);
        }
        let sub = session.pubsub.subscriber();
        if let Some(sub) = sub {
            sub.set_resp3(session.proto == Proto::Resp3);
            killed |= !sub.drain_into(&mut out);
        }
        if killed
            || write(&shared, &mut stream, &mut out, mark, sub)
                .await
                .is_err()
            || failed
            || session.close
        {
            break;
        }
        let buffered = parser.query_buffer_len(&rbuf);
        if over_limit || buffered > query_limit {
            tracing::warn!(
                client = session.id(),
                bytes = buffered,
                "closing client that reached max query buffer length"
            );
            break;
        }
        if let Some(need) = parser.needed(&rbuf) {
            // grow once for a large announced bulk, within the query limit
            // (which does not count the parsed part of the request)
            let need = need.min(rbuf.len() - buffered + query_limit + 1);
            if need > rbuf.capacity() {
                rbuf.reserve(need - rbuf.len());
            }
        }
        if shared.stopping.load(Ordering::Relaxed) {
            break;
        }
    }
    let _ = stream.shutdown().await;
}

/// True when a complete request has a bulk argument of at least
/// [`BIG_ARG`] bytes that, with its CRLF, exceeds the query-buffer limit:
/// Redis holds such an argument alone in its query buffer once it has fully
/// arrived, and closes the client instead of running the command.
fn big_arg_over(args: Args<'_>, query_limit: usize) -> bool {
    args.iter()
        .any(|a| a.len() >= BIG_ARG && a.len() + 2 > query_limit)
}

/// Writes `out` once the writes it acknowledges are durable. For a
/// subscriber the write gives up as soon as the subscriber is closed (over
/// its output limit): a client that does not read must not hold it.
async fn write<S: AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    out: &mut Vec<u8>,
    mark: u64,
    sub: Option<&Arc<Subscriber>>,
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
    match sub {
        None => {
            stream.write_all(out).await?;
            // a TLS stream may hold the last record until flushed; a TCP
            // stream's flush does nothing
            stream.flush().await?;
        }
        Some(sub) => {
            let written = async {
                stream.write_all(out).await?;
                stream.flush().await
            };
            tokio::select! {
                r = written => r?,
                () = sub.closed() => return Err(std::io::ErrorKind::ConnectionAborted.into()),
            }
            sub.sent();
        }
    }
    shared
        .counters
        .net_output_bytes
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    out.clear();
    if out.capacity() > 4 * FLUSH_AT {
        out.shrink_to(READ_CHUNK);
    }
    Ok(())
}
