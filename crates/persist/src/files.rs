//! The data directory: file names, the MANIFEST, the lock, and the file
//! abstraction the log writer goes through (so tests can make disks fail).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Name of the manifest file.
pub const MANIFEST: &str = "MANIFEST";
/// Name of the lock file.
pub const LOCK: &str = "LOCK";

/// Path of log segment `n`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("log.{n:06}"))
}

/// Path of snapshot `n`.
pub fn snapshot_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("snap.{n:06}"))
}

/// Numbers of the log segments and snapshots present, each sorted, plus
/// leftover temporary files.
#[derive(Debug, Default)]
pub struct Listing {
    /// `log.N` numbers.
    pub segments: Vec<u64>,
    /// `snap.N` numbers.
    pub snapshots: Vec<u64>,
    /// `*.tmp` files (unfinished snapshots or manifests).
    pub temps: Vec<PathBuf>,
}

/// Lists the data files of `dir`.
pub fn list(dir: &Path) -> io::Result<Listing> {
    let mut l = Listing::default();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            l.temps.push(e.path());
        } else if let Some(n) = name.strip_prefix("log.").and_then(|n| n.parse().ok()) {
            l.segments.push(n);
        } else if let Some(n) = name.strip_prefix("snap.").and_then(|n| n.parse().ok()) {
            l.snapshots.push(n);
        }
    }
    l.segments.sort_unstable();
    l.snapshots.sort_unstable();
    Ok(l)
}

/// Flushes a directory's entries (new, renamed, removed files) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Which files are live: the snapshot to load first (if any) and the
/// first segment to replay after it. Replaced atomically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Snapshot number, if a compaction ever completed.
    pub snapshot: Option<u64>,
    /// First live segment; every `log.N` with N >= this is replayed in order.
    pub first_segment: u64,
}

impl Manifest {
    fn body(&self) -> String {
        let snap = self.snapshot.map_or("none".to_string(), |n| n.to_string());
        format!(
            "magpie-manifest 1\nsnapshot {snap}\nsegment {}\n",
            self.first_segment
        )
    }

    /// Reads the manifest of `dir`; None when there is none.
    pub fn read(dir: &Path) -> io::Result<Option<Manifest>> {
        let path = dir.join(MANIFEST);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Self::parse(&text).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is damaged or not a magpie manifest", path.display()),
            )
        })
    }

    fn parse(text: &str) -> Option<Manifest> {
        let (body, crc_line) = text.rsplit_once("crc ")?;
        let crc = u32::from_str_radix(crc_line.trim_end(), 16).ok()?;
        if crc32c::crc32c(body.as_bytes()) != crc {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != "magpie-manifest 1" {
            return None;
        }
        let snapshot = match lines.next()?.strip_prefix("snapshot ")? {
            "none" => None,
            n => Some(n.parse().ok()?),
        };
        let first_segment = lines.next()?.strip_prefix("segment ")?.parse().ok()?;
        Some(Manifest {
            snapshot,
            first_segment,
        })
    }

    /// Replaces the manifest of `dir` atomically: write a temporary file,
    /// fsync it, rename it over the old one, fsync the directory.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let body = self.body();
        let text = format!("{body}crc {:08x}\n", crc32c::crc32c(body.as_bytes()));
        let tmp = dir.join("MANIFEST.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(MANIFEST))?;
        sync_dir(dir)
    }
}

/// An exclusive `flock` on `dir/LOCK`, held as long as this value lives, so
/// two servers can never write one directory.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock or fails at once if another process holds it.
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "data directory {} is in use by another magpie process ({e})",
                    dir.display()
                ),
            ));
        }
        Ok(DirLock { _file: file })
    }

    /// True when some process holds the lock of `dir` (used by `magpie check`
    /// to warn that the tail may be moving).
    pub fn is_held(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join(LOCK)) else {
            return false;
        };
        // SAFETY: as above; a shared lock taken and dropped with the file.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
    }
}

/// One open log segment as the writer sees it. A trait so tests can inject
/// failing writes and fsyncs.
///
/// Writes are positional: under `appendfsync always` the writer keeps a
/// zero-filled region ahead of the last record ([`zero_fill`](Self::zero_fill))
/// and writes records into it, so the file's length does not change on a
/// commit and the commit's fdatasync has no inode to write (measured here:
/// 122-137 us per 1.6 KB commit against 170-211 us for an append). Every
/// call takes `&self`, so the log thread can fsync a segment while
/// connections go on writing it.
pub trait SegmentFile: Send + Sync {
    /// Writes all of `buf` at byte `offset`.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Cuts (or extends) the file to `len` bytes.
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// Writes `len` zero bytes at `offset` and makes them durable: space
    /// that later records overwrite without growing the file.
    fn zero_fill(&self, offset: u64, len: u64) -> io::Result<()> {
        const CHUNK: usize = 64 << 10;
        let zeros = [0u8; CHUNK];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(CHUNK as u64) as usize;
            self.write_at(offset + at, &zeros[..n])?;
            at += n as u64;
        }
        self.sync()
    }
}

