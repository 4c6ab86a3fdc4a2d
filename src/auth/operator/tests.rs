//! The resolver and the JWT login with tokens signed here; the same flows
//! with tokens of the official Go library are in `tests/operator.rs`.

use std::net::SocketAddr;

use serde_json::json;

use super::*;
use crate::auth::{Authenticator, Claims, ConnectionFacts, RefusalReason, Verdict};
use crate::config::OperatorOptions;
use crate::jwt::testing::sign;
use crate::nkeys::{KeyPair, KeyType};
use crate::secret::Secret;

struct World {
    operator: KeyPair,
    account: KeyPair,
    opts: Options,
}

fn account_jwt(operator: &KeyPair, account: &KeyPair, iat: i64, nats: serde_json::Value) -> String {
    let mut nats = nats;
    nats["type"] = json!("account");
    nats["version"] = json!(2);
    nats["limits"] = json!({"conn": -1, "subs": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true});
    sign(operator, json!({"sub": account.public().as_str(), "iat": iat, "jti": format!("j{iat}")}), nats)
}

fn world() -> World {
    let operator = KeyPair::generate(KeyType::Operator).unwrap();
    let account = KeyPair::generate(KeyType::Account).unwrap();
    let op = sign(&operator, json!({"sub": operator.public().as_str()}), json!({"type": "operator", "version": 2}));
    let a = account_jwt(&operator, &account, 100, json!({}));
    let opts = Options {
        operator: Some(OperatorOptions {
            operators: vec![op],
            resolver: ResolverOptions::Memory,
            preload: vec![(account.public().as_str().to_owned(), a)],
        }),
        system_account: None,
        ..Options::default()
    };
    World { operator, account, opts }
}

fn user_jwt(signer: &KeyPair, user: &KeyPair, nats: serde_json::Value) -> Secret {
    let mut nats = nats;
    nats["type"] = json!("user");
    nats["version"] = json!(2);
    for limit in ["subs", "data", "payload"] {
        if nats.get(limit).is_none() {
            nats[limit] = json!(-1);
        }
    }
    Secret::new(sign(signer, json!({"sub": user.public().as_str(), "iat": crate::jwt::now()}), nats))
}

fn login(auth: &JwtAuth, user: &KeyPair, token: Secret, nonce: &str) -> Verdict {
    let signature =
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, user.sign(nonce.as_bytes()));
    let claims = Claims { jwt: Some(token), signature: Some(signature), ..Claims::default() };
    let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    auth.authenticate(&claims, &ConnectionFacts { nonce: Some("the-nonce".into()), ..ConnectionFacts::new(addr) })
}

fn auth_of(resolver: &Resolver) -> JwtAuth {
    JwtAuth::new(std::sync::Arc::new(resolver.directory(None)))
}

