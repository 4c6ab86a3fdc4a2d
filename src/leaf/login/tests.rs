//! The leaf login views, checked through the authenticators they build:
//! nkey leafs sign the nonce, certificates name users where the leaf
//! listener says so, and a reload rebuilds the users or is refused when it
//! would move leafs between gates.

use std::net::SocketAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::*;
use crate::auth::{Claims, ConnectionFacts, ConnectionType, Verdict};
use crate::nkeys::{KeyPair, KeyType};
use crate::tls::PeerIdentity;

fn options(text: &str) -> Options {
    crate::config::load_str(text, "leaf.conf").unwrap().options
}

fn facts(nonce: &str, peer: Option<PeerIdentity>) -> ConnectionFacts {
    let addr: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    ConnectionFacts {
        addr,
        peer,
        nonce: Some(nonce.to_owned()),
        client_id: 1,
        tls: None,
        connection: ConnectionType::Leafnode,
    }
}

/// The CONNECT of a leaf that signs `nonce` with `key`.
fn signed(key: &KeyPair, nonce: &str) -> Claims {
    Claims {
        nkey: Some(key.public().as_str().to_owned()),
        signature: Some(URL_SAFE_NO_PAD.encode(key.sign(nonce.as_bytes()))),
        ..Claims::default()
    }
}

fn account_of(verdict: Verdict) -> Option<String> {
    match verdict {
        Verdict::Accept(identity) => Some(identity.account.to_string()),
        _ => None,
    }
}

fn leaf_login(opts: &Options) -> Arc<dyn Authenticator> {
    auth::from_options(&own_view(opts).expect("leafs have a login of their own")).unwrap()
}

const CLIENTS: &str = "authorization { users = [ { user: app, password: app-pw } ] }\n";

#[test]
fn an_nkey_leaf_signs_the_nonce_and_lands_in_its_account() {
    let edge = KeyPair::generate(KeyType::User).unwrap();
    let other = KeyPair::generate(KeyType::User).unwrap();
    let opts = options(&format!(
        "{CLIENTS}accounts {{ EDGE {{}} }}\nleafnodes {{ port: 7422, authorization {{ nkey: \"{}\", account: EDGE }} }}",
        edge.public().as_str()
    ));
    let login = leaf_login(&opts);
    assert_eq!(account_of(login.authenticate(&signed(&edge, "n1"), &facts("n1", None))).as_deref(), Some("EDGE"));
    // A signature of another nonce (a replayed CONNECT), another key, or
    // none at all is refused; so is the clients' user.
    assert_eq!(account_of(login.authenticate(&signed(&edge, "n1"), &facts("n2", None))), None);
    assert_eq!(account_of(login.authenticate(&signed(&other, "n1"), &facts("n1", None))), None);
    let unsigned = Claims { signature: None, ..signed(&edge, "n1") };
    assert_eq!(account_of(login.authenticate(&unsigned, &facts("n1", None))), None);
    let app =
        Claims { user: Some("app".into()), password: Some(crate::secret::Secret::new("app-pw")), ..Claims::default() };
    assert_eq!(account_of(login.authenticate(&app, &facts("n1", None))), None);
    assert!(login.wants_nonce());
}

#[test]
fn nkey_entries_of_the_users_list_each_have_their_account() {
    let (a, b) = (KeyPair::generate(KeyType::User).unwrap(), KeyPair::generate(KeyType::User).unwrap());
    let opts = options(&format!(
        "{CLIENTS}accounts {{ A {{}}, B {{}} }}\nleafnodes {{ port: 7422, authorization {{ users = [
            {{ nkey: \"{}\", account: A }}
            {{ nkey: \"{}\", account: B }}
            {{ user: pw, password: leaf-pw }}
        ] }} }}",
        a.public().as_str(),
        b.public().as_str()
    ));
    let login = leaf_login(&opts);
    assert_eq!(account_of(login.authenticate(&signed(&a, "n"), &facts("n", None))).as_deref(), Some("A"));
    assert_eq!(account_of(login.authenticate(&signed(&b, "n"), &facts("n", None))).as_deref(), Some("B"));
    let pw =
        Claims { user: Some("pw".into()), password: Some(crate::secret::Secret::new("leaf-pw")), ..Claims::default() };
    assert_eq!(account_of(login.authenticate(&pw, &facts("n", None))).as_deref(), Some("$G"));
}

/// A certificate with the email SAN `name@localhost` and subject `CN=name`.
fn certificate(name: &str) -> PeerIdentity {
    PeerIdentity {
        emails: vec![format!("{name}@localhost")],
        subject: vec![("CN".into(), name.into())],
        ..PeerIdentity::default()
    }
}

/// Leaf TLS with verify_and_map (the files are not read to build a login).
const LEAF_TLS_MAP: &str = "tls { cert_file: s.pem, key_file: s.key, ca_file: ca.pem, verify_and_map: true }";