/// Opens segment files; the seam for fault injection.
pub trait Fs: Send + Sync {
    /// Opens (creating if needed) the segment at `path` for writing.
    fn open_segment(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>>;
}

/// The real file system.
#[derive(Debug, Default)]
pub struct RealFs;

struct RealSegment(File);

impl RealSegment {
    fn open(path: &Path) -> io::Result<RealSegment> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        Ok(RealSegment(f))
    }
}

impl SegmentFile for RealSegment {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Fs for RealFs {
    fn open_segment(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        Ok(Box::new(RealSegment::open(path)?))
    }
}

/// A file system whose segment writes and fsyncs fail (ENOSPC, or EIO on
/// fsyncs only) while a switch is on, or whose fsyncs are slow: lets tests
/// (and the server's tests) exercise the refuse-writes-then-resume path
/// without filling a disk.
#[derive(Debug, Default, Clone)]
pub struct FaultyFs {
    /// While true, every write and sync fails.
    pub fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// While true, only syncs fail (EIO): writes reach the page cache but
    /// cannot be made durable.
    pub fail_sync: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// While true, preallocation fails halfway (ENOSPC after writing half
    /// of the zeros) while record writes still succeed.
    pub fail_zero_fill: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Milliseconds every sync sleeps before it starts: a slow disk.
    pub sync_delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Syncs started so far.
    pub syncs: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

struct FaultySegment {
    inner: RealSegment,
    faults: FaultyFs,
}

impl FaultySegment {
    fn check(&self) -> io::Result<()> {
        if self.faults.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }
}

impl SegmentFile for FaultySegment {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.check()?;
        self.inner.write_at(offset, buf)
    }
    fn sync(&self) -> io::Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        self.faults.syncs.fetch_add(1, SeqCst);
        let delay = self.faults.sync_delay_ms.load(SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        self.check()?;
        if self.faults.fail_sync.load(SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.inner.sync()
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
    fn zero_fill(&self, offset: u64, len: u64) -> io::Result<()> {
        self.check()?;
        if self
            .faults
            .fail_zero_fill
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            self.inner.write_at(offset, &vec![0; (len / 2) as usize])?;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.inner.zero_fill(offset, len)
    }
}

impl Fs for FaultyFs {
    fn open_segment(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        Ok(Box::new(FaultySegment {
            inner: RealSegment::open(path)?,
            faults: self.clone(),
        }))
    }
}

/// An OS error's text without Rust's " (os error N)" suffix: what Redis
/// prints via strerror in MISCONF replies.
pub fn error_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(at) if s.ends_with(')') => s[..at].to_string(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), None);
        for m in [
            Manifest {
                snapshot: None,
                first_segment: 1,
            },
            Manifest {
                snapshot: Some(7),
                first_segment: 7,
            },
        ] {
            m.write(dir.path()).unwrap();
            assert_eq!(Manifest::read(dir.path()).unwrap(), Some(m));
        }
        let path = dir.path().join(MANIFEST);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("segment 7", "segment 8");
        fs::write(&path, text).unwrap();
        assert!(Manifest::read(dir.path()).is_err());
        assert!(!dir.path().join("MANIFEST.tmp").exists());
    }

    #[test]
    fn lock_is_exclusive_between_opens() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file description: a second open in
        // this process conflicts just like another process would
        let e = DirLock::acquire(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("in use by another magpie process"),
            "{e}"
        );
        assert!(DirLock::is_held(dir.path()));
        drop(held);
        assert!(!DirLock::is_held(dir.path()));
        DirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn error_text_matches_strerror() {
        assert_eq!(
            error_text(&io::Error::from_raw_os_error(libc::ENOSPC)),
            "No space left on device"
        );
    }

    #[test]
    fn listing_sorts_numbers_and_finds_temps() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "log.000010",
            "log.000002",
            "snap.000002",
            "snap.000003.tmp",
            "LOCK",
            "other",
        ] {
            fs::write(dir.path().join(n), b"").unwrap();
        }
        let l = list(dir.path()).unwrap();
        assert_eq!(l.segments, vec![2, 10]);
        assert_eq!(l.snapshots, vec![2]);
        assert_eq!(l.temps.len(), 1);
    }
}
