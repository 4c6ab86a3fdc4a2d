//! The monitoring data as one API with two transports: the HTTP endpoints
//! and the `$SYS` requests over NATS call the same functions, so the JSON
//! is the same wherever it is read. Over NATS the endpoint's options come
//! as the request body's JSON object (nats-server's `ConnzOptions` and so
//! on) and are read through the same option parser as a query string.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::http::{self, Body};
use super::query::{ApiError, Query};
use super::{accountz, connz, gatewayz, leafz, routez, statsz, subsz, varz, Monitor, Sources};

/// One monitoring endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/varz`, `VARZ`.
    Varz,
    /// `/connz`, `CONNZ`.
    Connz,
    /// `/subsz`, `SUBSZ`.
    Subsz,
    /// `/routez`, `ROUTEZ`.
    Routez,
    /// `/accountz`, `ACCOUNTZ`.
    Accountz,
    /// `/leafz`, `LEAFZ`.
    Leafz,
    /// `/gatewayz`, `GATEWAYZ`.
    Gatewayz,
    /// `/healthz`, `HEALTHZ`.
    Healthz,
    /// `STATSZ` (NATS only).
    Statsz,
}

impl Endpoint {
    /// The endpoint an HTTP path names.
    pub(super) fn from_path(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/varz" => Endpoint::Varz,
            "/connz" => Endpoint::Connz,
            "/subsz" | "/subscriptionsz" => Endpoint::Subsz,
            "/routez" => Endpoint::Routez,
            "/accountz" => Endpoint::Accountz,
            "/leafz" => Endpoint::Leafz,
            "/gatewayz" => Endpoint::Gatewayz,
            "/healthz" => Endpoint::Healthz,
            _ => return None,
        })
    }

    /// The endpoint the last token of `$SYS.REQ.SERVER.PING.<NAME>` names.
    pub fn from_request_token(token: &[u8]) -> Option<Endpoint> {
        Some(match token {
            b"VARZ" => Endpoint::Varz,
            b"CONNZ" => Endpoint::Connz,
            b"SUBSZ" => Endpoint::Subsz,
            b"ROUTEZ" => Endpoint::Routez,
            b"ACCOUNTZ" => Endpoint::Accountz,
            b"LEAFZ" => Endpoint::Leafz,
            b"GATEWAYZ" => Endpoint::Gatewayz,
            b"HEALTHZ" => Endpoint::Healthz,
            b"STATSZ" => Endpoint::Statsz,
            _ => return None,
        })
    }

    pub(super) fn answer(self, monitor: &Monitor, query: &Query) -> Result<Body, ApiError> {
        match self {
            Endpoint::Varz => varz::varz(monitor),
            Endpoint::Connz => connz::connz(monitor, query),
            Endpoint::Subsz => subsz::subsz(monitor, query),
            Endpoint::Routez => routez::routez(monitor, query),
            Endpoint::Accountz => accountz::accountz(monitor, query),
            Endpoint::Leafz => leafz::leafz(monitor, query),
            Endpoint::Gatewayz => gatewayz::gatewayz(monitor, query),
            Endpoint::Healthz => http::healthz(monitor),
            Endpoint::Statsz => statsz::statsz(monitor),
        }
    }

    /// nats-server's JSON option names for this endpoint and the query
    /// parameter each means. `subscriptions_detail` comes before
    /// `subscriptions`, so it wins when both are set.
    fn options(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Endpoint::Connz => &[
                ("sort", "sort"),
                ("auth", "auth"),
                ("subscriptions_detail", "subs"),
                ("subscriptions", "subs"),
                ("offset", "offset"),
                ("limit", "limit"),
                ("cid", "cid"),
                ("state", "state"),
                ("user", "user"),
                ("acc", "acc"),
            ],
            Endpoint::Subsz => &[
                ("offset", "offset"),
                ("limit", "limit"),
                ("subscriptions", "subs"),
                ("account", "acc"),
                ("test", "test"),
            ],
            Endpoint::Routez => &[("subscriptions_detail", "subs"), ("subscriptions", "subs")],
            Endpoint::Leafz => &[("subscriptions", "subs"), ("account", "acc")],
            Endpoint::Accountz => &[("account", "acc")],
            Endpoint::Gatewayz => &[("name", "gw_name")],
            Endpoint::Varz | Endpoint::Healthz | Endpoint::Statsz => &[],
        }
    }

    /// The query a `$SYS` request means: the pairs `scope` forces first (so
    /// nothing in the body can widen them), then the body's options.
    fn query(self, options: &Map<String, Value>, scope: Option<&str>) -> Result<Query, ApiFailure> {
        let mut pairs = Vec::new();
        if let Some(account) = scope {
            pairs.push(("acc".to_owned(), account.to_owned()));
            match self {
                Endpoint::Connz => pairs.push(("auth".to_owned(), "1".to_owned())),
                Endpoint::Subsz => pairs.push(("subs".to_owned(), "1".to_owned())),
                _ => {}
            }
        }
        for (name, key) in self.options() {
            let Some(value) = options.get(*name) else { continue };
            let text = match value {
                Value::Null | Value::Bool(false) => continue,
                Value::Bool(true) if *name == "subscriptions_detail" => "detail".to_owned(),
                Value::Bool(true) => "1".to_owned(),
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                Value::Array(_) | Value::Object(_) => return Err(ApiFailure::bad_request("invalid request options")),
            };
            pairs.push(((*key).to_owned(), text));
        }
        Ok(Query::from_pairs(pairs))
    }
}

