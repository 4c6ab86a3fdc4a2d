//! The gateway session driven directly: bytes in, the bytes it queued
//! out. No socket, no runtime, no sleep.
#![allow(clippy::disallowed_methods)] // Tests pick their own instants from the real clock.

use super::session::harness::{Harness, Role, LOGIN, REMOTE_INFO};
use super::*;
use crate::broker::CloseReason;

fn harness() -> Harness {
    Harness::new(std::time::Instant::now()).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_inbound_gateway_logs_in_and_hears_the_clusters_interest_account_by_account() {
    let h = harness();
    let out = h.run(Role::Inbound, [LOGIN]).unwrap();
    assert_eq!(out.closed, None);
    let sent = text(&out.to_peer);
    // Interest-only from the start: the account's interest framed by
    // gateway_cmd 2 and 3, its name in base64 as Go writes []byte.
    let start = sent.find(r#""gateway_cmd":2,"gateway_cmd_payload":"JEc=""#).expect("cmd 2 for $G");
    let sub = sent.find("RS+ $G >\r\n").expect("the local interest");
    let end = sent.find(r#""gateway_cmd":3,"gateway_cmd_payload":"JEc=""#).expect("cmd 3 for $G");
    assert!(start < sub && sub < end, "{sent}");
    h.at_rest().unwrap();
}

#[test]
fn an_inbound_gateway_with_wrong_credentials_of_an_unknown_cluster_or_a_client_is_refused() {
    let h = harness();
    for (connect, error, reason) in [
        (
            r#"CONNECT {"gateway":"B","user":"gw","pass":"guess"}"#,
            "Authorization Violation",
            CloseReason::AuthenticationFailure,
        ),
        (r#"CONNECT {"gateway":"B"}"#, "Authorization Violation", CloseReason::AuthenticationFailure),
        (
            r#"CONNECT {"gateway":"C","user":"gw","pass":"gw-pass"}"#,
            "Connection to gateway \"A\" rejected",
            CloseReason::ProtocolViolation,
        ),
        (r#"CONNECT {"gateway":"A","user":"gw","pass":"gw-pass"}"#, "rejected", CloseReason::ProtocolViolation),
        (
            r#"CONNECT {"lang":"go","verbose":false}"#,
            "attempted to connect to gateway port",
            CloseReason::ProtocolViolation,
        ),
        ("CONNECT {not json", "not valid JSON", CloseReason::ProtocolViolation),
    ] {
        let input = format!("{connect}\r\nINFO {{\"gateway\":\"B\",\"server_id\":\"NB1\"}}\r\n");
        let out = h.run(Role::Inbound, [input.as_bytes()]).unwrap();
        assert_eq!(out.closed, Some(reason), "{connect}");
        assert!(text(&out.to_peer).contains(error), "{connect}: {}", text(&out.to_peer));
        h.at_rest().unwrap();
    }
}

#[test]
fn nothing_before_the_login_and_no_interest_on_an_inbound_gateway() {
    let h = harness();
    for early in ["RMSG $G foo 2\r\nhi\r\n", "RS+ $G foo\r\n", "INFO {\"gateway\":\"B\"}\r\n"] {
        let out = h.run(Role::Inbound, [early.as_bytes()]).unwrap();
        assert!(out.closed.is_some(), "{early}");
        assert!(out.delivered.is_empty());
        h.at_rest().unwrap();
    }
    let out = h.run(Role::Inbound, [LOGIN, b"RS+ $G foo\r\n"]).unwrap();
    assert_eq!(out.closed, Some(CloseReason::ProtocolViolation), "interest comes on the outbound side only");
    h.at_rest().unwrap();
}

#[test]
fn an_inbound_gateways_messages_reach_local_subscribers_and_routed_replies_the_reply_inside() {
    let h = harness();
    let replies = h.broker().routed_replies.get().unwrap();
    let mut mapped = Vec::new();
    let routed = text(replies.map(b"_INBOX.x", &mut mapped));
    let other = "_GR_.zzzzzz.yyyyyy._INBOX.y";
    let input = format!(
        "RMSG $G foo.bar 5\r\nhello\r\nHMSG $G hdr reply.to 12 14\r\nNATS/1.0\r\n\r\nhi\r\nRMSG $G {routed} 2\r\nok\r\nRMSG \
         $G {other} 2\r\nno\r\nRMSG NOSUCH foo 1\r\nx\r\n"
    );
    let out = h.run(Role::Inbound, [LOGIN, input.as_bytes()]).unwrap();
    assert_eq!(out.closed, None);
    let delivered = text(&out.delivered);
    assert!(delivered.contains("MSG foo.bar 1 5\r\nhello\r\n"), "{delivered}");
    // The local subscriber did not ask for headers: the payload alone.
    assert!(delivered.contains("MSG hdr 1 reply.to 2\r\nhi\r\n"), "{delivered}");
    assert!(delivered.contains("MSG _INBOX.x 1 2\r\nok\r\n"), "a reply to this server arrives unwrapped: {delivered}");
    assert!(!delivered.contains("no"), "another cluster's reply is dropped: {delivered}");
    h.at_rest().unwrap();
}

#[test]
fn an_outbound_gateway_answers_the_info_and_hosts_the_other_clusters_interest() {
    let h = harness();
    let mut session = h.open(Role::Outbound).unwrap();
    assert_eq!(h.feed(&mut session, [REMOTE_INFO, b"RS+ $G east.> \r\nRS+ $G work g 1\r\nA- $G\r\n"]), None);
    let sent = text(&session.client().outbound.drain());
    assert!(sent.starts_with("CONNECT {"), "{sent}");
    for part in [r#""gateway":"A""#, r#""user":"gw""#, r#""pass":"gw-pass""#, "\r\nINFO {", r#""gateway_iom":true"#] {
        assert!(sent.contains(part), "{part} in {sent}");
    }
    let held = |subject: &[u8]| {
        h.broker()
            .accounts
            .global()
            .router
            .subscriptions()
            .iter()
            .any(|s| &*s.subject == subject && s.owner.kind == crate::broker::ClientKind::Gateway)
    };
    assert!(held(b"east.>") && held(b"work"));
    assert_eq!(h.gateways.links().len(), 1);
    assert_eq!(h.gateways.remotes()[0].1, ["127.0.0.1:7223"], "the URL it named is known (it was already)");
    assert_eq!(h.feed(&mut session, [&b"RS- $G east.>\r\n"[..]]), None);
    assert!(!held(b"east.>"));
    // A message on the outbound side is the other cluster's mistake.
    assert_eq!(h.feed(&mut session, [&b"RMSG $G x 1\r\ny\r\n"[..]]), Some(CloseReason::ProtocolViolation));
    h.close(session, Some(CloseReason::ProtocolViolation));
    h.at_rest().unwrap();
}

#[test]
fn an_outbound_gateway_refuses_the_wrong_cluster_or_port() {
    let h = harness();
    for (info, error) in [
        (r#"INFO {"server_id":"NC","gateway":"C"}"#, "wanted to connect to \"B\", this is \"C\""),
        (r#"INFO {"server_id":"NC"}"#, "using wrong port"),
    ] {
        let input = format!("{info}\r\n");
        let out = h.run(Role::Outbound, [input.as_bytes()]).unwrap();
        assert_eq!(out.closed, Some(CloseReason::ProtocolViolation), "{info}");
        let sent = text(&out.to_peer);
        assert!(sent.contains(error) && !sent.contains("CONNECT"), "no credentials to the wrong server: {sent}");
        h.at_rest().unwrap();
    }
}

#[test]
fn a_new_accounts_interest_is_framed_before_its_first_line() {
    let h = harness();
    let mut session = h.open(Role::Inbound).unwrap();
    assert_eq!(h.feed(&mut session, [LOGIN]), None);
    session.client().outbound.drain();
    let broker = h.broker().clone();
    let owner = Arc::new(Client::new(broker.next_client_id(), "127.0.0.1:1".parse().unwrap(), 1 << 20));
    let global = broker.accounts.global().clone();
    let sub = Arc::new(Subscription::new(owner, global, b"more", Some(b"q"), b"2", None));
    broker.add_subscription(sub.clone());
    assert_eq!(text(&session.client().outbound.drain()), "RS+ $G more q 1\r\n", "$G was framed already");
    broker.remove_subscription(&sub);
    assert_eq!(text(&session.client().outbound.drain()), "RS- $G more q\r\n");
    h.close(session, None);
    h.at_rest().unwrap();
}

#[test]
fn one_accounts_interest_past_its_bound_is_dropped_and_counted_and_the_link_stays() {
    let h = Harness::with_account_bound(std::time::Instant::now(), Some((3, 1 << 20))).unwrap();
    let mut session = h.open(Role::Outbound).unwrap();
    let mut input = String::new();
    for i in 0..5 {
        input.push_str(&format!("RS+ $G flood.{i}\r\n"));
    }
    input.push_str("RS+ $SYS calm.x\r\nRS- $G flood.0\r\nRS+ $G flood.9\r\n");
    assert_eq!(h.feed(&mut session, [REMOTE_INFO, input.as_bytes()]), None, "the link stays");
    let held = |account: &crate::broker::Account| {
        account.router.subscriptions().iter().filter(|s| s.owner.kind == crate::broker::ClientKind::Gateway).count()
    };
    let accounts = &h.broker().accounts;
    assert_eq!(held(accounts.global()), 3, "$G at its bound (one freed, one more taken)");
    assert_eq!(held(&accounts.get("$SYS").unwrap()), 1, "the neighbour account's interest is held");
    assert_eq!(h.gateways.interest_dropped(), 2, "flood.3 and flood.4 dropped, counted");
    h.close(session, None);
    h.at_rest().unwrap();
}

#[test]
fn interest_in_an_account_a_reload_adds_is_held_until_then() {
    let h = harness();
    let mut session = h.open(Role::Outbound).unwrap();
    assert_eq!(
        h.feed(&mut session, [REMOTE_INFO, b"RS+ LATER orders.>\r\nRS+ LATER gone.x\r\nRS- LATER gone.x\r\n"]),
        None
    );
    assert!(h.broker().accounts.get("LATER").is_none());
    let opts =
        crate::config::load_str("accounts { LATER { users = [ { user: u, password: p } ] } }", "t.conf").unwrap();
    h.broker().configure_accounts(&opts.options).unwrap();
    session.rehost();
    let later = h.broker().accounts.get("LATER").unwrap();
    let held: Vec<_> = later.router.subscriptions().iter().map(|s| s.subject.clone()).collect();
    assert_eq!(held, [Box::from(&b"orders.>"[..])], "held, then hosted; the one taken back is gone");
    h.close(session, None);
    assert!(later.router.subscriptions().is_empty());
}
