//! Framing: masking, fragmentation, control frames, limits, compression.

use super::*;

/// A client frame: masked with `mask`, the given bits.
pub(crate) fn client(opcode: u8, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![(if fin { 0x80 } else { 0 }) | (if rsv1 { 0x40 } else { 0 }) | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn decode_all(decoder: &mut Decoder, input: &[u8]) -> Result<(Vec<u8>, Vec<Control>, usize), WsError> {
    let (mut data, mut controls) = (Vec::new(), Vec::new());
    let used = decoder.decode(input, &mut data, &mut controls)?;
    Ok((data, controls, used))
}

#[test]
fn masked_frames_carry_the_stream_and_fragments_join() {
    let mut d = Decoder::new(1024, false);
    let mut input = client(BINARY, false, false, b"PUB a 2\r\n");
    input.extend(client(PING, true, false, b"hi"));
    input.extend(client(CONTINUATION, true, false, b"ok\r\n"));
    input.extend(client(TEXT, true, false, b"PING\r\n"));
    let (data, controls, used) = decode_all(&mut d, &input).unwrap();
    assert_eq!(data, b"PUB a 2\r\nok\r\nPING\r\n");
    assert_eq!(controls, vec![Control::Ping(b"hi".to_vec())]);
    assert_eq!(used, input.len());
}

#[test]
fn partial_frames_wait_for_the_rest_byte_by_byte() {
    let frame = client(BINARY, true, false, &vec![b'x'; 300]);
    let mut d = Decoder::new(1024, false);
    for cut in 0..frame.len() {
        let (data, _, used) = decode_all(&mut d, &frame[..cut]).unwrap();
        assert_eq!((data.len(), used), (0, 0), "cut at {cut}");
    }
    assert_eq!(decode_all(&mut d, &frame).unwrap().0.len(), 300);
}

#[test]
fn protocol_errors_close_with_1002_and_oversize_with_1009() {
    let unmasked = {
        let mut f = client(BINARY, true, false, b"x");
        f[1] &= 0x7f;
        f
    };
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (unmasked, PROTOCOL_ERROR),
        (client(0x20 | BINARY, true, false, b"x"), PROTOCOL_ERROR), // RSV2
        (client(3, true, false, b"x"), PROTOCOL_ERROR),             // unknown opcode
        (client(PING, false, false, b"x"), PROTOCOL_ERROR),         // fragmented control
        (client(PING, true, false, &[0; 126]), PROTOCOL_ERROR),     // long control
        (client(CONTINUATION, true, false, b"x"), PROTOCOL_ERROR),  // nothing to continue
        (client(BINARY, true, true, b"x"), PROTOCOL_ERROR),         // RSV1 without deflate
        (client(BINARY, true, false, &[0; 1025]), TOO_BIG),
    ];
    for (input, code) in cases {
        let err = decode_all(&mut Decoder::new(1024, false), &input).unwrap_err();
        assert_eq!(err.code, code, "{err:?}");
    }
    let mut twice = client(BINARY, false, false, b"a");
    twice.extend(client(BINARY, true, false, b"b"));
    assert_eq!(decode_all(&mut Decoder::new(1024, false), &twice).unwrap_err().code, PROTOCOL_ERROR);
    // A 64-bit length too large for the limit is refused before any payload.
    let mut huge = vec![0x82, 0x80 | 127];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(decode_all(&mut Decoder::new(1024, false), &huge).unwrap_err().code, TOO_BIG);
}

#[test]
fn close_stops_decoding_and_reports_the_status() {
    let mut input = client(CLOSE, true, false, &1001u16.to_be_bytes());
    input.extend(client(BINARY, true, false, b"after"));
    let (data, controls, used) = decode_all(&mut Decoder::new(1024, false), &input).unwrap();
    assert!(data.is_empty());
    assert_eq!(controls, vec![Control::Close(Some(1001))]);
    assert_eq!(used, 8);
    let (_, controls, _) = decode_all(&mut Decoder::new(1024, false), &client(CLOSE, true, false, b"")).unwrap();
    assert_eq!(controls, vec![Control::Close(None)]);
}

#[test]
fn compressed_messages_inflate_across_fragments_within_the_limit() {
    let text = b"PUB subject 11\r\nhello world\r\n".repeat(20);
    let packed = deflate::deflate(&text);
    let (a, b) = packed.split_at(packed.len() / 2);
    let mut input = client(BINARY, false, true, a);
    input.extend(client(CONTINUATION, true, false, b));
    let (data, _, _) = decode_all(&mut Decoder::new(4096, true), &input).unwrap();
    assert_eq!(data, text);
    assert_eq!(decode_all(&mut Decoder::new(text.len() - 1, true), &input).unwrap_err().code, TOO_BIG);
    let garbage = client(BINARY, true, true, b"\xff\xff\xff\xff");
    assert_eq!(decode_all(&mut Decoder::new(4096, true), &garbage).unwrap_err().code, INVALID_DATA);
}

#[test]
fn server_frames_are_final_unmasked_binary() {
    let mut out = Vec::new();
    binary(&mut out, b"INFO {}\r\n", false, None);
    assert_eq!(out[..2], [0x82, 9]);
    assert_eq!(&out[2..], b"INFO {}\r\n");
    let mut out = Vec::new();
    binary(&mut out, &[b'a'; 70_000], false, None);
    assert_eq!(out[..2], [0x82, 127]);
    let mut out = Vec::new();
    binary(&mut out, &[b'a'; 300], true, None);
    assert_eq!(out[0], 0xc2, "compressed");
    let mut inflated = Vec::new();
    deflate::inflate(&out[2..], 1000, &mut inflated).unwrap();
    assert_eq!(inflated, vec![b'a'; 300]);
    let mut out = Vec::new();
    close(&mut out, PROTOCOL_ERROR, "bad", None);
    assert_eq!(out, [0x88, 5, 0x03, 0xea, b'b', b'a', b'd']);
    let mut out = Vec::new();
    pong(&mut out, b"hi", None);
    assert_eq!(out, [0x8a, 2, b'h', b'i']);
}

/// Feeds `input` to [`Decoder::decode_in_place`] in the pieces `cuts`
/// gives, as a transport would, keeping what each call did not use.
fn stream(decoder: &mut Decoder, input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Vec<Control>), WsError> {
    let (mut data, mut controls, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    let mut at = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        rest.extend_from_slice(&input[at..cut.max(at)]);
        at = cut.max(at);
        while !rest.is_empty() {
            let mut inflated = Vec::new();
            let done = decoder.decode_in_place(&mut rest, &mut inflated, &mut controls)?;
            data.extend_from_slice(&rest[..done.data]);
            data.extend(inflated);
            rest.drain(..done.used);
            if matches!(controls.last(), Some(Control::Close(_))) {
                return Ok((data, controls));
            }
        }
    }
    Ok((data, controls))
}

#[test]
fn in_place_decoding_is_the_same_at_every_cut() {
    let text = b"PUB subject 11\r\nhello world\r\n".repeat(20);
    let packed = deflate::deflate(&text);
    let mut input = client(BINARY, false, false, b"PUB a 2\r\n");
    input.extend(client(PING, true, false, b"hi"));
    input.extend(client(PONG, true, false, b""));
    input.extend(client(CONTINUATION, true, false, b"ok\r\n"));
    input.extend(client(BINARY, true, true, &packed));
    input.extend(client(TEXT, true, false, &vec![b'x'; 300]));
    input.extend(client(CLOSE, true, false, &1001u16.to_be_bytes()));
    input.extend(client(BINARY, true, false, b"after the close"));
    let mut want = b"PUB a 2\r\nok\r\n".to_vec();
    want.extend_from_slice(&text);
    want.extend(vec![b'x'; 300]);
    let want_controls = vec![Control::Ping(b"hi".to_vec()), Control::Close(Some(1001))];
    let (whole, controls) = stream(&mut Decoder::new(4096, true), &input, &[]).unwrap();
    assert_eq!((&whole, &controls), (&want, &want_controls));
    for cut in 0..input.len() {
        let got = stream(&mut Decoder::new(4096, true), &input, &[cut]).unwrap();
        assert_eq!((&got.0, &got.1), (&want, &want_controls), "cut at {cut}");
    }
    // Byte by byte.
    let every: Vec<usize> = (0..input.len()).collect();
    assert_eq!(stream(&mut Decoder::new(4096, true), &input, &every).unwrap(), (want, want_controls));
}

#[test]
fn in_place_decoding_refuses_what_whole_frames_refuse() {
    let mut twice = client(BINARY, false, false, b"a");
    twice.extend(client(BINARY, true, false, b"b"));
    let every: Vec<usize> = (0..twice.len()).collect();
    assert_eq!(stream(&mut Decoder::new(1024, false), &twice, &every).unwrap_err().code, PROTOCOL_ERROR);
    let big = client(BINARY, true, false, &[0; 1025]);
    assert_eq!(stream(&mut Decoder::new(1024, false), &big, &[3]).unwrap_err().code, TOO_BIG);
    let text = vec![b'y'; 2000];
    let packed = deflate::deflate(&text);
    let (a, b) = packed.split_at(packed.len() / 2);
    let mut input = client(BINARY, false, true, a);
    input.extend(client(CONTINUATION, true, false, b));
    assert_eq!(stream(&mut Decoder::new(1999, true), &input, &[5]).unwrap_err().code, TOO_BIG);
}

/// A server frame (unmasked), final or not.
fn server(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let (mut head, len) = header(opcode, false, payload.len(), None);
    if !fin {
        head[0] &= 0x7f;
    }
    let mut out = head[..len].to_vec();
    out.extend_from_slice(payload);
    out
}

#[test]
fn the_client_role_reads_unmasked_server_frames_at_every_cut() {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mut input = server(BINARY, false, b"INFO {}");
    input.extend(server(PING, true, b"hi"));
    input.extend(server(CONTINUATION, true, b"\r\n"));
    input.extend(server(BINARY, true, &big));
    input.extend(server(TEXT, true, &[b'x'; 300]));
    input.extend(server(CLOSE, true, &NORMAL.to_be_bytes()));
    input.extend(server(BINARY, true, b"after the close"));
    let mut want = b"INFO {}\r\n".to_vec();
    want.extend_from_slice(&big);
    want.extend([b'x'; 300]);
    let want_controls = vec![Control::Ping(b"hi".to_vec()), Control::Close(Some(NORMAL))];
    let whole = stream(&mut Decoder::of_server(usize::MAX), &input, &[]).unwrap();
    assert_eq!(whole, (want.clone(), want_controls.clone()));
    for cut in (0..input.len()).filter(|c| *c < 200 || *c % 97 == 0 || input.len() - c < 400) {
        let got = stream(&mut Decoder::of_server(usize::MAX), &input, &[cut]).unwrap();
        assert_eq!((&got.0, &got.1), (&want, &want_controls), "cut at {cut}");
    }
    let every: Vec<usize> = (0..input.len()).collect();
    assert_eq!(stream(&mut Decoder::of_server(usize::MAX), &input, &every).unwrap(), (want, want_controls));
}

#[test]
fn the_client_role_refuses_a_masked_or_compressed_server_frame() {
    for frame in [client(BINARY, true, false, b"PING\r\n"), client(PING, true, false, b"")] {
        let refused = stream(&mut Decoder::of_server(usize::MAX), &frame, &[1]).unwrap_err();
        assert_eq!((refused.code, refused.reason), (PROTOCOL_ERROR, "masked frame from the server"));
    }
    let mut compressed = server(BINARY, true, &deflate::deflate(b"PING\r\n"));
    compressed[0] |= 0x40;
    assert_eq!(stream(&mut Decoder::of_server(1024), &compressed, &[]).unwrap_err().code, PROTOCOL_ERROR);
    // The server role still wants its mask.
    assert_eq!(
        decode_all(&mut Decoder::new(1024, false), &server(BINARY, true, b"x")).unwrap_err().code,
        PROTOCOL_ERROR
    );
}

#[test]
fn a_clients_frames_are_masked_with_the_key_given_and_read_back_by_the_server_role() {
    let key = [0xa1, 0x02, 0xb3, 0x04];
    let data = b"LMSG foo 5\r\nhello\r\n";
    let mut out = Vec::new();
    binary(&mut out, data, false, Some(key));
    assert_eq!(out[..6], [0x82, 0x80 | data.len() as u8, 0xa1, 0x02, 0xb3, 0x04]);
    assert_ne!(&out[6..], data, "the payload is masked");
    let mut joined = Vec::new();
    masked_binary(&mut joined, [&b"LMSG foo 5\r\n"[..], b"hello\r\n"], key);
    assert_eq!(joined, out, "slices joined frame the same bytes");
    masked_binary(&mut out, [&[b'z'; 70_000][..]], [9, 8, 7, 6]);
    pong(&mut out, b"hi", Some([1, 2, 3, 4]));
    close(&mut out, NORMAL, "bye", Some([5, 6, 7, 8]));
    let (got, controls, used) = decode_all(&mut Decoder::new(100_000, false), &out).unwrap();
    let mut want = data.to_vec();
    want.extend([b'z'; 70_000]);
    assert_eq!((got, used), (want, out.len()));
    // The pong is read and dropped; the close is reported.
    assert_eq!(controls, vec![Control::Close(Some(NORMAL))]);
}
