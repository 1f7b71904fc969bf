//! The request parser's protocol rules as one executable check, shared by
//! the `resp_parser` fuzz target (fuzz/) and the ordinary corpus-replay test
//! (tests/fuzz_corpus.rs), so a crash the fuzzer finds is a failing
//! `cargo test` as soon as its input is added to the corpus.

use super::parse::{Args, Framing, Limits, Parser, ProtocolError};

/// Limits small enough that short fuzz inputs reach every limit check.
/// `max_bulk_len` is below `max_inline_len` so that the bulk limit is also
/// exercised on kvs lines and inline arguments.
pub fn tight_limits() -> Limits {
    Limits {
        max_bulk_len: 8,
        max_multibulk_len: 4,
        max_inline_len: 16,
    }
}

/// Parsing inputs longer than this one byte at a time costs time quadratic
/// in the line length, so longer inputs are only checked with multi-byte
/// chunks.
const BYTEWISE_MAX: usize = 8 * 1024;

/// Feeds `data` to [`Parser`] as a connection would see it (whole, one byte
/// per read, and in pseudo-random reads derived from `data`), under the
/// default limits and under [`tight_limits`], and asserts the protocol rules:
///
/// - parsing never panics and always makes progress (`0 < consumed <= len`);
/// - the sequence of requests, the error that ends it (exact message) and
///   the unparsed tail are the same however the bytes were split;
/// - no request has more than `max_multibulk_len` arguments, no argument is
///   longer than `max_bulk_len`, and no kvs or inline argument is longer
///   than `max_inline_len` or (kvs) contains a line feed;
/// - argument ranges lie inside the bytes the request consumed;
/// - every request, re-encoded as a RESP multibulk, parses back to the same
///   arguments under the same limits;
/// - while a request is incomplete, [`Parser::needed`] never claims fewer
///   bytes than are already buffered.
///
/// # Panics
/// When a rule is broken; that is its purpose.
pub fn check_parser_invariants(data: &[u8]) {
    for limits in [Limits::default(), tight_limits()] {
        let whole = run(data, &limits, || usize::MAX);
        if data.len() <= BYTEWISE_MAX {
            let bytewise = run(data, &limits, || 1);
            assert_eq!(whole, bytewise, "whole buffer vs one byte per read");
        }
        for salt in 0..3u64 {
            let mut rng = Rng::new(data, salt);
            let chunked = run(data, &limits, || rng.chunk());
            assert_eq!(whole, chunked, "whole buffer vs random reads (salt {salt})");
        }
    }
}

/// What the parser reported, in order, for one way of splitting the input.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Request {
        framing: Framing,
        args: Vec<Vec<u8>>,
        consumed: usize,
    },
    Error(ProtocolError),
    /// Input ended inside a request with this many bytes unconsumed.
    Incomplete(usize),
}

/// Parses `data` as if it arrived in reads of `next_chunk()` bytes each.
fn run(data: &[u8], limits: &Limits, mut next_chunk: impl FnMut() -> usize) -> Vec<Event> {
    let mut parser = Parser::new(limits.clone());
    let mut events = Vec::new();
    let mut off = 0;
    let mut avail = next_chunk().max(1).min(data.len());
    while off < data.len() {
        let buf = &data[off..avail];
        match parser.parse(buf) {
            Ok(Some(req)) => {
                assert!(req.consumed > 0, "a request must consume bytes");
                assert!(req.consumed <= buf.len(), "consumed past the buffer");
                let args = parser.args(buf);
                check_request(limits, req.framing, req.consumed, args);
                events.push(Event::Request {
                    framing: req.framing,
                    args: args.iter().map(<[u8]>::to_vec).collect(),
                    consumed: req.consumed,
                });
                off += req.consumed;
            }
            Ok(None) => {
                if let Some(needed) = parser.needed(buf) {
                    assert!(
                        needed > buf.len(),
                        "needed() {needed} <= buffered {}",
                        buf.len()
                    );
                }
                if avail == data.len() {
                    events.push(Event::Incomplete(data.len() - off));
                    break;
                }
                avail = avail.saturating_add(next_chunk().max(1)).min(data.len());
            }
            Err(e) => {
                events.push(Event::Error(e));
                break;
            }
        }
    }
    events
}

fn check_request(limits: &Limits, framing: Framing, consumed: usize, args: Args<'_>) {
    assert!(args.len() <= limits.max_multibulk_len, "too many arguments");
    if let Args::Ranges(_, ranges) = args {
        for r in ranges {
            assert!(
                r.start <= r.end && r.end <= consumed,
                "argument outside the request"
            );
        }
    }
    for a in args.iter() {
        assert!(a.len() <= limits.max_bulk_len, "argument over max_bulk_len");
        if framing != Framing::Multibulk {
            assert!(a.len() <= limits.max_inline_len, "line over max_inline_len");
        }
        if framing == Framing::Kvs {
            assert!(!a.contains(&b'\n'), "kvs argument holds a line feed");
        }
    }
    if args.is_empty() {
        return;
    }
    let encoded = encode_multibulk(args);
    let mut again = Parser::new(limits.clone());
    let req = again
        .parse(&encoded)
        .expect("a parsed request re-encodes within the same limits")
        .expect("a re-encoded request is complete");
    assert_eq!(req.framing, Framing::Multibulk);
    assert_eq!(req.consumed, encoded.len());
    assert!(
        again.args(&encoded).iter().eq(args.iter()),
        "re-encoded arguments differ"
    );
}

fn encode_multibulk(args: Args<'_>) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args.iter() {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A small deterministic generator (xorshift64*) seeded from the input, so
/// a failing input always fails the same way.
struct Rng(u64);

impl Rng {
    fn new(data: &[u8], salt: u64) -> Rng {
        // FNV-1a over the input, mixed with the salt; never zero
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for &b in data {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Mostly short reads (1..=16 bytes), sometimes up to 512.
    fn chunk(&mut self) -> usize {
        let r = self.next();
        if r & 0x30 == 0 {
            1 + (r >> 8) as usize % 512
        } else {
            1 + (r >> 8) as usize % 16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_and_malformed_input() {
        check_parser_invariants(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*2\r\nGET\r\nk\r\n");
        check_parser_invariants(b"*1\r\n$-5\r\n");
        check_parser_invariants(b"SET \"a\\x41\" 'b'\r\n*3\r\n$3\r\nSET\r\n");
    }

    #[test]
    fn limit_checks_do_not_depend_on_read_boundaries() {
        // content exactly at the inline limit with CR arriving before LF
        let at_limit = [&[b'a'; 16][..], b"\r\n"].concat();
        check_parser_invariants(&at_limit);
        let over = [&[b'a'; 17][..], b"\r\n"].concat();
        check_parser_invariants(&over);
        check_parser_invariants(&[b"*1\r\n", &[b'k'; 17][..], b"\r\n"].concat());
        check_parser_invariants(&[b"*1\r\n$", &[b'1'; 17][..], b"\r\n"].concat());
        check_parser_invariants(&[b"*", &[b'1'; 17][..], b"\r\n"].concat());
    }
}
