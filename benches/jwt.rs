//! What an operator-mode login costs next to an nkey login: decoding and
//! verifying the user JWT, finding its account and signer, the nonce
//! signature and compiling the JWT's permissions (`JwtAuth::authenticate`),
//! against the nkey users list's one signature check. Both run on the
//! verification pool in the server; this measures the work alone.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use warden::auth::operator::{JwtAuth, Resolver};
use warden::auth::{Authenticator, Claims, ConnectionFacts, Verdict};
use warden::config::{OperatorOptions, Options, ResolverOptions};
use warden::jwt::{self, UserClaims};
use warden::nkeys::{KeyPair, KeyType};
use warden::secret::Secret;

const NONCE: &str = "bench-nonce";

fn key(kind: KeyType) -> KeyPair {
    KeyPair::generate(kind).unwrap_or_else(|e| panic!("{e}"))
}

fn facts() -> ConnectionFacts {
    let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap_or_else(|_| unreachable!());
    ConnectionFacts { nonce: Some(NONCE.into()), ..ConnectionFacts::new(addr) }
}

fn signature(user: &KeyPair) -> String {
    URL_SAFE_NO_PAD.encode(user.sign(NONCE.as_bytes()))
}

fn bench(c: &mut Criterion) {
    let (operator, account, user) = (key(KeyType::Operator), key(KeyType::Account), key(KeyType::User));
    let op =
        jwt::sign(&operator, json!({"sub": operator.public().as_str(), "nats": {"type": "operator", "version": 2}}));
    let limits = json!({"conn": -1, "subs": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true});
    let acc = jwt::sign(
        &operator,
        json!({"sub": account.public().as_str(), "nats": {"type": "account", "version": 2, "limits": limits}}),
    );
    let token = jwt::sign(
        &account,
        json!({"sub": user.public().as_str(), "nats": {"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1,
               "pub": {"allow": ["orders.>", "_INBOX.>"]}, "sub": {"allow": ["orders.*", "_INBOX.>"]}}}),
    );
    let opts = Options {
        operator: Some(OperatorOptions {
            operators: vec![op],
            resolver: ResolverOptions::Memory,
            preload: vec![(account.public().as_str().to_owned(), acc)],
        }),
        system_account: None,
        ..Options::default()
    };
    let resolver = Resolver::load(&opts).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| unreachable!());
    let auth = JwtAuth::new(Arc::new(resolver.directory(None)));
    let claims =
        Claims { jwt: Some(Secret::new(token.clone())), signature: Some(signature(&user)), ..Claims::default() };
    let facts = facts();
    assert!(matches!(auth.authenticate(&claims, &facts), Verdict::Accept(_)));
    c.bench_function("jwt/decode_user", |b| b.iter(|| jwt::decode::<UserClaims>(&token, jwt::now())));
    c.bench_function("jwt/login", |b| b.iter(|| auth.authenticate(&claims, &facts)));

    let nkey_user = key(KeyType::User);
    let config = format!("authorization {{ users: [ {{nkey: {}}} ] }}", nkey_user.public().as_str());
    let nkey_opts = warden::config::load_str(&config, "bench.conf").unwrap_or_else(|e| panic!("{e}")).options;
    let nkeys = warden::auth::from_options(&nkey_opts).unwrap_or_else(|e| panic!("{e}"));
    let nkey_claims = Claims {
        nkey: Some(nkey_user.public().as_str().to_owned()),
        signature: Some(signature(&nkey_user)),
        ..Claims::default()
    };
    assert!(matches!(nkeys.authenticate(&nkey_claims, &facts), Verdict::Accept(_)));
    c.bench_function("nkey/login", |b| b.iter(|| nkeys.authenticate(&nkey_claims, &facts)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
