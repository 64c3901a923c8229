//! The `netscript` command: `run`, and the other subcommands in `cli/`.

mod cli;

/// Scripts allocate and free small values (arrays, blobs, boxed `Dynamic`s)
/// on nearly every operation; mimalloc's per-thread free lists make that a
/// fraction of glibc malloc's cost (`bench/README.md` has the figures).
/// Only the binary sets it: programs embedding the library keep their own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
