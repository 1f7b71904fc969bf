//! The CLIENT LIST / CLIENT INFO line of a connection, in Redis 7.0's
//! fields: what CLIENT LIST and CLIENT INFO print and what the ACL LOG
//! records as a refused client's `client-info`.

use std::fmt::Write as _;
use std::time::Instant;

use super::handler::{proto_version, Ctx};
use crate::clients::{ClientInfo, ClientState};

/// Appends one CLIENT LIST line: Redis 7.0's fields, plus 7.2's lib-name
/// and lib-ver once the client has set one with CLIENT SETINFO (a 7.2
/// command), so a client that never did sees exactly 7.0's line. magpie
/// does not account per-client buffers, so the buffer and memory fields
/// are 0.
pub fn client_line(out: &mut String, info: &ClientInfo, st: &ClientState, now: Instant) {
    let age = now.saturating_duration_since(info.created).as_secs();
    let idle = st
        .last_active
        .map_or(age, |t| now.saturating_duration_since(t).as_secs());
    let cmd = if st.last_cmd.is_empty() {
        "NULL"
    } else {
        &st.last_cmd
    };
    let [sub, psub, ssub] = st.subscriptions;
    // Redis's P flag: subscribed to anything
    let flags = if sub + psub + ssub > 0 { "P" } else { "N" };
    let _ = write!(
        out,
        "id={} addr={} laddr={} fd={} name={} age={age} idle={idle} flags={flags} db={} \
         sub={sub} psub={psub} ssub={ssub} multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 \
         obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={cmd} user={} redir=-1 resp={}",
        info.id,
        info.addr,
        info.laddr,
        info.fd,
        String::from_utf8_lossy(&st.name),
        st.db,
        if st.user.is_empty() {
            "default"
        } else {
            &st.user
        },
        st.resp,
    );
    if !st.lib_name.is_empty() || !st.lib_ver.is_empty() {
        let _ = write!(
            out,
            " lib-name={} lib-ver={}",
            String::from_utf8_lossy(&st.lib_name),
            String::from_utf8_lossy(&st.lib_ver),
        );
    }
    out.push('\n');
}

/// This connection's registry state with the live session values, which
/// the registry only receives at the end of each read batch.
pub fn own_state(ctx: &Ctx<'_, '_>) -> ClientState {
    let mut st = ctx.session.info.state.lock().clone();
    st.db = ctx.session.db;
    st.resp = proto_version(ctx.session.proto) as u8;
    st.last_cmd.clear();
    st.last_cmd.push_str(ctx.session.last_cmd);
    st.last_active = Some(Instant::now());
    st.user = ctx.session.acl.name().to_string();
    st
}

/// This connection's CLIENT INFO line (also what the ACL LOG records).
pub fn client_info_line(ctx: &Ctx<'_, '_>) -> String {
    let st = own_state(ctx);
    let mut text = String::with_capacity(300);
    client_line(&mut text, &ctx.session.info, &st, Instant::now());
    text
}
