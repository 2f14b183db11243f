//! A segment's `.log` and `.index` as real files, read by `analyze_segment` and by the
//! journal-guided `analyze_guided` (which reads the last message header at the
//! position the journal gives), with arbitrary journal state
//! for the segment; then judged, reported and planned in every mode, as `check` and
//! `recover` would.
//!
//! Input: flags (u8), segment start offset (u64 LE), log length (u16 LE), journal
//! selector (u8), checkpoint valid_len and next_offset (u64 LE each), sealed log_len,
//! index_len and last_checksum (u64 LE each), then the log bytes and the index bytes.
//! Selector: bits 0-2 the segment's phase in the journal (none, opened, seal intent,
//! sealed, sealed with its files' stamps, deleted, none, none), 0x08 a checkpoint, 0x10 a last checksum,
//! 0x20 cut the log after its last valid message (an arbitrary sealed record takes
//! the checkpoint's valid_len as its last message's start), bits 6-7 which message the
//! checkpoint names (with flag 0x40).
//! Flags 0x01/0x02/0x04 forge valid frames (see `forge_frames`); 0x08 makes the index
//! the one the server would write, XORed with the index bytes; 0x10 and 0x20 leave
//! the log or the index out; 0x40 makes a sealed record name the files' real lengths
//! and last checksum (and the files' own stamps), and a checkpoint name a real
//! message boundary, so the fuzzer reaches the trusted (read back or by stamp) and
//! resumed paths; 0x80 moves the segment start next to
//! `u64::MAX`.
//!
//! Proves: none of `analyze_segment`, `analyze_guided`, `judge`, `CheckReport::new`
//! and `plan` panics on any content of the two files and any journal state.
//!
//! The files live in one folder per process under /dev/shm (or the temp folder).
#![no_main]

