use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::config::options::{
    HttpAuthorization, HttpOptions, Permissions, ResponsePermission, SubjectRules, TlsVersion,
};
use crate::config::summary;

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

fn list(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn authorization_settings_alone_are_enough_when_accounts_have_users() {
    let loaded =
        ok("authorization { failure_delay_max: \"0s\" }\naccounts { A: { users: [ {user: a, password: p} ] } }");
    let auth = loaded.options.authorization.unwrap();
    assert_eq!(auth.failure_delay_max, Some(Duration::ZERO));
    assert!(auth.users.is_empty());
}

fn allow(items: &[&str]) -> Option<SubjectRules> {
    Some(SubjectRules { allow: list(items), deny: None, literal: None })
}

#[test]
fn listen_forms() {
    let cases = [
        ("listen: 127.0.0.1:4222", "127.0.0.1", 4222),
        ("listen = \"127.0.0.1:4222\"", "127.0.0.1", 4222),
        ("listen: 0.0.0.0:4222", "0.0.0.0", 4222),
        ("listen: localhost:5222", "localhost", 5222),
        ("listen: :4333", "127.0.0.1", 4333),
        ("listen: 4444", "127.0.0.1", 4444),
        ("listen: \"4445\"", "127.0.0.1", 4445),
        ("listen: \"[::1]:4222\"", "::1", 4222),
        ("listen: 127.0.0.1:-1", "127.0.0.1", 0),
        ("host: 0.0.0.0\nport: 4000", "0.0.0.0", 4000),
        ("net: 10.0.0.1", "10.0.0.1", 4222),
        ("port: -1", "127.0.0.1", 0),
        ("{\"listen\": \"127.0.0.1:4222\"}", "127.0.0.1", 4222),
        // A top-level variable that is referenced is not an unknown key.
        ("p = 4000\nport = $p", "127.0.0.1", 4000),
    ];
    for (text, host, port) in cases {
        let o = ok(text).options;
        assert_eq!((o.host.as_str(), o.port), (host, port), "{text}");
    }
}

#[test]
fn sizes_durations_and_limits() {
    let o = ok(r#"
        max_payload: 1MB
        max_pending: 64MB
        max_connections: 100
        max_connections_per_ip: 10
        max_subscriptions: 1k
        max_control_line: 4KB
        ping_interval: "1h30m"
        ping_max: 3
        write_deadline: "500ms"
        lame_duck_duration: "2m"
        lame_duck_grace_period: "15s"
        debug: true
        trace: yes
        logtime: off
        log_file: "/tmp/warden.log"
        server_name: "edge-1"
    "#)
    .options;
    assert_eq!(o.max_payload, 1 << 20);
    assert_eq!(o.max_pending, 64 << 20);
    assert_eq!(o.max_connections, 100);
    assert_eq!(o.max_connections_per_ip, 10);
    assert_eq!(o.max_subscriptions, 1000);
    assert_eq!(o.max_control_line, 4096);
    assert_eq!(o.ping_interval, Duration::from_secs(5400));
    assert_eq!(o.ping_max, 3);
    assert_eq!(o.write_deadline, Duration::from_millis(500));
    assert_eq!(o.lame_duck_duration, Duration::from_secs(120));
    assert_eq!(o.lame_duck_grace_period, Duration::from_secs(15));
    assert!(o.debug && o.trace && !o.logtime);
    assert_eq!(o.log_file.as_deref(), Some(Path::new("/tmp/warden.log")));
    assert_eq!(o.server_name.as_deref(), Some("edge-1"));

    // Bare numbers of seconds where nats-server accepts them, with a warning.
    let loaded = ok("ping_interval: 60\nwrite_deadline: 2");
    assert_eq!(loaded.options.ping_interval, Duration::from_secs(60));
    assert_eq!(loaded.options.write_deadline, Duration::from_secs(2));
    assert_eq!(loaded.warnings.len(), 2);
    assert!(loaded.warnings[0].starts_with("test.conf:1:16: ping_interval is a bare number"));

    // Option names are case-insensitive, as in nats-server.
    let o = ok("MAX_PAYLOAD: 2KB\nPort: 1234\nLogTime: false").options;
    assert_eq!((o.max_payload, o.port, o.logtime), (2048, 1234, false));
}

#[test]
fn full_server_config_in_the_style_of_the_nats_docs() {
    let text = r#"
# Client port of 4222 on all interfaces
listen: 0.0.0.0:4222
server_name: n1

# HTTP monitoring port
http: 127.0.0.1:8222

max_payload: 2MB
max_connections: 1000
ping_interval: "20s"

tls {
  cert_file: "./configs/certs/server-cert.pem"
  key_file:  "./configs/certs/server-key.pem"
  ca_file:   "./configs/certs/ca.pem"
  verify:    true
  timeout:   2
}

authorization {
  user: derek
  password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG
  timeout: 1.5
}

# This is for clustering multiple servers together.
cluster {
  name: "my_cluster"
  listen: 0.0.0.0:6222

  # Routes are protected, so need to use them with --routes flag
  authorization {
    user: ruser
    password: T0pS3cr3t
    timeout: 2
  }

  routes = [
    nats-route://ruser:T0pS3cr3t@otherdockerhost:6222
    "nats-route://10.0.0.2:6222"
  ]
  no_advertise: true
  connect_retries: 10
  tls {
    cert_file: "route.pem"; key_file: "route-key.pem"
    min_version: "1.3"
  }
}
"#;
    let loaded = ok(text);
    let o = &loaded.options;
    assert_eq!((o.host.as_str(), o.port), ("0.0.0.0", 4222));
    assert_eq!(o.server_name.as_deref(), Some("n1"));
    assert_eq!(o.http, Some(HttpOptions { host: "127.0.0.1".into(), port: 8222, tls: false }));
    assert_eq!(o.max_payload, 2 << 20);
    assert_eq!(o.ping_interval, Duration::from_secs(20));
    let tls = o.tls.as_ref().unwrap();
    assert_eq!(tls.cert_file, PathBuf::from("./configs/certs/server-cert.pem"));
    assert_eq!(tls.ca_file, Some(PathBuf::from("./configs/certs/ca.pem")));
    assert!(tls.verify && !tls.verify_and_map && !tls.handshake_first);
    assert_eq!(tls.timeout, Duration::from_secs(2));
    assert_eq!(tls.min_version, TlsVersion::V1_2);
    let auth = o.authorization.as_ref().unwrap();
    assert_eq!(auth.user.as_deref(), Some("derek"));
    assert!(auth.password.as_ref().unwrap().expose().starts_with("$2a$11$W2z"));
    assert_eq!(auth.timeout, Some(Duration::from_millis(1500)));
    let c = o.cluster.as_ref().unwrap();
    assert_eq!(c.name.as_deref(), Some("my_cluster"));
    assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 6222));
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[1], "nats-route://10.0.0.2:6222");
    assert!(c.no_advertise);
    assert_eq!(c.connect_retries, 10);
    let ra = c.authorization.as_ref().unwrap();
    assert_eq!(ra.user, "ruser");
    assert_eq!(ra.timeout, Some(Duration::from_secs(2)));
    assert_eq!(c.tls.as_ref().unwrap().min_version, TlsVersion::V1_3);
    // The bcrypt password gives no warning; the route password and the bare
    // ping... only the plain route password does.
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("route user \"ruser\""));

    let text = summary(o);
    assert!(text.contains("client listener: 0.0.0.0:4222 (TLS 1.2+, client certificates verified)"), "{text}");
    assert!(text.contains("single user \"derek\""), "{text}");
    assert!(text.contains("2 seed route(s)"), "{text}");
    assert!(!text.contains("T0pS3cr3t") && !text.contains("$2a$"), "{text}");
}

