//! `tls { certs, cipher_suites, curve_preferences, pinned_certs }`, held
//! against nats-server 2.15.1: the same config file runs on both, and the
//! same TLS clients (rustls, told exactly what to offer) probe both. Each
//! probe must get the same answer from both servers: which certificate is
//! presented for a name (SNI), whether a suite or curve is accepted,
//! whether a client certificate is pinned.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::peers::{free_port, spawn_nats_server};
use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, ClientConfig, NamedGroup, RootCertStore, SupportedCipherSuite};

/// What one probing client offers.
#[derive(Clone)]
struct Probe {
    /// The name it asks for.
    sni: &'static str,
    /// TLS 1.2 only, with just this suite (by rustls' name); else rustls' defaults.
    tls12_suite: Option<&'static str>,
    /// Only these groups; else rustls' defaults.
    groups: Option<&'static [NamedGroup]>,
    /// The client certificate it presents ("good", "other") if any.
    cert: Option<&'static str>,
}

const DEFAULT: Probe = Probe { sni: "alpha.test", tls12_suite: None, groups: None, cert: Some("good") };

/// Connects as `probe` says, reads INFO, does TLS, sends CONNECT and PING:
/// the certificate the server presented when it answers PONG, else why not.
async fn probe(addr: SocketAddr, dir: &Path, probe: &Probe) -> Result<Vec<u8>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(name) = probe.tls12_suite {
        provider.cipher_suites.retain(|s: &SupportedCipherSuite| s.suite().as_str() == Some(name));
        assert_eq!(provider.cipher_suites.len(), 1, "{name}");
    }
    if let Some(groups) = probe.groups {
        provider.kx_groups.retain(|g| groups.contains(&g.name()));
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match probe.tls12_suite {
        Some(_) => &[&rustls::version::TLS12],
        None => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap()).unwrap();
    let provider = Arc::new(provider);
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().unwrap();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyName(verifier)));
    let config = match probe.cert {
        Some(name) => {
            let chain = vec![CertificateDer::from_pem_file(dir.join(format!("{name}.pem"))).unwrap()];
            let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}-key.pem"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    within(async {
        let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        // INFO, byte by byte: nothing after it may be read before TLS.
        let mut byte = [0u8; 1];
        while byte[0] != b'\n' {
            tcp.read_exact(&mut byte).await.map_err(|e| format!("reading INFO: {e}"))?;
        }
        let name = ServerName::try_from(probe.sni).unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let mut tls = connector.connect(name, tcp).await.map_err(|e| format!("handshake: {e}"))?;
        let presented = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
        tls.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n").await.map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&seen))),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) => return Err(format!("after the handshake: {e}")),
            }
            if seen.windows(4).any(|w| w == b"PONG") {
                return presented.ok_or_else(|| "no certificate".to_owned());
            }
        }
    })
    .await
}

/// Checks the chain against the test CA but not the name: a probe asking
/// for a name no certificate carries must still see which one is served.
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. }))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The test PKI: a CA, server certificates for alpha.test and beta.test,
/// and two client certificates of which only "good" is pinned.
fn pki(dir: &Path) -> String {
    let ca = warden::tls::Ca::new("policy CA").unwrap();
    let save = |name: &str, issued: warden::tls::Issued| {
        std::fs::write(dir.join(format!("{name}.pem")), &issued.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), &issued.key_pem).unwrap();
    };
    save("ca", ca.issued());
    save("alpha", ca.issue_server(&["alpha.test".into()]).unwrap());
    save("beta", ca.issue_server(&["beta.test".into(), "*.beta.test".into()]).unwrap());
    save("good", ca.issue_client("good").unwrap());
    save("other", ca.issue_client("other").unwrap());
    let good = CertificateDer::from_pem_file(dir.join("good.pem")).unwrap();
    let pin = warden::tls::spki_sha256(&good).unwrap();
    pin.iter().map(|b| format!("{b:02x}")).collect()
}