use fuzz_support::{forge_frames, near_max, Forge, Input};
use journal::{CheckpointState, FileStamp, PartitionId, SegmentPhase, SegmentState};
use libfuzzer_sys::fuzz_target;
use recovery::analyze::analyze_segment;
use recovery::guided::analyze_guided;
use recovery::index::IndexBuilder;
use recovery::layout::{DataDir, PartitionLayout, SegmentFiles};
use recovery::plan::{plan, Mode};
use recovery::report::CheckReport;
use recovery::scan::{scan_log, EachMessage, MessageMeta, ScanStart};
use recovery::verdict::judge;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!("iggy-warden-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(root.join("streams/0/topics/0/partitions/0"))
            .expect("create the fuzz data directory");
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.u8();
    let start_offset = near_max(input.u64(), flags);
    let log_len = input.u16();
    let selector = input.u8();
    let cp_valid_len = input.u64();
    let cp_next_offset = input.u64();
    let sealed_log_len = input.u64();
    let sealed_index_len = input.u64();
    let sealed_checksum = input.u64();
    let mut log = input.bytes(usize::from(log_len)).to_vec();
    let index_input = input.rest();
    forge_frames(&mut log, start_offset, Forge::from_bits(flags));

    let mut metas: Vec<MessageMeta> = Vec::new();
    let scan = scan_log(
        &log[..],
        ScanStart::segment(start_offset),
        EachMessage(|m: &MessageMeta| {
            metas.push(*m);
            Ok::<_, std::io::Error>(())
        }),
    )
    .expect("reading a byte slice cannot fail")
    .ended()
    .expect("a visitor that never stops");
    if selector & 0x20 != 0 {
        // A log that ends after its last valid message, as a sealed one does.
        log.truncate(scan.valid_len as usize);
    }
    let index: Vec<u8> = if flags & 0x08 != 0 {
        let mut builder = IndexBuilder::new(Vec::new(), start_offset);
        let built = metas
            .iter()
            .try_for_each(|m| builder.add(m))
            .ok()
            .map(|()| builder.finish().expect("writing to a Vec cannot fail").0)
            .unwrap_or_default();
        (0..built.len().max(index_input.len()))
            .map(|i| built.get(i).copied().unwrap_or(0) ^ index_input.get(i).copied().unwrap_or(0))
            .collect()
    } else {
        index_input.to_vec()
    };

    let dir = root().join("streams/0/topics/0/partitions/0");
    let key = PartitionId::new(0, 0, 0).segment(start_offset);
    let mut files = SegmentFiles {
        key,
        log_path: dir.join("00000000000000000000.log"),
        index_path: dir.join("00000000000000000000.index"),
        log_len: (flags & 0x10 == 0).then_some(log.len() as u64),
        index_len: (flags & 0x20 == 0).then_some(index.len() as u64),
        log_stamp: None,
        index_stamp: None,
    };
    put(&files.log_path, files.log_len.map(|_| &log[..]));
    put(&files.index_path, files.index_len.map(|_| &index[..]));
    let stamp = |present: Option<u64>, path: &Path| {
        present.and_then(|_| std::fs::metadata(path).ok().map(|m| FileStamp::of(&m)))
    };
    files.log_stamp = stamp(files.log_len, &files.log_path);
    files.index_stamp = stamp(files.index_len, &files.index_path);
    // A stamp of the right lengths that matches no file.
    let other = |len: Option<u64>| FileStamp {
        ino: u64::from(selector),
        len: len.unwrap_or(0),
        mtime_sec: 0,
        mtime_nsec: 0,
        ctime_sec: 0,
        ctime_nsec: 0,
    };

    // What the journal may say about the segment.
    let real = flags & 0x40 != 0;
    let checkpoint = (selector & 0x08 != 0).then(|| match metas.get(usize::from(selector >> 6)) {
        Some(m) if real => CheckpointState {
            seq: 1,
            valid_len: m.end,
            next_offset: m.offset.saturating_add(1),
        },
        _ => CheckpointState {
            seq: 1,
            valid_len: cp_valid_len,
            next_offset: cp_next_offset,
        },
    });
    let phase = match selector % 8 {
        1 => Some(SegmentPhase::Opened),
        2 => Some(SegmentPhase::SealIntent),
        3 if real => Some(SegmentPhase::Sealed {
            log_len: files.log_len.unwrap_or(0),
            index_len: files.index_len.unwrap_or(0),
            last_offset: metas.last().map(|m| m.offset),
            last_checksum: metas.last().map(|m| m.checksum),
            last_start: metas.last().map(|m| m.start),
        }),
        4 if real => Some(SegmentPhase::SealedStamped {
            log_len: files.log_len.unwrap_or(0),
            index_len: files.index_len.unwrap_or(0),
            last_offset: metas.last().map(|m| m.offset),
            last_checksum: metas.last().map(|m| m.checksum),
            last_start: metas.last().map(|m| m.start),
            log: files.log_stamp.unwrap_or(other(files.log_len)),
            index: files.index_stamp.unwrap_or(other(files.index_len)),
        }),
        4 => Some(SegmentPhase::SealedStamped {
            log_len: sealed_log_len,
            index_len: sealed_index_len,
            last_offset: None,
            last_checksum: (selector & 0x10 != 0).then_some(sealed_checksum),
            last_start: (selector & 0x10 != 0).then_some(cp_valid_len),
            log: other(Some(sealed_log_len)),
            index: other(Some(sealed_index_len)),
        }),
        3 => Some(SegmentPhase::Sealed {
            log_len: sealed_log_len,
            index_len: sealed_index_len,
            last_offset: None,
            last_checksum: (selector & 0x10 != 0).then_some(sealed_checksum),
            last_start: (selector & 0x10 != 0).then_some(cp_valid_len),
        }),
        5 => Some(SegmentPhase::Deleted),
        _ => None,
    };
    let mut known = HashMap::new();
    if let Some(phase) = phase {
        known.insert(
            key,
            SegmentState {
                phase,
                last_seq: 1,
                checkpoint,
            },
        );
    }

    // The plain scan, from the start and from the checkpoint as given.
    let _ = analyze_segment(&files, ScanStart::segment(start_offset));
    if let Some(c) = checkpoint {
        let _ = analyze_segment(
            &files,
            ScanStart {
                position: c.valid_len,
                next_offset: c.next_offset,
            },
        );
    }

    let data_dir = DataDir {
        root: root().to_path_buf(),
        version: Some("0.6.0".into()),
        partitions: vec![PartitionLayout {
            id: key.partition,
            dir,
            segments: vec![files],
            offset_files: Vec::new(),
            stray_logs: Vec::new(),
            missing_offset_dirs: Vec::new(),
            offsets_listing: None,
            anomalies: Vec::new(),
        }],
        strays: Vec::new(),
        state: Default::default(),
        anomalies: Vec::new(),
    };
    let Ok((analysis, _stats)) = analyze_guided(&data_dir, &known, &|_| {}) else {
        return;
    };
    let problems = judge(&analysis);
    let report = CheckReport::new(&analysis);
    assert_eq!(report.problems.len(), problems.len());
    for p in &problems {
        let _ = p.to_string();
    }
    for mode in [Mode::TolerateTail, Mode::PointInTime, Mode::Absolute] {
        let _ = plan(&analysis, mode);
    }
});

/// Writes `bytes` at `path`, or removes the file for `None`.
fn put(path: &Path, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => std::fs::write(path, b).expect("write a fuzz file"),
        None => match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove a fuzz file: {e}"),
        },
    }
}
