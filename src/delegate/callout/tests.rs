//! The request's shape and the checks on an answer, without sockets. The
//! answers here are signed with our own encoder; that warden and the npm
//! libraries agree on the wire is `tests/callout.rs`'s business.

use std::net::SocketAddr;

use super::*;
use crate::auth::{ClientSoftware, TlsFacts};
use crate::broker::Account;
use crate::perms::PermissionSet;
use crate::secret::Secret;

const NOW: i64 = 1_800_000_000;

struct Fixture {
    setup: CalloutSetup,
    issuer: KeyPair,
    service: CurveKeyPair,
}

fn fixture(xkey: bool) -> Fixture {
    let issuer = KeyPair::generate(KeyType::Account).unwrap();
    let service = CurveKeyPair::generate();
    let defaults = HashMap::from([
        ("APP".to_owned(), AccountDefaults::Compiled(Arc::new(PermissionSet::unrestricted()))),
        ("AUTH".to_owned(), AccountDefaults::Compiled(Arc::new(PermissionSet::unrestricted()))),
    ]);
    let setup = CalloutSetup {
        issuer: issuer.public().as_str().to_owned(),
        account: "AUTH".into(),
        service_xkey: xkey.then(|| service.public().clone()),
        server_xkey: xkey.then(|| Arc::new(CurveKeyPair::generate())),
        server_key: Arc::new(KeyPair::generate(KeyType::Server).unwrap()),
        server_name: "w1".into(),
        host: "127.0.0.1".into(),
        version: "2.9.10".into(),
        cluster: Some("c".into()),
        timeout_secs: 2,
        defaults,
    };
    Fixture { setup, issuer, service }
}

fn claims() -> Claims {
    Claims {
        user: Some("alice".into()),
        password: Some(Secret::new(String::from("s3cret"))),
        client: ClientSoftware { name: Some("app".into()), lang: Some("rust".into()), version: None, protocol: 1 },
        ..Claims::default()
    }
}

fn facts() -> ConnectionFacts {
    let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    ConnectionFacts { client_id: 7, ..ConnectionFacts::new(addr) }
}

fn user_key() -> String {
    KeyPair::generate(KeyType::User).unwrap().public().as_str().to_owned()
}

impl Fixture {
    fn server_id(&self) -> String {
        self.setup.server_key.public().as_str().to_owned()
    }

    /// A user JWT and the response around it, as a service writes them.
    fn answer(&self, user: &str, tweak: impl FnOnce(&mut Value, &mut Value)) -> Vec<u8> {
        let mut granted = json!({
            "sub": user, "aud": "APP", "name": "Alice", "iat": NOW,
            "nats": { "pub": { "allow": ["app.>"] }, "sub": { "allow": ["app.>"] }, "type": "user", "version": 2 },
        });
        let mut response = json!({
            "sub": user, "aud": self.server_id(), "iat": NOW,
            "nats": { "type": "authorization_response", "version": 2 },
        });
        tweak(&mut granted, &mut response);
        if response["nats"]["jwt"].is_null() && response["nats"]["error"].is_null() {
            response["nats"]["jwt"] = jwt::sign(&self.issuer, granted).into();
        }
        jwt::sign(&self.issuer, response).into_bytes()
    }

    fn judge(&self, user: &str, reply: &[u8]) -> Verdict {
        judge(&self.setup, user, &claims(), &facts(), reply, NOW)
    }
}

fn accepted(verdict: Verdict) -> crate::auth::Identity {
    match verdict {
        Verdict::Accept(identity) => identity,
        other => panic!("refused: {other:?}"),
    }
}

fn unavailable(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Refuse(RefusalReason::ServiceUnavailable))
}

#[test]
fn the_request_carries_what_nats_server_sends() {
    let f = fixture(false);
    let user = user_key();
    let mut facts = facts();
    facts.tls = Some(TlsFacts {
        version: "TLSv1_3".into(),
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
        chain: Arc::from(vec![vec![1u8, 2, 3]]),
    });
    let claims = request_claims(&f.setup, &user, &claims(), &facts, NOW);
    assert_eq!(claims["aud"], "nats-authorization-request");
    assert_eq!(claims["sub"], f.setup.issuer.as_str());
    assert_eq!(claims["exp"], NOW + 2);
    let nats = &claims["nats"];
    assert_eq!(nats["type"], "authorization_request");
    assert_eq!(nats["user_nkey"], user.as_str());
    assert_eq!(nats["server_id"]["id"], f.server_id());
    assert_eq!(nats["server_id"]["cluster"], "c");
    assert_eq!(
        nats["client_info"],
        json!({"host": "127.0.0.1", "id": 7, "kind": "Client", "type": "nats", "user": "alice", "name": "app"})
    );
    assert_eq!(nats["connect_opts"]["pass"], "s3cret");
    assert_eq!(nats["connect_opts"]["lang"], "rust");
    assert_eq!(nats["connect_opts"]["protocol"], 1);
    assert!(nats["connect_opts"].get("auth_token").is_none());
    assert_eq!(nats["client_tls"]["version"], "1.3");
    assert_eq!(nats["client_tls"]["cipher"], "TLS_AES_128_GCM_SHA256");
    assert_eq!(
        nats["client_tls"]["verified_chains"][0][0],
        "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n"
    );
    // Signed by the server: it decodes as a JWT issued by the server key.
    let token = jwt::sign(&f.setup.server_key, claims);
    let body = token.split('.').nth(1).unwrap();
    let payload: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    assert_eq!(payload["iss"], f.server_id());
    assert!(payload["jti"].as_str().is_some_and(|j| j.len() == 52), "{}", payload["jti"]);
}

