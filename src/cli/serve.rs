//! Serving: nats-server's flags over the config file, logging, the pid and
//! ports files, then the signals until the end.
//!
//! Signals, as nats-server: SIGINT stops promptly (flushing what is queued);
//! SIGUSR2 enters lame duck mode; SIGHUP reloads the config file (and
//! applies the flags over it again); SIGUSR1 reopens the log file. SIGTERM
//! also enters lame duck (nats-server shuts down at once and exits 1; see
//! SECURITY.md); during lame duck SIGTERM and SIGUSR2 are ignored and SIGINT
//! cuts it short.

use std::process::ExitCode;

use tracing::{error, info, warn};
use warden::config::flags::{self, Flags, TLS_USAGE, USAGE};
use warden::config::{self, Loaded, Options, RestartOnly};
use warden::proto::{NATS_VERSION, WARDEN_VERSION};
use warden::server::ReloadCause;
use warden::server::Server;
use warden::system::{ReloadRequest, ReloadRequests};

use super::files::{Bound, RunFiles};
use super::logging::{self, LogFile, Rotation, Sink};
use super::signal;
use super::syslog::Syslog;

/// What the config file and the flags make, with the file's warnings.
fn options(flags: &Flags) -> Result<Loaded, String> {
    let mut loaded = match &flags.config {
        Some(path) => config::load_file(path).map_err(|e| e.to_string())?,
        None => Loaded { options: Options::default(), warnings: Vec::new(), restart_only: Default::default() },
    };
    flags.apply(&mut loaded.options).map_err(|e| e.to_string())?;
    Ok(loaded)
}

fn version_line(program: &str) -> String {
    if program.contains("nats-server") {
        format!("{program}: v{NATS_VERSION} (warden {WARDEN_VERSION})")
    } else {
        format!("{program} {WARDEN_VERSION} (speaks nats-server v{NATS_VERSION})")
    }
}

const TOOLS_USAGE: &str = "
warden tools (not as nats-server):
    warden check -c <file>           Check a config file and print a summary
    warden passwd                    Hash a password for the config (argon2id)
    warden certs generate            Development CA, server and client certificates
    warden bench <mode>              Benchmark any NATS server
    warden reload --pid <pid>        Ask a running server to reload its config
    warden nkey generate|public      Make an nkey pair, or the public key of a seed
    warden completions <shell>       Shell completions (bash, zsh, fish, elvish, powershell)
    warden man                       The man page (roff: warden man | man -l -)
";

/// `warden [flags]`, `warden serve [flags]`, or `nats-server [flags]`.
pub fn main(args: &[String], program: &str) -> ExitCode {
    let flags = match flags::parse(args) {
        Ok(flags) => flags,
        Err(err) => {
            eprintln!("{program}: {err} (run with -h for the flags)");
            return ExitCode::FAILURE;
        }
    };
    if flags.help {
        print!("{USAGE}");
        if !program.contains("nats-server") {
            print!("{TOOLS_USAGE}");
        }
        return ExitCode::SUCCESS;
    }
    if flags.help_tls {
        print!("{TLS_USAGE}");
        return ExitCode::SUCCESS;
    }
    if flags.version {
        println!("{}", version_line(program));
        return ExitCode::SUCCESS;
    }
    if let Some(spec) = &flags.signal {
        return match signal::send(spec, program) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{program}: {err}");
                ExitCode::FAILURE
            }
        };
    }
    if flags.test_config {
        return test_config(&flags, program);
    }
    serve(&flags, program)
}

