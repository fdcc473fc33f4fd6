//! The `aggios` binary: parse the command line, load settings, start logging,
//! hand over to the library.

// The release build computes the layout of the whole connection future (every
// middleware around every route) in one query chain, deeper than the default.
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

/// Each thread's stack. A debug build's async frames are large (a resolver
/// that matches every mutation field holds all their locals), and a deep
/// request runs to over a megabyte there; release frames are a fraction of
/// that. The space is reserved, not touched, unless a request needs it.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

fn main() -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(THREAD_STACK_BYTES).build() {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("aggios: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
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
    let traces = match telemetry::init_with_traces(settings.log_format(), &settings.log.level, std::io::stderr, &settings.tracing) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("aggios: cannot start logging: {e:#}");
            return ExitCode::from(2);
        }
    };
    let code = match cli::run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = ?e, "aggios stopped");
            eprintln!("aggios: {e:#}");
            ExitCode::FAILURE
        }
    };
    // After the server has stopped: every request's spans have ended.
    traces.flush().await;
    code
}
