//! The interactive side of `magpie cli`: a rustyline prompt with history,
//! command-name completion and argument hints taken from the server's
//! `COMMAND DOCS`, and the same loop without line editing when stdin is not
//! a terminal (`echo "GET k" | magpie cli`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use super::format::{self, Output};
use super::resp::Reply;
use super::split::split_args;
use super::{CliArgs, Conn};

/// What the prompt knows about commands: name (lowercase) to the one-line
/// summary and argument synopsis. Subcommands are named `parent|sub`.
#[derive(Default, Debug)]
pub struct Docs {
    /// Lowercase command name to (summary, argument synopsis).
    pub commands: BTreeMap<String, (String, String)>,
    /// Names must be typed as they are (memcached's lowercase commands);
    /// otherwise any case matches and completion follows the user's case.
    pub case_sensitive: bool,
}

fn text(r: &Reply) -> Option<String> {
    match r {
        Reply::Bulk(b) | Reply::Status(b) | Reply::Verbatim(_, b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        _ => None,
    }
}

/// Key/value pairs of a RESP3 map or a RESP2 flattened array.
fn pairs(r: &Reply) -> Vec<(&Reply, &Reply)> {
    match r {
        Reply::Map(p) => p.iter().map(|(k, v)| (k, v)).collect(),
        Reply::Array(a) => a.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        _ => Vec::new(),
    }
}

fn field<'r>(r: &'r Reply, name: &str) -> Option<&'r Reply> {
    pairs(r)
        .into_iter()
        .find(|(k, _)| text(k).is_some_and(|k| k == name))
        .map(|(_, v)| v)
}

fn list(r: Option<&Reply>) -> &[Reply] {
    match r {
        Some(Reply::Array(a) | Reply::Set(a)) => a,
        _ => &[],
    }
}

/// One argument of a `COMMAND DOCS` entry as redis-cli's hints show it:
/// `[EX seconds|PX milliseconds]`, `key [key ...]`.
fn arg_synopsis(arg: &Reply) -> String {
    let get = |n: &str| field(arg, n).and_then(text).unwrap_or_default();
    let kind = get("type");
    let token = get("token");
    let flags: Vec<String> = list(field(arg, "flags")).iter().filter_map(text).collect();
    let children = || list(field(arg, "arguments")).iter().map(arg_synopsis);
    let inner = match kind.as_str() {
        "pure-token" => token.clone(),
        "oneof" => children().collect::<Vec<_>>().join("|"),
        "block" => children().collect::<Vec<_>>().join(" "),
        _ => get("name"),
    };
    let mut s = if kind != "pure-token" && !token.is_empty() {
        format!("{token} {inner}")
    } else {
        inner
    };
    if flags
        .iter()
        .any(|f| f == "multiple" || f == "multiple_token")
    {
        s = format!("{s} [{s} ...]");
    }
    if flags.iter().any(|f| f == "optional") {
        s = format!("[{s}]");
    }
    s
}

impl Docs {
    /// Reads a `COMMAND DOCS` reply (RESP2 or RESP3 shape). An entry may
    /// carry `arguments` (Redis's form) or a ready `syntax` string.
    pub fn from_command_docs(reply: &Reply) -> Docs {
        let mut commands = BTreeMap::new();
        Self::add_entries(reply, &mut commands);
        Docs {
            commands,
            case_sensitive: false,
        }
    }

    /// A fixed table of `(name, synopsis)` (the memcached prompt's).
    pub fn from_table(table: &[(&str, &str)], case_sensitive: bool) -> Docs {
        Docs {
            commands: table
                .iter()
                .map(|(n, syn)| (n.to_string(), (String::new(), syn.to_string())))
                .collect(),
            case_sensitive,
        }
    }

