//! Request parsing for the memcached text protocol (classic and meta
//! commands), following memcached 1.6's `proto_text.c` token by token so
//! that every accepted line, every error text and every byte consumed after
//! an error is the same.
//!
//! Zero-copy: keys, values and flag tokens borrow from the read buffer. The
//! parser is cheap to re-run on a longer buffer: a command line is
//! re-tokenised (at most a few KB), and the search for a line end resumes
//! where the previous call stopped. It never allocates, and it never sizes
//! anything by a length the client announced: a storage command waits until
//! its whole data block is in the buffer, and the buffer grows only as bytes
//! arrive. Data blocks of rejected storage commands are skipped as they
//! arrive, without buffering them.

use memchr::memchr;

use super::meta::{parse_flags, Key, MetaFlags, E_OUT_OF_RANGE};
use super::num::{strtol32, strtoul32, strtoull};
use super::{item_size_ok, KEY_MAX_LENGTH, MAX_LINE_WITHOUT_NEWLINE, MAX_TOKENS};

/// The six storage commands (and the modes `ms` maps onto them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Store unconditionally.
    Set,
    /// Store only if absent.
    Add,
    /// Store only if present.
    Replace,
    /// Add after the existing value.
    Append,
    /// Add before the existing value.
    Prepend,
    /// Store only if the CAS matches.
    Cas,
}

/// Keys of a retrieval command: the rest of the line, split on spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Words<'a>(pub &'a [u8]);

impl<'a> Words<'a> {
    /// The words in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> {
        self.0.split(|&c| c == b' ').filter(|t| !t.is_empty())
    }
}

