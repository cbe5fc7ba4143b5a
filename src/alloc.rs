//! The binary's allocator: the system's, with large blocks advised to use
//! transparent huge pages.
//!
//! A normalize step or a whole-table read allocates a few hundred MB of
//! columns and hashes that are written once: with 4 KiB pages, the first
//! touch of every page (a fault, a zeroed page, its bookkeeping) was about
//! a third of such a step's CPU time. Blocks of at least [`LARGE`] bytes
//! are advised `MADV_HUGEPAGE` (whole 2 MiB pages inside the block only),
//! so the kernel backs them with huge pages where it can; where it cannot
//! (THP disabled, no free huge page), nothing changes. Small blocks, and
//! every other platform, are the system allocator's alone.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of this many bytes or more are advised huge pages.
const LARGE: usize = 4 << 20;

/// The system allocator, large blocks on huge pages.
pub struct LargeBlocksOnHugePages;

// SAFETY: every call goes to `System` with the caller's arguments; the
// advice only changes how the kernel backs pages of a block just
// allocated, never its contents or its bounds.
unsafe impl GlobalAlloc for LargeBlocksOnHugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        advise(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        advise(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        advise(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }
}

/// Advises the whole huge pages inside `[block, block + len)`.
fn advise(block: *mut u8, len: usize) -> *mut u8 {
    #[cfg(target_os = "linux")]
    if len >= LARGE && !block.is_null() {
        const HUGE_PAGE: usize = 2 << 20;
        let start = (block as usize).next_multiple_of(HUGE_PAGE);
        let end = (block as usize + len) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: the range lies inside the block just allocated;
            // MADV_HUGEPAGE changes no data. A failure (THP not built in)
            // is harmless and ignored.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    block
}