    /// Adds a `name -> doc` map's entries, and their `subcommands` (named
    /// `parent|sub`, as Redis names them).
    fn add_entries(reply: &Reply, commands: &mut BTreeMap<String, (String, String)>) {
        for (name, doc) in pairs(reply) {
            let Some(name) = text(name) else { continue };
            let summary = field(doc, "summary").and_then(text).unwrap_or_default();
            let synopsis = match field(doc, "syntax").and_then(text) {
                Some(s) => s,
                None => list(field(doc, "arguments"))
                    .iter()
                    .map(arg_synopsis)
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            commands.insert(name.to_ascii_lowercase(), (summary, synopsis));
            if let Some(subs) = field(doc, "subcommands") {
                Self::add_entries(subs, commands);
            }
        }
    }

    /// Reads plain `COMMAND` output: names only, for completion.
    pub fn from_command_list(reply: &Reply) -> Docs {
        let commands = list(Some(reply))
            .iter()
            .filter_map(|info| list(Some(info)).first().and_then(text))
            .map(|n| (n.to_ascii_lowercase(), Default::default()))
            .collect();
        Docs {
            commands,
            case_sensitive: false,
        }
    }

    /// Asks the server; an error reply (a server without COMMAND DOCS)
    /// falls back to `COMMAND`, then to knowing nothing.
    pub fn fetch(conn: &mut Conn) -> Docs {
        if let Ok(r @ (Reply::Array(_) | Reply::Map(_))) = conn.call(&["COMMAND", "DOCS"]) {
            let d = Docs::from_command_docs(&r);
            if !d.commands.is_empty() {
                return d;
            }
        }
        match conn.call(&["COMMAND"]) {
            Ok(r @ Reply::Array(_)) => Docs::from_command_list(&r),
            _ => Docs::default(),
        }
    }

    /// The hint shown after `line`: the synopsis without the arguments
    /// already typed.
    pub fn hint(&self, line: &str) -> Option<String> {
        let words = split_args(line)?;
        let name = self.key(words.first()?);
        // a container's subcommand (`CLIENT SETNAME`) has its own entry
        let sub = words
            .get(1)
            .and_then(|s| self.commands.get(&format!("{name}|{}", self.key(s))));
        let (name_words, (_, synopsis)) = match sub {
            Some(doc) => (2, doc),
            None => (1, self.commands.get(&name)?),
        };
        if synopsis.is_empty() {
            return None;
        }
        let typed = words.len() - name_words;
        if !line.ends_with(' ') && typed > 0 {
            return None;
        }
        let rest: Vec<&str> = synopsis.split(' ').skip(typed).collect();
        if rest.is_empty() {
            return None;
        }
        let lead = if line.ends_with(' ') { "" } else { " " };
        Some(format!("{lead}{}", rest.join(" ")))
    }

    /// A typed word as the table names it.
    fn key(&self, word: &[u8]) -> String {
        let w = String::from_utf8_lossy(word);
        if self.case_sensitive {
            w.into_owned()
        } else {
            w.to_ascii_lowercase()
        }
    }

    /// Command names starting with `prefix` (any case unless
    /// `case_sensitive`), in the case the user is typing in.
    pub fn complete(&self, prefix: &str) -> Vec<String> {
        let (up, head) = self.case_of(prefix);
        self.commands
            .keys()
            .filter(|n| n.starts_with(&head) && !n.contains('|'))
            .map(|n| Self::cased(n, up))
            .collect()
    }

    /// What Tab offers at the end of `head`: where the replaced word
    /// starts and the candidates. The first word completes to a command
    /// name, the second to one of that command's subcommands.
    pub fn completions(&self, head: &str) -> (usize, Vec<String>) {
        let word_start = head.rfind(char::is_whitespace).map_or(0, |i| {
            i + head[i..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &head[word_start..];
        let before: Vec<&str> = head[..word_start].split_whitespace().collect();
        match before[..] {
            [] => (word_start, self.complete(word)),
            [parent] => (word_start, self.complete_sub(parent, word)),
            _ => (head.len(), Vec::new()),
        }
    }

    /// Subcommand names of `parent` starting with `prefix`, as
    /// [`Docs::complete`] does command names.
    pub fn complete_sub(&self, parent: &str, prefix: &str) -> Vec<String> {
        let parent = self.key(parent.as_bytes());
        let (up, head) = self.case_of(prefix);
        let head = format!("{parent}|{head}");
        self.commands
            .keys()
            .filter(|n| n.starts_with(&head))
            .map(|n| Self::cased(&n[parent.len() + 1..], up))
            .collect()
    }

    /// Whether to answer in capitals, and the prefix as the table has it.
    fn case_of(&self, prefix: &str) -> (bool, String) {
        if self.case_sensitive {
            return (false, prefix.to_string());
        }
        let up = prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase());
        (up, prefix.to_ascii_lowercase())
    }

    fn cased(name: &str, up: bool) -> String {
        if up {
            name.to_ascii_uppercase()
        } else {
            name.to_string()
        }
    }
}

/// The rustyline helper: completion, grey hints.
pub struct CliHelper {
    docs: Docs,
}

impl Completer for CliHelper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.docs.completions(&line[..pos]))
    }
}

