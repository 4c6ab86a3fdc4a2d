use bytes::BytesMut;
use proptest::prelude::*;

use super::*;

fn one(input: &str) -> RouteOp<'_> {
    parse(input.as_bytes(), 1024).unwrap().unwrap().0
}

fn err(input: &str) -> RouteProtoError {
    parse(input.as_bytes(), 1024).unwrap_err()
}

#[test]
fn interest_with_accounts() {
    assert_eq!(
        one("RS+ $G foo.bar\r\n"),
        RouteOp::Sub { origin: None, account: b"$G", subject: b"foo.bar", queue: None }
    );
    assert_eq!(
        one("RS+ $G foo q 3\r\n"),
        RouteOp::Sub { origin: None, account: b"$G", subject: b"foo", queue: Some((b"q", 3)) }
    );
    assert_eq!(
        one("rs+ A  foo\tq 3\r\n"),
        RouteOp::Sub { origin: None, account: b"A", subject: b"foo", queue: Some((b"q", 3)) }
    );
    assert_eq!(
        one("LS+ C1 $G foo\r\n"),
        RouteOp::Sub { origin: Some(b"C1"), account: b"$G", subject: b"foo", queue: None }
    );
    assert_eq!(one("RS- $G foo q\r\n"), RouteOp::Unsub { account: b"$G", subject: b"foo", queue: Some(b"q") });
    assert_eq!(
        one("RS+ $SYS $SYS.REQ.SERVER.PING\r\n"),
        RouteOp::Sub { origin: None, account: b"$SYS", subject: b"$SYS.REQ.SERVER.PING", queue: None }
    );
    assert_eq!(err("RS+ $SYS foo q\r\n"), RouteProtoError::BadSubscribe, "a queue needs a weight");
    assert_eq!(err("RS+ $G foo q x\r\n"), RouteProtoError::BadSubscribe, "the weight is a number");
    assert_eq!(err("RS+ $G\r\n"), RouteProtoError::BadSubscribe);
    assert_eq!(err("RS- $G foo q extra\r\n"), RouteProtoError::BadUnsubscribe);
    assert_eq!(err("LS-\r\n"), RouteProtoError::BadUnsubscribe);
}

#[test]
fn messages_in_every_form() {
    let RouteOp::Msg(m) = one("RMSG $G foo + r q1 q2 2\r\nhi\r\n") else { panic!() };
    assert_eq!((m.account, m.reply, m.message), (&b"$G"[..], Some(&b"r"[..]), &b"hi"[..]));
    assert_eq!(m.queues.iter().collect::<Vec<_>>(), vec![&b"q1"[..], b"q2"]);
    assert!(m.queues.contains(b"q2") && !m.queues.contains(b"q"));
    let RouteOp::Msg(m) = one("RMSG $G foo | q1 0\r\n\r\n") else { panic!() };
    assert_eq!((m.reply, m.queues.iter().collect::<Vec<_>>()), (None, vec![&b"q1"[..]]));
    let RouteOp::Msg(m) = one("RMSG A foo r 1\r\nx\r\n") else { panic!() };
    assert_eq!((m.account, m.reply, m.queues.is_empty()), (&b"A"[..], Some(&b"r"[..]), true));
    let RouteOp::Msg(m) = one("HMSG $G foo 2 3\r\nh\rx\r\n") else { panic!() };
    assert_eq!(m.header_len, Some(2));
    let RouteOp::Msg(m) = one("HMSG $G foo + r q 2 3\r\nh\rx\r\n") else { panic!() };
    assert_eq!((m.reply, m.header_len, m.queues.contains(b"q")), (Some(&b"r"[..]), Some(2), true));
    assert!(parse(b"RMSG $G foo 5\r\nab", 1024).unwrap().is_none(), "waits for the payload");
    let (op, used) = parse(b"RMSG $SYS foo 2\r\nhi\r\nPING\r\n", 1024).unwrap().unwrap();
    assert!(matches!(op, RouteOp::Msg(RouteMsg { account: b"$SYS", .. })));
    assert_eq!(used, 21, "the payload is consumed");
}

#[test]
fn a_leaf_clusters_message_goes_to_an_lnoc_peer_as_nats_server_sends_it() {
    let frame = |reply, queues: &[&[u8]], h, msg: &[u8]| {
        let mut out = BytesMut::new();
        let to = FrameTo::RouteFromLeafCluster { origin: b"EDGE", account: b"$G" };
        write_rmsg(&mut out, to, b"foo", reply, queues, h, msg);
        String::from_utf8(out.to_vec()).unwrap()
    };
    assert_eq!(frame(None, &[], None, b"hi"), "LMSG EDGE $G foo 0 2\r\nhi\r\n");
    assert_eq!(frame(Some(b"r"), &[b"q"], Some(2), b"h\rx"), "LMSG EDGE $G foo + r q 2 3\r\nh\rx\r\n");
    // And it reads back as what nats-server would have sent.
    let RouteOp::Msg(m) = one("LMSG EDGE $G foo 0 2\r\nhi\r\n") else { panic!() };
    assert_eq!((m.origin, m.header_len, m.message), (Some(&b"EDGE"[..]), None, &b"hi"[..]));
}

