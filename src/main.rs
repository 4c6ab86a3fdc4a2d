//! The `warden` command line: parse arguments, load options, set up
//! logging, run until a signal.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use warden::config::Options;
use warden::server::Server;

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "A security-focused broker for the NATS protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (the default when no command is given).
    Serve(ServeArgs),
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Client listen address, HOST:PORT (default 127.0.0.1:4222).
    #[arg(long, short = 'l')]
    listen: Option<String>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs {
        log_level: "info".into(),
        ..Default::default()
    })) {
        Command::Serve(args) => serve(args),
    }
}

fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Applies `--listen HOST:PORT` over the options.
fn apply_listen(opts: &mut Options, listen: &str) -> Result<(), String> {
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| format!("--listen {listen:?}: expected HOST:PORT"))?;
    opts.port = port
        .parse()
        .map_err(|_| format!("--listen {listen:?}: {port:?} is not a port number"))?;
    if !host.is_empty() {
        opts.host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
    }
    Ok(())
}

fn serve(args: ServeArgs) -> ExitCode {
    init_logging(&args.log_level);
    let mut opts = Options::default();
    if let Some(listen) = &args.listen {
        if let Err(msg) = apply_listen(&mut opts, listen) {
            error!("{msg}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match Server::start(opts).await {
            Ok(server) => server,
            Err(err) => {
                error!(error = %err, "cannot start the server");
                return ExitCode::FAILURE;
            }
        };
        wait_for_signal().await;
        info!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Waits for Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