/// `-t`: every start-up check, then exit (nats-server's message on success).
fn test_config(flags: &Flags, program: &str) -> ExitCode {
    let Some(path) = &flags.config else {
        eprintln!("{program}: must specify [-c, --config] option to check configuration file syntax");
        return ExitCode::FAILURE;
    };
    let loaded = match options(flags) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    match warden::server::check(&loaded.options) {
        Ok(more) => {
            for warning in loaded.warnings.iter().chain(&more) {
                eprintln!("warning: {warning}");
            }
            println!("{program}: configuration file {} is valid", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Says why the server does not start: in the log, and on standard error
/// too when the log is a file (which a test harness may already have
/// deleted, or an operator not yet found).
fn refuse_to_start(program: &str, sink: &Sink, why: &str) {
    if !matches!(sink, Sink::Stderr) {
        eprintln!("{program}: refusing to start: {why}");
    }
    if !logging::is_initialized() {
        logging::init("info", true, false, sink.clone());
    }
    error!("refusing to start: {why}");
}

/// Opens where the log goes: `log_file`, else a syslog daemon, else
/// standard error. A file that cannot be opened or a daemon that cannot be
/// reached stops the start, as in nats-server.
fn open_sink(opts: &Options, program: &str) -> Result<Sink, String> {
    if let Some(path) = &opts.log_file {
        let rotation = Rotation { size_limit: opts.log_size_limit, max_num: opts.log_max_num, private: false };
        return LogFile::open(path, rotation)
            .map(Sink::File)
            .map_err(|err| format!("cannot open log file {}: {err}", path.display()));
    }
    match opts.syslog_target() {
        Some(target) => Syslog::connect(&target, program)
            .map(Sink::Syslog)
            .map_err(|err| format!("cannot connect to syslog at {target}: {err}")),
        None => Ok(Sink::Stderr),
    }
}

fn log_level(flags: &Flags, opts: &Options) -> String {
    match &flags.log_level {
        Some(level) => level.clone(),
        None if opts.trace => "trace".into(),
        None if opts.debug => "debug".into(),
        None => "info".into(),
    }
}

fn serve(flags: &Flags, program: &str) -> ExitCode {
    let loaded = match options(flags) {
        Ok(loaded) => loaded,
        Err(err) => {
            // The config could not be read, so neither could its log_file;
            // `-l` still names one, and a harness that reads it (or deletes
            // it and reads standard error) learns why either way.
            let log_file = flags.log_file.as_deref().and_then(|path| LogFile::open(path, Rotation::default()).ok());
            refuse_to_start(program, &log_file.map_or(Sink::Stderr, Sink::File), &err.to_string());
            return ExitCode::FAILURE;
        }
    };
    let mut opts = loaded.options;
    let level = log_level(flags, &opts);
    // `--log-level trace` asks for the protocol trace too, as `-V` does.
    opts.trace |= level.eq_ignore_ascii_case("trace");
    let sink = match open_sink(&opts, program) {
        Ok(sink) => sink,
        Err(err) => {
            eprintln!("{program}: {err}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(&level, opts.logtime, opts.log_json, sink.clone());
    info!(
        version = warden::proto::WARDEN_VERSION,
        nats_version = warden::proto::NATS_VERSION,
        pid = std::process::id(),
        "Starting {program}"
    );
    if let Some(path) = &flags.config {
        info!("Using configuration file: {}", path.display());
    }
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    if let Some(dir) = &flags.store_dir {
        info!(dir = %dir.display(), "--store_dir ignored: JetStream is not supported");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(flags, opts, &loaded.restart_only, &sink, program));
    if let Sink::Syslog(syslog) = &sink {
        // The last lines (why it stopped) should reach the daemon.
        syslog.flush(SYSLOG_FLUSH);
    }
    code
}

/// How long the exit waits for queued syslog lines.
const SYSLOG_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

async fn run(flags: &Flags, opts: Options, restart_only: &RestartOnly, sink: &Sink, program: &str) -> ExitCode {
    let (pid_file, ports_dir) = (opts.pid_file.clone(), opts.ports_file_dir.clone());
    let client_tls = opts.tls.as_ref().is_some_and(|t| !t.allow_non_tls);
    let https = opts.http.as_ref().is_some_and(|h| h.tls);
    let route_tls = opts.cluster.as_ref().is_some_and(|c| c.tls.is_some());
    let ws_tls = opts.websocket.as_ref().is_some_and(|w| w.tls.is_some());
    let mut server = match Server::start(opts).await {
        Ok(server) => server,
        Err(err) => {
            refuse_to_start(program, sink, &err.to_string());
            return ExitCode::FAILURE;
        }
    };
    let bound = Bound {
        client: (server.local_addr(), client_tls),
        monitoring: server.monitor_addr().map(|a| (a, https)),
        cluster: server.cluster().map(|c| (c.listen_addr, route_tls)),
        websocket: server.websocket_addr().map(|a| (a, ws_tls)),
    };
    let _files = match RunFiles::write(pid_file.as_deref(), ports_dir.as_deref(), program, &bound) {
        Ok(files) => files,
        Err(err) => {
            error!("cannot write the pid or ports file: {err}");
            server.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    let reloads = server.take_reload_requests();
    match run_until_stopped(&server, flags, restart_only, sink.file(), reloads).await {
        Stop::Interrupt => {
            info!("shutting down");
            server.shutdown().await;
        }
        Stop::LameDuck => lame_duck(server).await,
    }
    ExitCode::SUCCESS
}

/// How the server was asked to stop.
enum Stop {
    /// SIGINT (Ctrl-C): shut down promptly, flushing what is queued.
    Interrupt,
    /// SIGUSR2 or SIGTERM: lame duck first, then shut down.
    LameDuck,
}

/// Lame duck until done; a SIGINT meanwhile turns it into a prompt shutdown.
/// SIGTERM and SIGUSR2 are ignored meanwhile, as nats-server does (the
/// chart's preStop starts lame duck, then the kubelet sends SIGTERM).
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

/// Serves until SIGINT, SIGTERM or SIGUSR2; reloads on SIGHUP and on a
/// system user's `RELOAD` request (a config that fails to load or check is
/// refused and the running one stays); reopens the log file on SIGUSR1.
async fn run_until_stopped(
    server: &Server,
    flags: &Flags,
    restart_only: &RestartOnly,
    log_file: Option<&LogFile>,
    mut reloads: Option<ReloadRequests>,
) -> Stop {
    use tokio::signal::unix::{signal, SignalKind};
    let signals = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    );
    let (Ok(mut term), Ok(mut hup), Ok(mut usr1), Ok(mut usr2)) = signals else {
        error!("cannot install signal handlers; only Ctrl-C stops the server");
        let _ = tokio::signal::ctrl_c().await;
        return Stop::Interrupt;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Stop::Interrupt,
            _ = term.recv() => return Stop::LameDuck,
            _ = usr2.recv() => return Stop::LameDuck,
            _ = usr1.recv() => reopen(log_file),
            _ = hup.recv() => {
                let _ = reload(server, flags, restart_only, ReloadCause::Signal);
            }
            Some(request) = next_reload(&mut reloads) => {
                let cause = ReloadCause::SystemRequest { requester: request.requester };
                let _ = request.done.send(reload(server, flags, restart_only, cause));
            }
        }
    }
}

fn reopen(log_file: Option<&LogFile>) {
    let Some(file) = log_file else {
        info!("SIGUSR1: no log file to reopen");
        return;
    };
    match file.reopen() {
        Ok(()) => info!(path = %file.path().display(), "log file reopened"),
        Err(err) => error!(path = %file.path().display(), "cannot reopen the log file: {err}"),
    }
}

async fn next_reload(reloads: &mut Option<ReloadRequests>) -> Option<ReloadRequest> {
    match reloads {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Reloads the config file for `cause`; whether the new config was
/// applied, or why not. A file that changes an option only a restart
/// applies (`restart_only` is the running file's) is refused whole, as
/// nats-server refuses it. Every outcome is on the audit trail.
fn reload(server: &Server, flags: &Flags, restart_only: &RestartOnly, cause: ReloadCause) -> Result<(), String> {
    if flags.config.is_none() {
        warn!("reload ignored: the server was started without a config file");
        return Err("the server was started without a config file".to_owned());
    }
    let refused = |why: String| {
        error!("reload refused, keeping the running config: {why}");
        server.reload_refused(cause.clone(), why.clone());
        Err(why)
    };
    let loaded = match options(flags) {
        Ok(loaded) => loaded,
        Err(err) => return refused(err.to_string()),
    };
    if let Some(why) = restart_only.refuse_change_to(&loaded.restart_only) {
        return refused(why.to_string());
    }
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let mut options = loaded.options;
    let level = log_level(flags, &options);
    options.trace |= level.eq_ignore_ascii_case("trace");
    // The filter changes first: a connection traced from the moment the
    // reload says so must find its trace lines let through.
    let previous =
        logging::set_level(&level).map_err(|err| error!("reload: the log level stays as it was: {err}")).ok();
    match server.reload_by(&options, cause.clone()) {
        Ok(warnings) => {
            warnings.iter().for_each(|w| warn!("{w}"));
            Ok(())
        }
        Err(err) => {
            if let Some(Err(restore)) = previous.as_deref().map(logging::set_level) {
                error!("reload: the log level could not go back to what it was: {restore}");
            }
            error!("reload refused, keeping the running config: {err}");
            Err(err.to_string())
        }
    }
}
