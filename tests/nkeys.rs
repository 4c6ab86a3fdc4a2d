//! NKey users end to end: keys made by the `nkeys` package from PyPI (an
//! implementation we did not write) and by `warden nkey generate`, logged in
//! with by async-nats (`with_nkey`) and nats-py (`nkeys_seed`), refused
//! when the key is unknown or the signature wrong, at the same cost.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;

/// A user seed and its public key, made by the reference `nkeys` package.
fn reference_user_key(python: &Path) -> (String, String) {
    let script = "import nkeys, os\n\
                  seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)\n\
                  print(seed.decode()); print(nkeys.from_seed(seed).public_key.decode())";
    let out = Command::new(python).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned())
}

/// A user seed and public key from `warden nkey generate`.
fn warden_user_key() -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warden")).args(["nkey", "generate", "--type", "user"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned())
}

fn config(restricted: &str, free: &str) -> String {
    format!(
        r#"authorization {{ users = [
  {{ nkey: "{restricted}", permissions: {{ publish: ["nk.>", "_INBOX.>"], subscribe: ["nk.>", "_INBOX.>"] }} }}
  {{ nkey: "{free}" }}
  {{ user: alice, password: "alice-pw" }}
] }}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_nats_logs_in_with_a_reference_seed_and_its_permissions_hold() {
    let Some(python) = common::deps::python() else { return };
    let (seed, public) = reference_user_key(&python);
    let (_, other) = warden_user_key();
    let server = start(options_from(&config(&public, &other))).await;
    let (errors_tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
    let client = within(
        async_nats::ConnectOptions::with_nkey(seed)
            .event_callback(move |event| {
                let tx = errors_tx.clone();
                async move {
                    if let async_nats::Event::ServerError(err) = event {
                        let _ = tx.send(err.to_string());
                    }
                }
            })
            .connect(url(&server)),
    )
    .await
    .expect("the reference seed logs in");
    let mut sub = client.subscribe("nk.events").await.unwrap();
    client.publish("nk.events", "within".into()).await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(within(sub.next()).await.unwrap().payload, "within");
    client.publish("elsewhere", "outside".into()).await.unwrap();
    client.flush().await.unwrap();
    let err = within(errors.recv()).await.unwrap();
    assert!(err.contains("Permissions Violation for Publish to \"elsewhere\""), "{err}");
    // The password user still works next to the nkey users.
    let alice = async_nats::ConnectOptions::with_user_and_password("alice".into(), "alice-pw".into());
    within(alice.connect(url(&server))).await.unwrap().flush().await.unwrap();
    // The user shows in /connz as its public key.
    assert!(server.broker().clients().iter().any(|c| c.meta.lock().user.as_deref() == Some(public.as_str())));
    server.shutdown().await;
}

/// nats-py with a seed file: a `warden nkey generate` seed logs in, an
/// unknown key (made by the reference package, not configured) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_py_logs_in_with_a_warden_seed_and_an_unknown_key_is_refused() {
    let Some(python) = common::deps::python() else { return };
    let (seed, public) = warden_user_key();
    let (unknown_seed, _) = reference_user_key(&python);
    let (_, other) = reference_user_key(&python);
    let server = start(options_from(&config(&public, &other))).await;
    let dir = temp_dir("nkeys-py");
    let script = r#"
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1], nkeys_seed=sys.argv[2], connect_timeout=5, allow_reconnect=False, max_reconnect_attempts=0)
    sub = await nc.subscribe("nk.py")
    await nc.publish("nk.py", b"from python")
    msg = await sub.next_msg(timeout=5)
    print(msg.data.decode())
    await nc.close()
asyncio.run(main())
"#;
    for (seed, should_work) in [(&seed, true), (&unknown_seed, false)] {
        let file = dir.join(if should_work { "known.nk" } else { "unknown.nk" });
        std::fs::write(&file, format!("{seed}\n")).unwrap();
        let out = Command::new(&python).arg("-c").arg(script).arg(url(&server)).arg(&file).output().unwrap();
        if should_work {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from python");
        } else {
            assert!(!out.status.success(), "an unknown nkey logged in");
            assert!(String::from_utf8_lossy(&out.stderr).contains("Authorization Violation"));
        }
    }
    server.shutdown().await;
}

