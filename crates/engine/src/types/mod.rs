//! The value model: every key holds a string or a collection. Strings live
//! inline in their entry (see `entry.rs`); a collection lives behind one
//! pointer in its entry's value, as one of the types of this module. Each
//! type is protocol-free: it knows its members and its encodings, and the
//! engine's [`crate::Txn`] methods (in `collections.rs`) wrap its writes
//! with the keyspace's bookkeeping (memory, CAS, mutation records).
//!
//! Small collections use compact encodings and convert to scalable ones past
//! [`TypeLimits`], Redis's `*-max-listpack-*` / `set-max-intset-entries`
//! thresholds with Redis's defaults.

mod hash;
mod pack;
mod set;
mod table;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use hash::Hash;
pub use set::Set;

/// What a key holds: Redis's `TYPE` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Bytes (everything memcached and HTTP store).
    String,
    /// A field -> value map.
    Hash,
    /// An unordered set of distinct members.
    Set,
}

impl Kind {
    /// The name `TYPE` replies with.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::Set => "set",
        }
    }

    /// The kind of a `TYPE` name (as `SCAN ... TYPE` takes it), ignoring ASCII case.
    pub fn from_name(name: &[u8]) -> Option<Kind> {
        [Kind::String, Kind::Hash, Kind::Set]
            .into_iter()
            .find(|k| k.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The byte a log record stores for this kind.
    pub fn to_u8(self) -> u8 {
        match self {
            Kind::String => 0,
            Kind::Hash => 1,
            Kind::Set => 2,
        }
    }

    /// The kind a log record's byte names.
    pub fn from_u8(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::String),
            1 => Some(Kind::Hash),
            2 => Some(Kind::Set),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A command met a key holding another kind of value. Its display is
/// Redis's error text, which every door reports in its own framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongType;

impl fmt::Display for WrongType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
    }
}

impl std::error::Error for WrongType {}

/// The thresholds at which compact encodings convert (Redis's config names
/// and defaults). Changing them affects later writes only: a collection
/// never converts back, as in Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeLimits {
    /// `hash-max-listpack-entries`: most fields of a compact hash.
    pub hash_max_listpack_entries: usize,
    /// `hash-max-listpack-value`: longest field or value of a compact hash.
    pub hash_max_listpack_value: usize,
    /// `set-max-intset-entries`: most members of an intset.
    pub set_max_intset_entries: usize,
    /// `set-max-listpack-entries`: most members of a compact string set.
    pub set_max_listpack_entries: usize,
    /// `set-max-listpack-value`: longest member of a compact string set.
    pub set_max_listpack_value: usize,
}

impl Default for TypeLimits {
    fn default() -> Self {
        TypeLimits {
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
        }
    }
}

/// [`TypeLimits`] as the engine keeps them: readable by every write
/// without a lock, settable at any time (CONFIG SET).
#[derive(Debug)]
pub(crate) struct SharedLimits([AtomicUsize; 5]);

impl SharedLimits {
    pub(crate) fn new(l: TypeLimits) -> SharedLimits {
        let s = SharedLimits(Default::default());
        s.store(l);
        s
    }

    pub(crate) fn store(&self, l: TypeLimits) {
        let v = [
            l.hash_max_listpack_entries,
            l.hash_max_listpack_value,
            l.set_max_intset_entries,
            l.set_max_listpack_entries,
            l.set_max_listpack_value,
        ];
        for (a, v) in self.0.iter().zip(v) {
            a.store(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn load(&self) -> TypeLimits {
        let v = |i: usize| self.0[i].load(Ordering::Relaxed);
        TypeLimits {
            hash_max_listpack_entries: v(0),
            hash_max_listpack_value: v(1),
            set_max_intset_entries: v(2),
            set_max_listpack_entries: v(3),
            set_max_listpack_value: v(4),
        }
    }
}

/// A collection value, as an entry owns it.
#[derive(Clone, Debug)]
pub(crate) enum Collection {
    Hash(Hash),
    Set(Set),
}

impl Collection {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Collection::Hash(_) => Kind::Hash,
            Collection::Set(_) => Kind::Set,
        }
    }

    pub(crate) fn encoding(&self) -> &'static str {
        match self {
            Collection::Hash(h) => h.encoding(),
            Collection::Set(s) => s.encoding(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Collection::Hash(h) => h.len(),
            Collection::Set(s) => s.len(),
        }
    }

    /// Bytes the collection holds: its box plus its encoding's heap. (The
    /// box is 40 bytes: see the size test below.)
    pub(crate) fn footprint(&self) -> usize {
        std::mem::size_of::<Collection>()
            + match self {
                Collection::Hash(h) => h.heap_bytes(),
                Collection::Set(s) => s.heap_bytes(),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collection_box_stays_small() {
        // one allocation of this size per hash or set, beside its entry
        // and its buffer: it decides the memory of many small collections
        assert!(
            std::mem::size_of::<Collection>() <= 40,
            "{}",
            std::mem::size_of::<Collection>()
        );
    }
}
