//! Keep the C allocator's per-thread heaps from growing one page at a time.
//!
//! On a worker thread, glibc's malloc extends its heap by exactly what each allocation
//! needs, with an `mprotect` system call every time (the main thread's heap grows with a
//! 128 KiB pad instead). Parsing and checking a large repository allocates mostly on the
//! rayon workers, and every parsed file stays in memory for the whole run: thousands of
//! heap extensions, each a system call that also contends with the other thread's page
//! faults. Allocating a block just under the size glibc serves from the heap (its default
//! mmap threshold is 128 KiB) and freeing it at once extends the heap in one step; the
//! block goes back to the top of the heap, where the next allocations find it.
//!
//! With any other allocator this is one allocation and free every few jobs, nothing more.

use std::cell::Cell;

/// Jobs between two reservations on one thread.
const EVERY: usize = 8;
/// Bytes reserved: below glibc's default mmap threshold, so it comes from the heap.
const SIZE: usize = 120 * 1024;

/// Call at the start of each per-file job on a worker thread.
pub(crate) fn reserve_headroom() {
    thread_local! {
        static JOBS: Cell<usize> = const { Cell::new(0) };
    }
    let n = JOBS.with(|jobs| {
        let n = jobs.get();
        jobs.set(n.wrapping_add(1));
        n
    });
    if n.is_multiple_of(EVERY) {
        // `black_box`: an allocation that is freed unused could be optimized away.
        drop(std::hint::black_box(Vec::<u8>::with_capacity(SIZE)));
    }
}
