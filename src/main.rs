//! The `nudge` binary: see [`nudge::cli`].

fn main() -> std::process::ExitCode {
    nudge::cli::main()
}
