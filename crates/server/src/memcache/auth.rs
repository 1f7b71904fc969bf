//! memcached's text-protocol authentication (memcached 1.6 `-Y`), mapped
//! to the ACL users, and the permission check of every request.
//!
//! While the ACL's `default` user needs a password (`--requirepass`, or
//! any rules that make it so), a connection starts unauthenticated: its
//! first request must be a `set` whose data is `<user> <password>`, which
//! answers `STORED` (even under `noreply`, as memcached does) and stores
//! nothing. Anything else gets `CLIENT_ERROR unauthenticated`, a wrong
//! pair `CLIENT_ERROR authentication failure`, and what else the client
//! sent in the same read is dropped unanswered, as memcached drops it (a
//! wrong pair followed by more requests answers only
//! `CLIENT_ERROR unauthenticated`, as memcached does); the connection
//! stays open for another try. Once authenticated, each request is checked as the RESP
//! command it is equivalent to (see [`equivalent`]): a read-only user
//! cannot `set`, and key patterns apply.

use std::sync::Arc;

use magpie_protocol::memcache::{Request, StoreOp};

use crate::acl::{AclSession, Denied, LogEntry, Reason};
use crate::clients::ClientInfo;

use super::McCtx;

/// memcached's reply to anything but the auth `set` before
/// authentication.
pub const UNAUTHENTICATED: &str = "CLIENT_ERROR unauthenticated";

/// A memcached connection's identity.
pub struct McAuth {
    /// The user, once authenticated (from the start when `default` needs
    /// no password).
    pub session: Option<AclSession>,
    /// The connection, for ACL LOG entries.
    pub info: Arc<ClientInfo>,
    /// What the last request's refusal asks of the connection.
    refused: Refused,
}

/// A refusal before authentication, for [`McAuth::after_request`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Refused {
    /// Nothing refused.
    #[default]
    No,
    /// A request other than the auth `set`.
    Request,
    /// Wrong credentials; the reply starts at this output offset.
    Credentials(usize),
}