fn config(dir: &Path, port: u16, pin: &str) -> String {
    let file = |name: &str| dir.join(name).display().to_string();
    format!(
        r#"
listen: "127.0.0.1:{port}"
tls {{
  certs: [
    {{ cert_file: "{alpha}", key_file: "{alpha_key}" }}
    {{ cert_file: "{beta}", key_file: "{beta_key}" }}
  ]
  ca_file: "{ca}"
  verify: true
  cipher_suites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"]
  curve_preferences: ["CurveP384", "CurveP256"]
  pinned_certs: ["{pin}"]
  timeout: 2
}}
"#,
        alpha = file("alpha.pem"),
        alpha_key = file("alpha-key.pem"),
        beta = file("beta.pem"),
        beta_key = file("beta-key.pem"),
        ca = file("ca.pem"),
    )
}

fn der(path: PathBuf) -> Vec<u8> {
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_policy_answers_as_nats_server_does() {
    let Some(reference) = deps::nats_server_2_15() else { return };
    let dir = temp_dir("tls-policy");
    let pin = pki(&dir);
    let (alpha, beta) = (der(dir.join("alpha.pem")), der(dir.join("beta.pem")));
    let warden_port = free_port();
    let server = start(options_from(&config(&dir, warden_port, &pin))).await;
    let nats_port = free_port();
    let _nats = spawn_nats_server(&reference, "tls-policy-nats", &config(&dir, nats_port, &pin));
    let nats: SocketAddr = ([127, 0, 0, 1], nats_port).into();
    within(async {
        while TcpStream::connect(nats).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;

    let x25519: &[NamedGroup] = &[NamedGroup::X25519];
    let p256: &[NamedGroup] = &[NamedGroup::secp256r1];
    let cases: Vec<(&str, Probe, Option<&Vec<u8>>)> = vec![
        ("the certificate for the name asked", Probe { sni: "beta.test", ..DEFAULT }, Some(&beta)),
        ("a wildcard name", Probe { sni: "nats.beta.test", ..DEFAULT }, Some(&beta)),
        ("the first certificate", DEFAULT, Some(&alpha)),
        ("the first for an unknown name", Probe { sni: "gamma.test", ..DEFAULT }, Some(&alpha)),
        (
            "a TLS 1.2 suite listed",
            Probe { tls12_suite: Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"), ..DEFAULT },
            Some(&alpha),
        ),
        (
            "a TLS 1.2 suite not listed",
            Probe { tls12_suite: Some("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"), ..DEFAULT },
            None,
        ),
        ("a curve listed", Probe { groups: Some(p256), ..DEFAULT }, Some(&alpha)),
        ("a curve not listed", Probe { groups: Some(x25519), ..DEFAULT }, None),
        ("a client certificate not pinned", Probe { cert: Some("other"), ..DEFAULT }, None),
        ("no client certificate", Probe { cert: None, ..DEFAULT }, None),
    ];
    for (what, p, want) in cases {
        let ours = probe(server.local_addr(), &dir, &p).await;
        let theirs = probe(nats, &dir, &p).await;
        assert_eq!(ours.as_ref().ok(), want, "{what}: warden answered {:?}", ours.as_ref().err());
        assert_eq!(theirs.as_ref().ok(), want, "{what}: nats-server 2.15.1 answered {:?}", theirs.as_ref().err());
    }
    server.shutdown().await;
}

/// Names warden cannot offer are refused by name when the config is read,
/// with the line and column; insecure suites as nats-server refuses them.
#[test]
fn names_warden_does_not_implement_are_refused_by_name() {
    let dir = temp_dir("tls-policy-names");
    let _ = pki(&dir);
    let base = config(&dir, 4222, &"a".repeat(64));
    for (from, to, says) in [
        (
            r#"cipher_suites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"]"#,
            r#"cipher_suites: ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"]"#,
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA is not offered by warden: a CBC-mode suite",
        ),
        (
            r#"cipher_suites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"]"#,
            r#"cipher_suites: ["TLS_RSA_WITH_RC4_128_SHA"]"#,
            "insecure cipher suites configured without 'allow_insecure_cipher_suites' option set: TLS_RSA_WITH_RC4_128_SHA",
        ),
        (
            r#"cipher_suites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"]"#,
            r#"allow_insecure_cipher_suites: true, cipher_suites: ["TLS_RSA_WITH_RC4_128_SHA"]"#,
            "not implemented by warden, even when allowed",
        ),
        (
            r#"cipher_suites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"]"#,
            r#"cipher_suites: ["TLS_NULL"]"#,
            "unrecognized cipher TLS_NULL",
        ),
        (r#"curve_preferences: ["CurveP384", "CurveP256"]"#, r#"curve_preferences: ["CurveP521"]"#, "CurveP521 is not offered"),
        (r#"curve_preferences: ["CurveP384", "CurveP256"]"#, r#"curve_preferences: []"#, "'curve_preferences' cannot be empty"),
        ("verify: true", "verify: false", "pinned_certs checks client certificates"),
        ("pinned_certs: [\"", "pinned_certs: [\"zz", "does not look like hex-encoded sha256"),
        ("\n  certs: [", "\n  cert_file: \"x.pem\", certs: [", "cannot combine 'cert_file' option with 'certs' option"),
    ] {
        assert!(base.contains(from), "{from}");
        let text = base.replace(from, to);
        let err = warden::config::load_str(&text, "tls.conf").expect_err(to).to_string();
        assert!(err.contains(says), "{to}: {err}");
        assert!(err.contains(':'), "a position: {err}");
    }
}

/// A reload that takes a key out of `pinned_certs` closes the live mTLS
/// connection that logged in with it, as nats-server's reload does; the
/// client whose key is still pinned keeps its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_unpins_a_key_closes_its_connections() {
    let dir = temp_dir("tls-pin-reload");
    let ca = warden::tls::Ca::new("pin reload CA").unwrap();
    let save = |name: &str, issued: warden::tls::Issued| {
        std::fs::write(dir.join(format!("{name}.pem")), &issued.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), &issued.key_pem).unwrap();
    };
    save("ca", ca.issued());
    save("server", ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap());
    save("good", ca.issue_client("good").unwrap());
    save("other", ca.issue_client("other").unwrap());
    let pin = |name: &str| -> String {
        let cert = CertificateDer::from_pem_file(dir.join(format!("{name}.pem"))).unwrap();
        warden::tls::spki_sha256(&cert).unwrap().iter().map(|b| format!("{b:02x}")).collect()
    };
    let config = |pins: &[&str]| {
        let pins: Vec<String> = pins.iter().map(|p| format!("\"{}\"", pin(p))).collect();
        format!(
            "listen: 127.0.0.1:0\ntls {{ cert_file: \"{d}/server.pem\", key_file: \"{d}/server-key.pem\", ca_file: \"{d}/ca.pem\", verify: true, pinned_certs: [{}] }}\n",
            pins.join(", "),
            d = dir.display()
        )
    };
    let server = start(options_from(&config(&["good", "other"]))).await;
    let port = server.local_addr().port();
    let connect = |name: &'static str| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let options = async_nats::ConnectOptions::new()
            .add_root_certificates(dir.join("ca.pem"))
            .add_client_certificate(dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")))
            .require_tls(true)
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(event);
                }
            })
            .connect(format!("tls://localhost:{port}"));
        async move { (within(options).await.expect("connects over mutual TLS"), rx) }
    };
    let (good, mut good_events) = connect("good").await;
    let (other, mut other_events) = connect("other").await;
    within(other.flush()).await.unwrap();
    assert_eq!(server.broker().client_count(), 2);

    server.reload(&options_from(&config(&["good"]))).unwrap();
    within(async { while !matches!(other_events.recv().await, Some(async_nats::Event::Disconnected)) {} }).await;
    // The connection that stayed pinned is untouched and still served.
    let mut sub = good.subscribe("pinned.still").await.unwrap();
    good.publish("pinned.still", "here".into()).await.unwrap();
    assert_eq!(within(futures::StreamExt::next(&mut sub)).await.unwrap().payload, "here");
    while let Ok(event) = good_events.try_recv() {
        assert!(!matches!(event, async_nats::Event::Disconnected), "the pinned client stayed connected");
    }
    peers::eventually("only the pinned client left", || server.broker().client_count() == 1).await;
    server.shutdown().await;
}
