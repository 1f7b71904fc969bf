//! `magpie cli`: a redis-cli work-alike (and a memcached text-protocol
//! prompt with `--memcache`).
//!
//! It prints replies the way redis-cli 7.0 does so that people and scripts
//! used to redis-cli read magpie the same way: the human form on a terminal,
//! the raw form with `--raw` or when stdout is a pipe. Modes: one-shot
//! (`magpie cli SET k v`), interactive (rustyline, history, completion and
//! hints from `COMMAND DOCS`), line-by-line from a non-terminal stdin, and
//! `--pipe` mass insertion. The client is a small blocking one of its own
//! ([`resp`]) so it has no runtime to start and reads RESP2 and RESP3.

pub mod format;
pub mod memcache;
pub mod pipe;
pub mod repl;
pub mod repr;
pub mod resp;
pub mod split;

use std::ffi::OsString;
use std::io::{self, BufReader, IsTerminal, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use clap::{ArgAction, Args};

use format::Output;
use resp::{Reply, ReplyError};

/// `magpie cli` flags, named as redis-cli names them.
#[derive(Args, Clone, Debug)]
pub struct CliArgs {
    /// Server hostname.
    #[arg(short = 'h', default_value = "127.0.0.1")]
    pub host: String,

    /// Server port (default 6379, or 11211 with --memcache).
    #[arg(short = 'p')]
    pub port: Option<u16>,

    /// Password to use when connecting (sends AUTH).
    #[arg(short = 'a', long = "pass")]
    pub password: Option<String>,

    /// Username for AUTH together with -a.
    #[arg(long = "user")]
    pub user: Option<String>,

    /// Don't warn that a password on the command line may not be safe.
    #[arg(long)]
    pub no_auth_warning: bool,

    /// Database number (sends SELECT).
    #[arg(short = 'n')]
    pub db: Option<i64>,

    /// Speak RESP3 (sends HELLO 3).
    #[arg(short = '3')]
    pub resp3: bool,

    /// Print raw replies, even on a terminal.
    #[arg(long)]
    pub raw: bool,

    /// Print the human form even when stdout is not a terminal.
    #[arg(long, conflicts_with = "raw")]
    pub no_raw: bool,

    /// Mass insertion: send stdin (RESP or inline commands) as it is, then
    /// report how many replies and errors came back.
    #[arg(long)]
    pub pipe: bool,

    /// With --pipe, give up when no reply arrives for this many seconds
    /// after stdin ends (0 waits forever).
    #[arg(long, default_value_t = 30)]
    pub pipe_timeout: u64,

    /// Speak the memcached text protocol instead of RESP.
    #[arg(long)]
    pub memcache: bool,

    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// A command to run once (interactive when omitted).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

impl CliArgs {
    /// The port to use: -p, or the protocol's usual one.
    pub fn port(&self) -> u16 {
        self.port
            .unwrap_or(if self.memcache { 11211 } else { 6379 })
    }

    /// Raw output when asked or when stdout is not a terminal.
    pub fn output(&self) -> Output {
        if self.raw || (!self.no_raw && !io::stdout().is_terminal()) {
            Output::Raw
        } else {
            Output::Human
        }
    }

    fn command_bytes(&self) -> Vec<Vec<u8>> {
        self.command.iter().map(|a| a.as_bytes().to_vec()).collect()
    }
}

/// Runs `magpie cli`; returns the process exit code.
pub fn run(args: CliArgs) -> i32 {
    if args.memcache {
        return memcache::run(&args);
    }
    if args.password.is_some() && !args.no_auth_warning {
        eprintln!(
            "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe."
        );
    }
    if args.pipe {
        return pipe::run(&args);
    }
    if !args.command.is_empty() {
        return one_shot(&args);
    }
    repl::run(&args)
}

fn one_shot(args: &CliArgs) -> i32 {
    let mut conn = match Conn::open(args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return 1;
        }
    };
    let output = args.output();
    match conn.call(&args.command_bytes()) {
        Ok(reply) => {
            let mut out = io::stdout().lock();
            let _ = out.write_all(&format::render(&reply, output));
            let _ = out.flush();
            0
        }
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

/// Text of a connect error the way redis-cli words it (strerror or the
/// resolver's message, without Rust's "(os error N)").
pub fn connect_error_text(e: &io::Error) -> String {
    let s = e.to_string();
    let s = s
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&s);
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Opens a TCP connection with the redis-cli error message on failure.
pub fn dial(host: &str, port: u16) -> Result<TcpStream, String> {
    let fail = |e: &io::Error| {
        format!(
            "Could not connect to magpie at {host}:{port}: {}",
            connect_error_text(e)
        )
    };
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| fail(&e))?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "Name or service not known");
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(fail(&last))
}

/// One RESP connection with the session set up as the flags ask.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// The database selected, for the prompt.
    pub db: i64,
}

impl Conn {
    /// Connects and runs AUTH, HELLO 3 and SELECT as asked. Their failures
    /// are reported on stderr and the connection is kept, as redis-cli does;
    /// only a failed connect is an error.
    pub fn open(args: &CliArgs) -> Result<Conn, String> {
        let stream = dial(&args.host, args.port())?;
        let writer = stream
            .try_clone()
            .map_err(|e| format!("Could not connect to magpie: {e}"))?;
        let mut conn = Conn {
            reader: BufReader::new(stream),
            writer,
            db: 0,
        };
        if let Some(pass) = &args.password {
            let mut cmd = vec![b"AUTH".to_vec()];
            if let Some(user) = &args.user {
                cmd.push(user.as_bytes().to_vec());
            }
            cmd.push(pass.as_bytes().to_vec());
            conn.setup(&cmd, "AUTH failed")?;
        }
        if args.resp3 {
            conn.setup(&[b"HELLO".to_vec(), b"3".to_vec()], "HELLO 3 failed")?;
        }
        if let Some(db) = args.db.filter(|&d| d != 0) {
            let ok = conn.setup(
                &[b"SELECT".to_vec(), db.to_string().into_bytes()],
                &format!("SELECT {db} failed"),
            )?;
            if ok {
                conn.db = db;
            }
        }
        Ok(conn)
    }

    /// Runs a setup command; an error reply is printed as `what: error`.
    fn setup(&mut self, cmd: &[Vec<u8>], what: &str) -> Result<bool, String> {
        match self.call(cmd) {
            Ok(Reply::Error(e)) => {
                eprintln!("{what}: {}", String::from_utf8_lossy(&e));
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(e) => Err(format!("{what}: {e}")),
        }
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[impl AsRef<[u8]>]) -> Result<Reply, ReplyError> {
        resp::send_command(&mut self.writer, args)?;
        self.read()
    }

    /// Reads the next reply.
    pub fn read(&mut self) -> Result<Reply, ReplyError> {
        resp::read_reply(&mut self.reader)
    }

    /// The socket, once setup is done (nothing is left buffered: the server
    /// sends nothing unasked).
    pub fn into_stream(self) -> TcpStream {
        self.writer
    }
}
