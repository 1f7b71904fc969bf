//! Reply printing exactly as redis-cli 7.0 does it: the human form used on a
//! terminal (`(integer) 1`, `1) "a"`, `(nil)`) and the raw form used with
//! `--raw` or when stdout is not a terminal (values one per line).

use super::repr::repr;
use super::resp::Reply;

/// The terminal form of a reply (redis-cli `cliFormatReplyTTY`), ending in
/// a newline.
pub fn tty(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    tty_into(&mut out, reply, "");
    out
}

fn tty_into(out: &mut Vec<u8>, reply: &Reply, prefix: &str) {
    match reply {
        Reply::Error(e) => {
            out.extend_from_slice(b"(error) ");
            out.extend_from_slice(e);
            out.push(b'\n');
        }
        Reply::Status(s) => {
            out.extend_from_slice(s);
            out.push(b'\n');
        }
        Reply::Integer(i) => out.extend_from_slice(format!("(integer) {i}\n").as_bytes()),
        Reply::Double(d) => out.extend_from_slice(format!("(double) {d}\n").as_bytes()),
        Reply::BigNumber(n) => out.extend_from_slice(format!("(big number) {n}\n").as_bytes()),
        Reply::Bulk(b) => {
            out.extend_from_slice(repr(b).as_bytes());
            out.push(b'\n');
        }
        Reply::Verbatim(_, text) => {
            out.extend_from_slice(text);
            out.push(b'\n');
        }
        Reply::Nil => out.extend_from_slice(b"(nil)\n"),
        Reply::Bool(b) => out.extend_from_slice(if *b { b"(true)\n" } else { b"(false)\n" }),
        Reply::Array(items) => tty_list(out, items, ')', "(empty array)\n", prefix),
        Reply::Set(items) => tty_list(out, items, '~', "(empty set)\n", prefix),
        Reply::Push(items) => tty_list(out, items, ')', "(empty push)\n", prefix),
        Reply::Map(pairs) => {
            if pairs.is_empty() {
                out.extend_from_slice(b"(empty hash)\n");
                return;
            }
            let width = digits(pairs.len());
            let inner = format!("{prefix}{}", " ".repeat(width + 2));
            for (i, (k, v)) in pairs.iter().enumerate() {
                let lead = if i == 0 { "" } else { prefix };
                out.extend_from_slice(format!("{lead}{:>width$}# ", i + 1).as_bytes());
                tty_into(out, k, &inner);
                out.pop(); // the key's newline
                out.extend_from_slice(b" => ");
                tty_into(out, v, &inner);
            }
        }
    }
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn tty_list(out: &mut Vec<u8>, items: &[Reply], sep: char, empty: &str, prefix: &str) {
    if items.is_empty() {
        out.extend_from_slice(empty.as_bytes());
        return;
    }
    let width = digits(items.len());
    let inner = format!("{prefix}{}", " ".repeat(width + 2));
    for (i, item) in items.iter().enumerate() {
        // the caller already wrote the first element's number
        let lead = if i == 0 { "" } else { prefix };
        out.extend_from_slice(format!("{lead}{:>width$}{sep} ", i + 1).as_bytes());
        tty_into(out, item, &inner);
    }
}

/// The raw form of a reply (redis-cli `cliFormatReplyRaw`) without the
/// final newline: strings as they are, aggregates one element per line,
/// nil as nothing.
pub fn raw(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    raw_into(&mut out, reply);
    out
}

fn raw_into(out: &mut Vec<u8>, reply: &Reply) {
    match reply {
        Reply::Nil => {}
        Reply::Error(s) => {
            // redis-cli ends raw errors with their own newline, so one-shot
            // errors are followed by an empty line
            out.extend_from_slice(s);
            out.push(b'\n');
        }
        Reply::Status(s) | Reply::Bulk(s) | Reply::Verbatim(_, s) => out.extend_from_slice(s),
        Reply::Bool(b) => out.extend_from_slice(if *b { b"(true)" } else { b"(false)" }),
        Reply::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Reply::Double(s) | Reply::BigNumber(s) => out.extend_from_slice(s.as_bytes()),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                raw_into(out, item);
            }
        }
        Reply::Map(pairs) => {
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                raw_into(out, k);
                out.push(b' ');
                raw_into(out, v);
            }
        }
    }
}