impl Hinter for CliHelper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos < line.len() {
            return None;
        }
        self.docs.hint(line)
    }
}

impl Highlighter for CliHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[90m{hint}\x1b[0m"))
    }
    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        false
    }
}

impl Validator for CliHelper {}
impl Helper for CliHelper {}

/// Where history lives: `$MAGPIE_HISTFILE` or `~/.magpie_history`, with
/// `suffix` appended (`--memcache` keeps its own file, `.memcache`);
/// `MAGPIE_HISTFILE=/dev/null` turns both off.
pub fn history_path(suffix: &str) -> Option<PathBuf> {
    history_path_from(
        std::env::var_os("MAGPIE_HISTFILE"),
        std::env::var_os("HOME"),
        suffix,
    )
}

/// [`history_path`] given `$MAGPIE_HISTFILE` and `$HOME`.
pub(super) fn history_path_from(
    histfile: Option<OsString>,
    home: Option<OsString>,
    suffix: &str,
) -> Option<PathBuf> {
    let mut path = match histfile {
        Some(p) if p == "/dev/null" => return None,
        Some(p) => p,
        None => PathBuf::from(home?)
            .join(".magpie_history")
            .into_os_string(),
    };
    path.push(suffix);
    Some(PathBuf::from(path))
}

/// The interactive line editor both prompts use: completion and hints from
/// `docs`, and the history in `history` (if any) loaded.
pub struct LineEditor {
    editor: Editor<CliHelper, DefaultHistory>,
    history: Option<PathBuf>,
}

impl LineEditor {
    /// Starts the editor (it needs no terminal until [`LineEditor::readline`]).
    pub fn new(docs: Docs, history: Option<PathBuf>) -> rustyline::Result<LineEditor> {
        let config = rustyline::Config::builder().auto_add_history(false).build();
        let mut editor: Editor<CliHelper, DefaultHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(CliHelper { docs }));
        if let Some(h) = &history {
            // a missing file is a first session
            let _ = editor.load_history(h);
        }
        Ok(LineEditor { editor, history })
    }

    /// Reads a line at `prompt`.
    pub fn readline(&mut self, prompt: &str) -> rustyline::Result<String> {
        self.editor.readline(prompt)
    }

    /// Adds a non-blank line to the history and saves the file at once, so
    /// a session that dies keeps what was typed.
    pub fn remember(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let _ = self.editor.add_history_entry(line);
        if let Some(h) = &self.history {
            let _ = self.editor.save_history(h);
        }
    }

    /// The lines in the history, oldest first.
    pub fn history(&self) -> Vec<String> {
        self.editor.history().iter().cloned().collect()
    }

    /// Replaces what completion and hints know.
    pub fn set_docs(&mut self, docs: Docs) {
        if let Some(h) = self.editor.helper_mut() {
            h.docs = docs;
        }
    }
}

/// The REPL's state: the connection (none while disconnected) and where to.
struct Session<'a> {
    args: &'a CliArgs,
    host: String,
    port: u16,
    conn: Option<Conn>,
    output: Output,
}

/// Whether the loop goes on.
enum Flow {
    Continue,
    Quit,
}

