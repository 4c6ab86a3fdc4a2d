//! A tenant's self-service request (`$SYS.REQ.ACCOUNT.PING.CONNZ`, `...STATZ`,
//! `$SYS.REQ.SERVER.PING.CONNZ`) goes on as nats-server's system imports
//! send it: published in the system account on
//! `$SYS.REQ.ACCOUNT.<account>.<CONNZ|STATZ>` with a reply of our own
//! (`_R_.<prefix>.<id>`), which every server of the cluster (this one too,
//! warden or nats-server) answers once; each answer is handed back to the
//! requester's reply subject in its account.
//!
//! Why not answer in the tenant's account and announce that interest to
//! peers: nats-server does not announce its import subscriptions to
//! routes, it answers only in the system account, so in a mixed cluster a warden node
//! heard the request twice (the tenant's subject and the system one) and
//! answered twice, and nats-server never heard a warden tenant's request.
//!
//! Each account has its own map of outstanding requests (bounded, the
//! oldest forgotten first), so one tenant cannot push out another's answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;

use super::requests::AccountRequest;
use crate::broker::account::ReplyMap;
use crate::broker::REQUESTS_PER_SECOND;

/// How long a forwarded request takes answers (each answer extends it):
/// the `nats` CLI waits about as long for a cluster's answers.
const ANSWER_WINDOW: Duration = Duration::from_secs(2);
/// Requests one account has outstanding at most: its budget for the window.
const OUTSTANDING: usize = REQUESTS_PER_SECOND as usize * ANSWER_WINDOW.as_secs() as usize;

/// The outstanding forwarded requests of every account but the system one.
pub struct Forwarded {
    /// By account name.
    maps: HashMap<Arc<str>, ReplyMap>,
    /// The account each map's prefix belongs to, so that an answer finds
    /// its map without a look at every account's.
    by_prefix: HashMap<Box<[u8]>, Arc<str>>,
    random: SystemRandom,
}

/// What to publish in the system account for one tenant request.
pub struct Forward {
    /// `$SYS.REQ.ACCOUNT.<account>.<what>`.
    pub subject: Vec<u8>,
    /// The reply the answers come back on.
    pub reply: Vec<u8>,
    /// The body, for `STATZ` limited to the account itself.
    pub body: Vec<u8>,
}

impl Forwarded {
    /// No account yet.
    pub fn new() -> Forwarded {
        Forwarded { maps: HashMap::new(), by_prefix: HashMap::new(), random: SystemRandom::new() }
    }

    /// Keeps a map for each of `accounts` (new ones get a fresh random
    /// prefix) and drops the maps of accounts that are gone.
    pub fn keep(&mut self, accounts: &[Arc<str>]) {
        self.maps.retain(|name, _| accounts.contains(name));
        for name in accounts {
            if self.maps.contains_key(name) {
                continue;
            }
            let mut seed = [0u8; 8];
            // Without randomness the account's requests are answered by this server alone.
            if self.random.fill(&mut seed).is_ok() {
                self.maps.insert(name.clone(), ReplyMap::new(u64::from_le_bytes(seed), OUTSTANDING));
            }
        }
        self.by_prefix = self.maps.iter().map(|(name, map)| (map.prefix().into(), name.clone())).collect();
    }

    /// The subscriptions answers arrive on (in the system account, announced
    /// to peers): `_R_.<prefix>.>` per account.
    pub fn response_subjects(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.maps.values().map(|map| [map.prefix(), b">"].concat())
    }

    /// The system-account request for `account`'s `what` with `body`, or
    /// `None` when it cannot be forwarded (an account name that is not one
    /// subject token, or no map for the account): the caller answers it
    /// alone then.
    pub fn open(
        &mut self,
        account: &str,
        what: AccountRequest,
        reply: &[u8],
        body: &[u8],
        now: Instant,
    ) -> Option<Forward> {
        let token = !account.is_empty() && !account.contains(['.', '*', '>', ' ', '\t', '\r', '\n']);
        let (what, body) = match what {
            AccountRequest::Connz => ("CONNZ", body.to_vec()),
            // For an account called PING the system subject means "every
            // account the body names": name only this one.
            AccountRequest::Statz => ("STATZ", own_accounts(body, account)?),
            AccountRequest::Subsz | AccountRequest::Info => return None,
        };
        let map = self.maps.get_mut(account).filter(|_| token)?;
        let reply = map.insert(reply, now, ANSWER_WINDOW).to_vec();
        Some(Forward { subject: format!("$SYS.REQ.ACCOUNT.{account}.{what}").into_bytes(), reply, body })
    }

