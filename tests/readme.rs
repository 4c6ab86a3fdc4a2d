//! The README runs as written: every ```` ```sh ```` block in it, in order,
//! in one shell, on a fresh copy of the repository's examples, policies and
//! scripts, as a newcomer would type them on a fresh clone. A block that
//! cannot run unattended says why in a `<!-- readme-test: skip: ... -->`
//! line just above it; every other block runs, so a new block is tested
//! unless someone writes down why not.
//!
//! What stands in for what: `cargo run --release [-- ARGS]` and `warden` are
//! the binary this test suite built (as `target/release/warden` in the
//! copy), `cargo run --example NAME [-- ARGS]` its example build, and
//! `nats-server` Debian's 2.9.10 by its explicit path, unless a block puts
//! another one first on PATH (as "Replacing nats-server" does). A command
//! that starts a server (`... serve ...`, `nats-server ...`, `python3 -m
//! http.server`, the callout service) runs in the background until it says
//! it is ready; the next block that starts servers stops the ones before.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::deps;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What the log of a background command says once it serves.
const READY: &str = "Server is ready|Serving HTTP|ready: answering";

/// One ```` ```sh ```` block of the README.
struct Block {
    /// Its fence's line number, for messages.
    line: usize,
    /// Its text, without the fences and the list indentation.
    text: String,
    /// Why it is not run, if it says so.
    skip: Option<String>,
}

/// Every ```` ```sh ```` block of `readme`, with the skip reason written
/// above it.
fn sh_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines().enumerate();
    let mut above = "";
    while let Some((n, line)) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "```sh" {
            let indent = line.len() - trimmed.len();
            let mut text = String::new();
            for (_, body) in lines.by_ref() {
                if body.trim_start() == "```" {
                    break;
                }
                text.push_str(body.get(indent..).unwrap_or(body.trim_start()));
                text.push('\n');
            }
            let skip = above
                .trim()
                .strip_prefix("<!-- readme-test: skip:")
                .and_then(|r| r.strip_suffix("-->"))
                .map(|r| r.trim().to_owned());
            blocks.push(Block { line: n + 1, text, skip });
        }
        if !trimmed.is_empty() {
            above = line;
        }
    }
    blocks
}

/// The command of `line` without its trailing comment, if it starts a
/// server that runs until stopped.
fn server_command(line: &str) -> Option<&str> {
    let command = match line.find(" #") {
        Some(at) => line[..at].trim_end(),
        None => line.trim_end(),
    };
    let words: Vec<&str> = command.split_whitespace().collect();
    let serves = match words.as_slice() {
        ["warden", rest @ ..] | ["cargo", "run", "--release", "--", rest @ ..] => rest.contains(&"serve"),
        ["nats-server", rest @ ..] => !rest.iter().any(|w| w.starts_with("-sl") || *w == "-t"),
        ["python3", "-m", "http.server", ..] => true,
        ["cargo", "run", "--example", "callout_service", ..] => true,
        _ => false,
    };
    serves.then_some(command)
}

/// The shell script that runs `blocks`: each server command goes to the
/// background with its log, and the script waits for it to be ready.
fn script(blocks: &[Block], logs: &Path) -> String {
    let mut out = String::from(PRELUDE);
    for block in blocks.iter().filter(|b| b.skip.is_none()) {
        out.push_str(&format!("\necho '==== README.md:{}'\n", block.line));
        let servers: Vec<&str> = block.text.lines().filter_map(server_command).collect();
        if !servers.is_empty() {
            out.push_str("readme_stop\n");
        }
        // Lines inside a heredoc or a quoted string are not commands.
        let mut heredoc: Option<String> = None;
        let mut quoted = false;
        for (i, line) in block.text.lines().enumerate() {
            let command = (heredoc.is_none() && !quoted).then(|| server_command(line)).flatten();
            match command {
                Some(command) => {
                    let log = logs.join(format!("{}.{i}.log", block.line));
                    let log = log.display();
                    out.push_str(&format!(
                        "READMETEST_EXEC=1 {command} >{log} 2>&1 &\nreadme_started $! {log} {}\n",
                        shell_quote(command)
                    ));
                }
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            if let Some(end) = &heredoc {
                if line.trim() == end {
                    heredoc = None;
                }
            } else if let Some(at) = line.find("<<") {
                heredoc = Some(line[at + 2..].trim().trim_matches(['\'', '"', '-']).to_owned());
            } else {
                // A comment's apostrophe ("Debian's") opens no string.
                let code = match (quoted, line.find(" #")) {
                    (false, Some(at)) => &line[..at],
                    _ => line,
                };
                if code.matches('\'').count() % 2 == 1 {
                    quoted = !quoted;
                }
            }
        }
    }
    out
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Stand-ins for the commands the README runs through cargo, background
/// bookkeeping, and the readiness wait (bounded, polling the log).
const PRELUDE: &str = r#"set -euo pipefail
readme_pids=()
readme_stop() {
  local pid
  for pid in "${readme_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${readme_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  readme_pids=()
}
trap readme_stop EXIT
readme_started() {
  local pid=$1 log=$2 what=$3 i
  readme_pids+=("$pid")
  for ((i = 0; i < 600; i++)); do
    grep -qE "$READMETEST_READY" "$log" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "README test: '$what' exited before it was ready:"; cat "$log"; return 1
    fi
    sleep 0.1
  done
  echo "README test: '$what' not ready within 60 s:"; cat "$log"; return 1
}
cargo() {
  local run=()
  if [[ ${1:-} == run && ${2:-} == --release ]]; then
    shift 2; run=(target/release/warden)
  elif [[ ${1:-} == run && ${2:-} == --example && -n ${3:-} ]]; then
    run=("$READMETEST_EXAMPLES/$3"); shift 3
  else
    echo "README test: nothing stands in for 'cargo $*'" >&2; return 1
  fi
  [[ ${1:-} == -- ]] && shift
  if [[ -n ${READMETEST_EXEC:-} ]]; then exec "${run[@]}" "$@"; fi
  "${run[@]}" "$@"
}
"#;

/// A fresh copy of what the README's commands read, with `target/` holding
/// the test build as `release/warden` and the installed dependencies.
fn sandbox(nats_server: &Path) -> PathBuf {
    let dir = common::temp_dir("readme");
    let copy = Command::new("cp")
        .arg("-a")
        .args(["examples", "policies", "scripts", "tests"].map(|d| repo().join(d)))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(copy.success());
    let link = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(from, to).unwrap();
    };
    let target = repo().join("target");
    link(Path::new(env!("CARGO_BIN_EXE_warden")), &dir.join("target/release/warden"));
    // jwtgen.sh builds into target/jwtgen; the others are installed already.
    std::fs::create_dir_all(target.join("jwtgen")).unwrap();
    for installed in ["pyenv", "node", "jwtgen"] {
        link(&target.join(installed), &dir.join("target").join(installed));
    }
    link(Path::new(env!("CARGO_BIN_EXE_warden")), &dir.join("bin/warden"));
    link(nats_server, &dir.join("bin/nats-server"));
    std::fs::create_dir_all(dir.join("home")).unwrap();
    dir
}

/// The directory of the example binaries this test suite built.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("examples")
}