impl Session<'_> {
    fn connect(&mut self) -> bool {
        let mut args = self.args.clone();
        args.host = self.host.clone();
        args.port = Some(self.port);
        match Conn::open(&args) {
            Ok(c) => {
                self.conn = Some(c);
                true
            }
            Err(msg) => {
                eprintln!("{msg}");
                self.conn = None;
                false
            }
        }
    }

    fn prompt(&self) -> String {
        match &self.conn {
            None => "not connected> ".into(),
            Some(c) if c.db != 0 => format!("{}:{}[{}]> ", self.host, self.port, c.db),
            Some(_) => format!("{}:{}> ", self.host, self.port),
        }
    }

    fn line(&mut self, line: &str) -> Flow {
        let Some(mut argv) = split_args(line) else {
            println!("Invalid argument(s)");
            return Flow::Continue;
        };
        if argv.is_empty() {
            return Flow::Continue;
        }
        let mut repeat = 1u64;
        if argv.len() > 1 && argv[0].iter().all(u8::is_ascii_digit) {
            match std::str::from_utf8(&argv[0])
                .ok()
                .and_then(|s| s.parse().ok())
            {
                Some(n) if n > 0 => {
                    repeat = n;
                    argv.remove(0);
                }
                _ => {
                    println!("Invalid argument(s)");
                    return Flow::Continue;
                }
            }
        }
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        match name.as_str() {
            "quit" | "exit" if argv.len() == 1 => return Flow::Quit,
            "clear" if argv.len() == 1 => {
                print!("\x1b[H\x1b[2J");
                let _ = io::stdout().flush();
                return Flow::Continue;
            }
            "connect" if argv.len() == 3 => {
                let port = std::str::from_utf8(&argv[2])
                    .ok()
                    .and_then(|p| p.parse().ok());
                match port {
                    Some(p) => {
                        self.host = String::from_utf8_lossy(&argv[1]).into_owned();
                        self.port = p;
                        self.connect();
                    }
                    None => println!("Invalid argument(s)"),
                }
                return Flow::Continue;
            }
            _ => {}
        }
        for _ in 0..repeat {
            if self.conn.is_none() && !self.connect() {
                return Flow::Continue;
            }
            let conn = self.conn.as_mut().expect("connected above");
            match conn.call(&argv) {
                Ok(reply) => {
                    if name == "select" && argv.len() == 2 && matches!(reply, Reply::Status(_)) {
                        if let Some(db) = std::str::from_utf8(&argv[1])
                            .ok()
                            .and_then(|d| d.parse().ok())
                        {
                            conn.db = db;
                        }
                    }
                    let mut out = io::stdout().lock();
                    let _ = out.write_all(&format::render(&reply, self.output));
                    let _ = out.flush();
                }
                Err(e) => {
                    // the connection is unusable either way; the next
                    // command reconnects
                    eprintln!("Error: {e}");
                    self.conn = None;
                    return Flow::Continue;
                }
            }
        }
        Flow::Continue
    }
}

