//! Authorization and permission tests, through the public loader.

use std::time::Duration;

use super::*;
use crate::config::options::Options;
use crate::config::{load_str_with_env, summary, Loaded, TlsVersion};

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

fn allow(items: &[&str]) -> Option<SubjectRules> {
    Some(SubjectRules { allow: list(items), deny: None, literal: None })
}

const SEED: &str = r#"authorization {
  admin = { publish = ">", subscribe = ">" }
  requestor = {
    publish = ["req.foo", "req.bar"]
    subscribe = "_INBOX.*"
  }
  users = [
    {user: alice, password: foo, permissions: $admin}
    {user: bob, password: bar, permissions: $requestor}
  ]
}
"#;

#[test]
fn seed_config_loads_verbatim_and_means_what_it_says() {
    let loaded = ok(SEED);
    let auth = loaded.options.authorization.as_ref().unwrap();
    assert_eq!(auth.users.len(), 2);
    let alice = &auth.users[0];
    assert_eq!(alice.user, "alice");
    assert_eq!(alice.password.as_ref().unwrap().expose(), "foo");
    assert_eq!(
        alice.permissions,
        Some(Permissions { publish: allow(&[">"]), subscribe: allow(&[">"]), allow_responses: None })
    );
    let bob = &auth.users[1];
    assert_eq!(bob.user, "bob");
    assert_eq!(
        bob.permissions,
        Some(Permissions {
            publish: allow(&["req.foo", "req.bar"]),
            subscribe: allow(&["_INBOX.*"]),
            allow_responses: None,
        })
    );
    assert_eq!(auth.token, None);
    assert_eq!(auth.default_permissions, None);
    // Everything else is the default.
    let mut rest = loaded.options.clone();
    rest.authorization = None;
    assert_eq!(rest, Options::default());
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].starts_with("test.conf:8:29: "), "{}", loaded.warnings[0]);
    assert!(loaded.warnings[0].contains("user \"alice\""));
    assert!(loaded.warnings[1].contains("user \"bob\""));
    assert!(loaded.warnings.iter().all(|w| w.contains("warden passwd")));
    assert!(loaded.warnings.iter().all(|w| !w.contains("foo") && !w.contains("bar")));
}

#[test]
fn seed_config_with_an_unreferenced_role_is_refused() {
    let text = SEED.replace("permissions: $requestor", "permissions: $admin");
    let err = load(&text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKey);
    assert_eq!((err.line(), err.column()), (Some(3), Some(3)));
    assert!(err.message().contains("unknown key `requestor` in authorization"), "{err}");
}

/// The permissions of the single user `u` in `users = [{user: u, password: $2a$..., permissions: P}]`.
fn perms(p: &str) -> Result<Option<Permissions>, ConfigError> {
    let text =
        format!("authorization {{\n  users = [\n    {{user: u, password: \"$2a$10$x\", permissions: {p}}}\n  ]\n}}");
    load(&text).map(|l| l.options.authorization.unwrap().users.remove(0).permissions)
}

#[test]
fn permission_forms() {
    let rp = |max, secs| Some(ResponsePermission { max, expires: Duration::from_secs(secs) });
    let p = |publish, subscribe, allow_responses| Some(Permissions { publish, subscribe, allow_responses });
    let rules =
        |a: Option<Vec<String>>, d: Option<Vec<String>>| Some(SubjectRules { allow: a, deny: d, literal: None });
    let cases: Vec<(&str, Option<Permissions>)> = vec![
        ("{publish: foo}", p(allow(&["foo"]), None, None)),
        ("{pub: \"foo.*\"}", p(allow(&["foo.*"]), None, None)),
        ("{publish: [a, b.>]}", p(allow(&["a", "b.>"]), None, None)),
        ("{publish: []}", p(allow(&[]), None, None)),
        ("{sub: {allow: []}}", p(None, allow(&[]), None)),
        ("{subscribe: \"foo  q1\"}", p(None, allow(&["foo q1"]), None)),
        ("{subscribe: [\"bar.> grp.*\", x]}", p(None, allow(&["bar.> grp.*", "x"]), None)),
        ("{publish: {deny: x}}", p(rules(None, list(&["x"])), None, None)),
        ("{publish: {ALLOW: a, Deny: [b]}}", p(rules(list(&["a"]), list(&["b"])), None, None)),
        ("{subscribe: >, allow_responses: true}", p(allow(&[]), allow(&[">"]), rp(Some(1), 120))),
        ("{publish: a, allow_responses: false}", p(allow(&["a"]), None, None)),
        ("{publish: a, allow_responses: {max: -1}}", p(allow(&["a"]), None, rp(None, 120))),
        ("{publish: a, allow_responses: {max: 0}}", p(allow(&["a"]), None, rp(Some(1), 120))),
        ("{publish: a, allow_responses: {max_msgs: 3, ttl: \"5s\"}}", p(allow(&["a"]), None, rp(Some(3), 5))),
        ("{publish: a, allow_responses: {}}", p(allow(&["a"]), None, rp(Some(1), 120))),
        ("{publish: a, publish_allow_responses: true}", p(allow(&["a"]), None, rp(Some(1), 120))),
    ];
    for (text, want) in cases {
        match perms(text) {
            Ok(got) => assert_eq!(got, want, "{text}"),
            Err(e) => panic!("{text}: {e}"),
        }
    }
}

