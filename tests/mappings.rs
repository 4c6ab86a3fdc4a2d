//! Subject mappings, differentially: nats-server 2.15.1 and warden run the
//! same `mappings` config, async-nats clients publish the same subjects on
//! each, and what arrives must be the same: every function (`partition`
//! to the number), per-account mappings, the permission check on the
//! mapped subject (with the same `-ERR`), and, for weights and `random`,
//! the same distribution within bounds, the dropped rest included.

mod common;

use std::collections::BTreeMap;

use common::peers::{free_port, spawn_nats_server, NatsServer};
use common::{options_from, start, within, Raw};
use futures::StreamExt;
use warden::server::Server;

/// The mappings and users both servers run. Literal-source `partition` is
/// left out: nats-server hashes "" or the subject depending on its map
/// order there (SECURITY.md, "Subject mappings").
const CONFIG: &str = r#"
mappings {
  "orders.*": "orders.eu.{{wildcard(1)}}"
  "legacy.*.*": "new.$2.$1.$1"
  "part.*.*": "part.{{partition(5,1,2)}}.$1.$2"
  "pall.>": "pall.{{partition(7)}}.>"
  "pone.*.*": "pone.{{Partition(16,2)}}"
  "sfl.*": "sfl.{{splitFromLeft(1,2)}}"
  "sfr.*": "sfr.{{SplitFromRight(1,2)}}"
  "slfl.*": "slfl.{{sliceFromLeft(1,2)}}"
  "slfr.*": "slfr.{{sliceFromRight(1,2)}}"
  "sp.*": "sp.{{split(1,-)}}"
  "lft.*": "lft.{{left(1,3)}}"
  "rgt.*": "rgt.{{right(1,3)}}"
  "drop.*.*": "drop.$2"
  "rnd.*": "rnd.{{random(4)}}.$1"
  "canary": [ {destination: "canary.v1", weight: 80%}, {destination: "canary.v2", weight: "20%"} ]
  "lossy": [ {destination: "lossy", weight: 30}, {destination: "lossy.b", weight: 20} ]
  "rest.*": [ {destination: "rest.moved.$1", weight: 40} ]
  "foo": "bar"
}
authorization { users = [
  {user: all, password: p}
  {user: only_bar, password: p, permissions: {publish: ["bar", "zz.>"]}}
  {user: only_foo, password: p, permissions: {publish: ["foo", "zz.>"]}}
] }
accounts {
  A { users = [ {user: a, password: p} ], mappings { "a.*": "a.mapped.{{wildcard(1)}}" } }
}
"#;