#[test]
fn docker_image_config_of_nats_server() {
    let text = r#"
# Client port of 4222 on all interfaces
port: 4222

# HTTP monitoring port
monitor_port: 8222

# This is for clustering multiple servers together.
cluster {
  # It is recommended to set a cluster name
  name: "my_cluster"

  # Route connections to be received on any interface on port 6222
  port: 6222

  # Routes are protected, so need to use them with --routes flag
  # e.g. --routes=nats-route://ruser:T0pS3cr3t@otherdockerhost:6222
  authorization {
    user: ruser
    password: T0pS3cr3t
    timeout: 2
  }

  # Routes are actively solicited and connected to from this server.
  # This Docker image has none by default, but you can pass a
  # flag to the nats-server docker image to create one to an existing server.
  routes = []
}
"#;
    let o = ok(text).options;
    assert_eq!(o.port, 4222);
    assert_eq!(o.http.as_ref().map(|h| (h.host.as_str(), h.port)), Some(("127.0.0.1", 8222)));
    let c = o.cluster.unwrap();
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 6222));
    assert!(c.routes.is_empty());
}

#[test]
fn json_config() {
    let text = r#"{
  "listen": "127.0.0.1:4222",
  "max_payload": 2048,
  "authorization": {
    "users": [
      {"user": "svc", "password": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
       "permissions": {"publish": {"allow": ["svc.>"], "deny": ["svc.admin.>"]},
                       "subscribe": {"deny": "secret.>"},
                       "allow_responses": {"max": 5, "expires": "1m"}}}
    ]
  }
}"#;
    let loaded = ok(text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let o = loaded.options;
    assert_eq!(o.max_payload, 2048);
    let user = &o.authorization.as_ref().unwrap().users[0];
    assert_eq!(
        user.permissions,
        Some(Permissions {
            publish: Some(SubjectRules { allow: list(&["svc.>"]), deny: list(&["svc.admin.>"]), literal: None }),
            subscribe: Some(SubjectRules { allow: None, deny: list(&["secret.>"]), literal: None }),
            allow_responses: Some(ResponsePermission { max: Some(5), expires: Duration::from_secs(60) }),
        })
    );
}

