//! The `nudge` command line: wiring only (see `cli`), over `nudge-core` and `nudge-local`.

mod cli;

/// mimalloc: the simulation allocates and frees many small strings and maps on several
/// threads; it made `nudge simulate` about 15% faster than the system allocator (see
/// docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
