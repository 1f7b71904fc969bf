//! Property tests for the Redis-side wire format: requests round-trip
//! through the parser however they are split into reads, inline quoting
//! round-trips through `split_args`, and whatever a command writes with
//! `ReplyWriter` is well-formed RESP that a reader decodes back exactly.

use magpie_protocol::resp::encode::format_double;
use magpie_protocol::resp::parse::split_args;
use magpie_protocol::resp::{Framing, Parser, Proto, ReplyWriter};
use proptest::prelude::*;

// ---------------------------------------------------------------- requests

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn kvs(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses `input` arriving in reads of the given sizes (cycled), as the
/// connection loop does; returns every request's framing and arguments.
fn parse_in_chunks(input: &[u8], chunks: &[usize]) -> Vec<(Framing, Vec<Vec<u8>>)> {
    let mut parser = Parser::default();
    let mut out = Vec::new();
    let (mut off, mut avail) = (0, 0);
    let mut sizes = chunks.iter().cycle();
    while off < input.len() {
        let buf = &input[off..avail];
        match parser.parse(buf).expect("well-formed input") {
            Some(req) => {
                let args = parser.args(buf).iter().map(<[u8]>::to_vec).collect();
                out.push((req.framing, args));
                off += req.consumed;
            }
            None => {
                assert!(avail < input.len(), "incomplete at the end of the input");
                avail = (avail + sizes.next().copied().unwrap_or(1)).min(input.len());
            }
        }
    }
    out
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..64, 1..16)
}

/// An argument the kvs framing can carry: no LF.
fn kvs_arg() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..40)
}

// ------------------------------------------------------------ inline quoting

/// Quotes `arg` the way redis-cli would, so `split_args` must give it back.
fn double_quoted(arg: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

/// Single quotes only escape `'`; an argument ending in a backslash cannot
/// be single-quoted (the backslash would escape the closing quote).
fn single_quoted(arg: &[u8]) -> Option<Vec<u8>> {
    if arg.ends_with(b"\\") {
        return None;
    }
    let mut out = vec![b'\''];
    for &b in arg {
        if b == b'\'' {
            out.extend_from_slice(b"\\'");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    Some(out)
}

// ------------------------------------------------------------------ replies

/// A reply as command code describes it to [`ReplyWriter`].
#[derive(Clone, Debug)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    NullArray,
    Bool(bool),
    Double(f64),
    Verbatim(Vec<u8>),
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
}

fn reply() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        "[ -~]{0,20}".prop_map(Reply::Simple),
        "[A-Z]{1,8} [ -~]{0,20}".prop_map(Reply::Error),
        any::<i64>().prop_map(Reply::Int),
        arg().prop_map(Reply::Bulk),
        Just(Reply::Null),
        Just(Reply::NullArray),
        any::<bool>().prop_map(Reply::Bool),
        any::<f64>().prop_map(Reply::Double),
        arg().prop_map(Reply::Verbatim),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Reply::Array),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Reply::Map),
            prop::collection::vec(inner, 0..6).prop_map(Reply::Set),
        ]
    })
}

fn write(w: &mut ReplyWriter<'_>, r: &Reply) {
    match r {
        Reply::Simple(s) => w.simple(s),
        Reply::Error(s) => w.error(s),
        Reply::Int(n) => w.integer(*n),
        Reply::Bulk(b) => w.bulk(b),
        Reply::Null => w.null(),
        Reply::NullArray => w.null_array(),
        Reply::Bool(b) => w.boolean(*b),
        Reply::Double(d) => w.double(*d),
        Reply::Verbatim(t) => w.verbatim(t),
        Reply::Array(items) => {
            w.array(items.len());
            items.iter().for_each(|i| write(w, i));
        }
        Reply::Map(pairs) => {
            w.map(pairs.len());
            for (k, v) in pairs {
                write(w, k);
                write(w, v);
            }
        }
        Reply::Set(items) => {
            w.set(items.len());
            items.iter().for_each(|i| write(w, i));
        }
    }
}

/// What a RESP2/RESP3 reader sees on the wire.
#[derive(Clone, Debug, PartialEq)]
enum Wire {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Wire>>),
    Null,
    Bool(bool),
    Double(Vec<u8>),
    Verbatim(Vec<u8>, Vec<u8>),
    Map(Vec<(Wire, Wire)>),
    Set(Vec<Wire>),
}

