//! The functions, on the outputs nats-server 2.15.1 gave for the same
//! mappings (run by hand on 127.0.0.1; `tests/mappings.rs` checks them
//! against the server itself), and a property test of `split`, `slice`
//! and `partition` against naive models written from nats-server's code.

use super::super::{Transform, TransformError};
use super::*;

fn map(source: &str, dest: &str, subject: &str) -> Option<String> {
    let t = Transform::mapping(source, dest).unwrap();
    let mut out = Vec::new();
    t.apply_with(subject.as_bytes(), &mut out, &mut |n| n - 1).then(|| String::from_utf8(out).unwrap())
}

#[test]
fn outputs_nats_server_gave() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("l.*", "l.{{left(1,2)}}", "l.abcde", "l.ab"),
        ("l.*", "l.{{left(1,2)}}", "l.a", "l.a"),
        ("r.*", "r.{{right(1,2)}}", "r.abcde", "r.de"),
        ("s.*", "s.{{splitFromLeft(1,2)}}", "s.abcde", "s.ab.cde"),
        ("s.*", "s.{{SplitFromRight(1,2)}}", "s.abcde", "s.abc.de"),
        ("s.*", "s.{{sliceFromLeft(1,2)}}", "s.abcde", "s.ab.cd.e"),
        ("s.*", "s.{{sliceFromRight(1,2)}}", "s.abcde", "s.a.bc.de"),
        ("s.*", "s.{{sliceFromLeft(1,2)}}", "s.ab", "s.ab"),
        ("s.*", "s.{{sliceFromLeft(1,2)}}", "s.x*y", "s.x*.y"),
        ("s.*", "s.{{splitFromLeft(1,2)}}", "s.a*", "s.a*"),
        ("p.*", "p.{{split(1,-)}}", "p.a--b-c", "p.a.b.c"),
        ("p.*", "p.{{split(1,-)}}", "p.-a-", "p.a"),
        ("p.*", "p.{{split(1,-)}}", "p.-", "p."),
        ("p.*", "p.{{split(1,)}}", "p.abc", "p.a.b.c"),
        ("p.*", "p.{{split(1,ab)}}", "p.xabyabz", "p.x.y.z"),
        ("w.*", "w.{{ wildcard ( 1 ) }}", "w.q", "w.q"),
        ("w.*", "w.$+1", "w.q", "w.q"),
        ("pw.*.*", "pw.{{partition(5,1,2)}}.$1.$2", "pw.a.b", "pw.1.a.b"),
        ("pw.*.*", "pw.{{partition(5,1,2)}}.$1.$2", "pw.foo.bar", "pw.0.foo.bar"),
        ("pa.>", "pa.{{partition(7)}}.>", "pa.x.y", "pa.5.x.y"),
        // A literal source's partition hashes the subject (nats-server
        // hashes "" instead when the mapping is the first it checks).
        ("plit", "p.{{partition(3)}}", "plit", "p.0"),
        ("a.*.b.*", "x.$2.$1.$1", "a.1.b.2", "x.2.1.1"),
        ("a.*", "b", "a.1", "b"),
        ("a.>", ">", "a.b.c", "b.c"),
        ("$x.*", "$y.$1.$z", "$x.q", "$y.q.$z"),
        ("r.*", "r.{{random(5)}}", "r.x", "r.4"),
    ];
    for (source, dest, subject, want) in cases {
        assert_eq!(map(source, dest, subject).as_deref(), Some(*want), "{source} -> {dest} on {subject}");
    }
}

#[test]
fn refused_as_nats_server_refuses() {
    let err = |source: &str, dest: &str| Transform::mapping(source, dest).unwrap_err();
    let function = |dest: &str, token: &str, problem| {
        assert_eq!(err("a.*", dest), TransformError::Function(token.into(), problem), "{dest}");
    };
    function("b.{{foo(1)}}", "{{foo(1)}}", Problem::Unknown);
    function("b.{{SPLIT(1,-)}}", "{{SPLIT(1,-)}}", Problem::Unknown);
    function("b.{{wildcard(2)}}", "{{wildcard(2)}}", Problem::OutOfRange);
    function("b.{{partition(3,2)}}", "{{partition(3,2)}}", Problem::OutOfRange);
    function("b.{{split(1, - )}}", "{{split(1, - )}}", Problem::InvalidArgument);
    function("b.{{wildcard()}}", "{{wildcard()}}", Problem::NotEnoughArguments);
    function("b.{{wildcard(1,1)}}", "{{wildcard(1,1)}}", Problem::TooManyArguments);
    function("b.{{left(1)}}", "{{left(1)}}", Problem::NotEnoughArguments);
    function("b.{{left(1,2,3)}}", "{{left(1,2,3)}}", Problem::TooManyArguments);
    function("b.{{left(x,2)}}", "{{left(x,2)}}", Problem::InvalidArgument);
    function("b.{{random(1,2)}}", "{{random(1,2)}}", Problem::NotEnoughArguments);
    function("b.{{partition()}}", "{{partition()}}", Problem::InvalidArgument);
    assert_eq!(err("a", "b.{{wildcard(1)}}"), TransformError::Function("{{wildcard(1)}}".into(), Problem::OutOfRange));
    assert_eq!(err("a", "b.{{left(1,1)}}"), TransformError::Function("{{left(1,1)}}".into(), Problem::OutOfRange));
    assert_eq!(err("a.*", "b.*"), TransformError::WildcardInDestination);
    assert_eq!(err("a.>", "b"), TransformError::FullWildcard);
    assert_eq!(err("a", "b.>"), TransformError::FullWildcard);
    assert!(matches!(err("a", "c..d"), TransformError::InvalidSubject(_)));
    assert!(matches!(err("a..b", "c"), TransformError::InvalidSubject(_)));
}

