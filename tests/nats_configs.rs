//! nats-server's own config files (`server/configs`, `test/configs`, copied
//! into `tests/fixtures/nats-server-configs/` with nats-server's licence),
//! each run through `warden check` from the directory nats-server's tests
//! run them from, against an expectation table: one line per file, with the
//! reason. Issue 32's "done when": every file nats-server 2.15.1 accepts
//! that needs no JetStream or MQTT passes, or is refused for a
//! reason SECURITY.md documents. Every file now meets that: a file that
//! warden refuses for a reason not in the table fails the test.
//!
//! When nats-server 2.15.1 is installed (under `CI=true` it must be) the
//! test also checks the table's claims about it: a file marked as refused
//! by nats-server is refused by it, and every other file is accepted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `warden check` does with one file, and why.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Loads.
    Accepted,
    /// Refused with a message containing `.1`, for the security reason
    /// documented in SECURITY.md under the heading `.0`.
    Security(&'static str, &'static str),
    /// Needs JetStream or MQTT, which warden does not implement
    /// (issue 32 leaves them out); refused with a message containing `.0`.
    OutOfScope(&'static str),
    /// nats-server 2.15.1 refuses it too (its message contains `.1`);
    /// warden's message contains `.0`.
    NotByNats(&'static str, &'static str),
    /// nats-server 2.15.1 passes it at `-t` but refuses to start with it
    /// (its log says `.1`); warden refuses it at check time with a message
    /// containing `.0`.
    NotStartedByNats(&'static str, &'static str),
}

use Expect::*;

/// warden's refusal of an HTTP and an HTTPS monitoring listener together,
/// and nats-server's at start.
const HTTP_AND_HTTPS: &str = "can't specify both HTTP and HTTPS monitoring ports";
const NATS_HTTP_AND_HTTPS: &str = "can't specify both HTTP";

