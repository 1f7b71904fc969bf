//! Per-connection state that commands read and change (selected database,
//! protocol version, authentication, name).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use magpie_engine::KeyVersion;
use magpie_protocol::resp::Proto;

use crate::acl::{Acl, AclSession};
use crate::clients::ClientInfo;
use crate::pubsub::ClientSubs;
use crate::shared::Counters;

/// Counts kept per connection and added to the shared [`Counters`] once per
/// batch, so commands do not contend on shared cache lines.
#[derive(Debug, Default)]
pub struct LocalCounters {
    /// Commands executed.
    pub commands: u64,
    /// Reads that found a key.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
}

/// A key WATCH remembers: where it lives and the version it had.
pub struct Watched {
    /// The database selected when it was watched.
    pub db: usize,
    /// The key.
    pub key: Vec<u8>,
    /// Its version then ([`magpie_engine::Txn::version`]).
    pub version: KeyVersion,
}

/// MULTI/EXEC state: the queue while in MULTI and the watched keys.
#[derive(Default)]
pub struct Transaction {
    /// Some while in MULTI: every queued command's arguments.
    pub queued: Option<Vec<Vec<Vec<u8>>>>,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    pub dirty: bool,
    /// Keys whose change makes EXEC answer a null array.
    pub watched: Vec<Watched>,
}

impl Transaction {
    /// Marks the transaction failed when in MULTI (a queued command was
    /// refused).
    pub fn flag(&mut self) {
        if self.queued.is_some() {
            self.dirty = true;
        }
    }
}

/// One client's state on the Redis side.
pub struct Session {
    /// Registry entry shown by CLIENT LIST.
    pub info: Arc<ClientInfo>,
    /// Selected database.
    pub db: usize,
    /// Reply dialect (RESP2 until `HELLO 3`).
    pub proto: Proto,
    /// False until AUTH succeeds when a password is required.
    pub authenticated: bool,
    /// The ACL user the connection runs as (`default` until AUTH).
    pub acl: AclSession,
    /// Close the connection once the pending replies are written (QUIT,
    /// protocol errors).
    pub close: bool,
    /// Name of the last command run (for CLIENT LIST).
    pub last_cmd: &'static str,
    /// Counts not yet added to the shared counters.
    pub counters: LocalCounters,
    /// Index (in the command table) of the command that ran last, taken by
    /// the connection to time it; None when the request ran no command.
    pub last_index: Option<u16>,
    /// Channels, patterns and shard channels subscribed to, and the queue
    /// their messages arrive in.
    pub pubsub: ClientSubs,
    /// MULTI's queue and WATCH's keys.
    pub multi: Transaction,
}

impl Session {
    /// A fresh session as user `default`; authenticated unless that user
    /// needs a password (or is off).
    pub fn new(info: Arc<ClientInfo>, acl: &Acl) -> Session {
        Session {
            info,
            db: 0,
            proto: Proto::Resp2,
            authenticated: !acl.auth_required(),
            acl: AclSession::new(acl),
            close: false,
            last_cmd: "NULL",
            counters: LocalCounters::default(),
            last_index: None,
            pubsub: ClientSubs::default(),
            multi: Transaction::default(),
        }
    }

    /// Notes that the command `name` (at `index` in the command table, if
    /// it has one) is about to run.
    pub fn ran(&mut self, name: &'static str, index: Option<u16>) {
        self.counters.commands += 1;
        self.last_cmd = name;
        self.last_index = index;
    }

    /// Adds this connection's pending counts to the server-wide counters.
    pub fn flush_counters(&mut self, shared: &Counters) {
        let c = std::mem::take(&mut self.counters);
        if c.commands > 0 {
            shared
                .commands_processed
                .fetch_add(c.commands, Ordering::Relaxed);
        }
        if c.hits > 0 {
            shared.keyspace_hits.fetch_add(c.hits, Ordering::Relaxed);
        }
        if c.misses > 0 {
            shared
                .keyspace_misses
                .fetch_add(c.misses, Ordering::Relaxed);
        }
    }

    /// Connection id (CLIENT ID).
    pub fn id(&self) -> u64 {
        self.info.id
    }
}
