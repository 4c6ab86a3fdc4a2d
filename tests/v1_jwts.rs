//! v1 JWTs (as 2018-2019 `nsc` wrote them): an operator, accounts and
//! users minted in the v1 layout (top-level `type`, header
//! `{"typ":"jwt","alg":"ed25519"}`, the claims part signed alone), the
//! same config and `.creds` run on nats-server 2.15.1 and on warden, with
//! async-nats logging in. What nats-server does with each user, warden does.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::peers::{free_port, spawn_nats_server};
use common::{options_from, start, within};
use futures::StreamExt;
use serde_json::{json, Value};
use warden::nkeys::{KeyPair, KeyType};

/// A v1 token: `claims` signed by `issuer` over the claims part alone.
fn sign_v1(issuer: &KeyPair, mut claims: Value) -> String {
    claims["iss"] = issuer.public().as_str().into();
    claims["iat"] = 1_543_761_275.into();
    claims["jti"] = "V1TESTJTI".into();
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"jwt","alg":"ed25519"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(issuer.sign(body.as_bytes()));
    format!("{header}.{body}.{signature}")
}

fn creds(jwt: &str, user: &KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().expose()
    )
}

struct V1 {
    config_body: String,
    /// A user of an account with every limit unlimited.
    alice: String,
    /// A user of an account whose v1 JWT has `limits: {}`.
    zed: String,
}

fn v1_setup() -> V1 {
    let op = KeyPair::generate(KeyType::Operator).unwrap();
    let op_pub = op.public().as_str().to_owned();
    let operator = sign_v1(&op, json!({"sub": op_pub, "name": "V1OP", "type": "operator", "nats": {}}));
    let unlimited = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                           "wildcards": true, "conn": -1, "leaf": -1});
    let account = |name: &str, limits: &Value| {
        let key = KeyPair::generate(KeyType::Account).unwrap();
        let jwt = sign_v1(
            &op,
            json!({"sub": key.public().as_str(), "name": name, "type": "account", "nats": {"limits": limits}}),
        );
        (key, jwt)
    };
    let (sys, sys_jwt) = account("SYS", &unlimited);
    let (a, a_jwt) = account("A", &unlimited);
    let (z, z_jwt) = account("Z", &json!({}));
    let user = |account: &KeyPair, name: &str| {
        let key = KeyPair::generate(KeyType::User).unwrap();
        let perms = json!({"allow": ["v1.>", "_INBOX.>"]});
        let jwt = sign_v1(
            account,
            json!({"sub": key.public().as_str(), "name": name, "type": "user",
                   "nats": {"pub": perms, "sub": perms}}),
        );
        creds(&jwt, &key)
    };
    let config_body = format!(
        "operator: \"{operator}\"\nsystem_account: {}\nresolver: MEMORY\nresolver_preload {{\n  {}: \"{sys_jwt}\"\n  {}: \"{a_jwt}\"\n  {}: \"{z_jwt}\"\n}}\n",
        sys.public().as_str(),
        sys.public().as_str(),
        a.public().as_str(),
        z.public().as_str(),
    );
    V1 { config_body, alice: user(&a, "alice"), zed: user(&z, "zed") }
}

/// Logs in with `creds`, retrying while the server may still be starting.
async fn connect_retrying(url: &str, creds: &str) -> async_nats::Client {
    within(async {
        loop {
            let opts = async_nats::ConnectOptions::with_credentials(creds).unwrap();
            if let Ok(client) =
                opts.connection_timeout(Duration::from_secs(3)).max_reconnects(Some(1)).connect(url).await
            {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Alice logs in, and her v1 permissions hold; Zed's login, in an account
/// whose v1 JWT left its limits out, succeeds or not: the answer.
async fn scenario(url: &str, v1: &V1) -> bool {
    let alice = connect_retrying(url, &v1.alice).await;
    let mut sub = alice.subscribe("v1.x").await.unwrap();
    // A round trip: the SUB is in place before the publish.
    alice.flush().await.unwrap();
    let _ = alice.request("v1.nobody", "".into()).await;
    alice.publish("v1.x", "hello".into()).await.unwrap();
    assert_eq!(within(sub.next()).await.unwrap().payload, "hello");
    let zed = async_nats::ConnectOptions::with_credentials(&v1.zed)
        .unwrap()
        .connection_timeout(Duration::from_secs(3))
        .connect(url);
    within(zed).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_user_logs_in_on_nats_server_2_15_and_on_warden_alike() {
    let v1 = v1_setup();
    let nats_answer = match common::deps::nats_server_2_15() {
        Some(binary) => {
            let port = free_port();
            let config = format!("host: 127.0.0.1\nport: {port}\n{}", v1.config_body);
            let _server = spawn_nats_server(&binary, "v1-jwts", &config);
            Some(scenario(&format!("nats://127.0.0.1:{port}"), &v1).await)
        }
        None => None,
    };
    let server = start(options_from(&format!("port: 4222\n{}", v1.config_body))).await;
    let warden_answer = scenario(&format!("nats://{}", server.local_addr()), &v1).await;
    eprintln!("zed logs in: nats-server {nats_answer:?}, warden {warden_answer}");
    if let Some(nats_answer) = nats_answer {
        assert_eq!(warden_answer, nats_answer, "a v1 account without limits: nats-server and warden differ");
    }
    server.shutdown().await;
}

/// nats.py's own JWT tests log in with `.creds` files whose JWTs are v1
/// (2019 `nsc`): the stock Python client, with the same kind of file,
/// reading the JWT and signing the nonce itself, and, as those tests also
/// do, with `user_jwt_cb` and `signature_cb`; Zed's account aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_py_logs_in_with_v1_creds_as_its_own_jwt_tests_do() {
    let Some(python) = common::deps::python() else { return };
    let v1 = v1_setup();
    let dir = common::temp_dir("v1-jwts-py");
    let creds = dir.join("alice.creds");
    std::fs::write(&creds, &v1.alice).unwrap();
    let server = start(options_from(&v1.config_body)).await;
    let url = format!("nats://{}", server.local_addr());
    const PY: &str = r#"
import asyncio, base64, sys, nats, nkeys
async def main():
    url, creds = sys.argv[1], sys.argv[2]
    nc = await nats.connect(url, user_credentials=creds, allow_reconnect=False)
    sub = await nc.subscribe("v1.py")
    await nc.flush()
    await nc.publish("v1.py", b"from creds")
    print((await sub.next_msg(timeout=5)).data.decode())
    await nc.close()
    text = open(creds).read().split("\n")
    jwt = text[1].encode()
    seed = text[[i for i, l in enumerate(text) if "SEED" in l][0] + 1].encode()
    def user_jwt_cb():
        return jwt
    def signature_cb(nonce):
        # As nats.py's tests sign: standard base64, padded.
        return base64.b64encode(nkeys.from_seed(seed).sign(nonce.encode()))
    nc = await nats.connect(url, user_jwt_cb=user_jwt_cb, signature_cb=signature_cb, allow_reconnect=False)
    sub = await nc.subscribe("v1.cb")
    await nc.flush()
    await nc.publish("v1.cb", b"from callbacks")
    print((await sub.next_msg(timeout=5)).data.decode())
    await nc.close()
asyncio.run(main())
"#;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).arg("-c").arg(PY).arg(url).arg(creds).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "from creds\nfrom callbacks", "stderr: {}", String::from_utf8_lossy(&out.stderr));
    server.shutdown().await;
}