/// The nonce in INFO, and what a raw client can get wrong.
#[tokio::test]
async fn the_nonce_is_fresh_per_connection_and_bad_signatures_are_refused() {
    let (seed, public) = warden_user_key();
    let pair = warden::nkeys::KeyPair::from_seed(&seed).unwrap();
    let (_, other) = warden_user_key();
    let server = start(options_from(&config(&public, &other))).await;
    let nonce_of = |info: &str| -> String {
        let json: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO ")).unwrap();
        json["nonce"].as_str().expect("INFO carries a nonce").to_owned()
    };
    let (_, first) = Raw::connect(server.local_addr()).await;
    let (_, second) = Raw::connect(server.local_addr()).await;
    assert_ne!(nonce_of(&first), nonce_of(&second));
    use base64::Engine;
    let b64 = |sig: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig);
    let connect = |nkey: &str, sig: Option<String>| {
        let mut json = serde_json::json!({"verbose": false, "nkey": nkey});
        if let Some(sig) = sig {
            json["sig"] = sig.into();
        }
        format!("CONNECT {json}\r\nPING\r\n")
    };
    // Right key, right nonce: in.
    let (mut ok, info) = Raw::connect(server.local_addr()).await;
    ok.send(connect(&public, Some(b64(&pair.sign(nonce_of(&info).as_bytes()))))).await;
    ok.expect("PONG").await;
    // Standard base64 is accepted too, as nats-server does.
    let (mut std_b64, info) = Raw::connect(server.local_addr()).await;
    let sig = base64::engine::general_purpose::STANDARD.encode(pair.sign(nonce_of(&info).as_bytes()));
    std_b64.send(connect(&public, Some(sig))).await;
    std_b64.expect("PONG").await;
    // Another connection's nonce, no signature, garbage, an unknown key.
    let (mut replay, _) = Raw::connect(server.local_addr()).await;
    replay.send(connect(&public, Some(b64(&pair.sign(nonce_of(&first).as_bytes()))))).await;
    let (mut unsigned, _) = Raw::connect(server.local_addr()).await;
    unsigned.send(connect(&public, None)).await;
    let (mut garbage, _) = Raw::connect(server.local_addr()).await;
    garbage.send(connect(&public, Some("!!!".into()))).await;
    let (mut stranger, info) = Raw::connect(server.local_addr()).await;
    let (stranger_seed, stranger_public) = warden_user_key();
    let stranger_pair = warden::nkeys::KeyPair::from_seed(&stranger_seed).unwrap();
    stranger.send(connect(&stranger_public, Some(b64(&stranger_pair.sign(nonce_of(&info).as_bytes()))))).await;
    for raw in [&mut replay, &mut unsigned, &mut garbage, &mut stranger] {
        assert_eq!(raw.expect_closed().await, "-ERR 'Authorization Violation'\r\n");
    }
    // Without nkey users there is no nonce.
    let plain = start(options_from("authorization { users = [ {user: a, password: b} ] }")).await;
    let (_, info) = Raw::connect(plain.local_addr()).await;
    assert!(!info.contains("nonce"), "{info}");
    plain.shutdown().await;
    server.shutdown().await;
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// An unknown nkey costs what a known key with a wrong signature costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_nkey_costs_what_a_bad_signature_costs() {
    let (_, public) = warden_user_key();
    let (_, other) = warden_user_key();
    let mut opts = options_from(&config(&public, &other));
    opts.authorization.as_mut().unwrap().failure_delay_max = Some(Duration::ZERO);
    let server = start(opts).await;
    let (_, stranger) = warden_user_key();
    let attempt = |nkey: String| {
        let addr = server.local_addr();
        async move {
            let (mut raw, _) = Raw::connect(addr).await;
            let sig = "A".repeat(86);
            let t = Instant::now();
            raw.send(format!("CONNECT {{\"verbose\":false,\"nkey\":\"{nkey}\",\"sig\":\"{sig}\"}}\r\nPING\r\n")).await;
            assert_eq!(raw.next_non_ping().await, "-ERR 'Authorization Violation'");
            t.elapsed()
        }
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..60 {
        known.push(attempt(public.clone()).await);
        unknown.push(attempt(stranger.clone()).await);
    }
    let (k, u) = (median(known), median(unknown));
    let ratio = u.as_secs_f64() / k.as_secs_f64();
    eprintln!("nkeys: bad signature {k:?}, unknown key {u:?}, ratio {ratio:.2}");
    assert!((0.67..=1.5).contains(&ratio), "unknown/known = {ratio:.2}");
    server.shutdown().await;
}

#[test]
fn bad_nkey_entries_are_config_errors_with_positions() {
    let bad_key = "authorization { users = [ {nkey: \"UNOTAKEY\"} ] }";
    let account_key =
        "authorization { users = [ {nkey: \"AAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3QPZV\"} ] }";
    let with_user =
        "authorization { users = [ {nkey: \"UAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RLKK\", user: x} ] }";
    let column_of = |text: &str, needle: &str| u32::try_from(text.find(needle).unwrap() + 1).unwrap();
    let cases = [
        (bad_key, "Not a valid public nkey for a user", 1, column_of(bad_key, "\"U")),
        (account_key, "Not a valid public nkey for a user", 1, column_of(account_key, "\"A")),
        (with_user, "Nkey users do not take usernames or passwords", 1, column_of(with_user, "user: x")),
    ];
    for (text, message, line, column) in cases {
        let err = warden::config::load_str(text, "n.conf").unwrap_err();
        assert!(err.message().contains(message), "{err}");
        assert_eq!((err.line(), err.column()), (Some(line), Some(column)), "{err}");
    }
}

/// nats-server accepts a bcrypt hash as the token; so does warden.
#[tokio::test]
async fn a_hashed_token_is_verified_like_a_password() {
    let hash = bcrypt::hash("the-token", 4).unwrap();
    let server = start(options_from(&format!("authorization {{ token: \"{hash}\" }}"))).await;
    let ok = async_nats::ConnectOptions::with_token("the-token".into()).connect(url(&server));
    within(ok).await.unwrap().flush().await.unwrap();
    let bad = async_nats::ConnectOptions::with_token("not-it".into()).connect(url(&server));
    assert!(within(bad).await.is_err());
    server.shutdown().await;
}
