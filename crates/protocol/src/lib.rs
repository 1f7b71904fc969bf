//! # magpie-protocol
//!
//! Magpie's wire formats as pure functions over bytes: parsers turn a read
//! buffer into requests (borrowing from it), encoders append replies to an
//! output buffer. Nothing here does I/O or knows about storage, so every
//! parser can be fuzzed and property-tested on its own.

pub mod int;
pub mod memcache;
pub mod resp;
