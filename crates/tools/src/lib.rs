//! # magpie-tools
//!
//! The client tools behind the `magpie` binary's `cli` and `bench`
//! subcommands. They talk to any server over the wire (RESP or memcached
//! text), so they stand apart from the server crate: [`cli`] is a
//! redis-cli work-alike (`--memcache` for the memcached text protocol) and
//! [`mod@bench`] a memtier_benchmark-style load generator.

pub mod bench;
pub mod cli;
