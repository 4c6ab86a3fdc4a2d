//! What a `$SYS` request asks for, read from its subject and body, and the
//! envelope the answer goes out in. Pure functions: the service task
//! (`super`) looks the data up and publishes.
//!
//! Subjects are nats-server 2.9.10's (plus `IDZ`, `KICK` and
//! `$SYS.REQ.USER.INFO` from 2.10+). In the system account every request
//! is served; in any other account only the four that nats-server lets
//! every account make about itself, and those answer with that account's
//! data only.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{Permissions, SubjectRules};
use crate::monitor::{ApiFailure, Endpoint};

/// `$SYS.REQ.SERVER.PING`: every server answers with its statistics.
pub const SERVER_PING: &[u8] = b"$SYS.REQ.SERVER.PING";
/// `$SYS.REQ.USER.INFO`: the requester's own user, account and permissions.
pub const USER_INFO: &[u8] = b"$SYS.REQ.USER.INFO";
pub use crate::perms::system_space::SELF_SERVICE;

/// The system account's subscriptions that peers hear of, as patterns
/// (`{id}` is this server's id).
pub const SYSTEM_SUBJECTS: [&str; 4] =
    ["$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.PING.*", "$SYS.REQ.SERVER.{id}.*", "$SYS.REQ.ACCOUNT.*.*"];

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `STATSZ` (also the bare `$SYS.REQ.SERVER.PING`).
    Stats,
    /// `IDZ`: name, host and id.
    Idz,
    /// One monitoring endpoint, for the whole server.
    Endpoint(Endpoint),
    /// `KICK`: close the connection `{"cid": N}`.
    Kick,
    /// `RELOAD`: reload the configuration file.
    Reload,
    /// About one account: its connections, subscriptions, details or statistics.
    Account {
        /// The account's name.
        name: String,
        /// The system account's `$SYS.REQ.ACCOUNT.PING.STATZ`: about the
        /// accounts the body lists. Never set for another account's
        /// self-service request, whatever that account is called.
        every: bool,
        /// Which.
        what: AccountRequest,
    },
    /// The requester's own user and account.
    UserInfo,
}

/// The account requests (`$SYS.REQ.ACCOUNT.<name>.<X>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRequest {
    /// `CONNZ`.
    Connz,
    /// `SUBSZ`.
    Subsz,
    /// `INFO`: `/accountz`'s account detail.
    Info,
    /// `STATZ`.
    Statz,
}

/// Reads a request's subject. `account` is the account it was published
/// in and `system` whether that is the system account; `server_id` is this
/// server's id. `None`: not a request this server answers.
pub fn parse(subject: &[u8], account: &str, system: bool, server_id: &str) -> Option<Request> {
    if !system {
        let what = match subject {
            b"$SYS.REQ.ACCOUNT.PING.CONNZ" | b"$SYS.REQ.SERVER.PING.CONNZ" => AccountRequest::Connz,
            b"$SYS.REQ.ACCOUNT.PING.STATZ" => AccountRequest::Statz,
            USER_INFO => return Some(Request::UserInfo),
            _ => return None,
        };
        return Some(Request::Account { name: account.to_owned(), every: false, what });
    }
    if subject == SERVER_PING {
        return Some(Request::Stats);
    }
    if subject == USER_INFO {
        return Some(Request::UserInfo);
    }
    let text = std::str::from_utf8(subject).ok()?;
    let tokens: Vec<&str> = text.split('.').collect();
    match tokens.as_slice() {
        ["$SYS", "REQ", "SERVER", target, name] if *target == "PING" || *target == server_id => match *name {
            "STATSZ" => Some(Request::Stats),
            "IDZ" => Some(Request::Idz),
            "KICK" if *target == server_id => Some(Request::Kick),
            "RELOAD" if *target == server_id => Some(Request::Reload),
            other => Endpoint::from_request_token(other.as_bytes()).map(Request::Endpoint),
        },
        ["$SYS", "REQ", "ACCOUNT", name, what] => {
            let what = match *what {
                "CONNZ" => AccountRequest::Connz,
                "SUBSZ" => AccountRequest::Subsz,
                "INFO" => AccountRequest::Info,
                "STATZ" => AccountRequest::Statz,
                _ => return None,
            };
            Some(Request::Account { name: (*name).to_owned(), every: *name == "PING", what })
        }
        _ => None,
    }
}

/// The request body: nats-server's filter options (which servers should
/// answer) next to the endpoint's own options. An empty body asks every
/// server with default options.
#[derive(Debug, Default)]
pub struct Body {
    /// Every option, for the endpoint to read its own.
    pub options: Map<String, Value>,
}

