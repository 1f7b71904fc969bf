//! Meta command flags (`mg`, `ms`, `md`, `ma`): the single-letter options
//! after the key, parsed the way memcached's `_meta_flag_preparse` does, and
//! the base64 used by the `b` flag for binary keys.

use super::num::{strtol32, strtoul32, strtoull};
use super::KEY_MAX_LENGTH;

/// Longest opaque (`O`) token, including the `O`.
pub const MAX_OPAQUE_LEN: usize = 32;

/// Largest CAS an `E` token may give: 2^63 - 1, the engine's limit for a
/// caller-chosen CAS (`magpie_engine::MAX_CHOSEN_CAS`; the server checks
/// the two agree). Above it the engine's counter, which must move past
/// every chosen value, would be close to wrapping.
pub const MAX_EXPLICIT_CAS: u64 = i64::MAX as u64;

/// The reply to an `E` token that is a number but not a CAS magpie can
/// use: 0 (which the protocol reads as "no CAS": `cas k 0 0 1 0`, `C0`)
/// or above [`MAX_EXPLICIT_CAS`]. memcached has no such limit, so no
/// message of its own; this one says what is accepted.
pub const E_OUT_OF_RANGE: &str = "CLIENT_ERROR E token out of range (1 to 9223372036854775807)";

/// A key as the command names it: borrowed from the request line, or
/// decoded from base64 (the `b` flag) into a small inline buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    /// Used as written.
    Plain(&'a [u8]),
    /// Decoded from base64; `len` bytes of `buf` are the key.
    Binary {
        /// Decoded bytes (a 250-byte token decodes to at most 187).
        buf: [u8; 190],
        /// Length of the decoded key.
        len: u8,
    },
}

impl<'a> Key<'a> {
    /// The key's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Key::Plain(k) => k,
            Key::Binary { buf, len } => &buf[..*len as usize],
        }
    }

    /// True when the client sent the key in base64 (so it is echoed so).
    pub fn is_binary(&self) -> bool {
        matches!(self, Key::Binary { .. })
    }
}

/// Every meta flag memcached 1.6 parses, with its token value where it has
/// one. The raw flag text is kept so replies echo flags in request order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaFlags<'a> {
    /// The flag tokens as sent (space separated), for building the reply.
    pub raw: &'a [u8],
    /// `b`: the key is base64.
    pub base64: bool,
    /// `N<ttl>`: create the item on a miss (mg) or counter (ma) with this TTL.
    pub vivify: Option<i32>,
    /// `T<ttl>`: set the TTL.
    pub ttl: Option<i32>,
    /// `R<ttl>`: win a recache token if the TTL left is below this.
    pub recache: Option<i32>,
    /// `v`: return the value.
    pub value: bool,
    /// `q`: quiet mode, nominal replies are not sent.
    pub quiet: bool,
    /// `u`: do not bump the item: an mg with `u` is not an access (the
    /// item's fetched state and last access time stay as they were).
    pub no_update: bool,
    /// `F<flags>`: client flags for ms.
    pub client_flags: u32,
    /// `C<cas>`: compare against this CAS.
    pub cas: Option<u64>,
    /// `E<cas>`: the CAS the item takes if this command makes a new
    /// version of it (memcached 1.6.21+): ms stores, ma changes or creates
    /// the counter, mg creates the item (N), md marks it stale (I).
    /// Always within `1..=MAX_EXPLICIT_CAS`.
    pub new_cas: Option<u64>,
    /// `M<mode>`: mode switch for ms / ma.
    pub mode: Option<u8>,
    /// `D<delta>`: ma delta (default 1).
    pub delta: u64,
    /// `J<initial>`: ma initial value when vivifying (default 0).
    pub initial: u64,
    /// `I`: invalidate (md marks stale; ms may store over a newer CAS as stale).
    pub invalidate: bool,
    /// `h`: mg reports whether the item was fetched before (ms md ma
    /// accept and ignore it, as memcached does).
    pub hit: bool,
    /// `l`: mg reports the seconds since the item was last accessed, as
    /// they were before this request (ms md ma accept and ignore it, as
    /// memcached does).
    pub last_access: bool,
}

