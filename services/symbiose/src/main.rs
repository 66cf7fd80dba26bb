//! `symbiose`: with no subcommand (or `serve`) it runs the standalone server; the other
//! subcommands are a client of a running server. Called by the name of a service alone's
//! binary (`symbiose-passports`, a link to it in the image), it runs that service.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use symbiose::cli::{Cli, Command};
use symbiose_kit::{Listeners, ServerConfig};

/// mimalloc: a rebuild folds millions of events on several threads, and rebuilds about a
/// fifth faster with it than with the system allocator (docs/benchmarks.md, the catalog).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let called = std::env::args_os().next().map(std::path::PathBuf::from);
    let name = called.as_deref().and_then(std::path::Path::file_name).and_then(|name| name.to_str());
    if let Some(binary) = name.filter(|name| symbiose::alone::BINARIES.contains(name)) {
        return match symbiose::alone::main(binary).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("Error: {error:?}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve) => match serve().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
        Some(_) => symbiose::cli::run(cli).await,
    }
}

async fn serve() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().context("reading the configuration")?;
    // Kept to the end: dropping it flushes the traces not yet exported.
    let _telemetry = symbiose_kit::telemetry::init(&config)?;
    let listeners = Listeners::bind_with_web(&config).await?;
    symbiose::run(config, listeners, symbiose_kit::server::shutdown_signal()).await
}
