//! `magpie cli --pipe`: redis-cli's mass insertion. Stdin (RESP or inline
//! commands) goes to the server as it is while a second thread reads the
//! replies; after stdin ends an `ECHO` of 20 random bytes marks the last
//! reply. Errors are printed on stderr and counted; the summary line is
//! redis-cli's `errors: N, replies: M`, and the exit code is 1 if any
//! reply was an error.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::resp::{self, Reply, ReplyError};
use super::{CliArgs, Conn};

/// 20 bytes that will not appear as an ordinary reply.
fn magic() -> Vec<u8> {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15)
        ^ (u64::from(std::process::id()) << 32);
    (0..20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEF"[(x % 42) as usize]
        })
        .collect()
}

/// Runs the pipe; returns the exit code.
pub fn run(args: &CliArgs) -> i32 {
    // AUTH and SELECT happen first and are not counted, as in redis-cli
    let stream = match Conn::open(args) {
        Ok(c) => c.into_stream(),
        Err(msg) => {
            eprintln!("{msg}");
            return 1;
        }
    };
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let magic = magic();
    let eof = Arc::new(AtomicBool::new(false));
    let eof_w = eof.clone();
    let magic_w = magic.clone();
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        let mut last = b'\n';
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            writer.write_all(&buf[..n])?;
            last = buf[n - 1];
        }
        if last != b'\n' {
            // an unterminated last inline command must not swallow our ECHO
            writer.write_all(b"\r\n")?;
        }
        let mut tail = Vec::new();
        resp::encode_command(&mut tail, &[&b"ECHO"[..], &magic_w]);
        // both before the ECHO leaves: its reply, and the reader's "Last
        // reply received" line, may come before write_all returns
        eof_w.store(true, Ordering::Release);
        println!("All data transferred. Waiting for the last reply...");
        writer.write_all(&tail)?;
        Ok(())
    });

    let timeout = (args.pipe_timeout > 0).then(|| Duration::from_secs(args.pipe_timeout));
    let mut stream = stream;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let (mut errors, mut replies) = (0u64, 0u64);
    let mut idle = Duration::ZERO;
    // replies are parsed out of this buffer so that a read timeout never
    // falls in the middle of one
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    'outer: loop {
        let mut start = 0;
        loop {
            let mut cur = &buf[start..];
            match resp::read_reply(&mut cur) {
                Ok(reply) => {
                    start = buf.len() - cur.len();
                    match &reply {
                        Reply::Error(e) => {
                            eprintln!("{}", String::from_utf8_lossy(e));
                            errors += 1;
                            replies += 1;
                        }
                        Reply::Bulk(b) if eof.load(Ordering::Acquire) && *b == magic => {
                            println!("Last reply received from server.");
                            break 'outer;
                        }
                        _ => replies += 1,
                    }
                }
                Err(ReplyError::Io(_)) => break, // incomplete: read more
                Err(e) => {
                    eprintln!("Error reading from the server: {e}");
                    errors += 1;
                    break 'outer;
                }
            }
        }
        buf.drain(..start);
        match stream.read(&mut chunk) {
            Ok(0) => {
                eprintln!("Error reading from the server: Server closed the connection");
                errors += 1;
                break;
            }
            Ok(n) => {
                idle = Duration::ZERO;
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if eof.load(Ordering::Acquire) {
                    idle += Duration::from_millis(500);
                    if timeout.is_some_and(|t| idle >= t) {
                        eprintln!("No replies for {} seconds: exiting.", args.pipe_timeout);
                        errors += 1;
                        break;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("Error reading from the server: {e}");
                errors += 1;
                break;
            }
        }
    }
    if let Ok(Err(e)) = sender.join() {
        eprintln!("Error writing to the server: {e}");
        errors += 1;
    }
    println!("errors: {errors}, replies: {replies}");
    i32::from(errors > 0)
}
