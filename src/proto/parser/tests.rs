use super::*;

const LIMITS: ParseLimits = ParseLimits { max_payload: 1024, max_control_line: 64 };

/// An owned rendering of an op, so results from different buffers compare.
fn render(op: &Op<'_>) -> String {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match op {
        Op::Pub(p) => format!("PUB {} {:?} {:?} {}", s(p.subject), p.reply.map(s), p.header_len, s(p.message)),
        Op::Sub { subject, queue, sid } => format!("SUB {} {:?} {}", s(subject), queue.map(s), s(sid)),
        Op::Unsub { sid, max } => format!("UNSUB {} {max:?}", s(sid)),
        Op::Connect(j) => format!("CONNECT {}", s(j)),
        other => format!("{other:?}"),
    }
}

/// Feeds `chunks` one after another, the way a connection does.
fn feed(chunks: &[&[u8]]) -> Result<Vec<String>, ProtoError> {
    let mut parser = Parser::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Step::Op(op, used) = parser.parse(&buf, &LIMITS)? {
            out.push(render(&op));
            buf.drain(..used);
        }
    }
    Ok(out)
}

fn one(input: &str) -> Result<Vec<String>, ProtoError> {
    feed(&[input.as_bytes()])
}

#[test]
fn verbs_are_case_insensitive_and_take_tabs() {
    let ops = one("ping\r\nPoNg\r\nSuB\tfoo\t\t1\r\npub foo 2\r\nhi\r\nUNSUB 1 5\r\n").unwrap();
    assert_eq!(ops, vec!["Ping", "Pong", "SUB foo None 1", "PUB foo None None hi", "UNSUB 1 Some(5)"]);
}

#[test]
fn ping_ignores_the_rest_of_its_line_and_lf_alone_ends_a_line() {
    assert_eq!(one("PING garbage\nPINGPONG\r\n").unwrap(), vec!["Ping", "Ping"]);
}

#[test]
fn connect_needs_no_space_before_json() {
    assert_eq!(one("CONNECT{\"verbose\":false}\r\n").unwrap(), vec!["CONNECT {\"verbose\":false}"]);
}

#[test]
fn pub_with_reply_and_hpub() {
    let ops = one("PUB foo bar 0\r\n\r\nHPUB foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n").unwrap();
    assert_eq!(ops, vec!["PUB foo Some(\"bar\") None ", "PUB foo Some(\"r\") Some(12) NATS/1.0\r\n\r\nhi"]);
}

/// Regression: `HPUB foo 5 10` with `HELLO` as the header block was
/// delivered as HMSG.
#[test]
fn header_blocks_must_have_the_nats_shape() {
    for bad in [
        "HPUB foo 5 10\r\nHELLOworld\r\n",
        "HPUB foo 0 2\r\nhi\r\n",
        "HPUB foo 10 10\r\nNATS/1.0\r\n\r\n",
        "HPUB foo 12 12\r\nNATS/1.1\r\n\r\n\r\n",
        "HPUB foo 14 14\r\nNATS/1.0\r\nX: y\r\n\r\n",
    ] {
        assert_eq!(one(bad), Err(ProtoError::InvalidHeaders), "{bad:?}");
    }
    let ops = one("HPUB foo 16 16\r\nNATS/1.0 503\r\n\r\n\r\n").unwrap();
    assert_eq!(ops, vec!["PUB foo None Some(16) NATS/1.0 503\r\n\r\n"]);
}

#[test]
fn sub_with_queue() {
    assert_eq!(one("SUB foo.* workers 7\r\n").unwrap(), vec!["SUB foo.* Some(\"workers\") 7"]);
}

#[test]
fn unknown_verbs_and_missing_separators() {
    for bad in ["FOO bar\r\n", "MSG foo 1 2\r\n", "UNSUB\r\n", "PUBX foo 1\r\n", "HMSG a 1 2 3\r\n"] {
        assert_eq!(one(bad), Err(ProtoError::UnknownOperation), "{bad:?}");
    }
}

#[test]
fn bad_sizes_and_argument_counts_are_rejected() {
    for bad in [
        "PUB foo\r\n",
        "PUB foo bar baz 2\r\n",
        "PUB foo -1\r\n",
        "PUB foo +2\r\n",
        "PUB foo abc\r\n",
        "PUB foo 99999999999999999999\r\n",
        "HPUB foo 5 2\r\n",
        "SUB foo\r\n",
        "SUB foo q 1 2\r\n",
        "UNSUB 1 2 3\r\n",
    ] {
        assert!(matches!(one(bad), Err(ProtoError::InvalidArguments(_))), "{bad:?}");
    }
}

