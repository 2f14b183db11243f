//! A fault as a list of file operations, checked before any of them runs, and the
//! byte regions they damage.

use crate::layout::ScannedMessage;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One file operation.
pub(super) enum Op {
    SetLen {
        path: PathBuf,
        len: u64,
    },
    WriteAt {
        path: PathBuf,
        at: u64,
        bytes: Vec<u8>,
    },
    /// Inverts one byte (XOR 0xFF).
    FlipByte {
        path: PathBuf,
        at: u64,
    },
    /// Creates an empty file; fails if it exists.
    Create(PathBuf),
    Remove(PathBuf),
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
}

/// Message bytes a fault alters, removes or moves.
pub(super) enum Damage {
    /// Bytes `from..to` of a file altered or removed.
    Bytes { path: PathBuf, from: u64, to: u64 },
    /// A whole file deleted or renamed.
    File(PathBuf),
}

impl Damage {
    pub(super) fn bytes(path: &Path, from: u64, to: u64) -> Self {
        Damage::Bytes {
            path: path.to_path_buf(),
            from,
            to,
        }
    }

    /// Whether the message lies (even partly) in the damaged region.
    pub(super) fn hits(&self, message: &ScannedMessage) -> bool {
        match self {
            Damage::Bytes { path, from, to } => {
                *path == message.log_path && message.start < *to && message.end > *from
            }
            Damage::File(path) => *path == message.log_path,
        }
    }
}

/// What a fault will do: the report's main location and text, the operations in order
/// and the damage they cause.
pub(super) struct Plan {
    pub(super) path: PathBuf,
    pub(super) offset: u64,
    pub(super) description: String,
    pub(super) ops: Vec<Op>,
    pub(super) damage: Vec<Damage>,
}

impl Plan {
    pub(super) fn new(path: &Path, offset: u64, description: String) -> Self {
        Self {
            path: path.to_path_buf(),
            offset,
            description,
            ops: Vec::new(),
            damage: Vec::new(),
        }
    }

    pub(super) fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    pub(super) fn damage(mut self, damage: Damage) -> Self {
        self.damage.push(damage);
        self
    }

    /// Both plans, this one first; the main location stays this one's.
    pub(super) fn and(mut self, other: Plan) -> Self {
        self.description = format!("{}; {}", self.description, other.description);
        self.ops.extend(other.ops);
        self.damage.extend(other.damage);
        self
    }

    /// Runs the operations in order; returns every path they touched, in order.
    pub(super) fn execute(&self) -> Result<Vec<PathBuf>, String> {
        let mut touched: Vec<PathBuf> = Vec::new();
        for op in &self.ops {
            run(op)?;
            let paths = match op {
                Op::SetLen { path, .. } | Op::WriteAt { path, .. } | Op::FlipByte { path, .. } => {
                    vec![path]
                }
                Op::Create(path) | Op::Remove(path) => vec![path],
                Op::Rename { from, to } => vec![from, to],
            };
            for path in paths {
                if !touched.contains(path) {
                    touched.push(path.clone());
                }
            }
        }
        Ok(touched)
    }
}

fn run(op: &Op) -> Result<(), String> {
    let result = match op {
        Op::SetLen { path, len } => open_rw(path).and_then(|f| f.set_len(*len)),
        Op::WriteAt { path, at, bytes } => open_rw(path).and_then(|mut f| {
            f.seek(SeekFrom::Start(*at))?;
            f.write_all(bytes)
        }),
        Op::FlipByte { path, at } => open_rw(path).and_then(|mut f| {
            let mut byte = [0];
            f.seek(SeekFrom::Start(*at))?;
            f.read_exact(&mut byte)?;
            f.seek(SeekFrom::Start(*at))?;
            f.write_all(&[byte[0] ^ 0xff])
        }),
        Op::Create(path) => OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(drop),
        Op::Remove(path) => fs::remove_file(path),
        Op::Rename { from, to } => fs::rename(from, to),
    };
    result.map_err(|e| format!("{}: {e}", describe(op)))
}

fn open_rw(path: &Path) -> std::io::Result<fs::File> {
    OpenOptions::new().read(true).write(true).open(path)
}

fn describe(op: &Op) -> String {
    match op {
        Op::SetLen { path, len } => format!("truncate {} to {len}", path.display()),
        Op::WriteAt { path, at, .. } => format!("write {} at {at}", path.display()),
        Op::FlipByte { path, at } => format!("flip byte {at} of {}", path.display()),
        Op::Create(path) => format!("create {}", path.display()),
        Op::Remove(path) => format!("delete {}", path.display()),
        Op::Rename { from, to } => format!("rename {} to {}", from.display(), to.display()),
    }
}