#[test]
fn every_command_block_of_the_readme_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks = sh_blocks(&readme);
    let Some(nats_server) = deps::nats_server_2_9() else { return };
    if deps::python().is_none() {
        return;
    }
    let node = repo().join("target/node/node_modules");
    if deps::require(node.exists().then_some(()), "target/node", "scripts/node-deps.sh installs the npm packages")
        .is_none()
    {
        return;
    }
    assert!(examples_dir().join("callout_service").exists(), "build the examples first (`cargo build --examples`)");
    let dir = sandbox(&nats_server);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = format!("{}:{}", dir.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("timeout")
        .args(["--kill-after=10", "600", "bash", "-c", &script(&blocks, &logs)])
        .current_dir(&dir)
        .env("HOME", dir.join("home"))
        .env("PATH", path)
        .env("READMETEST_EXAMPLES", examples_dir())
        .env("READMETEST_READY", READY)
        .env("PYTHONUNBUFFERED", "1")
        .env("NO_COLOR", "1")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("JWTGEN_WORK")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the README's commands failed ({}):\n{stdout}\n{stderr}", out.status);
    let ran = blocks.iter().filter(|b| b.skip.is_none()).count();
    for block in &blocks {
        let marker = format!("==== README.md:{}\n", block.line);
        assert_eq!(stdout.contains(&marker), block.skip.is_none(), "block at line {}", block.line);
    }
    // What the README says these blocks show.
    for shown in [
        "bob's request to req.foo: foo is served",
        "GLOBEX's forecast request: no responders",
        "b'hi'",
        "b'admitted by the service'",
        "tick 59 received via",
        "\"server_id\"",
        "warden_in_messages_total",
        "\"status\": \"ok\"",
    ] {
        assert!(stdout.contains(shown), "the README's commands did not show {shown:?}:\n{stdout}");
    }
    eprintln!("ran {ran} of the README's {} command blocks", blocks.len());
}

#[test]
fn every_skipped_block_says_why_and_most_run() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks = sh_blocks(&readme);
    assert!(blocks.len() >= 15, "found {} blocks", blocks.len());
    for block in &blocks {
        if let Some(reason) = &block.skip {
            assert!(reason.len() > 20, "README.md:{}: say why the block is not run", block.line);
        }
    }
    let skipped = blocks.iter().filter(|b| b.skip.is_some()).count();
    assert!(skipped <= 3, "{skipped} blocks skipped");
}

#[test]
fn server_commands_are_recognised_and_others_are_not() {
    for line in [
        "cargo run --release -- serve --config examples/demo.conf",
        "warden serve --config examples/monitoring.conf",
        "nats-server -c examples/leaf/nats-leaf.conf",
        "python3 -m http.server 8000 --bind 127.0.0.1 -d examples/browser",
        "cargo run --example callout_service -- --issuer-seed issuer.seed",
    ] {
        assert!(server_command(line).is_some(), "{line}");
    }
    for line in [
        "cargo run --release -- certs generate --out certs/",
        "warden nkey public < alice.nk",
        "nats-server -sl=ldm=/var/run/nats/nats.pid",
        "cargo run --example pubsub",
    ] {
        assert!(server_command(line).is_none(), "{line}");
    }
    assert_eq!(
        server_command("cargo run --release -- serve --config x.conf  # ws://127.0.0.1:8080"),
        Some("cargo run --release -- serve --config x.conf")
    );
}
