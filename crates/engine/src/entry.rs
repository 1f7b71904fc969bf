//! The stored form of one key: a single heap allocation holding a small header,
//! the optional fields that are actually in use, the key and the value.
//!
//! Memory per key is a headline figure, so an entry is one thin pointer in the
//! table and one allocation sized exactly for what it holds:
//!
//! ```text
//! offset  size  field
//! 0       8     cas       (u64, little endian; unique per write)
//! 8       4     key_len   (u32)
//! 12      4     value_len (u32)
//! 16      1     present   (bit set of the optional fields below, plus
//!                           the FETCHED state bit)
//! 17      8     expire_at (u64 ms since the Unix epoch)   if EXPIRE
//! ..      4     flags     (u32 client flags, memcached)   if FLAGS
//! ..      n     key
//! ..      m     value
//! ```
//!
//! A 15-byte key with a 32-byte value and no TTL or flags takes exactly 64
//! bytes, one allocator size class.
//!
//! Bit 4 of `present` (FETCHED) marks a version a memcached retrieval has
//! read (memcached's `ITEM_FETCHED`, reported by the meta `h` flag). It adds
//! no field and no byte; every write that makes a new version starts it
//! cleared, metadata-only changes (expiry, flags) keep it, and it is not
//! persisted. Later features (tags, eviction metadata)
//! add further optional fields behind new `present` bits, so keys that do not
//! use them pay nothing.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

const HEADER: usize = 17;
const HAS_EXPIRE: u8 = 1;
const HAS_FLAGS: u8 = 2;
/// Not an optional field: set once a memcached retrieval read this version.
const FETCHED: u8 = 4;

/// Largest key or value an entry can hold (lengths are stored as u32).
pub const MAX_PART_LEN: usize = u32::MAX as usize;

/// Owned, compact storage for one key (see the module docs for the layout).
pub(crate) struct Entry {
    ptr: NonNull<u8>,
}

// SAFETY: an Entry exclusively owns its allocation, like a Box<[u8]>.
unsafe impl Send for Entry {}
// SAFETY: shared access only reads the allocation.
unsafe impl Sync for Entry {}

/// The fields of an entry other than key and value, as passed to [`Entry::build`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Version number of this write (CAS).
    pub cas: u64,
    /// Absolute expiry in ms since the Unix epoch, if any.
    pub expire_at: Option<u64>,
    /// Opaque 32-bit client flags (memcached); 0 for RESP writes.
    pub flags: u32,
}

impl Entry {
    /// Allocates an entry whose value is the concatenation of `parts`.
    ///
    /// Panics if the key or the total value length exceeds [`MAX_PART_LEN`];
    /// callers enforce much smaller configured limits first.
    pub(crate) fn build(key: &[u8], parts: &[&[u8]], meta: Meta) -> Entry {
        let value_len: usize = parts.iter().map(|p| p.len()).sum();
        Self::build_with(key, value_len, meta, |dst| {
            let mut at = 0;
            for p in parts {
                dst[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        })
    }

    /// Allocates an entry with a value of `value_len` bytes written by `fill`
    /// (which receives a zeroed buffer).
    pub(crate) fn build_with(
        key: &[u8],
        value_len: usize,
        meta: Meta,
        fill: impl FnOnce(&mut [u8]),
    ) -> Entry {
        assert!(key.len() <= MAX_PART_LEN && value_len <= MAX_PART_LEN);
        let mut present = 0u8;
        let mut opt = 0;
        if meta.expire_at.is_some() {
            present |= HAS_EXPIRE;
            opt += 8;
        }
        if meta.flags != 0 {
            present |= HAS_FLAGS;
            opt += 4;
        }
        let size = HEADER + opt + key.len() + value_len;
        let layout = Layout::from_size_align(size, 1).expect("entry layout");
        // SAFETY: size >= HEADER > 0.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        // SAFETY: `raw` points to `size` writable bytes that we initialise in full
        // below before any read.
        let buf = unsafe { std::slice::from_raw_parts_mut(raw, size) };
        buf[0..8].copy_from_slice(&meta.cas.to_le_bytes());
        buf[8..12].copy_from_slice(&(key.len() as u32).to_le_bytes());
        buf[12..16].copy_from_slice(&(value_len as u32).to_le_bytes());
        buf[16] = present;
        let mut at = HEADER;
        if let Some(t) = meta.expire_at {
            buf[at..at + 8].copy_from_slice(&t.to_le_bytes());
            at += 8;
        }
        if meta.flags != 0 {
            buf[at..at + 4].copy_from_slice(&meta.flags.to_le_bytes());
            at += 4;
        }
        buf[at..at + key.len()].copy_from_slice(key);
        at += key.len();
        let value = &mut buf[at..];
        value.fill(0);
        fill(value);
        Entry { ptr }
    }

    fn header(&self) -> &[u8; HEADER] {
        // SAFETY: every entry starts with HEADER initialised bytes.
        unsafe { &*(self.ptr.as_ptr() as *const [u8; HEADER]) }
    }

    fn present(&self) -> u8 {
        self.header()[16]
    }

    fn key_len(&self) -> usize {
        u32::from_le_bytes(self.header()[8..12].try_into().unwrap()) as usize
    }

    fn value_len(&self) -> usize {
        u32::from_le_bytes(self.header()[12..16].try_into().unwrap()) as usize
    }

    fn opt_len(&self) -> usize {
        let p = self.present();
        (if p & HAS_EXPIRE != 0 { 8 } else { 0 }) + (if p & HAS_FLAGS != 0 { 4 } else { 0 })
    }

    /// True once [`Entry::mark_fetched`] was called on this version.
    pub(crate) fn fetched(&self) -> bool {
        self.present() & FETCHED != 0
    }

    /// Records that a retrieval read this version (see the module docs).
    pub(crate) fn mark_fetched(&mut self) {
        // SAFETY: byte 16 is part of the header every entry starts with, and
        // `&mut self` gives exclusive access to the allocation.
        unsafe { *self.ptr.as_ptr().add(16) |= FETCHED }
    }

    /// Total bytes of the allocation (what the entry costs beyond its table slot).
    pub(crate) fn alloc_size(&self) -> usize {
        HEADER + self.opt_len() + self.key_len() + self.value_len()
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the allocation is alloc_size() bytes, all initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.alloc_size()) }
    }

