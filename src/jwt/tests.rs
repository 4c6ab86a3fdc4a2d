use serde_json::json;

use super::testing::sign;
use super::*;
use crate::nkeys::{KeyPair, KeyType};

/// Written by the official Go library (nats-io/jwt v2.3.0, `tests/jwtgen`).
const OPERATOR: &str = include_str!("vectors/operator.jwt");
const ACCOUNT_A: &str = include_str!("vectors/account_a.jwt");
const ACCOUNT_B: &str = include_str!("vectors/account_b.jwt");
const USER_ALICE: &str = include_str!("vectors/user_alice.jwt");
const USER_CAROL: &str = include_str!("vectors/user_carol.jwt");
const A: &str = "ACWH6PTXWIFUAMWK5XKMS2DSDWRJAM2J25RHDSPTRXACAYALUYZJUOYC";
const B: &str = "AD3ZCLLDKV5RBNUNDHZQXFG4WBU5KDJ4JZG3XGN3RSR3M4JXUKDDNIXA";
const NOW: i64 = 1_796_186_960;

#[test]
fn tokens_of_the_go_library_decode() {
    let op = decode::<OperatorClaims>(OPERATOR, NOW).unwrap();
    assert_eq!(op.registered.name, "TEST_OP");
    assert_eq!(op.registered.sub, op.registered.iss);
    assert_eq!(op.nats.signing_keys.len(), 1);
    assert_eq!(op.nats.system_account, "ADEE2OBPUBFEMH7D6NOVNW6JQX4LDIJ3H4ABPZI5IYW7AE6JSD7V4DYU");

    let a = decode::<AccountClaims>(ACCOUNT_A, NOW).unwrap();
    assert_eq!(a.registered.sub, A);
    assert_eq!(a.issuer.as_str(), op.nats.signing_keys[0]);
    assert_eq!(a.nats.limits.conn, -1);
    assert!(a.nats.limits.wildcards);
    assert_eq!(a.nats.imports.len(), 2);
    let svc = a.nats.imports.iter().find(|i| i.kind == ExportType::Service).unwrap();
    let activation = decode::<ActivationClaims>(&svc.token, NOW).unwrap();
    assert_eq!((activation.registered.sub.as_str(), activation.issuer.as_str()), (A, B));
    assert_eq!(activation.nats.subject, "svc.>");
    assert_eq!(a.nats.signing_keys.len(), 2);
    let SigningKey::Scoped(scope) = &a.nats.signing_keys[1] else { panic!("{:?}", a.nats.signing_keys) };
    assert_eq!(scope.template.publish.allow, ["scoped.{{name()}}.>", "_INBOX.>"]);
    assert_eq!(a.nats.default_permissions.subscribe.allow.len(), 4);

    let b = decode::<AccountClaims>(ACCOUNT_B, NOW).unwrap();
    assert!(b.nats.exports.iter().any(|e| e.token_req && e.kind == ExportType::Service));

    let alice = decode::<UserClaims>(USER_ALICE, NOW).unwrap();
    assert_eq!(alice.issuer.as_str(), A);
    assert_eq!(alice.nats.publish.allow, ["a.>", "_INBOX.>", "svc.>"]);
    assert_eq!((alice.nats.subs, alice.nats.payload), (-1, -1));
    let carol = decode::<UserClaims>(USER_CAROL, NOW).unwrap();
    assert_eq!(carol.nats.issuer_account, A);
    assert!(carol.nats.permissions().is_empty());
}

#[test]
fn a_token_of_one_type_is_not_another() {
    assert!(matches!(decode::<UserClaims>(ACCOUNT_A, NOW), Err(JwtError::WrongType { .. })));
    assert!(matches!(decode::<AccountClaims>(OPERATOR, NOW), Err(JwtError::WrongType { .. })));
}

