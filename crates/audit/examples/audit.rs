//! A standalone `orchestra audit` for benchmarks and local runs without the full CLI:
//! `cargo run --release -p orchestra-audit --example audit -- [PATH] [--format json]`.

use clap::Parser;
use orchestra_audit::cli::{AuditArgs, run_audit};

// The allocator of the `orchestra` binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `orchestra audit`, standalone.
#[derive(Parser)]
#[command(name = "orchestra-audit")]
struct Cli {
    #[command(flatten)]
    args: AuditArgs,
}

fn main() {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match run_audit(&cli.args, &mut out) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