#[test]
fn refused_where_nats_server_guesses() {
    // Accepted by nats-server 2.15.1, with results no one means.
    let function = |dest: &str, token: &str, problem| {
        assert_eq!(
            Transform::mapping("a.*", dest).unwrap_err(),
            TransformError::Function(token.into(), problem),
            "{dest}"
        );
    };
    function("b.$0", "$0", Problem::OutOfRange);
    function("b.$-1", "$-1", Problem::OutOfRange);
    function("b.{{wildcard(0)}}", "{{wildcard(0)}}", Problem::OutOfRange);
    function("b.{{partition(-3,1)}}", "{{partition(-3,1)}}", Problem::InvalidArgument);
    function("b.{{partition(0,1)}}", "{{partition(0,1)}}", Problem::InvalidArgument);
    function("b.{{random(-3)}}", "{{random(-3)}}", Problem::InvalidArgument);
    function("b.{{left(1,-2)}}", "{{left(1,-2)}}", Problem::InvalidArgument);
    function("b.x{{wildcard(1)}}", "x{{wildcard(1)}}", Problem::NotWholeToken);
    // `{{split(1,.)}}` is cut at its dot before it is read.
    function("b.{{split(1,.)}}", "{{split(1,", Problem::NotWholeToken);
    assert_eq!(
        Transform::mapping("a", "b.{{partition(3,1)}}").unwrap_err(),
        TransformError::Function("{{partition(3,1)}}".into(), Problem::OutOfRange)
    );
}

#[test]
fn imports_take_only_wildcard() {
    assert_eq!(
        Transform::new("a.*", "b.{{partition(3,1)}}").unwrap_err(),
        TransformError::Function("{{partition(3,1)}}".into(), Problem::NotForImport)
    );
    assert!(Transform::new("a.*", "b.{{wildcard(1)}}").is_ok());
    assert!(Transform::new("a.*", "b.{{Wildcard(1)}}").is_ok());
}

#[test]
fn fnv1a_is_gos() {
    // Go: fnv.New32a() over "" and "a" (the FNV test vectors).
    for (input, want) in [(&b""[..], 0x811c_9dc5u32), (b"a", 0xe40c_292c), (b"foobar", 0xbf9c_f968)] {
        let mut h = Fnv1a::new();
        h.write(input);
        assert_eq!(h.finish(), want);
    }
}

/// nats-server's `sliceFromLeft`, as its loop reads.
fn naive_slice_left(t: &str, size: usize) -> String {
    if size == 0 || size >= t.len() {
        return t.to_owned();
    }
    let mut out = String::new();
    let mut i = 0;
    while i + size <= t.len() {
        if i != 0 {
            out.push('.');
        }
        out.push_str(&t[i..i + size]);
        if i + size != t.len() && i + size + size > t.len() {
            out.push('.');
            out.push_str(&t[i + size..]);
            break;
        }
        i += size;
    }
    out
}

/// nats-server's `sliceFromRight`.
fn naive_slice_right(t: &str, size: usize) -> String {
    if size == 0 || size >= t.len() {
        return t.to_owned();
    }
    let mut out = String::new();
    let rem = t.len() % size;
    if rem > 0 {
        out.push_str(&t[..rem]);
        out.push('.');
    }
    let mut i = rem;
    while i + size <= t.len() {
        out.push_str(&t[i..i + size]);
        if i + size < t.len() {
            out.push('.');
        }
        i += size;
    }
    out
}

/// nats-server's `split`.
fn naive_split(t: &str, delimiter: &str) -> String {
    let splits: Vec<&str> = t.split(delimiter).collect();
    let mut out = String::new();
    for (j, split) in splits.iter().enumerate() {
        if !split.is_empty() {
            out.push_str(split);
        }
        if j < splits.len() - 1 && !splits[j + 1].is_empty() && !(j == 0 && split.is_empty()) {
            out.push('.');
        }
    }
    out
}

proptest::proptest! {
    #[test]
    fn functions_match_naive_models(token in "[a-c-]{1,12}", size in 1usize..8, delimiter in "-|b|ab|c-") {
        let got = |dest: String| map("x.*", &dest, &format!("x.{token}")).unwrap();
        proptest::prop_assert_eq!(got(format!("{{{{sliceFromLeft(1,{size})}}}}")), naive_slice_left(&token, size));
        proptest::prop_assert_eq!(got(format!("{{{{sliceFromRight(1,{size})}}}}")), naive_slice_right(&token, size));
        proptest::prop_assert_eq!(got(format!("{{{{split(1,{delimiter})}}}}")), naive_split(&token, &delimiter));
        let mut h = Fnv1a::new();
        h.write(token.as_bytes());
        h.write(token.as_bytes());
        proptest::prop_assert_eq!(got(format!("{{{{partition({size},1,1)}}}}")), (h.finish() % size as u32).to_string());
    }
}
