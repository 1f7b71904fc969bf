//! Reply encoding: one writer, three dialects.
//!
//! Command code describes a reply once (`bulk`, `integer`, `map`...) and the
//! writer renders it as RESP2, RESP3 (after `HELLO 3`) or the kvs framing,
//! appending straight to the connection's output buffer, so replies are
//! never built as trees or copied twice.

/// The dialect replies are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Proto {
    /// Redis protocol version 2 (the default).
    #[default]
    Resp2,
    /// Redis protocol version 3 (`HELLO 3`): typed nulls, maps, doubles...
    Resp3,
    /// The kvs framing: `+value`, `-error`, `*N` followed by N bare lines.
    Kvs,
}

/// Appends replies to `out` in the dialect `proto`.
pub struct ReplyWriter<'a> {
    out: &'a mut Vec<u8>,
    proto: Proto,
    /// kvs only: elements still expected by open arrays (written bare).
    kvs_in_array: usize,
}

impl<'a> ReplyWriter<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>, proto: Proto) -> Self {
        ReplyWriter {
            out,
            proto,
            kvs_in_array: 0,
        }
    }

    /// The dialect being written.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// Switches dialect (after `HELLO`).
    pub fn set_proto(&mut self, proto: Proto) {
        self.proto = proto;
    }

    /// The output written so far.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.out
    }

    fn line(&mut self, prefix: u8, body: &[u8]) {
        self.out.push(prefix);
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\r\n");
    }

    fn int_line(&mut self, prefix: u8, n: i64) {
        let mut b = itoa::Buffer::new();
        self.line(prefix, b.format(n).as_bytes());
    }

    /// In kvs, an element of an open array is a bare line; a top-level
    /// value is `+value`.
    fn kvs_value(&mut self, body: &[u8]) {
        if self.kvs_in_array > 0 {
            self.kvs_in_array -= 1;
            self.out.extend_from_slice(body);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.line(b'+', body);
        }
    }

    /// A status reply such as `OK` or `PONG` (must not contain CR or LF).
    pub fn simple(&mut self, s: &str) {
        match self.proto {
            Proto::Kvs => self.kvs_value(s.as_bytes()),
            _ => self.line(b'+', s.as_bytes()),
        }
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.simple("OK")
    }

    /// An error reply; `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`).
    pub fn error(&mut self, msg: &str) {
        if self.proto == Proto::Kvs && self.kvs_in_array > 0 {
            self.kvs_in_array -= 1;
        }
        self.line(b'-', msg.as_bytes());
    }

    /// An integer reply.
    pub fn integer(&mut self, n: i64) {
        match self.proto {
            Proto::Kvs => {
                let mut b = itoa::Buffer::new();
                self.kvs_value(b.format(n).as_bytes())
            }
            _ => self.int_line(b':', n),
        }
    }

    /// A binary-safe string.
    pub fn bulk(&mut self, data: &[u8]) {
        match self.proto {
            Proto::Kvs => self.kvs_value(data),
            _ => {
                self.int_line(b'$', data.len() as i64);
                self.out.extend_from_slice(data);
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Starts a bulk string of `len` bytes whose body the caller appends to
    /// [`ReplyWriter::buffer`] before calling [`ReplyWriter::bulk_end`]
    /// (lets a value be copied from the store straight into the output).
    pub fn bulk_start(&mut self, len: usize) {
        match self.proto {
            Proto::Kvs => {
                if self.kvs_in_array > 0 {
                    self.kvs_in_array -= 1;
                } else {
                    self.out.push(b'+');
                }
            }
            _ => self.int_line(b'$', len as i64),
        }
    }

    /// Ends a bulk begun with [`ReplyWriter::bulk_start`].
    pub fn bulk_end(&mut self) {
        self.out.extend_from_slice(b"\r\n");
    }

    /// A bulk string from an integer (how Redis returns numbers stored as strings).
    pub fn bulk_integer(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes())
    }

    /// The null value (a missing key): `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.proto {
            Proto::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
            Proto::Resp3 => self.out.extend_from_slice(b"_\r\n"),
            Proto::Kvs => {
                if self.kvs_in_array > 0 {
                    self.kvs_in_array -= 1;
                    self.out.extend_from_slice(b"\r\n");
                } else {
                    self.out.extend_from_slice(b"-nil\r\n");
                }
            }
        }
    }

    /// The null array (`*-1` in RESP2, `_` in RESP3), e.g. a timed-out reply.
    pub fn null_array(&mut self) {
        match self.proto {
            Proto::Resp2 => self.out.extend_from_slice(b"*-1\r\n"),
            _ => self.null(),
        }
    }

    /// Starts an array of `n` elements; the caller writes them next.
    pub fn array(&mut self, n: usize) {
        if self.proto == Proto::Kvs {
            if self.kvs_in_array > 0 {
                self.kvs_in_array -= 1;
            }
            self.kvs_in_array += n;
        }
        self.int_line(b'*', n as i64);
    }

    /// Starts a push message of `n` elements (RESP3's `>`: pub/sub
    /// messages and confirmations, which arrive outside the request/reply
    /// order); an array in RESP2 and kvs.
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Proto::Resp3 => self.int_line(b'>', n as i64),
            _ => self.array(n),
        }
    }

    /// Starts a map of `n` key/value pairs (an array of 2n in RESP2/kvs).
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Proto::Resp3 => self.int_line(b'%', n as i64),
            _ => self.array(n * 2),
        }
    }

    /// Starts a set of `n` members (an array in RESP2/kvs).
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Proto::Resp3 => self.int_line(b'~', n as i64),
            _ => self.array(n),
        }
    }

    /// A boolean (`:1`/`:0` in RESP2).
    pub fn boolean(&mut self, b: bool) {
        match self.proto {
            Proto::Resp3 => self
                .out
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" }),
            _ => self.integer(b as i64),
        }
    }

    /// A double, formatted as Redis does (`%.17g`, `inf`, `-inf`); a bulk
    /// string in RESP2.
    pub fn double(&mut self, d: f64) {
        let text = format_double(d);
        match self.proto {
            Proto::Resp3 => self.line(b',', text.as_bytes()),
            _ => self.bulk(text.as_bytes()),
        }
    }

    /// Verbatim text (`=N\r\ntxt:...` in RESP3, a bulk string otherwise),
    /// as INFO and CLIENT LIST reply.
    pub fn verbatim(&mut self, text: &[u8]) {
        match self.proto {
            Proto::Resp3 => {
                self.int_line(b'=', text.len() as i64 + 4);
                self.out.extend_from_slice(b"txt:");
                self.out.extend_from_slice(text);
                self.out.extend_from_slice(b"\r\n");
            }
            _ => self.bulk(text),
        }
    }
}