/// One parsed request. Errors detected while parsing come back as
/// [`Request::Error`] with memcached's exact reply line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// get / gets / bget (touch None) and gat / gats (touch Some(exptime)).
    Get {
        /// Include the CAS in VALUE lines (gets, gats).
        cas: bool,
        /// New exptime for gat / gats.
        touch: Option<i32>,
        /// The keys, each at most 250 bytes.
        keys: Words<'a>,
    },
    /// set / add / replace / append / prepend / cas with its data block.
    Store {
        /// Which command.
        op: StoreOp,
        /// The key.
        key: &'a [u8],
        /// Client flags.
        flags: u32,
        /// Raw exptime (see [`super::Exptime`]).
        exptime: i32,
        /// CAS unique for `cas`.
        cas: u64,
        /// The data block (without its "\r\n").
        data: &'a [u8],
        /// Reply suppressed.
        noreply: bool,
    },
    /// A storage command whose item is over the size limit: the reply is
    /// "SERVER_ERROR object too large for cache", a `set` also drops the key
    /// (as memcached does), and the data block is skipped.
    TooLarge {
        /// Which command.
        op: StoreOp,
        /// The key.
        key: &'a [u8],
        /// Reply suppressed.
        noreply: bool,
    },
    /// `delete <key> [0] [noreply]`
    Delete {
        /// The key.
        key: &'a [u8],
        /// Reply suppressed.
        noreply: bool,
    },
    /// incr / decr
    Arith {
        /// incr (true) or decr.
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// Amount.
        delta: u64,
        /// Reply suppressed.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`
    Touch {
        /// The key.
        key: &'a [u8],
        /// Raw exptime.
        exptime: i32,
        /// Reply suppressed.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`
    FlushAll {
        /// Raw delay (0 = now).
        delay: i32,
        /// Reply suppressed.
        noreply: bool,
    },
    /// `stats [group]`
    Stats {
        /// Words after `stats`.
        args: Words<'a>,
    },
    /// version
    Version,
    /// `verbosity <level> [noreply]` (accepted; magpie logs through MAGPIE_LOG)
    Verbosity {
        /// The level asked for.
        level: u32,
        /// Reply suppressed.
        noreply: bool,
    },
    /// quit: close after the replies so far.
    Quit,
    /// `mg <key> <flags>*`
    MetaGet {
        /// The key (decoded if `b`).
        key: Key<'a>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `ms <key> <datalen> <flags>*` with its data block.
    MetaSet {
        /// The key (decoded if `b`).
        key: Key<'a>,
        /// The flags.
        flags: MetaFlags<'a>,
        /// The data block.
        data: &'a [u8],
    },
    /// ms whose item is over the size limit (the data block is skipped and
    /// the key dropped, as memcached does).
    MetaSetTooLarge {
        /// The key.
        key: Key<'a>,
    },
    /// `md <key> <flags>*`
    MetaDelete {
        /// The key (decoded if `b`).
        key: Key<'a>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `ma <key> <flags>*`
    MetaArith {
        /// The key (decoded if `b`).
        key: Key<'a>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// mn
    MetaNoop,
    /// `me <key> [b]`
    MetaDebug {
        /// The key (decoded if `b`).
        key: Key<'a>,
    },
    /// A reply line decided by the parser (ERROR, CLIENT_ERROR ..., ...).
    Error {
        /// The line without "\r\n".
        line: &'static str,
        /// Suppressed by noreply (classic commands only).
        noreply: bool,
    },
}

/// The outcome of one [`Parser::parse`] call.
// A request is large only because a base64 key is decoded inline; boxing it
// would put an allocation on every request of the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A request that used `consumed` bytes of the buffer.
    Request(Request<'a>, usize),
    /// Bytes of a rejected data block were discarded.
    Skipped(usize),
    /// More bytes are needed.
    Incomplete,
    /// A line grew past 2048 bytes without a newline (and is not a get):
    /// memcached closes such a connection without a reply.
    Close,
}

/// Settings the parser enforces.
#[derive(Clone, Debug)]
pub struct Limits {
    /// memcached `-I`: the largest item (header + key + value), 1 MB.
    pub max_item_size: usize,
    /// Longest get/gets line accepted (memcached has no bound; magpie
    /// closes the client past this many bytes without a newline).
    pub max_get_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_item_size: super::DEFAULT_MAX_ITEM_SIZE,
            max_get_line: 64 * 1024 * 1024,
        }
    }
}

/// A resumable memcached request parser for one connection.
#[derive(Debug, Default)]
pub struct Parser {
    limits: Limits,
    /// Bytes of a rejected data block still to discard.
    swallow: usize,
    /// How far the current partial line was already searched for '\n'.
    scanned: usize,
}

/// Tokens of a command line as memcached's `tokenize_command` makes them:
/// split on single spaces, at most 23, the rest left unsplit.
struct Tokens<'a> {
    toks: [&'a [u8]; MAX_TOKENS],
    n: usize,
    /// The unsplit remainder after the 23rd token (None if fully split).
    rest: Option<&'a [u8]>,
    /// Byte offset of each token within the line.
    offs: [usize; MAX_TOKENS],
}

impl<'a> Tokens<'a> {
    fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t = Tokens {
            toks: [&[]; MAX_TOKENS],
            n: 0,
            rest: None,
            offs: [0; MAX_TOKENS],
        };
        let mut i = 0;
        while i < line.len() {
            while i < line.len() && line[i] == b' ' {
                i += 1;
            }
            if i >= line.len() {
                break;
            }
            if t.n == MAX_TOKENS - 1 {
                t.rest = Some(&line[i..]);
                break;
            }
            let start = i;
            while i < line.len() && line[i] != b' ' {
                i += 1;
            }
            t.toks[t.n] = &line[start..i];
            t.offs[t.n] = start;
            t.n += 1;
        }
        t
    }

    /// memcached's `ntokens`: real tokens plus the terminal one.
    fn ntokens(&self) -> usize {
        self.n + 1
    }

    /// Token `i`, empty past the end (memcached's terminal token).
    fn get(&self, i: usize) -> &'a [u8] {
        if i < self.n {
            self.toks[i]
        } else {
            &[]
        }
    }

    /// memcached's `set_noreply_maybe`: the last token is "noreply".
    fn noreply(&self) -> bool {
        self.n >= 1 && self.toks[self.n - 1] == b"noreply"
    }
}

/// The data length of a "memcached-lite" `set <key> <bytes>` line: a
/// number memcached would accept as `<bytes>`. Any other third token leaves
/// the line to memcached's rules (a 3-token `set` is then `ERROR`).
fn lite_length(tok: &[u8]) -> Option<i32> {
    strtol32(tok).filter(|v| (0..=i32::MAX - 2).contains(v))
}

