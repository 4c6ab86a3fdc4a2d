//! One traced message on its way through this server: the steps it took
//! (in, subject mapping, stream export, service import, egress), gathered
//! by the publisher's [`super::Fanout`] while it delivers, and rendered
//! as nats-server's event JSON once delivery is done. The wire format is
//! `proto::msg_trace`; who may trace (the destination checked against the
//! publisher's publish permissions) is the session's decision, made before
//! a `Trace` exists.
//!
//! A `Trace` lives for one message and is owned by the publisher's
//! reader; nothing here takes a lock but a subscriber's `meta` (for its
//! name), once per egress of a traced message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::account::Account;
use super::{Client, ClientKind};
use crate::proto::msg_trace::{self, kind, Event, RequestInfo, Server, Step};

/// Most steps one event records: a message that fans out to more
/// subscribers has the rest left out, so an event stays within a few
/// hundred KiB however wide the fan-out.
pub const MAX_STEPS: usize = 1024;

/// Events sent by this process (the `seq` of their `server`).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// A message being traced (see the module doc).
#[derive(Debug)]
pub struct Trace {
    /// Where the event goes.
    pub dest: Box<[u8]>,
    /// The account the event is published in (the publisher's).
    pub account: Arc<Account>,
    /// Trace only: local subscribers are not delivered to.
    pub only: bool,
    request: RequestInfo,
    steps: Vec<Step>,
    /// The hop id the message arrived with (from a peer server).
    hop: Option<String>,
    /// Peers it was sent on to, traced.
    hops: u32,
}

/// The `server` of this server's events (`seq` and `time` are filled in
/// when one is rendered).
pub fn trace_server(broker: &super::Broker) -> Server {
    Server {
        name: broker.identity.name.clone(),
        host: broker.opts.host.clone(),
        id: broker.identity.id.clone(),
        cluster: broker.opts.cluster.as_ref().and_then(|c| c.name.clone()),
        ver: crate::proto::NATS_VERSION,
        tags: broker.opts.server_tags.clone(),
        jetstream: false,
        seq: 0,
        time: String::new(),
    }
}

/// RFC 3339 in UTC with nanoseconds (Go's `time.Time` JSON form).
fn now() -> String {
    OffsetDateTime::from(SystemTime::now()).format(&Rfc3339).unwrap_or_default()
}