/// Every config file of the fixture, with what `warden check` does with it.
const TABLE: &[(&str, Expect)] = &[
    ("server/configs/accounts.conf", Accepted),
    ("server/configs/authorization.conf", Accepted),
    ("server/configs/cluster.conf", Accepted),
    ("server/configs/gwa.conf", Security("Gateways (superclusters)", "gateway has no authentication")),
    ("server/configs/gwb.conf", Security("Gateways (superclusters)", "gateway has no authentication")),
    ("server/configs/gws.conf", NotByNats("unknown key `gateways`", "unknown field \"gateways\"")),
    (
        "server/configs/include_bad_conf_check_a.conf",
        NotByNats("unknown key `monitoring_port`", "unknown field \"monitoring_port\""),
    ),
    (
        "server/configs/include_bad_conf_check_b.conf",
        NotByNats("unknown key `monitoring_port`", "unknown field \"monitoring_port\""),
    ),
    ("server/configs/include_conf_check_a.conf", Accepted),
    (
        "server/configs/include_conf_check_b.conf",
        NotByNats("unknown key `monitoring_port`", "unknown field \"monitoring_port\""),
    ),
    ("server/configs/include_conf_check_c.conf", Accepted),
    ("server/configs/js-op.conf", OutOfScope("`jetstream` is a nats-server option that warden does not support")),
    // nats-server 2.15.1: `-t` passes both, a start fails with "Can't start
    // monitoring: can't specify both HTTP (8422) and HTTPs (9443) ports".
    ("server/configs/listen-1.conf", NotStartedByNats(HTTP_AND_HTTPS, NATS_HTTP_AND_HTTPS)),
    ("server/configs/listen.conf", NotStartedByNats(HTTP_AND_HTTPS, NATS_HTTP_AND_HTTPS)),
    ("server/configs/listen_port.conf", Accepted),
    ("server/configs/listen_port_with_colon.conf", Accepted),
    ("server/configs/malformed_cluster_address.conf", NotByNats("cluster listen must be host:port", "Parse error")),
    ("server/configs/malformed_listen_address.conf", NotByNats("listen must be host:port", "Parse error")),
    ("server/configs/multiple_errors.conf", NotByNats("unknown key `monitoring`", "Cannot have a user/pass and token")),
    ("server/configs/multiple_users.conf", Accepted),
    ("server/configs/new_style_authorization.conf", Accepted),
    ("server/configs/reload/authorization_1.conf", Accepted),
    ("server/configs/reload/authorization_2.conf", Accepted),
    ("server/configs/reload/basic.conf", Accepted),
    ("server/configs/reload/file_rotate.conf", Accepted),
    ("server/configs/reload/file_rotate1.conf", Accepted),
    ("server/configs/reload/invalid.conf", NotByNats("expected a value", "Expected value but found new line")),
    ("server/configs/reload/max_connections.conf", Accepted),
    ("server/configs/reload/max_connections_refuse_all.conf", Accepted),
    ("server/configs/reload/max_payload.conf", Accepted),
    ("server/configs/reload/multiple_users_1.conf", Accepted),
    ("server/configs/reload/multiple_users_2.conf", Accepted),
    ("server/configs/reload/reload.conf", NotByNats("cannot include `platform.conf`", "platform.conf")),
    ("server/configs/reload/reload_unsupported.conf", Accepted),
    ("server/configs/reload/single_user_authentication_1.conf", Accepted),
    ("server/configs/reload/single_user_authentication_2.conf", Accepted),
    // Unauthenticated clusters on 127.0.0.1 without client authentication:
    // allowed (loopback), with a warning.
    ("server/configs/reload/srv_a_1.conf", Accepted),
    ("server/configs/reload/srv_a_2.conf", Accepted),
    ("server/configs/reload/srv_a_3.conf", Accepted),
    ("server/configs/reload/srv_a_4.conf", Accepted),
    ("server/configs/reload/srv_b_1.conf", Accepted),
    ("server/configs/reload/srv_b_2.conf", Accepted),
    ("server/configs/reload/srv_c_1.conf", Accepted),
    ("server/configs/reload/test.conf", Accepted),
    ("server/configs/reload/tls_multi_cert_1.conf", Accepted),
    ("server/configs/reload/tls_multi_cert_2.conf", Accepted),
    ("server/configs/reload/tls_multi_cert_3.conf", Accepted),
    ("server/configs/reload/tls_test.conf", Accepted),
    ("server/configs/reload/tls_verify_test.conf", Accepted),
    ("server/configs/reload/token_authentication_1.conf", Accepted),
    ("server/configs/reload/token_authentication_2.conf", Accepted),
    ("server/configs/seed.conf", Accepted),
    ("server/configs/seed_tls.conf", Accepted),
    ("server/configs/srv_a.conf", Accepted),
    ("server/configs/srv_a_bcrypt.conf", Accepted),
    ("server/configs/srv_b.conf", Accepted),
    ("server/configs/srv_b_bcrypt.conf", Accepted),
    ("server/configs/test.conf", Security("Profiling port", "prof_port is refused")),
    ("server/configs/tls.conf", Accepted),
    ("server/configs/tls/tls-ed25519.conf", Accepted),
    ("server/configs/tls/tls-none.conf", Accepted),
    // Generated as ECDSA (see `fixture_pki`): the 1024-bit RSA refusal is
    // tested in src/tls/load.rs.
    ("server/configs/tls/tls-rsa-1024.conf", Accepted),
    ("server/configs/tls/tls-rsa-2048.conf", Accepted),
    ("server/configs/tls/tls-rsa-4096.conf", Accepted),
    (
        "server/configs/tls_bad_cipher.conf",
        NotByNats("unrecognized cipher BAD_CIPHER_SPEC", "unrecognized cipher BAD_CIPHER_SPEC"),
    ),
    (
        "server/configs/tls_bad_curve_prefs.conf",
        NotByNats("unrecognized curve preference GARBAGE", "unrecognized curve preference GARBAGE"),
    ),
    // CBC suites beside two GCM ones: warden offers no CBC suite.
    ("server/configs/tls_ciphers.conf", Security("TLS", "a CBC-mode suite")),
    ("server/configs/tls_curve_prefs.conf", Accepted),
    (
        "server/configs/tls_empty_cipher.conf",
        NotByNats("'cipher_suites' cannot be empty", "'cipher_suites' cannot be empty"),
    ),
    (
        "server/configs/tls_empty_curve_prefs.conf",
        NotByNats("'curve_preferences' cannot be empty", "'curve_preferences' cannot be empty"),
    ),
    (
        "server/configs/tls_insecure_ciphers.conf",
        NotByNats(
            "insecure cipher suites configured without 'allow_insecure_cipher_suites'",
            "insecure cipher suites configured without 'allow_insecure_cipher_suites'",
        ),
    ),
    // RC4, 3DES and RSA key exchange, allowed: warden implements none.
    ("server/configs/tls_insecure_ciphers_allowed.conf", Security("TLS", "RSA key exchange has no forward secrecy")),
    ("test/configs/auth_seed.conf", Accepted),
    // `PASS: $2a$...` inside `authorization` is a variable (`$PASS`) and,
    // case-blind, the `pass` option: nats-server ignores the lone password,
    // warden reads it as the variable only (with a warning).
    ("test/configs/authorization.conf", Accepted),
    ("test/configs/auths.conf", NotByNats("unknown key `ADMIN`", "unknown field \"ADMIN\"")),
    ("test/configs/cluster.conf", Accepted),
    ("test/configs/multi_accounts.conf", Accepted),
    ("test/configs/multi_user.conf", Accepted),
    ("test/configs/new_cluster.conf", Accepted),
    ("test/configs/operator.conf", Accepted),
    ("test/configs/operator_inline.conf", Accepted),
    ("test/configs/override.conf", Accepted),
    ("test/configs/resolver_preload.conf", Accepted),
    ("test/configs/seed.conf", Accepted),
    ("test/configs/srv_a.conf", Accepted),
    ("test/configs/srv_a_leaf.conf", Accepted),
    ("test/configs/srv_a_perms.conf", Accepted),
    ("test/configs/srv_a_tls.conf", Accepted),
    ("test/configs/srv_b.conf", Accepted),
    ("test/configs/srv_b_tls.conf", Accepted),
    ("test/configs/srv_c.conf", Accepted),
    ("test/configs/tls.conf", Accepted),
    ("test/configs/tls_cert_cn.conf", Accepted),
    ("test/configs/tls_cert_cn_gateways.conf", Accepted),
    ("test/configs/tls_cert_cn_gateways_invalid_auth.conf", Accepted),
    // Route permissions load; what is left: a cluster block without a
    // listener (nats-server's tests add the port), and a route user named by
    // its certificate (`verify_and_map` with a `user` and no password).
    // Route users named by their certificates; without a cluster port the
    // server runs no routes (nats-server's tests set it in code).
    ("test/configs/tls_cert_cn_routes.conf", Accepted),
    ("test/configs/tls_cert_cn_routes_invalid_auth.conf", Accepted),
    ("test/configs/tls_cert_id.conf", Accepted),
    ("test/configs/tls_cert_san_auth.conf", Accepted),
    ("test/configs/tls_cert_san_emails.conf", Accepted),
    ("test/configs/tls_curve_pref.conf", Accepted),
    ("test/configs/tls_mixed.conf", Accepted),
    ("test/configs/tlsverify.conf", Accepted),
    (
        "test/configs/tlsverify_noca.conf",
        Security("verify without ca_file", "verifying client certificates needs `ca_file`"),
    ),
];