#[test]
fn config_errors_with_positions() {
    use ErrorKind::*;
    // (config, kind, line, column, part of the message)
    let cases: &[(&str, ErrorKind, u32, u32, &str)] = &[
        ("prot: 4222", UnknownKey, 1, 1, "unknown key `prot` in the top level; did you mean `port`?"),
        ("port: 1\nmax_paylod: 1", UnknownKey, 2, 1, "did you mean `max_payload`?"),
        ("zzzzzzzz: 1", UnknownKey, 1, 1, "known keys: "),
        // A typo is reported before what it causes (here: users without passwords).
        (
            "tsl { cert_file: c, key_file: k, ca_file: a, verify_and_map: true }\nauthorization { users: [{user: a}] }",
            UnknownKey,
            1,
            1,
            "did you mean `tls`?",
        ),
        ("jetstream {}", UnknownKey, 1, 1, "nats-server option that warden does not support"),
        ("v = 1", UnknownKey, 1, 1, "unknown key `v`"),
        ("port: 70000", Invalid, 1, 7, "between -1 and 65535"),
        ("port: \"4222\"", Type, 1, 7, "port must be an integer, found a string"),
        ("port: 1\nPORT: 2", Conflict, 2, 1, "`PORT` sets the same option as `port`"),
        ("listen: 1.2.3.4:5\nport: 6", Conflict, 2, 1, "`listen` already sets"),
        ("listen: localhost", Invalid, 1, 9, "host:port"),
        ("listen: \"::1:4222\"", Invalid, 1, 9, "brackets"),
        ("listen: \"a b:1\"", Invalid, 1, 9, "spaces"),
        ("max_payload: 100MB", Invalid, 1, 14, "max_payload (104857600) cannot be higher than max_pending (67108864)"),
        ("max_payload: 0", Invalid, 1, 14, "between 1 and"),
        ("ping_max: 0", Invalid, 1, 11, "between 1 and"),
        ("ping_interval: 2m", Type, 1, 16, "write durations in quotes: \"2m\""),
        ("ping_interval: \"2x\"", Invalid, 1, 16, "unknown unit"),
        ("ping_interval: \"0s\"", Invalid, 1, 16, "more than zero"),
        ("ping_interval: 1.5", Type, 1, 16, "ping_interval must be"),
        ("lame_duck_duration: \"10s\"", Invalid, 1, 21, "at least 30 seconds"),
        ("lame_duck_duration: 60", Type, 1, 21, "duration string"),
        ("lame_duck_grace_period: \"5m\"", Invalid, 1, 25, "shorter than lame_duck_duration"),
        ("debug: \"true\"", Type, 1, 8, "debug must be true or false, found a string"),
        ("debug: 1", Type, 1, 8, "true or false"),
        ("server_name: \"a b\"", Invalid, 1, 14, "spaces"),
        ("log_file: \"\"", Invalid, 1, 11, "must not be empty"),
        ("http: 8222\nhttp_port: 8223", Conflict, 2, 1, "`http` already sets"),
        ("http_port: 4222", Conflict, 1, 1, "monitoring port is the client port"),
        ("http: 8222\nhttps: 8223", Conflict, 2, 1, "`http` and `https`: can't specify both HTTP and HTTPS"),
        ("http_port: 8222\nhttps_port: 8223", Conflict, 2, 1, "`http_port` and `https_port`: can't specify both"),
        ("syslog: 1", Type, 1, 9, "syslog must be true or false"),
        ("remote_syslog: \"foo.com:33\"", Invalid, 1, 16, "is not a URL"),
        ("remote_syslog: \"http://foo.com:33\"", Invalid, 1, 16, "udp, tcp or unix"),
        ("prof_port: 6543", Invalid, 1, 12, "prof_port is refused: nats-server serves Go's pprof"),
        ("https_port: 8222", Invalid, 1, 13, "there is no tls block"),
        ("http_authorization { token: t }", Invalid, 1, 20, "needs a monitoring listener"),
        ("http: 8222\nhttp_authorization { token: t, user: u, password: p }", Conflict, 2, 22, "not both"),
        ("http: 8222\nhttp_authorization { user: u }", Invalid, 2, 28, "needs a password"),
        ("http: 8222\nhttp_authorization { password: p }", Conflict, 2, 22, "needs a user"),
        ("http: 8222\nhttp_authorization {}", Invalid, 2, 20, "needs a token or a user"),
        ("http: 8222\nhttp_authorization { tokn: t }", UnknownKey, 2, 22, "did you mean `token`"),
        ("authorization: 1", Type, 1, 16, "authorization must be a map"),
        ("authorization {}", Invalid, 1, 1, "no token, user or users"),
        ("authorization { users = [] }", Invalid, 1, 1, "no token, user or users"),
        ("authorization { timeout: 1 }\naccounts { A: {} }", Invalid, 1, 1, "no token, user or users"),
        ("authorization { token: t, user: u, password: p }", Conflict, 1, 17, "Cannot have a user/pass and token"),
        (
            "authorization {\n user: u\n password: p\n users: [{user: a, password: b}]\n}",
            Conflict,
            4,
            2,
            "Can not have a single user/pass and a users array",
        ),
        (
            "authorization {\n token: t\n users: [{user: a, password: b}]\n}",
            Conflict,
            3,
            2,
            "Can not have a token and a users array",
        ),
        (
            "authorization { users: [\n {user: a, password: b}\n {user: a, password: c}\n] }",
            Conflict,
            3,
            2,
            "Duplicate user \"a\" detected",
        ),
        ("authorization { user: u }", Invalid, 1, 23, "needs a password"),
        ("authorization { password: p }", Invalid, 1, 17, "needs a user"),
        ("authorization { user: u, username: v, password: p }", Conflict, 1, 26, "sets the same option"),
        ("authorization { token: \"\" }", Invalid, 1, 24, "token must not be empty"),
        ("authorization { token: 1234 }", Type, 1, 24, "token must be a quoted string, found an integer"),
        ("authorization { token: t, timeout: \"0s\" }", Invalid, 1, 36, "more than zero"),
        ("authorization { usres: [] }", UnknownKey, 1, 17, "did you mean `users`?"),
        ("authorization { users: [{user: a}] }", Invalid, 1, 25, "user \"a\" has no password"),
        ("authorization { users: [{password: a}] }", Invalid, 1, 25, "needs `user`"),
        ("authorization { users: [{user: a, password: b, nkey: UABC}] }", Conflict, 1, 26, "Nkey users do not take"),
        (
            "authorization { users: [{user: a, password: b, permisions: {}}] }",
            UnknownKey,
            1,
            48,
            "did you mean `permissions`?",
        ),
        ("authorization { users: {user: a} }", Type, 1, 24, "users must be an array"),
        ("authorization { users: [a] }", Type, 1, 25, "a users entry must be a map"),
        ("tls { key_file: k }", Invalid, 1, 5, "tls needs `cert_file`"),
        ("tls { cert_file: c }", Invalid, 1, 5, "tls needs `key_file`"),
        ("tls { cert_file: c, key_file: k, verify: true }", Invalid, 1, 42, "needs `ca_file`"),
        ("tls { cert_file: c, key_file: k, min_version: \"1.1\" }", Invalid, 1, 47, "\"1.2\" or \"1.3\""),
        ("tls { cert_file: c, key_file: k, insecure: true }", UnknownKey, 1, 34, "does not support"),
        ("tls { cert_file: c, key_file: k, timeout: \"-1s\" }", Invalid, 1, 43, "negative"),
        (
            "tls { cert_file: c, key_file: k, ca_file: a, verify_and_map: true }",
            Invalid,
            1,
            5,
            "authorization has no users",
        ),
        ("cluster { name: c, routes: [\"nats-route://h:1\"] }", Invalid, 1, 28, "routes need a route listener"),
        (
            "cluster { port: 6222, tls { cert_file: c, key_file: k, ca_file: a, verify_and_map: true } }",
            Invalid,
            1,
            1,
            "verify_and_map needs `authorization { user }`",
        ),
        ("cluster { port: 4222 }", Conflict, 1, 1, "cluster port is already used"),
        (
            "cluster { port: 6222, authorization { token: t } }",
            Conflict,
            1,
            39,
            "Cluster authorization does not support tokens",
        ),
        (
            "cluster { port: 6222, authorization { users: [] } }",
            Conflict,
            1,
            39,
            "Cluster authorization does not allow multiple users",
        ),
        ("cluster { port: 6222, authorization { user: u } }", Invalid, 1, 37, "needs `user` and `password`"),
        ("cluster { port: 6222, routes: [\"http://h:1\"] }", Invalid, 1, 32, "nats-route://"),
        ("cluster { port: 6222, routes: [nats-route://h] }", Invalid, 1, 32, "nats-route://"),
        ("cluster { port: 6222, routes: [nats-route://u:p@h:0] }", Invalid, 1, 32, "nats-route://"),
        ("cluster { port: 6222, advertise: x }", UnknownKey, 1, 23, "does not support"),
        ("cluster { port: 6222, connect_retries: -1 }", Invalid, 1, 40, "between 0 and"),
        ("\ncluster { listen: 0.0.0.0:6222 }", Invalid, 2, 1, "no route authentication"),
        (
            "authorization { token: \"s3cr3t-token-value\" }\ncluster { port: 6222 }",
            Invalid,
            2,
            1,
            "no route authentication",
        ),
        ("cluster { port: 6222, insecure_allow_unauthenticated_routes: 1 }", Type, 1, 62, "true or false"),
    ];
    for (text, kind, line, column, message) in cases {
        let err = match load(text) {
            Ok(l) => panic!("{text:?} loaded: {:?}", l.options),
            Err(e) => e,
        };
        assert_eq!(err.kind(), *kind, "{text:?}: {err}");
        assert_eq!((err.line(), err.column()), (Some(*line), Some(*column)), "{text:?}: {err}");
        assert!(err.message().contains(message), "{text:?}: {err}");
    }
}

