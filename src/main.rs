//! The `warden` command line. Started with no arguments, with flags, or as
//! `nats-server`, it is the broker and takes nats-server's flags
//! (`cli::serve`); otherwise the first argument names a tool (`check`,
//! `passwd`, `certs`, `bench`, `reload`, `nkey`, `completions`, `man`). The
//! work is done by the library.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use warden::config;
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
    command: Command,
}

/// The tools; serving is `warden [flags]` or `warden serve [flags]`.
#[derive(Subcommand)]
enum Command {
    /// Check a config file: parse it, load every file it names, print a summary.
    Check {
        /// The config file.
        #[arg(long, short = 'c')]
        config: PathBuf,
        /// Instead of the summary, show what publishing on SUBJECT maps to
        /// (each destination with its weight), like `nats server mapping`.
        #[arg(long, value_name = "SUBJECT")]
        map: Vec<String>,
        /// The account whose mappings `--map` uses (default: the global
        /// account `$G`, the top-level `mappings`).
        #[arg(long, value_name = "NAME", requires = "map")]
        account: Option<String>,
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
    /// NKeys: make a key pair, or derive a public key from a seed.
    Nkey {
        #[command(subcommand)]
        command: NkeyCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; `warden man | man -l -`).
    Man,
}

#[derive(Subcommand)]
enum NkeyCommand {
    /// Make a key pair: prints the seed (unless --out) and the public key.
    Generate {
        /// user, account, operator, server, cluster, or curve (an xkey).
        #[arg(long = "type", default_value = "user")]
        kind: String,
        /// Write the seed to this file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the public key of a seed read from a file or standard input.
    Public {
        /// The file holding the seed (default: standard input).
        #[arg(long)]
        seed_file: Option<PathBuf>,
    },
}

/// First arguments that name a tool rather than a broker flag.
const TOOLS: &[&str] = &["check", "passwd", "reload", "bench", "certs", "nkey", "completions", "man"];

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
        /// Replace existing files. Without it nothing is written if one
        /// exists: a new CA breaks every certificate the old one signed.
        #[arg(long)]
        force: bool,
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

fn main() -> ExitCode {
    // Arguments that are not UTF-8 are read lossily (and then refused as
    // unknown), never a panic.
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let program = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map_or_else(|| "warden".to_owned(), |n| n.to_string_lossy().into_owned());
    let rest = args.get(1..).unwrap_or_default();
    let as_nats_server = program.contains("nats-server");
    match rest.first().map(String::as_str) {
        Some("serve") if !as_nats_server => cli::serve::main(rest.get(1..).unwrap_or_default(), &program),
        Some(tool) if !as_nats_server && TOOLS.contains(&tool) => tool_main(Cli::parse_from(&args).command),
        _ => cli::serve::main(rest, &program),
    }
}

fn tool_main(command: Command) -> ExitCode {
    match command {
        Command::Check { config, map, account } => check(&config, &map, account.as_deref()),
        Command::Passwd => passwd(),
        Command::Reload { pid } => reload(pid),
        Command::Bench(args) => bench(args),
        Command::Certs { command: CertsCommand::Generate { out, hosts, clients, force } } => {
            certs(tls::GenerateOptions { out, hosts, clients, force })
        }
        Command::Nkey { command: NkeyCommand::Generate { kind, out } } => nkey_generate(&kind, out.as_deref()),
        Command::Nkey { command: NkeyCommand::Public { seed_file } } => nkey_public(seed_file.as_deref()),
        Command::Completions { shell } => {
            cli::manual::completions(shell, whole_command(), &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => match cli::manual::man(whole_command(), &mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("cannot write the man page: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The tools and the server's flags together, for completions and the man page.
fn whole_command() -> clap::Command {
    cli::manual::command(<Cli as clap::CommandFactory>::command())
}

fn nkey_generate(kind: &str, out: Option<&Path>) -> ExitCode {
    use warden::nkeys::{CurveKeyPair, KeyPair, KeyType};
    // A curve key (X...) is not an Ed25519 key: it encrypts (auth callout's xkey).
    let (seed, public) = if kind == "curve" {
        let pair = CurveKeyPair::generate();
        (pair.seed(), pair.public().as_str().to_owned())
    } else {
        let Some(kind) = KeyType::from_name(kind) else {
            eprintln!("unknown key type {kind:?}: use user, account, operator, server, cluster or curve");
            return ExitCode::FAILURE;
        };
        match KeyPair::generate(kind) {
            Ok(pair) => (pair.seed(), pair.public().to_string()),
            Err(err) => {
                eprintln!("cannot make a key pair: {err}");
                return ExitCode::FAILURE;
            }
        }
    };
    match out {
        Some(path) => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| writeln!(f, "{}", seed.expose()));
            if let Err(err) = written {
                eprintln!("cannot write the seed to {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("seed written to {} (mode 0600)", path.display());
        }
        None => println!("{}", seed.expose()),
    }
    println!("{public}");
    ExitCode::SUCCESS
}

fn nkey_public(seed_file: Option<&Path>) -> ExitCode {
    let text = match seed_file {
        Some(path) => std::fs::read_to_string(path),
        None => std::io::read_to_string(std::io::stdin()),
    };
    let text = match text {
        Ok(text) => text,
        Err(err) => {
            eprintln!("cannot read the seed: {err}");
            return ExitCode::FAILURE;
        }
    };
    // A .creds file or a seed alone: the first line that parses as a seed.
    match text.lines().find_map(|line| warden::nkeys::KeyPair::from_seed(line.trim()).ok()) {
        Some(pair) => {
            println!("{}", pair.public());
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("no nkey seed found");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path, map: &[String], account: Option<&str>) -> ExitCode {
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
    let described = warden::server::effective_options(&loaded.options).unwrap_or(loaded.options);
    if !map.is_empty() {
        return show_mappings(&described, map, account);
    }
    print!("{}", config::summary(&described));
    println!("{}: configuration is valid", path.display());
    ExitCode::SUCCESS
}

/// `warden check --map`: what each subject maps to in `account`, on this
/// server's cluster. A `{{random(n)}}` token is shown as `n - 1`.
fn show_mappings(opts: &config::Options, subjects: &[String], account: Option<&str>) -> ExitCode {
    let name = account.unwrap_or(config::GLOBAL_ACCOUNT);
    let rules = match opts.accounts.iter().find(|a| a.name == name) {
        Some(a) => &a.mappings,
        None if name == config::GLOBAL_ACCOUNT => &opts.mappings,
        None => {
            eprintln!("no account {name:?} in the config");
            return ExitCode::FAILURE;
        }
    };
    let cluster = opts.cluster.as_ref().and_then(|c| c.name.as_deref());
    let mappings = match warden::subject::Mappings::compile(rules, cluster) {
        Ok(m) => m,
        Err((_, err)) => {
            eprintln!("account {name:?}: {err}");
            return ExitCode::FAILURE;
        }
    };
    for subject in subjects {
        if !warden::subject::is_valid_literal(subject.as_bytes()) {
            eprintln!("{subject:?} is not a subject one can publish on");
            return ExitCode::FAILURE;
        }
        let Some(described) = mappings.as_ref().and_then(|m| m.describe(subject.as_bytes())) else {
            println!("{subject} (account {name}): not mapped");
            continue;
        };
        println!("{subject} (account {name}) by mapping {:?}:", described.source);
        let mut total = 0u32;
        for choice in described.choices {
            let (dest, weight) = (choice.dest, choice.weight);
            total += u32::from(weight);
            let to = match choice.subject {
                Some(to) if warden::subject::is_valid_literal(&to) => String::from_utf8_lossy(&to).into_owned(),
                Some(to) => format!("{} (not a valid subject: refused)", String::from_utf8_lossy(&to)),
                None => format!("{subject} (unchanged)"),
            };
            println!("  {weight:>3}%  {to}  <- {dest}");
        }
        if total < 100 {
            println!("  {:>3}%  dropped", 100 - total);
        }
    }
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

/// SIGHUP through `-sl`'s checks: a pid in range, a server's process.
fn reload(pid: u32) -> ExitCode {
    match cli::signal::send(&format!("reload={pid}"), "warden") {
        Ok(()) => {
            println!("asked process {pid} to reload its config");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot signal process {pid}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn certs(opts: tls::GenerateOptions) -> ExitCode {
    match tls::generate(&opts) {
        Ok(made) if made.files.is_empty() => {
            println!("{} already holds every certificate and key asked for; nothing written", opts.out.display());
            ExitCode::SUCCESS
        }
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
