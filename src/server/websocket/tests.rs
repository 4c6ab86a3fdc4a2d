//! Origins and forwarded addresses, without sockets.

use super::*;
use crate::config::parse_origin;

fn opts() -> WebsocketOptions {
    WebsocketOptions {
        host: "127.0.0.1".into(),
        port: 0,
        tls: None,
        same_origin: false,
        allowed_origins: Vec::new(),
        compression: false,
        handshake_timeout: Duration::from_secs(2),
        authorization: None,
        no_auth_user: None,
        jwt_cookie: None,
        trusted_proxies: Vec::new(),
        proxy_protocol: false,
        accept_rate: Default::default(),
    }
}

#[test]
fn origins_follow_nats_server_but_a_missing_one_is_refused_when_a_list_is_set() {
    let open = opts();
    assert!(origin_allowed(&open, false, "h:1", None));
    assert!(origin_allowed(&open, false, "h:1", Some("https://anything")));

    let mut same = opts();
    same.same_origin = true;
    assert!(origin_allowed(&same, false, "app.example:8080", Some("http://app.example:8080")));
    assert!(!origin_allowed(&same, false, "app.example:8080", Some("http://evil.example:8080")));
    assert!(!origin_allowed(&same, true, "app.example:8080", Some("http://app.example:8080")), "scheme");
    assert!(!origin_allowed(&same, false, "app.example:8080", None));

    let mut listed = opts();
    listed.allowed_origins = vec![parse_origin("https://app.example").unwrap()];
    assert!(origin_allowed(&listed, true, "ws.example", Some("https://app.example:443")));
    assert!(!origin_allowed(&listed, true, "ws.example", Some("http://app.example")));
    assert!(!origin_allowed(&listed, true, "ws.example", Some("https://app.example:8443")));
    assert!(!origin_allowed(&listed, true, "ws.example", Some("null")));
    assert!(!origin_allowed(&listed, true, "ws.example", None), "browsers always send Origin");
}

#[test]
fn forwarded_addresses_count_only_from_trusted_proxies() {
    let peer: SocketAddr = "10.0.0.5:40000".parse().unwrap();
    let proxies = vec![Cidr::parse("10.0.0.0/24").unwrap()];
    let ip = |a: SocketAddr| a.ip().to_string();
    // Anyone else's header is ignored.
    assert_eq!(ip(client_address(&[], peer, Some("1.2.3.4"))), "10.0.0.5");
    let stranger: SocketAddr = "192.0.2.9:1".parse().unwrap();
    assert_eq!(ip(client_address(&proxies, stranger, Some("1.2.3.4"))), "192.0.2.9");
    // From a trusted proxy: the nearest hop it did not add itself.
    assert_eq!(ip(client_address(&proxies, peer, Some("1.2.3.4"))), "1.2.3.4");
    assert_eq!(ip(client_address(&proxies, peer, Some("6.6.6.6, 1.2.3.4, 10.0.0.7"))), "1.2.3.4");
    assert_eq!(ip(client_address(&proxies, peer, Some("10.0.0.8, 10.0.0.7"))), "10.0.0.8");
    assert_eq!(ip(client_address(&proxies, peer, Some("garbage, 10.0.0.7"))), "10.0.0.7");
    assert_eq!(ip(client_address(&proxies, peer, None)), "10.0.0.5");
}
