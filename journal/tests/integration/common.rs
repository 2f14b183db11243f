//! Helpers shared by the journal's integration tests: deterministic records,
//! re-executing the test binary as a child process, and a tiny seeded RNG (no extra
//! dependency).

use journal::{PartitionId, Record, RepairAction, RepairId, SegmentKey};
use std::process::Command;

pub fn seg(partition: u32, start_offset: u64) -> SegmentKey {
    PartitionId::new(1, 1, partition).segment(start_offset)
}

/// A record determined by `(writer, i)`, so a parent can rebuild what a child wrote
/// from the two numbers the child printed. Cycles through most variants.
pub fn record_for(writer: u64, i: u64) -> Record {
    let segment = PartitionId::new(writer as u32, 0, 0).segment(i);
    match i % 6 {
        0 => Record::SegmentOpened { segment },
        1 => Record::Checkpoint {
            segment,
            valid_len: i * 7,
            next_offset: i,
        },
        2 => Record::SealIntent { segment },
        3 => Record::Sealed {
            segment,
            log_len: i * 100,
            index_len: i * 16,
            last_offset: Some(i),
            last_checksum: if i % 2 == 0 {
                None
            } else {
                Some(i ^ 0xdead_beef)
            },
            last_start: (i % 2 == 1).then_some(i * 90),
        },
        4 => Record::RepairIntent {
            repair: RepairId(writer * 1_000_000 + i),
            action: RepairAction::TruncateLog {
                segment,
                keep_len: i,
                original_len: i + 5,
            },
            reason: format!("torn tail seen by writer {writer}"),
        },
        _ => Record::SegmentDeleted { segment },
    }
}

/// Command that re-runs this test binary, running only the test `name` (its full path,
/// `module::test`, as `--exact` wants it), with `env` set so that test acts as the
/// child.
pub fn child(name: &str, env: &[(&str, String)]) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// xorshift64*: enough randomness for kill timings and byte garbling.
pub struct Rng(u64);

impl Rng {
    pub fn from_time() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(nanos | 1)
    }

    pub fn seeded(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Opens the journal's sled database directly, bypassing the journal, to plant damage.
/// Retries while a just-dropped handle still holds sled's lock.
pub fn raw_sled(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("raw sled open: {e}"),
        }
    }
}
