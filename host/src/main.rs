//! The `postern` binary: everything lives in the library; this only hands the
//! command line to [`postern::cli::main`] and turns its result into an exit code.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    postern::cli::main()
}