impl<'a> MetaFlags<'a> {
    /// The flag tokens in request order.
    pub fn tokens(&self) -> impl Iterator<Item = &'a [u8]> {
        self.raw.split(|&c| c == b' ').filter(|t| !t.is_empty())
    }
}

/// What can go wrong parsing flags: the CLIENT_ERROR text memcached sends.
pub type FlagError = &'static str;

/// Parses the flag tokens of a meta command (and decodes a `b` key),
/// reproducing memcached's checks and messages: duplicate flags, unknown
/// flags, bad numeric tokens, bad `M` length, undecodable base64, and
/// opaque tokens over 32 bytes.
pub fn parse_flags<'a>(
    raw: &'a [u8],
    key: &'a [u8],
) -> Result<(MetaFlags<'a>, Key<'a>), FlagError> {
    let mut f = MetaFlags {
        raw,
        delta: 1,
        ..MetaFlags::default()
    };
    let mut seen = [false; 128];
    let mut err: Option<FlagError> = None;
    let mut decoded = Key::Plain(key);
    for tok in f.tokens() {
        let o = tok[0];
        if o >= 127 || seen[o as usize] {
            return Err("CLIENT_ERROR duplicate flag");
        }
        seen[o as usize] = true;
        let arg = &tok[1..];
        let bad_token = "CLIENT_ERROR bad token in command line format";
        match o {
            b'b' => {
                f.base64 = true;
                match base64_decode(key) {
                    Some(k) => decoded = k,
                    None => err = Some("CLIENT_ERROR error decoding key"),
                }
            }
            b'N' => match strtol32(arg) {
                Some(v) => f.vivify = Some(v),
                None => err = Some(bad_token),
            },
            b'T' => match strtol32(arg) {
                Some(v) => f.ttl = Some(v),
                None => err = Some(bad_token),
            },
            b'R' => match strtol32(arg) {
                Some(v) => f.recache = Some(v),
                None => err = Some(bad_token),
            },
            b'O' => {
                if tok.len() > MAX_OPAQUE_LEN {
                    // memcached reports this while writing the reply; it is
                    // checked here so a rejected command changes nothing
                    err = Some("CLIENT_ERROR opaque token too long");
                }
            }
            b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' => {}
            b'v' => f.value = true,
            b'u' => f.no_update = true,
            b'q' => f.quiet = true,
            b'F' => match strtoul32(arg) {
                Some(v) => f.client_flags = v,
                None => err = Some("CLIENT_ERROR bad command line format"),
            },
            b'C' => match strtoull(arg) {
                Some(v) => f.cas = Some(v),
                None => err = Some(bad_token),
            },
            // read like C (memcached parses both with safe_strtoull)
            b'E' => match strtoull(arg) {
                Some(v @ 1..=MAX_EXPLICIT_CAS) => f.new_cas = Some(v),
                Some(_) => err = Some(E_OUT_OF_RANGE),
                None => err = Some(bad_token),
            },
            b'M' => {
                if tok.len() != 2 {
                    err = Some("CLIENT_ERROR incorrect length for M token");
                } else {
                    f.mode = Some(tok[1]);
                }
            }
            b'J' => match strtoull(arg) {
                Some(v) => f.initial = v,
                None => err = Some("CLIENT_ERROR invalid numeric initial value"),
            },
            b'D' => match strtoull(arg) {
                Some(v) => f.delta = v,
                None => err = Some("CLIENT_ERROR invalid numeric delta value"),
            },
            b'I' => f.invalidate = true,
            b'h' => f.hit = true,
            b'l' => f.last_access = true,
            _ => return Err("CLIENT_ERROR invalid flag"),
        }
    }
    match err {
        Some(e) => Err(e),
        None => Ok((f, decoded)),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_val(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Strict base64 (padded, standard alphabet) as memcached's `b` flag
/// accepts it; None for malformed input or an empty result.
pub fn base64_decode(src: &[u8]) -> Option<Key<'static>> {
    if src.is_empty() || !src.len().is_multiple_of(4) || src.len() > KEY_MAX_LENGTH + 2 {
        return None;
    }
    let mut buf = [0u8; 190];
    let mut len = 0usize;
    let quads = src.len() / 4;
    for (qi, q) in src.chunks(4).enumerate() {
        let last = qi + 1 == quads;
        let pad = if last {
            q.iter().rev().take_while(|&&c| c == b'=').count()
        } else {
            0
        };
        if pad > 2 {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &q[..4 - pad] {
            n = (n << 6) | b64_val(c)? as u32;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        for &b in &bytes[..3 - pad] {
            buf[len] = b;
            len += 1;
        }
    }
    if len == 0 {
        return None;
    }
    Some(Key::Binary {
        buf,
        len: len as u8,
    })
}

/// Appends the base64 encoding of `src` to `out` (keys echoed by `k`).
pub fn base64_encode(src: &[u8], out: &mut Vec<u8>) {
    for chunk in src.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(B64[(n >> 18) as usize & 63]);
        out.push(B64[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_strictness() {
        assert_eq!(base64_decode(b"Zm9v").unwrap().bytes(), b"foo");
        assert_eq!(base64_decode(b"Zm8=").unwrap().bytes(), b"fo");
        for bad in [&b"Zm9"[..], b"Zm9v=", b"Zm8", b"====", b"", b"Zm=v"] {
            assert!(
                base64_decode(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut out = Vec::new();
        base64_encode(b"fo", &mut out);
        assert_eq!(out, b"Zm8=");
    }

    #[test]
    fn flag_errors_match_memcached() {
        assert_eq!(
            parse_flags(b"v v", b"k").unwrap_err(),
            "CLIENT_ERROR duplicate flag"
        );
        assert_eq!(
            parse_flags(b"z", b"k").unwrap_err(),
            "CLIENT_ERROR invalid flag"
        );
        assert_eq!(
            parse_flags(b"\x80", b"k").unwrap_err(),
            "CLIENT_ERROR duplicate flag"
        );
        assert_eq!(
            parse_flags(b"Tx", b"k").unwrap_err(),
            "CLIENT_ERROR bad token in command line format"
        );
        assert_eq!(
            parse_flags(b"MEE", b"k").unwrap_err(),
            "CLIENT_ERROR incorrect length for M token"
        );
        assert_eq!(
            parse_flags(b"b", b"Zm9").unwrap_err(),
            "CLIENT_ERROR error decoding key"
        );
        // E (explicit new CAS), as memcached 1.6.21+ reads it, within
        // the range the engine can take
        let (f, _) = parse_flags(b"v E5 C3", b"k").unwrap();
        assert_eq!((f.new_cas, f.cas), (Some(5), Some(3)));
        let (f, _) = parse_flags(b"E9223372036854775807", b"k").unwrap();
        assert_eq!(f.new_cas, Some(MAX_EXPLICIT_CAS));
        assert_eq!(parse_flags(b"v", b"k").unwrap().0.new_cas, None);
        for bad in [&b"E"[..], b"Ex", b"E-1", b"E5x", b"E18446744073709551616"] {
            assert_eq!(
                parse_flags(bad, b"k").unwrap_err(),
                "CLIENT_ERROR bad token in command line format",
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for bad in [
            &b"E0"[..],
            b"E9223372036854775808",
            b"E18446744073709551615",
        ] {
            assert_eq!(parse_flags(bad, b"k").unwrap_err(), E_OUT_OF_RANGE);
        }
        assert_eq!(
            parse_flags(b"E1 E2", b"k").unwrap_err(),
            "CLIENT_ERROR duplicate flag"
        );
        let (f, _) = parse_flags(b"h l", b"k").unwrap();
        assert!(f.hit && f.last_access && !f.value);
        let (f, _) = parse_flags(b"hx", b"k").unwrap();
        assert!(f.hit && !f.last_access);
        let (f, k) = parse_flags(b"v T30 b k O1", b"Zm9v").unwrap();
        assert!(f.value && f.base64);
        assert_eq!(f.ttl, Some(30));
        assert_eq!(k.bytes(), b"foo");
        assert_eq!(
            f.tokens().collect::<Vec<_>>(),
            [&b"v"[..], b"T30", b"b", b"k", b"O1"]
        );
    }
}