#[test]
fn a_verified_answer_places_the_user_with_its_permissions_and_expiry() {
    let f = fixture(false);
    let user = user_key();
    let reply = f.answer(&user, |granted, _| granted["exp"] = (NOW + 60).into());
    let identity = accepted(f.judge(&user, &reply));
    assert_eq!(&*identity.account, "APP");
    assert_eq!(identity.user.as_deref(), Some("Alice"));
    assert!(identity.delegated && !identity.serves_callout);
    assert!(identity.expires.is_some());
    assert!(identity.permissions.may_publish(b"app.x"));
    assert!(!identity.permissions.may_publish(b"other.x"));
}

#[test]
fn answers_not_for_this_login_or_not_from_the_issuer_are_refused() {
    let f = fixture(false);
    let user = user_key();
    let other_server = KeyPair::generate(KeyType::Server).unwrap().public().as_str().to_owned();
    let other_account = KeyPair::generate(KeyType::Account).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("another server", f.answer(&user, |_, r| r["aud"] = other_server.clone().into())),
        ("another login's key", f.answer(&user_key(), |_, _| {})),
        ("expired", f.answer(&user, |_, r| r["exp"] = (NOW - 1).into())),
        ("user JWT for another key", f.answer(&user, |g, _| g["sub"] = user_key().into())),
        ("user JWT in no account here", f.answer(&user, |g, _| g["aud"] = "NOPE".into())),
        ("user JWT expired", f.answer(&user, |g, _| g["exp"] = (NOW - 1).into())),
        (
            "issuer_account in config mode",
            f.answer(&user, |g, _| g["nats"]["issuer_account"] = f.setup.issuer.clone().into()),
        ),
        ("not a JWT", b"eyJhbGciOiJub25lIn0.e30.".to_vec()),
    ];
    for (what, reply) in cases {
        assert!(unavailable(&f.judge(&user, &reply)), "{what}");
    }
    // Signed by another account key, response or user JWT.
    let forged = jwt::sign(
        &other_account,
        json!({"sub": user, "aud": f.server_id(), "nats": {"type": "authorization_response", "version": 2, "error": "x"}}),
    );
    assert!(unavailable(&f.judge(&user, forged.as_bytes())));
    let granted = jwt::sign(&other_account, json!({"sub": user, "aud": "APP", "nats": {"type": "user", "version": 2}}));
    let wrapped = f.answer(&user, |_, r| r["nats"]["jwt"] = granted.into());
    assert!(unavailable(&f.judge(&user, &wrapped)));
}

#[test]
fn a_refusal_keeps_its_reason_and_an_empty_answer_refuses() {
    let f = fixture(false);
    let user = user_key();
    let reply = f.answer(&user, |_, r| r["nats"]["error"] = "not today".into());
    assert!(matches!(f.judge(&user, &reply), Verdict::Explained(RefusalReason::ServiceRefused, t) if t == "not today"));
    assert!(matches!(f.judge(&user, b""), Verdict::Refuse(RefusalReason::ServiceRefused)));
}

#[test]
fn sealed_requests_open_for_the_service_and_sealed_answers_open_here() {
    let f = fixture(true);
    let request = Request::build(&f.setup, &claims(), &facts(), NOW).unwrap();
    let server = f.setup.server_xkey.as_ref().unwrap();
    let header = String::from_utf8(request.header.unwrap()).unwrap();
    assert_eq!(header, format!("NATS/1.0\r\nNats-Server-Xkey: {}\r\n\r\n", server.public().as_str()));
    let opened = f.service.open(&request.payload, server.public()).unwrap();
    assert!(opened.starts_with(b"eyJ"));
    let reply = f.answer(&request.user, |_, _| {});
    let sealed = f.service.seal(&reply, server.public());
    accepted(f.judge(&request.user, &sealed));
    // A plain answer is read too (nats-server does); garbage is refused.
    accepted(f.judge(&request.user, &reply));
    assert!(unavailable(&f.judge(&request.user, b"xkv1not-sealed-by-the-service")));
}

#[test]
fn a_user_placed_in_the_callout_account_cannot_read_its_requests() {
    let f = fixture(false);
    let user = user_key();
    let reply = f.answer(&user, |g, _| g["aud"] = "AUTH".into());
    let identity = accepted(f.judge(&user, &reply));
    assert_eq!(&*identity.account, "AUTH");
    use crate::perms::SubDecision;
    assert!(matches!(identity.permissions.may_subscribe(b"$SYS.REQ.USER.AUTH", None), SubDecision::Denied));
    assert!(matches!(identity.permissions.may_subscribe(b"app.x", None), SubDecision::Allowed { .. }));
}

#[test]
fn answers_reach_only_the_login_waiting_for_them() {
    let mut pending = HashMap::new();
    let (tx, mut rx) = oneshot::channel();
    pending.insert("ID1".to_owned(), tx);
    let msg = |subject: &str| InboxMsg {
        account: Arc::new(Account::new("AUTH".into(), false)),
        subject: subject.as_bytes().into(),
        reply: None,
        header_len: None,
        message: b"answer".to_vec().into(),
        client: None,
    };
    deliver(&mut pending, &msg("$SYS._INBOX.P.ID2"));
    assert!(rx.try_recv().is_err());
    deliver(&mut pending, &msg("$SYS._INBOX.P.ID1"));
    assert_eq!(rx.try_recv().unwrap(), b"answer");
    assert!(pending.is_empty());
}
