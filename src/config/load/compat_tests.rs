//! The keys configs written for nats-server 2.10–2.15 carry (issue 32):
//! each read with nats-server 2.15.1's meaning, or refused by name.

use super::*;
use crate::config::ErrorKind::{Conflict, Invalid, Type};

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Loaded, ConfigError> {
    load_str_with_env(text, "test.conf", &no_env)
}

fn ok(text: &str) -> Loaded {
    match load(text) {
        Ok(l) => l,
        Err(e) => panic!("{text:?} failed:\n{e}"),
    }
}

/// Fails with `kind` at `line:column`, with `message` in the text.
fn refused(text: &str, kind: ErrorKind, line: u32, column: u32, message: &str) {
    let err = match load(text) {
        Ok(l) => panic!("{text:?} loaded: {:?}", l.options),
        Err(e) => e,
    };
    assert_eq!(err.kind(), kind, "{text:?}: {err}");
    assert_eq!((err.line(), err.column()), (Some(line), Some(column)), "{text:?}: {err}");
    assert!(err.message().contains(message), "{text:?}: {err}");
}

#[test]
fn server_tags_read_unquoted_trimmed_lower_cased_and_once() {
    // nats.js's test helper writes `server_tags [ id:<nuid> ]`, unquoted.
    let o = ok("server_tags [ id:AbC123, \"Rack:B\", \" az:1 \", rack:b, \"\" ]").options;
    assert_eq!(o.server_tags, ["id:abc123", "rack:b", "az:1"]);
    assert_eq!(ok("server_tags: single").options.server_tags, ["single"]);
    refused("server_tags [ 1 ]", Type, 1, 15, "a server tag must be a string");
}

#[test]
fn server_metadata_is_a_map_of_strings() {
    let o = ok("server_metadata { region: eu, \"Key 2\": \"x y\" }").options;
    assert_eq!(o.server_metadata.get("region").map(String::as_str), Some("eu"));
    assert_eq!(o.server_metadata.get("Key 2").map(String::as_str), Some("x y"));
    refused("server_metadata { n: 1 }", Type, 1, 22, "must be a string");
    refused("server_metadata: [a]", Type, 1, 18, "a map");
}

#[test]
fn no_sys_acc_and_no_system_are_no_system_account() {
    for key in ["no_sys_acc", "no_system", "no_system_account"] {
        assert_eq!(ok(&format!("{key}: true")).options.system_account, None, "{key}");
    }
    refused("no_sys_acc: true\nno_system: true", Conflict, 2, 1, "sets the same option");
}

#[test]
fn max_connections_zero_refuses_every_client_as_nats_server() {
    assert_eq!(ok("max_connections: 0").options.max_connections, 0);
    assert_eq!(ok("max_connections: -1").options.max_connections, 0);
    assert_eq!(ok("max_conn: 10").options.max_connections, 10);
}

#[test]
fn write_timeout_closes_or_is_refused_by_name() {
    ok("write_timeout: default");
    ok("write_timeout: close\ncluster { port: 6222, write_timeout: close, insecure_allow_unauthenticated_routes: true }");
    refused("write_timeout: retry", Invalid, 1, 16, "retry is not supported");
    refused("write_timeout: Close", Invalid, 1, 16, "must be 'default', 'close' or 'retry'");
    refused(
        "cluster { port: 6222, write_timeout: retry, insecure_allow_unauthenticated_routes: true }",
        Invalid,
        1,
        38,
        "warden closes routes",
    );
}

#[test]
fn cluster_compression_off_and_accept_only() {
    let open = "insecure_allow_unauthenticated_routes: true";
    for mode in ["off", "accept", "Accept", "disabled", "false", "{ mode: accept }"] {
        ok(&format!("cluster {{ port: 6222, {open}, compression: {mode} }}"));
    }
    for mode in ["s2_auto", "s2_fast", "on", "true", "{ mode: s2_best }"] {
        let err = load(&format!("cluster {{ port: 6222, {open}, compression: {mode} }}")).unwrap_err();
        assert!(err.message().contains("warden does not compress routes"), "{mode}: {err}");
    }
    let err = load(&format!("cluster {{ port: 6222, {open}, compression: zstd }}")).unwrap_err();
    assert!(err.message().contains("unsupported compression mode \"zstd\""), "{err}");
    let err =
        load(&format!("cluster {{ port: 6222, {open}, compression: {{ mode: accept, rtt_thresholds: [\"10ms\"] }} }}"))
            .unwrap_err();
    assert!(err.message().contains("only apply to s2_auto"), "{err}");
}

#[test]
fn connect_backoff_is_read() {
    let o = ok("cluster { port: 6222, connect_backoff: true, insecure_allow_unauthenticated_routes: true }").options;
    assert!(o.cluster.unwrap().connect_backoff);
}