#[test]
fn summary_without_auth_says_so() {
    let s = summary(&Options::default());
    assert!(s.contains("client listener: 127.0.0.1:4222 (plain text, no TLS)"), "{s}");
    assert!(s.contains("authentication: none"), "{s}");
    assert!(s.contains("monitoring: off") && s.contains("cluster: off"), "{s}");
}

#[test]
fn monitoring_listener_and_its_authorization() {
    let o = ok("http: \"0.0.0.0:8222\"\nhttp_authorization { token: \"t0k\" }").options;
    assert_eq!(o.http, Some(HttpOptions { host: "0.0.0.0".into(), port: 8222, tls: false }));
    assert_eq!(o.http_authorization, Some(HttpAuthorization::Token(crate::secret::Secret::new("t0k"))));
    let loaded = ok("monitor_port: 8222\nhttp_authorization { user: ops, password: \"pw\" }");
    assert!(loaded.warnings.iter().any(|w| w.contains("monitoring user \"ops\"") && !w.contains("pw\"")));
    let o = loaded.options;
    assert!(matches!(&o.http_authorization, Some(HttpAuthorization::User { user, .. }) if user == "ops"));
    let s = summary(&o);
    assert!(s.contains("monitoring: http://127.0.0.1:8222 (basic auth required)"), "{s}");
    let o = ok("https_port: 8443\ntls { cert_file: c.pem, key_file: k.pem }").options;
    assert_eq!(o.http, Some(HttpOptions { host: "127.0.0.1".into(), port: 8443, tls: true }));
}

#[test]
fn secrets_from_the_environment() {
    let env = |name: &str| (name == "WARDEN_T_PASS").then(|| "\"from env\"".to_owned());
    let loaded = load_str_with_env("authorization { user: u, password: $WARDEN_T_PASS }", "env.conf", &env).unwrap();
    let auth = loaded.options.authorization.unwrap();
    assert_eq!(auth.password.unwrap().expose(), "from env");
    // And from the real process environment, through the public API.
    std::env::set_var("WARDEN_CONFIG_TEST_PORT_91C2", "4999");
    let loaded = load_str("port: $WARDEN_CONFIG_TEST_PORT_91C2", "env.conf").unwrap();
    assert_eq!(loaded.options.port, 4999);
}

