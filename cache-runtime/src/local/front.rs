//! Per-thread fronts: each thread keeps copies of a few hot entries of a
//! use case, so that a hot hit takes no lock at all.
//!
//! A shard's read lock, even one sharded per reader, costs two locked
//! read-modify-writes per hit, about as much as the rest of the hit put
//! together. A front copy instead is checked with plain loads:
//!
//! * its stripe's [`Versions`](super::Versions) counter is unchanged, so
//!   the entry is still in the store, holds the same value and still has
//!   all its second chances (the policy sees no difference: an entry is
//!   copied only once its chances are full, and a hit then records nothing);
//! * the watermarks' epoch is the one the entry was found valid in, and the
//!   invalidation lease is live (the checks a held entry's fast path makes);
//! * it is still fresh (a stale entry takes the shard path, which schedules
//!   its refresh).
//!
//! Only use cases whose keys and values are plain data are copied (no drop
//! glue, at most [`MAX_SIZE`] bytes each): a copy then costs its bytes and
//! nothing on the heap, however many threads hold one, and making one
//! allocates nothing. A value with heap parts allocates on every clone
//! anyway, which dwarfs the lock. Copies are not counted against byte
//! bounds: at most [`SLOTS`] per thread and use case, a few kilobytes.
//!
//! The epoch is cache-wide: any invalidation makes every copy of the cache
//! stale, and the next hit of each takes the shard path (and copies again).

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Ticket;
use crate::clock::Millis;

/// Copies per thread and use case (direct-mapped by hash).
pub(crate) const SLOTS: usize = 16;

/// The largest key, and the largest value, copied, in bytes.
pub(crate) const MAX_SIZE: usize = 256;

/// One thread's copy of an entry.
pub(crate) struct Copied<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) fresh_until_ms: Millis,
    pub(crate) negative: bool,
    /// The watermark epoch the entry was found valid in.
    pub(crate) epoch: u64,
    pub(crate) ticket: Ticket,
}

struct Front<K, V> {
    slots: [Option<Copied<K, V>>; SLOTS],
}

thread_local! {
    /// This thread's fronts, by front id.
    static FRONTS: RefCell<Vec<Option<Box<dyn Any>>>> = const { RefCell::new(Vec::new()) };
}

/// Ids of fronts: one per use case whose values may be copied. Use cases
/// live as long as the process, so ids are never reused.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A use case's front (its copies on each thread).
#[derive(Debug)]
pub(crate) struct FrontId(usize);

/// Whether entries of keys `K` and values `V` are copied into fronts.
pub(crate) const fn copies<K, V>() -> bool {
    const fn plain<T>() -> bool {
        !std::mem::needs_drop::<T>() && std::mem::size_of::<T>() <= MAX_SIZE
    }
    plain::<K>() && plain::<V>()
}

#[cfg(test)]
thread_local! {
    /// Hits this thread served from a copy (tests only).
    pub(crate) static SERVED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline]
fn slot_of(hash: u64) -> usize {
    (hash >> 4) as usize % SLOTS
}

impl FrontId {
    pub(crate) fn new() -> Self {
        FrontId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// `f` on this thread's copy for `hash`, if any. `None` also when the
    /// thread is exiting or the front is in use further up the stack.
    #[inline(always)]
    pub(crate) fn get<K: 'static, V: 'static, R>(
        &self,
        hash: u64,
        f: impl FnOnce(&Copied<K, V>) -> Option<R>,
    ) -> Option<R> {
        FRONTS
            .try_with(|fronts| {
                let fronts = fronts.try_borrow().ok()?;
                let front = fronts
                    .get(self.0)?
                    .as_ref()?
                    .downcast_ref::<Front<K, V>>()?;
                let copy = front.slots[slot_of(hash)].as_ref()?;
                if copy.hash != hash {
                    return None;
                }
                f(copy)
            })
            .ok()
            .flatten()
    }

    /// Keeps the copy `make` builds on this thread, in the slot for `hash`.
    /// A slot holding another key's copy that is still `current` is taken
    /// over one time in eight (and nothing is built otherwise), so that
    /// keys sharing a slot do not evict each other on every hit.
    pub(crate) fn put<K: 'static, V: 'static>(
        &self,
        hash: u64,
        current: impl FnOnce(&Copied<K, V>) -> bool,
        make: impl FnOnce() -> Copied<K, V>,
    ) {
        let _ = FRONTS.try_with(|fronts| {
            let Ok(mut fronts) = fronts.try_borrow_mut() else {
                return;
            };
            if fronts.len() <= self.0 {
                fronts.resize_with(self.0 + 1, || None);
            }
            let front = fronts[self.0].get_or_insert_with(|| {
                Box::new(Front::<K, V> {
                    slots: [const { None }; SLOTS],
                })
            });
            let Some(front) = front.downcast_mut::<Front<K, V>>() else {
                return;
            };
            let slot = &mut front.slots[slot_of(hash)];
            let take = match slot {
                Some(old) => old.hash == hash || !current(old) || fastrand::u8(..) < 32,
                None => true,
            };
            if take {
                *slot = Some(make());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_data_is_copied() {
        assert!(copies::<(u64,), u64>());
        assert!(copies::<(u64, u32), (u64, [u32; 4])>());
        assert!(
            !copies::<(u64,), String>(),
            "heap parts: one per thread would multiply"
        );
        assert!(!copies::<(String,), u64>(), "a key with heap parts");
        assert!(!copies::<(u64,), std::sync::Arc<u64>>());
        assert!(!copies::<(u64,), [u8; MAX_SIZE + 1]>(), "too large");
    }
}
