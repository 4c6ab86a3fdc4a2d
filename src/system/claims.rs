//! Account JWT updates and lookups over NATS (operator mode), as
//! nats-server answers them: `$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE` and
//! the older `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE` (any resolver), and with
//! the directory resolver `$SYS.REQ.CLAIMS.UPDATE` and
//! `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP`. Only system-account clients can
//! publish there, and a JWT is applied only if the operator signed it; the
//! server (which owns the resolver) does the work, this module the wire.

use serde_json::{json, Value};
use tokio::sync::oneshot;

/// What a claims request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsAsk {
    /// Store and apply an account JWT; `account` is the key the subject
    /// named (the JWT must be for it).
    Update {
        /// The JWT (the request body).
        token: String,
        /// The key in the subject, if it had one.
        account: Option<String>,
    },
    /// The held JWT of `account`.
    Lookup {
        /// The account's key.
        account: String,
    },
}

impl ClaimsAsk {
    /// The account key the request names, if it names one.
    pub fn account(&self) -> Option<&str> {
        match self {
            ClaimsAsk::Update { account, .. } => account.as_deref(),
            ClaimsAsk::Lookup { account } => Some(account),
        }
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsAnswer {
    /// `{"data":{"account","code":200,"message"}}`.
    Updated {
        /// The account.
        account: String,
        /// `jwt updated`, `jwt update skipped`.
        message: &'static str,
    },
    /// `{"error":{"account","code":500,"description"}}`.
    Refused {
        /// The account, or `n/a`.
        account: String,
        /// Why.
        description: String,
    },
    /// A lookup: the JWT itself, or nothing (no answer, as nats-server).
    Jwt(Option<String>),
}

/// One request for whoever owns the resolver; it answers through `done`.
#[derive(Debug)]
pub struct ClaimsRequest {
    /// What is asked.
    pub ask: ClaimsAsk,
    /// Where the answer goes.
    pub done: oneshot::Sender<ClaimsAnswer>,
}

/// The claims subjects the system account subscribes to: always the two
/// per-account update subjects; with a directory resolver also the general
/// update and the lookup.
pub fn subjects(directory: bool) -> Vec<&'static str> {
    let mut subjects = vec!["$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE", "$SYS.ACCOUNT.*.CLAIMS.UPDATE"];
    if directory {
        subjects.extend(["$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP"]);
    }
    subjects
}

/// The request a claims subject and body make; `None` for other subjects.
pub fn parse(subject: &[u8], payload: &[u8], directory: bool) -> Option<ClaimsAsk> {
    let subject = std::str::from_utf8(subject).ok()?;
    let token = || String::from_utf8_lossy(payload).trim().to_owned();
    let tokens: Vec<&str> = subject.split('.').collect();
    match tokens.as_slice() {
        ["$SYS", "REQ", "CLAIMS", "UPDATE"] if directory => Some(ClaimsAsk::Update { token: token(), account: None }),
        ["$SYS", "REQ", "ACCOUNT", key, "CLAIMS", "UPDATE"] | ["$SYS", "ACCOUNT", key, "CLAIMS", "UPDATE"] => {
            Some(ClaimsAsk::Update { token: token(), account: Some((*key).to_owned()) })
        }
        ["$SYS", "REQ", "ACCOUNT", key, "CLAIMS", "LOOKUP"] if directory => {
            Some(ClaimsAsk::Lookup { account: (*key).to_owned() })
        }
        _ => None,
    }
}

/// An update's answer body, with `server` (the answering server's facts).
pub fn update_answer(server: Value, answer: &ClaimsAnswer) -> Option<Vec<u8>> {
    let body = match answer {
        ClaimsAnswer::Updated { account, message } => {
            json!({"data": {"account": account, "code": 200, "message": message}, "server": server})
        }
        ClaimsAnswer::Refused { account, description } => {
            json!({"error": {"account": account, "code": 500, "description": description}, "server": server})
        }
        ClaimsAnswer::Jwt(_) => return None,
    };
    Some(body.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_read_as_nats_server_names_them() {
        let key = "ACWH6PTXWIFUAMWK5XKMS2DSDWRJAM2J25RHDSPTRXACAYALUYZJUOYC";
        let update = format!("$SYS.REQ.ACCOUNT.{key}.CLAIMS.UPDATE");
        assert_eq!(
            parse(update.as_bytes(), b" eyJ.x.y\n", false),
            Some(ClaimsAsk::Update { token: "eyJ.x.y".into(), account: Some(key.into()) })
        );
        assert!(parse(format!("$SYS.ACCOUNT.{key}.CLAIMS.UPDATE").as_bytes(), b"", false).is_some());
        assert_eq!(parse(b"$SYS.REQ.CLAIMS.UPDATE", b"t", false), None);
        assert!(parse(b"$SYS.REQ.CLAIMS.UPDATE", b"t", true).is_some());
        let lookup = format!("$SYS.REQ.ACCOUNT.{key}.CLAIMS.LOOKUP");
        assert_eq!(parse(lookup.as_bytes(), b"", true), Some(ClaimsAsk::Lookup { account: key.into() }));
        assert_eq!(parse(b"$SYS.REQ.ACCOUNT.A.CONNZ", b"", true), None);
    }

    #[test]
    fn answers_have_nats_servers_shape() {
        let ok =
            update_answer(json!({"id": "N"}), &ClaimsAnswer::Updated { account: "A".into(), message: "jwt updated" });
        let ok: Value = serde_json::from_slice(&ok.unwrap()).unwrap();
        assert_eq!(ok["data"]["code"], 200);
        assert_eq!(ok["server"]["id"], "N");
        let refused = ClaimsAnswer::Refused { account: "n/a".into(), description: "jwt validation failed - x".into() };
        let refused: Value = serde_json::from_slice(&update_answer(json!({}), &refused).unwrap()).unwrap();
        assert_eq!(refused["error"]["code"], 500);
    }
}