#[test]
fn max_payload_is_refused_before_the_payload_arrives() {
    assert_eq!(feed(&[b"PUB foo 1025\r\n"]), Err(ProtoError::MaxPayload));
    assert_eq!(one("PUB foo 1024\r\n").unwrap(), Vec::<String>::new(), "exactly max waits for payload");
}

#[test]
fn payload_must_end_with_crlf() {
    assert_eq!(one("PUB foo 2\r\nhello\r\n"), Err(ProtoError::UnknownOperation));
}

#[test]
fn control_line_limit_applies_to_complete_and_partial_lines() {
    let ok = format!("SUB {} 1\r\n", "a".repeat(62));
    assert!(one(&ok).is_ok());
    let long = format!("SUB {} 1\r\n", "a".repeat(63));
    assert_eq!(one(&long), Err(ProtoError::MaxControlLine));
    let endless = "SUB ".to_string() + &"a".repeat(200);
    assert_eq!(one(&endless), Err(ProtoError::MaxControlLine));
}

/// Regression (found by fuzzing): a complete CONNECT or PING line longer
/// than the control-line bound was accepted when it arrived in one read and
/// refused when it was split, because only unterminated lines were bounded.
#[test]
fn long_connect_line_was_accepted_only_when_unsplit() {
    let connect = format!("CONNECT {{\"name\":\"{}\"}}\r\n", "n".repeat(80));
    let ping = format!("PING {}\r\n", "x".repeat(80));
    for line in [connect, ping] {
        let bytes = line.as_bytes();
        assert_eq!(one(&line), Err(ProtoError::MaxControlLine), "whole {line:?}");
        for i in 0..=bytes.len() {
            assert_eq!(feed(&[&bytes[..i], &bytes[i..]]), Err(ProtoError::MaxControlLine), "split at {i}");
        }
    }
    // At the bound (64 + 16 bytes before the LF) both ways accept it.
    let at_bound = format!("PING {}\r\n", "x".repeat(64 + 16 - 6));
    assert_eq!(one(&at_bound).unwrap(), vec!["Ping"]);
}

const SCRIPT: &str = "CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nsub bar q 2\r\nPUB foo reply 5\r\nhello\r\n\
HPUB bar 12 15\r\nNATS/1.0\r\n\r\nabc\r\nPING\r\nUNSUB 1\r\nPONG\r\nPUB x 0\r\n\r\n";

#[test]
fn every_split_point_gives_the_same_ops() {
    let whole = one(SCRIPT).unwrap();
    assert_eq!(whole.len(), 9);
    let bytes = SCRIPT.as_bytes();
    for i in 0..=bytes.len() {
        assert_eq!(feed(&[&bytes[..i], &bytes[i..]]).unwrap(), whole, "split at {i}");
    }
    let single: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(feed(&single).unwrap(), whole, "one byte at a time");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn split_invariance_on_random_splits(cuts in prop::collection::vec(0..SCRIPT.len(), 0..8)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let bytes = SCRIPT.as_bytes();
            let mut chunks = Vec::new();
            let mut last = 0;
            for c in cuts {
                chunks.push(&bytes[last..c]);
                last = c;
            }
            chunks.push(&bytes[last..]);
            prop_assert_eq!(feed(&chunks).unwrap(), one(SCRIPT).unwrap());
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = feed(&[&input]);
        }

        /// Protocol-shaped garbage (long lines, bad sizes, missing CRLFs)
        /// gives the same result whole and split at random points.
        #[test]
        fn protocol_fragments_parse_the_same_however_split(
            fragments in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40),
            cuts in prop::collection::vec(0usize..2000, 0..8),
        ) {
            let input = fragments.concat();
            let bytes = input.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for c in cuts {
                chunks.push(&bytes[last..c]);
                last = c;
            }
            chunks.push(&bytes[last..]);
            prop_assert_eq!(feed(&chunks), feed(&[bytes]));
        }
    }

    const FRAGMENTS: &[&str] = &[
        "PUB ",
        "HPUB ",
        "SUB ",
        "UNSUB ",
        "PING",
        "PONG",
        "CONNECT ",
        "{\"verbose\":false}",
        "+OK",
        "-ERR",
        "foo",
        "foo.bar",
        " ",
        "\t",
        "q",
        "1",
        "2",
        "5",
        "12",
        "-1",
        "99999999999999999999",
        "\r\n",
        "\n",
        "\r",
        "hello",
        "NATS/1.0\r\n\r\n",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ];
}
