//! Strict SPIFFE mapping (`tls { verify_and_map: true, spiffe_trust_domain }`)
//! with real clients: async-nats presenting rcgen-made X.509-SVIDs (and
//! certificates that break one rule each) to the client listener, and a
//! warden route presenting its SVID to another.

mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use async_nats::{ConnectErrorKind, ConnectOptions};
use common::peers::{eventually, probe_until_received};
use common::*;
use futures::StreamExt;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use warden::server::{Server, StartError};

const ORDERS: &str = "spiffe://example.org/ns/prod/sa/orders";
const AUDITOR: &str = "spiffe://example.org/ns/prod/sa/auditor";

/// A CA and the files of the certificates it issues, in a temp directory.
struct Pki {
    dir: PathBuf,
    ca: Certificate,
    ca_key: KeyPair,
}

/// What a leaf certificate carries.
#[derive(Default)]
struct Leaf<'a> {
    uris: &'a [&'a str],
    emails: &'a [&'a str],
    dns: &'a [&'a str],
    common_name: Option<&'a str>,
    is_ca: bool,
    key_cert_sign: bool,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = temp_dir(name);
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "SPIFFE test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let pki = Pki { dir, ca, ca_key };
        pki.issue("server", &Leaf { dns: &["localhost", "127.0.0.1"], ..Leaf::default() });
        pki
    }

    /// Issues `leaf` as `<name>.pem` and `<name>-key.pem`.
    fn issue(&self, name: &str, leaf: &Leaf<'_>) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(leaf.dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, leaf.common_name.unwrap_or(name));
        for uri in leaf.uris {
            params.subject_alt_names.push(SanType::URI((*uri).try_into().unwrap()));
        }
        for email in leaf.emails {
            params.subject_alt_names.push(SanType::Rfc822Name((*email).try_into().unwrap()));
        }
        params.is_ca = if leaf.is_ca { IsCa::Ca(BasicConstraints::Unconstrained) } else { IsCa::ExplicitNoCa };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if leaf.key_cert_sign {
            params.key_usages.push(KeyUsagePurpose::KeyCertSign);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let (cert_file, key_file) = (self.path(&format!("{name}.pem")), self.path(&format!("{name}-key.pem")));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A `tls {}` block presenting `cert`, mapping strictly for example.org.
    fn strict_tls(&self, cert: &str) -> String {
        format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify_and_map: true, \
             spiffe_trust_domain: \"example.org\", timeout: 2 }}",
            self.path(&format!("{cert}.pem")).display(),
            self.path(&format!("{cert}-key.pem")).display(),
            self.path("ca.pem").display()
        )
    }
}

/// A server mapping strictly, with users named by SPIFFE IDs and, to show
/// that nothing falls back to them, users named by an email, a DN and a
/// non-SPIFFE URI.
async fn strict_server(pki: &Pki) -> Server {
    let config = format!(
        "{}\nauthorization {{ users = [\n\
           {{ user: \"{ORDERS}\", permissions: {{ publish: \"orders.>\", subscribe: [\"orders.>\", \"_INBOX.>\"] }} }}\n\
           {{ user: \"{AUDITOR}\", permissions: {{ publish: \">\", subscribe: \">\" }} }}\n\
           {{ user: \"ops@example.org\" }}\n\
           {{ user: \"CN=ops\" }}\n\
           {{ user: \"https://example.org/ns/prod/sa/orders\" }}\n\
         ] }}",
        pki.strict_tls("server")
    );
    start(options_from(&config)).await
}

fn with_cert(pki: &Pki, name: &str) -> ConnectOptions {
    ConnectOptions::new()
        .add_root_certificates(pki.path("ca.pem"))
        .require_tls(true)
        .add_client_certificate(pki.path(&format!("{name}.pem")), pki.path(&format!("{name}-key.pem")))
}

async fn connect(server: &Server, opts: ConnectOptions) -> Result<async_nats::Client, async_nats::ConnectError> {
    within(opts.connect(format!("tls://localhost:{}", server.local_addr().port()))).await
}

