//! Request/reply through a service import against the same round trip
//! inside one account: what renaming the request, opening and answering
//! its reply mapping and publishing the response in the importer cost.
//! Both go through the broker's own delivery code (`Fanout`), without
//! sockets: the requester publishes, the responder's queued MSG is read
//! for its reply subject, the responder publishes the answer, and the
//! requester's queued MSG is drained.

#[path = "support/fixed.rs"]
mod fixed;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use warden::broker::{Account, Broker, Client, Fanout, Message, Origin, ServerIdentity, Subscription};

const CONFIG: &str = r#"
accounts {
  A: { exports: [ {service: "svc.time", accounts: [B]} ] }
  B: { imports: [ {service: {account: A, subject: "svc.time"}, to: "time"} ] }
}
"#;

struct Setup {
    broker: Arc<Broker>,
    requester: Arc<Client>,
    responder: Arc<Client>,
    req_account: Arc<Account>,
    resp_account: Arc<Account>,
    request_subject: &'static [u8],
}

fn setup(imported: bool) -> Setup {
    let opts = warden::config::load_str(CONFIG, "bench.conf").unwrap_or_else(|e| panic!("{e}")).options;
    let addr = "127.0.0.1:4222".parse().unwrap_or_else(|_| unreachable!());
    let identity = ServerIdentity::new(None).unwrap_or_else(|e| panic!("{e}"));
    let broker = Arc::new(Broker::new(opts, addr, identity));
    broker.configure_accounts(&broker.opts.clone()).unwrap_or_else(|e| panic!("{e}"));
    let get = |name: &str| broker.accounts.get(name).unwrap_or_else(|| unreachable!());
    let (req_account, resp_account, request_subject): (_, _, &'static [u8]) =
        if imported { (get("B"), get("A"), b"time") } else { (get("A"), get("A"), b"svc.time") };
    let peer = "127.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!());
    let requester = broker.register(1, peer).unwrap_or_else(|_| unreachable!());
    let responder = broker.register(2, peer).unwrap_or_else(|_| unreachable!());
    let sub = |client: &Arc<Client>, account: &Arc<Account>, subject: &[u8]| {
        let sub = Subscription::new(client.clone(), account.clone(), subject, None, b"1", None);
        broker.add_subscription(Arc::new(sub));
    };
    sub(&responder, &resp_account, b"svc.time");
    sub(&requester, &req_account, b"_INBOX.r");
    Setup { broker, requester, responder, req_account, resp_account, request_subject }
}

/// Takes what is queued to `client`.
fn drain(client: &Client, into: &mut Vec<u8>) {
    let mut batch: VecDeque<Bytes> = VecDeque::new();
    into.clear();
    while client.outbound.pending() > 0 {
        client.outbound.take(&mut batch);
        for chunk in &batch {
            into.extend_from_slice(chunk);
        }
        client.outbound.written(&mut batch);
    }
}

fn round_trip(c: &mut Criterion) {
    let group_name = "request/reply";
    let mut group = c.benchmark_group(group_name);
    // "from a client": the fan-out of a client connection, which names the
    // requester in the `Nats-Request-Info` header it adds to an imported
    // request, as every client's request through an import carries.
    for (name, imported, from_client) in
        [("same account", false, false), ("service import", true, false), ("service import, from a client", true, true)]
    {
        let s = setup(imported);
        let mut fanout = if from_client { Fanout::of(&s.requester) } else { Fanout::new(1) };
        let mut bytes = Vec::with_capacity(256);
        fixed::run(&mut group, group_name, name, || {
            let now = Instant::now();
            let request = Message {
                subject: s.request_subject,
                reply: Some(b"_INBOX.r"),
                header_len: None,
                message: b"?",
                buffer: None,
            };
            let origin = Origin::Client { id: 1, echo: true };
            fanout.publish(&s.broker, &s.req_account, &request, origin, now);
            drain(&s.responder, &mut bytes);
            // "MSG svc.time 1 <reply> 1\r\n?\r\n" (or HMSG, with the header)
            let line_end = bytes.iter().position(|&b| b == b'\r').unwrap_or(bytes.len());
            let reply = bytes[..line_end].split(|&b| b == b' ').nth(3).unwrap_or_default().to_vec();
            let response = Message { subject: &reply, reply: None, header_len: None, message: b"12:00", buffer: None };
            fanout.publish(&s.broker, &s.resp_account, &response, Origin::Client { id: 2, echo: true }, now);
            drain(&s.requester, &mut bytes);
            assert!(bytes.starts_with(b"MSG _INBOX.r 1 5"));
            let _ = fanout.finish_batch();
        });
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