/// The fixture root, with its TLS material generated (see [`fixture_pki`]).
fn fixtures() -> PathBuf {
    static PKI: std::sync::Once = std::sync::Once::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nats-server-configs");
    PKI.call_once(|| fixture_pki(&root));
    root
}

/// The certificates and keys the fixture configs name, made fresh (private
/// keys are never committed): for each CA file a new CA, and each server
/// certificate issued by the CA its directory's configs verify against
/// (by a throwaway CA, sent along in the certificate file, where none is
/// named). rcgen makes ECDSA
/// keys only, so the `benchmark-*-rsa-*` names hold ECDSA pairs here; the
/// refusal of a 1024-bit RSA key is tested in `src/tls/load.rs`.
/// A directory of fixture TLS material: its CA file (if any), and its
/// (certificate file, key file) pairs.
type PkiDir = (&'static str, Option<&'static str>, &'static [(&'static str, &'static str)]);

fn fixture_pki(root: &Path) {
    use warden::tls::Ca;
    let hosts = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let write = |dir: &Path, name: &str, text: &str| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    };
    let sets: &[PkiDir] = &[
        ("server/configs/certs", None, &[("server.pem", "key.pem"), ("cert.new.pem", "key.new.pem")]),
        (
            "server/configs/certs/tls",
            Some("benchmark-ca-cert.pem"),
            &[
                ("benchmark-server-cert-ed25519.pem", "benchmark-server-key-ed25519.pem"),
                ("benchmark-server-cert-rsa-1024.pem", "benchmark-server-key-rsa-1024.pem"),
                ("benchmark-server-cert-rsa-2048.pem", "benchmark-server-key-rsa-2048.pem"),
                ("benchmark-server-cert-rsa-4096.pem", "benchmark-server-key-rsa-4096.pem"),
            ],
        ),
        (
            "test/configs/certs",
            Some("ca.pem"),
            &[
                ("server-cert.pem", "server-key.pem"),
                ("srva-cert.pem", "srva-key.pem"),
                ("srvb-cert.pem", "srvb-key.pem"),
            ],
        ),
        ("test/configs/certs/sans", Some("ca.pem"), &[("server.pem", "server-key.pem")]),
        (
            "test/configs/certs/tlsauth",
            Some("ca.pem"),
            &[("server.pem", "server-key.pem"), ("server-no-ou.pem", "server-no-ou-key.pem")],
        ),
    ];
    for (dir, ca_file, pairs) in sets {
        let dir = root.join(dir);
        let ca = Ca::new("nats-server fixture CA").unwrap();
        if let Some(ca_file) = ca_file {
            write(&dir, ca_file, &ca.issued().cert_pem);
        }
        for (cert, key) in *pairs {
            let issued = ca.issue_server(&hosts).unwrap();
            // Without a CA file the certificate file carries its CA too:
            // `reload/tls_verify_test.conf` names it as its own `ca_file`.
            let chain = match ca_file {
                Some(_) => issued.cert_pem,
                None => issued.cert_pem + &ca.issued().cert_pem,
            };
            write(&dir, cert, &chain);
            write(&dir, key, &issued.key_pem);
        }
    }
}