#[tokio::test]
async fn one_spiffe_id_of_the_domain_logs_in_as_its_user_with_its_permissions() {
    let pki = Pki::new("spiffe-accept");
    pki.issue("orders", &Leaf { uris: &[ORDERS], ..Leaf::default() });
    pki.issue("auditor", &Leaf { uris: &[AUDITOR], ..Leaf::default() });
    let server = strict_server(&pki).await;
    let orders = connect(&server, with_cert(&pki, "orders")).await.unwrap();
    let auditor = connect(&server, with_cert(&pki, "auditor")).await.unwrap();
    let users: Vec<Option<String>> = server.broker().clients().iter().map(|c| c.meta.lock().user.clone()).collect();
    assert!(users.contains(&Some(ORDERS.into())) && users.contains(&Some(AUDITOR.into())), "{users:?}");

    let mut seen = auditor.subscribe(">").await.unwrap();
    auditor.flush().await.unwrap();
    // orders may not publish outside orders.>: the first is dropped, the
    // second (published after it on the same connection) arrives first.
    orders.publish("billing.refund", "no".into()).await.unwrap();
    orders.publish("orders.new", "yes".into()).await.unwrap();
    orders.flush().await.unwrap();
    let first = within(seen.next()).await.unwrap();
    assert_eq!((first.subject.as_str(), &first.payload[..]), ("orders.new", &b"yes"[..]));
    server.shutdown().await;
}

