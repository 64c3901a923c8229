//! The `netscript` command: `run`, and the other subcommands in `cli/`.

mod cli;

/// Scripts allocate and free small values (arrays, blobs, boxed `Dynamic`s)
/// on nearly every operation; mimalloc's per-thread free lists make that a
/// fraction of glibc malloc's cost (`bench/README.md` has the figures).
/// Only the binary sets it: programs embedding the library keep their own.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// mimalloc as the global allocator. Written here rather than taken from the
/// `mimalloc` crate, whose allocator calls the `_aligned` entry points for
/// every layout: they check the alignment again on each call, which costs a
/// script a tenth of its allocation time. Layouts that ask for no more than
/// the word alignment `mi_malloc` gives every block go to the plain entry
/// points, as Rust's own `System` allocator does with malloc.
struct MiMalloc;

/// The alignment `mi_malloc` gives every block, whatever its size.
const WORD: usize = size_of::<usize>();

const fn plain(align: usize) -> bool {
    align <= WORD
}

// SAFETY: every pointer comes from mimalloc and goes back to it; the plain
// entry points are used only for layouts whose alignment they guarantee.
unsafe impl std::alloc::GlobalAlloc for MiMalloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_malloc, mi_malloc_aligned};
        // SAFETY: as for the impl.
        unsafe {
            if plain(layout.align()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};
        // SAFETY: as for the impl.
        unsafe {
            if plain(layout.align()) {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: as for the impl.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        use libmimalloc_sys::{mi_realloc, mi_realloc_aligned};
        // SAFETY: as for the impl; the new layout keeps the old alignment.
        unsafe {
            if plain(layout.align()) {
                mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

fn main() {
    std::process::exit(cli::main());
}
