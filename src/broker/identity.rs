//! The server's random identity.

use rand::Rng;

/// RFC 4648 base32 alphabet, as nkeys use.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A random server id shaped like nats-server's (an `N` followed by 55
/// base32 characters), so tools that display or validate it are content.
pub fn new_server_id() -> String {
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(56);
    id.push('N');
    for _ in 0..55 {
        id.push(char::from(BASE32[rng.gen_range(0..32)]));
    }
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_nkey_shaped_and_random() {
        let a = super::new_server_id();
        assert_eq!(a.len(), 56);
        assert!(a.starts_with('N'));
        assert_ne!(a, super::new_server_id());
    }
}
