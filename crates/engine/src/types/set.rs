//! Sets of byte strings. Three encodings, with Redis's names and rules:
//! `intset` (a sorted array of integers) while every member is the
//! canonical decimal form of a 64-bit integer and there are at most
//! `set-max-intset-entries`; `listpack` (a [`Pack`]) while there are at most
//! `set-max-listpack-entries` members of at most `set-max-listpack-value`
//! bytes; `hashtable` (a [`Table`]) otherwise. An intset that outgrows its
//! limit becomes a table (as in Redis 7.0); one that meets a string member
//! becomes a listpack if that fits (Redis 7.2's rule; Redis 7.0 has no set
//! listpack). A set never converts back.

use super::pack::Pack;
use super::table::Table;
use super::TypeLimits;

/// A set value (see the module docs).
#[derive(Clone, Debug)]
pub struct Set {
    enc: Enc,
}

#[derive(Clone, Debug)]
enum Enc {
    Ints(Vec<i64>),
    Pack(Pack),
    /// boxed: keeps the compact encodings' collections small
    Table(Box<Table>),
}

fn whole(e: &[u8]) -> &[u8] {
    e
}

/// The integer `member` spells, if it is the canonical decimal form of one
/// (Redis's `string2ll`: no sign other than a leading `-`, no leading zeros,
/// no `-0`), which is what lets it live in an intset.
pub(crate) fn as_int(member: &[u8]) -> Option<i64> {
    if member.is_empty() || member.len() > 20 {
        return None;
    }
    let n: i64 = std::str::from_utf8(member).ok()?.parse().ok()?;
    let mut buf = itoa_buf(n);
    (buf.as_bytes_mut() == member).then_some(n)
}

/// Decimal text of `n` on the stack.
struct Decimal {
    bytes: [u8; 20],
    start: usize,
}

impl Decimal {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

fn itoa_buf(n: i64) -> Decimal {
    let mut bytes = [0u8; 20];
    let mut at = 20;
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        at -= 1;
        bytes[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        at -= 1;
        bytes[at] = b'-';
    }
    Decimal { bytes, start: at }
}

impl Set {
    /// An empty set for a first insert of `first` (Redis 7.0's
    /// `setTypeCreate`): an intset if `first` is an integer, else a
    /// listpack, or a table when `first` could not live in one.
    pub(crate) fn new_for(first: &[u8], limits: &TypeLimits) -> Set {
        let enc = if as_int(first).is_some() {
            Enc::Ints(Vec::new())
        } else if limits.set_max_listpack_entries > 0
            && first.len() <= limits.set_max_listpack_value
        {
            Enc::Pack(Pack::default())
        } else {
            Enc::Table(Box::default())
        };
        Set { enc }
    }

    /// A set of `members` (repeats ignored) built by the same rules as a
    /// stored one grows by: what SUNION and SDIFF compute before they reply
    /// or store. None when `members` is empty.
    pub fn built_from(members: &[&[u8]], limits: &TypeLimits) -> Option<Set> {
        let mut s = Set::new_for(members.first()?, limits);
        for m in members {
            s.add(m, limits);
        }
        Some(s)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.enc {
            Enc::Ints(v) => v.len(),
            Enc::Pack(p) => p.len(),
            Enc::Table(t) => t.len(),
        }
    }

    /// True when the set has no member (never true of a stored set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding's name as `OBJECT ENCODING` reports it.
    pub fn encoding(&self) -> &'static str {
        match self.enc {
            Enc::Ints(_) => "intset",
            Enc::Pack(_) => "listpack",
            Enc::Table(_) => "hashtable",
        }
    }