/// How `r` must appear on the wire in dialect `proto`.
fn expected(r: &Reply, proto: Proto) -> Wire {
    let resp3 = proto == Proto::Resp3;
    let list = |items: &[Reply]| items.iter().map(|i| expected(i, proto)).collect::<Vec<_>>();
    match r {
        Reply::Simple(s) => Wire::Simple(s.as_bytes().to_vec()),
        Reply::Error(s) => Wire::Error(s.as_bytes().to_vec()),
        Reply::Int(n) => Wire::Int(*n),
        Reply::Bulk(b) => Wire::Bulk(Some(b.clone())),
        Reply::Null if resp3 => Wire::Null,
        Reply::Null => Wire::Bulk(None),
        Reply::NullArray if resp3 => Wire::Null,
        Reply::NullArray => Wire::Array(None),
        Reply::Bool(b) if resp3 => Wire::Bool(*b),
        Reply::Bool(b) => Wire::Int(i64::from(*b)),
        Reply::Double(d) if resp3 => Wire::Double(format_double(*d).into_bytes()),
        Reply::Double(d) => Wire::Bulk(Some(format_double(*d).into_bytes())),
        Reply::Verbatim(t) if resp3 => Wire::Verbatim(b"txt".to_vec(), t.clone()),
        Reply::Verbatim(t) => Wire::Bulk(Some(t.clone())),
        Reply::Array(items) => Wire::Array(Some(list(items))),
        Reply::Map(pairs) if resp3 => Wire::Map(
            pairs
                .iter()
                .map(|(k, v)| (expected(k, proto), expected(v, proto)))
                .collect(),
        ),
        Reply::Map(pairs) => Wire::Array(Some(
            pairs
                .iter()
                .flat_map(|(k, v)| [expected(k, proto), expected(v, proto)])
                .collect(),
        )),
        Reply::Set(items) if resp3 => Wire::Set(list(items)),
        Reply::Set(items) => Wire::Array(Some(list(items))),
    }
}

/// A strict RESP2/RESP3 reader: every line must end in CRLF, every length
/// must be a plain decimal and be followed by exactly that many bytes and a
/// CRLF. Returns an error message instead of panicking on malformed input.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn line(&mut self) -> Result<&[u8], String> {
        let rest = &self.buf[self.pos..];
        let nl = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("line without CRLF")?;
        let line = &rest[..nl];
        if line.contains(&b'\n') || line.contains(&b'\r') {
            return Err("bare CR or LF inside a line".into());
        }
        self.pos += nl + 2;
        Ok(line)
    }

    fn int(text: &[u8]) -> Result<i64, String> {
        let s = std::str::from_utf8(text).map_err(|e| e.to_string())?;
        let n: i64 = s.parse().map_err(|_| format!("bad integer {s:?}"))?;
        if n.to_string() != s {
            return Err(format!("non-canonical integer {s:?}"));
        }
        Ok(n)
    }

    fn count(text: &[u8]) -> Result<usize, String> {
        usize::try_from(Self::int(text)?).map_err(|_| "negative count".to_string())
    }

    fn body(&mut self, len: usize) -> Result<Vec<u8>, String> {
        let end = self.pos + len;
        if self.buf.len() < end + 2 || &self.buf[end..end + 2] != b"\r\n" {
            return Err("bulk body not followed by CRLF".into());
        }
        let body = self.buf[self.pos..end].to_vec();
        self.pos = end + 2;
        Ok(body)
    }

    fn items(&mut self, n: usize) -> Result<Vec<Wire>, String> {
        (0..n).map(|_| self.value()).collect()
    }

    fn value(&mut self) -> Result<Wire, String> {
        let line = self.line()?.to_vec();
        let (&kind, text) = line.split_first().ok_or("empty line")?;
        Ok(match kind {
            b'+' => Wire::Simple(text.to_vec()),
            b'-' => Wire::Error(text.to_vec()),
            b':' => Wire::Int(Self::int(text)?),
            b'$' if text == b"-1" => Wire::Bulk(None),
            b'$' => Wire::Bulk(Some(self.body(Self::count(text)?)?)),
            b'*' if text == b"-1" => Wire::Array(None),
            b'*' => Wire::Array(Some(self.items(Self::count(text)?)?)),
            b'_' if text.is_empty() => Wire::Null,
            b'#' if text == b"t" || text == b"f" => Wire::Bool(text == b"t"),
            b',' => Wire::Double(text.to_vec()),
            b'=' => {
                let body = self.body(Self::count(text)?)?;
                if body.len() < 4 || body[3] != b':' {
                    return Err("verbatim without a format".into());
                }
                Wire::Verbatim(body[..3].to_vec(), body[4..].to_vec())
            }
            b'%' => {
                let n = Self::count(text)?;
                let mut pairs = Vec::new();
                for _ in 0..n {
                    pairs.push((self.value()?, self.value()?));
                }
                Wire::Map(pairs)
            }
            b'~' => Wire::Set(self.items(Self::count(text)?)?),
            other => return Err(format!("unknown type byte {other:#x}")),
        })
    }
}

/// A flat reply the kvs dialect can carry: a value or an error, or a list
/// of values, none holding CR or LF.
#[derive(Clone, Debug)]
enum Flat {
    Value(Vec<u8>),
    Int(i64),
    Error(String),
    List(Vec<Vec<u8>>),
}

