//! The on-disk record: `[len u32 LE][crc32c u32 LE][payload]`, where `len`
//! is the payload length and the CRC covers the payload. Log segments and
//! snapshots are plain sequences of records.
//!
//! Payloads (all integers little endian; an expiry of 0 means "none", which
//! is unambiguous because an expiry at or before now is a delete):
//!
//! ```text
//! SET      1 | db u32 | flags u32 | expire_at u64 | cas u64 | key_len u32 | key | value
//! DEL      2 | db u32 | key
//! EXPIRE   3 | db u32 | at u64 | key
//! FLUSHDB  4 | db u32
//! FLUSHALL 5
//! SETTAGGED 6 | db u32 | flags u32 | expire_at u64 | cas u64 | key_len u32 | tags_len u32 | key | tags | value
//! SETTAGS  7 | db u32 | cas u64 | key_len u32 | key | tags
//! INVTAGS  8 | db u32 | epoch u64 | tags
//! INVPREFIX 9 | db u32 | epoch u64 | prefixes
//! ADDITEM 10 | db u32 | kind u8 | expire_at u64 | cas u64 | key_len u32 | key | item_len u32 | item | value
//! REMITEM 11 | db u32 | kind u8 | expire_at u64 | cas u64 | key_len u32 | key | item
//! ```
//!
//! `tags` and `prefixes` are lists of byte strings, each `len u32 | bytes`
//! ([`magpie_engine::TagList`]'s encoding). Types 6 to 9 came with tags;
//! logs written before them hold only types 1 to 5, which decode as they
//! always did.
//!
//! ADDITEM and REMITEM carry one item of a collection (a hash's field and
//! value, a set's member; `kind` is 1 for hash, 2 for set), so a log grows
//! with each change, not with the collection. Types 10 and 11 came with collections;
//! types 1 to 9 are unchanged, so logs written before them decode as they
//! always did.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use magpie_engine::{Kind, Mutation, TagList};

/// Bytes of the record header (length + CRC).
pub const HEADER: usize = 8;

const T_SET: u8 = 1;
const T_DEL: u8 = 2;
const T_EXPIRE: u8 = 3;
const T_FLUSHDB: u8 = 4;
const T_FLUSHALL: u8 = 5;
const T_SET_TAGGED: u8 = 6;
const T_SET_TAGS: u8 = 7;
const T_INVALIDATE_TAGS: u8 = 8;
const T_INVALIDATE_PREFIXES: u8 = 9;
const T_ADD_ITEM: u8 = 10;
const T_REMOVE_ITEM: u8 = 11;

/// Largest payload a record may carry (the length field is a u32).
pub const MAX_PAYLOAD: usize = u32::MAX as usize;

