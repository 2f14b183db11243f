//! Read-ahead for the scanner: a second thread reads the next chunk of a log while
//! the scanner checksums the current one, so a scan costs about as much as a read.
//!
//! Every chunk keeps free room at its front. When the scanner moves on to the next
//! chunk, the unread end of the current one (at most one message cut by the chunk
//! boundary) is copied into that room, so chunk data itself is never copied again.
//! The scanner asks for at most the room at once (see `Bytes::max_fill`) and
//! hashes a longer message piece by piece, so chunks are never gathered into a
//! buffer of their own.

use super::window::{Bytes, READ_SIZE};
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::Scope;

/// Room for the unread end of the previous chunk.
const ROOM: usize = 64 * 1024;
/// Chunks read ahead of the scanner: bounds memory to a few chunks.
const AHEAD: usize = 2;
const CHUNK_BUF: usize = ROOM + READ_SIZE;
/// Most memory one read-ahead holds: the chunks in the channel, the one being read,
/// the scanner's current one and one on its way back.
pub(crate) const MEMORY: usize = (AHEAD + 3) * CHUNK_BUF;

/// A chunk as the reader thread hands it over: data in `buf[ROOM..ROOM + len]`.
struct Filled {
    buf: Vec<u8>,
    len: usize,
}

pub(crate) struct Prefetch {
    chunks: Receiver<io::Result<Filled>>,
    recycle: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    head: usize,
    tail: usize,
    pos: u64,
    eof: bool,
}

impl Prefetch {
    /// Starts a reader of `src` (positioned at file position `pos`) in `scope`; it
    /// stops at the end of the file, on an error, or when this window is dropped.
    pub(crate) fn spawn<'scope, R: Read + Send + 'scope>(
        scope: &'scope Scope<'scope, '_>,
        src: R,
        pos: u64,
    ) -> Self {
        let (tx, chunks) = sync_channel(AHEAD);
        let (recycle, spare) = sync_channel::<Vec<u8>>(AHEAD + 2);
        scope.spawn(move || read_ahead(src, &tx, &spare));
        Self {
            chunks,
            recycle,
            cur: Vec::new(),
            head: 0,
            tail: 0,
            pos,
            eof: false,
        }
    }

    fn give_back(&self, buf: Vec<u8>) {
        if buf.len() == CHUNK_BUF {
            let _ = self.recycle.try_send(buf);
        }
    }

    /// Continues the window into `next`, keeping the unread bytes in front of it.
    fn advance(&mut self, next: Filled) {
        let left = self.tail - self.head;
        let unread = self.cur.get(self.head..self.tail).unwrap_or(&[]);
        let mut buf = next.buf;
        let (head, tail) = (ROOM - left.min(ROOM), ROOM + next.len);
        let joined = match buf.get_mut(head..ROOM) {
            Some(room) if left <= ROOM => {
                room.copy_from_slice(unread);
                None
            }
            _ => {
                let mut joined = Vec::with_capacity(left + next.len);
                joined.extend_from_slice(unread);
                joined.extend_from_slice(buf.get(ROOM..tail).unwrap_or(&[]));
                Some(joined)
            }
        };
        let old = match joined {
            None => {
                self.head = head;
                self.tail = tail;
                std::mem::replace(&mut self.cur, buf)
            }
            Some(joined) => {
                self.head = 0;
                self.tail = joined.len();
                self.give_back(std::mem::take(&mut buf));
                std::mem::replace(&mut self.cur, joined)
            }
        };
        self.give_back(old);
    }
}

impl Bytes for Prefetch {
    fn pos(&self) -> u64 {
        self.pos
    }

    fn available(&self) -> &[u8] {
        self.cur.get(self.head..self.tail).unwrap_or(&[])
    }

    fn fill(&mut self, need: usize) -> io::Result<()> {
        while self.tail - self.head < need && !self.eof {
            match self.chunks.recv() {
                Ok(Ok(next)) if next.len > 0 => self.advance(next),
                Ok(Ok(_)) | Err(_) => self.eof = true,
                Ok(Err(e)) => return Err(e),
            }
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.tail - self.head);
        self.head += n;
        self.pos += n as u64;
    }

    fn max_fill(&self) -> usize {
        ROOM
    }
}

/// The reader thread: fills chunks until the end of the file or an error, or until
/// the scanner hangs up.
fn read_ahead<R: Read>(mut src: R, tx: &SyncSender<io::Result<Filled>>, spare: &Receiver<Vec<u8>>) {
    loop {
        let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK_BUF]);
        let mut len = 0;
        let mut eof = false;
        while let Some(room) = buf.get_mut(ROOM + len..).filter(|r| !r.is_empty()) {
            match src.read(room) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if tx.send(Ok(Filled { buf, len })).is_err() || eof {
            return;
        }
    }
}
