use super::*;

#[test]
fn pattern_validity_follows_nats_rules() {
    for ok in ["foo", "foo.bar", "foo.*", "foo.>", ">", "*", "*.*.>", "foo*.b>r", "ü.x"] {
        assert!(is_valid_pattern(ok.as_bytes()), "{ok}");
    }
    for bad in ["", ".", "foo.", ".foo", "foo..bar", "foo.>.bar", "> .a", "a b", "a\tb", ">.>"] {
        assert!(!is_valid_pattern(bad.as_bytes()), "{bad}");
    }
}

/// Regression: `foo.secret\x0b` passed a deny rule on `foo.secret` and was
/// delivered; DEL, other control bytes and invalid UTF-8 were accepted too.
#[test]
fn control_bytes_and_invalid_utf8_are_never_subjects() {
    for bad in
        [&b"foo.secret\x0b"[..], b"foo.secret\x7f", b"\x01", b"a.\x1fb", b"adv.\xff\xfe", b"a.\xc3", b"\xed\xa0\x80"]
    {
        assert!(!is_valid_pattern(bad), "{bad:?}");
        assert!(!is_valid_literal(bad), "{bad:?}");
        assert!(!is_valid_queue(bad), "{bad:?}");
    }
    assert!(is_valid_literal("grüße.日本".as_bytes()));
    assert!(is_valid_queue(b"workers.eu"));
    assert!(!is_valid_queue(b"") && !is_valid_queue(b"a b"));
}

#[test]
fn literal_validity_rejects_wildcards() {
    assert!(is_valid_literal(b"foo.bar"));
    assert!(is_valid_literal(b"foo*.bar>"));
    assert!(!is_valid_literal(b"foo.*"));
    assert!(!is_valid_literal(b">"));
    assert!(!is_valid_literal(b"foo..bar"));
}

#[test]
fn matching() {
    let cases: &[(&str, &str, bool)] = &[
        ("foo", "foo", true),
        ("foo", "bar", false),
        ("foo.*", "foo.bar", true),
        ("foo.*", "foo", false),
        ("foo.*", "foo.bar.baz", false),
        ("foo.>", "foo.bar.baz", true),
        ("foo.>", "foo", false),
        (">", "a", true),
        ("*.b", "a.b", true),
        ("foo.bar", "foo.bar.baz", false),
    ];
    for (p, s, want) in cases {
        assert_eq!(matches(p.as_bytes(), s.as_bytes()), *want, "{p} vs {s}");
    }
}

#[test]
fn subset_is_strict_about_full_wildcards() {
    let cases: &[(&str, &str, bool)] = &[
        ("_INBOX.x", "_INBOX.*", true),
        ("_INBOX.*", "_INBOX.*", true),
        ("_INBOX.>", "_INBOX.*", false),
        ("_INBOX.*.*", "_INBOX.*", false),
        ("_INBOX.x.y", "_INBOX.>", true),
        ("_INBOX.>", "_INBOX.>", true),
        ("_INBOX.*", "_INBOX.>", true),
        ("_INBOX", "_INBOX.>", false),
        (">", ">", true),
        ("*", ">", true),
        (">", "*", false),
        ("foo.*", "foo.bar", false),
        ("foo.bar", "foo.bar", true),
    ];
    for (inner, outer, want) in cases {
        assert_eq!(is_subset(inner.as_bytes(), outer.as_bytes()), *want, "{inner} in {outer}");
    }
}

#[test]
fn overlap() {
    let cases: &[(&str, &str, bool)] = &[
        ("foo.*", "foo.secret", true),
        ("foo.>", "foo.secret", true),
        ("foo.>", "foo", false),
        ("foo", "foo.>", false),
        ("*.a", "b.*", true),
        ("a.b", "a.c", false),
        (">", "x.y.z", true),
        ("a.*", "a.b.c", false),
    ];
    for (a, b, want) in cases {
        assert_eq!(overlaps(a.as_bytes(), b.as_bytes()), *want, "{a} ~ {b}");
        assert_eq!(overlaps(b.as_bytes(), a.as_bytes()), *want, "{b} ~ {a}");
    }
}

/// The one-pass scanner against the rules written out plainly.
mod scan_against_naive {
    use proptest::prelude::*;

    use super::*;

    fn naive_pattern(s: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(s) else { return false };
        let toks: Vec<&str> = text.split('.').collect();
        !text.is_empty()
            && toks.iter().all(|t| !t.is_empty() && t.bytes().all(|b| b > b' ' && b != 0x7f))
            && toks.iter().rev().skip(1).all(|t| *t != ">")
    }

    fn naive_literal(s: &[u8]) -> bool {
        naive_pattern(s) && s.split(|b| *b == b'.').all(|t| t != b"*" && t != b">")
    }

    proptest! {
        #[test]
        fn agrees(s in proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'*'), Just(b'>'), Just(b'a'), Just(b' '), Just(0x7f), Just(0xc3), Just(0xa9), Just(0xff), Just(0x0b)],
            0..12)) {
            prop_assert_eq!(is_valid_pattern(&s), naive_pattern(&s), "pattern {:?}", s);
            prop_assert_eq!(is_valid_literal(&s), naive_literal(&s), "literal {:?}", s);
        }
    }
}

#[test]
fn template_tokens_are_known_functions_only() {
    for ok in
        ["{{name()}}", "{{ Name() }}", "{{subject()}}", "{{account-name()}}", "{{tag(team)}}", "{{account-tag(a_b-1)}}"]
    {
        assert!(is_template_token(ok), "{ok}");
    }
    for bad in
        ["{{nmae()}}", "{{tag()}}", "{{tag(a.b)}}", "{{tag(*)}}", "{{name()}}x", "x{{name()}}", "{{name()", "name()}}"]
    {
        assert!(!is_template_token(bad), "{bad}");
    }
}
