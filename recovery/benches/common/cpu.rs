//! CPU time as the benches of this crate measure it, from `getrusage`.

use std::time::Duration;

/// User and system CPU time of `who` (`RUSAGE_SELF` or `RUSAGE_CHILDREN`).
fn rusage_cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    assert_eq!(unsafe { libc::getrusage(who, &mut usage) }, 0);
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// CPU time of this process so far, all its threads.
pub fn cpu_time() -> Duration {
    rusage_cpu(libc::RUSAGE_SELF)
}

/// CPU time of this process' finished child processes.
#[allow(dead_code)] // Not every bench that includes this module runs children.
pub fn children_cpu_time() -> Duration {
    rusage_cpu(libc::RUSAGE_CHILDREN)
}