#[test]
fn load_file_with_policies_included() {
    let dir = std::env::temp_dir().join(format!("warden-config-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("policies/roles.conf"),
        "admin = { publish = \">\", subscribe = \">\" }\nrequestor = { publish = [\"req.>\"], subscribe = \"_INBOX.>\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("warden.conf"),
        "listen: 127.0.0.1:4222\nauthorization {\n  include \"policies/roles.conf\"\n  users = [\n    {user: a, password: \"$2a$10$x\", permissions: $admin}\n  ]\n}\n",
    )
    .unwrap();
    // `requestor` is defined by the include but never used: refused, and
    // the error points into the included file.
    let err = load_file_with_env(&dir.join("warden.conf"), &no_env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKey);
    assert!(err.file().unwrap().ends_with("roles.conf"), "{err}");
    assert_eq!(err.line(), Some(2));

    std::fs::write(
        dir.join("warden.conf"),
        "listen: 127.0.0.1:4222\nauthorization {\n  include \"policies/roles.conf\"\n  users = [\n    {user: a, password: \"$2a$10$x\", permissions: $admin}\n    {user: b, password: \"$2a$10$y\", permissions: $requestor}\n  ]\n}\n",
    )
    .unwrap();
    let loaded = load_file(&dir.join("warden.conf")).unwrap();
    let users = loaded.options.authorization.unwrap().users;
    assert_eq!(users[1].permissions.as_ref().unwrap().publish, allow(&["req.>"]));
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn loading_never_panics(
        text in "(authorization|users|user|password|publish|subscribe|allow|deny|allow_responses|max|expires|tls|cluster|listen|port|http|routes|\\$a|a|[{}\\[\\]=:,\\n \"]|[0-9]+|[0-9]+[kmg]|\"[0-9]+[smh]\"|true){0,60}"
    ) {
        let _ = load(&text);
    }
}

#[test]
fn leafnodes_are_read_and_refused_without_client_authentication() {
    let users = "authorization { users = [ { user: a, password: \"$2a$11$0123456789012345678901.abcdefghijklmnopqrstuvwxyzABCDE\" } ] }\n";
    let loaded = load_str(
        &format!("{users}leafnodes {{ listen: 127.0.0.1:7422, advertise: \"leaf.example:7422\", compression: off }}"),
        "l.conf",
    )
    .unwrap();
    let leaf = loaded.options.leafnodes.unwrap();
    assert_eq!((leaf.host.as_str(), leaf.port), ("127.0.0.1", 7422));
    assert_eq!(leaf.advertise.as_deref(), Some("leaf.example:7422"));
    let open = load_str("leafnodes {\n  listen: 0.0.0.0:7422\n}", "l.conf").unwrap_err().to_string();
    assert!(open.starts_with("l.conf:1:1:") && open.contains("insecure_allow_unauthenticated_leafnodes"), "{open}");
    load_str("leafnodes { port: 7422, insecure_allow_unauthenticated_leafnodes: true }", "l.conf").unwrap();
    let s2 = load_str(&format!("{users}leafnodes {{ port: 7422, compression: s2_auto }}"), "l.conf")
        .unwrap_err()
        .to_string();
    assert!(s2.contains("does not compress"), "{s2}");
    let clash = load_str(&format!("{users}port: 7422\nleafnodes {{ port: 7422 }}"), "l.conf").unwrap_err().to_string();
    assert!(clash.contains("leafnode port is already used"), "{clash}");
    let no_url = load_str("leafnodes { remotes: [ { account: A } ] }", "l.conf").unwrap_err().to_string();
    assert!(no_url.contains("needs `url` or `urls`"), "{no_url}");
    let bad_url = load_str("leafnodes { remotes: [ { url: \"http://x:1\" } ] }", "l.conf").unwrap_err().to_string();
    let first = bad_url.lines().next().unwrap();
    assert!(first.contains("nats-leaf://") && !first.contains("http://x"), "{bad_url}");
    let spoke =
        load_str("leafnodes { remotes: [ { url: \"nats-leaf://u:p@hub:7422\", deny_imports: [\"a.>\"] } ] }", "l.conf");
    let spoke = spoke.unwrap().options.leafnodes.unwrap();
    assert!(!spoke.accept, "only remotes: no listener, so no client authentication is needed");
    assert_eq!(spoke.remotes[0].deny_imports, ["a.>"]);
    let block = load_str(&format!("{users}leafnodes {{ port: 7422, authorization {{ user: x }} }}"), "l.conf");
    assert!(block.unwrap_err().to_string().contains("authorization"));
}

#[test]
fn warden_check_lists_each_remote_without_its_credentials() {
    let seed = crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::User).unwrap().seed().expose().to_owned();
    let text = format!(
        "leafnodes {{ remotes = [ {{ url: \"tls://u:secretpw@hub.example:7422\", account: \"$G\" }}\n {{ url: \"nats-leaf://hub2:7422\", nkey: \"{seed}\", tls: {{ ca_file: \"ca.pem\", cert_file: \"c.pem\", key_file: \"k.pem\" }} }} ] }}"
    );
    let s = summary(&load_str(&text, "r.conf").unwrap().options);
    assert!(
        s.contains("remote tls://hub.example:7422: account $G, logs in with the URL's user and password, TLS"),
        "{s}"
    );
    assert!(s.contains("remote nats-leaf://hub2:7422: account $G, logs in with an nkey seed, mutual TLS"), "{s}");
    assert!(!s.contains("secretpw") && !s.contains(&seed), "no secret in the summary: {s}");
}