#[test]
fn permission_errors_with_positions() {
    use ErrorKind::*;
    // Line 3 is `    {user: u, password: "$2a$10$x", permissions: P}`; P starts at column 50.
    let cases: &[(&str, ErrorKind, u32, &str)] = &[
        ("{publish: \"foo..bar\"}", Invalid, 60, "subject \"foo..bar\" is not a valid subject"),
        ("{publish: [a, \"b.>.c\"]}", Invalid, 64, "subject \"b.>.c\" is not a valid subject"),
        ("{publish: \"a b\"}", Invalid, 60, "is not a valid subject"),
        ("{subscribe: \"a b c\"}", Invalid, 62, "\"subject\" or \"subject queue\""),
        ("{subscribe: \"a.. q\"}", Invalid, 62, "is not a valid subject"),
        ("{subscribe: \"\"}", Invalid, 62, "is not a valid subject"),
        ("{publish: [1]}", Type, 61, "must be a string, found an integer"),
        ("{publish: true}", Type, 60, "publish permissions must be"),
        (
            "{publish: {reject: x}}",
            UnknownKey,
            61,
            "Unknown field name \"reject\" parsing subject permissions, only 'allow' or 'deny' are permitted",
        ),
        ("{subscribe: {reject: x}}", UnknownKey, 63, "only 'allow', 'deny' or 'literal' (warden) are permitted"),
        ("{publish: {literal: \"a.*\"}}", UnknownKey, 61, "`literal` applies to subscribe rules only"),
        ("{subscribe: {literal: \"a..b\"}}", Invalid, 72, "is not a valid subject"),
        ("{subscribe: {literal: a, LITERAL: b}}", Conflict, 75, "set twice"),
        ("{publish: {allow: a, ALLOW: b}}", Conflict, 71, "set twice"),
        ("{publish: {}}", Invalid, 60, "empty publish map"),
        ("{}", Invalid, 50, "empty permissions map"),
        ("x", Type, 50, "must be a map"),
        ("{publsh: a}", UnknownKey, 51, "did you mean `publish`?"),
        ("{import: a}", UnknownKey, 51, "does not support"),
        ("{publish: a, allow_responses: {expires: 5}}", Type, 90, "error parsing expires, not a duration string"),
        ("{publish: a, allow_responses: {expires: \"0s\"}}", Invalid, 90, "more than zero"),
        ("{publish: a, allow_responses: {max: x}}", Type, 86, "must be an integer"),
        ("{publish: a, allow_responses: {maxx: 1}}", UnknownKey, 81, "did you mean `max`?"),
        ("{publish: a, allow_responses: 1}", Type, 80, "allow_responses must be true, false or"),
    ];
    for (p, kind, column, message) in cases {
        let err = perms(p).unwrap_err();
        assert_eq!(err.kind(), *kind, "{p}: {err}");
        assert_eq!((err.line(), err.column()), (Some(3), Some(*column)), "{p}: {err}");
        assert!(err.message().contains(message), "{p}: {err}");
    }
}

