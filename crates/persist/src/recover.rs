//! Reading a data directory back: load the snapshot named by the MANIFEST,
//! replay the segments after it, deal with a torn tail or corruption. The
//! same walk, without touching any file, is `magpie check`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use magpie_engine::Mutation;

use crate::files::{list, segment_path, snapshot_path, sync_dir, Manifest};
use crate::record::{scan_file, End, Scan};

/// What the walk may do to the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Recovery at start: create a fresh directory's MANIFEST, truncate a
    /// torn tail, and with `repair` truncate at corruption too.
    Recover {
        /// Truncate at a corrupt record instead of refusing to start.
        repair: bool,
    },
    /// Read only: report what recovery would find.
    Check,
}

/// What a walk found (and, when recovering, did).
#[derive(Debug, Default)]
pub struct Walk {
    /// The manifest in force (None only for an empty directory in check mode).
    pub manifest: Option<Manifest>,
    /// Records in the snapshot.
    pub snapshot_records: u64,
    /// Of those, collection items (ADDITEM records; the rest are SETs).
    pub snapshot_items: u64,
    /// Bytes of the snapshot.
    pub snapshot_bytes: u64,
    /// Each live segment and how its scan ended.
    pub segments: Vec<(u64, Scan)>,
    /// Human-readable notes: torn tails truncated, repairs, damage found.
    pub notes: Vec<String>,
    /// True when corruption (not just a torn tail) was found.
    pub corrupt: bool,
}

