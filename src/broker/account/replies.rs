//! The outstanding requests of one service import: for each request sent
//! across, the reply subject the exporter answers on (`_R_.<prefix>.<id>`,
//! in the exporter's account) and the requester's own reply subject it
//! maps back to.
//!
//! nats-server keeps these in an unbounded map per exporter; here each
//! import has its own map, bounded by the importing account's
//! `max_pending_responses` in entries and by [`MAX_REPLY_BYTES`] in bytes
//! (a reply subject may be as long as `max_control_line`: counted in
//! entries alone, 65,536 requests with 4 KiB replies pinned 275 MiB), so a
//! requester that never collects its answers costs its own account at most
//! that much (the oldest is forgotten first) and cannot crowd out other
//! importers.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crate::perms::RESERVED_REPLY_PREFIX;

/// Characters of a reply id (the part after the prefix): 8 base62
/// characters, about 47 bits, so ids of outstanding requests do not collide.
pub const REPLY_ID_LEN: usize = 8;
/// Characters of an import's reply prefix after `_R_.` (nats-server's 10).
pub const REPLY_PREFIX_LEN: usize = 10;
/// Bytes of an import's prefix: `_R_.<10 characters>.`.
const PREFIX_BYTES: usize = RESERVED_REPLY_PREFIX.len() + REPLY_PREFIX_LEN + 1;
/// Bytes of a reply subject sent to the exporter: `_R_.<prefix>.<id>`.
pub const REPLY_SUBJECT_LEN: usize = PREFIX_BYTES + REPLY_ID_LEN;
/// Distinct ids: 62^8.
const ID_SPACE: u64 = 62u64.pow(REPLY_ID_LEN as u32);

/// Most bytes one import's map holds: its requesters' reply subjects plus
/// [`ENTRY_OVERHEAD`] per entry. 4 MiB keeps about 35,000 requests with
/// inbox-sized replies (about 50 bytes) outstanding, or about 1,000 with
/// 4 KiB ones.
pub const MAX_REPLY_BYTES: usize = 4 << 20;
/// What an entry costs besides its reply subject: the map's slot (id,
/// reply pointer, deadline, sequence and control byte, about 50 bytes) and
/// the queue's (id, deadline, sequence: 32), rounded up.
const ENTRY_OVERHEAD: usize = 80;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Writes `n` base62 digits of `value` into `out`, least significant first.
fn base62(mut value: u64, n: usize, out: &mut Vec<u8>) {
    for _ in 0..n {
        out.push(BASE62[(value % 62) as usize]);
        value /= 62;
    }
}

/// The value of a reply id [`base62`] wrote with [`REPLY_ID_LEN`] digits;
/// `None` for anything else (a response subject is the exporter client's
/// choice).
fn parse_id(id: &[u8]) -> Option<u64> {
    if id.len() != REPLY_ID_LEN {
        return None;
    }
    id.iter().rev().try_fold(0u64, |value, &c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        Some(value * 62 + u64::from(digit))
    })
}

/// One outstanding request.
#[derive(Debug)]
struct Pending {
    /// The requester's reply subject.
    reply: Box<[u8]>,
    /// When it is forgotten unless answered (for streamed responses, moved
    /// on by each response).
    deadline: Instant,
    /// Matches the entry in `order` that is current for this id.
    seq: u64,
}

/// The map of one import. Not thread-safe by itself; the import keeps it
/// behind a short lock.
///
/// Ids are numbers (below 62^8, written in base62 in the subject), so an
/// entry costs no allocation besides the requester's reply, and the map
/// hashes an integer with foldhash rather than a byte string with SipHash
/// (together about a third of a request's cost through the import). The
/// keys are the server's own choice (a keyed hash of a counter), never a
/// client's: a client can only look up ids, which cannot make them collide.
#[derive(Debug)]
pub struct ReplyMap {
    /// `_R_.<prefix>.`: the exporter-side subject space of this import.
    prefix: [u8; PREFIX_BYTES],
    pending: HashMap<u64, Pending, foldhash::fast::RandomState>,
    /// Ids in insertion order with the deadline and sequence they had then;
    /// entries whose sequence no longer matches are stale and skipped.
    order: VecDeque<(u64, Instant, u64)>,
    /// Most entries in `pending`.
    capacity: usize,
    /// What `pending` holds, counted as [`MAX_REPLY_BYTES`] counts.
    bytes: usize,
    /// Keyed hash (SipHash, a keyed PRF: unlike foldhash, its key cannot be
    /// worked out from its outputs) of a counter: ids that clients of the
    /// exporter cannot predict from the ones they see.
    ids: RandomState,
    counter: u64,
}

