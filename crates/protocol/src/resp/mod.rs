//! The Redis side: request parsing ([`parse`]) and reply encoding ([`encode`]).

pub mod check;
pub mod encode;
pub mod parse;

pub use encode::{Proto, ReplyWriter};
pub use parse::{Args, Framing, Limits, Parser, ProtocolError, Request};