#[test]
fn users_of_held_accounts_log_in_with_a_signed_nonce() {
    let w = world();
    let resolver = Resolver::load(&w.opts).unwrap().unwrap();
    let auth = auth_of(&resolver);
    let user = KeyPair::generate(KeyType::User).unwrap();
    let token = user_jwt(&w.account, &user, json!({"pub": {"allow": ["a.>"]}}));
    let Verdict::Accept(identity) = login(&auth, &user, token.clone(), "the-nonce") else { panic!("refused") };
    assert_eq!(&*identity.account, w.account.public().as_str());
    assert!(identity.jwt.is_some());
    // A signature of another nonce, or by another key, does not log in.
    assert!(matches!(login(&auth, &user, token.clone(), "other"), Verdict::Refuse(RefusalReason::BadCredentials)));
    let other = KeyPair::generate(KeyType::User).unwrap();
    assert!(matches!(login(&auth, &other, token, "the-nonce"), Verdict::Refuse(_)));
    // Signed by a key the account does not list.
    let stranger = KeyPair::generate(KeyType::Account).unwrap();
    let mut nats = json!({});
    nats["issuer_account"] = json!(w.account.public().as_str());
    let forged = user_jwt(&stranger, &user, nats);
    assert!(matches!(login(&auth, &user, forged, "the-nonce"), Verdict::Refuse(RefusalReason::BadJwt)));
    // An expired user.
    let expired = Secret::new(sign(
        &w.account,
        json!({"sub": user.public().as_str(), "exp": 1000}),
        json!({"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1}),
    ));
    assert!(matches!(login(&auth, &user, expired, "the-nonce"), Verdict::Refuse(RefusalReason::BadJwt)));
}

#[test]
fn updates_must_be_signed_by_the_operator_and_newer() {
    let w = world();
    let resolver = Resolver::load(&w.opts).unwrap().unwrap();
    let key = w.account.public().as_str().to_owned();
    let user = KeyPair::generate(KeyType::User).unwrap();
    let token = user_jwt(&w.account, &user, json!({}));
    let Verdict::Accept(identity) = login(&auth_of(&resolver), &user, token, "the-nonce") else { panic!() };

    let rogue = KeyPair::generate(KeyType::Operator).unwrap();
    let forged = account_jwt(&rogue, &w.account, 200, json!({}));
    let refused = resolver.update(&forged, Some(&key)).unwrap_err();
    assert!(refused.description.contains("not a trusted operator key"), "{refused:?}");
    let older = account_jwt(&w.operator, &w.account, 50, json!({}));
    assert_eq!(resolver.update(&older, None), Ok(Update::Unchanged(key.clone())));
    let other = KeyPair::generate(KeyType::Account).unwrap();
    let wrong_subject = account_jwt(&w.operator, &other, 300, json!({}));
    assert!(resolver.update(&wrong_subject, Some(&key)).is_err());
    // The memory resolver updates only accounts it holds.
    assert_eq!(resolver.update(&wrong_subject, None), Ok(Update::Unchanged(other.public().as_str().to_owned())));

    // Revoking the user: its identity no longer refreshes.
    let revokes = account_jwt(
        &w.operator,
        &w.account,
        400,
        json!({"revocations": {user.public().as_str(): crate::jwt::now() + 5}}),
    );
    assert_eq!(resolver.update(&revokes, Some(&key)), Ok(Update::Updated(key.clone())));
    let auth = auth_of(&resolver);
    assert!(auth.refresh(&identity).is_none());
    assert_eq!(resolver.lookup(&key).as_deref(), Some(revokes.as_str()));
}

#[test]
fn account_defaults_and_scoped_templates_give_the_permissions() {
    let w = world();
    let scoped = KeyPair::generate(KeyType::Account).unwrap();
    let a = account_jwt(
        &w.operator,
        &w.account,
        500,
        json!({
            "default_permissions": {"pub": {"allow": ["defaults.>"]}},
            "signing_keys": [{"kind": "user_scope", "key": scoped.public().as_str(), "role": "r",
                              "template": {"pub": {"allow": ["scoped.{{name()}}.>"]}, "subs": -1, "payload": -1, "data": -1}}],
        }),
    );
    let resolver = Resolver::load(&w.opts).unwrap().unwrap();
    resolver.update(&a, None).unwrap();
    let auth = auth_of(&resolver);
    let user = KeyPair::generate(KeyType::User).unwrap();
    let plain = user_jwt(&w.account, &user, json!({}));
    let Verdict::Accept(identity) = login(&auth, &user, plain, "the-nonce") else { panic!() };
    assert_eq!(
        identity.permissions.source().and_then(|p| p.publish.as_ref()).and_then(|r| r.allow.clone()),
        Some(vec!["defaults.>".to_string()])
    );
    let scoped_user = json!({"type": "user", "version": 2, "issuer_account": w.account.public().as_str()});
    let by_scope =
        Secret::new(sign(&scoped, json!({"sub": user.public().as_str(), "name": "carol"}), scoped_user.clone()));
    let Verdict::Accept(identity) = login(&auth, &user, by_scope, "the-nonce") else { panic!() };
    let publish = identity.permissions.source().and_then(|p| p.publish.clone()).and_then(|r| r.allow);
    assert_eq!(publish, Some(vec!["scoped.carol.>".to_string()]));
    // A user named `*` gets nothing from the template, not every user's `scoped.*.>`.
    let star = Secret::new(sign(&scoped, json!({"sub": user.public().as_str(), "name": "*"}), scoped_user));
    let Verdict::Accept(identity) = login(&auth, &user, star, "the-nonce") else { panic!() };
    assert!(!identity.permissions.may_publish(b"scoped.carol.x") && !identity.permissions.may_publish(b"scoped.*.x"));
    let publish = identity.permissions.source().and_then(|p| p.publish.clone());
    assert_eq!(publish.map(|r| (r.allow, r.deny)), Some((None, Some(vec![">".to_string()]))));
    // A scoped user carrying permissions of its own is refused.
    let own = Secret::new(sign(
        &scoped,
        json!({"sub": user.public().as_str()}),
        json!({"type": "user", "version": 2, "issuer_account": w.account.public().as_str(), "pub": {"allow": [">"]}}),
    ));
    assert!(matches!(login(&auth, &user, own, "the-nonce"), Verdict::Refuse(RefusalReason::BadJwt)));
}

#[test]
fn trace_claims_become_the_accounts_msg_trace_and_allow_trace() {
    let operator = KeyPair::generate(KeyType::Operator).unwrap();
    let op = sign(&operator, json!({"sub": operator.public().as_str()}), json!({"type": "operator", "version": 2}));
    let (a, b) = (KeyPair::generate(KeyType::Account).unwrap(), KeyPair::generate(KeyType::Account).unwrap());
    let (a_key, b_key) = (a.public().as_str().to_owned(), b.public().as_str().to_owned());
    let accounts = |a_nats: serde_json::Value| {
        let b_nats = json!({
            "exports": [{"subject": "svc", "type": "service", "allow_trace": true}, {"subject": "feed", "type": "stream"}],
        });
        let opts = Options {
            operator: Some(OperatorOptions {
                operators: vec![op.clone()],
                resolver: ResolverOptions::Memory,
                preload: vec![
                    (a_key.clone(), account_jwt(&operator, &a, 100, a_nats)),
                    (b_key.clone(), account_jwt(&operator, &b, 100, b_nats)),
                ],
            }),
            ..Options::default()
        };
        Resolver::load(&opts).unwrap().unwrap().directory(None).options(&Options::default()).accounts
    };
    let imports = json!([
        {"subject": "svc", "account": b_key, "type": "service"},
        {"subject": "feed", "account": b_key, "type": "stream", "allow_trace": true},
    ]);
    let held = accounts(json!({"trace": {"dest": "acc.trace"}, "imports": imports}));
    let a_config = held.iter().find(|c| c.name == a_key).expect("A held");
    let trace = a_config.msg_trace.as_ref().expect("A's trace");
    assert_eq!((trace.dest.as_str(), trace.sampling), ("acc.trace", 100), "absent sampling is 100");
    assert!(a_config.imports.iter().any(|i| i.subject == "feed" && i.allow_trace));
    let b_config = held.iter().find(|c| c.name == b_key).expect("B held");
    assert!(b_config.exports.iter().any(|e| e.subject == "svc" && e.allow_trace));
    assert!(b_config.exports.iter().any(|e| e.subject == "feed" && !e.allow_trace));
    let sampled = accounts(json!({"trace": {"dest": "acc.trace", "sampling": 25}}));
    assert_eq!(
        sampled.iter().find(|c| c.name == a_key).and_then(|c| c.msg_trace.as_ref()).map(|t| t.sampling),
        Some(25)
    );
    // What the Go library's validation refuses leaves the account out.
    for refused in [
        json!({"trace": {"dest": "acc.*"}}),
        json!({"trace": {"dest": ""}}),
        json!({"trace": {"dest": "acc.trace", "sampling": 101}}),
        json!({"trace": {"dest": "acc.trace", "sampling": -1}}),
        json!({"imports": [{"subject": "svc", "account": b_key, "type": "service", "allow_trace": true}]}),
        json!({"exports": [{"subject": "s", "type": "stream", "allow_trace": true}]}),
    ] {
        let held = accounts(refused.clone());
        assert!(!held.iter().any(|c| c.name == a_key), "{refused} was held");
    }
    // A push is answered as nats-server answers it.
    let w = world();
    let resolver = Resolver::load(&w.opts).unwrap().unwrap();
    let bad = account_jwt(&w.operator, &w.account, 200, json!({"trace": {"dest": "acc.>", "sampling": 500}}));
    let refused = resolver.update(&bad, None).unwrap_err();
    assert_eq!(
        refused.description,
        "jwt validation failed - validation errors: [the account Trace.Destination subject \"acc.>\" is not a \
         valid publish subject the account Trace.Sampling value '500' is not valid, should be in the range [1..100]]"
    );
}