#[test]
fn a_leafnode_remote_tls_block_is_a_diallers() {
    let remote = |body: &str| load_str(&format!("leafnodes {{ remotes: [ {{ {body} }} ] }}"), "r.conf");
    let alone = remote("url: \"tls://u:p@hub:7422\"").unwrap().options.leafnodes.unwrap();
    let tls = alone.remotes[0].tls.as_ref().expect("a tls:// url alone asks for TLS");
    assert!(tls.ca_file.is_none() && tls.client_certificate().is_none(), "the system's roots, no certificate");
    let ca_only = remote(
        "url: \"nats-leaf://hub:7422\", tls { ca_file: \"ca.pem\", handshake_first: true }, first_info_timeout: \"3s\"",
    );
    let ca_only = ca_only.unwrap().options.leafnodes.unwrap();
    let r = &ca_only.remotes[0];
    assert_eq!(r.first_info_timeout, std::time::Duration::from_secs(3));
    assert!(r.tls.as_ref().is_some_and(|t| t.handshake_first && t.client_certificate().is_none()));
    let half = remote("url: \"tls://hub:7422\", tls { cert_file: \"c.pem\" }").unwrap_err().to_string();
    assert!(half.starts_with("r.conf:1:") && half.contains("both `cert_file` and `key_file`"), "{half}");
    let verify = remote("url: \"tls://hub:7422\", tls { verify: true }").unwrap_err().to_string();
    assert!(verify.contains("`verify` has no meaning"), "{verify}");
    let auto = remote("url: \"tls://hub:7422\", tls { handshake_first: auto }").unwrap_err().to_string();
    assert!(auto.contains("true or false"), "{auto}");
    let users = "authorization { user: a, password: b }\n";
    let plain = load_str(
        &format!("{users}leafnodes {{ port: 7422, tls {{ cert_file: c, key_file: k, allow_non_tls: true }} }}"),
        "r.conf",
    );
    assert!(plain.unwrap_err().to_string().contains("allow_non_tls is not supported"));
}

#[test]
fn websocket_remotes_are_read_and_what_warden_cannot_do_is_refused() {
    let remote = |body: &str| load_str(&format!("leafnodes {{ remotes: [ {{ {body} }} ] }}"), "w.conf");
    let ws = remote("urls: [\"ws://u:p@hub:8080\", \"WS://hub2:8080\"], ws_no_masking: true, ws_compression: false");
    let r = ws.unwrap().options.leafnodes.unwrap().remotes.remove(0);
    assert!(r.over_websocket() && r.ws_no_masking && r.tls.is_none());
    let wss = remote("url: \"wss://hub:443\"").unwrap().options.leafnodes.unwrap().remotes.remove(0);
    assert!(wss.over_websocket() && wss.tls.is_some(), "a wss:// url alone asks for TLS");
    assert!(!remote("url: \"nats-leaf://hub:7422\"").unwrap().options.leafnodes.unwrap().remotes[0].over_websocket());
    let mixed = remote("urls: [\"ws://hub:8080\", \"nats-leaf://hub:7422\"]").unwrap_err().to_string();
    assert!(mixed.contains("cannot mix websocket"), "{mixed}");
    let compress = remote("url: \"ws://hub:8080\", ws_compression: true").unwrap_err().to_string();
    assert!(compress.starts_with("w.conf:1:") && compress.contains("does not compress WebSocket"), "{compress}");
    let path = remote("url: \"ws://u:secret@hub:8080/some/path\"").unwrap_err().to_string();
    assert!(path.contains("ws://") && !path.contains("secret"), "{path}");
}

#[test]
fn the_leafnodes_authorization_block_names_users_in_existing_accounts() {
    let ok = load_str(
        "accounts { EDGE {} }\nleafnodes { port: 7422, authorization { user: a, password: \"p\", account: EDGE, timeout: 3 } }",
        "l.conf",
    )
    .unwrap();
    let leaf = ok.options.leafnodes.unwrap();
    let own = leaf.authorization.unwrap();
    assert_eq!((own.users[0].0.user.as_str(), own.users[0].1.as_deref()), ("a", Some("EDGE")));
    assert!(ok.warnings.iter().any(|w| w.contains("leafnode user \"a\"")), "{:?}", ok.warnings);
    let missing = load_str("leafnodes { port: 7422, authorization { user: a, password: p, account: NOPE } }", "l.conf");
    assert!(missing.unwrap_err().to_string().contains("no account \"NOPE\""));
    let half = load_str("leafnodes { port: 7422, authorization { user: a } }", "l.conf");
    assert!(half.unwrap_err().to_string().contains("needs `user` and `password`"));
    let twice = load_str(
        "leafnodes { port: 7422, authorization { users: [ {user: a, password: p}, {user: a, password: q} ] } }",
        "l.conf",
    );
    assert!(twice.unwrap_err().to_string().contains("Duplicate user"));
}

