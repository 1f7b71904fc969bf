//! Per-connection state that commands read and change (selected database,
//! protocol version, authentication, name).

use std::sync::Arc;

use magpie_protocol::resp::Proto;

use crate::shared::ClientInfo;

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
    /// Close the connection once the pending replies are written (QUIT,
    /// protocol errors).
    pub close: bool,
    /// Name of the last command run (for CLIENT LIST).
    pub last_cmd: &'static str,
}

impl Session {
    /// A fresh session; authenticated unless a password is required.
    pub fn new(info: Arc<ClientInfo>, needs_auth: bool) -> Session {
        Session {
            info,
            db: 0,
            proto: Proto::Resp2,
            authenticated: !needs_auth,
            close: false,
            last_cmd: "NULL",
        }
    }

    /// Connection id (CLIENT ID).
    pub fn id(&self) -> u64 {
        self.info.id
    }
}
