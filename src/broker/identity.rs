//! The server's identity: a fresh Ed25519 key pair per process, as
//! nats-server makes; the server id is its public key (`N...`). Services
//! that check a server's signature (auth callout, JWT) check it against this.
//!
//! Not persisted across restarts, as in nats-server: a restarted node
//! announces a new id, so its peers never mistake it for the route they
//! still hold to its previous run (a second route claiming a settled
//! route's id is refused).

use std::sync::Arc;

use crate::nkeys::{KeyPair, KeyType, NkeyError};

/// A fresh server key pair.
pub fn new_server_key() -> Result<Arc<KeyPair>, NkeyError> {
    KeyPair::generate(KeyType::Server).map(Arc::new)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_server_nkeys_and_random() {
        let a = super::new_server_key().unwrap();
        let id = a.public().as_str();
        assert_eq!(id.len(), 56);
        assert!(id.starts_with('N'));
        assert!(crate::nkeys::PublicKey::parse_as(id, crate::nkeys::KeyType::Server).is_ok());
        assert_ne!(id, super::new_server_key().unwrap().public().as_str());
    }
}