#[test]
fn leaf_nkey_users_are_read_and_malformed_ones_refused_where_they_stand() {
    let key = crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::User).unwrap();
    let public = key.public().as_str().to_owned();
    let single = format!(
        "accounts {{ EDGE {{}} }}\nleafnodes {{ port: 7422, authorization {{ nkey: \"{public}\", account: EDGE }} }}"
    );
    let own = load_str(&single, "l.conf").unwrap().options.leafnodes.unwrap().authorization.unwrap();
    assert_eq!((own.nkeys[0].0.nkey.as_str(), own.nkeys[0].1.as_deref()), (public.as_str(), Some("EDGE")));
    assert!(own.users.is_empty());
    let listed = format!("leafnodes {{ port: 7422, authorization {{ users = [ {{ nkey: \"{public}\" }} ] }} }}");
    assert_eq!(load_str(&listed, "l.conf").unwrap().options.leafnodes.unwrap().authorization.unwrap().nkeys.len(), 1);
    let refused = |text: &str| load_str(text, "l.conf").unwrap_err().to_string();
    // A seed, an account key and garbage are not a user's public key.
    let seed = key.seed();
    for bad in [seed.expose(), "ADRUZ6OEYSTS3OUO4G4I3SBUKJEDRAZL6TGAZAWFVPXWS5NYDQ3ZJY3T", "Uxyz"] {
        let text = format!("leafnodes {{\n  port: 7422\n  authorization {{ nkey: \"{bad}\" }}\n}}");
        let err = refused(&text);
        assert!(err.starts_with("l.conf:3:") && err.contains("Not a valid public nkey"), "{err}");
        assert!(!err.contains(seed.expose()), "a seed is never repeated: {err}");
    }
    let both =
        refused(&format!("leafnodes {{ port: 7422, authorization {{ nkey: \"{public}\", user: a, password: p }} }}"));
    assert!(both.contains("Nkey users do not take usernames or passwords"), "{both}");
    let entry = refused(&format!(
        "leafnodes {{ port: 7422, authorization {{ users = [ {{ nkey: \"{public}\", password: p }} ] }} }}"
    ));
    assert!(entry.contains("Nkey users do not take usernames or passwords"), "{entry}");
    let mixed = refused(&format!(
        "leafnodes {{ port: 7422, authorization {{ nkey: \"{public}\", users = [ {{ user: a, password: p }} ] }} }}"
    ));
    assert!(mixed.contains("can not have a single nkey and a users array"), "{mixed}");
    let mixed_user = refused(
        "leafnodes { port: 7422, authorization { user: b, password: q, users = [ { user: a, password: p } ] } }",
    );
    assert!(mixed_user.contains("can not have a single user/pass and a users array"), "{mixed_user}");
    let twice = refused(&format!(
        "leafnodes {{ port: 7422, authorization {{ users = [ {{ nkey: \"{public}\" }}, {{ nkey: \"{public}\" }} ] }} }}"
    ));
    assert!(twice.contains("Duplicate nkey"), "{twice}");
    let nowhere =
        refused(&format!("leafnodes {{ port: 7422, authorization {{ nkey: \"{public}\", account: NOPE }} }}"));
    assert!(nowhere.starts_with("l.conf:1:") && nowhere.contains("no account \"NOPE\""), "{nowhere}");
}

#[test]
fn leaf_verify_and_map_lets_users_go_without_a_password_and_needs_users() {
    let tls = "tls { cert_file: s.pem, key_file: s.key, ca_file: ca.pem, verify_and_map: true }";
    let mapped = format!("leafnodes {{ port: 7422, {tls}, authorization {{ users = [ {{ user: \"CN=edge\" }} ] }} }}");
    let own = load_str(&mapped, "l.conf").unwrap().options.leafnodes.unwrap().authorization.unwrap();
    assert!(own.users[0].0.password.is_none());
    let unmapped = "leafnodes { port: 7422, authorization { users = [ { user: \"CN=edge\" } ] } }";
    assert!(load_str(unmapped, "l.conf").unwrap_err().to_string().contains("needs `user` and `password`"));
    // Without leaf users the clients' users are mapped, so they may go
    // without a password; with none at all there is nobody to map to.
    let global = format!("authorization {{ users = [ {{ user: \"CN=edge\" }} ] }}\nleafnodes {{ port: 7422, {tls} }}");
    load_str(&global, "l.conf").unwrap();
    let nobody = format!(
        "accounts {{ A {{ users = [ {{ nkey: \"{}\" }} ] }} }}\nleafnodes {{ port: 7422, {tls} }}",
        crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::User).unwrap().public().as_str()
    );
    let err = load_str(&nobody, "l.conf").unwrap_err().to_string();
    assert!(err.contains("leafnodes tls verify_and_map maps leaf certificates to users"), "{err}");
    let operator = include_str!("../../jwt/vectors/operator.jwt").trim();
    let err = load_str(&format!("operator: \"{operator}\"\nleafnodes {{ port: 7422, {tls} }}"), "l.conf")
        .unwrap_err()
        .to_string();
    assert!(err.contains("operators do not allow those"), "{err}");
}

#[test]
fn the_summary_says_who_logs_in_on_the_leaf_port() {
    let key = crate::nkeys::KeyPair::generate(crate::nkeys::KeyType::User).unwrap();
    let own = format!(
        "leafnodes {{ port: 7422, authorization {{ users = [ {{ user: a, password: p }}, {{ nkey: \"{}\" }} ] }} }}",
        key.public().as_str()
    );
    let summary = crate::config::summary(&load_str(&own, "l.conf").unwrap().options);
    assert!(summary.contains("1 leaf user(s) and 1 leaf nkey(s)"), "{summary}");
}

/// nats-server's `test/configs/authorization.conf`: `PASS` defined inside
/// `authorization` for its users' `$PASS` is the variable, not a lone
/// password; unused, it is still the password (and needs a user).
#[test]
fn a_password_entry_used_as_a_variable_beside_users_is_the_variable() {
    let text = "authorization {\n  PASS: \"$2a$04$P/.bd.7unw9Ew7yWJqXsl.f4oNRLQGvadEL2YnqQXbbb.IVQajRdK\"\n  users = [ {user: alice, password: $PASS} ]\n}\n";
    let loaded = ok(text);
    let auth = loaded.options.authorization.as_ref().unwrap();
    assert!(auth.password.is_none());
    assert_eq!(auth.users.len(), 1);
    assert!(loaded.warnings.iter().any(|w| w.contains("used as a variable")), "{:?}", loaded.warnings);
    let unused = "authorization {\n  PASS: p\n  users = [ {user: alice, password: q} ]\n}\n";
    let err = load(unused).unwrap_err();
    assert!(err.to_string().contains("Can not have a single user/pass and a users array"), "{err}");
}

