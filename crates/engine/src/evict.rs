//! The memory limit: which keys go when a write finds the keyspace over
//! its budget (Redis's `maxmemory` and `maxmemory-policy`, memcached's `-m`
//! with its LRU).
//!
//! The budget is compared with the engine's own count of the keyspace's
//! bytes (entry allocations plus hash-table buckets; see
//! [`crate::Engine::used_memory`]), which is exact and costs no allocator
//! query. Eviction samples: a shard is picked (databases weighted by their
//! bytes), `samples` entries are read from a random bucket onwards (the
//! table is ordered by hash, so neighbouring buckets hold unrelated keys),
//! and the best candidate of the policy goes. This is Redis's approximated
//! LRU without its cross-call pool; an entry already expired is always the
//! first to go.

use std::fmt;

/// What goes when the keyspace is over its memory limit. The names are
/// Redis's `maxmemory-policy` values; LFU (`allkeys-lfu`, `volatile-lfu`) is
/// not offered: entries keep an access time, not an access counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EvictionPolicy {
    /// Nothing is evicted: a write that needs memory is refused (Redis's
    /// default).
    #[default]
    NoEviction,
    /// The least recently used key, among all keys (memcached's behaviour).
    AllKeysLru,
    /// A random key.
    AllKeysRandom,
    /// The least recently used key among keys with a TTL.
    VolatileLru,
    /// A random key among keys with a TTL.
    VolatileRandom,
    /// The key with a TTL that expires soonest.
    VolatileTtl,
}

impl EvictionPolicy {
    /// Every policy, in the order help texts list them.
    pub const ALL: [EvictionPolicy; 6] = [
        EvictionPolicy::NoEviction,
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::AllKeysRandom,
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
    ];

    /// The Redis name (`allkeys-lru`, ...).
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::AllKeysRandom => "allkeys-random",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }

    /// The policy of a Redis name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<EvictionPolicy> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// True for the policies that only evict keys carrying a TTL.
    pub(crate) fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }

    pub(crate) fn to_u8(self) -> u8 {
        Self::ALL.iter().position(|p| *p == self).unwrap_or(0) as u8
    }

    pub(crate) fn from_u8(v: u8) -> EvictionPolicy {
        Self::ALL.get(v as usize).copied().unwrap_or_default()
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The keyspace's memory budget, as set by [`crate::Engine::set_memory_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Bytes of entries and tables allowed before writes evict (or are
    /// refused); 0 means no limit.
    pub max_bytes: usize,
    /// What to evict.
    pub policy: EvictionPolicy,
    /// Entries examined per eviction (Redis's `maxmemory-samples`); more is
    /// closer to exact LRU and costs more per eviction. At least 1.
    pub samples: usize,
}

impl Default for MemoryLimit {
    fn default() -> Self {
        MemoryLimit {
            max_bytes: 0,
            policy: EvictionPolicy::NoEviction,
            samples: DEFAULT_SAMPLES,
        }
    }
}

/// Redis's default `maxmemory-samples`.
pub const DEFAULT_SAMPLES: usize = 5;

/// Most samples one eviction may take (Redis allows 1..=64).
pub const MAX_SAMPLES: usize = 64;

/// Most keys one [`crate::Engine::make_room`] call evicts. A call that
/// reaches it still lets its write proceed (the next writes go on
/// evicting), so one write never stalls for long behind a limit lowered far
/// below the dataset; Redis bounds the same loop by time.
pub const MAX_EVICTIONS_PER_CALL: usize = 4096;

/// Refusal of [`crate::Engine::make_room`]: the keyspace is over its limit
/// and the policy has nothing left to evict (or is `noeviction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the keyspace is over its memory limit and nothing can be evicted")
    }
}

impl std::error::Error for OutOfMemory {}
