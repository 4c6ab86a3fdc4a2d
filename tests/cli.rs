//! The `warden` binary as a user runs it: check, passwd, certs, and serve
//! with a config that is reloaded on SIGHUP.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::peers::free_port;
use common::*;

fn warden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_warden"))
}

#[test]
fn check_accepts_the_seed_config_and_refuses_typos_with_a_position() {
    let dir = temp_dir("cli-check");
    let good = dir.join("good.conf");
    std::fs::write(
        &good,
        "listen: 127.0.0.1:4222\nauthorization {\n  admin = { publish = \">\", subscribe = \">\" }\n  users = [ {user: alice, password: foo, permissions: $admin} ]\n}\n",
    )
    .unwrap();
    let out = warden().args(["check", "--config"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("client listener: 127.0.0.1:4222"), "{stdout}");
    assert!(stdout.contains("user \"alice\""), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain text"), "plain-text password warning");

    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "listen: 127.0.0.1:4222\nmax_pendin: 1MB\n").unwrap();
    let out = warden().args(["check", "--config"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.conf:2:1") && stderr.contains("max_pending"), "{stderr}");

    // serve refuses the same file before binding anything.
    let out = warden().args(["serve", "--config"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
}

/// `warden check` shows the HTTP authorizer's scheme, host and port, never
/// its path or query (where a token often sits) nor its header values.
#[test]
fn check_masks_the_http_authorizers_url_and_headers() {
    let conf = temp_dir("cli-check-authorizer").join("authz.conf");
    std::fs::write(
        &conf,
        "listen: 127.0.0.1:4222\nauthorization {\n  users: [ {user: local, password: lpw} ]\n  http_authorizer {\n    url: \"http://127.0.0.1:9/hooks/PATHSECRET?token=QUERYSECRET\"\n    headers { Authorization: \"Bearer HEADERSECRET\" }\n  }\n}\n",
    )
    .unwrap();
    let out = warden().args(["check", "--config"]).arg(&conf).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("http authorizer at http://127.0.0.1:9/<redacted>"), "{stdout}");
    for secret in ["PATHSECRET", "QUERYSECRET", "HEADERSECRET"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} shown: {stdout}{stderr}");
    }
}

/// `warden check --map` shows what a subject maps to, every weighted
/// choice and the dropped rest, like `nats server mapping`.
#[test]
fn check_map_shows_each_destination_with_its_weight() {
    let conf = temp_dir("cli-check-map").join("map.conf");
    std::fs::write(
        &conf,
        r#"
mappings {
  "orders.*": [ {destination: "orders.v1.$1", weight: 80%}, {destination: "orders.v2.$1", weight: 15%} ]
  "p.*.*": "p.{{partition(4,1,2)}}.$1.$2"
}
accounts { A { mappings { "a": "b" } } }
"#,
    )
    .unwrap();
    let out = warden()
        .args(["check", "--config"])
        .arg(&conf)
        .args(["--map", "orders.42", "--map", "p.a.b", "--map", "other"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("orders.42 (account $G) by mapping \"orders.*\":"), "{stdout}");
    assert!(stdout.contains(" 80%  orders.v1.42  <- orders.v1.$1"), "{stdout}");
    assert!(stdout.contains(" 15%  orders.v2.42  <- orders.v2.$1"), "{stdout}");
    assert!(stdout.contains("  5%  orders.42 (unchanged)"), "{stdout}");
    // FNV-1a of "ab" modulo 4, as nats-server computes it.
    assert!(stdout.contains("100%  p.2.a.b"), "{stdout}");
    assert!(stdout.contains("other (account $G): not mapped"), "{stdout}");
    let out = warden().args(["check", "--config"]).arg(&conf).args(["--map", "a", "--account", "A"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("100%  b  <- b"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = warden().args(["check", "--config"]).arg(&conf).args(["--map", "a", "--account", "Z"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn passwd_reads_stdin_and_prints_an_argon2id_hash() {
    let mut child = warden().arg("passwd").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"correct horse\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = warden::auth::password::PasswordHash::parse(hash.trim()).unwrap();
    assert!(hash.verify("correct horse"));
    assert!(!hash.verify("correct horse\n"));
}

#[test]
fn certs_generate_writes_keys_with_mode_0600() {
    let dir = temp_dir("cli-certs");
    let out = warden()
        .args(["certs", "generate", "--out"])
        .arg(&dir)
        .args(["--host", "localhost", "--client", "alice"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for file in ["ca.pem", "server.pem", "client-alice.pem"] {
        assert!(dir.join(file).exists(), "{file}");
    }
    for key in ["ca-key.pem", "server-key.pem", "client-alice-key.pem"] {
        let mode = std::fs::metadata(dir.join(key)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
}

/// A second run must not replace the CA (every certificate it signed would
/// stop verifying), nor any key, unless told to with `--force`; one that
/// asks for nothing new succeeds without writing.
#[test]
fn certs_generate_never_replaces_a_ca_without_force() {
    let dir = temp_dir("cli-certs-again");
    let out = warden().args(["certs", "generate", "--out"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ca_before = std::fs::read(dir.join("ca.pem")).unwrap();
    let again = |extra: &[&str]| warden().args(["certs", "generate", "--out"]).arg(&dir).args(extra).output().unwrap();
    // The same command again (the README's tours each start with it) finds
    // everything there: done, nothing written.
    let out = again(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("nothing written"), "{stdout}");
    assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), ca_before, "the CA is kept");
    let out = again(&["--client", "bob"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("ca.pem") && stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), ca_before, "the CA is kept");
    assert!(!dir.join("client-bob.pem").exists(), "nothing written when refusing");
    let out = again(&["--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), ca_before, "--force replaces it");
}

/// `-sl CMD=PIDFILE` and `warden reload --pid` signal only a server: a pid
/// file holding `4294967295` (which `kill` reads as -1: every process),
/// `0` (the caller's process group) or `1`, or the pid of another program,
/// is refused and nothing is signalled.
#[test]
fn signals_go_only_to_a_server_process() {
    let dir = temp_dir("cli-sl");
    let pid_file = dir.join("w.pid");
    let mut bystander = Command::new("sleep").arg("30").spawn().unwrap();
    let bystander_pid = bystander.id().to_string();
    for (pid, says) in [
        ("4294967295", "invalid pid: 4294967295"),
        ("0", "invalid pid: 0"),
        ("1", "invalid pid: 1"),
        (bystander_pid.as_str(), "\"sleep\", not warden or nats-server"),
    ] {
        std::fs::write(&pid_file, pid).unwrap();
        let out = warden().arg(format!("-sl=term={}", pid_file.display())).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says) && stderr.contains("nothing signalled"),
            "{pid}: {stderr}"
        );
        let out = warden().args(["reload", "--pid", pid]).output().unwrap();
        assert!(!out.status.success(), "reload --pid {pid}");
    }
    assert!(bystander.try_wait().unwrap().is_none(), "the other program was not signalled");
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

/// A `warden serve` child process, killed when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_reloads_users_on_sighup_and_stops_on_sigterm() {
    let dir = temp_dir("cli-serve");
    let port = free_port();
    let conf = dir.join("warden.conf");
    let users = |extra: &str| {
        format!(
            "listen: 127.0.0.1:{port}\nlame_duck_duration: \"30s\"\nlame_duck_grace_period: \"1s\"\n\
             authorization {{ users = [\n  {{user: a, password: pa}}\n  {extra}\n] }}\n"
        )
    };
    std::fs::write(&conf, users("")).unwrap();
    let child = warden().args(["serve", "--config"]).arg(&conf).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let serving = Serving(child);
    let url = format!("nats://127.0.0.1:{port}");
    let login = |user: &'static str, pass: &'static str| {
        let url = url.clone();
        async move { async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).connect(url).await }
    };
    // Wait (bounded) for the listener.
    let mut a = None;
    for _ in 0..100 {
        if let Ok(c) = login("a", "pa").await {
            a = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a = a.expect("server came up");
    assert!(within(login("b", "pb")).await.is_err());

    std::fs::write(&conf, users("{user: b, password: pb}")).unwrap();
    let status = warden().args(["reload", "--pid", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    // The reload is asynchronous to `warden reload`; failed logins are
    // throttled after three, so poll slowly and briefly.
    let mut b = None;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(c) = login("b", "pb").await {
            b = Some(c);
            break;
        }
    }
    assert!(b.is_some(), "new user works after SIGHUP");
    a.flush().await.expect("existing connection kept");

    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let mut serving = serving;
    let exit = within(async {
        loop {
            if let Some(status) = serving.0.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(exit.success(), "clean exit on SIGTERM (after lame duck): {exit:?}");
}

/// A refusal to start reaches standard error as well as the `-l` log file
/// (a harness may delete the file, an operator may not know of it), and a
/// start logs the version, the pid and the config file in use.
#[test]
fn a_refusal_to_start_goes_to_stderr_and_the_log_and_a_start_says_what_runs() {
    let dir = temp_dir("cli-refusal");
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "listen: 127.0.0.1:0\nbogus_key: 1\n").unwrap();
    let log = dir.join("warden.log");
    let out = warden().arg("--config").arg(&bad).arg("-l").arg(&log).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to start") && stderr.contains("bad.conf:2:1"), "{stderr}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("refusing to start") && logged.contains("bogus_key"), "{logged}");

    // A port already taken: refused by the server, not the config reader.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conf = dir.join("taken.conf");
    std::fs::write(&conf, format!("listen: {}\n", taken.local_addr().unwrap())).unwrap();
    let log = dir.join("taken.log");
    let out = warden().arg("--config").arg(&conf).arg("-l").arg(&log).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Address already in use"));
    let logged = std::fs::read_to_string(&log).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(logged.contains(&format!("Starting warden version=\"{version}\"")) && logged.contains(" pid="), "{logged}");
    assert!(logged.contains(&format!("Using configuration file: {}", conf.display())), "{logged}");
    assert!(logged.contains("Address already in use"), "{logged}");
}

/// `--log-format json` (or `log_format: json`) writes one JSON object a
/// line, for log shippers; a bad value is refused.
#[test]
fn json_logs_are_one_object_a_line() {
    let dir = temp_dir("cli-json-log");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conf = dir.join("json.conf");
    std::fs::write(&conf, format!("listen: {}\n", taken.local_addr().unwrap())).unwrap();
    let out = warden().arg("--config").arg(&conf).args(["--log-format", "json"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let records: Vec<serde_json::Value> =
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(records[0]["fields"]["message"], "Starting warden", "{stderr}");
    let refusal = records.iter().find(|r| r["level"] == "ERROR").expect("the refusal");
    assert!(refusal["fields"]["message"].as_str().unwrap().contains("refusing to start"), "{refusal}");
    let out = warden().arg("--config").arg(&conf).args(["--log-format", "xml"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be text or json"));
}

/// `warden completions bash` is a script bash loads, which completes the
/// tools and the server's flags; `zsh` and `fish` scripts are generated;
/// `warden man` is a roff page naming every tool and flag.
#[test]
fn completions_load_in_bash_and_the_man_page_names_every_flag() {
    let script = warden().args(["completions", "bash"]).output().unwrap();
    assert!(script.status.success(), "{}", String::from_utf8_lossy(&script.stderr));
    let file = temp_dir("cli-completions").join("warden.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    // Load it in a real bash, then ask it to complete `warden nk` and `warden --cluster_n`.
    let probe = format!(
        "source {}; for line in 'warden nk' 'warden --cluster_n' 'warden serve --tlsc'; do \
         COMP_WORDS=($line); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMP_LINE=$line; COMP_POINT=${{#line}}; \
         COMPREPLY=(); _warden warden \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; echo \"${{COMPREPLY[*]}}\"; done",
        file.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let replies = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{replies}{}", String::from_utf8_lossy(&out.stderr));
    let replies: Vec<&str> = replies.lines().collect();
    assert_eq!(replies, ["nkey", "--cluster_name", "--tlscert --tlscacert"], "bash completions");
    for shell in ["zsh", "fish"] {
        let out = warden().args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("cluster_name"), "{shell}");
    }
    let page = warden().arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH warden"), "{page}");
    for name in ["\\-\\-cluster_name", "\\-\\-insecure_allow_unauthenticated_routes", "nkey", "completions"] {
        assert!(page.contains(name), "the man page lacks {name}");
    }
}

/// A reload that changes an option only a restart applies is refused whole,
/// naming the option and where it is, and the running config stays (the
/// user added beside it is not applied either), as nats-server refuses
/// such a reload; the same file without that change then reloads.
#[tokio::test]
async fn a_reload_that_changes_a_restart_only_option_is_refused_and_the_running_config_kept() {
    let conf = temp_dir("cli-reload-restart").join("warden.conf");
    let config = |max_payload: &str, extra: &str| {
        format!(
            "listen: 127.0.0.1:0\nmax_payload: {max_payload}\nauthorization {{ users = [\n  {{user: a, password: pa}}\n  {extra}\n] }}\n"
        )
    };
    std::fs::write(&conf, config("1MB", "")).unwrap();
    let (serving, addr, log) = binary::serve_file_logged(&conf).await;
    let url = format!("nats://{addr}");
    let login = |user: &'static str, pass: &'static str| {
        let url = url.clone();
        async move { async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).connect(url).await }
    };
    let a = within(login("a", "pa")).await.unwrap();

    std::fs::write(&conf, config("2MB", "{user: b, password: pb}")).unwrap();
    binary::signal(&serving.0, "-HUP");
    let line = binary::log_line(&log, &["reload refused, keeping the running config"]).await;
    let at = format!("{}:2:1: `max_payload` changed, but it takes effect only at a restart", conf.display());
    assert!(line.contains(&at), "{line}");
    assert!(within(login("b", "pb")).await.is_err(), "nothing of the refused file applied");
    assert_eq!(a.server_info().max_payload, 1024 * 1024);

    std::fs::write(&conf, config("1MB", "{user: b, password: pb}")).unwrap();
    binary::signal(&serving.0, "-HUP");
    binary::log_line(&log, &["configuration reloaded"]).await;
    within(login("b", "pb")).await.expect("the same change without max_payload reloads");
    within(a.flush()).await.expect("existing connection kept");
}
