use proptest::prelude::*;

use super::*;

/// Feeds `bytes` in one piece.
fn decode(bytes: &[u8]) -> Result<Progress, ProxyError> {
    Decoder::new().feed(bytes)
}

fn proxied(addr: &str, used: usize) -> Result<Progress, ProxyError> {
    Ok(Progress::Done { header: Header::Proxied { source: addr.parse().unwrap() }, used })
}

/// A v2 header: command, family, address block.
fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut out = V2_SIG.to_vec();
    out.push(0x20 | command);
    out.push(family);
    out.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    out.extend_from_slice(block);
    out
}

fn v4_block(tlvs: &[u8]) -> Vec<u8> {
    let mut block = vec![192, 0, 2, 7, 10, 0, 0, 1, 0x30, 0x39, 0x10, 0x96];
    block.extend_from_slice(tlvs);
    block
}

#[test]
fn v1_tcp4_tcp6_and_unknown() {
    let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 4222\r\nCONNECT {}\r\n";
    assert_eq!(decode(line), proxied("192.0.2.7:12345", line.len() - 12));
    let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 4222\r\n";
    assert_eq!(decode(line), proxied("[2001:db8::7]:65535", line.len()));
    for line in [&b"PROXY UNKNOWN\r\n"[..], b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"] {
        assert_eq!(decode(line), Ok(Progress::Done { header: Header::Local, used: line.len() }));
    }
}

#[test]
fn v1_malformed_lines_are_refused() {
    for line in [
        &b"PROXY TCP4 192.0.2.7 10.0.0.1 12345\r\n"[..],
        b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 4222 9\r\n",
        b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
        b"PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 65536 1\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 +1 1\r\n",
        b"PROXY TCP4 192.0.2.7  10.0.0.1 1 1\r\n",
        b"PROXY UDP4 192.0.2.7 10.0.0.1 1 1\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 1 1\n",
        b"PROXY \xff\r\n",
    ] {
        assert!(matches!(decode(line), Err(ProxyError::Malformed(_))), "{:?}", String::from_utf8_lossy(line));
    }
}

#[test]
fn v1_without_crlf_in_bound_is_too_long() {
    let mut line = b"PROXY TCP4 ".to_vec();
    line.resize(V1_MAX, b'1');
    assert_eq!(decode(&line), Err(ProxyError::TooLong));
    line.truncate(V1_MAX - 1);
    assert_eq!(decode(&line), Ok(Progress::More), "still within the bound");
}

#[test]
fn not_a_header() {
    for first in [&b"CONNECT {}\r\n"[..], b"PROXX", b"\x16\x03\x01", b"\r\n\r\n\0\r\nQUIX"] {
        assert_eq!(decode(first), Err(ProxyError::NotProxy), "{first:?}");
    }
}

#[test]
fn v2_ipv4_ipv6_with_tlvs_skipped() {
    let tlvs = [0x04, 0x00, 0x03, b'a', b'b', b'c', 0x20, 0x00, 0x00];
    let header = v2(1, 0x11, &v4_block(&tlvs));
    let mut bytes = header.clone();
    bytes.extend_from_slice(b"PING\r\n");
    assert_eq!(decode(&bytes), proxied("192.0.2.7:12345", header.len()));

    let mut block = vec![0x20, 0x01, 0x0d, 0xb8];
    block.resize(16, 0);
    block[15] = 7;
    block.extend_from_slice(&[0; 16]);
    block.extend_from_slice(&[0x01, 0xbb, 0x10, 0x96]);
    block.extend_from_slice(&[0xee; 300]);
    let header = v2(1, 0x21, &block);
    assert_eq!(decode(&header), proxied("[2001:db8::7]:443", header.len()));
}

#[test]
fn v2_local_and_unspec_keep_the_socket_address() {
    for header in [v2(0, 0x00, &[]), v2(0, 0x11, &v4_block(&[])), v2(1, 0x00, &[1, 2, 3])] {
        assert_eq!(decode(&header), Ok(Progress::Done { header: Header::Local, used: header.len() }));
    }
}

