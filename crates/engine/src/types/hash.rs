//! Hashes: field -> value maps. Small hashes are a [`Pack`] of field and
//! value items in turn (Redis's `listpack` encoding: linear search, about
//! two bytes of overhead per field); a hash that outgrows
//! `hash-max-listpack-entries` fields, or is given a field or value longer
//! than `hash-max-listpack-value` bytes, becomes a [`Table`] (`hashtable`)
//! for good, as in Redis.

use super::pack::Pack;
use super::table::Table;
use super::TypeLimits;

/// A hash value (see the module docs).
#[derive(Clone, Debug)]
pub struct Hash {
    enc: Enc,
}

#[derive(Clone, Debug)]
enum Enc {
    /// field, value, field, value, ...
    Pack(Pack),
    /// elements `varint(field_len) field value`
    /// boxed: keeps the compact encodings' collections small
    Table(Box<Table>),
}

/// The field of a table element.
fn field_of(e: &[u8]) -> &[u8] {
    split(e).0
}

/// (field, value) of a table element.
fn split(e: &[u8]) -> (&[u8], &[u8]) {
    let (mut n, mut shift, mut i) = (0usize, 0, 0);
    loop {
        let b = e[i];
        n |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (&e[i..i + n], &e[i + n..])
}

fn element(field: &[u8], value: &[u8]) -> Box<[u8]> {
    let prefix = (usize::BITS - field.len().leading_zeros())
        .div_ceil(7)
        .max(1) as usize;
    // exact, so the box takes the vector's allocation as it is
    let mut out = Vec::with_capacity(prefix + field.len() + value.len());
    let mut n = field.len();
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(field);
    out.extend_from_slice(value);
    debug_assert_eq!(out.len(), out.capacity());
    out.into_boxed_slice()
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            enc: Enc::Pack(Pack::default()),
        }
    }
}

