//! The `warden` command line: parse arguments, load and check the config,
//! set up logging, run until a signal. The work is done by the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use warden::config::{self, Options};
use warden::server::Server;
use warden::tls;

/// jemalloc instead of glibc's malloc: glibc kept freed memory (340 MiB
/// after a connection with 400,000 subscriptions closed), jemalloc's
/// background thread gives it back (see `.cargo/config.toml` for its options).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "warden", version, about = "A security-focused broker for the NATS protocol")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (the default when no command is given).
    Serve(ServeArgs),
    /// Check a config file: parse it, load every file it names, print a summary.
    Check {
        /// The config file.
        #[arg(long, short = 'c')]
        config: PathBuf,
    },
    /// Hash a password for the config (argon2id PHC string). Reads it
    /// without echo from a terminal, or one line from standard input.
    Passwd,
    /// Ask a running server to reload its config (sends it SIGHUP).
    Reload {
        /// Process id of the server.
        #[arg(long)]
        pid: u32,
    },
    /// Benchmark any NATS server (warden or nats-server).
    Bench(BenchArgs),
    /// Development certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a development CA, a server certificate and client certificates.
    Generate {
        /// Output directory.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// Server host name or IP address (repeatable).
        #[arg(long = "host", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        hosts: Vec<String>,
        /// Client certificate to issue, by user name (repeatable).
        #[arg(long = "client")]
        clients: Vec<String>,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// pub, sub, pubsub, queue or reqrep.
    mode: String,
    /// Server for publishers and the requester.
    #[arg(long, short = 's', default_value = "nats://127.0.0.1:4222")]
    server: String,
    /// Server for subscribers and the responder (default: --server), e.g.
    /// another node of a cluster.
    #[arg(long)]
    sub_server: Option<String>,
    /// Messages (or requests) in all.
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    msgs: u64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 16)]
    size: usize,
    /// Publisher connections.
    #[arg(long, default_value_t = 1)]
    pubs: usize,
    /// Subscriber connections.
    #[arg(long, default_value_t = 1)]
    subs: usize,
    /// Subject.
    #[arg(long, default_value = "bench.test")]
    subject: String,
    /// CA certificate to trust (turns on TLS).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// User name.
    #[arg(long)]
    user: Option<String>,
    /// Password.
    #[arg(long)]
    pass: Option<String>,
    /// Upper bound on the run, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Config file in the nats-server format.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Client listen address, HOST:PORT (overrides the config).
    #[arg(long, short = 'l')]
    listen: Option<String>,
    /// Monitoring listen address, HOST:PORT or :PORT (overrides the config's http/https).
    #[arg(long)]
    http: Option<String>,
    /// Log level: error, warn, info, debug or trace (default info, or the config's debug/trace).
    #[arg(long)]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args),
        Command::Check { config } => check(&config),
        Command::Passwd => passwd(),
        Command::Reload { pid } => reload(pid),
        Command::Bench(args) => bench(args),
        Command::Certs { command: CertsCommand::Generate { out, hosts, clients } } => {
            certs(tls::GenerateOptions { out, hosts, clients })
        }
    }
}

fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Applies `--listen HOST:PORT` over the options.
fn apply_listen(opts: &mut Options, listen: &str) -> Result<(), String> {
    let (host, port) = listen.rsplit_once(':').ok_or_else(|| format!("--listen {listen:?}: expected HOST:PORT"))?;
    opts.port = port.parse().map_err(|_| format!("--listen {listen:?}: {port:?} is not a port number"))?;
    if !host.is_empty() {
        opts.host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    }
    Ok(())
}

/// Applies `--http HOST:PORT` (or `:PORT`, on 127.0.0.1) over the options;
/// it keeps the config's `https` choice.
fn apply_http(opts: &mut Options, http: &str) -> Result<(), String> {
    let (host, port) = http.rsplit_once(':').ok_or_else(|| format!("--http {http:?}: expected HOST:PORT"))?;
    let port = port.parse().map_err(|_| format!("--http {http:?}: {port:?} is not a port number"))?;
    let host = match host.trim_start_matches('[').trim_end_matches(']') {
        "" => "127.0.0.1".to_string(),
        h => h.to_string(),
    };
    let tls = opts.http.as_ref().is_some_and(|h| h.tls);
    opts.http = Some(config::HttpOptions { host, port, tls });
    Ok(())
}

