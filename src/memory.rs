//! Giving freed memory back to the system.
//!
//! A sync or a push verifies a whole snapshot and builds the new path table
//! on a blocking thread, then frees the temporaries and the old snapshot's
//! table. glibc keeps the freed pages of that thread's arena (it returns only
//! the top of a heap, and the freed chunks sit between live ones), so a mirror
//! of the Rust documentation idled at 45 MiB of which 25 MiB was free memory
//! held for nothing (`bench/mirror.sh`, BENCHMARKS.md). `malloc_trim` hands
//! those pages back. Elsewhere (musl, the BSDs, macOS) this does nothing: their
//! allocators return memory on their own terms.

/// Returns the allocator's free pages to the system. Costs a walk of the
/// free lists (milliseconds for a mirror's heap): call it after large, rare
/// work, not per request.
#[allow(unsafe_code)] // with tune_for_daemon, the crate's only exceptions to `deny(unsafe_code)`
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own free
    // lists under its arena locks; glibc documents it as safe to call from any
    // thread at any time (MT-Safe).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// For a long-running daemon: at most one allocator arena per core (glibc
/// makes up to eight per core, one per thread that meets contention, and
/// each keeps what its threads freed), and allocations of 128 KiB or more
/// in their own mappings, returned to the system when freed (glibc's default
/// raises that threshold to the largest block freed so far, up to 32 MiB, so
/// a page body or a snapshot listing once freed then stays in a heap). A
/// mirror of the Rust docs at rest: 25 → 20 MiB; its peak while serving
/// every page in turn: 78 → 37 MiB (BENCHMARKS.md). Call before starting
/// threads.
#[allow(unsafe_code)] // see release_free_memory
pub fn tune_for_daemon() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4) as libc::c_int;
        // SAFETY: mallopt takes two integers and only sets glibc's own
        // parameters; called before the daemon starts its threads. A refused
        // setting (return 0) leaves glibc's default, which is only slower to
        // give memory back.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}
