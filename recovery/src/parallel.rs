//! An ordered parallel map for I/O-bound work.
//!
//! After a crash the page cache is cold, and listing a data directory or checking
//! journaled segments is many small reads that wait on the disk, not on the CPU.
//! Threads beyond the core count keep more requests in flight, and a virtio or NVMe
//! disk serves dozens at once, so that is what shortens the wait.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Threads for I/O-bound maps: enough requests in flight for a fast disk, few enough
/// that their stacks stay cheap.
pub(crate) const IO_THREADS: usize = 32;

/// `f` applied to every item, on up to `threads` threads; the results in the order of
/// `items`. After the first error no new item is started, and an error is returned
/// (the one of the lowest-numbered failed item among those that ran). A panic in `f`
/// is re-raised on the caller's thread.
pub(crate) fn map_ordered<T, R, E>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let result = f(item);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, result));
        }
        done
    };
    let threads = threads.min(items.len()).max(1);
    let mut results: Vec<(usize, Result<R, E>)> = if threads == 1 {
        work()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            let mut all = Vec::with_capacity(items.len());
            for h in handles {
                all.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            all
        })
    };
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u64> = (0..1000).collect();
        let out = map_ordered(&items, 8, |&x| Ok::<_, ()>(x * 2)).unwrap();
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_is_returned_and_stops_new_work() {
        let items: Vec<u64> = (0..10_000).collect();
        let started = AtomicUsize::new(0);
        let out = map_ordered(&items, 4, |&x| {
            started.fetch_add(1, Ordering::Relaxed);
            if x == 10 {
                Err(format!("item {x}"))
            } else {
                Ok(x)
            }
        });
        assert_eq!(out, Err("item 10".to_string()));
        assert!(started.load(Ordering::Relaxed) < items.len());
    }

    #[test]
    fn no_items_no_threads_no_results() {
        let out = map_ordered(&[] as &[u8], 8, |_| Ok::<_, ()>(1)).unwrap();
        assert!(out.is_empty());
    }
}
