//! The `aggios` binary: parse the command line, load settings, start logging,
//! hand over to the library.

use std::process::ExitCode;

use aggios::{
    cli::{self, Cli},
    config::Settings,
    telemetry,
};
use clap::Parser as _;

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
