//! Imports compiled for delivery.
//!
//! - A [`StreamImport`] (B imports A's stream): when a client of B
//!   subscribes to a subject that overlaps the import's local subject, a
//!   *shadow* subscription goes into A's index for the matching part,
//!   mapped back into A's subject space; a message of A that reaches it is
//!   renamed into B's space and delivered to the B client, under that
//!   client's permissions and delivery filter (nats-server's shadow
//!   subscriptions, `addShadowSubscriptions`). Over routes a shadow is
//!   interest of account A, as nats-server announces it.
//! - A [`ServiceImport`] (B imports A's service): one internal
//!   subscription in B's index on the local subject; a request published
//!   there is renamed into A's space, its reply replaced by
//!   `_R_.<prefix>.<id>` (remembered in the import's [`ReplyMap`]), and
//!   published in A. A second internal subscription, in A's index on
//!   `_R_.<prefix>.>`, takes A's responses and publishes each to the
//!   requester's reply subject in B. Only requests from this server's own
//!   clients are imported (one from a route was imported where it was
//!   published), as in nats-server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::replies::{ReplyMap, REPLY_SUBJECT_LEN};
use super::Account;
use crate::config::{Import, ResponseType};
use crate::subject::{intersection, Transform};

/// A stream import of the account that holds it.
#[derive(Debug)]
pub struct StreamImport {
    /// The exporting account.
    pub exporter: Arc<Account>,
    /// From the exporter's subject space to the importer's.
    pub to_local: Transform,
    /// From the importer's subject space to the exporter's.
    to_exporter: Transform,
    /// The import's subjects as the importer sees them (a pattern).
    pub local: Box<[u8]>,
    /// Set when a reload removed the import: shadows stop delivering at
    /// once, before their sessions take them out of the index.
    revoked: AtomicBool,
    /// As configured (for monitoring).
    pub config: Import,
}

impl StreamImport {
    /// Compiles `config`, whose exporter is `exporter` (the rules were
    /// checked when the accounts were built).
    pub fn new(config: &Import, exporter: Arc<Account>) -> Result<StreamImport, crate::subject::TransformError> {
        let to_local = config.transform()?;
        let to_exporter = to_local.reverse();
        Ok(StreamImport {
            exporter,
            local: to_local.dest_pattern().into(),
            to_exporter,
            to_local,
            revoked: AtomicBool::new(false),
            config: config.clone(),
        })
    }

    /// The subject (pattern) of the shadow a local subscription to
    /// `subject` needs in the exporter's index, or `None` when the two do
    /// not overlap.
    pub fn shadow_subject(&self, subject: &[u8]) -> Option<Vec<u8>> {
        let common = intersection(subject, &self.local)?;
        let mut out = Vec::with_capacity(common.len());
        self.to_exporter.apply(&common, &mut out).then_some(out)
    }

    /// Stops delivery through this import.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
    }

    /// Whether a reload removed it.
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

/// A service import of the account that holds it.
#[derive(Debug)]
pub struct ServiceImport {
    /// The importing account (weak: the exporter's index holds this import
    /// through its response subscription).
    pub importer: Weak<Account>,
    /// The exporting account.
    pub exporter: Arc<Account>,
    /// From the local subject to the exporter's.
    pub to_exporter: Transform,
    /// How the exporter answers.
    pub response: ResponseType,
    /// How long a request waits for (more) responses.
    pub threshold: Duration,
    /// The export's `allow_trace`: a traced request goes on traced into
    /// the exporter (else untraced, or, trace-only, no further).
    pub allow_trace: bool,
    replies: Mutex<ReplyMap>,
    /// Most open requests (`max_pending_responses`).
    capacity: usize,
    revoked: AtomicBool,
    /// As configured (for monitoring).
    pub config: Import,
}

impl ServiceImport {
    /// The import's `share`: its requests carry the requester's details.
    pub fn shares(&self) -> bool {
        matches!(self.config.kind, crate::config::ImportKind::Service { share: true, .. })
    }