fn kvs_value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..30,
    )
}

fn flat() -> impl Strategy<Value = Flat> {
    prop_oneof![
        kvs_value().prop_map(Flat::Value),
        any::<i64>().prop_map(Flat::Int),
        "[A-Z]{1,8} [ -~]{0,20}".prop_map(Flat::Error),
        prop::collection::vec(kvs_value(), 0..6).prop_map(Flat::List),
    ]
}

proptest! {
    #[test]
    fn multibulk_round_trips_at_any_chunking(
        requests in prop::collection::vec(prop::collection::vec(arg(), 1..6), 1..5),
        chunks in chunks(),
    ) {
        let input: Vec<u8> = requests.iter().flat_map(|r| multibulk(r)).collect();
        let got = parse_in_chunks(&input, &chunks);
        let want: Vec<_> = requests.into_iter().map(|r| (Framing::Multibulk, r)).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn kvs_requests_round_trip_at_any_chunking(
        first in kvs_arg().prop_filter("a leading $ means RESP", |a| a.first() != Some(&b'$')),
        rest in prop::collection::vec(kvs_arg(), 0..5),
        chunks in chunks(),
    ) {
        let mut args = vec![first];
        args.extend(rest);
        let input = [kvs(&args), multibulk(&args)].concat();
        let got = parse_in_chunks(&input, &chunks);
        prop_assert_eq!(got, vec![(Framing::Kvs, args.clone()), (Framing::Multibulk, args)]);
    }

    #[test]
    fn quoted_inline_arguments_round_trip(
        args in prop::collection::vec(arg(), 1..6),
        single in prop::collection::vec(any::<bool>(), 6),
        seps in prop::collection::vec(prop_oneof![Just(&b" "[..]), Just(&b"  "[..]), Just(&b"\t"[..])], 6),
        chunks in chunks(),
    ) {
        let mut line = Vec::new();
        for (i, a) in args.iter().enumerate() {
            line.extend_from_slice(seps[i]);
            let quoted = if single[i] {
                single_quoted(a).unwrap_or_else(|| double_quoted(a))
            } else {
                double_quoted(a)
            };
            line.extend_from_slice(&quoted);
        }
        let mut out = Vec::new();
        prop_assert!(split_args(&line, &mut out).is_some(), "{}", String::from_utf8_lossy(&line));
        prop_assert_eq!(&out, &args);
        // and as a whole inline request, if it holds no raw LF
        if !line.contains(&b'\n') {
            line.extend_from_slice(b"\r\n");
            prop_assert_eq!(parse_in_chunks(&line, &chunks), vec![(Framing::Inline, args)]);
        }
    }

    #[test]
    fn unquoted_words_split_on_whitespace(
        words in prop::collection::vec("[!#-&(-~]{1,12}", 1..8),
    ) {
        let line = words.join(" \t ");
        let mut out = Vec::new();
        prop_assert!(split_args(line.as_bytes(), &mut out).is_some());
        let want: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        prop_assert_eq!(out, want);
    }

    #[test]
    fn reply_writer_output_is_well_formed_resp(replies in prop::collection::vec(reply(), 1..4)) {
        for proto in [Proto::Resp2, Proto::Resp3] {
            let mut out = Vec::new();
            let mut w = ReplyWriter::new(&mut out, proto);
            replies.iter().for_each(|r| write(&mut w, r));
            let mut reader = Reader { buf: &out, pos: 0 };
            for r in &replies {
                let got = reader.value();
                prop_assert_eq!(got, Ok(expected(r, proto)), "{:?}", proto);
            }
            prop_assert_eq!(reader.pos, out.len(), "trailing bytes in {:?}", proto);
        }
    }

    #[test]
    fn kvs_dialect_replies_are_lines(replies in prop::collection::vec(flat(), 1..5)) {
        let mut out = Vec::new();
        let mut w = ReplyWriter::new(&mut out, Proto::Kvs);
        let mut want = Vec::new();
        for r in &replies {
            match r {
                Flat::Value(v) => {
                    w.bulk(v);
                    want.push([&b"+"[..], v].concat());
                }
                Flat::Int(n) => {
                    w.integer(*n);
                    want.push(format!("+{n}").into_bytes());
                }
                Flat::Error(e) => {
                    w.error(e);
                    want.push(format!("-{e}").into_bytes());
                }
                Flat::List(items) => {
                    w.array(items.len());
                    want.push(format!("*{}", items.len()).into_bytes());
                    for i in items {
                        w.bulk(i);
                        want.push(i.clone());
                    }
                }
            }
        }
        let want: Vec<u8> = want.into_iter().flat_map(|l| [l, b"\r\n".to_vec()].concat()).collect();
        prop_assert_eq!(out, want);
    }
}