    /// True when `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.enc {
            Enc::Ints(v) => as_int(member).is_some_and(|n| v.binary_search(&n).is_ok()),
            Enc::Pack(p) => p.iter().any(|(_, m)| m == member),
            Enc::Table(t) => t.find(member, whole).is_some(),
        }
    }

    /// Calls `f` with every member: ascending for an intset, insertion
    /// order for a listpack, table order for a table.
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        match &self.enc {
            Enc::Ints(v) => v.iter().for_each(|n| f(itoa_buf(*n).as_bytes_mut())),
            Enc::Pack(p) => p.iter().for_each(|(_, m)| f(m)),
            Enc::Table(t) => t.iter().for_each(f),
        }
    }

    /// Every member, copied out (in [`Set::for_each`]'s order).
    pub fn members(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|m| out.push(m.to_vec()));
        out
    }

    /// Heap bytes held by the encoding.
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.enc {
            Enc::Ints(v) => v.capacity() * 8,
            Enc::Pack(p) => p.heap_bytes(),
            Enc::Table(t) => std::mem::size_of::<Table>() + t.heap_bytes(),
        }
    }

    /// Adds `member`; true when it is new. Converts first when the member
    /// or the new size does not fit the current encoding.
    pub(crate) fn add(&mut self, member: &[u8], limits: &TypeLimits) -> bool {
        if let Enc::Ints(v) = &mut self.enc {
            if let Some(n) = as_int(member) {
                let Err(at) = v.binary_search(&n) else {
                    return false;
                };
                v.reserve_exact(1);
                v.insert(at, n);
                if v.len() > limits.set_max_intset_entries {
                    // a hash table, as Redis 7.0 converts an intset
                    self.convert(false);
                }
                return true;
            }
            let fits = v.len() < limits.set_max_listpack_entries
                && member.len() <= limits.set_max_listpack_value;
            self.convert(fits);
        }
        if let Enc::Pack(p) = &self.enc {
            if p.iter().any(|(_, m)| m == member) {
                return false;
            }
            if p.len() >= limits.set_max_listpack_entries
                || member.len() > limits.set_max_listpack_value
            {
                self.convert(false);
            }
        }
        match &mut self.enc {
            Enc::Pack(p) => {
                p.push(member);
                true
            }
            Enc::Table(t) => t.put(member.into(), whole),
            Enc::Ints(_) => unreachable!("converted above"),
        }
    }

    /// Removes `member`; true when it was there.
    pub(crate) fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.enc {
            Enc::Ints(v) => match as_int(member).map(|n| v.binary_search(&n)) {
                Some(Ok(at)) => {
                    v.remove(at);
                    if v.capacity() > v.len() + 8 {
                        v.shrink_to_fit();
                    }
                    true
                }
                _ => false,
            },
            Enc::Pack(p) => match p.iter().find(|(_, m)| *m == member) {
                Some((at, _)) => {
                    p.remove_at(at, 1);
                    true
                }
                None => false,
            },
            Enc::Table(t) => t.remove(member, whole),
        }
    }

    /// Converts to a listpack (`to_pack`) or a table.
    fn convert(&mut self, to_pack: bool) {
        let members = self.members();
        self.enc = if to_pack {
            let mut p = Pack::default();
            members.iter().for_each(|m| p.push(m));
            Enc::Pack(p)
        } else {
            let mut t = Table::with_capacity(members.len() + 1);
            for m in members {
                t.put(m.into_boxed_slice(), whole);
            }
            Enc::Table(Box::new(t))
        };
    }

    /// The member at position `i` of [`Set::for_each`]'s order for the
    /// compact encodings, or of bucket `i` (modulo the bucket count) of a
    /// table, which may be empty: the primitive random draws are built on.
    pub(crate) fn sample(&self, i: usize) -> Option<Vec<u8>> {
        match &self.enc {
            Enc::Ints(v) => v
                .get(i % v.len().max(1))
                .map(|n| itoa_buf(*n).as_bytes_mut().to_vec()),
            Enc::Pack(p) => p.iter().nth(i % p.len().max(1)).map(|(_, m)| m.to_vec()),
            Enc::Table(t) => t.bucket(i).map(|m| m.to_vec()),
        }
    }

    /// A uniformly drawn member, from the random numbers `rand` yields
    /// (tables retry empty buckets, as Redis's `dictGetFairRandomKey` does
    /// in spirit).
    pub fn random(&self, mut rand: impl FnMut() -> u64) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        loop {
            if let Some(m) = self.sample(rand() as usize) {
                return Some(m);
            }
        }
    }

    /// One step of SSCAN, as [`super::Hash::scan`]: compact sets whole,
    /// tables in steps of about `count`.
    pub fn scan(&self, cursor: u64, count: usize, f: impl FnMut(&[u8])) -> u64 {
        self.walk(cursor, count, f)
    }

    /// One step of a chunked walk (snapshots), as [`super::Hash`]'s.
    pub(crate) fn walk(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        match &self.enc {
            Enc::Table(t) => t.walk(cursor, count, f),
            _ => {
                self.for_each(&mut f);
                0
            }
        }
    }

    /// Buckets of a table encoding (0 for the compact ones).
    #[cfg(test)]
    pub(crate) fn buckets(&self) -> usize {
        match &self.enc {
            Enc::Table(t) => t.num_buckets(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn sorted(s: &Set) -> Vec<Vec<u8>> {
        let mut v = s.members();
        v.sort();
        v
    }

    #[test]
    fn only_canonical_integers_are_intset_members() {
        for ok in [
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "12",
        ] {
            assert!(as_int(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in [
            "",
            "+1",
            "01",
            "-0",
            "1.0",
            " 1",
            "9223372036854775808",
            "abc",
            "1e3",
        ] {
            assert!(as_int(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn integers_stay_an_intset_up_to_512_then_become_a_table() {
        let l = TypeLimits::default();
        let mut s = Set::new_for(b"1", &l);
        for i in 0..512 {
            assert!(s.add(i.to_string().as_bytes(), &l));
        }
        assert_eq!((s.len(), s.encoding()), (512, "intset"));
        assert!(!s.add(b"7", &l));
        assert!(s.add(b"512", &l));
        assert_eq!((s.len(), s.encoding()), (513, "hashtable"));
        assert!(s.contains(b"0") && s.contains(b"512") && !s.contains(b"513"));
    }

    #[test]
    fn a_string_member_turns_a_small_intset_into_a_listpack() {
        let l = TypeLimits::default();
        let mut s = Set::new_for(b"1", &l);
        s.add(b"1", &l);
        s.add(b"2", &l);
        assert_eq!(s.encoding(), "intset");
        assert!(s.add(b"a", &l));
        assert_eq!(s.encoding(), "listpack");
        assert_eq!(
            sorted(&s),
            vec![b"1".to_vec(), b"2".to_vec(), b"a".to_vec()]
        );
        // a 65-byte member takes it to a table
        assert!(s.add(&[b'x'; 65], &l));
        assert_eq!(s.encoding(), "hashtable");
        // a big intset meeting a string goes straight to a table
        let mut big = Set::new_for(b"1", &l);
        for i in 0..200 {
            big.add(i.to_string().as_bytes(), &l);
        }
        big.add(b"a", &l);
        assert_eq!((big.encoding(), big.len()), ("hashtable", 201));
    }

    #[test]
    fn listpack_converts_past_128_members() {
        let l = TypeLimits::default();
        let mut s = Set::new_for(b"m", &l);
        for i in 0..128 {
            s.add(format!("m{i}").as_bytes(), &l);
        }
        assert_eq!(s.encoding(), "listpack");
        s.add(b"m128", &l);
        assert_eq!((s.encoding(), s.len()), ("hashtable", 129));
        // a first member too long for a listpack starts a table
        assert_eq!(Set::new_for(&[b'm'; 65], &l).encoding(), "hashtable");
        assert_eq!(Set::new_for(b"-12", &l).encoding(), "intset");
    }

    #[test]
    fn every_encoding_agrees_with_a_model() {
        let l = TypeLimits {
            set_max_intset_entries: 6,
            set_max_listpack_entries: 4,
            ..TypeLimits::default()
        };
        for seed in 0..3u32 {
            let mut s = Set::new_for(b"1", &l);
            let mut model = BTreeSet::new();
            for i in 0..300u32 {
                let x = (i * 31 + seed * 7) % 17;
                let m = if seed == 1 && i > 100 {
                    format!("s{x}")
                } else {
                    x.to_string()
                }
                .into_bytes();
                if i % 3 == 0 {
                    assert_eq!(s.remove(&m), model.remove(&m));
                } else {
                    assert_eq!(s.add(&m, &l), model.insert(m.clone()));
                }
                assert_eq!(sorted(&s), model.iter().cloned().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn random_draws_only_members_and_reaches_each() {
        let l = TypeLimits::default();
        let mut s = Set::new_for(b"a", &l);
        for i in 0..1000 {
            s.add(format!("m{i}").as_bytes(), &l);
        }
        assert!(s.buckets() >= 1000);
        let mut x = 12345u64;
        let mut seen = BTreeSet::new();
        for _ in 0..20_000 {
            let m = s
                .random(|| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    x >> 11
                })
                .unwrap();
            assert!(s.contains(&m));
            seen.insert(m);
        }
        assert!(seen.len() > 990, "{}", seen.len());
    }
}