/// Runs the REPL (interactive on a terminal, line by line otherwise);
/// returns the exit code.
pub fn run(args: &CliArgs) -> i32 {
    let mut s = Session {
        args,
        host: args.host.clone(),
        port: args.port(),
        conn: None,
        output: args.output(),
    };
    s.connect();
    if !io::stdin().is_terminal() {
        let stdin = io::stdin().lock();
        for line in stdin.split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line);
            if let Flow::Quit = s.line(&line) {
                break;
            }
        }
        return 0;
    }
    let docs = s.conn.as_mut().map(Docs::fetch).unwrap_or_default();
    let mut editor = match LineEditor::new(docs, history_path("")) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: cannot start the line editor: {e}");
            return 1;
        }
    };
    loop {
        match editor.readline(&s.prompt()) {
            Ok(line) => {
                let secret = line
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("auth"));
                if !secret {
                    editor.remember(&line);
                }
                let was_connected = s.conn.is_some();
                if let Flow::Quit = s.line(&line) {
                    break;
                }
                // a (re)connect: the new server may know other commands
                if !was_connected
                    || line
                        .trim_start()
                        .to_ascii_lowercase()
                        .starts_with("connect ")
                {
                    if let Some(conn) = s.conn.as_mut() {
                        editor.set_docs(Docs::fetch(conn));
                    }
                }
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

    fn b(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    fn kv(items: &[(&str, Reply)]) -> Reply {
        Reply::Array(items.iter().flat_map(|(k, v)| [b(k), v.clone()]).collect())
    }

    #[test]
    fn hints_from_redis_shaped_command_docs() {
        let set_args = Reply::Array(vec![
            kv(&[("name", b("key")), ("type", b("key"))]),
            kv(&[("name", b("value")), ("type", b("string"))]),
            kv(&[
                ("name", b("condition")),
                ("type", b("oneof")),
                (
                    "flags",
                    Reply::Array(vec![Reply::Status(b"optional".to_vec())]),
                ),
                (
                    "arguments",
                    Reply::Array(vec![
                        kv(&[
                            ("name", b("nx")),
                            ("type", b("pure-token")),
                            ("token", b("NX")),
                        ]),
                        kv(&[
                            ("name", b("xx")),
                            ("type", b("pure-token")),
                            ("token", b("XX")),
                        ]),
                    ]),
                ),
            ]),
            kv(&[
                ("name", b("seconds")),
                ("type", b("integer")),
                ("token", b("EX")),
                (
                    "flags",
                    Reply::Array(vec![Reply::Status(b"optional".to_vec())]),
                ),
            ]),
        ]);
        let docs = Reply::Array(vec![
            b("set"),
            kv(&[("summary", b("Sets a key")), ("arguments", set_args)]),
            b("del"),
            kv(&[(
                "arguments",
                Reply::Array(vec![kv(&[
                    ("name", b("key")),
                    ("type", b("key")),
                    (
                        "flags",
                        Reply::Array(vec![Reply::Status(b"multiple".to_vec())]),
                    ),
                ])]),
            )]),
        ]);
        let d = Docs::from_command_docs(&docs);
        assert_eq!(d.hint("set").unwrap(), " key value [NX|XX] [EX seconds]");
        assert_eq!(d.hint("SET k ").unwrap(), "value [NX|XX] [EX seconds]");
        assert_eq!(d.hint("set k"), None);
        assert_eq!(d.hint("del").unwrap(), " key [key ...]");
        assert_eq!(d.hint("nosuch"), None);
        assert_eq!(d.complete("S"), ["SET"]);
        assert_eq!(d.complete("d"), ["del"]);
        assert_eq!(d.commands["set"].0, "Sets a key");
    }

    #[test]
    fn history_files() {
        let home = Some(OsString::from("/home/u"));
        assert_eq!(
            history_path_from(None, home.clone(), ""),
            Some(PathBuf::from("/home/u/.magpie_history"))
        );
        assert_eq!(
            history_path_from(None, home.clone(), ".memcache"),
            Some(PathBuf::from("/home/u/.magpie_history.memcache"))
        );
        assert_eq!(
            history_path_from(Some("/t/h".into()), home.clone(), ""),
            Some(PathBuf::from("/t/h"))
        );
        assert_eq!(
            history_path_from(Some("/t/h".into()), home.clone(), ".memcache"),
            Some(PathBuf::from("/t/h.memcache"))
        );
        assert_eq!(
            history_path_from(Some("/dev/null".into()), home, ".memcache"),
            None
        );
        assert_eq!(history_path_from(None, None, ""), None);
    }

    #[test]
    fn completes_commands_then_subcommands() {
        let mut d = Docs::default();
        for n in [
            "client",
            "client|setname",
            "client|setinfo",
            "client|id",
            "config",
        ] {
            d.commands.insert(n.into(), Default::default());
        }
        assert_eq!(
            d.completions("c"),
            (0, vec!["client".into(), "config".into()])
        );
        assert_eq!(
            d.completions("CLIENT SET"),
            (7, vec!["SETINFO".into(), "SETNAME".into()])
        );
        assert_eq!(d.completions("client  i").1, ["id"]);
        assert_eq!(d.completions("client id ").1, Vec::<String>::new());
        assert_eq!(d.completions("config g").1, Vec::<String>::new());
    }

    #[test]
    fn names_from_plain_command() {
        let r = Reply::Array(vec![
            Reply::Array(vec![b("get"), Reply::Integer(2)]),
            Reply::Array(vec![b("GETEX"), Reply::Integer(-2)]),
        ]);
        assert_eq!(
            Docs::from_command_list(&r).complete("get"),
            ["get", "getex"]
        );
    }
}
