//! The one way in to files: every read and write of the data and state directories
//! goes through here, and nothing here follows a symbolic link.
//!
//! A path is opened with `openat2(RESOLVE_NO_SYMLINKS)` where the kernel has it
//! (Linux 5.6), else by walking it one component at a time with
//! `openat(O_NOFOLLOW)` from `/`: a symbolic link anywhere in it is refused, whatever
//! it points to. So callers must pass paths whose directories are real folders: the
//! commands resolve the data and state directories once at start
//! (`local_data → /mnt/ssd/…` is common) and work below the resolved paths. Renames,
//! swaps, removals, links and new folders act on an entry of a folder opened that way
//! (`renameat`, `renameat2`, `unlinkat`, `linkat`, `mkdirat`), and none replaces or
//! removes a symbolic link. New files are created with `O_EXCL`, after removing a
//! stale regular file of the same name; a name that is anything else is refused.
//! Files are opened with `O_NONBLOCK` (a FIFO planted under a file's name cannot hang
//! a run) and must be regular files. A file cut or appended in place must have one
//! name only: a hard link to it elsewhere would change too.
//!
//! Owners and modes: `recover` runs as root before iggy-server starts, and the server
//! must still append to what it writes. A new file or folder takes the owner of its
//! folder (and, for a file, the folder's mode without execute bits); a file renamed
//! over another takes the owner and mode of the one it replaces.
//!
//! The repair executor uses these through the [`FileOps`] trait, so tests can stop it
//! between any two operations or fail any of them, reads included (as
//! tikv/raft-engine's `FileSystem` seam; [`hooked`] is that injection, shared by the
//! tests and benches). Discovery and the analysis call the free
//! functions [`open_read`], [`metadata`] and [`list_dir`] directly.
//!
//! Every operation that writes also makes its result durable (fsync of the file) before
//! it returns, except those named `…_in_round`, which leave that fsync to a
//! [`SyncRound`] the caller runs; directory entries are made durable by an explicit
//! [`FileOps::sync_dir`] or a round.

mod digest;
pub mod hooked;
mod nofollow;
mod ops;
mod read_at;
mod std_fs;
#[cfg(test)]
mod tests;

pub use digest::{file_digest, file_len, range_digest};
pub use nofollow::{
    folder_stamps, is_symlink_refusal, list_dir, metadata, open_read, read_small, DirEntry,
    EntryKind, EntryStamp,
};

pub use ops::{FileOps, SyncRound, SYNCFS_FROM, SYNC_THREADS};
pub use read_at::ReadAt;
pub use std_fs::{is_zero_range, StdFs};
