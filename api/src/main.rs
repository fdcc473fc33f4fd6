//! The `aggios` binary: parse the command line, load settings, start logging,
//! hand over to the library.

// The layout of the connection's future (every middleware's around the
// routes) nests past rustc's default depth of 128 in release builds.
#![recursion_limit = "256"]

use std::process::ExitCode;

use aggios::{
    cli::{self, Cli},
    config::Settings,
    telemetry,
};
use clap::Parser as _;

/// mimalloc gives freed memory back to the system within milliseconds.
/// With glibc's allocator, each blocking thread that hashed a password kept
/// its 19 MiB argon2 buffer in a per-thread arena: 200 wrong sign-ins took a
/// fresh server from 49 to 262 MiB, and it stayed there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = if cli.command.needs_settings() {
        match Settings::load(cli.config.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("aggios: configuration error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        Settings::default()
    };
    if let Err(e) = telemetry::init(settings.log_format(), &settings.log.level, std::io::stderr) {
        eprintln!("aggios: cannot start logging: {e}");
        return ExitCode::from(2);
    }
    match cli::run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = ?e, "aggios stopped");
            eprintln!("aggios: {e:#}");
            ExitCode::FAILURE
        }
    }
}