fn kind_of(client: &Client) -> u8 {
    match client.kind {
        ClientKind::Route => kind::ROUTER,
        ClientKind::Leaf => kind::LEAF,
        ClientKind::Gateway => kind::GATEWAY,
        ClientKind::Client | ClientKind::Internal => kind::CLIENT,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Trace {
    /// A trace of a message `publisher` sent to `subject` in `account`,
    /// with the request's headers and size, events going to `dest`.
    pub fn start(
        request: msg_trace::Request,
        dest: Box<[u8]>,
        only: bool,
        publisher: &Client,
        account: Arc<Account>,
        subject: &[u8],
        msgsize: usize,
    ) -> Trace {
        let name = publisher.meta.lock().name.clone().unwrap_or_default();
        let ingress = Step::Ingress {
            ts: now(),
            kind: kind_of(publisher),
            cid: publisher.id,
            name,
            acc: account.name.to_string(),
            subj: text(subject),
            error: String::new(),
        };
        Trace {
            dest,
            account,
            only,
            request: RequestInfo { header: request.headers, msgsize },
            steps: vec![ingress],
            hop: None,
            hops: 0,
        }
    }

    /// The message came from peer server `name` with hop id `hop`.
    pub fn arrived_via(mut self, hop: Option<String>, name: String) -> Trace {
        self.hop = hop;
        if let Some(Step::Ingress { name: n, .. }) = self.steps.first_mut() {
            *n = name;
        }
        self
    }

    /// The hop id for the next peer the message is sent to, traced:
    /// `<arrived hop>.<n>`, or `<n>` on the first server.
    pub fn next_hop(&mut self) -> String {
        self.hops += 1;
        match &self.hop {
            Some(hop) => format!("{hop}.{}", self.hops),
            None => self.hops.to_string(),
        }
    }

    /// The message went to peer server `to` (`name`), traced, as `hop`.
    pub fn egress_hop(&mut self, to: &Client, name: String, hop: String) {
        self.push(Step::Egress {
            ts: now(),
            kind: kind_of(to),
            cid: to.id,
            name,
            hop,
            acc: String::new(),
            sub: String::new(),
            queue: String::new(),
            error: String::new(),
        });
    }

    fn push(&mut self, step: Step) {
        if self.steps.len() < MAX_STEPS {
            self.steps.push(step);
        }
    }

    /// The message went no further than this server's ingress: `error`.
    pub fn refused(&mut self, error: String) {
        if let Some(Step::Ingress { error: e, .. }) = self.steps.first_mut() {
            *e = error;
        }
    }

    /// A subject mapping rewrote the subject to `to`.
    pub fn mapped(&mut self, to: &[u8]) {
        self.push(Step::SubjectMapping { ts: now(), to: text(to) });
    }

    /// The message crossed a stream export into `importer`, as `to`.
    pub fn stream_export(&mut self, importer: &str, to: &[u8]) {
        self.push(Step::StreamExport { ts: now(), acc: importer.to_owned(), to: text(to) });
    }

    /// The message crossed a service import into `exporter`.
    pub fn service_import(&mut self, exporter: &str, from: &[u8], to: &[u8]) {
        self.push(Step::ServiceImport { ts: now(), acc: exporter.to_owned(), from: text(from), to: text(to) });
    }

    /// The message went (or, with `error`, did not go) to `to`: a client's
    /// subscription `sub` (subject and queue) in `account`, or a peer.
    pub fn egress(&mut self, to: &Client, sub: Option<(&[u8], Option<&[u8]>)>, account: &str, error: &str) {
        let ingress_account = match self.steps.first() {
            Some(Step::Ingress { acc, .. }) => acc.as_str(),
            _ => "",
        };
        let kind = kind_of(to);
        let acc = if kind != kind::ROUTER && account != ingress_account { account.to_owned() } else { String::new() };
        let (sub, queue) = match sub {
            Some((subject, queue)) if kind == kind::CLIENT => (text(subject), queue.map(text).unwrap_or_default()),
            _ => (String::new(), String::new()),
        };
        let name = to.meta.lock().name.clone().unwrap_or_default();
        self.push(Step::Egress {
            ts: now(),
            kind,
            cid: to.id,
            name,
            hop: String::new(),
            acc,
            sub,
            queue,
            error: error.to_owned(),
        });
    }

    /// The event as nats-server's JSON, from server `server` (its `seq`
    /// and `time` filled in here).
    pub fn render(self, mut server: Server) -> Vec<u8> {
        server.seq = SEQ.fetch_add(1, Ordering::Relaxed) + 1;
        server.time = now();
        let event = Event { server, request: self.request, hops: self.hops, events: self.steps };
        serde_json::to_vec(&event).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn steps_are_recorded_in_order_and_bounded() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let publisher = Client::new(7, addr, 1024);
        publisher.meta.lock().name = Some("pub".into());
        let account = Arc::new(Account::new("A".into(), false));
        let request = msg_trace::scan(b"NATS/1.0\r\nNats-Trace-Dest: t\r\n\r\n").unwrap();
        let mut trace = Trace::start(request, (*b"t").into(), false, &publisher, account, b"foo", 33);
        trace.mapped(b"bar");
        let sub = Client::new(8, addr, 1024);
        for _ in 0..MAX_STEPS + 5 {
            trace.egress(&sub, Some((b"bar", Some(b"q"))), "B", "");
        }
        assert_eq!(trace.steps.len(), MAX_STEPS);
        let json: serde_json::Value = serde_json::from_slice(&trace.render(Server::example(0, ""))).unwrap();
        let events = json["events"].as_array().unwrap();
        assert_eq!(events[0]["type"], "in");
        assert_eq!(events[0]["name"], "pub");
        assert_eq!(events[0]["subj"], "foo");
        assert_eq!(events[1]["to"], "bar");
        assert_eq!(events[2]["acc"], "B");
        assert_eq!(events[2]["queue"], "q");
        assert_eq!(json["request"]["msgsize"], 33);
    }
}