impl ReplyMap {
    /// An empty map holding at most `capacity` requests, under the prefix
    /// `_R_.<prefix_seed in 10 base62 characters>.` (random, so servers of
    /// a cluster never share one).
    pub fn new(prefix_seed: u64, capacity: usize) -> Self {
        let mut text = RESERVED_REPLY_PREFIX.to_vec();
        base62(prefix_seed, REPLY_PREFIX_LEN, &mut text);
        text.push(b'.');
        let mut prefix = [0; PREFIX_BYTES];
        prefix.copy_from_slice(&text);
        ReplyMap {
            prefix,
            pending: HashMap::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            bytes: 0,
            ids: RandomState::new(),
            counter: 0,
        }
    }

    /// The prefix every reply of this import starts with.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The part of `subject` that would be a map's [`prefix`](Self::prefix),
    /// to find the map among many; `None` when it is too short.
    pub fn prefix_of(subject: &[u8]) -> Option<&[u8]> {
        subject.get(..PREFIX_BYTES)
    }

    /// Outstanding requests.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no request is outstanding.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Bytes held, as [`MAX_REPLY_BYTES`] counts them.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records a request whose requester wants answers on `reply`, valid
    /// for `ttl` from `now`; returns the reply subject to send to the
    /// exporter. Expired entries go first, then, if still full (in entries
    /// or in bytes), the oldest.
    pub fn insert(&mut self, reply: &[u8], now: Instant, ttl: Duration) -> [u8; REPLY_SUBJECT_LEN] {
        self.expire(now);
        let cost = reply.len() + ENTRY_OVERHEAD;
        while self.pending.len() >= self.capacity || (self.bytes + cost > MAX_REPLY_BYTES && !self.pending.is_empty()) {
            if !self.pop_oldest() {
                break;
            }
        }
        let id = loop {
            self.counter += 1;
            let id = self.ids.hash_one(self.counter) % ID_SPACE;
            if !self.pending.contains_key(&id) {
                break id;
            }
        };
        let deadline = now + ttl;
        self.order.push_back((id, deadline, self.counter));
        self.pending.insert(id, Pending { reply: reply.into(), deadline, seq: self.counter });
        self.bytes += cost;
        self.compact();
        let mut subject = [0; REPLY_SUBJECT_LEN];
        subject[..PREFIX_BYTES].copy_from_slice(&self.prefix);
        let mut value = id;
        for byte in &mut subject[PREFIX_BYTES..] {
            *byte = BASE62[(value % 62) as usize];
            value /= 62;
        }
        subject
    }

    /// The requester's reply for a response published to `subject` at
    /// `now`. `last`: this response ends the request (singleton, or the
    /// empty message that ends a stream), so it is forgotten; otherwise the
    /// request stays answerable for `ttl` more.
    pub fn answer(&mut self, subject: &[u8], now: Instant, last: bool, ttl: Duration) -> Option<Box<[u8]>> {
        let id = subject.strip_prefix(&self.prefix[..]).and_then(parse_id)?;
        let entry = self.pending.get_mut(&id)?;
        if entry.deadline <= now {
            self.remove(id);
            return None;
        }
        if last {
            return self.remove(id);
        }
        self.counter += 1;
        entry.deadline = now + ttl;
        entry.seq = self.counter;
        let reply = entry.reply.clone();
        self.order.push_back((id, now + ttl, self.counter));
        self.compact();
        Some(reply)
    }

    /// Forgets the request sent with `subject` (it reached nobody).
    pub fn forget(&mut self, subject: &[u8]) {
        if let Some(id) = subject.strip_prefix(&self.prefix[..]).and_then(parse_id) {
            self.remove(id);
        }
    }

    /// Removes `id`'s entry, keeping the byte count.
    fn remove(&mut self, id: u64) -> Option<Box<[u8]>> {
        let pending = self.pending.remove(&id)?;
        self.bytes -= pending.reply.len() + ENTRY_OVERHEAD;
        Some(pending.reply)
    }

