//! The `tidelog` binary: parse the CLI, load the config, install telemetry, run the broker; or
//! run an admin command (`tool`). Nothing else happens here; `app` is the composition root.

use std::io::Write as _;

use anyhow::Context as _;
use clap::Parser as _;
use tidelog::cli::{Cli, Command};
use tidelog::{app, config, telemetry, tool};

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().into_command();
    let args = match &command {
        Command::Serve(args) | Command::CheckConfig(args) => args,
        Command::Tool(tool_command) => {
            if let Err(error) = tool::run(tool_command) {
                eprintln!("error: {error:#}");
                std::process::exit(1);
            }
            return Ok(());
        }
    };
    let config =
        config::load(args.config_path(), &args.overrides()).context("loading the config")?;
    match command {
        Command::CheckConfig(_) => {
            std::io::stdout()
                .write_all(config.redacted_yaml().as_bytes())
                .context("writing the resolved config")?;
            Ok(())
        }
        Command::Serve(_) => {
            let exporter = telemetry::init(
                config.telemetry_filter(),
                config.telemetry_format(),
                config.otlp_endpoint(),
            )
            .context("installing telemetry")?;
            for var in config::ignored_env_vars() {
                tracing::warn!(
                    var,
                    "ignoring a Kubernetes service link variable, not a config key"
                );
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("tidelog")
                .build()
                .context("building the tokio runtime")?;
            let ran = runtime.block_on(app::run(config));
            drop(runtime);
            if let Some(exporter) = exporter {
                exporter.shutdown();
            }
            ran
        }
        Command::Tool(_) => Ok(()),
    }
}
