//! The `postern` binary: everything lives in the library; this only hands the
//! command line to [`postern::cli::main`] and turns its result into an exit code.

fn main() -> std::process::ExitCode {
    postern::cli::main()
}
