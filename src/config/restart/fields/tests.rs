use super::super::{restart_only_change, restart_only_paths, RestartOnly};
use super::FIELDS;
use crate::config::{load_str_with_env, Options};

/// An operator JWT that verifies, as `$OPERATOR`, for what needs operator
/// mode (`websocket { jwt_cookie }`).
const OPERATOR: &str = include_str!("../../../jwt/vectors/operator.jwt");

/// A config's options and its restart-only options as written.
fn load(text: &str) -> (Options, RestartOnly) {
    let env = |name: &str| (name == "OPERATOR").then(|| OPERATOR.trim().to_owned());
    let loaded = load_str_with_env(text, "w.conf", &env).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    (loaded.options, loaded.restart_only)
}

#[test]
fn every_restart_only_option_of_the_schema_is_compared_and_nothing_else() {
    let paths = restart_only_paths();
    let compared: Vec<&str> = FIELDS.iter().map(|(p, _)| *p).collect();
    let missing: Vec<&String> = paths.iter().filter(|p| !compared.contains(&p.as_str())).collect();
    assert!(missing.is_empty(), "restart-only in the schema, but no comparison in `fields`: {missing:?}");
    let stale: Vec<&&str> = compared.iter().filter(|c| !paths.iter().any(|p| p == **c)).collect();
    assert!(stale.is_empty(), "compared in `fields`, but not restart-only in the schema: {stale:?}");
    let mut unique = compared.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), compared.len(), "an option compared twice");
}