impl Walk {
    /// Total valid records in the live segments.
    pub fn log_records(&self) -> u64 {
        self.segments.iter().map(|(_, s)| s.records).sum()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Walks the data directory `dir`, calling `apply` with every record in
/// replay order (snapshot first, then segments).
pub fn walk(
    dir: &Path,
    mode: Mode,
    mut apply: impl FnMut(Mutation<'_>) -> io::Result<()>,
) -> io::Result<Walk> {
    let listing = list(dir)?;
    let mut w = Walk::default();
    let recovering = matches!(mode, Mode::Recover { .. });
    let repair = matches!(mode, Mode::Recover { repair: true });
    let manifest = match Manifest::read(dir)? {
        Some(m) => m,
        None if listing.segments.is_empty() && listing.snapshots.is_empty() => {
            let fresh = Manifest {
                snapshot: None,
                first_segment: 1,
            };
            if recovering {
                fresh.write(dir)?;
            } else {
                w.notes.push("no MANIFEST and no data files: an empty data directory".into());
                return Ok(w);
            }
            fresh
        }
        None => {
            return Err(invalid(format!(
                "{}: data files are present but the MANIFEST is missing; refusing to guess which are live",
                dir.display()
            )))
        }
    };
    w.manifest = Some(manifest);

    if let Some(n) = manifest.snapshot {
        let path = snapshot_path(dir, n);
        let mut items = 0;
        let scan = scan_file(&path, |m| match m {
            Mutation::Set { .. } | Mutation::SetTagged { .. } => apply(m),
            Mutation::AddItem { .. } => {
                items += 1;
                apply(m)
            }
            _ => Err(invalid(format!(
                "{}: snapshot holds a record other than SET, SETTAGGED and ADDITEM",
                path.display()
            ))),
        })
        .map_err(|e| with_path(&path, e))?;
        w.snapshot_records = scan.records;
        w.snapshot_items = items;
        w.snapshot_bytes = scan.file_len;
        // a snapshot is complete and fsynced before the MANIFEST names it,
        // so any damage, even at its end, is corruption
        let damage = match &scan.end {
            End::Clean => None,
            End::Zeros { offset } => Some((*offset, "zero bytes where records belong".to_string())),
            End::Torn { offset, reason } | End::Corrupt { offset, reason } => {
                Some((*offset, reason.clone()))
            }
        };
        if let Some((offset, reason)) = damage {
            w.corrupt = true;
            let msg = format!(
                "{}: corrupt record at offset {offset} ({reason})",
                path.display()
            );
            if !repair {
                return Err(refuse(msg, mode));
            }
            truncate(&path, offset)?;
            w.notes
                .push(format!("{msg}: repaired by truncating the snapshot there"));
        }
    }

    let live: Vec<u64> = listing
        .segments
        .iter()
        .copied()
        .filter(|&n| n >= manifest.first_segment)
        .collect();
    for (i, &n) in live.iter().enumerate() {
        let path = segment_path(dir, n);
        let expected = manifest.first_segment + i as u64;
        if n != expected {
            w.corrupt = true;
            let msg = format!(
                "{}: segment missing (found {} after it)",
                segment_path(dir, expected).display(),
                path.display()
            );
            if !repair {
                return Err(refuse(msg, mode));
            }
            discard(dir, &live[i..])?;
            w.notes.push(format!(
                "{msg}: repaired by setting the later segments aside (*.discarded)"
            ));
            break;
        }
        let scan = scan_file(&path, &mut apply).map_err(|e| with_path(&path, e))?;
        let last = i + 1 == live.len();
        let end = scan.end.clone();
        w.segments.push((n, scan));
        match end {
            End::Clean => {}
            End::Zeros { offset } => {
                // preallocated, never acknowledged: nothing is lost
                let unused = w.segments.last().map_or(0, |(_, s)| s.file_len - offset);
                let msg = format!(
                    "{}: {unused} bytes of preallocated space after the last record (offset {offset})",
                    path.display()
                );
                if recovering {
                    truncate(&path, offset)?;
                    tracing::info!("{msg}: cut");
                    w.notes.push(format!("{msg}: cut"));
                } else {
                    w.notes.push(format!("{msg}: recovery will cut it"));
                }
            }
            End::Torn { offset, reason } if last => {
                let dropped = w.segments.last().map_or(0, |(_, s)| s.file_len - offset);
                let msg = format!(
                    "{}: torn tail at offset {offset} ({reason}), {dropped} bytes",
                    path.display()
                );
                if recovering {
                    truncate(&path, offset)?;
                    tracing::warn!("{msg}: truncated (a write cut short by a crash)");
                    w.notes.push(format!("{msg}: truncated"));
                } else {
                    w.notes.push(format!("{msg}: recovery will truncate it"));
                }
            }
            End::Torn { offset, reason } | End::Corrupt { offset, reason } => {
                w.corrupt = true;
                let msg = format!(
                    "{}: corrupt record at offset {offset} ({reason})",
                    path.display()
                );
                if !repair {
                    return Err(refuse(msg, mode));
                }
                truncate(&path, offset)?;
                discard(dir, &live[i + 1..])?;
                tracing::warn!("{msg}: repaired by truncating there");
                w.notes.push(format!("{msg}: repaired by truncating there"));
                break;
            }
        }
    }

    if recovering {
        // files the MANIFEST does not name are leftovers of an interrupted
        // or completed compaction
        for t in &listing.temps {
            let _ = fs::remove_file(t);
        }
        for &s in &listing.snapshots {
            if Some(s) != manifest.snapshot {
                let _ = fs::remove_file(snapshot_path(dir, s));
            }
        }
        for &s in &listing.segments {
            if s < manifest.first_segment {
                let _ = fs::remove_file(segment_path(dir, s));
            }
        }
        sync_dir(dir)?;
    }
    Ok(w)
}

fn refuse(msg: String, mode: Mode) -> io::Error {
    match mode {
        Mode::Check => invalid(msg),
        Mode::Recover { .. } => invalid(format!(
            "{msg}; refusing to start. Run `magpie check` for details, or start with --repair to truncate the log at the corruption (the records after it are lost)"
        )),
    }
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::InvalidData {
        return e;
    }
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let f = fs::OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

fn discard(dir: &Path, segments: &[u64]) -> io::Result<()> {
    for &n in segments {
        let from = segment_path(dir, n);
        let mut to = PathBuf::from(&from);
        to.set_extension(format!("{n:06}.discarded"));
        fs::rename(&from, &to)?;
        tracing::warn!("set aside {} as {}", from.display(), to.display());
    }
    sync_dir(dir)
}
