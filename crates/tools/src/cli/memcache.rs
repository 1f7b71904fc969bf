//! `magpie cli --memcache`: a prompt for the memcached text protocol.
//!
//! Lines are memcached commands. For storage commands (`set add replace
//! append prepend cas` and meta `ms`) the value is the last argument and the
//! `<bytes>` field may be left out: `set k 0 0 hello` sends
//! `set k 0 0 5\r\nhello\r\n`. Quoting follows redis-cli's rules so values
//! can hold spaces (`set k 0 0 "a b"`). Responses are printed as the server
//! sends them, one line each, data blocks as they are.

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::TcpStream;

use rustyline::error::ReadlineError;

use super::repl::{history_path, Docs, LineEditor};
use super::split::split_args;
use super::{dial, CliArgs};

/// Longest response line accepted.
const MAX_LINE: u64 = 1024 * 1024;

/// A request ready to send and what its response looks like.
#[derive(Debug, PartialEq)]
pub struct Request {
    /// The bytes to write.
    pub bytes: Vec<u8>,
    /// How the response ends.
    pub expect: Expect,
}

/// How to tell a response is complete.
#[derive(Debug, PartialEq, Clone, Copy)]
pub enum Expect {
    /// Nothing comes back (`noreply`, `quit`).
    Nothing,
    /// One line (with a data block if it is `VA`).
    Line,
    /// Lines (and `VALUE` data blocks) until `END` or an error line.
    UntilEnd,
    /// Quiet meta commands: we add `mn` and read until its `MN`.
    UntilMn,
}

const STORAGE: &[&str] = &["set", "add", "replace", "append", "prepend", "cas"];

/// What a storage command takes at this prompt: memcached's
/// `<key> <flags> <exptime> <bytes> [noreply]`, with the data block as the
/// last argument and `<bytes>` optional.
const STORE_SYNTAX: &str = "<key> <flags> <exptime> [<bytes>] [noreply] <data>";

/// memcached's text commands with their arguments as its doc/protocol.txt
/// writes them (adapted where this prompt takes the data block on the
/// line, and multi-word placeholders joined by `-` so hints can skip typed
/// words), for completion and hints. `parent|sub` rows are subcommands.
/// Names are case-sensitive, as memcached's are.
pub const COMMANDS: &[(&str, &str)] = &[
    ("add", STORE_SYNTAX),
    ("append", STORE_SYNTAX),
    ("cache_memlimit", "<megabytes> [noreply]"),
    (
        "cas",
        "<key> <flags> <exptime> [<bytes>] <cas-unique> [noreply] <data>",
    ),
    ("decr", "<key> <value> [noreply]"),
    ("delete", "<key> [noreply]"),
    ("flush_all", "[<delay>] [noreply]"),
    ("gat", "<exptime> <key>*"),
    ("gats", "<exptime> <key>*"),
    ("get", "<key>*"),
    ("gets", "<key>*"),
    ("incr", "<key> <value> [noreply]"),
    ("lru", "<tune|mode|temp_ttl> <option-list>"),
    (
        "lru_crawler",
        "<enable|disable|sleep|tocrawl|crawl|metadump> ...",
    ),
    ("lru_crawler|crawl", "<classid,classid,classid|all>"),
    ("lru_crawler|disable", ""),
    ("lru_crawler|enable", ""),
    ("lru_crawler|metadump", "<classid,classid,classid|all|hash>"),
    ("lru_crawler|sleep", "<microseconds>"),
    ("lru_crawler|tocrawl", "<32u>"),
    ("ma", "<key> <flags>*"),
    ("md", "<key> <flags>*"),
    ("me", "<key> <flag>"),
    ("mg", "<key> <flags>*"),
    ("mn", ""),
    ("ms", "<key> [<datalen>] <flags>* <data>"),
    ("prepend", STORE_SYNTAX),
    ("quit", ""),
    ("replace", STORE_SYNTAX),
    ("set", STORE_SYNTAX),
    ("shutdown", "[graceful]"),
    ("slabs", "<reassign|automove> ..."),
    ("slabs|automove", "<0|1>"),
    ("slabs|reassign", "<source-class> <dest-class>"),
    ("stats", "[settings|items|slabs|sizes|conns]"),
    ("touch", "<key> <exptime> [noreply]"),
    ("verbosity", "<level> [noreply]"),
    ("version", ""),
];