impl McAuth {
    /// Called by the connection after each request, with its output and
    /// whether more of the read buffer follows: true when the rest of the
    /// buffer must be dropped (memcached's handling of an unauthenticated
    /// connection).
    pub fn after_request(&mut self, out: &mut Vec<u8>, more: bool) -> bool {
        match std::mem::take(&mut self.refused) {
            Refused::No => false,
            Refused::Request => true,
            Refused::Credentials(at) => {
                if more {
                    out.truncate(at);
                    out.extend_from_slice(UNAUTHENTICATED.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                true
            }
        }
    }

    /// A new connection: `default` when it needs no password, else
    /// unauthenticated.
    pub fn new(acl: &crate::acl::Acl, info: Arc<ClientInfo>) -> McAuth {
        McAuth {
            session: (!acl.auth_required()).then(|| AclSession::new(acl)),
            info,
            refused: Refused::No,
        }
    }
}

/// The RESP request a memcached request is equivalent to for the ACL: the
/// command's name and its arguments (keys where RESP has them), or None
/// for requests every user may make (`version`, `quit`, `mn`, errors).
pub fn equivalent<'a>(req: &'a Request<'_>) -> Option<(&'static str, Vec<&'a [u8]>)> {
    let one = |name: &'static str, key: &'a [u8], extra: &[&'static [u8]]| {
        let mut v: Vec<&'a [u8]> = vec![name.as_bytes(), key];
        v.extend_from_slice(extra);
        Some((name, v))
    };
    match req {
        Request::Get { touch, keys, .. } => {
            let name = if touch.is_some() { "getex" } else { "mget" };
            let mut v: Vec<&'a [u8]> = vec![name.as_bytes()];
            v.extend(keys.iter());
            Some((name, v))
        }
        Request::Touch { key, .. } => one("expire", key, &[b"0"]),
        Request::Store { op, key, .. } | Request::TooLarge { op, key, .. } => match op {
            StoreOp::Append | StoreOp::Prepend => one("append", key, &[b""]),
            _ => one("set", key, &[b""]),
        },
        Request::Delete { key, .. } => one("del", key, &[]),
        Request::Arith {
            incr: true, key, ..
        } => one("incrby", key, &[b"1"]),
        Request::Arith {
            incr: false, key, ..
        } => one("decrby", key, &[b"1"]),
        Request::FlushAll { .. } => Some(("flushall", vec![b"flushall"])),
        Request::Stats { .. } => Some(("info", vec![b"info"])),
        Request::Verbosity { .. } => Some(("config|set", vec![b"config", b"set", b"", b""])),
        Request::MetaGet { key, .. } => one("get", key.bytes(), &[]),
        Request::MetaSet { key, .. } | Request::MetaSetTooLarge { key } => {
            one("set", key.bytes(), &[b""])
        }
        Request::MetaDelete { key, .. } => one("del", key.bytes(), &[]),
        Request::MetaArith { key, .. } => one("incrby", key.bytes(), &[b"1"]),
        Request::MetaDebug { key } => Some((
            "object|freq",
            vec![&b"object"[..], &b"freq"[..], key.bytes()],
        )),
        Request::InvalidateTags { .. } => {
            Some(("invalidate|tag", vec![&b"invalidate"[..], &b"tag"[..]]))
        }
        Request::InvalidatePrefixes { .. } => Some((
            "invalidate|prefix",
            vec![&b"invalidate"[..], &b"prefix"[..]],
        )),
        Request::TagKeys { tag, .. } => Some(("tag|scan", vec![&b"tag"[..], &b"scan"[..], tag])),
        Request::Version | Request::Quit | Request::MetaNoop | Request::Error { .. } => None,
    }
}

/// The `noreply` of a request, for a refusal's reply.
fn quiet(req: &Request<'_>) -> bool {
    match req {
        Request::Store { noreply, .. }
        | Request::TooLarge { noreply, .. }
        | Request::Delete { noreply, .. }
        | Request::Arith { noreply, .. }
        | Request::Touch { noreply, .. }
        | Request::FlushAll { noreply, .. }
        | Request::Verbosity { noreply, .. } => *noreply,
        _ => false,
    }
}

/// Runs before every request: authenticates a connection's first `set`,
/// refuses what the user may not do. True when the request may run.
pub fn gate(ctx: &mut McCtx<'_>, req: &Request<'_>) -> bool {
    let acl = &ctx.shared.acl;
    let Some(session) = ctx.auth.session.as_mut() else {
        if let Request::Store {
            op: StoreOp::Set,
            data,
            ..
        } = req
        {
            let mut words = data.split(|&b| b == b' ').filter(|w| !w.is_empty());
            let (user, pass) = (words.next().unwrap_or(b""), words.next().unwrap_or(b""));
            if let Some(u) = acl.authenticate(user, pass) {
                ctx.auth.info.state.lock().user = u.name.clone();
                ctx.auth.session = Some(AclSession::of(acl, u));
                ctx.reply("STORED", false);
                return false;
            }
            let name = String::from_utf8_lossy(user).into_owned();
            log(ctx, Reason::Auth, "set".into(), name);
            ctx.auth.refused = Refused::Credentials(ctx.out.len());
            ctx.reply("CLIENT_ERROR authentication failure", false);
            return false;
        }
        ctx.reply(UNAUTHENTICATED, false);
        ctx.auth.refused = Refused::Request;
        return false;
    };
    if !session.refresh(acl) {
        // the user was deleted
        ctx.close = true;
        return false;
    }
    if session.unrestricted {
        return true;
    }
    let Some((name, args)) = equivalent(req) else {
        return true;
    };
    let catalog = acl.catalog();
    let Some(index) = catalog.index(name) else {
        return true;
    };
    let user = session.user.clone();
    // GETEX has one key: a gat of several keys is checked key by key
    let verdict = if name == "getex" && args.len() > 2 {
        args[1..].iter().try_for_each(|k| {
            user.check(catalog, index, &[b"getex", k])
                .map_err(|d| (d, *k))
        })
    } else {
        user.check(catalog, index, &args).map_err(|d| {
            let object = match d {
                Denied::Key(i) | Denied::Channel(i) => args[i],
                Denied::Command => b"",
            };
            (d, object)
        })
    };
    let Err((denied, object)) = verdict else {
        return true;
    };
    let (reason, object, text) = match denied {
        Denied::Command => (
            Reason::Command,
            name.to_string(),
            format!("this user has no permissions to run the '{name}' command"),
        ),
        _ => (
            Reason::Key,
            String::from_utf8_lossy(object).into_owned(),
            "this user has no permissions to access one of the keys used as arguments".into(),
        ),
    };
    let username = user.name.clone();
    log(ctx, reason, object, username);
    ctx.reply(&format!("CLIENT_ERROR NOPERM {text}"), quiet(req));
    false
}

fn log(ctx: &mut McCtx<'_>, reason: Reason, object: String, username: String) {
    let info = &ctx.auth.info;
    let client_info = format!(
        "id={} addr={} laddr={} fd={} door=memcached user={}",
        info.id,
        info.addr,
        info.laddr,
        info.fd,
        ctx.auth.session.as_ref().map_or("default", |s| s.name())
    );
    ctx.shared.acl.log.lock().add(LogEntry {
        count: 1,
        reason,
        context: "toplevel",
        object,
        username,
        last_ms: magpie_engine::now_ms(),
        client_info,
    });
}