#[test]
fn tampering_breaks_the_signature() {
    let mut parts: Vec<String> = USER_ALICE.trim().split('.').map(String::from).collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["nats"]["pub"]["allow"] = json!([">"]);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_eq!(decode::<UserClaims>(&parts.join("."), NOW), Err(JwtError::Signature));
    let truncated = &USER_ALICE.trim()[..USER_ALICE.trim().len() - 4];
    assert!(decode::<UserClaims>(truncated, NOW).is_err());
}

fn user_nats() -> serde_json::Value {
    json!({"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1})
}

#[test]
fn times_types_and_versions_are_checked() {
    let account = KeyPair::generate(KeyType::Account).unwrap();
    let user = KeyPair::generate(KeyType::User).unwrap();
    let sub = user.public().as_str();
    let ok = sign(&account, json!({"sub": sub, "exp": NOW + 10, "nbf": NOW - 10}), user_nats());
    assert!(decode::<UserClaims>(&ok, NOW).is_ok());
    assert_eq!(decode::<UserClaims>(&ok, NOW + 11).map(|_| ()), Err(JwtError::Expired));
    assert_eq!(decode::<UserClaims>(&ok, NOW - 11).map(|_| ()), Err(JwtError::NotYetValid));
    let v1 = sign(&account, json!({"sub": sub}), json!({"type": "user", "version": 1}));
    assert_eq!(decode::<UserClaims>(&v1, NOW).map(|_| ()), Err(JwtError::Version(1)));
    // A user may not issue a user; a user key is not an account.
    let by_user = sign(&user, json!({"sub": sub}), user_nats());
    assert!(matches!(decode::<UserClaims>(&by_user, NOW), Err(JwtError::Key(_))));
    let about_account = sign(&account, json!({"sub": account.public().as_str()}), user_nats());
    assert!(matches!(decode::<UserClaims>(&about_account, NOW), Err(JwtError::Key(_))));
}

#[test]
fn unknown_user_restrictions_are_refused() {
    let account = KeyPair::generate(KeyType::Account).unwrap();
    let user = KeyPair::generate(KeyType::User).unwrap();
    let mut nats = user_nats();
    nats["proxy_required"] = json!(true);
    let token = sign(&account, json!({"sub": user.public().as_str()}), nats);
    assert!(matches!(decode::<UserClaims>(&token, NOW), Err(JwtError::Claims(_))));
}

#[test]
fn src_reads_as_a_list_or_a_comma_separated_string() {
    let account = KeyPair::generate(KeyType::Account).unwrap();
    let user = KeyPair::generate(KeyType::User).unwrap();
    let mut nats = user_nats();
    nats["src"] = json!("192.0.2.0/24, 10.0.0.0/8");
    let token = sign(&account, json!({"sub": user.public().as_str()}), nats);
    assert_eq!(decode::<UserClaims>(&token, NOW).unwrap().nats.src, ["192.0.2.0/24", "10.0.0.0/8"]);
}

#[test]
fn decorated_files_give_their_jwt() {
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{}------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\nSU...\n",
        USER_ALICE
    );
    assert_eq!(undecorate(&creds), USER_ALICE.trim());
    assert_eq!(undecorate(&format!("  {OPERATOR}")), OPERATOR.trim());
}

/// nats-server's `test/configs/nkeys/op.jwt` and an account of
/// `resolver_preload.conf`: v1 tokens of 2018.
const V1_OPERATOR: &str = include_str!("../../tests/fixtures/nats-server-configs/test/configs/nkeys/op.jwt");
const V1_ACCOUNT: &str = "eyJ0eXAiOiJqd3QiLCJhbGciOiJlZDI1NTE5In0.eyJqdGkiOiJDSzU1UERKSUlTWU5QWkhLSUpMVURVVTdJT1dINlM3UkE0RUc2TTVGVUQzUEdGQ1RWWlJRIiwiaWF0IjoxNTQzOTU4NjU4LCJpc3MiOiJPQ0FUMzNNVFZVMlZVT0lNR05HVU5YSjY2QUgyUkxTREFGM01VQkNZQVk1UU1JTDY1TlFNNlhRRyIsInN1YiI6IkFEMlZCNkMyNURRUEVVVVE3S0pCVUZYMko0Wk5WQlBPSFNDQklTQzdWRlpYVldYWkE3VkFTUVpHIiwidHlwZSI6ImFjY291bnQiLCJuYXRzIjp7ImxpbWl0cyI6e319fQ.7m1fysYUsBw15Lj88YmYoHxOI4HlOzu6qgP8Zg-1q9mQXUURijuDGVZrtb7gFYRlo-nG9xZyd2ZTRpMA-b0xCQ";

#[test]
fn v1_tokens_of_nats_servers_tests_are_converted() {
    let op = decode::<OperatorClaims>(undecorate(V1_OPERATOR), NOW).unwrap();
    assert_eq!(op.registered.name, "Synadia Communications Inc.");
    assert_eq!(op.nats.signing_keys.len(), 3);
    let a = decode::<AccountClaims>(V1_ACCOUNT, NOW).unwrap();
    assert_eq!(a.registered.sub, "AD2VB6C25DQPEUUQ7KJBUFX2J4ZNVBPOHSCBISC7VFZXVWXZA7VASQZG");
    assert_eq!(a.issuer.as_str(), op.registered.sub);
    // `limits: {}`: Go's zero values, as nats-server gets them.
    assert_eq!((a.nats.limits.conn, a.nats.limits.subs), (0, 0));
    // It verified with the claims part alone signed, as v1 signs.
    // A v1 account is not an operator.
    assert!(matches!(decode::<OperatorClaims>(V1_ACCOUNT, NOW), Err(JwtError::WrongType { .. })));
}

#[test]
fn v1_users_move_their_fields_and_keep_nothing_unknown() {
    use super::testing::sign_v1;
    let account = KeyPair::generate(KeyType::Account).unwrap();
    let signer = KeyPair::generate(KeyType::Account).unwrap();
    let user = KeyPair::generate(KeyType::User).unwrap();
    let sub = user.public().as_str().to_owned();
    let token = sign_v1(
        &signer,
        json!({"sub": sub, "type": "user", "tags": ["t1"], "issuer_account": account.public().as_str(),
               "nats": {"pub": {"allow": ["a.>"]}, "sub": {"deny": ["b"]}, "max": 10, "payload": 512}}),
    );
    let u = decode::<UserClaims>(&token, NOW).unwrap();
    assert_eq!(u.nats.publish.allow, ["a.>"]);
    assert_eq!(u.nats.subscribe.deny, ["b"]);
    assert_eq!((u.nats.subs, u.nats.data, u.nats.payload), (-1, -1, 512), "left out: unlimited, as Go's v1 defaults");
    assert_eq!(u.nats.issuer_account, account.public().as_str());
    assert_eq!(u.nats.tags, ["t1"]);
    assert_eq!(u.nats.version, 1);
    // v2-style signing of v1 claims fails: v1 signs the claims part only.
    let v2_signed = super::testing::sign(&signer, json!({"sub": sub, "type": "user"}), json!({}));
    assert_eq!(decode::<UserClaims>(&v2_signed, NOW).map(|_| ()), Err(JwtError::Signature));
    // A field Go's v1 user does not have would be dropped by it: refused.
    let unknown = sign_v1(&account, json!({"sub": sub, "type": "user", "nats": {"allowed_connection_types": ["X"]}}));
    assert!(matches!(decode::<UserClaims>(&unknown, NOW), Err(JwtError::Claims(_))));
    // v1 activations are not converted.
    let activation = sign_v1(&account, json!({"sub": account.public().as_str(), "type": "activation"}));
    assert_eq!(decode::<ActivationClaims>(&activation, NOW).map(|_| ()), Err(JwtError::Version(1)));
}
