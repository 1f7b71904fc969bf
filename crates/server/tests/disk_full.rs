//! A real full disk, not an injected error: the data directory lives on a
//! 4 MiB tmpfs that the test mounts (it prints a loud SKIPPED line where
//! mounting is not allowed). A start on a disk with no space fails and says
//! why. The server fills it with SETs until writes are refused; reads go
//! on; a SIGKILL then and a restart on the still-full disk keep every
//! acknowledged value; once space is freed, writes resume by themselves.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{encode, magpie, Server};

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[derive(Debug, PartialEq)]
enum Reply {
    Line(String),
    Bulk(Option<Vec<u8>>),
    /// The server closed the connection without a reply.
    Closed,
}

fn call(port: u16, args: &[&[u8]]) -> Reply {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    r.get_mut().write_all(&encode(args)).unwrap();
    let mut line = Vec::new();
    match r.read_until(b'\n', &mut line) {
        Ok(0) => return Reply::Closed,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Reply::Closed,
        Err(e) => panic!("no reply to {:?}: {e}", String::from_utf8_lossy(args[0])),
        Ok(_) => {}
    }
    let line = String::from_utf8(line).unwrap().trim_end().to_string();
    let Some(len) = line.strip_prefix('$') else {
        return Reply::Line(line);
    };
    let len: i64 = len.parse().unwrap();
    if len < 0 {
        return Reply::Bulk(None);
    }
    let mut body = vec![0; len as usize + 2];
    r.read_exact(&mut body).unwrap();
    body.truncate(len as usize);
    Reply::Bulk(Some(body))
}

fn value(i: usize) -> Vec<u8> {
    format!("value {i} ").into_bytes().repeat(20_000)
}

fn start(dir: &Path, fsync: &str) -> Server {
    magpie(&["--dir", dir.to_str().unwrap(), "--appendfsync", fsync])
}

/// Starts magpie expecting it to exit; returns its exit code and stderr.
fn failed_start(dir: &Path, fsync: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args([
            "serve",
            "--port",
            "0",
            "--memcache-port",
            "0",
            "--http-port",
            "0",
        ])
        .args(["--dir", dir.to_str().unwrap(), "--appendfsync", fsync])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{fsync}: magpie started on a disk with no space");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (status.code().unwrap_or(-1), log)
}

/// Every acknowledged key has its value.
fn check(server: &Server, acked: &[usize], fsync: &str) {
    for &i in acked {
        let got = call(server.port, &[b"GET", format!("big{i}").as_bytes()]);
        assert!(
            got == Reply::Bulk(Some(value(i))),
            "{fsync}: acknowledged big{i} is lost or wrong"
        );
    }
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_every_acknowledged_write() {
    for fsync in ["everysec", "always"] {
        let Some(fs) = Tmpfs::mount("4m") else {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return;
        };
        let dir = fs.path().join("data");
        // a fresh data directory on a disk with no space at all: the start
        // fails and says why
        let everything = fs.path().join("everything");
        let mut f = std::fs::File::create(&everything).unwrap();
        while f.write_all(&[0u8; 64 << 10]).is_ok() {}
        drop(f);
        let (code, log) = failed_start(&dir, fsync);
        assert_eq!(code, 1, "{fsync}: {log}");
        assert!(
            log.contains(&format!(
                "cannot open the data directory {}: No space left on device",
                dir.display()
            )),
            "{fsync}: {log}"
        );
        std::fs::remove_file(&everything).unwrap();

        let filler: PathBuf = fs.path().join("filler");
        std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
        let mut server = start(&dir, fsync);

        // fill the disk: about 200 kB per SET
        let mut acked = Vec::new();
        let mut closed = 0;
        let mut refused = None;
        for i in 0..40 {
            match call(
                server.port,
                &[b"SET", format!("big{i}").as_bytes(), &value(i)],
            ) {
                Reply::Line(l) if l == "+OK" => acked.push(i),
                Reply::Line(l) if l.starts_with("-MISCONF") => {
                    refused = Some(l);
                    break;
                }
                // caught by the failure: neither acknowledged nor refused
                Reply::Closed => closed += 1,
                other => panic!("{fsync}: SET big{i}: {other:?}"),
            }
        }
        let refused = refused.unwrap_or_else(|| panic!("{fsync}: the disk never filled up"));
        eprintln!(
            "{fsync}: {} SETs acknowledged, {closed} closed unanswered, then {refused}",
            acked.len()
        );
        assert_eq!(
            refused,
            "-MISCONF Errors writing to the AOF file: No space left on device"
        );
        assert!(closed <= 1, "{fsync}: {closed} connections closed");
        assert!(acked.len() >= 5, "{fsync}: only {} SETs fit", acked.len());
        // reads go on
        check(&server, &acked, fsync);

        // SIGKILL while the disk is full, restart on it
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let mut server = start(&dir, fsync);
        check(&server, &acked, fsync);

        // free space: writes resume by themselves, within a few retries
        std::fs::remove_file(&filler).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let n = 100;
        loop {
            match call(
                server.port,
                &[b"SET", format!("big{n}").as_bytes(), &value(n)],
            ) {
                Reply::Line(l) if l == "+OK" => break,
                Reply::Line(l) if l.starts_with("-MISCONF") => {}
                Reply::Closed => {}
                other => panic!("{fsync}: SET after freeing space: {other:?}"),
            }
            assert!(
                Instant::now() < deadline,
                "{fsync}: writes did not resume after space was freed"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        acked.push(n);
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let server = start(&dir, fsync);
        check(&server, &acked, fsync);
        drop(server);
    }
}