/// Each certificate is issued by the trusted CA and breaks one strict rule;
/// each login is refused with `Authorization Violation` and counted as an
/// unmapped certificate. The users named by its other names exist.
#[tokio::test]
async fn a_certificate_breaking_any_rule_is_refused() {
    let pki = Pki::new("spiffe-refuse");
    let cases: [(&str, Leaf<'_>); 6] = [
        ("two-uris", Leaf { uris: &[ORDERS, AUDITOR], ..Leaf::default() }),
        ("other-domain", Leaf { uris: &["spiffe://example.com/ns/prod/sa/orders"], ..Leaf::default() }),
        ("no-uri", Leaf { emails: &["ops@example.org"], common_name: Some("ops"), ..Leaf::default() }),
        ("not-spiffe", Leaf { uris: &["https://example.org/ns/prod/sa/orders"], ..Leaf::default() }),
        ("no-user", Leaf { uris: &["spiffe://example.org/ns/prod/sa/nobody"], ..Leaf::default() }),
        ("signer", Leaf { uris: &[ORDERS], key_cert_sign: true, ..Leaf::default() }),
    ];
    for (name, leaf) in &cases {
        pki.issue(name, leaf);
    }
    let server = strict_server(&pki).await;
    let unmapped = || server.broker().security.auth_unmapped_certificate.load(Ordering::Relaxed);
    for (n, (name, _)) in cases.iter().enumerate() {
        let err = connect(&server, with_cert(&pki, name)).await.err().unwrap_or_else(|| panic!("{name} logged in"));
        assert_eq!(err.kind(), ConnectErrorKind::AuthorizationViolation, "{name}: {err}");
        assert_eq!(unmapped(), n as u64 + 1, "{name} counted");
    }
    assert!(server.broker().clients().is_empty());
    server.shutdown().await;
}

/// Live clients re-check their user at a reload, not their certificate, so
/// strict mapping cannot be switched by a reload (options from code here;
/// the config file path refuses the restart-only key).
#[tokio::test]
async fn a_reload_cannot_switch_strict_mapping() {
    let pki = Pki::new("spiffe-reload");
    pki.issue("orders", &Leaf { uris: &[ORDERS], emails: &["ops@example.org"], ..Leaf::default() });
    let server = strict_server(&pki).await;
    let orders = connect(&server, with_cert(&pki, "orders")).await.unwrap();
    let mut lenient = server.broker().opts.clone();
    lenient.tls.as_mut().unwrap().spiffe_trust_domain = None;
    let err = server.reload(&lenient).unwrap_err();
    assert!(matches!(&err, StartError::RestartOnly { option } if option == "tls.spiffe_trust_domain"), "{err}");
    // Nothing changed: the client stays, and a reload of the same options works.
    server.reload(&server.broker().opts.clone()).unwrap();
    within(orders.flush()).await.unwrap();
    server.shutdown().await;
}

/// A leaf with `cA: true` never reaches the mapping: rustls (webpki)
/// refuses a CA certificate as an end entity during the handshake. The
/// strict rule is the second lock on that door (and the only one for the
/// keyUsage variant, which webpki does not look at).
#[tokio::test]
async fn a_ca_certificate_presented_as_a_leaf_is_refused() {
    let pki = Pki::new("spiffe-ca-leaf");
    pki.issue("ca-leaf", &Leaf { uris: &[ORDERS], is_ca: true, ..Leaf::default() });
    let server = strict_server(&pki).await;
    let err = connect(&server, with_cert(&pki, "ca-leaf")).await.expect_err("a CA leaf logged in");
    assert_eq!(err.kind(), ConnectErrorKind::Io, "refused in the handshake: {err}");
    assert!(server.broker().clients().is_empty());
    server.shutdown().await;
}

/// Routes under strict mapping: the route user is the cluster's SPIFFE ID;
/// a node presenting it joins, a node of the same CA presenting another
/// SPIFFE ID (or the right one next to a second URI) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_logs_in_by_its_spiffe_id() {
    const ROUTE: &str = "spiffe://example.org/nats/route";
    let pki = Pki::new("spiffe-routes");
    pki.issue("node", &Leaf { uris: &[ROUTE], dns: &["localhost", "127.0.0.1"], ..Leaf::default() });
    pki.issue("stranger", &Leaf { uris: &[ORDERS], dns: &["localhost", "127.0.0.1"], ..Leaf::default() });
    pki.issue("doubled", &Leaf { uris: &[ROUTE, ORDERS], dns: &["localhost", "127.0.0.1"], ..Leaf::default() });
    let node = |name: &str, cert: &str, routes: Option<String>| {
        let routes = routes.map(|r| format!("routes: [\"{r}\"]")).unwrap_or_default();
        let config = format!(
            "server_name: {name}\ncluster {{ name: c1, listen: \"127.0.0.1:0\", {routes}\n{}\n\
             authorization {{ user: \"{ROUTE}\" }} }}\n",
            pki.strict_tls(cert)
        );
        start(options_from(&config))
    };
    let route_url = |s: &Server| format!("nats-route://{}", s.cluster().unwrap().listen_addr);
    let a = node("A", "node", None).await;
    let b = node("B", "node", Some(route_url(&a))).await;
    let on_a = within(async_nats::connect(url(&a))).await.unwrap();
    let on_b = within(async_nats::connect(url(&b))).await.unwrap();
    let mut sub = on_b.subscribe("mapped.route").await.unwrap();
    on_b.flush().await.unwrap();
    probe_until_received(&on_a, "mapped.route", &mut sub).await;

    let stranger = node("S", "stranger", Some(route_url(&a))).await;
    let doubled = node("D", "doubled", Some(route_url(&a))).await;
    let security = &a.broker().security;
    eventually("both strangers refused", || security.auth_unmapped_certificate.load(Ordering::Relaxed) >= 2).await;
    let names: Vec<String> = a.cluster().unwrap().routes().iter().map(|l| l.remote_name()).collect();
    assert!(!names.iter().any(|n| n == "S" || n == "D"), "A routes only to B: {names:?}");
    for s in [a, b, stranger, doubled] {
        s.shutdown().await;
    }
}

