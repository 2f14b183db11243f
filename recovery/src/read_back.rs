//! Reading back one message whose place in a log is known, to confirm it is still
//! the message it should be.
//!
//! Two callers know where a segment's last message lies without scanning: the
//! journal-guided analysis (the journal recorded its start and checksum when the
//! sidecar sealed the segment) and the sidecar itself (a tracker resumed from a
//! checkpoint knows where the verified bytes end, and the index says where the last
//! message starts). Both must check the same things the same way, so it is here once.

use crate::message::{frame_checksum, MessageHeader, HEADER_LEN, MAX_MESSAGE_LEN};
use crate::scan::MessageMeta;
use std::io::{self, Read, Seek, SeekFrom};

/// What makes the bytes read back the message expected, besides its place and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// The header carries this checksum, recorded when the message was verified: one
    /// small read, of the header only.
    RecordedChecksum(u64),
    /// Nothing was recorded: the whole frame is read and its checksum computed.
    ValidFrame,
}

/// The message `offset` that starts at byte `start` of `log` and ends exactly at byte
/// `end`, or `None` when the bytes there are not it (by `proof`). Read errors are
/// errors; a log too short for the header is one (`UnexpectedEof`).
pub fn read_back_message(
    log: &mut (impl Read + Seek),
    start: u64,
    end: u64,
    offset: u64,
    proof: Proof,
) -> io::Result<Option<MessageMeta>> {
    let Some(len) = end.checked_sub(start) else {
        return Ok(None);
    };
    if len < HEADER_LEN as u64 || len > MAX_MESSAGE_LEN {
        return Ok(None);
    }
    log.seek(SeekFrom::Start(start))?;
    let mut head = [0u8; HEADER_LEN];
    log.read_exact(&mut head)?;
    let header = MessageHeader::parse(&head);
    if header.offset != offset || header.frame_len() != len {
        return Ok(None);
    }
    let genuine = match proof {
        Proof::RecordedChecksum(checksum) => header.checksum == checksum,
        Proof::ValidFrame => {
            // `len` is at most MAX_MESSAGE_LEN, so it fits memory and a usize.
            let mut frame = head.to_vec();
            frame.resize(usize::try_from(len).unwrap_or(HEADER_LEN), 0);
            if let Some(rest) = frame.get_mut(HEADER_LEN..) {
                log.read_exact(rest)?;
            }
            frame_checksum(&frame) == Some(header.checksum)
        }
    };
    Ok(genuine.then_some(MessageMeta {
        offset,
        start,
        end,
        timestamp: header.timestamp,
        checksum: header.checksum,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn frame(offset: u64, payload: usize) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[24..32].copy_from_slice(&offset.to_le_bytes());
        b[32..40].copy_from_slice(&(500 + offset).to_le_bytes());
        b[52..56].copy_from_slice(&(payload as u32).to_le_bytes());
        b.extend((0..payload).map(|i| i as u8));
        let sum = frame_checksum(&b).unwrap();
        b[..8].copy_from_slice(&sum.to_le_bytes());
        b
    }

    #[test]
    fn finds_the_message_by_either_proof_and_nothing_else() {
        let mut log = frame(7, 10);
        let start = log.len() as u64;
        log.extend(frame(8, 20));
        let end = log.len() as u64;
        let checksum = u64::from_le_bytes(log[start as usize..][..8].try_into().unwrap());
        let mut src = Cursor::new(log.clone());
        for proof in [Proof::RecordedChecksum(checksum), Proof::ValidFrame] {
            let m = read_back_message(&mut src, start, end, 8, proof)
                .unwrap()
                .unwrap();
            assert_eq!(
                (m.offset, m.start, m.end, m.timestamp),
                (8, start, end, 508)
            );
            assert_eq!(m.checksum, checksum);
            // Another offset, or an end that is not the frame's.
            assert_eq!(
                read_back_message(&mut src, start, end, 9, proof).unwrap(),
                None
            );
            assert_eq!(
                read_back_message(&mut src, start, end - 1, 8, proof).unwrap(),
                None
            );
        }
        assert_eq!(
            read_back_message(
                &mut src,
                start,
                end,
                8,
                Proof::RecordedChecksum(checksum ^ 1)
            )
            .unwrap(),
            None
        );

        // A changed payload byte: only hashing the frame sees it.
        let mut bad = log;
        bad[end as usize - 1] ^= 1;
        let mut src = Cursor::new(bad);
        assert!(
            read_back_message(&mut src, start, end, 8, Proof::RecordedChecksum(checksum))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            read_back_message(&mut src, start, end, 8, Proof::ValidFrame).unwrap(),
            None
        );
        // Bounds that cannot hold a frame are not read at all.
        assert_eq!(
            read_back_message(&mut src, end, start, 8, Proof::ValidFrame).unwrap(),
            None
        );
    }
}
