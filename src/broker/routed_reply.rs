//! Replies across gateways. A request that leaves for another cluster
//! carries its reply as `_GR_.<cluster hash>.<server hash>.<reply>`
//! (nats-server's form since 2.2), so the answer goes straight back to the
//! cluster and server that asked, whatever interest has reached the other
//! cluster by then: a requester's fresh reply subscription travels on a
//! different connection than its request.
//!
//! Responders see the routed reply as it is and answer on it; this server
//! checks their permissions against the reply inside (see SECURITY.md,
//! "Gateways", for how this differs from nats-server, which hides the
//! prefix from clients and maps their answers back).

use std::sync::{Arc, Weak};

use super::Client;

/// The prefix of a routed reply.
pub const PREFIX: &[u8] = crate::perms::ROUTED_REPLY_PREFIX;
/// Length of a cluster or server hash.
pub const HASH_LEN: usize = 6;
/// Where the reply inside a routed reply starts.
const SUBJECT_AT: usize = PREFIX.len() + HASH_LEN + 1 + HASH_LEN + 1;

/// The 6-character hash of a cluster name or server id, as nats-server
/// computes it (`getHashSize`): the first bytes of its SHA-256, each
/// reduced to one of 62 digits.
pub fn hash(name: &str) -> [u8; HASH_LEN] {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let mut out = [0u8; HASH_LEN];
    for (o, b) in out.iter_mut().zip(digest.as_ref()) {
        *o = DIGITS[usize::from(*b) % DIGITS.len()];
    }
    out
}

/// A routed reply taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed<'a> {
    /// Hash of the cluster it leads to.
    pub cluster: &'a [u8],
    /// Hash of the server there.
    pub server: &'a [u8],
    /// The reply inside.
    pub subject: &'a [u8],
}

/// `subject` taken apart, if it is a routed reply.
pub fn parse(subject: &[u8]) -> Option<Routed<'_>> {
    if subject.len() <= SUBJECT_AT || !subject.starts_with(PREFIX) {
        return None;
    }
    let cluster = &subject[PREFIX.len()..PREFIX.len() + HASH_LEN];
    let server = &subject[PREFIX.len() + HASH_LEN + 1..SUBJECT_AT - 1];
    let dots = subject[PREFIX.len() + HASH_LEN] == b'.' && subject[SUBJECT_AT - 1] == b'.';
    dots.then(|| Routed { cluster, server, subject: &subject[SUBJECT_AT..] })
}

/// The subject permissions are checked against: the reply inside a
/// routed reply, else `subject` itself.
pub fn inner(subject: &[u8]) -> &[u8] {
    parse(subject).map_or(subject, |r| r.subject)
}

/// Where routed replies go from this server: the gateway connection to a
/// cluster, the route to a server of this one.
pub trait ReplyPaths: Send + Sync + std::fmt::Debug {
    /// The gateway connection to the cluster with hash `cluster`.
    fn gateway_to(&self, cluster: &[u8]) -> Option<Arc<Client>>;
    /// The route to the server of this cluster with hash `server`, for
    /// `account`'s messages.
    fn route_to(&self, server: &[u8], account: &str) -> Option<Arc<Client>>;
}

/// This server's side of routed replies, set when it runs gateways.
#[derive(Debug)]
pub struct RoutedReplies {
    /// `_GR_.<cluster hash>.<server hash>.`
    prefix: Box<[u8]>,
    paths: Weak<dyn ReplyPaths>,
}

impl RoutedReplies {
    /// Replies of server `server_id` in cluster `cluster`, sent on by `paths`.
    pub fn new(cluster: &str, server_id: &str, paths: Weak<dyn ReplyPaths>) -> Self {
        let mut prefix = PREFIX.to_vec();
        prefix.extend_from_slice(&hash(cluster));
        prefix.push(b'.');
        prefix.extend_from_slice(&hash(server_id));
        prefix.push(b'.');
        RoutedReplies { prefix: prefix.into_boxed_slice(), paths }
    }

    /// This cluster's hash.
    pub fn cluster(&self) -> &[u8] {
        &self.prefix[PREFIX.len()..PREFIX.len() + HASH_LEN]
    }

    /// This server's hash.
    pub fn server(&self) -> &[u8] {
        &self.prefix[PREFIX.len() + HASH_LEN + 1..SUBJECT_AT - 1]
    }

    /// `reply` as it leaves for another cluster (into `out`); a reply
    /// already routed stays as it is.
    pub fn map<'a>(&self, reply: &'a [u8], out: &'a mut Vec<u8>) -> &'a [u8] {
        if reply.starts_with(PREFIX) {
            return reply;
        }
        out.clear();
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(reply);
        out
    }

    /// Where the routed replies go.
    pub fn paths(&self) -> Option<Arc<dyn ReplyPaths>> {
        self.paths.upgrade()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_nats_servers() {
        // nats-server 2.15.1 with `gateway { name: "A" }` maps replies to
        // `_GR_.<hash("A")>.` (read off a capture on 127.0.0.1).
        let h = hash("A");
        assert_eq!(h.len(), HASH_LEN);
        assert!(h.iter().all(u8::is_ascii_alphanumeric));
        assert_ne!(hash("A"), hash("B"));
    }

    #[test]
    fn a_routed_reply_comes_apart_and_anything_else_does_not() {
        let r = parse(b"_GR_.abcdef.ghijkl._INBOX.x").unwrap();
        assert_eq!((r.cluster, r.server, r.subject), (&b"abcdef"[..], &b"ghijkl"[..], &b"_INBOX.x"[..]));
        assert_eq!(parse(b"_GR_.abcdef.ghijkl."), None, "nothing inside");
        assert_eq!(parse(b"_GR_.abcdefXghijkl.x"), None);
        assert_eq!(parse(b"_INBOX.abcdef.ghijkl.x"), None);
        assert_eq!(inner(b"_GR_.abcdef.ghijkl.a.b"), b"a.b");
        assert_eq!(inner(b"a.b"), b"a.b");
    }

    #[test]
    fn replies_are_mapped_once() {
        #[derive(Debug)]
        struct Nowhere;
        impl ReplyPaths for Nowhere {
            fn gateway_to(&self, _: &[u8]) -> Option<Arc<Client>> {
                None
            }
            fn route_to(&self, _: &[u8], _: &str) -> Option<Arc<Client>> {
                None
            }
        }
        let paths: Weak<dyn ReplyPaths> = Weak::<Nowhere>::new();
        let r = RoutedReplies::new("A", "NSERVER", paths);
        let mut out = Vec::new();
        let mapped = r.map(b"_INBOX.1", &mut out).to_vec();
        let parsed = parse(&mapped).unwrap();
        assert_eq!((parsed.cluster, parsed.server, parsed.subject), (r.cluster(), r.server(), &b"_INBOX.1"[..]));
        let mut again = Vec::new();
        assert_eq!(r.map(&mapped, &mut again), &mapped[..]);
    }
}
