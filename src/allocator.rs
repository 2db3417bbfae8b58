//! The native binaries' allocator policy. They all use mimalloc, which keeps freed blocks for
//! reuse where glibc hands large ones back to the OS and page-faults them in again at the next
//! forward (Cargo.toml says by how much). By default mimalloc still returns ("purges") freed
//! pages to the OS 10 ms after they empty; a training step frees and reallocates hundreds of MB
//! of activations and gradients every second, so it would page-fault them back in at every step
//! (measured: batch 16 at 128², 9.2 → 13.1 images/s; docs/benchmarks.md). [`keep_freed_pages`]
//! turns the purging off. Peak memory does not change; the memory stays with the process until
//! it exits.

/// mimalloc's `mi_option_purge_delay` (position 15 of `mi_option_e` in mimalloc's v2 and v3
/// headers; the Rust bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never return freed pages to the OS (call first thing in `main`).
pub fn keep_freed_pages() {
    // SAFETY: setting an option is allowed at any time; -1 is mimalloc's documented "no purging".
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    debug_assert_eq!(
        unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
        -1
    );
}