#[test]
fn default_permissions_and_summary() {
    let text = r#"
authorization {
  default_permissions = { publish = "app.>", subscribe = ["app.>", "_INBOX.>"] }
  monitor = { subscribe = "$SYS.>", publish = {deny: ">"} }
  users = [
    { user: app, password: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA" }
    { user: mon, password: "$2y$10$abcdefghijabcdefghijab", permissions: $monitor }
    { user: dash, password: "$2y$10$abcdefghijabcdefghijab", permissions: { subscribe: { literal: "sensor.*.temp", deny: "sensor.0.temp" } } }
  ]
}
"#;
    let loaded = ok(text);
    assert!(loaded.warnings.is_empty());
    let auth = loaded.options.authorization.as_ref().unwrap();
    assert_eq!(auth.default_permissions.as_ref().unwrap().subscribe, allow(&["app.>", "_INBOX.>"]));
    assert_eq!(auth.users[0].permissions, None);
    let s = summary(&loaded.options);
    assert!(s.contains("authentication: 3 user(s)"), "{s}");
    assert!(
        s.contains(
            "user \"dash\": publish anything; subscribe deny [sensor.0.temp] literal subjects in [sensor.*.temp]"
        ),
        "{s}"
    );
    assert!(s.contains("user \"app\": default permissions"), "{s}");
    assert!(s.contains("user \"mon\": publish anything but [>]; subscribe allow [$SYS.>]"), "{s}");
    assert!(!s.contains("argon2") && !s.contains("$2y$"), "{s}");
    assert!(s.contains("limits: max_connections 65536"), "{s}");
    assert!(s.contains("keep-alive: ping_interval 2m, ping_max 2, write_deadline 10s"), "{s}");
}

#[test]
fn token_and_certificate_mapped_users() {
    let loaded = ok("authorization { token: s3cr3t, timeout: \"3s\" }");
    let auth = loaded.options.authorization.unwrap();
    assert_eq!(auth.token.unwrap().expose(), "s3cr3t");
    assert_eq!(auth.timeout, Some(Duration::from_secs(3)));
    assert!(loaded.warnings[0].contains("authorization token"));
    assert!(!loaded.warnings[0].contains("s3cr3t"));

    let o = ok(r#"
tls { cert_file: c.pem, key_file: k.pem, ca_file: ca.pem, verify_and_map: true, handshake_first: true, timeout: "500ms" }
authorization { users = [ {user: "alice@example.com"}, {user: "CN=carol,OU=eng", permissions: {publish: x}} ] }
"#)
    .options;
    let tls = o.tls.unwrap();
    assert!(tls.verify && tls.verify_and_map && tls.handshake_first);
    assert_eq!(tls.timeout, Duration::from_millis(500));
    assert_eq!(
        o.authorization.unwrap().users[0],
        User {
            user: "alice@example.com".into(),
            password: None,
            permissions: None,
            tags: Vec::new(),
            rate_limit: None,
            allowed_connection_types: Vec::new(),
        }
    );
    let o = ok("tls { cert_file: c, key_file: k, min_version: 1.3 }").options;
    assert_eq!(o.tls.unwrap().min_version, TlsVersion::V1_3);
}

#[test]
fn hashes() {
    for h in [
        "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG",
        "$2b$10$x",
        "$2y$04$x",
        "$2x$12$x",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        "$argon2i$v=19$x",
        "$argon2d$v=19$x",
    ] {
        assert!(is_password_hash(h), "{h}");
    }
    for p in ["foo", "$2a$", "$2c$10$x", "$2a$1$x", "$2a$ab$x", "argon2id$", "$argon2$x", ""] {
        assert!(!is_password_hash(p), "{p}");
    }
}

#[test]
fn permission_templates_are_read_and_checked() {
    let loaded = ok(r#"
authorization {
  default_permissions = { publish = "chat.{{name()}}.>", subscribe = { allow: "team.{{tag(team)}}.>", literal: "dm.{{name()}}.*" } }
  users = [ { user: carol, password: "$2y$10$abcdefghijabcdefghijab", tags: ["Team:Eng", "site:par"] } ]
}
"#);
    let auth = loaded.options.authorization.as_ref().unwrap();
    assert_eq!(auth.users[0].tags, ["team:eng", "site:par"]);
    assert_eq!(auth.default_permissions.as_ref().unwrap().publish, allow(&["chat.{{name()}}.>"]));
    for (perms, message) in [
        ("{publish: \"chat.{{nmae()}}.>\"}", "a template must be a whole token"),
        ("{publish: \"chat.x{{name()}}\"}", "a template must be a whole token"),
        ("{subscribe: \"chat.{{name()}}.>.x\"}", "a template must be a whole token"),
    ] {
        let text = format!(
            "authorization {{\n  users = [\n    {{user: u, password: \"$2a$10$x\", permissions: {perms}}}\n  ]\n}}\n"
        );
        let err = crate::config::load_str(&text, "t.conf").unwrap_err().to_string();
        assert!(err.contains(message), "{perms}: {err}");
    }
    let err = crate::config::load_str("authorization { users = [ {user: u, password: x, tags: [1]} ] }", "t.conf")
        .unwrap_err();
    assert!(err.to_string().contains("a tag must be a non-empty string"), "{err}");
}