/// What nats-server sends a peer that announced `lnoc` for a leaf node
/// cluster's traffic (`msgHeaderForRouteOrLeaf`, `addRouteSubOrUnsubProtoToBuf`):
/// the origin first, a header size always, and `LS-` without the origin
/// to a peer (warden) that did not announce `lnocu`.
#[test]
fn a_leaf_clusters_traffic_over_a_route_names_its_origin() {
    let RouteOp::Msg(m) = one("LMSG EDGE $G foo 0 2\r\nhi\r\n") else { panic!() };
    assert_eq!((m.origin, m.account, m.subject, m.header_len), (Some(&b"EDGE"[..]), &b"$G"[..], &b"foo"[..], None));
    let RouteOp::Msg(m) = one("LMSG EDGE A foo + _INBOX.x q1 q2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n") else { panic!() };
    assert_eq!((m.reply, m.header_len, m.queues.contains(b"q2")), (Some(&b"_INBOX.x"[..]), Some(12), true));
    let RouteOp::Msg(m) = one("LMSG EDGE A foo | q 0 0\r\n\r\n") else { panic!() };
    assert_eq!((m.reply, m.queues.contains(b"q"), m.message), (None, true, &b""[..]));
    let RouteOp::Msg(m) = one("LMSG EDGE A foo _INBOX.y 0 1\r\nx\r\n") else { panic!() };
    assert_eq!(m.reply, Some(&b"_INBOX.y"[..]));
    assert_eq!(err("LMSG EDGE A foo 2\r\nhi\r\n"), RouteProtoError::BadMessage, "the header size is not optional");
    assert_eq!(err("LMSG EDGE A foo 3 2\r\nhi\r\n"), RouteProtoError::HeaderTooLarge);
    assert_eq!(one("LS- $G foo q\r\n"), RouteOp::Unsub { account: b"$G", subject: b"foo", queue: Some(b"q") });
    assert_eq!(
        one("LS+ EDGE $G foo q 2\r\n"),
        RouteOp::Sub { origin: Some(b"EDGE"), account: b"$G", subject: b"foo", queue: Some((b"q", 2)) }
    );
}

#[test]
fn malformed_messages_have_typed_errors() {
    assert_eq!(err("RMSG $G foo 5000\r\n"), RouteProtoError::PayloadTooLarge);
    assert_eq!(err("RMSG $G foo x\r\n"), RouteProtoError::BadSize);
    assert_eq!(err("HMSG $G foo 3 2\r\n"), RouteProtoError::HeaderTooLarge);
    assert_eq!(err("RMSG $G foo a b 2\r\nhi\r\n"), RouteProtoError::BadMessage);
    assert_eq!(err("RMSG $G foo + 2\r\nhi\r\n"), RouteProtoError::BadMessage);
    assert_eq!(err("RMSG $G 2\r\nhi\r\n"), RouteProtoError::BadMessage);
    assert_eq!(err("RMSG $G foo 2\r\nhiXY"), RouteProtoError::MissingPayloadEnd);
    assert_eq!(err("FOO\r\n"), RouteProtoError::UnknownOperation);
    let long = format!("INFO {}\r\n", "x".repeat(MAX_ROUTE_LINE));
    assert_eq!(parse(long.as_bytes(), 1024).unwrap_err(), RouteProtoError::LineTooLong);
    assert_eq!(parse(&long.as_bytes()[..MAX_ROUTE_LINE + 1], 1024).unwrap_err(), RouteProtoError::LineTooLong);
}