    /// Compiles `config` for `importer`; `prefix_seed` makes its reply
    /// prefix (random, so servers of a cluster never share one).
    pub fn new(
        config: &Import,
        importer: &Arc<Account>,
        exporter: Arc<Account>,
        export: (ResponseType, Duration, bool),
        capacity: usize,
        prefix_seed: u64,
    ) -> Result<ServiceImport, crate::subject::TransformError> {
        Ok(ServiceImport {
            importer: Arc::downgrade(importer),
            exporter,
            to_exporter: config.transform()?,
            response: export.0,
            threshold: export.1,
            allow_trace: export.2,
            replies: Mutex::new(ReplyMap::new(prefix_seed, capacity)),
            capacity,
            revoked: AtomicBool::new(false),
            config: config.clone(),
        })
    }

    /// The pattern of the exporter-side response subscription.
    pub fn response_subject(&self) -> Vec<u8> {
        let mut s = self.replies.lock().prefix().to_vec();
        s.push(b'>');
        s
    }

    /// The local subject requests are published to.
    pub fn local_subject(&self) -> &[u8] {
        self.to_exporter.source()
    }

    /// Records a request with the requester's `reply`; the reply to send
    /// to the exporter instead (fixed-size: no allocation per request).
    pub fn open_request(&self, reply: &[u8], now: Instant) -> [u8; REPLY_SUBJECT_LEN] {
        self.replies.lock().insert(reply, now, self.threshold)
    }

    /// Forgets a request that reached nobody.
    pub fn forget(&self, sent_reply: &[u8]) {
        self.replies.lock().forget(sent_reply);
    }

    /// The requester's reply for a response to `subject`; an empty
    /// `payload` ends a streamed or chunked response.
    pub fn answer(&self, subject: &[u8], payload_empty: bool, now: Instant) -> Option<Box<[u8]>> {
        let last = self.response == ResponseType::Singleton || payload_empty;
        self.replies.lock().answer(subject, now, last, self.threshold)
    }

    /// Most open requests.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Requests waiting for a response (those past their threshold are
    /// dropped first).
    pub fn pending(&self) -> usize {
        let mut replies = self.replies.lock();
        replies.expire(Instant::now());
        replies.len()
    }

    /// Stops the import.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
    }

    /// Whether a reload removed it.
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ImportKind, LocalSubject};

    fn stream(subject: &str, local: LocalSubject) -> StreamImport {
        let config = Import {
            account: "A".into(),
            subject: subject.into(),
            kind: ImportKind::Stream { local },
            allow_trace: false,
            pos: String::new(),
        };
        StreamImport::new(&config, Arc::new(Account::new("A".into(), false))).unwrap()
    }

    fn shadow(import: &StreamImport, sub: &str) -> Option<String> {
        import.shadow_subject(sub.as_bytes()).map(|s| String::from_utf8(s).unwrap())
    }

    /// nats-server's four cases: exact, the subscription a superset of the
    /// import, a subset, and a partial overlap.
    #[test]
    fn shadow_subjects_for_each_overlap() {
        let prefixed = stream("public.>", LocalSubject::Prefix("from_a".into()));
        assert_eq!(shadow(&prefixed, "from_a.public.>").as_deref(), Some("public.>"));
        assert_eq!(shadow(&prefixed, ">").as_deref(), Some("public.>"));
        assert_eq!(shadow(&prefixed, "from_a.public.x").as_deref(), Some("public.x"));
        assert_eq!(shadow(&prefixed, "*.public.*").as_deref(), Some("public.*"));
        assert_eq!(shadow(&prefixed, "other.>"), None);
        let mapped = stream("orders.*.new", LocalSubject::To("new.$1".into()));
        assert_eq!(shadow(&mapped, "new.eu").as_deref(), Some("orders.eu.new"));
        assert_eq!(shadow(&mapped, "new.*").as_deref(), Some("orders.*.new"));
        assert_eq!(shadow(&mapped, "new.eu.x"), None);
        let same = stream("a.b", LocalSubject::Same);
        assert_eq!(shadow(&same, "a.*").as_deref(), Some("a.b"));
    }
}
