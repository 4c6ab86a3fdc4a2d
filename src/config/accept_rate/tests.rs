use crate::config::{load_str_with_env, summary, AcceptRate, ConfigError, Loaded};

fn load(text: &str) -> Result<Loaded, ConfigError> {
    load_str_with_env(text, "test.conf", &|_| None)
}

fn ok(text: &str) -> Loaded {
    load(text).unwrap_or_else(|e| panic!("{text:?} failed:\n{e}"))
}

/// The error's line, column and message.
fn refused(text: &str) -> (u32, u32, String) {
    let err = load(text).expect_err(text);
    assert_eq!(err.file(), Some("test.conf"), "{err}");
    (err.line().unwrap_or(0), err.column().unwrap_or(0), err.message().to_owned())
}

const TLS: &str = "cert_file: c.pem, key_file: k.pem";

#[test]
fn accept_rate_on_each_listener() {
    let o = ok("accept_rate { conns_per_sec: 100, burst_conns: 300, conns_per_sec_per_ip: 5 }\n\
         websocket { port: 8080, no_tls: true, accept_rate { conns_per_sec_per_ip: 2, burst_conns_per_ip: 4 } }\n\
         leafnodes { port: 7422, accept_rate { conns_per_sec: 10 } }\n\
         authorization { user: a, password: p }")
    .options;
    assert_eq!(
        o.accept_rate,
        AcceptRate { conns_per_sec: 100, burst_conns: 300, conns_per_sec_per_ip: 5, burst_conns_per_ip: 5 },
        "a burst defaults to one second's worth"
    );
    let ws = o.websocket.as_ref().unwrap().accept_rate;
    assert_eq!(ws, AcceptRate { conns_per_sec: 0, burst_conns: 0, conns_per_sec_per_ip: 2, burst_conns_per_ip: 4 });
    let leaf = o.leafnodes.as_ref().unwrap().accept_rate;
    assert_eq!(leaf, AcceptRate { conns_per_sec: 10, burst_conns: 10, ..AcceptRate::default() });
    let text = summary(&o);
    assert!(
        text.contains(
            "accept rate: client 100/s (burst 300), 5/s per address (burst 5); websocket 2/s per address \
             (burst 4); leafnode 10/s (burst 10)"
        ),
        "{text}"
    );
}

#[test]
fn off_by_default_and_said_so() {
    let o = ok("port: 4222").options;
    assert!(!o.accept_rate.is_on());
    assert!(summary(&o).contains("accept rate: client off\n"), "{}", summary(&o));
}

#[test]
fn nats_servers_connection_rate_limit_is_the_client_listeners_rate() {
    let o = ok(&format!("tls {{ {TLS}, connection_rate_limit: 50 }}")).options;
    assert_eq!(o.accept_rate, AcceptRate { conns_per_sec: 50, burst_conns: 50, ..AcceptRate::default() });
    // With a per-address rate of warden's beside it.
    let o =
        ok(&format!("tls {{ {TLS}, connection_rate_limit: 50 }}\naccept_rate {{ conns_per_sec_per_ip: 3 }}")).options;
    assert_eq!(
        o.accept_rate,
        AcceptRate { conns_per_sec: 50, burst_conns: 50, conns_per_sec_per_ip: 3, burst_conns_per_ip: 3 }
    );
    // 0 is nats-server's "no limit".
    assert!(!ok(&format!("tls {{ {TLS}, connection_rate_limit: 0 }}")).options.accept_rate.is_on());
}

#[test]
fn malformed_accept_rates_are_refused_with_their_position() {
    let cases: &[(&str, u32, u32, &str)] = &[
        ("accept_rate {\n  conns_per_sec: fast\n}", 2, 18, "conns_per_sec"),
        ("accept_rate {\n  conns_per_sec: 0\n}", 2, 18, "conns_per_sec"),
        ("accept_rate {\n  conns_per_sec: 2000000\n}", 2, 18, "conns_per_sec"),
        ("accept_rate {\n  burst_conns: 5\n}", 2, 16, "burst_conns needs its rate (conns_per_sec)"),
        ("accept_rate {\n  conns_per_second: 5\n}", 2, 3, "conns_per_sec"),
        ("accept_rate {}", 1, 13, "sets no rate"),
        ("accept_rate: 5", 1, 14, "accept_rate"),
        (
            "leafnodes {\n  remotes: [{url: \"nats://h:7422\"}]\n  accept_rate { conns_per_sec: 1 }\n}",
            3,
            15,
            "has none",
        ),
        (
            "websocket {\n  port: 8080, no_tls: true\n  accept_rate { burst_conns_per_ip: 1 }\n}",
            3,
            37,
            "burst_conns_per_ip needs its rate",
        ),
    ];
    for (text, line, column, says) in cases {
        let (l, c, message) = refused(text);
        assert_eq!((l, c), (*line, *column), "{text:?}: {message}");
        assert!(message.contains(says), "{text:?}: {message}");
    }
}

#[test]
fn connection_rate_limit_is_refused_where_it_would_do_nothing() {
    let (line, column, message) = refused(&format!("tls {{ {TLS}, connection_rate_limit: -1 }}"));
    assert_eq!((line, column), (1, 65), "{message}");
    let (line, _, message) =
        refused(&format!("tls {{ {TLS}, connection_rate_limit: 5 }}\naccept_rate {{ conns_per_sec: 5 }}"));
    assert_eq!(line, 1, "{message}");
    assert!(message.contains("keep one"), "{message}");
    let (line, _, message) =
        refused(&format!("websocket {{\n  port: 8080\n  tls {{ {TLS}, connection_rate_limit: 5 }}\n}}"));
    assert_eq!(line, 3, "{message}");
    assert!(message.contains("websocket tls: connection_rate_limit limits the client listener only"), "{message}");
}