fn rmsg(account: &str, reply: Option<&[u8]>, queues: &[&str], h: Option<usize>, msg: &[u8]) -> String {
    let mut out = BytesMut::new();
    let queues: Vec<&[u8]> = queues.iter().map(|q| q.as_bytes()).collect();
    let account = Some(account.as_bytes()).filter(|a| !a.is_empty());
    let to = account.map_or(FrameTo::Leaf, FrameTo::Route);
    write_rmsg(&mut out, to, b"foo", reply, &queues, h, msg);
    assert!(out.len() <= rmsg_len_bound(account.unwrap_or_default(), b"foo", reply, &queues, msg));
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn route_frames() {
    assert_eq!(rmsg("$G", None, &[], None, b"hi"), "RMSG $G foo 2\r\nhi\r\n");
    assert_eq!(rmsg("A", Some(b"r"), &[], None, b"hi"), "RMSG A foo r 2\r\nhi\r\n");
    assert_eq!(rmsg("$G", Some(b"r"), &["q1", "q2"], None, b""), "RMSG $G foo + r q1 q2 0\r\n\r\n");
    assert_eq!(rmsg("$G", None, &["q"], None, b"x"), "RMSG $G foo | q 1\r\nx\r\n");
    assert_eq!(rmsg("$G", None, &[], Some(2), b"h\rx"), "HMSG $G foo 2 3\r\nh\rx\r\n");
    assert_eq!(rs_plus(InterestTo::Route(b"$G"), b"foo", None, 1), b"RS+ $G foo\r\n");
    assert_eq!(rs_plus(InterestTo::Route(b"A"), b"foo", Some(b"q"), 12), b"RS+ A foo q 12\r\n");
    assert_eq!(rs_minus(InterestTo::Route(b"$G"), b"foo", Some(b"q")), b"RS- $G foo q\r\n");
}

#[test]
fn leaf_frames_name_no_account() {
    assert_eq!(rmsg("", None, &[], None, b"hi"), "LMSG foo 2\r\nhi\r\n");
    assert_eq!(rmsg("", Some(b"r"), &["q"], None, b"x"), "LMSG foo + r q 1\r\nx\r\n");
    assert_eq!(rmsg("", None, &[], Some(2), b"h\rx"), "HMSG foo 2 3\r\nh\rx\r\n");
    assert_eq!(rs_plus(InterestTo::Leaf, b"foo", Some(b"q"), 3), b"LS+ foo q 3\r\n");
    assert_eq!(rs_minus(InterestTo::Leaf, b"foo", None), b"LS- foo\r\n");
}

/// A pinned account's connection: nats-server 2.10+ leaves the account
/// out of every op, in both directions.
#[test]
fn pinned_route_ops_name_no_account() {
    let frame = |origin: Option<&'static [u8]>, reply, h, msg: &[u8]| {
        let mut out = BytesMut::new();
        write_rmsg(&mut out, FrameTo::PinnedRoute { origin }, b"foo", reply, &[] as &[&[u8]], h, msg);
        String::from_utf8(out.to_vec()).unwrap()
    };
    assert_eq!(frame(None, None, None, b"hi"), "RMSG foo 2\r\nhi\r\n");
    assert_eq!(frame(None, Some(b"r"), Some(2), b"h\rx"), "HMSG foo r 2 3\r\nh\rx\r\n");
    assert_eq!(frame(Some(b"EDGE"), None, None, b"hi"), "LMSG EDGE foo 0 2\r\nhi\r\n");
    assert_eq!(rs_plus(InterestTo::PinnedRoute, b"foo", Some(b"q"), 2), b"RS+ foo q 2\r\n");
    assert_eq!(rs_minus(InterestTo::PinnedRoute, b"foo", None), b"RS- foo\r\n");

    let one = |input: &'static str| parse_dialect(input.as_bytes(), 1024, Dialect::PinnedRoute).unwrap().unwrap().0;
    let RouteOp::Sub { account, subject, queue, .. } = one("RS+ foo.* q 3\r\n") else { panic!() };
    assert_eq!((account, subject, queue), (&b""[..], &b"foo.*"[..], Some((&b"q"[..], 3))));
    let RouteOp::Unsub { account, subject, .. } = one("RS- foo\r\n") else { panic!() };
    assert_eq!((account, subject), (&b""[..], &b"foo"[..]));
    let RouteOp::Msg(m) = one("HMSG foo r 2 3\r\nh\rx\r\n") else { panic!() };
    assert_eq!((m.account, m.subject, m.reply, m.header_len), (&b""[..], &b"foo"[..], Some(&b"r"[..]), Some(2)));
    let RouteOp::Msg(m) = one("LMSG EDGE foo 0 2\r\nhi\r\n") else { panic!() };
    assert_eq!((m.origin, m.subject, m.message), (Some(&b"EDGE"[..]), &b"foo"[..], &b"hi"[..]));
}

