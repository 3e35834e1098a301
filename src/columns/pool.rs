//! Recycles column memory across batches.
//!
//! A batch's arrays are moved out to the caller, so each batch is built in new vectors. Freshly
//! allocated, those were fresh memory too: glibc hands large freed blocks back to the kernel, so
//! every batch's ~230 bytes per packet were page-faulted and zeroed again (a quarter of the CPU
//! time of a read). Instead, each array buffer here owns its vector through a [`Lease`]; when the
//! last reference to the buffer goes (whoever holds the batch drops it, on any thread), the
//! vector returns to the pool of the column that filled it, and the next batch reuses it, still
//! mapped and probably cached. A caller that keeps its batches just never returns anything, and a
//! pool holds at most [`KEEP`] idle vectors, so memory stays bounded either way.
//!
//! A vector that is not recycled starts empty and gets a whole batch's room ([`Pool::reserve`])
//! only once rows arrive, so a reader that reaches the end of its input never allocates a batch
//! it will not fill (for small files, that allocation cost more than reading them).

use std::panic::RefUnwindSafe;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, Weak};

use arrow_buffer::{ArrowNativeType, Buffer};

/// Idle vectors a pool keeps. The vector being filled is not in the pool, so one covers a caller
/// that drops each batch before asking for the next, and two one that drops it just after.
const KEEP: usize = 2;

type Idle<T> = Mutex<Vec<Vec<T>>>;

/// The recycled vectors of one column buffer.
pub(crate) struct Pool<T> {
    idle: Arc<Idle<T>>,
    /// Elements a batch is expected to need.
    batch: usize,
}

impl<T: ArrowNativeType + RefUnwindSafe> Pool<T> {
    pub(crate) fn new(batch: usize) -> Self {
        Self { idle: Arc::new(Mutex::new(Vec::new())), batch }
    }

    /// Makes room for a whole batch in `v` if it has less (one allocation instead of doublings).
    #[inline]
    pub(crate) fn reserve(&self, v: &mut Vec<T>) {
        if v.capacity() < self.batch {
            v.reserve(self.batch - v.len());
        }
    }

    /// Moves `v`'s contents into an Arrow buffer, leaving in `v` an empty vector: an idle one if
    /// there is one, else an unallocated one.
    pub(crate) fn take(&self, v: &mut Vec<T>) -> Buffer {
        let recycled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let next = match recycled {
            Some(mut r) => {
                r.clear();
                r
            }
            None => Vec::new(),
        };
        let lease = Arc::new(Lease { vec: std::mem::replace(v, next), pool: Arc::downgrade(&self.idle) });
        let values = lease.vec.as_slice();
        let (ptr, len) = (NonNull::from(values).cast::<u8>(), std::mem::size_of_val(values));
        // SAFETY: `ptr` and `len` describe the initialized elements of the leased vector, as
        // bytes (non-null and aligned even when empty). The vector is owned by `lease`, which the
        // buffer keeps alive until its last reference is dropped and which never touches the
        // vector before then (moving a `Vec` does not move its elements); only then does the
        // vector go back to the pool, to be cleared and refilled.
        unsafe { Buffer::from_custom_allocation(ptr, len, lease) }
    }
}

/// A vector lent to Arrow buffers, returned to its pool when they are all gone.
struct Lease<T> {
    vec: Vec<T>,
    pool: Weak<Idle<T>>,
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        // A pool whose reader is gone, or that is full, lets the vector be freed.
        if let Some(pool) = self.pool.upgrade() {
            if let Ok(mut idle) = pool.lock() {
                if idle.len() < KEEP {
                    idle.push(std::mem::take(&mut self.vec));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_buffers_lend_their_memory_to_the_next_batch() {
        let pool = Pool::<u32>::new(100);
        let mut v = vec![1u32, 2, 3];
        let first = pool.take(&mut v);
        assert_eq!(first.typed_data::<u32>(), &[1, 2, 3]);
        assert_eq!(v.capacity(), 0, "nothing to recycle yet: no allocation");
        pool.reserve(&mut v);
        assert!(v.capacity() >= 100);
        let ptr = first.as_ptr();
        let alias = first.clone();
        drop(first);
        assert_eq!(pool.idle.lock().unwrap().len(), 0, "still referenced");
        drop(alias);
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
        v.extend([4, 5]);
        let second = pool.take(&mut v);
        assert_eq!(second.typed_data::<u32>(), &[4, 5]);
        // `v` now holds the first batch's vector, cleared.
        assert!(v.is_empty());
        assert_eq!(v.as_ptr().cast::<u8>(), ptr);
        drop(pool);
        drop(second); // its pool is gone: freed normally
    }

    #[test]
    fn a_full_pool_frees_the_rest() {
        let pool = Pool::<u8>::new(10);
        let buffers: Vec<Buffer> = (0..5).map(|_| pool.take(&mut vec![7u8; 10])).collect();
        drop(buffers);
        assert_eq!(pool.idle.lock().unwrap().len(), KEEP);
    }
}