/// Completion and hints for the memcached prompt.
pub fn docs() -> Docs {
    Docs::from_table(COMMANDS, true)
}

/// Turns a typed line into a request; `None` for bad quoting.
pub fn build(line: &str) -> Option<Request> {
    let words = split_args(line)?;
    let Some(first) = words.first() else {
        return Some(Request {
            bytes: Vec::new(),
            expect: Expect::Nothing,
        });
    };
    let cmd = String::from_utf8_lossy(first).to_ascii_lowercase();
    let last_is = |w: &str| words.last().is_some_and(|l| l == w.as_bytes());
    let join = |ws: &[Vec<u8>]| ws.join(&b' ');
    let mut bytes;
    let mut expect = Expect::Line;
    if STORAGE.contains(&cmd.as_str()) && words.len() >= 3 {
        let data = words.last().expect("len >= 3");
        let mut head: Vec<Vec<u8>> = words[..words.len() - 1].to_vec();
        let noreply = head.last().is_some_and(|w| w == b"noreply");
        if noreply {
            head.pop();
        }
        // <cmd> <key> <flags> <exptime> [<bytes>] [<cas unique>]
        let full = if cmd == "cas" { 6 } else { 5 };
        if head.len() == full - 1 {
            head.insert(4, data.len().to_string().into_bytes());
        }
        if noreply {
            head.push(b"noreply".to_vec());
            expect = Expect::Nothing;
        }
        bytes = join(&head);
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(data);
    } else if cmd == "ms" && words.len() >= 3 {
        // ms <key> [<datalen>] <flags>* <value>
        let data = words.last().expect("len >= 3");
        let mut head: Vec<Vec<u8>> = words[..words.len() - 1].to_vec();
        let len = data.len().to_string().into_bytes();
        if head.get(2) != Some(&len) {
            head.insert(2, len);
        }
        if head[3..].iter().any(|f| f == b"q") {
            expect = Expect::UntilMn;
        }
        bytes = join(&head);
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(data);
    } else {
        bytes = join(&words);
        expect = match cmd.as_str() {
            "get" | "gets" | "gat" | "gats" | "stats" => Expect::UntilEnd,
            "lru_crawler" if words.get(1).is_some_and(|w| w == b"metadump") => Expect::UntilEnd,
            "quit" => Expect::Nothing,
            "mg" | "md" | "ma" if words.iter().skip(2).any(|f| f == b"q") => Expect::UntilMn,
            _ if last_is("noreply") => Expect::Nothing,
            _ => Expect::Line,
        };
    }
    bytes.extend_from_slice(b"\r\n");
    if expect == Expect::UntilMn {
        bytes.extend_from_slice(b"mn\r\n");
    }
    Some(Request { bytes, expect })
}

fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.take(MAX_LINE).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "Server closed the connection",
        ));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

/// Reads a data block of the length in `field` and appends it (plus a
/// newline) to `out`.
fn read_block(r: &mut impl BufRead, field: Option<&[u8]>, out: &mut Vec<u8>) -> io::Result<()> {
    let len: u64 = field
        .and_then(|f| std::str::from_utf8(f).ok())
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad data length in response"))?;
    let before = out.len();
    r.take(len).read_to_end(out)?;
    if (out.len() - before) as u64 != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut crlf = [0u8; 2];
    r.read_exact(&mut crlf)?;
    if crlf != *b"\r\n" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad data block terminator",
        ));
    }
    out.push(b'\n');
    Ok(())
}

fn is_error(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"CLIENT_ERROR") || line.starts_with(b"SERVER_ERROR")
}

/// Reads one whole response, returned as the text to print.
pub fn read_response(r: &mut impl BufRead, expect: Expect) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if expect == Expect::Nothing {
        return Ok(out);
    }
    loop {
        let line = read_line(r)?;
        out.extend_from_slice(&line);
        out.push(b'\n');
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        match fields[0] {
            b"VALUE" => {
                read_block(r, fields.get(3).copied(), &mut out)?;
                continue;
            }
            b"VA" => read_block(r, fields.get(1).copied(), &mut out)?,
            _ => {}
        }
        let done = match expect {
            Expect::Nothing | Expect::Line => true,
            Expect::UntilEnd => line == b"END" || is_error(&line),
            Expect::UntilMn => line == b"MN" || is_error(&line),
        };
        if done {
            return Ok(out);
        }
    }
}