    /// CAS version of the last write.
    pub(crate) fn cas(&self) -> u64 {
        u64::from_le_bytes(self.header()[0..8].try_into().unwrap())
    }

    /// Absolute expiry in ms, if the entry has one.
    pub(crate) fn expire_at(&self) -> Option<u64> {
        if self.present() & HAS_EXPIRE != 0 {
            Some(u64::from_le_bytes(
                self.bytes()[HEADER..HEADER + 8].try_into().unwrap(),
            ))
        } else {
            None
        }
    }

    /// Client flags (0 when none were stored).
    pub(crate) fn flags(&self) -> u32 {
        let p = self.present();
        if p & HAS_FLAGS == 0 {
            return 0;
        }
        let at = HEADER + if p & HAS_EXPIRE != 0 { 8 } else { 0 };
        u32::from_le_bytes(self.bytes()[at..at + 4].try_into().unwrap())
    }

    pub(crate) fn key(&self) -> &[u8] {
        let at = HEADER + self.opt_len();
        &self.bytes()[at..at + self.key_len()]
    }

    pub(crate) fn value(&self) -> &[u8] {
        let at = HEADER + self.opt_len() + self.key_len();
        &self.bytes()[at..]
    }

    /// All non-key, non-value fields.
    pub(crate) fn meta(&self) -> Meta {
        Meta {
            cas: self.cas(),
            expire_at: self.expire_at(),
            flags: self.flags(),
        }
    }

    /// True when the entry has expired at time `now` (ms).
    pub(crate) fn is_expired(&self, now: u64) -> bool {
        matches!(self.expire_at(), Some(t) if t <= now)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.alloc_size(), 1).expect("entry layout");
        // SAFETY: allocated in build_with with this exact layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value_len", &self.value_len())
            .field("meta", &self.meta())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_optional_field_combination() {
        for expire_at in [None, Some(1_700_000_000_123)] {
            for flags in [0, 1, u32::MAX] {
                let meta = Meta {
                    cas: 42,
                    expire_at,
                    flags,
                };
                let e = Entry::build(b"key:0000000001", &[b"hello ", b"world"], meta);
                assert_eq!(e.key(), b"key:0000000001");
                assert_eq!(e.value(), b"hello world");
                assert_eq!(e.meta(), meta);
            }
        }
    }

    #[test]
    fn the_fetched_bit_changes_nothing_else() {
        let meta = Meta {
            cas: 9,
            expire_at: Some(1_700_000_000_123),
            flags: 5,
        };
        let mut e = Entry::build(b"key", &[b"value"], meta);
        let size = e.alloc_size();
        assert!(!e.fetched());
        e.mark_fetched();
        assert!(e.fetched());
        assert_eq!(
            (e.key(), e.value(), e.meta(), e.alloc_size()),
            (&b"key"[..], &b"value"[..], meta, size)
        );
    }

    #[test]
    fn benchmark_shape_fits_one_64_byte_class() {
        let e = Entry::build(&[b'k'; 15], &[&[b'v'; 32]], Meta::default());
        assert_eq!(e.alloc_size(), 64);
    }

    #[test]
    fn empty_key_and_value() {
        let e = Entry::build(
            b"",
            &[],
            Meta {
                cas: 7,
                ..Meta::default()
            },
        );
        assert_eq!(e.key(), b"");
        assert_eq!(e.value(), b"");
        assert_eq!(e.cas(), 7);
    }
}