impl Hash {
    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.enc {
            Enc::Pack(p) => p.len() / 2,
            Enc::Table(t) => t.len(),
        }
    }

    /// True when the hash has no field (never true of a stored hash: a
    /// hash emptied by its last removal is deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding's name as `OBJECT ENCODING` reports it.
    pub fn encoding(&self) -> &'static str {
        match self.enc {
            Enc::Pack(_) => "listpack",
            Enc::Table(_) => "hashtable",
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.enc {
            Enc::Pack(p) => {
                let mut it = p.iter();
                while let Some((_, f)) = it.next() {
                    let (_, v) = it.next()?;
                    if f == field {
                        return Some(v);
                    }
                }
                None
            }
            Enc::Table(t) => t.find(field, field_of).map(|e| split(e).1),
        }
    }

    /// Every (field, value): insertion order while compact (as Redis's
    /// listpack), table order once converted.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let (pack, table) = match &self.enc {
            Enc::Pack(p) => (Some(p.iter()), None),
            Enc::Table(t) => (None, Some(t.iter())),
        };
        let mut pack = pack;
        let mut table = table;
        std::iter::from_fn(move || {
            if let Some(it) = pack.as_mut() {
                let (_, f) = it.next()?;
                let (_, v) = it.next()?;
                return Some((f, v));
            }
            table.as_mut()?.next().map(split)
        })
    }

    /// The `i`-th field in [`Hash::iter`]'s order; O(i) (used to draw random
    /// fields).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.iter().nth(i)
    }

    /// Heap bytes held by the encoding.
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.enc {
            Enc::Pack(p) => p.heap_bytes(),
            Enc::Table(t) => std::mem::size_of::<Table>() + t.heap_bytes(),
        }
    }

    /// Sets `field` to `value`; true when the field is new. Converts to the
    /// table encoding past the limits first.
    pub(crate) fn put(&mut self, field: &[u8], value: &[u8], limits: &TypeLimits) -> bool {
        if let Enc::Pack(p) = &mut self.enc {
            let too_long = field.len() > limits.hash_max_listpack_value
                || value.len() > limits.hash_max_listpack_value;
            if !too_long {
                // find the field: replace its value, or append the pair
                let mut it = p.iter();
                let mut value_at = None;
                while let Some((_, f)) = it.next() {
                    let Some((at, _)) = it.next() else { break };
                    if f == field {
                        value_at = Some(at);
                        break;
                    }
                }
                if let Some(at) = value_at {
                    p.replace_at(at, value);
                    return false;
                }
                if p.len() / 2 < limits.hash_max_listpack_entries {
                    p.push(field);
                    p.push(value);
                    return true;
                }
            }
            self.convert();
        }
        match &mut self.enc {
            Enc::Table(t) => t.put(element(field, value), field_of),
            Enc::Pack(_) => unreachable!("converted above"),
        }
    }

    /// Removes `field`; true when it was there.
    pub(crate) fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.enc {
            Enc::Pack(p) => {
                let mut it = p.iter();
                while let Some((at, f)) = it.next() {
                    if it.next().is_none() {
                        break;
                    }
                    if f == field {
                        p.remove_at(at, 2);
                        return true;
                    }
                }
                false
            }
            Enc::Table(t) => t.remove(field, field_of),
        }
    }

    fn convert(&mut self) {
        let mut t = Table::with_capacity(self.len() + 1);
        for (f, v) in self.iter() {
            t.put(element(f, v), field_of);
        }
        self.enc = Enc::Table(Box::new(t));
    }

    /// One step of HSCAN: calls `f` with up to about `count` fields from
    /// `cursor` (0 to start) and returns the next cursor (0 when done). A
    /// compact hash is returned whole in one step, as Redis does; a table's
    /// cursor restarts rather than skip a field if the table grew meanwhile.
    pub fn scan<'s>(&'s self, cursor: u64, count: usize, f: impl FnMut(&'s [u8], &'s [u8])) -> u64 {
        self.walk(cursor, count, f)
    }

    /// A uniformly drawn (field, value), from the random numbers `rand`
    /// yields; None for an empty hash.
    pub fn random(&self, mut rand: impl FnMut() -> u64) -> Option<(&[u8], &[u8])> {
        if self.is_empty() {
            return None;
        }
        match &self.enc {
            Enc::Pack(_) => self.nth(rand() as usize % self.len()),
            Enc::Table(t) => loop {
                if let Some(e) = t.bucket(rand() as usize) {
                    return Some(split(e));
                }
            },
        }
    }

    /// One step of a chunked walk (snapshots): calls `f` with up to `count`
    /// fields from `cursor` on, returning the next cursor (0 when done). A
    /// compact hash is visited whole in one step (it is small by its limits).
    pub(crate) fn walk<'s>(
        &'s self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'s [u8], &'s [u8]),
    ) -> u64 {
        match &self.enc {
            Enc::Pack(_) => {
                self.iter().for_each(|(k, v)| f(k, v));
                0
            }
            Enc::Table(t) => t.walk(cursor, count, |e| {
                let (k, v) = split(e);
                f(k, v)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sorted(h: &Hash) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        v.sort();
        v
    }

    #[test]
    fn stays_compact_up_to_the_entry_limit_and_converts_past_it() {
        let limits = TypeLimits::default();
        let mut h = Hash::default();
        for i in 0..128 {
            assert!(h.put(format!("f{i}").as_bytes(), b"v", &limits));
        }
        assert_eq!((h.len(), h.encoding()), (128, "listpack"));
        assert!(
            !h.put(b"f0", b"again", &limits),
            "an update is no new field"
        );
        assert_eq!(h.encoding(), "listpack");
        assert!(h.put(b"f128", b"v", &limits));
        assert_eq!((h.len(), h.encoding()), (129, "hashtable"));
        assert_eq!(h.get(b"f0"), Some(&b"again"[..]));
        assert_eq!(h.get(b"f128"), Some(&b"v"[..]));
        // it never goes back, as in Redis
        for i in 0..129 {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        assert_eq!((h.len(), h.encoding()), (0, "hashtable"));
    }

    #[test]
    fn a_long_field_or_value_converts_at_65_bytes() {
        let limits = TypeLimits::default();
        for (f, v) in [
            (vec![b'f'; 64], vec![b'v'; 64]),
            (vec![b'f'; 65], vec![]),
            (vec![], vec![b'v'; 65]),
        ] {
            let mut h = Hash::default();
            h.put(&f, &v, &limits);
            let want = if f.len() > 64 || v.len() > 64 {
                "hashtable"
            } else {
                "listpack"
            };
            assert_eq!(h.encoding(), want);
            assert_eq!(h.get(&f), Some(&v[..]));
        }
    }

    #[test]
    fn both_encodings_agree_with_a_map() {
        let tiny = TypeLimits {
            hash_max_listpack_entries: 4,
            ..TypeLimits::default()
        };
        let mut h = Hash::default();
        let mut model = BTreeMap::new();
        for i in 0..200u32 {
            let f = format!("{}", (i * 7) % 13).into_bytes();
            if i % 3 == 0 {
                assert_eq!(h.remove(&f), model.remove(&f).is_some());
            } else {
                let v = format!("value{i}").into_bytes();
                assert_eq!(h.put(&f, &v, &tiny), model.insert(f, v).is_none());
            }
            let want: Vec<_> = model.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
            assert_eq!(sorted(&h), want);
            assert_eq!(h.len(), model.len());
        }
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn a_chunked_walk_of_a_table_visits_every_field() {
        let limits = TypeLimits::default();
        let mut h = Hash::default();
        for i in 0..1000 {
            h.put(format!("f{i}").as_bytes(), b"v", &limits);
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            cursor = h.walk(cursor, 100, |f, _| {
                seen.insert(f.to_vec());
            });
            steps += 1;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
        assert!(steps >= 10);
    }
}