/// How replies are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The terminal form.
    Human,
    /// The raw form.
    Raw,
}

/// A reply in the chosen form, ending in a newline, ready to write.
pub fn render(reply: &Reply, output: Output) -> Vec<u8> {
    match output {
        Output::Human => tty(reply),
        Output::Raw => {
            let mut v = raw(reply);
            v.push(b'\n');
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    fn t(r: &Reply) -> String {
        String::from_utf8(tty(r)).unwrap()
    }

    #[test]
    fn scalars() {
        assert_eq!(t(&Reply::Status(b"OK".to_vec())), "OK\n");
        assert_eq!(t(&Reply::Integer(-3)), "(integer) -3\n");
        assert_eq!(t(&Reply::Nil), "(nil)\n");
        assert_eq!(t(&Reply::Error(b"ERR x".to_vec())), "(error) ERR x\n");
        assert_eq!(t(&bulk("x\"y\nz")), "\"x\\\"y\\nz\"\n");
        assert_eq!(t(&Reply::Double("3.5".into())), "(double) 3.5\n");
        assert_eq!(t(&Reply::Bool(false)), "(false)\n");
        assert_eq!(t(&Reply::Array(vec![])), "(empty array)\n");
        assert_eq!(t(&Reply::Map(vec![])), "(empty hash)\n");
        assert_eq!(t(&Reply::Set(vec![])), "(empty set)\n");
    }

    #[test]
    fn nested_arrays_match_redis_cli() {
        // redis-cli: EVAL "return {1,{2,'x'},{}}" 0
        let r = Reply::Array(vec![
            Reply::Integer(1),
            Reply::Array(vec![Reply::Integer(2), bulk("x")]),
            Reply::Array(vec![]),
        ]);
        assert_eq!(
            t(&r),
            "1) (integer) 1\n2) 1) (integer) 2\n   2) \"x\"\n3) (empty array)\n"
        );
        // eleven elements: indexes are right-aligned to two columns
        let mut items: Vec<Reply> = (1..=10).map(Reply::Integer).collect();
        items.push(Reply::Array(vec![Reply::Integer(1), Reply::Integer(2)]));
        let s = t(&Reply::Array(items));
        assert!(s.starts_with(" 1) (integer) 1\n 2) (integer) 2\n"), "{s}");
        assert!(
            s.ends_with("10) (integer) 10\n11) 1) (integer) 1\n    2) (integer) 2\n"),
            "{s}"
        );
    }

    #[test]
    fn maps_and_sets_match_redis_cli() {
        let m = Reply::Map(vec![
            (bulk("f"), bulk("v")),
            (bulk("g"), Reply::Array(vec![bulk("a"), bulk("b")])),
        ]);
        assert_eq!(
            t(&m),
            "1# \"f\" => \"v\"\n2# \"g\" => 1) \"a\"\n   2) \"b\"\n"
        );
        assert_eq!(t(&Reply::Set(vec![bulk("a")])), "1~ \"a\"\n");
        assert_eq!(String::from_utf8(raw(&m)).unwrap(), "f v\ng a\nb");
    }

    #[test]
    fn raw_form() {
        let r = Reply::Array(vec![bulk("a"), Reply::Nil, bulk(""), Reply::Integer(4)]);
        assert_eq!(
            String::from_utf8(render(&r, Output::Raw)).unwrap(),
            "a\n\n\n4\n"
        );
        assert_eq!(render(&Reply::Nil, Output::Raw), b"\n");
        assert_eq!(
            render(&Reply::Error(b"ERR e".to_vec()), Output::Raw),
            b"ERR e\n\n"
        );
    }
}