/// The subjects whose mapping is deterministic, published in this order.
fn deterministic_subjects() -> Vec<String> {
    let mut subjects: Vec<String> = [
        "orders.42",
        "legacy.x.y",
        "sfl.abcde",
        "sfl.a",
        "sfr.abcde",
        "slfl.abcde",
        "slfl.ab",
        "slfr.abcdefg",
        "sp.a--b-c",
        "sp.-a-",
        "lft.abcdef",
        "lft.ab",
        "rgt.abcdef",
        "drop.1.2",
        "foo",
        "unmapped.x",
        "pall.x.y.z",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Partition numbers over many keys, including non-ASCII bytes.
    for i in 0..150 {
        subjects.push(format!("part.k{i}.{}", i * 7919 % 1000));
        subjects.push(format!("pone.x.é{i}"));
        subjects.push(format!("pall.{i}.ü.{}", i % 3));
    }
    subjects
}

/// A server under test.
enum Under {
    Warden(Server),
    /// The child (killed when dropped) and its URL.
    Reference(#[allow(dead_code)] NatsServer, String),
}

impl Under {
    fn url(&self) -> String {
        match self {
            Under::Warden(server) => common::url(server),
            Under::Reference(_, url) => url.clone(),
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.url().trim_start_matches("nats://").parse().unwrap()
    }
}

async fn warden() -> Under {
    Under::Warden(start(options_from(CONFIG)).await)
}

fn reference() -> Option<Under> {
    let binary = common::deps::nats_server_2_15()?;
    let port = free_port();
    let config = format!("listen: \"127.0.0.1:{port}\"\n{CONFIG}");
    Some(Under::Reference(spawn_nats_server(&binary, "mappings-ref", &config), format!("nats://127.0.0.1:{port}")))
}

async fn connect(url: &str, user: &str) -> async_nats::Client {
    common::peers::login_retrying(url, user, "p").await
}

/// A subscriber on everything, known to be registered: its own probe,
/// published on its own connection, came back through the server.
async fn watch_all(url: &str, user: &str) -> (async_nats::Client, async_nats::Subscriber) {
    let client = connect(url, user).await;
    let mut sub = client.subscribe(">").await.unwrap();
    client.publish("zz.probe", "".into()).await.unwrap();
    within(async {
        while let Some(msg) = sub.next().await {
            if msg.subject.as_str() == "zz.probe" {
                return;
            }
        }
    })
    .await;
    (client, sub)
}

/// Publishes `subjects` as `user`, then `zz.end`, and returns the subjects
/// `sub` received before `zz.end`, in order (one publisher: in order).
async fn published(url: &str, user: &str, subjects: &[String], sub: &mut async_nats::Subscriber) -> Vec<String> {
    let publisher = connect(url, user).await;
    for s in subjects {
        publisher.publish(s.clone(), "".into()).await.unwrap();
    }
    publisher.publish("zz.end", "".into()).await.unwrap();
    publisher.flush().await.unwrap();
    within(async {
        let mut got = Vec::new();
        while let Some(msg) = sub.next().await {
            match msg.subject.as_str() {
                "zz.end" => return got,
                s => got.push(s.to_owned()),
            }
        }
        got
    })
    .await
}

/// What arrived for each deterministic subject, on one server.
async fn deterministic_run(under: &Under) -> Vec<String> {
    let (_watcher, mut sub) = watch_all(&under.url(), "all").await;
    published(&under.url(), "all", &deterministic_subjects(), &mut sub).await
}

#[tokio::test]
async fn every_function_maps_as_nats_server_does() {
    let Some(reference) = reference() else { return };
    let want = deterministic_run(&reference).await;
    let got = deterministic_run(&warden().await).await;
    // `sp.-a-` and the like are the same; nothing is invalid here, so
    // both delivered every subject, in order.
    assert_eq!(want.len(), deterministic_subjects().len(), "{want:?}");
    assert_eq!(got, want);
    assert!(got.contains(&"orders.eu.42".to_owned()) && got.contains(&"bar".to_owned()), "{got:?}");
}

/// Counts of the subjects a run of `n` publishes of `subject` arrived on.
async fn spread(under: &Under, subject: &str, n: usize) -> BTreeMap<String, usize> {
    let (_watcher, mut sub) = watch_all(&under.url(), "all").await;
    let subjects = vec![subject.to_owned(); n];
    let mut counts = BTreeMap::new();
    for s in published(&under.url(), "all", &subjects, &mut sub).await {
        *counts.entry(s).or_default() += 1;
    }
    counts
}

/// Whether `count` of `n` is within 5 standard deviations of `percent`.
fn near(count: usize, n: usize, percent: f64) -> bool {
    let p = percent / 100.0;
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (count as f64 - mean).abs() <= 5.0 * sd.max(1.0)
}

#[tokio::test]
async fn weights_and_random_spread_alike_and_drop_the_same_rest() {
    let Some(reference) = reference() else { return };
    let warden = warden().await;
    const N: usize = 2000;
    for under in [&reference, &warden] {
        let which = match under {
            Under::Warden(_) => "warden",
            Under::Reference(..) => "nats-server",
        };
        let canary = spread(under, "canary", N).await;
        let v1 = canary.get("canary.v1").copied().unwrap_or(0);
        let v2 = canary.get("canary.v2").copied().unwrap_or(0);
        assert_eq!(v1 + v2, N, "{which}: every canary message arrives: {canary:?}");
        assert!(near(v1, N, 80.0), "{which}: {canary:?}");

        // The source is a destination: the 50% no one is given is lost.
        let lossy = spread(under, "lossy", N).await;
        assert!(near(lossy.get("lossy").copied().unwrap_or(0), N, 30.0), "{which}: {lossy:?}");
        assert!(near(lossy.get("lossy.b").copied().unwrap_or(0), N, 20.0), "{which}: {lossy:?}");
        assert!(near(lossy.values().sum(), N, 50.0), "{which}: {lossy:?}");

        // It is not: the rest goes on unchanged.
        let rest = spread(under, "rest.q", N).await;
        assert_eq!(rest.values().sum::<usize>(), N, "{which}: {rest:?}");
        assert!(near(rest.get("rest.moved.q").copied().unwrap_or(0), N, 40.0), "{which}: {rest:?}");

        let random = spread(under, "rnd.x", N).await;
        let keys: Vec<&str> = random.keys().map(String::as_str).collect();
        assert_eq!(keys, ["rnd.0.x", "rnd.1.x", "rnd.2.x", "rnd.3.x"], "{which}");
        assert!(random.values().all(|&c| near(c, N, 25.0)), "{which}: {random:?}");
    }
}

#[tokio::test]
async fn an_accounts_mappings_stay_in_it() {
    let Some(reference) = reference() else { return };
    let warden = warden().await;
    for under in [&reference, &warden] {
        let (_g, mut global) = watch_all(&under.url(), "all").await;
        let (_a, mut in_a) = watch_all(&under.url(), "a").await;
        let subjects = vec!["a.1".to_owned(), "orders.7".to_owned()];
        assert_eq!(published(&under.url(), "a", &subjects, &mut in_a).await, ["a.mapped.1", "orders.7"]);
        // The global account saw none of it, and maps its own.
        assert_eq!(published(&under.url(), "all", &subjects, &mut global).await, ["a.1", "orders.eu.7"]);
    }
}

/// Everything a raw client is told after publishing `foo` until its PONG.
async fn told_after_publishing_foo(under: &Under, user: &str) -> Vec<String> {
    let mut raw = Raw::login(under.addr(), user, "p").await;
    raw.send("PUB foo 0\r\n\r\nPING\r\n").await;
    let mut lines = Vec::new();
    within(async {
        loop {
            match raw.line().await {
                l if l == "PONG" => return,
                // nats-server's second INFO (`connect_info`), after CONNECT.
                l if l.starts_with("INFO ") => {}
                l => lines.push(l),
            }
        }
    })
    .await;
    lines
}

#[tokio::test]
async fn publish_permissions_apply_to_the_mapped_subject() {
    let Some(reference) = reference() else { return };
    let warden = warden().await;
    let mut answers = Vec::new();
    for under in [&reference, &warden] {
        let (_w, mut sub) = watch_all(&under.url(), "all").await;
        // Allowed `bar`: `foo` maps onto it and arrives.
        let got = published(&under.url(), "only_bar", &["foo".to_owned()], &mut sub).await;
        assert_eq!(got, ["bar"]);
        // Allowed `foo` only: refused, nothing arrives.
        let got = published(&under.url(), "only_foo", &["foo".to_owned()], &mut sub).await;
        assert!(got.is_empty(), "{got:?}");
        answers.push((
            told_after_publishing_foo(under, "only_foo").await,
            told_after_publishing_foo(under, "only_bar").await,
        ));
    }
    assert_eq!(answers[0].0, ["-ERR 'Permissions Violation for Publish to \"bar\"'"]);
    assert!(answers[0].1.is_empty());
    assert_eq!(answers[1], answers[0], "the same -ERR as nats-server 2.15.1");
}