struct McConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl McConn {
    fn open(args: &CliArgs) -> Result<McConn, String> {
        let s = dial(&args.host, args.port())?;
        let writer = s.try_clone().map_err(|e| format!("Error: {e}"))?;
        Ok(McConn {
            reader: BufReader::new(s),
            writer,
        })
    }

    fn call(&mut self, req: &Request) -> io::Result<Vec<u8>> {
        self.writer.write_all(&req.bytes)?;
        read_response(&mut self.reader, req.expect)
    }
}

/// Appended to the RESP prompt's history file name for this prompt's own.
pub const HISTORY_SUFFIX: &str = ".memcache";

/// Runs the memcached prompt (one-shot, stdin lines, or interactive).
pub fn run(args: &CliArgs) -> i32 {
    let mut conn = match McConn::open(args) {
        Ok(c) => Some(c),
        Err(msg) => {
            eprintln!("{msg}");
            if !args.command.is_empty() {
                return 1;
            }
            None
        }
    };
    let handle = |line: &str, conn: &mut Option<McConn>| -> bool {
        let Some(req) = build(line) else {
            println!("Invalid argument(s)");
            return true;
        };
        if req.bytes.is_empty() {
            return true;
        }
        if conn.is_none() {
            match McConn::open(args) {
                Ok(c) => *conn = Some(c),
                Err(msg) => {
                    eprintln!("{msg}");
                    return false;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        match c.call(&req) {
            Ok(text) => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&text);
                let _ = out.flush();
                true
            }
            Err(e) => {
                eprintln!("Error: {e}");
                *conn = None;
                false
            }
        }
    };
    if !args.command.is_empty() {
        // rebuild a line with redis-cli quoting so build() sees each argument
        let line: Vec<String> = args
            .command
            .iter()
            .map(|a| super::repr::repr(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())))
            .collect();
        return if handle(&line.join(" "), &mut conn) {
            0
        } else {
            1
        };
    }
    if !io::stdin().is_terminal() {
        for line in io::stdin().lock().split(b'\n') {
            let Ok(line) = line else { break };
            handle(&String::from_utf8_lossy(&line), &mut conn);
        }
        return 0;
    }
    let mut editor = match LineEditor::new(docs(), history_path(HISTORY_SUFFIX)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: cannot start the line editor: {e}");
            return 1;
        }
    };
    let prompt = format!("{}:{} (memcache)> ", args.host, args.port());
    loop {
        match editor.readline(&prompt) {
            Ok(line) => {
                editor.remember(&line);
                if matches!(line.trim(), "quit" | "exit") {
                    break;
                }
                handle(&line, &mut conn);
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(line: &str) -> (String, Expect) {
        let r = build(line).unwrap();
        (String::from_utf8(r.bytes).unwrap(), r.expect)
    }

    #[test]
    fn storage_lines_get_their_length() {
        assert_eq!(
            req("set k 0 0 hello"),
            ("set k 0 0 5\r\nhello\r\n".into(), Expect::Line)
        );
        assert_eq!(
            req("set k 0 0 5 hello"),
            ("set k 0 0 5\r\nhello\r\n".into(), Expect::Line)
        );
        assert_eq!(
            req("set k 1 2 noreply \"a b\""),
            ("set k 1 2 3 noreply\r\na b\r\n".into(), Expect::Nothing)
        );
        assert_eq!(
            req("cas k 0 0 77 v"),
            ("cas k 0 0 1 77\r\nv\r\n".into(), Expect::Line)
        );
        assert_eq!(
            req("ms k T0 v"),
            ("ms k 1 T0\r\nv\r\n".into(), Expect::Line)
        );
        assert_eq!(
            req("ms k q v"),
            ("ms k 1 q\r\nv\r\nmn\r\n".into(), Expect::UntilMn)
        );
        assert_eq!(req("get a b"), ("get a b\r\n".into(), Expect::UntilEnd));
        assert_eq!(
            req("delete a noreply"),
            ("delete a noreply\r\n".into(), Expect::Nothing)
        );
        assert_eq!(req("mg k v"), ("mg k v\r\n".into(), Expect::Line));
        assert!(build("set \"k").is_none());
    }

    #[test]
    fn completes_memcached_command_names_as_typed() {
        let d = docs();
        assert_eq!(
            d.completions("g"),
            (
                0,
                vec!["gat".into(), "gats".into(), "get".into(), "gets".into()]
            )
        );
        assert_eq!(d.completions("  fl").1, ["flush_all"]);
        assert_eq!(d.completions("  fl").0, 2);
        // memcached knows no `GET`: completion does not invent one
        assert!(d.completions("G").1.is_empty());
        assert_eq!(
            d.completions("lru_crawler me"),
            (12, vec!["metadump".into()])
        );
        assert_eq!(d.completions("slabs ").1, ["automove", "reassign"]);
        assert!(d.completions("set k ").1.is_empty());
        assert!(!d.complete("").iter().any(|n| n.contains('|')));
    }

    #[test]
    fn hints_show_the_protocol_syntax() {
        let d = docs();
        assert_eq!(
            d.hint("set").as_deref(),
            Some(" <key> <flags> <exptime> [<bytes>] [noreply] <data>")
        );
        assert_eq!(
            d.hint("set k 0 ").as_deref(),
            Some("<exptime> [<bytes>] [noreply] <data>")
        );
        assert_eq!(
            d.hint("cas k 0 0 ").as_deref(),
            Some("[<bytes>] <cas-unique> [noreply] <data>")
        );
        assert_eq!(d.hint("gat ").as_deref(), Some("<exptime> <key>*"));
        assert_eq!(d.hint("mg").as_deref(), Some(" <key> <flags>*"));
        assert_eq!(
            d.hint("lru_crawler metadump ").as_deref(),
            Some("<classid,classid,classid|all|hash>")
        );
        assert_eq!(d.hint("set k"), None, "mid-word");
        assert_eq!(d.hint("version"), None);
        assert_eq!(d.hint("SET"), None);
        assert_eq!(d.hint("bogus "), None);
    }

    #[test]
    fn every_command_the_prompt_frames_has_a_hint() {
        let names: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted");
        for cmd in STORAGE.iter().chain(&[
            "get", "gets", "gat", "gats", "stats", "ms", "mg", "md", "ma", "quit",
        ]) {
            assert!(names.contains(cmd), "{cmd}");
        }
    }

    #[test]
    fn history_is_kept_across_sessions_in_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("hist");
        // as `MAGPIE_HISTFILE=<dir>/hist` would set it
        let path =
            super::super::repl::history_path_from(Some(base.clone().into()), None, HISTORY_SUFFIX)
                .unwrap();
        assert_eq!(path, dir.path().join("hist.memcache"));
        let mut first = LineEditor::new(docs(), Some(path.clone())).unwrap();
        assert!(first.history().is_empty());
        first.remember("set k 0 0 hello");
        first.remember("   ");
        first.remember("get k");
        drop(first);
        assert!(path.exists(), "saved after each line");
        assert!(!base.exists(), "the RESP prompt's file is left alone");
        let mut second = LineEditor::new(docs(), Some(path.clone())).unwrap();
        assert_eq!(second.history(), ["set k 0 0 hello", "get k"]);
        second.remember("delete k");
        let third = LineEditor::new(docs(), Some(path)).unwrap();
        assert_eq!(third.history(), ["set k 0 0 hello", "get k", "delete k"]);
    }

    #[test]
    fn responses_are_read_whole() {
        let mut r = &b"VALUE a 0 3\r\nx\r\n\r\nVALUE b 5 1\r\ny\r\nEND\r\nnext"[..];
        let got = read_response(&mut r, Expect::UntilEnd).unwrap();
        assert_eq!(got, b"VALUE a 0 3\nx\r\n\nVALUE b 5 1\ny\nEND\n");
        assert_eq!(r, b"next");
        let mut r = &b"VA 2 f5\r\nhi\r\n"[..];
        assert_eq!(
            read_response(&mut r, Expect::Line).unwrap(),
            b"VA 2 f5\nhi\n"
        );
        let mut r = &b"VALUE a 0 10\r\nshort\r\n"[..];
        assert!(read_response(&mut r, Expect::UntilEnd).is_err());
        let mut r = &b"CLIENT_ERROR bad\r\n"[..];
        assert_eq!(
            read_response(&mut r, Expect::UntilEnd).unwrap(),
            b"CLIENT_ERROR bad\n"
        );
    }
}
