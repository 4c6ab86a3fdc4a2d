//! TLS with rustls: loading and checking certificates, the server
//! configuration, the names in a client certificate (and the strict
//! SPIFFE mapping of them, `svid`), and development
//! certificates for `warden certs`.
//!
//! Only TLS 1.2 and 1.3 with rustls' default (modern, AEAD-only) cipher
//! suites are offered, narrowed by `cipher_suites` and `curve_preferences`;
//! `certs` picks a certificate by SNI and `pinned_certs` pins peers' keys
//! (`policy`). PEM is read with rustls-pki-types' `PemObject` API.

mod devcerts;
mod go_names;
mod load;
mod peer;
mod policy;
mod rotation;
mod state;
mod svid;

pub use devcerts::{generate, Ca, DevCerts, GenerateOptions, Issued, CLIENT_EMAIL_DOMAIN};
pub use go_names::{go_cipher_name, go_version_name};
pub use load::{
    load_client_config, load_dialler_config, load_server_config, load_verifying_client_config, CertInfo, TlsError,
    TlsSetup,
};
pub use peer::{CaClaim, PeerIdentity};
pub use policy::spki_sha256;
pub use rotation::{Observer, Reload, Rotated, Rotation};
pub use state::{CurrentTls, TlsState};
pub use svid::{log_refusal, spiffe_user, SvidRefusal};