/// Why a `$SYS` request got no data: nats-server's `ApiError` code and a
/// fixed description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// An HTTP status code.
    pub code: u16,
    /// Fixed text, or the server's own words (a refused reload's reason);
    /// never request input.
    pub description: std::borrow::Cow<'static, str>,
}

impl ApiFailure {
    /// 400 with `description`.
    pub const fn bad_request(description: &'static str) -> Self {
        ApiFailure { code: 400, description: std::borrow::Cow::Borrowed(description) }
    }
}

impl From<ApiError> for ApiFailure {
    fn from(err: ApiError) -> Self {
        ApiFailure { code: err.status.as_u16(), description: err.message.into() }
    }
}

/// The monitoring data, for the HTTP listener ([`super::start`]) and the
/// `$SYS` services. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MonitorApi(Arc<Monitor>);

impl MonitorApi {
    /// The data `sources` give.
    pub fn new(sources: Sources) -> Self {
        MonitorApi(Arc::new(Monitor::new(sources)))
    }

    pub(super) fn monitor(&self) -> &Arc<Monitor> {
        &self.0
    }

    /// `endpoint`'s answer to a request with `options`, limited to
    /// `account`'s connections or subscriptions when given.
    pub fn request(
        &self,
        endpoint: Endpoint,
        options: &Map<String, Value>,
        account: Option<&str>,
    ) -> Result<Value, ApiFailure> {
        let query = endpoint.query(options, account)?;
        into_value(endpoint.answer(&self.0, &query))
    }

    /// `/accountz?acc=NAME`'s `account_detail` (nats-server's `INFO`).
    pub fn account_info(&self, name: &str) -> Result<Value, ApiFailure> {
        let detail = accountz::account_detail(&self.0, name)?;
        into_value(Ok(detail))
    }

    /// Per-account statistics (`STATZ`) for `accounts` (all when empty).
    pub fn account_statz(&self, accounts: &[String], include_unused: bool) -> Result<Value, ApiFailure> {
        into_value(statsz::account_statz(&self.0, accounts, include_unused))
    }

    /// The cluster's name, if clustered and named.
    pub fn cluster_name(&self) -> Option<String> {
        self.0.cluster.as_ref().and_then(|c| c.name())
    }
}

fn into_value(body: Result<Body, ApiError>) -> Result<Value, ApiFailure> {
    match body? {
        Body::Json(value) => Ok(value),
        Body::Metrics(_) => Err(ApiError::internal().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(endpoint: Endpoint, body: &str, scope: Option<&str>) -> Vec<(String, String)> {
        let options: Map<String, Value> = serde_json::from_str(body).unwrap();
        endpoint.query(&options, scope).unwrap().pairs().to_vec()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn request_options_become_the_endpoints_query() {
        let got = query(Endpoint::Connz, r#"{"sort":"bytes_to","limit":5,"subscriptions":true,"auth":false}"#, None);
        assert_eq!(got, pairs(&[("sort", "bytes_to"), ("subs", "1"), ("limit", "5")]));
        let got = query(Endpoint::Routez, r#"{"subscriptions":true,"subscriptions_detail":true}"#, None);
        assert_eq!(got, pairs(&[("subs", "detail"), ("subs", "1")]));
        // Unknown options are ignored, as Go's json.Unmarshal does.
        assert!(query(Endpoint::Varz, r#"{"whatever":1}"#, None).is_empty());
        let options: Map<String, Value> = serde_json::from_str(r#"{"sort":["x"]}"#).unwrap();
        assert!(Endpoint::Connz.query(&options, None).is_err());
    }

    #[test]
    fn a_scope_comes_first_so_the_body_cannot_widen_it() {
        let got = query(Endpoint::Connz, r#"{"acc":"OTHER","auth":true}"#, Some("A"));
        assert_eq!(got[..2], pairs(&[("acc", "A"), ("auth", "1")])[..]);
        let q = Endpoint::Subsz.query(&serde_json::from_str(r#"{"account":"OTHER"}"#).unwrap(), Some("A")).unwrap();
        assert_eq!(q.get("acc"), Some("A"));
        assert_eq!(q.get("subs"), Some("1"));
    }
}
