//! The answer document's checks and the request document's shape.

use super::*;
use crate::nkeys::KeyPair;
use crate::perms::SubDecision;

fn defaults() -> HashMap<String, AccountDefaults> {
    HashMap::from([("APP".to_owned(), AccountDefaults::Compiled(Arc::new(PermissionSet::unrestricted())))])
}

fn facts() -> ConnectionFacts {
    ConnectionFacts::new("127.0.0.1:4000".parse().unwrap())
}

fn claims(user: &str) -> Claims {
    Claims { user: Some(user.into()), password: Some(Secret::new(String::from("pw"))), ..Claims::default() }
}

fn judged(answer: Value) -> Verdict {
    judge(
        &defaults(),
        &claims("alice"),
        &facts(),
        answer.to_string().as_bytes(),
        UNIX_EPOCH + Duration::from_secs(1000),
    )
}

fn identity(answer: Value) -> Identity {
    match judged(answer) {
        Verdict::Accept(identity) => identity,
        other => panic!("refused: {other:?}"),
    }
}

#[test]
fn permissions_take_the_configs_shapes() {
    let id = identity(json!({
        "allow": true, "account": "APP", "user": "Alice",
        "permissions": { "pub": "app.>", "sub": { "allow": ["app.>"], "deny": "app.secret" }, "allow_responses": { "max": 2, "expires": 1.5 } },
    }));
    assert_eq!((&*id.account, id.user.as_deref(), id.delegated), ("APP", Some("Alice"), true));
    assert!(id.permissions.may_publish(b"app.x") && !id.permissions.may_publish(b"other"));
    assert!(matches!(id.permissions.may_subscribe(b"app.secret", None), SubDecision::Denied));
    assert!(matches!(id.permissions.may_subscribe(b"app.x", None), SubDecision::Allowed { .. }));
    // warden's literal-only subscribe rules, as in the config.
    let id = identity(json!({
        "allow": true, "account": "APP",
        "permissions": { "sub": { "allow": "_INBOX.>", "literal": "sensor.*.temp" } },
    }));
    assert!(id.permissions.may_subscribe(b"sensor.1.temp", None).is_allowed());
    assert!(!id.permissions.may_subscribe(b"sensor.*.temp", None).is_allowed());
    // Without permissions: the account's defaults; without a user: the CONNECT user.
    let id = identity(json!({ "allow": true, "account": "APP", "expires": 2000 }));
    assert!(id.permissions.may_publish(b"anything"));
    assert_eq!(id.user.as_deref(), Some("alice"));
    assert_eq!(id.expires, Some(UNIX_EPOCH + Duration::from_secs(2000)));
}

#[test]
fn anything_but_a_clear_yes_refuses() {
    let unavailable = |v: &Verdict| matches!(v, Verdict::Refuse(RefusalReason::ServiceUnavailable));
    for answer in [
        json!({ "allow": true, "account": "NOPE" }),
        json!({ "allow": true }),
        json!({ "allow": true, "account": "APP", "expires": 999 }),
        json!({ "allow": true, "account": "APP", "expires": 16234444444444444574u64 }),
        json!({ "allow": true, "account": "APP", "permissions": { "publish": ["a..b"] } }),
        json!({ "allow": true, "account": "APP", "permissions": { "publish": "x", "extra": 1 } }),
        json!({ "allow": true, "account": "APP", "admin": true }),
        json!({ "allow": "yes", "account": "APP" }),
        json!({ "allow": true, "account": "APP", "permissions": { "allow_responses": { "expires": -1 } } }),
        // Empty shapes would grant everything, past the account's defaults.
        json!({ "allow": true, "account": "APP", "permissions": {} }),
        json!({ "allow": true, "account": "APP", "permissions": { "publish": null, "subscribe": null } }),
        json!({ "allow": true, "account": "APP", "permissions": { "publish": {}, "subscribe": ["app.>"] } }),
        json!({ "allow": true, "account": "APP", "permissions": { "sub": { "allow": null }, "pub": "app.>" } }),
        json!({ "allow": true, "account": "APP", "permissions": { "pub": { "literal": "app.*" } } }),
    ] {
        assert!(unavailable(&judged(answer.clone())), "{answer}");
    }
    assert!(matches!(judged(json!({ "allow": false })), Verdict::Refuse(RefusalReason::ServiceRefused)));
    let told = judged(json!({ "allow": false, "reason": "no" }));
    assert!(matches!(told, Verdict::Explained(RefusalReason::ServiceRefused, t) if t == "no"));
}

#[test]
fn nkeys_are_sent_only_with_a_good_signature_of_the_nonce() {
    let key = KeyPair::generate(KeyType::User).unwrap();
    let mut facts = facts();
    facts.nonce = Some("the-nonce".into());
    let sig = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, key.sign(b"the-nonce"));
    let mut claims = Claims { nkey: Some(key.public().as_str().into()), signature: Some(sig), ..Claims::default() };
    assert!(nkey_proven(&claims, &facts));
    claims.signature = Some("AAAA".into());
    assert!(!nkey_proven(&claims, &facts));
    facts.nonce = None;
    assert!(!nkey_proven(&claims, &facts));
    assert!(nkey_proven(&Claims::default(), &facts), "no nkey, nothing to prove");
}

/// An account's templated defaults are filled in per login, with the
/// authorizer's user name; one that cannot be filled refuses the login.
#[test]
fn templated_account_defaults_are_filled_in_for_each_login() {
    let perms = Permissions {
        publish: Some(SubjectRules { allow: Some(vec!["chat.{{name()}}.>".into()]), ..Default::default() }),
        subscribe: Some(SubjectRules { deny: Some(vec!["chat.{{name()}}.muted".into()]), ..Default::default() }),
        allow_responses: None,
    };
    let defaults = HashMap::from([("APP".to_owned(), AccountDefaults::Templated(Arc::new(perms), "APP".into()))]);
    let judged = |answer: Value| {
        judge(
            &defaults,
            &claims("alice"),
            &facts(),
            answer.to_string().as_bytes(),
            UNIX_EPOCH + Duration::from_secs(1000),
        )
    };
    let Verdict::Accept(id) = judged(json!({ "allow": true, "account": "APP", "user": "dave" })) else {
        panic!("dave is admitted")
    };
    assert!(id.permissions.may_publish(b"chat.dave.x") && !id.permissions.may_publish(b"chat.alice.x"));
    assert!(!id.permissions.may_subscribe(b"chat.dave.muted", None).is_allowed());
    let refused = judged(json!({ "allow": true, "account": "APP", "user": "a.b" }));
    assert!(matches!(refused, Verdict::Refuse(RefusalReason::ServiceUnavailable)));
}