    /// The account and reply subject an answer on `subject` goes to.
    pub fn answer(&mut self, subject: &[u8], now: Instant) -> Option<(Arc<str>, Box<[u8]>)> {
        let name = self.by_prefix.get(ReplyMap::prefix_of(subject)?)?;
        let reply = self.maps.get_mut(name)?.answer(subject, now, false, ANSWER_WINDOW)?;
        Some((name.clone(), reply))
    }
}

/// `body` with `accounts` set to `[account]`; `None` when it is neither
/// empty nor a JSON object (then it is answered here, with the error).
fn own_accounts(body: &[u8], account: &str) -> Option<Vec<u8>> {
    let mut options = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(options)) => options,
            _ => return None,
        }
    };
    options.insert("accounts".into(), Value::from(vec![account]));
    serde_json::to_vec(&options).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(names: &[&str]) -> Forwarded {
        let mut f = Forwarded::new();
        f.keep(&names.iter().map(|n| Arc::from(*n)).collect::<Vec<_>>());
        f
    }

    #[test]
    fn requests_go_to_the_accounts_system_subject_and_answers_come_back() {
        let mut f = forwarded(&["A", "B"]);
        let now = Instant::now();
        let sent = f.open("A", AccountRequest::Connz, b"_INBOX.a", br#"{"auth":true}"#, now).unwrap();
        assert_eq!(sent.subject, b"$SYS.REQ.ACCOUNT.A.CONNZ");
        assert_eq!(sent.body, br#"{"auth":true}"#);
        assert!(f.response_subjects().any(|s| sent.reply.starts_with(&s[..s.len() - 1])));
        // One answer per server: each reaches the requester.
        for _ in 0..3 {
            assert_eq!(f.answer(&sent.reply, now), Some((Arc::from("A"), b"_INBOX.a"[..].into())));
        }
        assert_eq!(f.answer(b"_R_.unknown.x", now), None);
        assert_eq!(f.answer(&sent.reply, now + ANSWER_WINDOW * 2), None);
    }

    #[test]
    fn statz_names_only_the_account_itself() {
        let mut f = forwarded(&["PING"]);
        let now = Instant::now();
        let sent = f.open("PING", AccountRequest::Statz, b"_INBOX.p", br#"{"accounts":["SYS"]}"#, now).unwrap();
        assert_eq!(sent.subject, b"$SYS.REQ.ACCOUNT.PING.STATZ");
        let body: Value = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(body["accounts"], serde_json::json!(["PING"]));
        let sent = f.open("PING", AccountRequest::Statz, b"_INBOX.p", b"", now).unwrap();
        assert_eq!(sent.body, br#"{"accounts":["PING"]}"#);
        assert!(f.open("PING", AccountRequest::Statz, b"_INBOX.p", b"[1]", now).is_none());
    }

    #[test]
    fn what_cannot_be_a_subject_token_is_not_forwarded() {
        let mut f = forwarded(&["a.b", "C"]);
        let now = Instant::now();
        assert!(f.open("a.b", AccountRequest::Connz, b"_INBOX.x", b"", now).is_none());
        assert!(f.open("gone", AccountRequest::Connz, b"_INBOX.x", b"", now).is_none());
        f.keep(&[]);
        assert!(f.open("C", AccountRequest::Connz, b"_INBOX.x", b"", now).is_none());
        assert_eq!(f.response_subjects().count(), 0);
    }

    #[test]
    fn each_account_holds_its_own_bounded_requests() {
        let mut f = forwarded(&["A", "B"]);
        let now = Instant::now();
        let b = f.open("B", AccountRequest::Connz, b"_INBOX.b", b"", now).unwrap();
        let first = f.open("A", AccountRequest::Connz, b"_INBOX.a0", b"", now).unwrap();
        for i in 0..OUTSTANDING {
            f.open("A", AccountRequest::Connz, format!("_INBOX.a{i}").as_bytes(), b"", now).unwrap();
        }
        assert_eq!(f.answer(&first.reply, now), None, "A's oldest went first");
        assert!(f.answer(&b.reply, now).is_some(), "B's stayed");
    }

    #[test]
    fn an_answer_finds_its_account_among_many_and_none_once_it_is_gone() {
        let names: Vec<Arc<str>> = (0..1000).map(|i| Arc::from(format!("T{i}"))).collect();
        let mut f = Forwarded::new();
        f.keep(&names);
        let now = Instant::now();
        let sent = f.open("T765", AccountRequest::Connz, b"_INBOX.t", b"", now).unwrap();
        assert_eq!(f.answer(&sent.reply, now), Some((Arc::from("T765"), b"_INBOX.t"[..].into())));
        assert_eq!(f.answer(&sent.reply[..sent.reply.len() - 1], now), None, "a prefix alone");
        assert_eq!(f.answer(b"_R_", now), None);
        f.keep(&names[..765]);
        assert_eq!(f.answer(&sent.reply, now), None, "the account is gone");
    }
}
