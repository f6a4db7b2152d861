//! What a component that does not link std lacks, for `no_std_runtime!`.
//!
//! std on wasm32-wasip2 exports `cabi_realloc`, the function through which the
//! host allocates in the guest's memory (strings and lists it passes in). A
//! `no_std` plugin exports this one instead, from its own crate: the symbol
//! cannot live here, since a std plugin linking the SDK would then define it
//! twice.

use alloc::alloc::{Layout, alloc, handle_alloc_error, realloc};

/// The component model's `cabi_realloc`: a fresh block when `old_len` is 0,
/// else `old_ptr`'s block resized to `new_len`. Out of memory traps.
///
/// # Safety
///
/// The canonical ABI's contract: `align` is a power of two, and a non-zero
/// `old_len` describes a block this allocator returned with that alignment.
#[allow(unsafe_code)]
pub unsafe fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    // SAFETY: the caller's contract above; a zero `new_len` never reaches
    // the allocator (a dangling, aligned pointer is a valid empty block).
    unsafe {
        let (layout, ptr) = if old_len == 0 {
            if new_len == 0 {
                return core::ptr::without_provenance_mut(align);
            }
            let layout = Layout::from_size_align_unchecked(new_len, align);
            (layout, alloc(layout))
        } else {
            let layout = Layout::from_size_align_unchecked(old_len, align);
            (layout, realloc(old_ptr, layout, new_len))
        };
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        ptr
    }
}
