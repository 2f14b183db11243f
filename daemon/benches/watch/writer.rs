//! The bench's writer: a partition appended the way iggy-server 0.6 writes it (log,
//! then index) and rotated into a new segment pair.

use recovery::index::IndexEntry;
use recovery::message::{frame_checksum, HEADER_LEN};
use recovery::scan::MessageMeta;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One partition written the way iggy-server 0.6 writes it, files kept open.
pub(crate) struct Part {
    dir: PathBuf,
    start: u64,
    pub(crate) log_len: u64,
    next: u64,
    log: File,
    index: File,
}

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open segment file")
}

impl Part {
    pub(crate) fn create(root: &Path, stream: u32, topic: u32, partition: u32) -> Self {
        let dir = root.join(format!(
            "streams/{stream}/topics/{topic}/partitions/{partition}"
        ));
        fs::create_dir_all(&dir).expect("create partition");
        Self {
            log: open_append(&dir.join(format!("{:020}.log", 0))),
            index: open_append(&dir.join(format!("{:020}.index", 0))),
            dir,
            start: 0,
            log_len: 0,
            next: 0,
        }
    }

    /// Appends `n` messages of `payload` bytes: the log in one write, then the index.
    pub(crate) fn append(&mut self, n: usize, payload: &[u8], scratch: &mut Vec<u8>) {
        scratch.clear();
        let mut index = Vec::with_capacity(n * 16);
        for _ in 0..n {
            let at = scratch.len();
            let mut h = [0u8; HEADER_LEN];
            h[8..24].copy_from_slice(&(u128::from(self.next) + 1).to_le_bytes());
            h[24..32].copy_from_slice(&self.next.to_le_bytes());
            h[32..40].copy_from_slice(&(1_800_000_000_000_000 + self.next).to_le_bytes());
            h[40..48].copy_from_slice(&(1_800_000_000_000_000 + self.next).to_le_bytes());
            h[52..56].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            scratch.extend_from_slice(&h);
            scratch.extend_from_slice(payload);
            let sum = frame_checksum(&scratch[at..]).unwrap_or(0);
            scratch[at..at + 8].copy_from_slice(&sum.to_le_bytes());
            let end = self.log_len + (scratch.len() - at) as u64;
            let meta = MessageMeta {
                offset: self.next,
                start: self.log_len,
                end,
                timestamp: 1_800_000_000_000_000 + self.next,
                checksum: sum,
            };
            let entry = IndexEntry::for_message(&meta, self.start).expect("fits 32 bits");
            index.extend_from_slice(&entry.encode());
            self.log_len = end;
            self.next += 1;
        }
        self.log.write_all(scratch).expect("append log");
        self.index.write_all(&index).expect("append index");
    }

    pub(crate) fn rotate(&mut self) {
        self.start = self.next;
        self.log_len = 0;
        self.log = open_append(&self.dir.join(format!("{:020}.log", self.start)));
        self.index = open_append(&self.dir.join(format!("{:020}.index", self.start)));
    }
}
