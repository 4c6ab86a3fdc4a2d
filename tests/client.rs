//! A stock `async-nats` client against warden: everything a user of
//! nats-server does with core pub/sub.

mod common;

use async_nats::{ConnectOptions, HeaderMap};
use bytes::Bytes;
use common::*;
use futures::StreamExt;

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    within(sub.next()).await.expect("subscription ended")
}

#[tokio::test]
async fn pubsub_and_wildcards() {
    let server = start(test_options()).await;
    let client = within(async_nats::connect(url(&server))).await.unwrap();
    let mut exact = client.subscribe("hello").await.unwrap();
    let mut star = client.subscribe("svc.*.up").await.unwrap();
    let mut full = client.subscribe("svc.>").await.unwrap();
    client.flush().await.unwrap();
    client.publish("hello", "world".into()).await.unwrap();
    client.publish("svc.a.up", "1".into()).await.unwrap();
    client.publish("svc.a.b.c", "2".into()).await.unwrap();
    let m = next(&mut exact).await;
    assert_eq!((m.subject.as_str(), &m.payload[..]), ("hello", &b"world"[..]));
    assert_eq!(next(&mut star).await.subject.as_str(), "svc.a.up");
    assert_eq!(next(&mut full).await.payload, "1");
    assert_eq!(next(&mut full).await.payload, "2");
    server.shutdown().await;
}

#[tokio::test]
async fn queue_group_each_message_once() {
    let server = start(test_options()).await;
    let client = within(async_nats::connect(url(&server))).await.unwrap();
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(client.queue_subscribe("jobs", "workers".into()).await.unwrap());
    }
    client.flush().await.unwrap();
    let n = 60;
    for i in 0..n {
        client.publish("jobs", i.to_string().into()).await.unwrap();
    }
    client.flush().await.unwrap();
    let mut all = futures::stream::select_all(workers);
    let mut seen = Vec::new();
    for _ in 0..n {
        let m = within(all.next()).await.expect("a worker got it");
        seen.push(String::from_utf8(m.payload.to_vec()).unwrap().parse::<u32>().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>(), "every job exactly once");
    server.shutdown().await;
}

#[tokio::test]
async fn request_reply_and_no_responders() {
    let server = start(test_options()).await;
    let responder = within(async_nats::connect(url(&server))).await.unwrap();
    let mut service = responder.subscribe("service.B").await.unwrap();
    responder.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(req) = service.next().await {
            if let Some(reply) = req.reply {
                let mut answer = b"re: ".to_vec();
                answer.extend_from_slice(&req.payload);
                responder.publish(reply, answer.into()).await.unwrap();
            }
        }
    });
    let client = within(async_nats::connect(url(&server))).await.unwrap();
    let answer = within(client.request("service.B", "ping".into())).await.unwrap();
    assert_eq!(answer.payload, "re: ping");
    let err = within(client.request("nobody.home", "x".into())).await.unwrap_err();
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
    server.shutdown().await;
}

#[tokio::test]
async fn headers_round_trip() {
    let server = start(test_options()).await;
    let client = within(async_nats::connect(url(&server))).await.unwrap();
    let mut sub = client.subscribe("h").await.unwrap();
    client.flush().await.unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("X-Trace", "abc");
    client.publish_with_headers("h", headers, "body".into()).await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.headers.unwrap().get("X-Trace").map(|v| v.as_str()), Some("abc"));
    assert_eq!(m.payload, "body");
    server.shutdown().await;
}

#[tokio::test]
async fn unsubscribe_after_n() {
    let server = start(test_options()).await;
    let client = within(async_nats::connect(url(&server))).await.unwrap();
    let mut sub = client.subscribe("limited").await.unwrap();
    sub.unsubscribe_after(3).await.unwrap();
    client.flush().await.unwrap();
    for i in 0..10 {
        client.publish("limited", i.to_string().into()).await.unwrap();
    }
    let mut got = Vec::new();
    while let Some(m) = within(sub.next()).await {
        got.push(m.payload);
    }
    assert_eq!(got, vec!["0", "1", "2"]);
    server.shutdown().await;
}