impl Body {
    /// Parses `payload`: empty, or a JSON object.
    pub fn parse(payload: &[u8]) -> Result<Body, ApiFailure> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body::default());
        }
        let options = match serde_json::from_slice::<Value>(payload) {
            Ok(Value::Object(options)) => options,
            _ => return Err(ApiFailure::bad_request("request body is not a JSON object")),
        };
        // nats-server answers a `tags` it cannot read as strings with a 400.
        match options.get("tags") {
            None | Some(Value::Null) => {}
            Some(Value::Array(tags)) if tags.iter().all(Value::is_string) => {}
            Some(_) => return Err(ApiFailure::bad_request("request tags must be a list of strings")),
        }
        Ok(Body { options })
    }

    fn text(&self, key: &str) -> &str {
        self.options.get(key).and_then(Value::as_str).unwrap_or("")
    }

    /// Whether this server is one the filter options select (nats-server's
    /// `filterRequest`: substring matches on name, host and cluster, or
    /// equality with `exact_match`, which the `nats` CLI sets when it asks
    /// one server by name; every requested tag must be one of this
    /// server's `server_tags`, trimmed and without regard to case, as
    /// nats-server 2.15 compares them; no JetStream domain).
    pub fn selects(&self, server: &ServerFacts<'_>) -> bool {
        let exact = self.options.get("exact_match").and_then(Value::as_bool).unwrap_or(false);
        let matches =
            |have: &str, wanted: &str| wanted.is_empty() || if exact { have == wanted } else { have.contains(wanted) };
        let cluster = self.text("cluster");
        // `parse` let only strings through; the server's own are lower case.
        let wanted = self.options.get("tags").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let holds = |tag: &str| server.tags.iter().any(|own| own.eq_ignore_ascii_case(tag.trim()));
        let has_tags = wanted.iter().all(|t| t.as_str().is_some_and(holds));
        matches(server.name, self.text("server_name"))
            && matches(server.host, self.text("host"))
            && (cluster.is_empty() || server.cluster.is_some_and(|c| matches(c, cluster)))
            && has_tags
            && self.text("domain").is_empty()
    }

    /// `STATZ`'s `include_unused`.
    pub fn include_unused(&self) -> bool {
        self.options.get("include_unused").and_then(Value::as_bool).unwrap_or(false)
    }

    /// `STATZ`'s `accounts`, when given as a list of names.
    pub fn accounts(&self) -> Vec<String> {
        let list = self.options.get("accounts").and_then(Value::as_array);
        list.map(|l| l.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
    }

    /// `KICK`'s `cid`.
    pub fn cid(&self) -> Option<u64> {
        self.options.get("cid").and_then(Value::as_u64)
    }
}

/// The facts about this server that answers carry and filters match.
#[derive(Debug, Clone, Copy)]
pub struct ServerFacts<'a> {
    /// `server_name`, or the id.
    pub name: &'a str,
    /// The client listener's host.
    pub host: &'a str,
    /// The server's id.
    pub id: &'a str,
    /// The cluster's name.
    pub cluster: Option<&'a str>,
    /// `server_tags`.
    pub tags: &'a [String],
    /// `server_metadata`.
    pub metadata: &'a BTreeMap<String, String>,
}

/// nats-server's `ServerInfo`, at the head of every answer and event.
#[derive(Debug, Serialize)]
pub struct ServerInfo<'a> {
    name: &'a str,
    host: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    ver: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, String>,
    seq: u64,
    jetstream: bool,
    time: String,
}

impl<'a> ServerInfo<'a> {
    /// The head for message number `seq` of this server, sent at `time`.
    pub fn new(facts: &ServerFacts<'a>, seq: u64, time: String) -> Self {
        ServerInfo {
            name: facts.name,
            host: facts.host,
            id: facts.id,
            cluster: facts.cluster,
            ver: crate::proto::NATS_VERSION,
            tags: facts.tags,
            metadata: facts.metadata,
            seq,
            jetstream: false,
            time,
        }
    }
}

/// A permission block in nats-server's JSON (`publish`/`subscribe` with
/// `allow`/`deny`, `responses` with `max` and `ttl` in nanoseconds).
pub fn permissions_json(rules: &Permissions) -> Value {
    let side = |r: &SubjectRules| {
        let mut side = Map::new();
        if let Some(allow) = &r.allow {
            side.insert("allow".into(), allow.clone().into());
        }
        if let Some(deny) = &r.deny {
            side.insert("deny".into(), deny.clone().into());
        }
        // warden's own; absent unless the user has literal rules, so the
        // answer stays nats-server's shape for everyone else.
        if let Some(literal) = &r.literal {
            side.insert("literal".into(), literal.clone().into());
        }
        Value::Object(side)
    };
    let mut out = Map::new();
    if let Some(p) = &rules.publish {
        out.insert("publish".into(), side(p));
    }
    if let Some(s) = &rules.subscribe {
        out.insert("subscribe".into(), side(s));
    }
    if let Some(r) = &rules.allow_responses {
        let ttl = u64::try_from(r.expires.as_nanos()).unwrap_or(u64::MAX);
        out.insert("responses".into(), serde_json::json!({ "max": r.max.unwrap_or(0), "ttl": ttl }));
    }
    Value::Object(out)
}