#[test]
fn http_base_path_is_normalised_and_checked() {
    for (text, want) in [("/nats", Some("/nats")), ("nats/", Some("/nats")), ("/a//b/", Some("/a/b")), ("/", None)] {
        let loaded = ok(&format!("http: 8222\nhttp_base_path: \"{text}\"\n"));
        assert_eq!(loaded.options.http_base_path.as_deref(), want, "{text}");
    }
    for bad in ["/../x", "/a*b", "/a?b", "/%2e"] {
        let err = load(&format!("http: 8222\nhttp_base_path: \"{bad}\"\n")).unwrap_err();
        assert!(err.to_string().contains("http_base_path must be a URL path"), "{bad}: {err}");
    }
}

#[test]
fn a_cluster_without_a_listener_runs_no_routes_and_says_so() {
    let loaded = load_str("cluster { name: c }", "test.conf").unwrap();
    assert!(loaded.options.cluster.as_ref().unwrap().no_listener);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].starts_with("test.conf:1:1: cluster has no `listen` or `port`"),
        "{:?}",
        loaded.warnings
    );
    assert!(summary(&loaded.options).contains("cluster: off (the cluster block has no listen or port)"));
}

#[test]
fn route_users_named_by_certificate_need_no_password() {
    let config = "cluster { port: 6222, authorization { user: \"CN=localhost,OU=NATS.io Operators\" }, \
                  tls { cert_file: c, key_file: k, ca_file: a, verify_and_map: true } }";
    let loaded = load_str(config, "test.conf").unwrap();
    let c = loaded.options.cluster.as_ref().unwrap();
    let a = c.authorization.as_ref().unwrap();
    assert_eq!((a.user.as_str(), a.password.is_none()), ("CN=localhost,OU=NATS.io Operators", true));
    assert!(summary(&loaded.options).contains("named by its certificate"));
}

#[test]
fn syslog_keys_choose_the_sink_as_nats_server_does() {
    let loaded = ok("syslog: true\nremote_syslog: \"udp://foo.com:33\"\nprof_port: 0");
    assert_eq!(loaded.options.syslog_target(), Some(crate::config::SyslogTarget::Udp("foo.com:33".into())));
    assert_eq!(loaded.warnings, ["test.conf:1:1: syslog is ignored: the log goes to remote_syslog"]);
    let loaded = ok("syslog: true");
    assert_eq!(loaded.options.syslog_target(), Some(crate::config::SyslogTarget::Local));
    let loaded = ok("log_file: /tmp/w.log\nremote_syslog: \"tcp://h:1\"");
    assert_eq!(loaded.options.syslog_target(), None);
    assert_eq!(loaded.warnings, ["test.conf:2:1: remote_syslog is ignored: the log goes to log_file"]);
}

#[test]
fn proxy_protocol_needs_trusted_proxies_and_the_reverse() {
    let o = ok("proxy_protocol: true\ntrusted_proxies: [\"10.0.0.0/8\", \"192.0.2.1\"]").options;
    assert!(o.proxy_protocol);
    assert_eq!(o.trusted_proxies, vec!["10.0.0.0/8".to_owned(), "192.0.2.1".to_owned()]);
    assert!(summary::summary(&o).contains("PROXY protocol (header required): client from 2 trusted range(s)\n"));
    for (text, says) in [
        ("proxy_protocol: true", "proxy_protocol needs `trusted_proxies"),
        ("trusted_proxies: [\"10.0.0.0/8\"]", "used only with `proxy_protocol: true`"),
        ("proxy_protocol: false\ntrusted_proxies: [\"10.0.0.0/8\"]", "used only with"),
        ("proxy_protocol: true\ntrusted_proxies: [\"10.0.0.0/33\"]", "is not an IP address or CIDR"),
    ] {
        let err = load(text).expect_err(text).to_string();
        assert!(err.contains(says), "{text}: {err}");
    }
    let o = ok("websocket { port: 8080, no_tls: true, proxy_protocol: true, trusted_proxies: [\"10.0.0.0/8\"] }\n\
        leafnodes { port: 7422, proxy_protocol: true, trusted_proxies: [\"10.0.0.1\"] }")
    .options;
    assert!(o.websocket.unwrap().proxy_protocol);
    assert!(o.leafnodes.unwrap().proxy_protocol);
    for (text, says) in [
        ("websocket { port: 8080, no_tls: true, proxy_protocol: true }", "proxy_protocol needs `trusted_proxies"),
        ("leafnodes { port: 7422, proxy_protocol: true }", "needs a listener"),
        ("leafnodes { remotes: [], proxy_protocol: true, trusted_proxies: [\"10.0.0.1\"] }", "needs a listener"),
        ("leafnodes { port: 7422, trusted_proxies: [\"10.0.0.1\"] }", "used only with `proxy_protocol: true`"),
    ] {
        let err = load(text).expect_err(text).to_string();
        assert!(err.contains(says), "{text}: {err}");
    }
    // nats-server 2.12's nonce-signed proxies stay refused by name.
    assert!(load("proxies { trusted: [\"UABC\"] }").is_err());
}