#[tokio::test]
async fn echo_off_suppresses_own_messages() {
    let server = start(test_options()).await;
    let quiet = within(ConnectOptions::new().no_echo().connect(url(&server))).await.unwrap();
    let other = within(async_nats::connect(url(&server))).await.unwrap();
    let mut own = quiet.subscribe("e").await.unwrap();
    quiet.flush().await.unwrap();
    quiet.publish("e", "mine".into()).await.unwrap();
    quiet.flush().await.unwrap();
    other.publish("e", "theirs".into()).await.unwrap();
    assert_eq!(next(&mut own).await.payload, "theirs", "own message was not echoed");
    server.shutdown().await;
}

#[tokio::test]
async fn large_and_binary_payloads() {
    let server = start(test_options()).await;
    let client = within(async_nats::connect(url(&server))).await.unwrap();
    let mut sub = client.subscribe("bin").await.unwrap();
    client.flush().await.unwrap();
    let big: Bytes = (0..1024 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
    let binary: Bytes = Bytes::from_static(b"\0\r\n\xff\xfeMSG x 1 2\r\n");
    client.publish("bin", big.clone()).await.unwrap();
    client.publish("bin", binary.clone()).await.unwrap();
    client.publish("bin", Bytes::new()).await.unwrap();
    assert_eq!(next(&mut sub).await.payload, big);
    assert_eq!(next(&mut sub).await.payload, binary);
    assert!(next(&mut sub).await.payload.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn many_messages_in_order_to_a_fast_subscriber() {
    let server = start(test_options()).await;
    let publisher = within(async_nats::connect(url(&server))).await.unwrap();
    let subscriber = within(async_nats::connect(url(&server))).await.unwrap();
    let mut sub = subscriber.subscribe("seq").await.unwrap();
    subscriber.flush().await.unwrap();
    let n = 20_000u32;
    let pump = tokio::spawn(async move {
        for i in 0..n {
            publisher.publish("seq", i.to_be_bytes().to_vec().into()).await.unwrap();
        }
        publisher.flush().await.unwrap();
    });
    for i in 0..n {
        let m = next(&mut sub).await;
        assert_eq!(m.payload, i.to_be_bytes().to_vec());
    }
    within(pump).await.unwrap();
    server.shutdown().await;
}

/// Payloads large enough to be queued to subscribers by reference into the
/// publisher's read buffer (2 KiB and more) reach several subscriber
/// connections intact and in order, with and without headers, mixed with
/// small ones, across read batches.
#[tokio::test]
async fn large_payloads_reach_every_subscriber_intact() {
    let server = start(test_options()).await;
    let publisher = within(async_nats::connect(url(&server))).await.unwrap();
    let mut subs = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let client = within(async_nats::connect(url(&server))).await.unwrap();
        subs.push(client.subscribe("big.>").await.unwrap());
        client.flush().await.unwrap();
        clients.push(client);
    }
    let sizes = [16, 2047, 2048, 8192, 70_000, 300_000, 5, 8192];
    let payload = |i: usize, size: usize| -> Bytes { (0..size).map(|k| (k * 7 + i) as u8).collect::<Vec<u8>>().into() };
    for round in 0..20 {
        for (i, &size) in sizes.iter().enumerate() {
            let subject = format!("big.{round}.{i}");
            if i % 2 == 0 {
                publisher.publish(subject, payload(i + round, size)).await.unwrap();
            } else {
                let mut headers = HeaderMap::new();
                headers.insert("Round", round.to_string().as_str());
                publisher.publish_with_headers(subject, headers, payload(i + round, size)).await.unwrap();
            }
        }
    }
    publisher.flush().await.unwrap();
    for sub in &mut subs {
        for round in 0..20 {
            for (i, &size) in sizes.iter().enumerate() {
                let m = next(sub).await;
                assert_eq!(m.subject.as_str(), format!("big.{round}.{i}"));
                assert!(m.payload == payload(i + round, size), "payload of big.{round}.{i} ({size} bytes) differs");
                let round_header = m.headers.as_ref().and_then(|h| h.get("Round")).map(|v| v.as_str().to_owned());
                assert_eq!(round_header, (i % 2 == 1).then(|| round.to_string()));
            }
        }
    }
    server.shutdown().await;
}
