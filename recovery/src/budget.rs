//! A process-wide cap on the memory scans hold beyond their first small buffer.
//!
//! Scans run on up to [`crate::parallel::IO_THREADS`] threads at once. Each starts
//! with a small buffer and grows it only while its reads keep filling it, so a buffer
//! is never much larger than the bytes its file really holds. On top of that, every
//! byte a scan adds to its first buffer is leased from one
//! budget: when the budget is spent, a scan keeps reading through the buffer it has,
//! which is slower but never larger. Threads × buffer size is therefore capped by
//! [`SCAN_MEMORY`], whatever the data directory holds.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes all scans together may hold beyond their first buffer.
pub(crate) const SCAN_MEMORY: usize = 24 << 20;

/// A pool of bytes that leases are taken from.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

/// The budget every scan of this process shares.
pub(crate) static SCANS: Budget = Budget::new(SCAN_MEMORY);

impl Budget {
    pub(crate) const fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// An empty lease, to grow later.
    pub(crate) fn empty(&'static self) -> Lease {
        Lease {
            budget: self,
            held: 0,
        }
    }

    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Bytes held from a [`Budget`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    budget: &'static Budget,
    held: usize,
}

impl Lease {
    /// Takes `n` more bytes when the budget has them; otherwise changes nothing and
    /// returns false.
    pub(crate) fn grow(&mut self, n: usize) -> bool {
        let limit = self.budget.limit;
        let taken = self
            .budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= limit)
            })
            .is_ok();
        if taken {
            self.held += n;
        }
        taken
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_never_exceed_the_budget_and_are_given_back() {
        static B: Budget = Budget::new(100);
        let mut a = B.empty();
        assert!(a.grow(60));
        assert!(!B.empty().grow(41));
        let mut b = B.empty();
        assert!(b.grow(40));
        assert!(!b.grow(1));
        assert_eq!(B.used(), 100);
        drop(a);
        assert!(b.grow(60));
        drop(b);
        assert_eq!(B.used(), 0);
    }
}