    /// Drops every request whose deadline passed.
    pub fn expire(&mut self, now: Instant) {
        while let Some((_, deadline, _)) = self.order.front() {
            if *deadline > now {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Removes the oldest live entry; false when there is none.
    fn pop_oldest(&mut self) -> bool {
        while let Some((id, _, seq)) = self.order.pop_front() {
            if self.pending.get(&id).is_some_and(|p| p.seq == seq) {
                self.remove(id);
                return true;
            }
        }
        false
    }

    /// Keeps `order` within twice the live entries, so answered requests
    /// (whose entries there went stale) cannot grow it.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.capacity.max(self.pending.len()) + 16 {
            let pending = &self.pending;
            self.order.retain(|(id, _, seq)| pending.get(id).is_some_and(|p| p.seq == *seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(120);

    fn map(capacity: usize) -> ReplyMap {
        ReplyMap::new(42, capacity)
    }

    #[test]
    fn singleton_answers_once() {
        let mut m = map(8);
        let now = Instant::now();
        let sent = m.insert(b"_INBOX.req.1", now, TTL);
        assert!(sent.starts_with(b"_R_.") && sent.starts_with(m.prefix()) && sent.len() == 15 + REPLY_ID_LEN);
        assert_eq!(m.answer(&sent, now, true, TTL).as_deref(), Some(&b"_INBOX.req.1"[..]));
        assert_eq!(m.answer(&sent, now, true, TTL), None);
        assert!(m.is_empty());
    }

    #[test]
    fn streams_last_until_their_threshold_after_the_last_response() {
        let mut m = map(8);
        let t0 = Instant::now();
        let ttl = Duration::from_secs(2);
        let sent = m.insert(b"r", t0, ttl);
        assert!(m.answer(&sent, t0 + Duration::from_secs(1), false, ttl).is_some());
        // Moved on by the response: still answerable at 2.5 s.
        assert!(m.answer(&sent, t0 + Duration::from_millis(2500), false, ttl).is_some());
        m.expire(t0 + Duration::from_secs(10));
        assert!(m.is_empty());
        assert_eq!(m.answer(&sent, t0 + Duration::from_secs(10), false, ttl), None);
    }

    #[test]
    fn full_map_forgets_the_oldest_and_order_stays_bounded() {
        let mut m = map(4);
        let now = Instant::now();
        let first = m.insert(b"r0", now, TTL);
        for i in 1..4 {
            m.insert(format!("r{i}").as_bytes(), now, TTL);
        }
        let newest = m.insert(b"r4", now, TTL);
        assert_eq!(m.len(), 4);
        assert_eq!(m.answer(&first, now, true, TTL), None);
        assert!(m.answer(&newest, now, true, TTL).is_some());
        // Many answered requests leave no growth behind.
        for i in 0..10_000 {
            let s = m.insert(format!("x{i}").as_bytes(), now, TTL);
            m.answer(&s, now, true, TTL);
        }
        assert!(m.order.len() <= 2 * 4 + 16 + 1, "{}", m.order.len());
    }

    #[test]
    fn long_reply_subjects_are_bounded_in_bytes_too() {
        let mut m = map(65_536);
        let now = Instant::now();
        let reply = vec![b'r'; 4000];
        let first = m.insert(&reply, now, TTL);
        for _ in 0..65_535 {
            m.insert(&reply, now, TTL);
        }
        assert!(m.bytes() <= MAX_REPLY_BYTES, "{} bytes", m.bytes());
        assert_eq!(m.len(), MAX_REPLY_BYTES / (4000 + ENTRY_OVERHEAD), "as many as fit");
        assert_eq!(m.answer(&first, now, true, TTL), None, "the oldest went first");
        let last = m.insert(b"_INBOX.x", now, TTL);
        assert_eq!(m.answer(&last, now, true, TTL).as_deref(), Some(&b"_INBOX.x"[..]));
        let held = m.len();
        for _ in 0..held {
            m.pop_oldest();
        }
        assert_eq!((m.len(), m.bytes()), (0, 0), "the count follows every removal");
    }

    #[test]
    fn ids_are_not_a_visible_counter() {
        let mut m = map(1000);
        let now = Instant::now();
        let a = m.insert(b"r", now, TTL);
        let b = m.insert(b"r", now, TTL);
        assert_ne!(a, b);
        let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        assert!(common < a.len() - 2, "{a:?} {b:?}");
        assert_eq!(m.answer(b"_R_.other.xxxxxxxx", now, true, TTL), None);
    }

    #[test]
    fn ids_read_back_exactly_and_nothing_else_answers() {
        for value in [0, 1, 61, 62, 123_456_789, ID_SPACE - 1] {
            let mut text = Vec::new();
            base62(value, REPLY_ID_LEN, &mut text);
            assert_eq!(parse_id(&text), Some(value), "{}", String::from_utf8_lossy(&text));
        }
        for bad in [&b"0000000"[..], b"000000000", b"0000000-", b"0000000.", b""] {
            assert_eq!(parse_id(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let mut m = map(8);
        let now = Instant::now();
        let sent = m.insert(b"r", now, TTL);
        let mut longer = sent.to_vec();
        longer.push(b'0');
        assert_eq!(m.answer(&longer, now, true, TTL), None);
        assert_eq!(m.answer(&sent[..sent.len() - 1], now, true, TTL), None);
        m.forget(&longer);
        assert_eq!(m.len(), 1, "forget needs the exact subject too");
        assert_eq!(m.answer(&sent, now, true, TTL).as_deref(), Some(&b"r"[..]));
    }
}