#[derive(Serialize)]
struct Failure {
    code: u16,
    description: std::borrow::Cow<'static, str>,
}

/// `{"server": ..., "data": ...}`, or `"error"` instead of `"data"`
/// (nats-server's `ServerAPIResponse`).
pub fn envelope(server: &ServerInfo<'_>, data: Result<Value, ApiFailure>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        server: &'a ServerInfo<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Failure>,
    }
    let (data, error) = match data {
        // nats-server leaves `data` out when there is none (KICK, RELOAD).
        Ok(Value::Null) => (None, None),
        Ok(data) => (Some(data), None),
        Err(f) => (None, Some(Failure { code: f.code, description: f.description })),
    };
    serde_json::to_vec(&Envelope { server, data, error }).unwrap_or_default()
}

/// `{"server": ..., "statsz": ...}` (nats-server's `ServerStatsMsg`).
pub fn stats_message(server: &ServerInfo<'_>, statsz: Value) -> Vec<u8> {
    #[derive(Serialize)]
    struct Stats<'a> {
        server: &'a ServerInfo<'a>,
        statsz: Value,
    }
    serde_json::to_vec(&Stats { server, statsz }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "NSERVER";

    fn sys(subject: &str) -> Option<Request> {
        parse(subject.as_bytes(), "SYS", true, ID)
    }

    #[test]
    fn system_account_subjects() {
        assert_eq!(sys("$SYS.REQ.SERVER.PING"), Some(Request::Stats));
        assert_eq!(sys("$SYS.REQ.SERVER.PING.STATSZ"), Some(Request::Stats));
        assert_eq!(sys("$SYS.REQ.SERVER.PING.VARZ"), Some(Request::Endpoint(Endpoint::Varz)));
        assert_eq!(sys("$SYS.REQ.SERVER.NSERVER.CONNZ"), Some(Request::Endpoint(Endpoint::Connz)));
        assert_eq!(sys("$SYS.REQ.SERVER.NSERVER.IDZ"), Some(Request::Idz));
        assert_eq!(sys("$SYS.REQ.SERVER.NSERVER.KICK"), Some(Request::Kick));
        // Another server's requests, a KICK to every server, unknown endpoints.
        assert_eq!(sys("$SYS.REQ.SERVER.NOTME.VARZ"), None);
        assert_eq!(sys("$SYS.REQ.SERVER.PING.KICK"), None);
        assert_eq!(sys("$SYS.REQ.SERVER.NSERVER.RELOAD"), Some(Request::Reload));
        assert_eq!(sys("$SYS.REQ.SERVER.PING.RELOAD"), None);
        assert_eq!(sys("$SYS.REQ.SERVER.PING.JSZ"), None);
        assert_eq!(
            sys("$SYS.REQ.ACCOUNT.A.SUBSZ"),
            Some(Request::Account { name: "A".into(), every: false, what: AccountRequest::Subsz })
        );
        assert_eq!(sys("$SYS.REQ.ACCOUNT.A.CONNS"), None);
        assert_eq!(sys("$SYS.REQ.USER.INFO"), Some(Request::UserInfo));
    }

    #[test]
    fn other_accounts_ask_about_themselves_only() {
        let own = |s: &str| parse(s.as_bytes(), "A", false, ID);
        let connz = Some(Request::Account { name: "A".into(), every: false, what: AccountRequest::Connz });
        assert_eq!(own("$SYS.REQ.ACCOUNT.PING.CONNZ"), connz);
        assert_eq!(own("$SYS.REQ.SERVER.PING.CONNZ"), connz);
        assert_eq!(
            own("$SYS.REQ.ACCOUNT.PING.STATZ"),
            Some(Request::Account { name: "A".into(), every: false, what: AccountRequest::Statz })
        );
        // An account named PING asks about itself, never about every account.
        let ping = parse(b"$SYS.REQ.ACCOUNT.PING.STATZ", "PING", false, ID);
        assert_eq!(ping, Some(Request::Account { name: "PING".into(), every: false, what: AccountRequest::Statz }));
        let sys_ping = parse(b"$SYS.REQ.ACCOUNT.PING.STATZ", "SYS", true, ID);
        assert_eq!(sys_ping, Some(Request::Account { name: "PING".into(), every: true, what: AccountRequest::Statz }));
        assert_eq!(own("$SYS.REQ.USER.INFO"), Some(Request::UserInfo));
        for other in ["$SYS.REQ.SERVER.PING", "$SYS.REQ.ACCOUNT.B.CONNZ", "$SYS.REQ.SERVER.NSERVER.VARZ"] {
            assert_eq!(own(other), None, "{other}");
        }
    }

    #[test]
    fn bodies_and_filters() {
        let (tags, metadata) = (vec!["az:1".to_owned(), "rack:b".to_owned()], BTreeMap::new());
        let facts = ServerFacts {
            name: "n1",
            host: "127.0.0.1",
            id: ID,
            cluster: Some("east"),
            tags: &tags,
            metadata: &metadata,
        };
        assert!(Body::parse(b"").unwrap().selects(&facts));
        assert!(Body::parse(br#"{"server_name":"n"}"#).unwrap().selects(&facts));
        assert!(!Body::parse(br#"{"server_name":"n2"}"#).unwrap().selects(&facts));
        assert!(Body::parse(br#"{"cluster":"ea"}"#).unwrap().selects(&facts));
        assert!(!Body::parse(br#"{"cluster":"west"}"#).unwrap().selects(&facts));
        assert!(!Body::parse(br#"{"tags":["x"]}"#).unwrap().selects(&facts));
        // Every tag must be held, compared trimmed and case-blind (nats-server 2.15.1).
        assert!(Body::parse(br#"{"tags":["AZ:1 ","rack:b"]}"#).unwrap().selects(&facts));
        assert!(!Body::parse(br#"{"tags":["az:1","x"]}"#).unwrap().selects(&facts));
        assert!(Body::parse(br#"{"tags":[]}"#).unwrap().selects(&facts));
        assert!(Body::parse(br#"{"tags":[1]}"#).is_err());
        assert!(Body::parse(br#"{"tags":"az:1"}"#).is_err());
        assert!(!Body::parse(br#"{"domain":"hub"}"#).unwrap().selects(&facts));
        // `nats server request --name n1` asks for exactly n1, never n10.
        let exact = |body: &str| Body::parse(body.as_bytes()).unwrap().selects(&facts);
        assert!(exact(r#"{"server_name":"n1","exact_match":true}"#));
        assert!(!exact(r#"{"server_name":"n","exact_match":true}"#));
        assert!(!exact(r#"{"cluster":"ea","exact_match":true}"#));
        assert!(exact(r#"{"cluster":"east","host":"127.0.0.1","exact_match":true}"#));
        assert!(Body::parse(b"[1]").is_err());
        assert!(Body::parse(b"{").is_err());
        assert_eq!(Body::parse(br#"{"cid":7}"#).unwrap().cid(), Some(7));
    }

    #[test]
    fn permissions_read_as_nats_server_writes_them() {
        let rules = Permissions {
            publish: Some(SubjectRules { allow: Some(vec!["a.>".into()]), deny: None, literal: None }),
            subscribe: Some(SubjectRules { allow: None, deny: Some(vec!["b".into()]), literal: None }),
            allow_responses: Some(crate::config::ResponsePermission {
                max: Some(2),
                expires: std::time::Duration::from_secs(1),
            }),
        };
        assert_eq!(
            permissions_json(&rules),
            serde_json::json!({
                "publish": {"allow": ["a.>"]},
                "subscribe": {"deny": ["b"]},
                "responses": {"max": 2, "ttl": 1_000_000_000u64},
            })
        );
    }

    #[test]
    fn envelopes_have_nats_servers_shape() {
        let metadata = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        let tags = vec!["az:1".to_owned()];
        let facts = ServerFacts { name: "n1", host: "h", id: ID, cluster: None, tags: &tags, metadata: &metadata };
        let info = ServerInfo::new(&facts, 3, "2026-12-02T00:00:00Z".into());
        let ok: Value = serde_json::from_slice(&envelope(&info, Ok(serde_json::json!({"a": 1})))).unwrap();
        assert_eq!(ok["server"]["id"], ID);
        assert_eq!(ok["server"]["seq"], 3);
        assert_eq!(ok["server"]["ver"], crate::proto::NATS_VERSION);
        assert_eq!(ok["data"]["a"], 1);
        assert!(ok.get("error").is_none() && ok["server"].get("cluster").is_none());
        let err: Value = serde_json::from_slice(&envelope(&info, Err(ApiFailure::bad_request("x")))).unwrap();
        assert_eq!(err["error"]["code"], 400);
        assert!(err.get("data").is_none());
        let stats: Value = serde_json::from_slice(&stats_message(&info, serde_json::json!({"mem": 1}))).unwrap();
        assert_eq!(stats["statsz"]["mem"], 1);
    }
}