fn error(line: &'static str) -> Request<'static> {
    Request::Error {
        line,
        noreply: false,
    }
}

impl Parser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            swallow: 0,
            scanned: 0,
        }
    }

    /// Parses the next request at the start of `buf`.
    pub fn parse<'a>(&mut self, buf: &'a [u8]) -> Parsed<'a> {
        if self.swallow > 0 {
            if buf.is_empty() {
                return Parsed::Incomplete;
            }
            let n = self.swallow.min(buf.len());
            self.swallow -= n;
            return Parsed::Skipped(n);
        }
        let from = self.scanned.min(buf.len());
        let Some(nl) = memchr(b'\n', &buf[from..]).map(|i| i + from) else {
            self.scanned = buf.len();
            return self.check_partial_line(buf);
        };
        self.scanned = 0;
        let mut line = &buf[..nl];
        if line.len() > 1 && line[line.len() - 1] == b'\r' {
            line = &line[..line.len() - 1];
        }
        let consumed = nl + 1;
        let t = Tokens::new(line);
        self.command(&t, line, buf, consumed)
    }

    /// memcached closes a client whose line passes 2048 bytes without a
    /// newline, unless it looks like a (possibly huge) multi-get.
    fn check_partial_line<'a>(&mut self, buf: &'a [u8]) -> Parsed<'a> {
        if buf.len() <= MAX_LINE_WITHOUT_NEWLINE {
            return Parsed::Incomplete;
        }
        let spaces = buf.iter().take_while(|&&c| c == b' ').count();
        let rest = &buf[spaces..];
        if spaces > 100 || !(rest.starts_with(b"get ") || rest.starts_with(b"gets ")) {
            return Parsed::Close;
        }
        if buf.len() > self.limits.max_get_line {
            return Parsed::Close;
        }
        Parsed::Incomplete
    }

    fn command<'a>(
        &mut self,
        t: &Tokens<'a>,
        line: &'a [u8],
        buf: &'a [u8],
        consumed: usize,
    ) -> Parsed<'a> {
        let nt = t.ntokens();
        let cmd = t.get(0);
        let req = |r: Request<'a>| Parsed::Request(r, consumed);
        if nt < 2 || cmd.len() < 2 {
            return req(error("ERROR"));
        }
        if cmd[0] == b'm' && cmd.len() == 2 {
            return self.meta(t, line, buf, consumed);
        }
        let want = |ok: bool| if ok { None } else { Some(req(error("ERROR"))) };
        match cmd {
            b"get" | b"gets" | b"gat" | b"gats" | b"bget" => {
                if let Some(e) = want(nt >= 3) {
                    return e;
                }
                let touch = matches!(cmd, b"gat" | b"gats");
                let cas = matches!(cmd, b"gets" | b"gats");
                let mut exptime = None;
                let mut keys_at = t.offs[1];
                if touch {
                    match strtol32(t.get(1)) {
                        Some(e) => exptime = Some(e),
                        None => return req(error("CLIENT_ERROR invalid exptime argument")),
                    }
                    keys_at = if t.n > 2 { t.offs[2] } else { line.len() };
                }
                let keys = Words(&line[keys_at..]);
                if keys.iter().any(|k| k.len() > KEY_MAX_LENGTH) {
                    return req(error("CLIENT_ERROR bad command line format"));
                }
                req(Request::Get {
                    cas,
                    touch: exptime,
                    keys,
                })
            }
            b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
                let op = match cmd {
                    b"set" => StoreOp::Set,
                    b"add" => StoreOp::Add,
                    b"replace" => StoreOp::Replace,
                    b"append" => StoreOp::Append,
                    b"prepend" => StoreOp::Prepend,
                    _ => StoreOp::Cas,
                };
                if op == StoreOp::Set && nt == 4 && lite_length(t.get(2)).is_some() {
                    // magpie's one extension of the grammar (memcached
                    // answers ERROR here): the "memcached-lite" short form
                    return self.storage(t, op, true, buf, consumed);
                }
                let is_cas = op == StoreOp::Cas;
                let ok = if is_cas {
                    nt == 7 || nt == 8
                } else {
                    nt == 6 || nt == 7
                };
                if let Some(e) = want(ok) {
                    return e;
                }
                self.storage(t, op, false, buf, consumed)
            }
            b"incr" | b"decr" => {
                if let Some(e) = want(nt == 4 || nt == 5) {
                    return e;
                }
                let noreply = t.noreply();
                let key = t.get(1);
                if key.len() > KEY_MAX_LENGTH {
                    return req(Request::Error {
                        line: "CLIENT_ERROR bad command line format",
                        noreply,
                    });
                }
                match strtoull(t.get(2)) {
                    Some(delta) => req(Request::Arith {
                        incr: cmd == b"incr",
                        key,
                        delta,
                        noreply,
                    }),
                    None => req(Request::Error {
                        line: "CLIENT_ERROR invalid numeric delta argument",
                        noreply,
                    }),
                }
            }
            b"delete" => {
                if let Some(e) = want((3..=5).contains(&nt)) {
                    return e;
                }
                let mut noreply = false;
                if nt > 3 {
                    let hold_is_zero = t.get(2) == b"0";
                    noreply = t.noreply();
                    let valid = (nt == 4 && (hold_is_zero || noreply))
                        || (nt == 5 && hold_is_zero && noreply);
                    if !valid {
                        return req(Request::Error {
                            line: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
                            noreply,
                        });
                    }
                }
                let key = t.get(1);
                if key.len() > KEY_MAX_LENGTH {
                    return req(Request::Error {
                        line: "CLIENT_ERROR bad command line format",
                        noreply,
                    });
                }
                req(Request::Delete { key, noreply })
            }
            b"touch" => {
                if let Some(e) = want(nt == 4 || nt == 5) {
                    return e;
                }
                let noreply = t.noreply();
                let key = t.get(1);
                if key.len() > KEY_MAX_LENGTH {
                    return req(Request::Error {
                        line: "CLIENT_ERROR bad command line format",
                        noreply,
                    });
                }
                match strtol32(t.get(2)) {
                    Some(exptime) => req(Request::Touch {
                        key,
                        exptime,
                        noreply,
                    }),
                    None => req(Request::Error {
                        line: "CLIENT_ERROR invalid exptime argument",
                        noreply,
                    }),
                }
            }
            b"flush_all" => {
                if let Some(e) = want((2..=4).contains(&nt)) {
                    return e;
                }
                let noreply = t.noreply();
                let mut delay = 0;
                if nt != if noreply { 3 } else { 2 } {
                    match strtol32(t.get(1)) {
                        Some(d) => delay = d,
                        None => {
                            return req(Request::Error {
                                line: "CLIENT_ERROR invalid exptime argument",
                                noreply,
                            })
                        }
                    }
                }
                req(Request::FlushAll { delay, noreply })
            }
            b"stats" => req(Request::Stats {
                args: Words(&line[t.offs[0] + cmd.len()..]),
            }),
            b"version" => req(Request::Version),
            b"quit" => req(Request::Quit),
            b"verbosity" => {
                if let Some(e) = want(nt == 3 || nt == 4) {
                    return e;
                }
                let noreply = t.noreply();
                match strtoul32(t.get(1)) {
                    Some(level) => req(Request::Verbosity { level, noreply }),
                    None => req(Request::Error {
                        line: "CLIENT_ERROR bad command line format",
                        noreply,
                    }),
                }
            }
            b"shutdown" => req(error("ERROR: shutdown not enabled")),
            _ => req(error("ERROR")),
        }
    }

    /// A storage command line: `<cmd> <key> <flags> <exptime> <bytes>
    /// [<cas>] [noreply]`, or with `lite` the short `set <key> <bytes>`
    /// (flags 0, no expiry, no noreply).
    fn storage<'a>(
        &mut self,
        t: &Tokens<'a>,
        op: StoreOp,
        lite: bool,
        buf: &'a [u8],
        consumed: usize,
    ) -> Parsed<'a> {
        let noreply = !lite && t.noreply();
        let fail = |line| Parsed::Request(Request::Error { line, noreply }, consumed);
        let key = t.get(1);
        if key.len() > KEY_MAX_LENGTH {
            return fail("CLIENT_ERROR bad command line format");
        }
        let numbers = if lite {
            (Some(0), Some(0), strtol32(t.get(2)))
        } else {
            (strtoul32(t.get(2)), strtol32(t.get(3)), strtol32(t.get(4)))
        };
        let (Some(flags), Some(exptime), Some(vlen)) = numbers else {
            return fail("CLIENT_ERROR bad command line format");
        };
        let mut cas = 0;
        if op == StoreOp::Cas {
            match strtoull(t.get(5)) {
                Some(c) => cas = c,
                None => return fail("CLIENT_ERROR bad command line format"),
            }
        }
        if !(0..=i32::MAX - 2).contains(&vlen) {
            return fail("CLIENT_ERROR bad command line format");
        }
        let vlen = vlen as usize;
        if !item_size_ok(key.len(), flags, vlen, self.limits.max_item_size) {
            self.swallow = vlen + 2;
            return Parsed::Request(Request::TooLarge { op, key, noreply }, consumed);
        }
        let Some(block) = buf.get(consumed..consumed + vlen + 2) else {
            return Parsed::Incomplete;
        };
        let total = consumed + vlen + 2;
        if &block[vlen..] != b"\r\n" {
            return Parsed::Request(
                Request::Error {
                    line: "CLIENT_ERROR bad data chunk",
                    noreply,
                },
                total,
            );
        }
        Parsed::Request(
            Request::Store {
                op,
                key,
                flags,
                exptime,
                cas,
                data: &block[..vlen],
                noreply,
            },
            total,
        )
    }

    fn meta<'a>(
        &mut self,
        t: &Tokens<'a>,
        line: &'a [u8],
        buf: &'a [u8],
        consumed: usize,
    ) -> Parsed<'a> {
        let nt = t.ntokens();
        let which = t.get(0)[1];
        let req = |r: Request<'a>| Parsed::Request(r, consumed);
        let key = t.get(1);
        // flag tokens start after the key (mg md ma) or the length (ms)
        let flags_from = |i: usize| {
            if t.n > i {
                &line[t.offs[i]..]
            } else {
                &line[line.len()..]
            }
        };
        match which {
            b'n' => req(Request::MetaNoop),
            b'e' => {
                if nt < 3 || key.len() > KEY_MAX_LENGTH {
                    return req(error("CLIENT_ERROR bad command line format"));
                }
                if nt >= 4 && t.get(2) == b"b" {
                    return match super::meta::base64_decode(key) {
                        Some(k) => req(Request::MetaDebug { key: k }),
                        None => req(error("CLIENT_ERROR bad command line format")),
                    };
                }
                req(Request::MetaDebug {
                    key: Key::Plain(key),
                })
            }
            b'g' | b'd' | b'a' => {
                if nt < 3 {
                    return req(error("ERROR"));
                }
                if key.len() > KEY_MAX_LENGTH {
                    return req(error("CLIENT_ERROR bad command line format"));
                }
                if nt > super::MAX_META_TOKENS {
                    return req(error(if which == b'g' {
                        "CLIENT_ERROR options flags are too long"
                    } else {
                        "CLIENT_ERROR options flags too long"
                    }));
                }
                let (flags, key) = match parse_flags(flags_from(2), key) {
                    Ok(f) => f,
                    // md and ma answer one message for every flag error
                    // (memcached's), except the two checks magpie adds
                    Err(e)
                        if which == b'g'
                            || e == "CLIENT_ERROR opaque token too long"
                            || e == E_OUT_OF_RANGE =>
                    {
                        return req(error(e))
                    }
                    Err(_) => return req(error("CLIENT_ERROR invalid or duplicate flag")),
                };
                if which == b'a' && !matches!(flags.mode, None | Some(b'I' | b'+' | b'D' | b'-')) {
                    return req(error("CLIENT_ERROR invalid mode for ma M token"));
                }
                req(match which {
                    b'g' => Request::MetaGet { key, flags },
                    b'd' => Request::MetaDelete { key, flags },
                    _ => Request::MetaArith { key, flags },
                })
            }
            b's' => {
                if nt < 3 {
                    return req(error("ERROR"));
                }
                if key.len() > KEY_MAX_LENGTH || nt == 3 {
                    return req(error("CLIENT_ERROR bad command line format"));
                }
                if nt > super::MAX_META_TOKENS {
                    return req(error("CLIENT_ERROR options flags too long"));
                }
                let vlen = match strtol32(t.get(2)) {
                    Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
                    _ => return req(error("CLIENT_ERROR bad command line format")),
                };
                let parsed = parse_flags(flags_from(3), key).and_then(|(f, k)| match f.mode {
                    None | Some(b'E' | b'A' | b'P' | b'R' | b'S') => Ok((f, k)),
                    Some(_) => Err("CLIENT_ERROR invalid mode for ms M token"),
                });
                let (flags, key) = match parsed {
                    Ok(f) => f,
                    Err(e) => {
                        // the data block is swallowed after an ms error
                        self.swallow = vlen + 2;
                        return req(error(e));
                    }
                };
                if !item_size_ok(
                    key.bytes().len(),
                    flags.client_flags,
                    vlen,
                    self.limits.max_item_size,
                ) {
                    self.swallow = vlen + 2;
                    return req(Request::MetaSetTooLarge { key });
                }
                let Some(block) = buf.get(consumed..consumed + vlen + 2) else {
                    return Parsed::Incomplete;
                };
                let total = consumed + vlen + 2;
                if &block[vlen..] != b"\r\n" {
                    return Parsed::Request(error("CLIENT_ERROR bad data chunk"), total);
                }
                Parsed::Request(
                    Request::MetaSet {
                        key,
                        flags,
                        data: &block[..vlen],
                    },
                    total,
                )
            }
            _ => req(error("ERROR")),
        }
    }
}
