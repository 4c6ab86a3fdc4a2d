//! warden as a drop-in for nats-server: the binary under the name
//! `nats-server`, started the way client test suites and the Helm chart
//! start it (flags, JSON config, `-sl` signals, pid and ports files), with
//! nats-py (from PyPI, installed by scripts/python-deps.sh) and async-nats
//! as the clients.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::peers::{free_port, NatsServer};
use common::*;
use futures::StreamExt;

/// The warden binary linked as `<dir>/nats-server`.
fn nats_server_in(dir: &Path) -> PathBuf {
    let link = dir.join("nats-server");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_warden"), &link).unwrap();
    }
    link
}

/// Starts `nats-server ARGS` and waits (bounded) until `port` accepts.
async fn start(dir: &Path, args: &[&str], port: u16) -> NatsServer {
    let child = Command::new(nats_server_in(dir))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = NatsServer(child, None);
    within(async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    server
}

fn run_python(python: &Path, script: &str, args: &[&str]) -> Output {
    let out = Command::new(python).arg("-c").arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "python failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// nats-py connects (user/password or TLS as asked), publishes to itself
/// and prints the server version it saw.
const NATS_PY_ROUND_TRIP: &str = r#"
import asyncio, ssl, sys, nats
async def main():
    url, user, password, ca, cert, key = (sys.argv[1:] + [""] * 6)[:6]
    kw = dict(connect_timeout=5, allow_reconnect=False)
    if user:
        kw.update(user=user, password=password)
    if ca:
        ctx = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(certfile=cert, keyfile=key)
        kw.update(tls=ctx)
    nc = await nats.connect(url, **kw)
    sub = await nc.subscribe("drop.in")
    await nc.publish("drop.in", b"hi")
    msg = await sub.next_msg(timeout=5)
    v = nc.connected_server_version
    print(f"version {v.major}.{v.minor}.{v.patch} got {msg.data.decode()}")
    await nc.close()
asyncio.run(main())
"#;

/// Started exactly as nats.py's test harness (tests/utils.py, NATSD.start)
/// starts nats-server: `-p`, `-m`, `-a`, `--user`/`--pass`, `-DV`, then
/// probed on `/varz` like its start_natsd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_py_harness_flags_start_it_and_nats_py_connects() {
    let Some(python) = common::deps::python() else { return };
    let dir = temp_dir("dropin-py");
    let (port, http) = (free_port(), free_port());
    let (p, m) = (port.to_string(), http.to_string());
    let _server =
        start(&dir, &["-p", &p, "-m", &m, "-a", "127.0.0.1", "--user", "foo", "--pass", "bar", "-DV"], port).await;
    // The client port is bound before the monitoring port: probe until it
    // answers, as the harness's start_natsd does.
    within(async {
        while tokio::net::TcpStream::connect(("127.0.0.1", http)).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let url = format!("nats://127.0.0.1:{port}");
    let out = run_python(&python, NATS_PY_ROUND_TRIP, &[&url, "foo", "bar"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("version 2.9.10 got hi"), "{stdout}");
    // The wrong password is refused.
    let refused =
        Command::new(&python).arg("-c").arg(NATS_PY_ROUND_TRIP).args([&url, "foo", "wrong"]).output().unwrap();
    assert!(!refused.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_tls_flags_as_the_harness_gives_them() {
    let Some(python) = common::deps::python() else { return };
    let dir = temp_dir("dropin-tls");
    let ca = warden::tls::Ca::new("drop-in CA").unwrap();
    let server_cert = ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let client_cert = ca.issue_client("harness").unwrap();
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_string_lossy().into_owned()
    };
    let ca_pem = write("ca.pem", &ca.issued().cert_pem);
    let (cert, key) = (write("server-cert.pem", &server_cert.cert_pem), write("server-key.pem", &server_cert.key_pem));
    let (ccert, ckey) =
        (write("client-cert.pem", &client_cert.cert_pem), write("client-key.pem", &client_cert.key_pem));
    let port = free_port();
    let p = port.to_string();
    let args = [
        "-p",
        &p,
        "-a",
        "127.0.0.1",
        "--tls",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--tlsverify",
        "--tlscacert",
        &ca_pem,
    ];
    let _server = start(&dir, &args, port).await;
    let out =
        run_python(&python, NATS_PY_ROUND_TRIP, &[&format!("tls://127.0.0.1:{port}"), "", "", &ca_pem, &ccert, &ckey]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("got hi"));

    let port = free_port();
    let p = port.to_string();
    let _token = start(&dir, &["-p", &p, "-a", "127.0.0.1", "--auth", "s3cret"], port).await;
    let url = format!("nats://s3cret@127.0.0.1:{port}");
    let out = run_python(&python, NATS_PY_ROUND_TRIP, &[&url]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("got hi"));
}

/// The Helm chart's config: JSON, `$SERVER_NAME` from the environment, a
/// pid file, `http_port`, lame-duck keys.
const CHART_JSON: &str = r#"{
  "pid_file": "PIDFILE",
  "http_port": HTTP,
  "port": PORT,
  "host": "127.0.0.1",
  "server_name": $SERVER_NAME,
  "lame_duck_grace_period": "10s",
  "lame_duck_duration": "30s"
}
"#;

/// The chart's preStop: `nats-server -sl=ldm=/var/run/nats/nats.pid`, then
/// (here) SIGUSR2 directly; each time an async-nats client hears lame duck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_json_config_and_lame_duck_by_pid_file_and_by_sigusr2() {
    for by_sl in [true, false] {
        let dir = temp_dir("dropin-chart");
        let (port, http) = (free_port(), free_port());
        let pid_file = dir.join("nats.pid");
        let conf = dir.join("nats.conf");
        let json = CHART_JSON
            .replace("PIDFILE", &pid_file.to_string_lossy())
            .replace("HTTP", &http.to_string())
            .replace("PORT", &port.to_string());
        std::fs::write(&conf, json).unwrap();
        let child = Command::new(nats_server_in(&dir))
            .args(["--config", &conf.to_string_lossy()])
            .env("SERVER_NAME", "nats-0")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = NatsServer(child, None);
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let client = within(async {
            loop {
                let tx = tx.clone();
                let options = async_nats::ConnectOptions::new().event_callback(move |event| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(event);
                    }
                });
                if let Ok(client) = options.connect(format!("nats://127.0.0.1:{port}")).await {
                    return client;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(client.server_info().server_name, "nats-0", "$SERVER_NAME came from the environment");
        assert_eq!(client.server_info().version, "2.9.10");
        let pid: u32 = within(async {
            loop {
                if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|t| t.trim().parse().ok()) {
                    return pid;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(pid, server.0.id());
        if by_sl {
            let sl = format!("-sl=ldm={}", pid_file.display());
            let status = Command::new(nats_server_in(&dir)).arg(&sl).status().unwrap();
            assert!(status.success(), "{sl}");
        } else {
            let status = Command::new("kill").args(["-USR2", &pid.to_string()]).status().unwrap();
            assert!(status.success());
        }
        let lame_duck = within(async {
            loop {
                match events.recv().await {
                    Some(async_nats::Event::LameDuckMode) => return true,
                    Some(_) => continue,
                    None => return false,
                }
            }
        })
        .await;
        assert!(lame_duck, "the client heard lame duck mode (by {})", if by_sl { "-sl=ldm" } else { "SIGUSR2" });
        // SIGTERM during lame duck is ignored, as nats-server does.
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        client.flush().await.expect("still served during the grace period");
        drop(server);
    }
}

#[test]
fn t_checks_a_config_and_exits_nonzero_with_the_position() {
    let dir = temp_dir("dropin-t");
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "{\n  \"port\": 4222,\n  \"server_name\": $NOT_SET_ANYWHERE_4711\n}\n").unwrap();
    let out = Command::new(nats_server_in(&dir)).args(["-t", "-c"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.conf:3:18"), "{stderr}");
    let good = dir.join("good.conf");
    std::fs::write(&good, "port: 4222\n").unwrap();
    let out = Command::new(nats_server_in(&dir)).args(["-t", "-c"]).arg(&good).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration file"));
    let out = Command::new(nats_server_in(&dir)).arg("-js").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-js (JetStream) is not supported"));
}

/// `-l` writes plain lines (no colour codes), SIGUSR1 (`-sl=reopen`)
/// reopens the file after a rotation, and `--ports_file_dir` says where
/// everything listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_file_reopen_and_ports_file() {
    let dir = temp_dir("dropin-log");
    let (port, http) = (free_port(), free_port());
    let log = dir.join("nats.log");
    let pid_file = dir.join("nats.pid");
    let (p, m) = (port.to_string(), http.to_string());
    let args = [
        "-p",
        &p,
        "-m",
        &m,
        "-a",
        "127.0.0.1",
        "-l",
        &log.to_string_lossy(),
        "-P",
        &pid_file.to_string_lossy(),
        "--ports_file_dir",
        &dir.to_string_lossy(),
        "-D",
    ];
    let server = start(&dir, &args, port).await;
    let ports = dir.join(format!("nats-server_{}.ports", server.0.id()));
    let text = within(async {
        loop {
            if let Ok(text) = std::fs::read_to_string(&ports) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["nats"][0], format!("nats://127.0.0.1:{port}"));
    assert_eq!(json["monitoring"][0], format!("http://127.0.0.1:{http}"));
    let first = std::fs::read_to_string(&log).unwrap();
    assert!(first.contains("Listening for client connections on 127.0.0.1:"), "{first}");
    assert!(!first.contains('\u{1b}'), "no colour codes in a log file");
    std::fs::rename(&log, dir.join("nats.log.1")).unwrap();
    let status = Command::new(nats_server_in(&dir)).arg(format!("-sl=reopen={}", pid_file.display())).status().unwrap();
    assert!(status.success());
    let reopened = within(async {
        loop {
            if let Ok(text) = std::fs::read_to_string(&log) {
                if text.contains("log file reopened") {
                    return text;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(!reopened.contains('\u{1b}'));
    drop(server);
}

/// nats-py's no_auth_user test config shape (users in `$G` here; accounts
/// are a later issue): a client without credentials is that user.
#[tokio::test]
async fn no_auth_user_gives_credential_less_clients_that_users_permissions() {
    let config = r#"
authorization { users = [
  { user: foo, password: foo, permissions: { publish: ["foo", "_INBOX.>"], subscribe: ["foo", "_INBOX.>"] } }
  { user: bar, password: bar }
] }
no_auth_user: foo
"#;
    let server = common::start(options_from(config)).await;
    let mut anonymous = Raw::connected(server.local_addr()).await;
    anonymous.send("SUB foo 1\r\nPUB foo 2\r\nhi\r\nPUB bar 2\r\nno\r\n").await;
    anonymous.expect("MSG foo 1 2").await;
    anonymous.expect("hi").await;
    anonymous.expect("-ERR 'Permissions Violation for Publish to \"bar\"'").await;
    let bar =
        within(async_nats::ConnectOptions::with_user_and_password("bar".into(), "bar".into()).connect(url(&server)))
            .await
            .unwrap();
    bar.publish("bar", "ok".into()).await.unwrap();
    bar.flush().await.unwrap();
    let err =
        warden::config::load_str("authorization { users = [ {user: a, password: b} ] }\nno_auth_user: zed\n", "x.conf")
            .unwrap_err();
    assert!(err.to_string().contains("x.conf:2:15") && err.to_string().contains("not present as user"), "{err}");
    server.shutdown().await;
}

/// `allow_non_tls` (nats-server 2.10): plain-text and TLS clients on one port.
#[tokio::test]
async fn allow_non_tls_serves_plain_and_tls_clients_on_one_port() {
    let dir = temp_dir("dropin-mixed-tls");
    let ca = warden::tls::Ca::new("mixed CA").unwrap();
    let issued = ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), &issued.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &issued.key_pem).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.issued().cert_pem).unwrap();
    let config = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\nallow_non_tls: true\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    let server = common::start(options_from(&config)).await;
    let (mut plain, info) = Raw::connect(server.local_addr()).await;
    assert!(info.contains("\"tls_available\":true") && !info.contains("tls_required"), "{info}");
    plain.send("CONNECT {\"verbose\":false}\r\nSUB mixed 1\r\nPING\r\n").await;
    plain.expect("PONG").await;
    let tls = within(
        async_nats::ConnectOptions::new()
            .add_root_certificates(dir.join("ca.pem"))
            .require_tls(true)
            .connect(format!("tls://127.0.0.1:{}", server.local_addr().port())),
    )
    .await
    .unwrap();
    tls.publish("mixed", "over tls".into()).await.unwrap();
    tls.flush().await.unwrap();
    assert_eq!(plain.next_non_ping().await, "MSG mixed 1 8");
    let mut sub = tls.subscribe("back").await.unwrap();
    tls.flush().await.unwrap();
    plain.send("PUB back 5\r\nplain\r\n").await;
    assert_eq!(within(sub.next()).await.unwrap().payload, "plain");
    server.shutdown().await;
}
