//! redis-cli in interactive mode, on a pseudo-terminal, against magpie and
//! against a real redis-server: the same keystrokes must print the same
//! replies (`OK`, `"1"`, `(integer) 2`, errors) and the same gray hints that
//! redis-cli builds from COMMAND DOCS while a command is being typed.

mod common;

use std::process::Command;

use common::*;
use rexpect::session::PtySession;

/// linenoise draws a hint as `ESC[0;90;49m` + hint + `ESC[0m`.
const HINT_START: &str = "\x1b[0;90;49m";
const HINT_END: &str = "\x1b[0m";

fn have_redis_cli() -> bool {
    let found = Command::new("redis-cli").arg("--version").output().is_ok();
    if !found {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "redis-cli is not installed but CI=true: .ci/run must install it"
        );
        eprintln!(
            "\n*** SKIPPED interactive redis-cli test: redis-cli is not installed \
             (apt-get install redis-tools) ***\n"
        );
    }
    found
}

/// An interactive redis-cli on `port`, at its first prompt.
struct Cli {
    pty: PtySession,
    prompt: String,
}

impl Cli {
    fn start(port: u16, history: &std::path::Path) -> Cli {
        // a new pty has no size, and linenoise would then ask the terminal
        // for its cursor position; give it one before redis-cli starts
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("stty cols 200 rows 50 && exec redis-cli -p {port}"))
            .env("TERM", "xterm")
            .env("REDISCLI_HISTFILE", history)
            .env_remove("REDISCLI_AUTH");
        let mut pty = rexpect::session::spawn_command(cmd, Some(10_000)).expect("spawn redis-cli");
        let prompt = format!("127.0.0.1:{port}> ");
        pty.exp_string(&prompt).expect("first prompt");
        Cli { pty, prompt }
    }

    /// Types `line` and Enter; returns what redis-cli printed before the
    /// next prompt, with terminal escapes and CRs removed.
    fn line(&mut self, line: &str) -> String {
        // Enter is CR in raw mode
        self.pty.send(&format!("{line}\r")).unwrap();
        self.pty.flush().unwrap();
        // linenoise redraws the line on every keystroke, and prints a
        // newline once Enter is read; the reply follows
        self.pty.exp_string("\n").expect("end of the typed line");
        let out = self.pty.exp_string(&self.prompt).expect("next prompt");
        plain(&out)
    }

    /// Types `partial` without Enter and returns the hint shown once all
    /// of it is typed ("" when none is).
    fn hint(&mut self, partial: &str) -> String {
        self.pty.send(partial).unwrap();
        self.pty.flush().unwrap();
        // linenoise redraws prompt, line and hint after every key; the last
        // redraw is the one with the whole partial line, and its hint ends
        // where the cursor is moved back with a CR
        let redraw = format!("{}{partial}", self.prompt);
        self.pty.exp_string(&redraw).expect("line redrawn");
        let drawn = self.pty.exp_string("\r").expect("end of the redraw");
        match drawn.split_once(HINT_START) {
            Some((_, rest)) => rest.split(HINT_END).next().unwrap().to_string(),
            None => String::new(),
        }
    }

    /// Erases the line being typed (Ctrl-U).
    fn clear_line(&mut self) {
        self.pty.send_control('u').unwrap();
        self.pty.flush().unwrap();
    }
}

/// `s` without ANSI escape sequences and carriage returns.
fn plain(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ params... final byte in @..~
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for f in chars.by_ref() {
                        if ('@'..='~').contains(&f) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// What one interactive session printed: each command's reply, and the
/// hints shown for partly typed commands.
fn session(port: u16) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cli = Cli::start(port, &dir.path().join("history"));
    let mut replies = Vec::new();
    for line in [
        "SET a 1",
        "GET a",
        "INCR a",
        "get nosuch",
        "INCR nosuch:number",
        "MGET a nosuch",
        "DEL a nosuch",
        "GET",
        "NOSUCHCMD x",
        "SET a \"two words\"",
        "GET a",
        "HELLO 3 SETNAME pty",
        "GET nosuch",
        "CONFIG GET databases",
        "INCRBYFLOAT f 1.5",
    ] {
        let reply = cli.line(line);
        // the connection id is the server's own
        let reply = match reply.find("\"id\" => (integer) ") {
            Some(at) => {
                let end = at + reply[at..].find('\n').unwrap();
                format!("{}\"id\" => ID{}", &reply[..at], &reply[end..])
            }
            None => reply,
        };
        replies.push(reply);
    }
    let mut hints = Vec::new();
    for partial in ["SET ", "GETEX k", "incrby", "EXPIRE k 10 "] {
        hints.push(cli.hint(partial));
        cli.clear_line();
    }
    // a command typed after a cleared hint still runs normally
    replies.push(cli.line("PING"));
    (replies, hints)
}

#[test]
fn interactive_redis_cli_prints_like_against_redis() {
    if !have_redis_cli() {
        return;
    }
    let ours = magpie(&[]);
    let (replies, hints) = session(ours.port);
    assert_eq!(replies[0], "OK\n");
    assert_eq!(replies[1], "\"1\"\n");
    assert_eq!(replies[2], "(integer) 2\n");
    assert_eq!(replies[3], "(nil)\n");
    assert_eq!(replies.last().unwrap(), "PONG\n");
    assert!(hints[0].starts_with("key value"), "SET hint {hints:?}");
    let Some(redis) = redis() else { return };
    let (want_replies, want_hints) = session(redis.port);
    assert_eq!(replies, want_replies);
    assert_eq!(hints, want_hints);
}