/// Formats a double like Redis's `%.17g` reply form: integers without a
/// fraction, `inf` / `-inf`, otherwise the shortest text that round-trips
/// (what `%.17g` shows after Redis trims it for most values).
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    format_g17(d)
}

/// C's `%.17g`.
pub fn format_g17(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = d.abs().log10().floor() as i32;
    // %.17e first, to learn the exponent after rounding
    let e_form = format!("{:.16e}", d);
    let (mantissa, e) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if !(-4..17).contains(&e) {
        let m = trim_fraction(mantissa);
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", e.abs());
    }
    let decimals = (16 - e).max(0) as usize;
    trim_fraction(&format!("{:.*}", decimals, d)).to_string()
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(proto: Proto, f: impl FnOnce(&mut ReplyWriter)) -> String {
        let mut out = Vec::new();
        f(&mut ReplyWriter::new(&mut out, proto));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dialects() {
        let all = |w: &mut ReplyWriter| {
            w.array(3);
            w.bulk(b"a");
            w.integer(2);
            w.null();
        };
        assert_eq!(render(Proto::Resp2, all), "*3\r\n$1\r\na\r\n:2\r\n$-1\r\n");
        assert_eq!(render(Proto::Resp3, all), "*3\r\n$1\r\na\r\n:2\r\n_\r\n");
        assert_eq!(render(Proto::Kvs, all), "*3\r\na\r\n2\r\n\r\n");
        assert_eq!(render(Proto::Kvs, |w| w.bulk(b"v")), "+v\r\n");
        assert_eq!(render(Proto::Resp3, |w| w.map(1)), "%1\r\n");
        assert_eq!(render(Proto::Resp2, |w| w.map(1)), "*2\r\n");
        assert_eq!(render(Proto::Resp3, |w| w.push(3)), ">3\r\n");
        assert_eq!(render(Proto::Resp2, |w| w.push(3)), "*3\r\n");
        assert_eq!(render(Proto::Resp3, |w| w.double(1.5)), ",1.5\r\n");
        assert_eq!(render(Proto::Resp2, |w| w.double(1.5)), "$3\r\n1.5\r\n");
        assert_eq!(
            render(Proto::Resp3, |w| w.verbatim(b"x")),
            "=5\r\ntxt:x\r\n"
        );
    }

    #[test]
    fn g17_like_c() {
        assert_eq!(format_g17(3.0), "3");
        assert_eq!(format_g17(10.5), "10.5");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(1e20), "1e+20");
        assert_eq!(format_g17(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(format_g17(123456789.0), "123456789");
    }
}
