//! `switchyard serve|check|status`.

mod cmd;
mod config;
mod docker_api;
mod driver;
mod engine_probe;
mod logging;
mod metrics;
mod routes;

use clap::{Parser, Subcommand};
use config::Settings;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Switchyard: one Docker network driver plugin, many dataplanes (macvlan, ipvlan, vxlan)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the plugin: serve the driver on the configured socket.
    Serve {
        /// TOML config file (default: /etc/switchyard/switchyard.toml if it exists, else built-in defaults).
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate a config file and explain the settings it results in.
    Check {
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check this host as a support engineer would: kernel features, parents,
    /// the plugin, dockerd, etcd. Each finding says what to do.
    Doctor {
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
        /// dockerd's API socket (default: [plugin] docker_socket).
        #[arg(long)]
        docker_socket: Option<PathBuf>,
    },
    /// List networks and endpoints: from the running plugin, else from the state file.
    Status {
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn load(config: Option<PathBuf>) -> Result<(Settings, Option<PathBuf>), String> {
    let path = config::resolve_path(config.as_deref());
    Ok((Settings::load(path.as_deref())?, path))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve { config } => load(config).and_then(|(s, p)| cmd::serve::run(s, p)),
        Command::Check { config } => {
            load(config).and_then(|(s, p)| cmd::check::check(&s, p.as_deref()))
        }
        Command::Doctor {
            config,
            docker_socket,
        } => load(config).and_then(|(s, _)| {
            let api = docker_socket.unwrap_or_else(|| s.plugin.docker_socket.clone());
            cmd::doctor::doctor(&s, &api)
        }),
        Command::Status { config, json } => {
            load(config).and_then(|(s, _)| cmd::status::status(&s, json))
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e}");
            ExitCode::FAILURE
        }
    }
}
