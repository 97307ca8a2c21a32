//! `booflow`: run Claude Code–format workflow scripts in a sandbox against a pool of coding
//! agents (docs/DESIGN.md §6).

mod cli;
mod loader;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let telemetry = telemetry::init();
    let code = run(args);
    // Spans still buffered are exported before the process exits (docs/DESIGN.md §6).
    telemetry.shutdown();
    code
}

fn run(args: cli::Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(cli::dispatch(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    // The runtime's tasks end before the spans are flushed.
    drop(runtime);
    code
}