/// What the options from code say of a change that a config file's
/// refusal names: the same name, another key's that sets the same field
/// (and comes first in table order), or nothing (the option sets nothing).
enum Seen {
    Same,
    As(&'static str),
    Unseen,
}

/// One change of each restart-only option, written in a config file: the
/// running config, the new one, and what a reload of the new options from
/// code says.
const CHANGES: &[(&str, &str, Seen)] = &[
    ("listen: 127.0.0.1:4301", "listen: 127.0.0.1:4302", Seen::As("port")),
    ("host: 127.0.0.1", "host: 127.0.0.2", Seen::Same),
    ("port: 4301", "port: 4302", Seen::Same),
    ("server_name: a", "server_name: b", Seen::Same),
    ("server_tags: [a]", "server_tags: [b]", Seen::Same),
    ("server_metadata { a: x }", "server_metadata { a: y }", Seen::Same),
    ("max_connections: 10", "max_connections: 11", Seen::Same),
    ("max_connections_per_ip: 10", "max_connections_per_ip: 11", Seen::Same),
    ("accept_rate { conns_per_sec: 10 }", "accept_rate { conns_per_sec: 11 }", Seen::Same),
    ("proxy_protocol: false", "proxy_protocol: true\ntrusted_proxies: [\"10.0.0.1\"]", Seen::Same),
    (
        "proxy_protocol: true\ntrusted_proxies: [\"10.0.0.1\"]",
        "proxy_protocol: true\ntrusted_proxies: [\"10.0.0.2\"]",
        Seen::Same,
    ),
    ("max_subscriptions: 10", "max_subscriptions: 11", Seen::Same),
    ("max_payload: 1MB", "max_payload: 2MB", Seen::Same),
    ("max_pending: 64MB", "max_pending: 65MB", Seen::Same),
    ("max_control_line: 4KB", "max_control_line: 8KB", Seen::Same),
    ("ping_interval: \"1m\"", "ping_interval: \"2m\"", Seen::Same),
    ("ping_max: 2", "ping_max: 3", Seen::Same),
    ("write_deadline: \"5s\"", "write_deadline: \"6s\"", Seen::Same),
    ("feature_flags { a: true }", "feature_flags { a: false }", Seen::Unseen),
    ("write_timeout: default", "write_timeout: close", Seen::Unseen),
    ("lame_duck_duration: \"40s\"", "lame_duck_duration: \"50s\"", Seen::Same),
    ("lame_duck_grace_period: \"5s\"", "lame_duck_grace_period: \"6s\"", Seen::Same),
    ("tls_watch_interval: \"5s\"", "tls_watch_interval: \"6s\"", Seen::Same),
    ("tls_expiry_warning: \"100h\"", "tls_expiry_warning: \"200h\"", Seen::Same),
    ("max_traced_msg_len: 10", "max_traced_msg_len: 11", Seen::Same),
    ("logfile_size_limit: 1MB", "logfile_size_limit: 2MB", Seen::Same),
    ("logfile_max_num: 3", "logfile_max_num: 4", Seen::Same),
    ("log_format: text", "log_format: json", Seen::Same),
    ("logtime: true", "logtime: false", Seen::Same),
    ("log_file: \"/tmp/a.log\"", "log_file: \"/tmp/b.log\"", Seen::Same),
    ("", "prof_port: 0", Seen::Unseen),
    ("syslog: false", "syslog: true", Seen::Same),
    ("remote_syslog: \"udp://127.0.0.1:514\"", "remote_syslog: \"udp://127.0.0.1:515\"", Seen::Same),
    ("audit { file: \"/tmp/a.jsonl\" }", "audit { file: \"/tmp/b.jsonl\" }", Seen::Same),
    ("pid_file: \"/tmp/a.pid\"", "pid_file: \"/tmp/b.pid\"", Seen::Same),
    ("ports_file_dir: \"/tmp/a\"", "ports_file_dir: \"/tmp/b\"", Seen::Same),
    ("http: 127.0.0.1:8301", "http: 127.0.0.1:8302", Seen::Same),
    ("http: 8301\nhttp_base_path: \"/a\"", "http: 8301\nhttp_base_path: \"/b\"", Seen::Same),
    ("http_port: 8301", "http_port: 8302", Seen::As("http")),
    ("tls { cert_file: c, key_file: k }\nhttps: 8301", "tls { cert_file: c, key_file: k }\nhttps: 8302", Seen::As("http")),
    (
        "tls { cert_file: c, key_file: k }\nhttps_port: 8301",
        "tls { cert_file: c, key_file: k }\nhttps_port: 8302",
        Seen::As("http"),
    ),
    (
        "http: 8301\nhttp_authorization { token: \"monitoring-token-0123456789\" }",
        "http: 8301\nhttp_authorization { token: \"monitoring-token-9876543210\" }",
        Seen::Same,
    ),
    (
        "cluster { name: a, listen: 127.0.0.1:6301 }",
        "cluster { name: a, listen: 127.0.0.1:6302 }",
        Seen::Same,
    ),
    (
        "gateway { name: a, listen: 127.0.0.1:7301, insecure_allow_unauthenticated_gateways: true }",
        "gateway { name: b, listen: 127.0.0.1:7301, insecure_allow_unauthenticated_gateways: true }",
        Seen::Same,
    ),
    ("check_reply_subjects: true", "check_reply_subjects: false", Seen::Same),
    (
        "accounts { A: {}, B: {} }\nsystem_account: A",
        "accounts { A: {}, B: {} }\nsystem_account: B",
        Seen::Same,
    ),
    ("no_system_account: false", "no_system_account: true", Seen::As("system_account")),
    (
        "authorization { users: [ { user: \"spiffe://example.org/orders\" } ] }\n\
         tls { cert_file: c, key_file: k, ca_file: a, verify_and_map: true }",
        "authorization { users: [ { user: \"spiffe://example.org/orders\" } ] }\n\
         tls { cert_file: c, key_file: k, ca_file: a, verify_and_map: true, spiffe_trust_domain: example.org }",
        Seen::Same,
    ),
    (
        "tls { cert_file: c, key_file: k, connection_rate_limit: 10 }",
        "tls { cert_file: c, key_file: k, connection_rate_limit: 11 }",
        Seen::As("accept_rate"),
    ),
    (
        "leafnodes { listen: 127.0.0.1:7401 }",
        "leafnodes { listen: 127.0.0.1:7402 }",
        Seen::As("leafnodes.port"),
    ),
    ("leafnodes { port: 7401 }", "leafnodes { port: 7402 }", Seen::Same),
    (
        "leafnodes { port: 7401, host: 127.0.0.1 }",
        "leafnodes { port: 7401, host: 127.0.0.2 }",
        Seen::Same,
    ),
    (
        "leafnodes { port: 7401, advertise: \"a.example:7401\" }",
        "leafnodes { port: 7401, advertise: \"b.example:7401\" }",
        Seen::Same,
    ),
    ("leafnodes { port: 7401, no_advertise: false }", "leafnodes { port: 7401, no_advertise: true }", Seen::Same),
    (
        "leafnodes { port: 7401, tls { cert_file: a, key_file: k } }",
        "leafnodes { port: 7401, tls { cert_file: b, key_file: k } }",
        Seen::Same,
    ),
    ("leafnodes { port: 7401, auth_timeout: \"2s\" }", "leafnodes { port: 7401, auth_timeout: \"3s\" }", Seen::Same),
    (
        "leafnodes { remotes [ { url: \"nats-leaf://127.0.0.1:7501\" } ] }",
        "leafnodes { remotes [ { url: \"nats-leaf://127.0.0.1:7502\" } ] }",
        Seen::Same,
    ),
    (
        "leafnodes { port: 7401, authorization { user: a, password: \"leaf-password-0123456789\", timeout: \"2s\" } }",
        "leafnodes { port: 7401, authorization { user: a, password: \"leaf-password-0123456789\", timeout: \"3s\" } }",
        Seen::Same,
    ),
    ("leafnodes { port: 7401, min_version: \"2.8.0\" }", "leafnodes { port: 7401, min_version: \"2.9.0\" }", Seen::Same),
    (
        "leafnodes { port: 7401, isolate_leafnode_interest: false }",
        "leafnodes { port: 7401, isolate_leafnode_interest: true }",
        Seen::Same,
    ),
    (
        "leafnodes { port: 7401, insecure_allow_unauthenticated_leafnodes: false }",
        "leafnodes { port: 7401, insecure_allow_unauthenticated_leafnodes: true }",
        Seen::Same,
    ),
    (
        "leafnodes { port: 7401, accept_rate { conns_per_sec: 10 } }",
        "leafnodes { port: 7401, accept_rate { conns_per_sec: 11 } }",
        Seen::Same,
    ),
    (
        "leafnodes { port: 7401, proxy_protocol: false }",
        "leafnodes { port: 7401, proxy_protocol: true, trusted_proxies: [\"10.0.0.1\"] }",
        Seen::Same,
    ),
    (
        "leafnodes { port: 7401, proxy_protocol: true, trusted_proxies: [\"10.0.0.1\"] }",
        "leafnodes { port: 7401, proxy_protocol: true, trusted_proxies: [\"10.0.0.2\"] }",
        Seen::Same,
    ),
    (
        "websocket { listen: 127.0.0.1:8401, no_tls: true }",
        "websocket { listen: 127.0.0.1:8402, no_tls: true }",
        Seen::As("websocket.port"),
    ),
    (
        "websocket { host: 127.0.0.1, port: 8401, no_tls: true }",
        "websocket { host: 127.0.0.2, port: 8401, no_tls: true }",
        Seen::Same,
    ),
    ("websocket { port: 8401, no_tls: true }", "websocket { port: 8402, no_tls: true }", Seen::Same),
    (
        "websocket { port: 8401, no_tls: true }",
        "websocket { port: 8401, no_tls: false, tls { cert_file: c, key_file: k } }",
        Seen::Same,
    ),
    (
        "websocket { port: 8401, tls { cert_file: a, key_file: k } }",
        "websocket { port: 8401, tls { cert_file: b, key_file: k } }",
        Seen::Same,
    ),
    (
        "websocket { port: 8401, no_tls: true, same_origin: false }",
        "websocket { port: 8401, no_tls: true, same_origin: true }",
        Seen::Same,
    ),
    (
        "websocket { port: 8401, no_tls: true, allowed_origins: [\"https://a.example\"] }",
        "websocket { port: 8401, no_tls: true, allowed_origins: [\"https://b.example\"] }",
        Seen::Same,
    ),
    (
        "websocket { port: 8401, no_tls: true, handshake_timeout: \"2s\" }",
        "websocket { port: 8401, no_tls: true, handshake_timeout: \"3s\" }",
        Seen::Same,
    ),
    (
        "websocket { port: 8401, no_tls: true, compression: false }",
        "websocket { port: 8401, no_tls: true, compression: true }",
        Seen::Same,
    ),
    (
        "websocket { port: 8401, no_tls: true, authorization { token: \"ws-token-0123456789abcdef\", timeout: \"2s\" } }",
        "websocket { port: 8401, no_tls: true, authorization { token: \"ws-token-0123456789abcdef\", timeout: \"3s\" } }",
        Seen::Same,
    ),
    (
        "operator: $OPERATOR\nresolver: MEMORY\nwebsocket { port: 8401, no_tls: true, same_origin: true, jwt_cookie: a }",
        "operator: $OPERATOR\nresolver: MEMORY\nwebsocket { port: 8401, no_tls: true, same_origin: true, jwt_cookie: b }",
        Seen::Same,
    ),
    (
        "websocket { port: 8401, no_tls: true, trusted_proxies: [\"10.0.0.1\"] }",
        "websocket { port: 8401, no_tls: true, trusted_proxies: [\"10.0.0.2\"] }",
        Seen::Same,
    ),
    (
        "websocket { port: 8401, no_tls: true, trusted_proxies: [\"10.0.0.1\"], proxy_protocol: false }",
        "websocket { port: 8401, no_tls: true, trusted_proxies: [\"10.0.0.1\"], proxy_protocol: true }",
        Seen::Same,
    ),
    (
        "websocket { port: 8401, no_tls: true, accept_rate { conns_per_sec: 10 } }",
        "websocket { port: 8401, no_tls: true, accept_rate { conns_per_sec: 11 } }",
        Seen::Same,
    ),
    (
        "authorization { token: \"client-token-0123456789\", timeout: \"2s\" }",
        "authorization { token: \"client-token-0123456789\", timeout: \"3s\" }",
        Seen::Same,
    ),
    (
        "authorization { token: \"client-token-0123456789\", failure_delay_max: \"2s\" }",
        "authorization { token: \"client-token-0123456789\", failure_delay_max: \"3s\" }",
        Seen::Same,
    ),
];

/// Each restart-only option, changed in a config file, is refused by the
/// file's comparison under its name, and the same change in options from
/// code is refused too (under the name above): the comparison reads the
/// field the option sets. Every restart-only option has such a change.
#[test]
fn a_restart_only_change_is_refused_from_code_as_from_a_config_file() {
    let mut named = Vec::new();
    for (before, after, seen) in CHANGES {
        let ((running, running_written), (new, new_written)) = (load(before), load(after));
        let why = running_written.refuse_change_to(&new_written).unwrap_or_else(|| panic!("{after:?}: not refused"));
        let path = why.split('`').nth(1).unwrap_or_default().to_owned();
        let expected = match seen {
            Seen::Same => Some(path.as_str()),
            Seen::As(other) => Some(*other),
            Seen::Unseen => None,
        };
        assert_eq!(restart_only_change(&running, &new).as_deref(), expected, "{before:?} to {after:?} ({why})");
        assert_eq!(restart_only_change(&new, &new), None, "{after:?} against itself");
        named.push(path);
    }
    let untried: Vec<String> = restart_only_paths().into_iter().filter(|p| !named.contains(p)).collect();
    assert!(untried.is_empty(), "restart-only options with no change in CHANGES: {untried:?}");
}

#[test]
fn reloadable_changes_and_a_block_without_restart_only_options_are_not_refused() {
    let running = load(
        "authorization { users: [ { user: a, password: \"a-password-0123456789\" } ] }\n\
         tls { cert_file: c, key_file: k }\ndebug: false",
    );
    let new = load(
        "authorization { users: [ { user: a, password: \"a-password-9876543210\", permissions: { publish: x } } ] }\n\
         accounts { B { users: [ { user: b, password: \"b-password-0123456789\" } ] } }\n\
         tls { cert_file: c2, key_file: k2 }\ndebug: true\ntrace: true\nmappings { x: y }",
    );
    assert_eq!(running.1.refuse_change_to(&new.1), None);
    assert_eq!(restart_only_change(&running.0, &new.0), None);
    // A block added is named by what it adds.
    let (none, _) = load("");
    let remotes = load("leafnodes { remotes [ { url: \"nats-leaf://127.0.0.1:7501\" } ] }").0;
    assert_eq!(restart_only_change(&none, &remotes).as_deref(), Some("leafnodes.remotes"));
    let listener = load("leafnodes { listen: 127.0.0.1:0 }").0;
    assert_eq!(restart_only_change(&none, &listener).as_deref(), Some("leafnodes.port"));
    let websocket = load("websocket { port: 0, no_tls: true }").0;
    assert_eq!(restart_only_change(&none, &websocket).as_deref(), Some("websocket.port"));
    // A block of options that each reload (or are restart-only but left at
    // their defaults) compares as no block.
    assert_eq!(restart_only_change(&Options::default(), &running.0), None);
}
