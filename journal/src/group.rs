//! Group commit: many appenders, one transaction and one flush per round.
//!
//! A flush (an fsync underneath) costs about as much for one record as for a hundred,
//! so appenders do not each write and flush. They queue their operation; one of them
//! is the leader, takes everything queued, commits it in one round (one sled
//! transaction, one flush) and hands every waiter its result. Operations queued while
//! a round runs go into the next round, which is how rounds grow under load. When a
//! round ends with operations queued, the leader passes leadership to the oldest of
//! them, so exactly one thread is woken to lead and each other waiter is woken only
//! once, with its result (a shared condition variable woke every waiter every round,
//! which on two cores cost as much CPU as the round itself).
//!
//! Why the leader also does the writing, not only the flush: sled 0.34 holds its
//! global concurrency-control lock in read mode for the whole of `flush()`, and a
//! transaction needs it in write mode. Followers that wrote their own transactions
//! would all wait for the running fsync and then commit one at a time, so each flush
//! would cover one or two records (measured: 1.7 per flush with 64 threads).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

enum SlotState<Out> {
    Waiting,
    /// The waiter now leads: it takes the queue, its own operation included.
    Lead,
    Done(Out),
}

/// Where one waiting operation receives its result or its turn to lead.
struct Slot<Out> {
    state: Mutex<SlotState<Out>>,
    wake: Condvar,
}

impl<Out> Slot<Out> {
    fn set(&self, new: SlotState<Out>) -> Result<(), QueueBroken> {
        *self.state.lock().map_err(|_| QueueBroken)? = new;
        self.wake.notify_one();
        Ok(())
    }
}

struct QueueState<Op, Out> {
    queue: VecDeque<(Op, Arc<Slot<Out>>)>,
    leading: bool,
}

/// The queue of operations waiting for a round.
pub(crate) struct CommitQueue<Op, Out> {
    state: Mutex<QueueState<Op, Out>>,
}

impl<Op, Out> Default for CommitQueue<Op, Out> {
    fn default() -> Self {
        Self {
            state: Mutex::new(QueueState {
                queue: VecDeque::new(),
                leading: false,
            }),
        }
    }
}

/// A lock was poisoned: a thread panicked inside the queue. `commit` functions do not
/// panic (the store shields sled), so this is a bug, reported rather than raised.
#[derive(Debug)]
pub(crate) struct QueueBroken;

impl<Op, Out> CommitQueue<Op, Out> {
    fn lock(&self) -> Result<MutexGuard<'_, QueueState<Op, Out>>, QueueBroken> {
        self.state.lock().map_err(|_| QueueBroken)
    }

    /// Queues `op` and returns its result once a round committed it. `commit` runs a
    /// round: it gets the queued operations in order and must return one result per
    /// operation, in the same order.
    pub(crate) fn submit(
        &self,
        op: Op,
        commit: impl Fn(Vec<Op>) -> Vec<Out>,
    ) -> Result<Out, QueueBroken> {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState::Waiting),
            wake: Condvar::new(),
        });
        {
            let mut st = self.lock()?;
            st.queue.push_back((op, Arc::clone(&slot)));
            if st.leading {
                drop(st);
                let mut s = slot.state.lock().map_err(|_| QueueBroken)?;
                loop {
                    match std::mem::replace(&mut *s, SlotState::Waiting) {
                        SlotState::Done(out) => return Ok(out),
                        SlotState::Lead => break,
                        SlotState::Waiting => s = slot.wake.wait(s).map_err(|_| QueueBroken)?,
                    }
                }
            } else {
                st.leading = true;
            }
        }
        // We lead. Our own operation is in the queue (a leader takes the whole queue,
        // and leadership is handed to the front of the queue), so one round does it.
        let batch: Vec<_> = self.lock()?.queue.drain(..).collect();
        let (ops, slots): (Vec<Op>, Vec<Arc<Slot<Out>>>) = batch.into_iter().unzip();
        let outs = commit(ops);
        debug_assert_eq!(slots.len(), outs.len());
        // The next round starts before this one's waiters are woken: waking each costs
        // a system call, and on two cores the next leader's write and flush overlap
        // them instead of waiting for them.
        {
            let mut st = self.lock()?;
            match st.queue.front() {
                Some((_, next)) => next.set(SlotState::Lead)?,
                None => st.leading = false,
            }
        }
        let mut mine = None;
        for (s, out) in slots.iter().zip(outs) {
            if Arc::ptr_eq(s, &slot) {
                mine = Some(out);
            } else {
                s.set(SlotState::Done(out))?;
            }
        }
        mine.ok_or(QueueBroken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn concurrent_submitters_share_rounds_in_order() {
        let queue = Arc::new(CommitQueue::<u64, (u64, u64)>::default());
        let rounds = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let (queue, rounds, next) =
                    (Arc::clone(&queue), Arc::clone(&rounds), Arc::clone(&next));
                std::thread::spawn(move || {
                    (0..200u64)
                        .map(|i| {
                            let op = t * 1000 + i;
                            let (got, pos) = queue
                                .submit(op, |ops| {
                                    rounds.fetch_add(1, Ordering::SeqCst);
                                    std::thread::sleep(std::time::Duration::from_micros(200));
                                    ops.into_iter()
                                        .map(|o| (o, next.fetch_add(1, Ordering::SeqCst)))
                                        .collect()
                                })
                                .unwrap();
                            assert_eq!(got, op, "each submitter gets its own result");
                            pos
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut positions: Vec<u64> = Vec::new();
        for t in threads {
            let mine = t.join().unwrap();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "a thread's ops commit in its order"
            );
            positions.extend(mine);
        }
        positions.sort();
        assert_eq!(positions, (0..1600).collect::<Vec<_>>());
        let n = rounds.load(Ordering::SeqCst);
        assert!(n < 1600, "no round was shared: {n} rounds for 1600 ops");
    }
}
