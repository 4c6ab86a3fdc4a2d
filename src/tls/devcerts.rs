//! Development certificates: a CA, a server certificate and client
//! certificates, made with rcgen. For development and tests only.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// Validity of generated certificates.
const VALIDITY_DAYS: i64 = 365;
/// Domain of the email SAN given to client certificates (`alice@localhost`).
pub const CLIENT_EMAIL_DOMAIN: &str = "localhost";

/// A development certificate authority.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// Never shows the key.
impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct Issued {
    /// Certificate (PEM).
    pub cert_pem: String,
    /// Private key (PEM). Keep it secret.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("cert_pem", &self.cert_pem).field("key_pem", &"<redacted>").finish()
    }
}

fn validity(params: &mut CertificateParams, not_before: OffsetDateTime, not_after: OffsetDateTime) {
    params.not_before = not_before;
    params.not_after = not_after;
}

fn default_validity() -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - Duration::hours(1), now + Duration::days(VALIDITY_DAYS))
}

impl Ca {
    /// A new self-signed CA named `common_name`.
    pub fn new(common_name: &str) -> Result<Ca, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let (nb, na) = default_validity();
        validity(&mut params, nb, na);
        let cert = params.self_signed(&key)?;
        Ok(Ca { cert, key })
    }

    /// The CA certificate and key.
    pub fn issued(&self) -> Issued {
        Issued { cert_pem: self.cert.pem(), key_pem: self.key.serialize_pem() }
    }

    /// A server (and cluster node) certificate for `hosts` (DNS names or IP addresses).
    pub fn issue_server(&self, hosts: &[String]) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name.push(DnType::CommonName, hosts.first().map_or("localhost", String::as_str));
        // Client auth too: a cluster node presents the same certificate
        // when it opens a route to a peer.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let (nb, na) = default_validity();
        validity(&mut params, nb, na);
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A client certificate with subject `CN=name` and the email SAN
    /// `name@localhost`, valid over the given period.
    pub fn issue_client_valid(
        &self,
        name: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        let email = format!("{name}@{CLIENT_EMAIL_DOMAIN}");
        params.subject_alt_names = vec![SanType::Rfc822Name(email.try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, not_before, not_after);
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A client certificate valid for a year.
    pub fn issue_client(&self, name: &str) -> Result<Issued, rcgen::Error> {
        let (nb, na) = default_validity();
        self.issue_client_valid(name, nb, na)
    }
}

/// What `warden certs generate` makes.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Server names and addresses.
    pub hosts: Vec<String>,
    /// One client certificate per name.
    pub clients: Vec<String>,
    /// Replace files that exist (`--force`). Without it nothing is
    /// written if any of them exists: a new CA silently replacing the old
    /// one would make every certificate it signed stop verifying.
    pub force: bool,
}

/// Paths of the files written.
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// Every file written, certificates and keys; empty when every one
    /// asked for was already there.
    pub files: Vec<PathBuf>,
}

/// Writes `data` to `path`; keys get mode 0600 from the start. Without
/// `replace`, a file that appeared since the check is an error, not
/// overwritten.
fn write_file(path: &Path, data: &str, secret: bool, replace: bool) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(if secret { 0o600 } else { 0o644 });
    match replace {
        true => options.create(true).truncate(true),
        false => options.create_new(true),
    };
    let mut file = options.open(path)?;
    file.write_all(data.as_bytes())?;
    if secret {
        // An existing file keeps its old mode on open; make sure.
        fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    Ok(())
}

/// Generates a CA (`ca.pem`, `ca-key.pem`), a server certificate
/// (`server.pem`, `server-key.pem`) and `client-NAME.pem` /
/// `client-NAME-key.pem` per client, in `opts.out`. Without `opts.force`,
/// writes nothing if one of those files exists: when all of them do, the
/// same command run twice (as the README's tours do) is done already; when
/// only some do, it is refused, since their CA cannot be reused.
pub fn generate(opts: &GenerateOptions) -> Result<DevCerts, Box<dyn std::error::Error>> {
    fs::create_dir_all(&opts.out)?;
    let names =
        ["ca".to_owned(), "server".to_owned()].into_iter().chain(opts.clients.iter().map(|c| format!("client-{c}")));
    let paths: Vec<PathBuf> =
        names.flat_map(|n| [opts.out.join(format!("{n}.pem")), opts.out.join(format!("{n}-key.pem"))]).collect();
    let existing: Vec<String> =
        paths.iter().filter(|p| p.symlink_metadata().is_ok()).map(|p| p.display().to_string()).collect();
    if existing.len() == paths.len() && !opts.force {
        return Ok(DevCerts { files: Vec::new() });
    }
    if !existing.is_empty() && !opts.force {
        return Err(format!(
            "{} already exist(s); a new CA would make every certificate the old one signed stop verifying. Use another --out, or --force to replace them",
            existing.join(", ")
        )
        .into());
    }
    let ca = Ca::new("warden development CA")?;
    let mut files = Vec::new();
    let mut save = |name: String, issued: &Issued| -> std::io::Result<()> {
        let cert = opts.out.join(format!("{name}.pem"));
        let key = opts.out.join(format!("{name}-key.pem"));
        write_file(&cert, &issued.cert_pem, false, opts.force)?;
        write_file(&key, &issued.key_pem, true, opts.force)?;
        files.push(cert);
        files.push(key);
        Ok(())
    };
    save("ca".into(), &ca.issued())?;
    save("server".into(), &ca.issue_server(&opts.hosts)?)?;
    for client in &opts.clients {
        save(format!("client-{client}"), &ca.issue_client(client)?)?;
    }
    Ok(DevCerts { files })
}