/// Leafs under the leaf listener's own strict mapping (clients here log in
/// by password): a warden leaf presenting its SVID joins as the leaf user
/// named by it; one whose certificate also carries a second URI does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_logs_in_by_its_spiffe_id_under_the_leaf_listeners_mapping() {
    const EDGE: &str = "spiffe://example.org/nats/edge";
    let pki = Pki::new("spiffe-leafs");
    pki.issue("edge", &Leaf { uris: &[EDGE], ..Leaf::default() });
    pki.issue("doubled", &Leaf { uris: &[EDGE, ORDERS], ..Leaf::default() });
    let hub = start(options_from(&format!(
        "accounts {{ EDGE {{ users = [ {{ user: edge-app, password: edge-app-pw }} ] }} }}\n\
         authorization {{ users = [ {{ user: app, password: app-pw }} ] }}\n\
         leafnodes {{ listen: \"127.0.0.1:0\"\n{}\n\
           authorization {{ users = [ {{ user: \"{EDGE}\", account: EDGE }} ] }} }}",
        pki.strict_tls("server")
    )))
    .await;
    let leaf_addr = hub.leafnode_addr().unwrap();
    let leaf = |cert: &str| {
        let file = |f: String| pki.path(&f).display().to_string();
        start(options_from(&format!(
            "leafnodes {{ remotes = [ {{ url: \"nats-leaf://localhost:{}\", tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\" }} }} ] }}",
            leaf_addr.port(),
            file(format!("{cert}.pem")),
            file(format!("{cert}-key.pem")),
            file("ca.pem".into()),
        )))
    };
    let edge = leaf("edge").await;
    let hub_leafs = hub.leaf_hub().unwrap();
    eventually("the edge leaf to join", || hub_leafs.leafs().len() == 1).await;
    let links = hub_leafs.leafs();
    assert_eq!((&*links[0].account, links[0].client.meta.lock().user.as_deref()), ("EDGE", Some(EDGE)));

    let doubled = leaf("doubled").await;
    let security = &hub.broker().security;
    eventually("the doubled leaf refused", || security.auth_unmapped_certificate.load(Ordering::Relaxed) > 0).await;
    assert_eq!(hub_leafs.leafs().len(), 1, "only the edge leaf");
    for s in [hub, edge, doubled] {
        s.shutdown().await;
    }
}

/// WebSocket clients are mapped by the WebSocket block's own `tls {}`, as
/// nats-server's `Websocket.TLSMap`: strict SPIFFE mapping there, while
/// the client listener (plain, without mapping) does not let the
/// password-less SPIFFE users in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_block_maps_its_own_clients_strictly() {
    let pki = Pki::new("spiffe-websocket");
    pki.issue("orders", &Leaf { uris: &[ORDERS], ..Leaf::default() });
    pki.issue("two-uris", &Leaf { uris: &[ORDERS, AUDITOR], ..Leaf::default() });
    let port = common::peers::free_port();
    let config = format!(
        "websocket {{ listen: \"127.0.0.1:{port}\", {} }}\n\
         authorization {{ users = [\n\
           {{ user: \"{ORDERS}\", permissions: {{ publish: \"orders.>\", subscribe: \"orders.>\" }} }}\n\
           {{ user: web, password: \"web-pass-1234\" }}\n\
         ] }}",
        pki.strict_tls("server")
    );
    let server = start(options_from(&config)).await;
    let wss = format!("wss://localhost:{port}");
    let orders = within(with_cert(&pki, "orders").connect(&wss)).await.expect("orders over wss by its SVID");
    let mut mine = orders.subscribe("orders.ws").await.unwrap();
    orders.flush().await.unwrap();
    orders.publish("orders.ws", "svid".into()).await.unwrap();
    assert_eq!(&within(mine.next()).await.unwrap().payload[..], b"svid");
    let ws_user = server.broker().clients().iter().find(|c| c.meta.lock().websocket).unwrap().meta.lock().user.clone();
    assert_eq!(ws_user.as_deref(), Some(ORDERS));
    let err = within(with_cert(&pki, "two-uris").max_reconnects(Some(0)).connect(&wss)).await.err().unwrap();
    assert_eq!(err.kind(), ConnectErrorKind::AuthorizationViolation, "{err}");
    // The client listener maps no certificate: the SPIFFE user, which has
    // no password, cannot log in there by name.
    let (mut raw, _info) = Raw::connect(server.local_addr()).await;
    raw.send(format!("CONNECT {{\"user\":\"{ORDERS}\",\"verbose\":false}}\r\nPING\r\n")).await;
    assert_eq!(raw.line().await, "-ERR 'Authorization Violation'");
    let web = ConnectOptions::with_user_and_password("web".into(), "web-pass-1234".into());
    within(web.connect(format!("nats://{}", server.local_addr()))).await.expect("a password user on the client port");
    server.shutdown().await;
}
