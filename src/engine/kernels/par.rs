//! Row-wise work split over candle's barrier pool (the threads candle's own ops and our
//! matmul use, so nothing is oversubscribed), run inline when it is too small to pay for
//! waking the workers.

use candle_core::utils::barrier_pool;
use std::marker::PhantomData;
use std::ops::Range;

/// Below this many elements of work a phase runs on the calling thread.
const PAR_MIN: usize = 4 * 1024;

/// `f` over `0..n` in chunks, on the pool when `n · cost` (elements touched) is at least
/// [`PAR_MIN`].
pub fn for_rows(n: usize, cost: usize, f: impl Fn(Range<usize>) + Sync) {
    if n < 2 || n.saturating_mul(cost) < PAR_MIN {
        f(0..n);
    } else {
        barrier_pool().execute_chunked(n, f);
    }
}

/// Rows of `width` values of a mutable slice, handed to the pool's threads one row range
/// at a time.
pub struct Rows<'a, T> {
    ptr: *mut T,
    len: usize,
    width: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `Rows` only hands out the rows a caller asks for; callers promise disjointness.
unsafe impl<T: Send> Sync for Rows<'_, T> {}
unsafe impl<T: Send> Send for Rows<'_, T> {}

impl<'a, T> Rows<'a, T> {
    pub fn new(data: &'a mut [T], width: usize) -> Rows<'a, T> {
        Rows {
            ptr: data.as_mut_ptr(),
            len: data.len(),
            width,
            _borrow: PhantomData,
        }
    }

    /// Rows `r` as one slice.
    ///
    /// # Safety
    /// No other thread may hold any of these rows at the same time.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self, r: Range<usize>) -> &mut [T] {
        let (start, end) = (r.start * self.width, r.end * self.width);
        assert!(
            start <= end && end <= self.len,
            "rows {r:?} of width {} past {}",
            self.width,
            self.len
        );
        std::slice::from_raw_parts_mut(self.ptr.add(start), end - start)
    }
}

/// A mutable slice whose elements the pool's threads write one by one, each element by
/// one thread (for layouts that do not split into row ranges).
pub struct Scatter<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `Scatter` only writes the elements a caller names; callers promise that no
// element is written by two threads.
unsafe impl<T: Send> Sync for Scatter<'_, T> {}
unsafe impl<T: Send> Send for Scatter<'_, T> {}

impl<'a, T> Scatter<'a, T> {
    pub fn new(data: &'a mut [T]) -> Scatter<'a, T> {
        Scatter {
            ptr: data.as_mut_ptr(),
            len: data.len(),
            _borrow: PhantomData,
        }
    }

    /// Write element `i`.
    ///
    /// # Safety
    /// No other thread may write element `i` during this call.
    pub unsafe fn set(&self, i: usize, v: T) {
        assert!(i < self.len, "element {i} past {}", self.len);
        self.ptr.add(i).write(v);
    }
}