/// Appends the encoded record of `m` to `out`.
///
/// Panics if the payload would exceed [`MAX_PAYLOAD`]; the server bounds
/// keys and values well below that when persistence is on.
pub fn encode(m: &Mutation<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    match *m {
        Mutation::Set {
            db,
            key,
            value,
            flags,
            expire_at,
            cas,
        } => {
            out.reserve(1 + 4 + 4 + 8 + 8 + 4 + key.len() + value.len());
            out.push(T_SET);
            out.extend_from_slice(&(db as u32).to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&expire_at.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&cas.to_le_bytes());
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(value);
        }
        Mutation::Del { db, key } => {
            out.push(T_DEL);
            out.extend_from_slice(&(db as u32).to_le_bytes());
            out.extend_from_slice(key);
        }
        Mutation::Expire { db, key, at } => {
            out.push(T_EXPIRE);
            out.extend_from_slice(&(db as u32).to_le_bytes());
            out.extend_from_slice(&at.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(key);
        }
        Mutation::FlushDb { db } => {
            out.push(T_FLUSHDB);
            out.extend_from_slice(&(db as u32).to_le_bytes());
        }
        Mutation::FlushAll => out.push(T_FLUSHALL),
        Mutation::SetTagged {
            db,
            key,
            value,
            flags,
            expire_at,
            cas,
            tags,
        } => {
            let tags = tags.encoded();
            out.reserve(1 + 4 + 4 + 8 + 8 + 4 + 4 + key.len() + tags.len() + value.len());
            out.push(T_SET_TAGGED);
            out.extend_from_slice(&(db as u32).to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&expire_at.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&cas.to_le_bytes());
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(&(tags.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(tags);
            out.extend_from_slice(value);
        }
        Mutation::SetTags { db, key, tags, cas } => {
            out.push(T_SET_TAGS);
            out.extend_from_slice(&(db as u32).to_le_bytes());
            out.extend_from_slice(&cas.to_le_bytes());
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(tags.encoded());
        }
        Mutation::InvalidateTags { db, epoch, tags } => {
            out.push(T_INVALIDATE_TAGS);
            out.extend_from_slice(&(db as u32).to_le_bytes());
            out.extend_from_slice(&epoch.to_le_bytes());
            out.extend_from_slice(tags.encoded());
        }
        Mutation::InvalidatePrefixes {
            db,
            epoch,
            prefixes,
        } => {
            out.push(T_INVALIDATE_PREFIXES);
            out.extend_from_slice(&(db as u32).to_le_bytes());
            out.extend_from_slice(&epoch.to_le_bytes());
            out.extend_from_slice(prefixes.encoded());
        }
        Mutation::AddItem {
            db,
            key,
            kind,
            item,
            value,
            expire_at,
            cas,
        } => {
            out.reserve(30 + key.len() + item.len() + value.len());
            item_head(out, T_ADD_ITEM, db, kind, expire_at, cas, key);
            out.extend_from_slice(&(item.len() as u32).to_le_bytes());
            out.extend_from_slice(item);
            out.extend_from_slice(value);
        }
        Mutation::RemoveItem {
            db,
            key,
            kind,
            item,
            expire_at,
            cas,
        } => {
            out.reserve(26 + key.len() + item.len());
            item_head(out, T_REMOVE_ITEM, db, kind, expire_at, cas, key);
            out.extend_from_slice(item);
        }
    }
    let len = out.len() - start - HEADER;
    assert!(len <= MAX_PAYLOAD, "record payload too large");
    let crc = crc32c::crc32c(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The fields ADDITEM and REMITEM share, up to and including the key.
fn item_head(
    out: &mut Vec<u8>,
    tag: u8,
    db: usize,
    kind: Kind,
    expire_at: Option<u64>,
    cas: u64,
    key: &[u8],
) {
    out.push(tag);
    out.extend_from_slice(&(db as u32).to_le_bytes());
    out.push(kind.to_u8());
    out.extend_from_slice(&expire_at.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&cas.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
}

/// Kind, expiry, CAS, key and the rest of an ADDITEM / REMITEM payload.
type ItemHead<'a> = (Kind, Option<u64>, u64, &'a [u8], &'a [u8]);

fn item_fields(p: &[u8]) -> Option<ItemHead<'_>> {
    // strings are never item records
    let kind = Kind::from_u8(*p.get(5)?).filter(|k| *k != Kind::String)?;
    let key_len = u32_at(p, 22)? as usize;
    let key_end = 26usize.checked_add(key_len)?;
    let key = p.get(26..key_end)?;
    Some((
        kind,
        expiry(u64_at(p, 6)?),
        u64_at(p, 14)?,
        key,
        &p[key_end..],
    ))
}

fn u32_at(p: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(p.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(p: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(p.get(at..at + 8)?.try_into().ok()?))
}

fn expiry(t: u64) -> Option<u64> {
    (t != 0).then_some(t)
}

/// Decodes a payload (whose CRC was already checked). None when the bytes
/// do not form a record of a known type.
pub fn decode(p: &[u8]) -> Option<Mutation<'_>> {
    let db = || u32_at(p, 1).map(|d| d as usize);
    match *p.first()? {
        T_SET => {
            let key_len = u32_at(p, 25)? as usize;
            let key = p.get(29..29usize.checked_add(key_len)?)?;
            Some(Mutation::Set {
                db: db()?,
                flags: u32_at(p, 5)?,
                expire_at: expiry(u64_at(p, 9)?),
                cas: u64_at(p, 17)?,
                key,
                value: &p[29 + key_len..],
            })
        }
        T_DEL => Some(Mutation::Del {
            db: db()?,
            key: p.get(5..)?,
        }),
        T_EXPIRE => Some(Mutation::Expire {
            db: db()?,
            at: expiry(u64_at(p, 5)?),
            key: p.get(13..)?,
        }),
        T_SET_TAGGED => {
            let key_len = u32_at(p, 25)? as usize;
            let tags_len = u32_at(p, 29)? as usize;
            let key_end = 33usize.checked_add(key_len)?;
            let tags_end = key_end.checked_add(tags_len)?;
            let tags = TagList::from_encoded(p.get(key_end..tags_end)?)?;
            if tags.is_empty() {
                return None;
            }
            Some(Mutation::SetTagged {
                db: db()?,
                flags: u32_at(p, 5)?,
                expire_at: expiry(u64_at(p, 9)?),
                cas: u64_at(p, 17)?,
                key: p.get(33..key_end)?,
                tags,
                value: &p[tags_end..],
            })
        }
        T_SET_TAGS => {
            let key_len = u32_at(p, 13)? as usize;
            let key_end = 17usize.checked_add(key_len)?;
            Some(Mutation::SetTags {
                db: db()?,
                cas: u64_at(p, 5)?,
                key: p.get(17..key_end)?,
                tags: TagList::from_encoded(p.get(key_end..)?)?,
            })
        }
        T_INVALIDATE_TAGS => Some(Mutation::InvalidateTags {
            db: db()?,
            epoch: u64_at(p, 5)?,
            tags: TagList::from_encoded(p.get(13..)?)?,
        }),
        T_INVALIDATE_PREFIXES => Some(Mutation::InvalidatePrefixes {
            db: db()?,
            epoch: u64_at(p, 5)?,
            prefixes: TagList::from_encoded(p.get(13..)?)?,
        }),
        T_FLUSHDB if p.len() == 5 => Some(Mutation::FlushDb { db: db()? }),
        T_FLUSHALL if p.len() == 1 => Some(Mutation::FlushAll),
        T_ADD_ITEM => {
            let (kind, expire_at, cas, key, rest) = item_fields(p)?;
            let item_len = u32_at(rest, 0)? as usize;
            let item = rest.get(4..4usize.checked_add(item_len)?)?;
            Some(Mutation::AddItem {
                db: db()?,
                key,
                kind,
                item,
                value: &rest[4 + item_len..],
                expire_at,
                cas,
            })
        }
        T_REMOVE_ITEM => {
            let (kind, expire_at, cas, key, item) = item_fields(p)?;
            Some(Mutation::RemoveItem {
                db: db()?,
                key,
                kind,
                item,
                expire_at,
                cas,
            })
        }
        _ => None,
    }
}

/// How a scan of a file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte belonged to a valid record.
    Clean,
    /// Only zero bytes follow the last valid record: log space the writer
    /// preallocated and had not used yet (the usual end of the current
    /// segment after a crash under `appendfsync always`).
    Zeros {
        /// Offset of the first zero byte (= length of the valid prefix).
        offset: u64,
    },
    /// The last record is incomplete or damaged and nothing but zeros
    /// follows it: the signature of a write cut short by a crash (zeros
    /// being preallocated space the write did not reach).
    Torn {
        /// Offset of the damaged record (= length of the valid prefix).
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A damaged record with more data after it.
    Corrupt {
        /// Offset of the damaged record.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

/// Result of scanning one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Valid records read.
    pub records: u64,
    /// Length of the valid prefix in bytes.
    pub valid_len: u64,
    /// File length in bytes.
    pub file_len: u64,
    /// How the scan ended.
    pub end: End,
}

/// Reads the records of `path` in order, calling `f` with each payload
/// whose CRC matches and that decodes, until the end or the first bad
/// record. Memory is bounded by the largest record, and never exceeds the
/// file's size whatever a damaged length field says.
pub fn scan_file(
    path: &Path,
    mut f: impl FnMut(Mutation<'_>) -> io::Result<()>,
) -> io::Result<Scan> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut offset = 0u64;
    let mut records = 0;
    let mut payload = Vec::new();
    let end = loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            break End::Clean;
        }
        let mut header = [0u8; HEADER];
        if remaining < HEADER as u64 {
            break End::Torn {
                offset,
                reason: format!("record header cut short ({remaining} bytes)"),
            };
        }
        r.read_exact(&mut header)?;
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as u64;
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
        let body_room = remaining - HEADER as u64;
        if len == 0 {
            if header == [0; HEADER] && rest_is_zero(&mut r)? {
                break End::Zeros { offset };
            }
            break End::Corrupt {
                offset,
                reason: "record of length 0".into(),
            };
        }
        if len > body_room {
            break End::Torn {
                offset,
                reason: format!("record of {len} bytes cut short ({body_room} bytes present)"),
            };
        }
        payload.clear();
        payload.resize(len as usize, 0);
        r.read_exact(&mut payload)?;
        let bad = if crc32c::crc32c(&payload) != crc {
            Some("checksum mismatch")
        } else if decode(&payload).is_none() {
            Some("malformed record")
        } else {
            None
        };
        if let Some(reason) = bad {
            let reason = reason.to_string();
            break if rest_is_zero(&mut r)? {
                End::Torn { offset, reason }
            } else {
                End::Corrupt { offset, reason }
            };
        }
        f(decode(&payload).expect("checked above"))?;
        records += 1;
        offset += HEADER as u64 + len;
    };
    let valid_len = match &end {
        End::Clean => file_len,
        End::Zeros { offset } | End::Torn { offset, .. } | End::Corrupt { offset, .. } => *offset,
    };
    Ok(Scan {
        records,
        valid_len,
        file_len,
        end,
    })
}

fn rest_is_zero(r: &mut impl Read) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_kinds() -> Vec<Mutation<'static>> {
        vec![
            Mutation::Set {
                db: 3,
                key: b"key",
                value: b"value\0\r\n",
                flags: 0xdead_beef,
                expire_at: Some(1_700_000_000_123),
                cas: 42,
            },
            Mutation::Set {
                db: 0,
                key: b"",
                value: b"",
                flags: 0,
                expire_at: None,
                cas: u64::MAX,
            },
            Mutation::Del {
                db: 15,
                key: b"gone",
            },
            Mutation::Expire {
                db: 1,
                key: b"k",
                at: Some(99),
            },
            Mutation::Expire {
                db: 1,
                key: b"k",
                at: None,
            },
            Mutation::FlushDb { db: 7 },
            Mutation::FlushAll,
            Mutation::SetTagged {
                db: 2,
                key: b"get_items_in_cart::13:10:30",
                value: b"[1,2]",
                flags: 3,
                expire_at: Some(5),
                cas: 77,
                tags: TagList::from_encoded(TWO_TAGS).unwrap(),
            },
            Mutation::SetTags {
                db: 1,
                key: b"k",
                tags: TagList::from_encoded(TWO_TAGS).unwrap(),
                cas: 78,
            },
            Mutation::SetTags {
                db: 1,
                key: b"k",
                tags: TagList::EMPTY,
                cas: 79,
            },
            Mutation::InvalidateTags {
                db: 0,
                epoch: 80,
                tags: TagList::from_encoded(TWO_TAGS).unwrap(),
            },
            Mutation::InvalidatePrefixes {
                db: 0,
                epoch: 81,
                prefixes: TagList::from_encoded(TWO_TAGS).unwrap(),
            },
            Mutation::AddItem {
                db: 2,
                key: b"hash",
                kind: Kind::Hash,
                item: b"field",
                value: b"value\r\n",
                expire_at: Some(5),
                cas: 77,
            },
            Mutation::AddItem {
                db: 0,
                key: b"",
                kind: Kind::Set,
                item: b"",
                value: b"",
                expire_at: None,
                cas: 1,
            },
            Mutation::RemoveItem {
                db: 9,
                key: b"set",
                kind: Kind::Set,
                item: b"member",
                expire_at: None,
                cas: u64::MAX,
            },
        ]
    }

    /// `cart:13` and the empty string, encoded.
    const TWO_TAGS: &[u8] = b"\x07\0\0\0cart:13\0\0\0\0";

    #[test]
    fn records_written_before_tags_still_decode() {
        // bytes of a SET and a DEL as the first format wrote them
        let set = b"\x01\x03\0\0\0\x09\0\0\0\0\0\0\0\0\0\0\0\x2a\0\0\0\0\0\0\0\x01\0\0\0kvalue";
        assert_eq!(
            decode(set),
            Some(Mutation::Set {
                db: 3,
                key: b"k",
                value: b"value",
                flags: 9,
                expire_at: None,
                cas: 42
            })
        );
        assert_eq!(
            decode(b"\x02\x01\0\0\0gone"),
            Some(Mutation::Del {
                db: 1,
                key: b"gone"
            })
        );
    }

    #[test]
    fn damaged_tag_lists_do_not_decode() {
        // the tag records (7..12); the item records after them carry no list
        for m in all_kinds().into_iter().skip(7).take(5) {
            let mut buf = Vec::new();
            encode(&m, &mut buf);
            let p = &buf[HEADER..];
            assert_eq!(decode(p), Some(m));
            // a cut inside a string of the list never decodes; one between
            // strings is a shorter list (the CRC, not the payload, catches
            // such damage in a file)
            fn tags_of<'a>(m: &Mutation<'a>) -> TagList<'a> {
                match *m {
                    Mutation::SetTagged { tags, .. } | Mutation::SetTags { tags, .. } => tags,
                    Mutation::InvalidateTags { tags, .. } => tags,
                    Mutation::InvalidatePrefixes { prefixes, .. } => prefixes,
                    _ => unreachable!(),
                }
            }
            let full = tags_of(&m).encoded().to_vec();
            for cut in 1..p.len() {
                if let Some(d) = decode(&p[..cut]) {
                    let got = tags_of(&d).encoded();
                    assert!(full.starts_with(got), "{m:?} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn every_kind_round_trips() {
        for m in all_kinds() {
            let mut buf = Vec::new();
            encode(&m, &mut buf);
            let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
            assert_eq!(len, buf.len() - HEADER);
            assert_eq!(decode(&buf[HEADER..]), Some(m));
        }
    }

    #[test]
    fn truncated_or_unknown_payloads_do_not_decode() {
        let mut buf = Vec::new();
        encode(&all_kinds()[0], &mut buf);
        for cut in HEADER..HEADER + 29 {
            assert_eq!(decode(&buf[HEADER..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode(&[9]), None);
        assert_eq!(decode(&[12]), None);
        assert_eq!(decode(&[T_FLUSHALL, 0]), None);
        assert_eq!(decode(&[]), None);
        // an item record cut anywhere before its item, or naming no
        // collection kind, is no record
        let add = &all_kinds()[12];
        let mut buf = Vec::new();
        encode(add, &mut buf);
        for cut in HEADER..HEADER + 26 + 4 + 4 + 4 {
            assert_eq!(decode(&buf[HEADER..cut]), None, "cut at {cut}");
        }
        for kind in [0u8, 3, 255] {
            let mut p = buf[HEADER..].to_vec();
            p[5] = kind;
            assert_eq!(decode(&p), None, "kind {kind}");
        }
    }

    #[test]
    fn the_record_of_one_field_is_as_small_as_the_field() {
        // an HSET of one field logs the key, the field and the value only
        let mut buf = Vec::new();
        encode(&all_kinds()[12], &mut buf);
        assert_eq!(
            buf.len(),
            HEADER + 30 + b"hash".len() + b"field".len() + b"value\r\n".len()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_sets_round_trip(db in 0usize..1000, key in proptest::collection::vec(any::<u8>(), 0..40),
                                     value in proptest::collection::vec(any::<u8>(), 0..100),
                                     flags in any::<u32>(), exp in proptest::option::of(1u64..), cas in any::<u64>()) {
            let m = Mutation::Set { db, key: &key, value: &value, flags, expire_at: exp, cas };
            let mut buf = Vec::new();
            encode(&m, &mut buf);
            prop_assert_eq!(decode(&buf[HEADER..]), Some(m));
        }

        #[test]
        fn arbitrary_items_round_trip(db in 0usize..1000, key in proptest::collection::vec(any::<u8>(), 0..40),
                                      item in proptest::collection::vec(any::<u8>(), 0..40),
                                      value in proptest::collection::vec(any::<u8>(), 0..100), hash in any::<bool>(),
                                      add in any::<bool>(), exp in proptest::option::of(1u64..), cas in any::<u64>()) {
            let kind = if hash { Kind::Hash } else { Kind::Set };
            let m = if add {
                Mutation::AddItem { db, key: &key, kind, item: &item, value: &value, expire_at: exp, cas }
            } else {
                Mutation::RemoveItem { db, key: &key, kind, item: &item, expire_at: exp, cas }
            };
            let mut buf = Vec::new();
            encode(&m, &mut buf);
            prop_assert_eq!(decode(&buf[HEADER..]), Some(m));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