/// Loads a config file, or the defaults without one.
fn load(path: Option<&Path>) -> Result<config::Loaded, config::ConfigError> {
    match path {
        Some(path) => config::load_file(path),
        None => Ok(config::Loaded { options: Options::default(), warnings: Vec::new() }),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let loaded = load(args.config.as_deref());
    let level = match (&args.log_level, &loaded) {
        (Some(level), _) => level.clone(),
        (None, Ok(l)) if l.options.trace => "trace".into(),
        (None, Ok(l)) if l.options.debug => "debug".into(),
        _ => "info".into(),
    };
    init_logging(&level);
    let mut loaded = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            error!("refusing to start: {err}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    if let Some(listen) = &args.listen {
        if let Err(msg) = apply_listen(&mut loaded.options, listen) {
            error!("{msg}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(http) = &args.http {
        if let Err(msg) = apply_http(&mut loaded.options, http) {
            error!("{msg}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let config_path = args.config.clone();
    runtime.block_on(async move {
        let server = match Server::start(loaded.options).await {
            Ok(server) => server,
            Err(err) => {
                error!("refusing to start: {err}");
                return ExitCode::FAILURE;
            }
        };
        match run_until_stopped(&server, config_path.as_deref()).await {
            Stop::Interrupt => {
                info!("shutting down");
                server.shutdown().await;
            }
            Stop::Terminate => lame_duck(server).await,
        }
        ExitCode::SUCCESS
    })
}

fn check(path: &Path) -> ExitCode {
    let loaded = match config::load_file(path) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let mut warnings = loaded.warnings.clone();
    match warden::server::check(&loaded.options) {
        Ok(more) => warnings.extend(more),
        Err(err) => {
            eprintln!("{}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    print!("{}", config::summary(&loaded.options));
    println!("{}: configuration is valid", path.display());
    ExitCode::SUCCESS
}

fn passwd() -> ExitCode {
    let password = match read_password() {
        Ok(p) => p,
        Err(err) => {
            eprintln!("cannot read the password: {err}");
            return ExitCode::FAILURE;
        }
    };
    match warden::auth::password::hash_password(&password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot hash the password: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Prompts twice without echo on a terminal; reads one line otherwise.
fn read_password() -> std::io::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat password: ")?;
        if first != again {
            return Err(std::io::Error::other("the passwords differ"));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn bench(args: BenchArgs) -> ExitCode {
    use warden::bench::{BenchOptions, Mode, Target};
    let mode = match args.mode.as_str() {
        "pub" => Mode::Pub,
        "sub" => Mode::Sub,
        "pubsub" => Mode::PubSub,
        "queue" => Mode::Queue,
        "reqrep" => Mode::ReqRep,
        other => {
            eprintln!("unknown mode {other:?}: use pub, sub, pubsub, queue or reqrep");
            return ExitCode::FAILURE;
        }
    };
    let target = |url: &str| Target {
        url: url.to_string(),
        ca: args.tls_ca.clone(),
        user: args.user.clone(),
        pass: args.pass.clone(),
    };
    let opts = BenchOptions {
        mode,
        publish_to: target(&args.server),
        subscribe_to: target(args.sub_server.as_deref().unwrap_or(&args.server)),
        msgs: args.msgs,
        size: args.size,
        pubs: args.pubs,
        subs: args.subs,
        subject: args.subject.clone(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        deadline: std::time::Duration::from_secs(args.timeout),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(warden::bench::run(&opts)) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("benchmark failed: {err}");
            ExitCode::FAILURE
        }
    }
}

fn reload(pid: u32) -> ExitCode {
    match std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status() {
        Ok(status) if status.success() => {
            println!("asked process {pid} to reload its config");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("cannot signal process {pid}");
            ExitCode::FAILURE
        }
    }
}

fn certs(opts: tls::GenerateOptions) -> ExitCode {
    match tls::generate(&opts) {
        Ok(made) => {
            for file in &made.files {
                println!("wrote {}", file.display());
            }
            println!("These certificates and keys are for development only; keys are mode 0600.");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot generate certificates in {}: {err}", opts.out.display());
            ExitCode::FAILURE
        }
    }
}

/// How the server was asked to stop.
enum Stop {
    /// SIGINT (Ctrl-C): shut down promptly, flushing what is queued.
    Interrupt,
    /// SIGTERM: lame duck first, then shut down.
    Terminate,
}

/// Lame duck until done; a SIGINT meanwhile turns it into a prompt shutdown.
/// Another SIGTERM is ignored, as nats-server does.
async fn lame_duck(server: Server) {
    let broker = server.broker().clone();
    let draining = server.lame_duck();
    tokio::pin!(draining);
    tokio::select! {
        _ = &mut draining => return,
        _ = tokio::signal::ctrl_c() => {
            info!("interrupted: leaving lame duck mode, shutting down now");
            broker.begin_shutdown();
        }
    }
    draining.await;
}

/// Serves until SIGINT or SIGTERM; reloads the config on SIGHUP. A config
/// that fails to load or check is refused and the running one stays.
async fn run_until_stopped(server: &Server, config: Option<&Path>) -> Stop {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        let _ = tokio::signal::ctrl_c().await;
        return Stop::Interrupt;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Stop::Interrupt,
            _ = term.recv() => return Stop::Terminate,
            _ = hup.recv() => {
                let Some(path) = config else {
                    warn!("SIGHUP ignored: the server was started without --config");
                    continue;
                };
                match config::load_file(path) {
                    Ok(loaded) => {
                        for warning in &loaded.warnings {
                            warn!("{warning}");
                        }
                        match server.reload(&loaded.options) {
                            Ok(warnings) => warnings.iter().for_each(|w| warn!("{w}")),
                            Err(err) => error!("reload refused, keeping the running config: {err}"),
                        }
                    }
                    Err(err) => error!("reload refused, keeping the running config: {err}"),
                }
            }
        }
    }
}