#[test]
fn the_leaf_dialect_reads_ops_without_an_account_and_refuses_route_verbs() {
    let one =
        |s: &str| parse_dialect(s.as_bytes(), 1024, Dialect::Leaf).map(|r| r.map(|(op, n)| (format!("{op:?}"), n)));
    let sub = RouteOp::Sub { origin: None, account: b"", subject: b"foo.*", queue: Some((b"q", 2)) };
    assert_eq!(one("LS+ foo.* q 2\r\n").unwrap(), Some((format!("{sub:?}"), 15)));
    let unsub = RouteOp::Unsub { account: b"", subject: b"foo", queue: None };
    assert_eq!(one("LS- foo\r\n").unwrap(), Some((format!("{unsub:?}"), 9)));
    let msg = RouteMsg {
        origin: None,
        account: b"",
        subject: b"foo",
        reply: Some(b"_INBOX.1"),
        queues: QueueNames::new(b"q1"),
        header_len: None,
        message: b"hi",
    };
    assert_eq!(one("LMSG foo + _INBOX.1 q1 2\r\nhi\r\n").unwrap(), Some((format!("{:?}", RouteOp::Msg(msg)), 30)));
    assert_eq!(one("HMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n").unwrap().map(|(_, n)| n), Some(32));
    for route_verb in ["RS+ $G foo\r\n", "RS- $G foo\r\n", "RMSG $G foo 0\r\n\r\n"] {
        assert_eq!(one(route_verb).unwrap_err(), RouteProtoError::UnknownOperation, "{route_verb}");
    }
    assert_eq!(one("LS+\r\n").unwrap_err(), RouteProtoError::BadSubscribe);
    assert_eq!(one("LMSG foo 5000\r\n").unwrap_err(), RouteProtoError::PayloadTooLarge);
}

/// Every op a buffer holds, parsed all at once.
fn all_ops(buf: &[u8], dialect: Dialect) -> Result<Vec<String>, RouteProtoError> {
    let mut used = 0;
    let mut ops = Vec::new();
    while let Some((op, n)) = parse_dialect(&buf[used..], 1024, dialect)? {
        ops.push(format!("{op:?}"));
        used += n;
    }
    Ok(ops)
}

/// The same ops when the bytes arrive split at `at`: an incomplete op must
/// never be mistaken for another, or for an error.
fn split_ops(buf: &[u8], at: usize, dialect: Dialect) -> Result<Vec<String>, RouteProtoError> {
    let mut have: Vec<u8> = buf[..at].to_vec();
    let mut used = 0;
    let mut ops = Vec::new();
    let mut fed_rest = false;
    loop {
        match parse_dialect(&have[used..], 1024, dialect)? {
            Some((op, n)) => {
                ops.push(format!("{op:?}"));
                used += n;
            }
            None if !fed_rest => {
                have.extend_from_slice(&buf[at..]);
                fed_rest = true;
            }
            None => return Ok(ops),
        }
    }
}

const SESSION: &[u8] = b"INFO {\"server_id\":\"N1\"}\r\nCONNECT {}\r\nPING\r\nRS+ $G foo.* q 2\r\nRS- $G foo.* q\r\n\
LS+ C $G bar\r\nLS- $G bar\r\nLMSG C $G bar + r q 0 1\r\nx\r\nRMSG $G foo.x + _INBOX.1 q1 q2 5\r\nhello\r\nHMSG A foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
RMSG $G foo | q 0\r\n\r\nPONG\r\n+OK\r\n-ERR 'x'\r\n";

const LEAF_SESSION: &[u8] = b"CONNECT {}\r\nPING\r\nLS+ foo.* q 2\r\nLS- foo.* q\r\nLS+ $LDS.x\r\n\
LMSG foo.x + _INBOX.1 q1 q2 5\r\nhello\r\nHMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nLMSG foo | q 0\r\n\r\nPONG\r\n";

#[test]
fn every_split_point_gives_the_same_ops() {
    for (session, dialect, count) in [(SESSION, Dialect::Route, 14), (LEAF_SESSION, Dialect::Leaf, 9)] {
        let whole = all_ops(session, dialect).unwrap();
        assert_eq!(whole.len(), count);
        for at in 0..=session.len() {
            assert_eq!(split_ops(session, at, dialect).unwrap(), whole, "split at {at}");
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_input_is_split_invariant(input in proptest::collection::vec(
        prop_oneof![Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'+'), Just(b'|'), Just(b'1'), Just(b'2'),
                    Just(b'R'), Just(b'L'), Just(b'M'), Just(b'S'), Just(b'G'), Just(b'H'), any::<u8>()], 0..120),
        at in 0usize..120, leaf in any::<bool>()) {
        let at = at.min(input.len());
        let dialect = if leaf { Dialect::Leaf } else { Dialect::Route };
        let whole = all_ops(&input, dialect);
        let split = split_ops(&input, at, dialect);
        // A parse error may show up earlier or later, never a different op.
        if let (Ok(a), Ok(b)) = (&whole, &split) {
            prop_assert_eq!(a, b);
        }
        if whole.is_ok() != split.is_ok() {
            prop_assert!(false, "one way errs, the other not: {:?} vs {:?}", whole, split);
        }
    }
}
