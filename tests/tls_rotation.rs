//! Certificates that rotate without a restart (issue 33): the client
//! listener's certificate and key replaced on disk (renamed into place, as
//! cert-manager does) are in force for the next handshake, while the
//! connections already open carry on; files that cannot be used keep the
//! certificate in force; `/varz` and `/metrics` show what each listener
//! presents and when it expires.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use common::peers::eventually;
use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden::tls::{Ca, Issued};

/// Writes `name` by renaming a fresh file over it, as rotators do.
fn replace(dir: &Path, name: &str, text: &str) {
    let staged = dir.join(format!(".{name}.new"));
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(staged, dir.join(name)).unwrap();
}

fn issue(ca: &Ca) -> Issued {
    ca.issue_server(&["localhost".into(), "127.0.0.1".into()]).unwrap()
}

/// The certificate the server presents to a new TLS connection (TLS first),
/// and the connection, past the INFO.
async fn presented(addr: std::net::SocketAddr, ca_pem: &str) -> (Vec<u8>, tokio_rustls::client::TlsStream<TcpStream>) {
    let tcp = within(TcpStream::connect(addr)).await.unwrap();
    let mut tls = within(tls_connector(ca_pem).connect(ServerName::try_from("localhost").unwrap(), tcp)).await.unwrap();
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let mut info = [0u8; 5];
    within(tls.read_exact(&mut info)).await.unwrap();
    assert_eq!(&info, b"INFO ");
    (der, tls)
}

fn der(issued: &Issued) -> Vec<u8> {
    CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_in_force_for_new_connections_and_old_ones_carry_on() {
    let dir = temp_dir("tls-rotation");
    let ca = Ca::new("rotation CA").unwrap();
    let ca_pem = ca.issued().cert_pem;
    let first = issue(&ca);
    std::fs::write(dir.join("server.pem"), &first.cert_pem).unwrap();
    std::fs::write(dir.join("server-key.pem"), &first.key_pem).unwrap();
    // The WebSocket and leaf listeners present the same files, so they
    // rotate with the client listener.
    let files = format!("cert_file: \"{0}/server.pem\", key_file: \"{0}/server-key.pem\"", dir.display());
    let config = format!(
        "tls_watch_interval: \"50ms\"\nhttp: \"127.0.0.1:0\"\ntls {{ {files}, handshake_first: true }}\n\
         websocket {{ listen: \"127.0.0.1:0\", tls {{ {files} }} }}\n\
         leafnodes {{ listen: \"127.0.0.1:0\", tls {{ {files} }} }}\n"
    );
    let server = start(options_from(&config)).await;
    let addr = server.local_addr();
    let (before, mut open) = presented(addr, &ca_pem).await;
    assert_eq!(before, der(&first));

    // Certificate and key renamed into place, one after the other.
    let second = issue(&ca);
    replace(&dir, "server.pem", &second.cert_pem);
    replace(&dir, "server-key.pem", &second.key_pem);
    let rotation = server.broker().tls_rotation.clone();
    eventually("the rotation of the three listeners", || rotation.rotated() == 3).await;
    let listeners: Vec<&str> = rotation.certificates().iter().map(|(l, _)| *l).collect();
    assert_eq!(listeners, ["client", "websocket", "leafnodes"]);
    let (after, _) = presented(addr, &ca_pem).await;
    assert_eq!(after, der(&second), "a new connection gets the new certificate");
    open.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n").await.unwrap();
    let mut line = Vec::new();
    while !line.ends_with(b"PONG\r\n") {
        let mut byte = [0u8; 1];
        within(open.read_exact(&mut byte)).await.unwrap();
        line.push(byte[0]);
    }

    // A key that does not match: refused, the second certificate stays.
    let third = issue(&ca);
    replace(&dir, "server.pem", &third.cert_pem);
    eventually("the failed rotations", || rotation.failures() == 3).await;
    assert_eq!(rotation.rotated(), 3);
    let (still, _) = presented(addr, &ca_pem).await;
    assert_eq!(still, der(&second), "files that cannot be used keep the certificate in force");
    assert!(server.broker().stats.tls_handshake_failures.load(Relaxed) == 0);

    // What monitoring shows: the certificate in force and the counts.
    let monitor = server.monitor_addr().unwrap();
    let varz = monitor_json(monitor, "/varz").await;
    let tls = &varz["warden"]["tls"];
    assert_eq!((tls["rotations"].as_u64(), tls["rotation_failures"].as_u64()), (Some(3), Some(3)), "{tls}");
    let presented_now = &tls["certificates"][0];
    assert_eq!(presented_now["listener"], "client");
    assert!(presented_now["not_after"].as_str().unwrap().ends_with('Z'), "{presented_now}");
    let serial = presented_now["serial"].as_str().unwrap().to_owned();
    let metrics = http_get(monitor, "/metrics").await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("warden_tls_certificate_not_after_seconds{"))
        .unwrap_or_else(|| panic!("no expiry gauge:\n{metrics}"));
    assert!(line.contains("listener=\"client\"") && line.contains(&serial), "{line}");
    server.shutdown().await;
}

/// Route TLS rotates too: the acceptor and the connector are rebuilt, and
/// a node that joins afterwards routes with the new certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_tls_rotates_and_new_routes_use_it() {
    let dir = temp_dir("tls-rotation-routes");
    let ca = Ca::new("route rotation CA").unwrap();
    std::fs::write(dir.join("ca.pem"), ca.issued().cert_pem).unwrap();
    let first = issue(&ca);
    std::fs::write(dir.join("node.pem"), &first.cert_pem).unwrap();
    std::fs::write(dir.join("node-key.pem"), &first.key_pem).unwrap();
    let node = |routes: &str| {
        let config = format!(
            "tls_watch_interval: \"50ms\"\ncluster {{ name: c1, listen: \"127.0.0.1:0\", routes: [{routes}]\n\
             tls {{ cert_file: \"{0}/node.pem\", key_file: \"{0}/node-key.pem\", ca_file: \"{0}/ca.pem\" }} }}\n",
            dir.display()
        );
        start(options_from(&config))
    };
    let a = node("").await;
    let second = issue(&ca);
    replace(&dir, "node.pem", &second.cert_pem);
    replace(&dir, "node-key.pem", &second.key_pem);
    let rotation = a.broker().tls_rotation.clone();
    eventually("the route TLS rotation", || rotation.rotated() >= 1).await;
    let certificates = rotation.certificates();
    assert_eq!(certificates.len(), 1, "{certificates:?}");
    assert_eq!(certificates[0].0, "cluster");

    let b = node(&format!("\"nats-route://{}\"", a.cluster().unwrap().listen_addr)).await;
    let on_b = within(async_nats::connect(url(&b))).await.unwrap();
    let mut sub = on_b.subscribe("after.rotation").await.unwrap();
    on_b.flush().await.unwrap();
    let on_a = within(async_nats::connect(url(&a))).await.unwrap();
    common::peers::probe_until_received(&on_a, "after.rotation", &mut sub).await;
    a.shutdown().await;
    b.shutdown().await;
}