#[test]
fn leaf_verify_and_map_names_a_leafnodes_user_by_certificate() {
    let opts = options(&format!(
        "{CLIENTS}accounts {{ EDGE {{}} }}\nleafnodes {{ port: 7422, {LEAF_TLS_MAP}, authorization {{ users = [
            {{ user: \"edge@localhost\", account: EDGE }}
            {{ user: \"CN=locked\", password: also-this }}
        ] }} }}"
    ));
    let login = leaf_login(&opts);
    let none = Claims::default();
    assert_eq!(account_of(login.authenticate(&none, &facts("n", Some(certificate("edge"))))).as_deref(), Some("EDGE"));
    // No certificate, or one that names nobody: refused, whatever user the
    // CONNECT claims.
    let claimed = Claims { user: Some("edge@localhost".into()), ..Claims::default() };
    assert_eq!(account_of(login.authenticate(&claimed, &facts("n", None))), None);
    assert_eq!(account_of(login.authenticate(&claimed, &facts("n", Some(certificate("mallory"))))), None);
    // A mapped user with a password needs it too (as nats-server).
    assert_eq!(account_of(login.authenticate(&none, &facts("n", Some(certificate("locked"))))), None);
    let with = Claims { password: Some(crate::secret::Secret::new("also-this")), ..Claims::default() };
    assert_eq!(account_of(login.authenticate(&with, &facts("n", Some(certificate("locked"))))).as_deref(), Some("$G"));
}

#[test]
fn without_leaf_users_leaf_verify_and_map_names_a_configured_user() {
    let opts = options(&format!(
        "authorization {{ users = [ {{ user: \"edge@localhost\" }}, {{ user: app, password: app-pw }} ] }}
        leafnodes {{ port: 7422, {LEAF_TLS_MAP} }}"
    ));
    let login = leaf_login(&opts);
    let mapped = login.authenticate(&Claims::default(), &facts("n", Some(certificate("edge"))));
    assert_eq!(account_of(mapped).as_deref(), Some("$G"));
    let claimed = Claims { user: Some("edge@localhost".into()), ..Claims::default() };
    assert_eq!(account_of(login.authenticate(&claimed, &facts("n", None))), None, "a name alone is no login");
    // The clients' gate maps nothing: a certificate-only user cannot log
    // in there by name.
    assert_eq!(account_of(auth::from_options(&opts).unwrap().authenticate(&claimed, &facts("n", None))), None);
}

#[test]
fn leafs_log_in_as_clients_when_the_leafnodes_block_says_nothing_of_its_own() {
    assert!(own_view(&options(&format!("{CLIENTS}leafnodes {{ port: 7422 }}"))).is_none());
    let tls = "tls { cert_file: s.pem, key_file: s.key, ca_file: ca.pem, verify_and_map: true }";
    let both =
        format!("{tls}\nauthorization {{ users = [ {{ user: \"edge@localhost\" }} ] }}\nleafnodes {{ port: 7422, {LEAF_TLS_MAP} }}");
    assert!(own_view(&options(&both)).is_none(), "both map: the clients' gate does");
    // Clients mapped, leafs not: a leaf's password is checked, not its
    // certificate.
    let clients_only = format!(
        "{tls}\nauthorization {{ users = [ {{ user: \"edge@localhost\" }}, {{ user: leaf, password: leaf-pw }} ] }}\nleafnodes {{ port: 7422 }}"
    );
    let login = leaf_login(&options(&clients_only));
    let pw = Claims {
        user: Some("leaf".into()),
        password: Some(crate::secret::Secret::new("leaf-pw")),
        ..Claims::default()
    };
    assert_eq!(account_of(login.authenticate(&pw, &facts("n", None))).as_deref(), Some("$G"));
    let mapped = login.authenticate(&Claims::default(), &facts("n", Some(certificate("edge"))));
    assert_eq!(account_of(mapped), None);
}

#[test]
fn a_reload_rebuilds_the_leaf_users_and_cannot_move_leafs_between_gates() {
    let (kept, removed) = (KeyPair::generate(KeyType::User).unwrap(), KeyPair::generate(KeyType::User).unwrap());
    let block = |keys: &[&KeyPair]| {
        let users: Vec<String> = keys.iter().map(|k| format!("{{ nkey: \"{}\" }}", k.public().as_str())).collect();
        options(&format!("{CLIENTS}leafnodes {{ port: 7422, authorization {{ users = [ {} ] }} }}", users.join(", ")))
    };
    let before = leaf_login(&block(&[&kept, &removed]));
    let Verdict::Accept(gone) = before.authenticate(&signed(&removed, "n"), &facts("n", None)) else {
        panic!("logs in before the reload")
    };
    let after = reloaded(&block(&[&kept]), true).unwrap().expect("the hub's own login");
    assert!(after.refresh(&gone).is_none(), "a removed leaf user loses its login");
    assert_eq!(account_of(after.authenticate(&signed(&removed, "n"), &facts("n", None))), None);
    assert!(account_of(after.authenticate(&signed(&kept, "n"), &facts("n", None))).is_some());
    // From the clients' gate to one of its own, or back: refused.
    let plain = options(&format!("{CLIENTS}leafnodes {{ port: 7422 }}"));
    assert!(matches!(reloaded(&plain, true), Err(LeafError::LoginChanged)));
    assert!(matches!(reloaded(&block(&[&kept]), false), Err(LeafError::LoginChanged)));
    assert!(reloaded(&plain, false).unwrap().is_none(), "the clients' gate reloads itself");
}
