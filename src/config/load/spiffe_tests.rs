//! `tls { spiffe_trust_domain }`: where it is taken, and every refusal at
//! load time, with file, line and column.

use super::load_str;
use crate::spiffe::TrustDomain;

/// The client listener's `tls {}` with `extra` in it, and a SPIFFE user.
fn client(extra: &str) -> String {
    format!(
        "authorization {{ users: [ {{ user: \"spiffe://example.org/orders\" }} ] }}\n\
         tls {{ cert_file: c, key_file: k, ca_file: a,\n{extra} }}"
    )
}

fn refused(text: &str) -> String {
    match load_str(text, "s.conf") {
        Ok(_) => panic!("{text:?} loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_trust_domain_is_read_where_certificates_are_mapped() {
    let loaded = load_str(&client("verify_and_map: true, spiffe_trust_domain: \"example.org\""), "s.conf").unwrap();
    let tls = loaded.options.tls.clone().unwrap();
    assert!(tls.verify && tls.verify_and_map);
    assert_eq!(tls.spiffe_trust_domain, Some(TrustDomain::parse("example.org").unwrap()));
    let summary = crate::config::summary::summary(&loaded.options);
    assert!(summary.contains("by SPIFFE ID of example.org"), "{summary}");

    let leaf = "leafnodes { port: 7422, tls { cert_file: s, key_file: k, ca_file: a, verify_and_map: true, \
                spiffe_trust_domain: prod.example }, authorization { users: [ { user: \"spiffe://prod.example/edge\" } ] } }";
    let leafs = load_str(leaf, "s.conf").unwrap().options.leafnodes.unwrap();
    assert_eq!(leafs.tls.unwrap().spiffe_trust_domain.unwrap().as_str(), "prod.example");

    let route = "cluster { port: 6222, authorization { user: \"spiffe://example.org/nats/route\" }, \
                 tls { cert_file: c, key_file: k, ca_file: a, verify_and_map: true, spiffe_trust_domain: example.org } }";
    let cluster = load_str(route, "s.conf").unwrap().options.cluster.unwrap();
    assert!(cluster.tls.unwrap().spiffe_trust_domain.is_some());
}

#[test]
fn without_verify_and_map_it_is_refused_where_it_is_written() {
    let err = refused(&client("verify: true, spiffe_trust_domain: \"example.org\""));
    assert!(err.starts_with("s.conf:3:36: ") && err.contains("needs `verify_and_map: true`"), "{err}");
    let err = refused(&client("verify_and_map: false\nspiffe_trust_domain: \"example.org\""));
    assert!(err.starts_with("s.conf:4:22: "), "{err}");
}

#[test]
fn a_malformed_trust_domain_is_refused_with_the_rule_it_breaks() {
    // Each refused at its value: line 3, column 44.
    for (domain, why) in [
        ("\"Example.org\"", "lower-case letters"),
        ("\"spiffe://example.org\"", "a bare name"),
        ("\"example.org:8443\"", "port"),
        ("\"ops@example.org\"", "userinfo"),
        ("\"\"", "empty"),
        ("\"exa mple\"", "lower-case letters"),
        ("1", "must be a string"),
    ] {
        let err = refused(&client(&format!("verify_and_map: true, spiffe_trust_domain: {domain}")));
        assert!(err.starts_with("s.conf:3:44: ") && err.contains(why), "{domain}: {err}");
    }
}

#[test]
fn the_websocket_block_takes_it_and_a_dialled_remote_refuses_it() {
    let ws = "websocket { port: 8443, tls { cert_file: c, key_file: k, ca_file: a, verify_and_map: true, \
              spiffe_trust_domain: example.org } }\nauthorization { users: [ { user: \"spiffe://example.org/web\" } ] }";
    let websocket = load_str(ws, "s.conf").unwrap().options.websocket.unwrap();
    assert_eq!(websocket.tls.unwrap().spiffe_trust_domain.unwrap().as_str(), "example.org");
    let remote = "leafnodes { remotes: [ { url: \"tls://hub:7422\", tls { spiffe_trust_domain: example.org } } ] }";
    let err = refused(remote);
    assert!(err.starts_with("s.conf:1:") && err.contains("no meaning for a connection this server dials"), "{err}");
}

#[test]
fn a_strict_route_user_must_be_a_spiffe_id_of_the_domain() {
    let route = |user: &str| {
        format!(
            "cluster {{ port: 6222, authorization {{ user: \"{user}\" }},\n\
             tls {{ cert_file: c, key_file: k, ca_file: a, verify_and_map: true, spiffe_trust_domain: example.org }} }}"
        )
    };
    let err = refused(&route("CN=route"));
    assert!(err.starts_with("s.conf:1:") && err.contains("must be the SPIFFE ID"), "{err}");
    let err = refused(&route("spiffe://example.com/route"));
    assert!(err.contains("is not of spiffe_trust_domain \"example.org\""), "{err}");
}

#[test]
fn a_reload_cannot_turn_strict_mapping_on_off_or_elsewhere() {
    let running = load_str(&client("verify_and_map: true"), "s.conf").unwrap().restart_only;
    let strict = load_str(&client("verify_and_map: true, spiffe_trust_domain: example.org"), "s.conf").unwrap();
    let why = running.refuse_change_to(&strict.restart_only).unwrap();
    assert!(why.starts_with("s.conf:3:23: `tls.spiffe_trust_domain` added"), "{why}");
    let other = load_str(&client("verify_and_map: true, spiffe_trust_domain: example.com"), "s.conf").unwrap();
    assert!(strict.restart_only.refuse_change_to(&other.restart_only).unwrap().contains("changed"));
    assert!(strict.restart_only.refuse_change_to(&running).unwrap().contains("removed"));
}