/// Every `*.conf` under `dir`, relative to the fixture root.
fn conf_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            conf_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "conf") {
            out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

/// Runs `program args... <file>` from the file's package directory
/// (`server/` or `test/`), as nats-server's tests do: exit success and
/// what it wrote.
fn run_in_package(program: &Path, args: &[&str], file: &str) -> (bool, String) {
    let (package, rest) = file.split_once('/').unwrap();
    let out = Command::new(program).args(args).arg(rest).current_dir(fixtures().join(package)).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn the_table_names_every_fixture_once() {
    let root = fixtures();
    let mut files = Vec::new();
    conf_files(&root, &root, &mut files);
    files.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(f, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed, "the table and tests/fixtures/nats-server-configs must list the same files");
}

#[test]
fn every_nats_server_config_meets_its_expectation() {
    let warden = Path::new(env!("CARGO_BIN_EXE_warden"));
    let security = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("SECURITY.md")).unwrap();
    let mut failures = Vec::new();
    for (file, expect) in TABLE {
        let (ok, text) = run_in_package(warden, &["check", "--config"], file);
        let wanted = match expect {
            Accepted => None,
            Security(heading, part) => {
                let documented =
                    security.lines().any(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == *heading);
                if !documented {
                    failures.push(format!("{file}: SECURITY.md has no section {heading:?}"));
                }
                Some(*part)
            }
            OutOfScope(part) | NotByNats(part, _) | NotStartedByNats(part, _) => Some(*part),
        };
        match (wanted, ok) {
            (None, true) => {}
            (None, false) => failures.push(format!("{file}: expected to load, warden check said:\n{text}")),
            (Some(_), true) => failures.push(format!("{file}: loaded, but the table expects {expect:?}")),
            (Some(part), false) if !text.contains(part) => {
                failures.push(format!("{file}: refused, but without {part:?} ({expect:?}):\n{text}"))
            }
            (Some(_), false) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} files:\n{}", failures.len(), TABLE.len(), failures.join("\n"));
}

/// The table's claims about nats-server 2.15.1, checked against it: the
/// files marked `NotByNats` are refused by it (with the message named),
/// every other one is accepted.
#[test]
fn nats_server_2_15_agrees_with_the_table() {
    let Some(nats) = common::deps::nats_server_2_15() else { return };
    let mut failures = Vec::new();
    for (file, expect) in TABLE {
        let (ok, text) = run_in_package(&nats, &["-t", "-c"], file);
        match (expect, ok) {
            (NotByNats(_, part), false) if text.contains(part) => {}
            (NotByNats(_, part), _) => {
                failures.push(format!("{file}: nats-server should refuse it with {part:?}:\n{text}"))
            }
            (NotStartedByNats(_, part), true) => {
                let (exited, text) = start_in_package(&nats, file);
                if !exited || !text.contains(part) {
                    failures.push(format!("{file}: nats-server should refuse to start with {part:?}:\n{text}"));
                }
            }
            (_, true) => {}
            (_, false) => failures.push(format!("{file}: nats-server 2.15.1 refuses it:\n{text}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Starts `program -c <file>` from the file's package directory: whether
/// it exited with an error within the test timeout (it is killed
/// otherwise), and what it wrote.
fn start_in_package(program: &Path, file: &str) -> (bool, String) {
    let (package, rest) = file.split_once('/').unwrap();
    let log = std::env::temp_dir().join(format!("warden-nats-start-{}.log", std::process::id()));
    let mut child = Command::new(program)
        .args(["-c", rest])
        .current_dir(fixtures().join(package))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + common::WAIT;
    let exited = loop {
        match child.try_wait().unwrap() {
            Some(status) => break !status.success(),
            None if std::time::Instant::now() > deadline => break false,
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    (exited, text)
}
