//! A counting global allocator, to prove the hot path does not allocate.
//!
//! Install it in a binary or test with
//! `#[global_allocator] static A: wildbot::devtools::alloc::CountingAlloc = wildbot::devtools::alloc::CountingAlloc;`
//! and read [`thread_allocations`] before and after the code under test. Counts are kept per
//! thread (a `const`-initialised thread-local `Cell`, which itself never allocates), so other
//! threads — the test harness, side workers — cannot disturb a measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting allocations and reallocations made by each thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

fn bump() {
    // `try_with` so that allocations during thread teardown are never a panic.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` unchanged; counting has no effect on memory.
#[allow(unsafe_code)] // a global allocator is unsafe by definition
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (including reallocations) made so far by the calling thread. Only meaningful
/// when [`CountingAlloc`] is the global allocator; otherwise always 0.
#[must_use]
pub fn thread_allocations() -> u64 {
    ALLOCS.try_with(Cell::get).unwrap_or(0)
}