#[test]
fn allow_trace_is_kept_on_service_exports_and_stream_imports() {
    let o = ok(r#"accounts {
  A: { users: [ {user: a, password: p} ], exports: [ {service: "s", allow_trace: true}, {stream: "t"} ] }
  B: { users: [ {user: b, password: p} ], imports: [ {stream: {account: A, subject: t}, allow_trace: true} ] }
}"#)
    .options;
    assert!(o.accounts[0].exports[0].allow_trace && !o.accounts[0].exports[1].allow_trace);
    assert!(o.accounts[1].imports[0].allow_trace);
    refused(
        "accounts { A: { users: [ {user: a, password: p} ], exports: [ {stream: s, allow_trace: true} ] } }",
        Conflict,
        1,
        75,
        "Detected allow_trace directive on non-service",
    );
}

#[test]
fn msg_trace_is_read_as_a_subject_or_dest_and_sampling() {
    let msg_trace =
        |text: &str| ok(&format!("accounts {{ A: {{ msg_trace: {text} }} }}")).options.accounts[0].msg_trace.clone();
    let t = msg_trace("\"t.a\"").unwrap();
    assert_eq!((t.dest.as_str(), t.sampling), ("t.a", 100));
    let t = msg_trace("{ dest: t.b, sampling: 25 }").unwrap();
    assert_eq!((t.dest.as_str(), t.sampling), ("t.b", 25));
    assert_eq!(msg_trace("{ dest: t.c, sampling: \"40%\" }").unwrap().sampling, 40);
    let o = ok("accounts { A: { trace_dest: t.d } }").options;
    assert_eq!(o.accounts[0].msg_trace.as_ref().unwrap().dest, "t.d");
    let l = ok("accounts { A: { msg_trace: { sampling: 5 } } }");
    assert!(l.options.accounts[0].msg_trace.is_none());
    refused("accounts { A: { msg_trace: \"t.*\" } }", Invalid, 1, 28, "Trace destination \"t.*\" is not valid");
    refused("accounts { A: { msg_trace: { dest: t, sampling: 0 } } }", Invalid, 1, 49, "needs to be [1..100]");
    refused("accounts { A: { msg_trace: { dest: t, sampling: 101 } } }", Invalid, 1, 49, "needs to be [1..100]");
    refused("accounts { A: { msg_trace: { dest: t, x: 1 } } }", Invalid, 1, 42, "Unknown field \"x\"");
}

#[test]
fn allowed_connection_types_read_upper_cased_and_unknown_ones_refused() {
    let o = ok(r#"authorization { users: [
  {user: a, password: p, allowed_connection_types: [websocket, "Standard", WEBSOCKET]}
  {user: b, password: p, clients: LEAFNODE}
  {nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4, connection_types: [MQTT]}
] }"#)
    .options;
    let auth = o.authorization.unwrap();
    assert_eq!(auth.users[0].allowed_connection_types, ["WEBSOCKET", "STANDARD"]);
    assert_eq!(auth.users[1].allowed_connection_types, ["LEAFNODE"]);
    assert_eq!(auth.nkeys[0].allowed_connection_types, ["MQTT"]);
    refused(
        "authorization { users: [ {user: a, password: p, allowed_connection_types: [STANDARD, pigeon, X]} ] }",
        Invalid,
        1,
        75,
        "invalid connection types [\"PIGEON\" \"X\"]",
    );
}

#[test]
fn feature_flags_change_nothing_and_say_so() {
    let loaded = ok("feature_flags { js_ack_fc_v2: true, unknown_one: false }");
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("\"js_ack_fc_v2\" changes nothing"), "{:?}", loaded.warnings);
    refused("feature_flags { x: 1 }", Type, 1, 20, "true or false");
}

#[test]
fn unauthenticated_routes_and_leafs_only_on_loopback_without_client_auth() {
    // nats.py's cluster tests: three servers on 127.0.0.1, no credentials anywhere.
    ok("cluster { listen: 127.0.0.1:6222, routes: [nats://127.0.0.1:6223] }");
    ok("cluster { listen: \"[::1]:6222\" }");
    ok("cluster { listen: localhost:6222 }");
    // nats.js's test helper.
    ok("leafnodes { listen: \"127.0.0.1:-1\" }");
    refused("cluster { listen: 0.0.0.0:6222 }", Invalid, 1, 1, "no route authentication");
    refused("leafnodes { listen: 0.0.0.0:7422 }", Invalid, 1, 1, "insecure_allow_unauthenticated_leafnodes");
    // Clients must authenticate: the routes must too, loopback or not.
    refused(
        "authorization { user: u, password: p }\ncluster { listen: 127.0.0.1:6222 }",
        Invalid,
        2,
        1,
        "no route authentication",
    );
    let o = ok("cluster { listen: 127.0.0.1:6222 }").options;
    assert!(open_loopback_listener(&o, "127.0.0.1") && !open_loopback_listener(&o, "10.0.0.1"));
}