#[test]
fn v2_refusals() {
    let short = v2(1, 0x11, &[1, 2, 3]);
    assert!(matches!(decode(&short), Err(ProxyError::Malformed(_))));
    let short6 = v2(1, 0x21, &v4_block(&[]));
    assert!(matches!(decode(&short6), Err(ProxyError::Malformed(_))));
    assert!(matches!(decode(&v2(2, 0x11, &v4_block(&[]))), Err(ProxyError::Malformed(_))));
    assert!(matches!(decode(&v2(1, 0x12, &v4_block(&[]))), Err(ProxyError::Unsupported(_))));
    assert!(matches!(decode(&v2(1, 0x31, &[0; 216])), Err(ProxyError::Unsupported(_))));
    assert!(matches!(decode(&v2(1, 0x41, &[])), Err(ProxyError::Unsupported(_))));
    let mut v1 = v2(1, 0x11, &v4_block(&[]));
    v1[12] = 0x11;
    assert!(matches!(decode(&v1), Err(ProxyError::Malformed(_))));
}

#[test]
fn the_largest_v2_header_is_counted_not_kept() {
    let header = v2(1, 0x11, &v4_block(&[0x99; u16::MAX as usize - 12]));
    assert_eq!(header.len(), MAX_HEADER);
    let mut decoder = Decoder::new();
    for chunk in header.chunks(4096) {
        let step = decoder.feed(chunk);
        if step != Ok(Progress::More) {
            assert_eq!(step, proxied("192.0.2.7:12345", header.len() % 4096));
        }
    }
}

#[test]
fn finished_decoders_take_nothing_more() {
    let mut decoder = Decoder::new();
    assert!(matches!(decoder.feed(b"PROXY UNKNOWN\r\n"), Ok(Progress::Done { .. })));
    assert!(decoder.feed(b"x").is_err());
    let mut decoder = Decoder::new();
    assert!(decoder.feed(b"GET").is_err());
    assert!(decoder.feed(b"PROXY UNKNOWN\r\n").is_err(), "a refusal is final");
}

/// Feeds `bytes` split at `cuts`; the header and where the client's bytes
/// start, as one feed would say them.
fn split_feed(bytes: &[u8], cuts: &[usize]) -> Result<Option<(Header, usize)>, ProxyError> {
    let mut decoder = Decoder::new();
    let mut at = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    bounds.push(bytes.len());
    bounds.sort_unstable();
    for end in bounds {
        if end < at {
            continue;
        }
        match decoder.feed(&bytes[at..end])? {
            Progress::More => at = end,
            Progress::Done { header, used } => return Ok(Some((header, at + used))),
        }
    }
    Ok(None)
}

fn whole(bytes: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    match decode(bytes)? {
        Progress::More => Ok(None),
        Progress::Done { header, used } => Ok(Some((header, used))),
    }
}

/// Headers and near-headers: valid ones of both versions with bytes
/// after them, and their bytes mutated.
fn header_like() -> impl Strategy<Value = Vec<u8>> {
    let v1 = (any::<[u8; 4]>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(ip, port, tail)| {
        let mut line = format!("PROXY TCP4 {} 10.0.0.1 {port} 4222\r\n", Ipv4Addr::from(ip)).into_bytes();
        line.extend(tail);
        line
    });
    let v2s =
        (0u8..3, prop::sample::select(vec![0x00u8, 0x11, 0x21, 0x12, 0x31]), prop::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(command, family, block)| v2(command, family, &block));
    (prop_oneof![v1, v2s], prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3)).prop_map(
        |(mut bytes, flips)| {
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes
        },
    )
}

proptest! {
    /// However the bytes are split, the decoder says what it says when
    /// given them at once: the same header, the same first client byte,
    /// or an error.
    #[test]
    fn split_invariance(bytes in header_like(), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let once = whole(&bytes);
        let split = split_feed(&bytes, &cuts);
        prop_assert_eq!(once.is_err(), split.is_err());
        if let (Ok(once), Ok(split)) = (once, split) {
            prop_assert_eq!(once, split);
        }
    }

    /// Reading at most `wants` bytes at a time, the header ends exactly at
    /// the end of a read: nothing of the client's is ever taken.
    #[test]
    fn wants_never_reads_past_the_header(bytes in header_like()) {
        let mut decoder = Decoder::new();
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + decoder.wants()).min(bytes.len());
            prop_assert!(end > at);
            match decoder.feed(&bytes[at..end]) {
                Ok(Progress::More) => at = end,
                Ok(Progress::Done { used, header }) => {
                    prop_assert_eq!(used, end - at);
                    prop_assert_eq!(whole(&bytes), Ok(Some((header, end))));
                    break;
                }
                Err(_) => {
                    prop_assert!(whole(&bytes).is_err());
                    break;
                }
            }
        }
    }

    /// Never more than the bound taken, whatever the input.
    #[test]
    fn never_past_the_bound(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(Progress::Done { used, .. }) = decode(&bytes) {
            prop_assert!(used <= bytes.len() && used <= MAX_HEADER);
        }
    }
}
