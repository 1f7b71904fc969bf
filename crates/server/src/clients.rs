//! The client registry's entries: what CLIENT LIST, CLIENT INFO and
//! memcached's `stats conns` show about each connection of any door, and
//! what changes about it while it runs.

use std::net::SocketAddr;
use std::time::Instant;

use parking_lot::Mutex;

/// What CLIENT LIST / CLIENT INFO show about one connection.
#[derive(Debug)]
pub struct ClientInfo {
    /// Unique, increasing connection id.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// Socket file descriptor (CLIENT LIST `fd=`).
    pub fd: i32,
    /// When the connection was accepted.
    pub created: Instant,
    /// Mutable details, updated at most once per read batch.
    pub state: Mutex<ClientState>,
    /// What a memcached connection is doing, for `stats conns` (a
    /// [`McConnState`] as u8; unused on other doors).
    pub memcache_state: std::sync::atomic::AtomicU8,
}

/// A memcached connection's state as memcached's `stats conns` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum McConnState {
    /// Accepted, nothing read yet (`conn_new_cmd`).
    NewCmd = 0,
    /// Waiting for (the rest of) a command line (`conn_read`).
    Read = 1,
    /// Waiting for the rest of a data block (`conn_nread`).
    NRead = 2,
    /// Executing requests (`conn_parse_cmd`).
    ParseCmd = 3,
    /// Writing replies (`conn_mwrite`).
    MWrite = 4,
}

impl McConnState {
    /// memcached's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            McConnState::NewCmd => "conn_new_cmd",
            McConnState::Read => "conn_read",
            McConnState::NRead => "conn_nread",
            McConnState::ParseCmd => "conn_parse_cmd",
            McConnState::MWrite => "conn_mwrite",
        }
    }

    /// Decodes [`ClientInfo::memcache_state`].
    pub fn from_u8(v: u8) -> McConnState {
        match v {
            1 => McConnState::Read,
            2 => McConnState::NRead,
            3 => McConnState::ParseCmd,
            4 => McConnState::MWrite,
            _ => McConnState::NewCmd,
        }
    }
}

impl ClientInfo {
    /// Records what this memcached connection is doing.
    pub fn set_memcache_state(&self, s: McConnState) {
        self.memcache_state
            .store(s as u8, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The parts of [`ClientInfo`] that change.
#[derive(Debug, Default, Clone)]
pub struct ClientState {
    /// CLIENT SETNAME.
    pub name: Vec<u8>,
    /// CLIENT SETINFO lib-name.
    pub lib_name: Vec<u8>,
    /// CLIENT SETINFO lib-ver.
    pub lib_ver: Vec<u8>,
    /// Selected database.
    pub db: usize,
    /// RESP version (2 or 3).
    pub resp: u8,
    /// Last command's name (lowercase).
    pub last_cmd: String,
    /// When the last command ran.
    pub last_active: Option<Instant>,
    /// Channels, patterns and shard channels subscribed to (CLIENT LIST's
    /// sub, psub and ssub).
    pub subscriptions: [u32; 3],
    /// The ACL user it authenticated as (empty: `default`).
    pub user: String,
}
