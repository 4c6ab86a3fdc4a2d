//! Subject rules on arbitrary bytes, checked against each other and against
//! naive oracles.
//!
//! Input: newline-separated strings. Every function runs on every string and
//! pair (no panic on invalid input). For the valid ones:
//! - a literal is a pattern, and matches itself;
//! - `is_subset(a, b)` is exactly "every literal `a` matches, `b` matches",
//!   decided on the canonical instances of `a` (each `*` a fresh token, the
//!   final `>` one fresh token or more tokens than `b` has): one of them
//!   escapes `b` whenever any literal does;
//! - `overlaps(a, b)` is exactly "a literal matched by both exists", decided
//!   by building the most general common instance token by token;
//! - `overlaps` is symmetric, and two patterns that match one literal overlap;
//! - the trie finds, for every literal, exactly the patterns `matches` says,
//!   before and after removing some of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::subject::{is_subset, is_valid_literal, is_valid_pattern, matches, overlaps, Trie};

const STAR: &[u8] = b"*";
const FULL: &[u8] = b">";

fn tokens(s: &[u8]) -> Vec<&[u8]> {
    s.split(|b| *b == b'.').collect()
}

/// A token that occurs in neither pattern.
fn fresh(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut n = 0u32;
    loop {
        let candidate = format!("f{n}").into_bytes();
        let used = tokens(a).contains(&candidate.as_slice()) || tokens(b).contains(&candidate.as_slice());
        if !used {
            return candidate;
        }
        n += 1;
    }
}

fn join(toks: &[Vec<u8>]) -> Vec<u8> {
    toks.join(&b'.')
}

/// The canonical literals `a` matches, with fresh tokens foreign to `b`.
fn instances(a: &[u8], b: &[u8]) -> Vec<Vec<u8>> {
    let f = fresh(a, b);
    let mut base: Vec<Vec<u8>> = Vec::new();
    let mut tail = false;
    for tok in tokens(a) {
        if tok == FULL {
            tail = true;
        } else if tok == STAR {
            base.push(f.clone());
        } else {
            base.push(tok.to_vec());
        }
    }
    if !tail {
        return vec![join(&base)];
    }
    [1, tokens(b).len() + 1]
        .into_iter()
        .map(|n| {
            let mut toks = base.clone();
            toks.extend(std::iter::repeat_n(f.clone(), n));
            join(&toks)
        })
        .collect()
}

/// The most general literal both patterns match, if there is one.
fn common_instance(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let f = fresh(a, b);
    let (ta, tb) = (tokens(a), tokens(b));
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    loop {
        match (ta.get(i).copied(), tb.get(i).copied()) {
            (None, None) => return Some(join(&out)),
            (Some(FULL), Some(FULL)) => {
                out.push(f.clone());
                return Some(join(&out));
            }
            // One side takes whatever the other still needs (at least one token).
            (Some(FULL), Some(_)) | (Some(_), Some(FULL)) => {
                let rest = if ta[i] == FULL { &tb[i..] } else { &ta[i..] };
                out.extend(rest.iter().map(|t| if *t == STAR || *t == FULL { f.clone() } else { t.to_vec() }));
                return Some(join(&out));
            }
            (Some(x), Some(y)) if x == y => out.push(if x == STAR { f.clone() } else { x.to_vec() }),
            (Some(STAR), Some(y)) => out.push(y.to_vec()),
            (Some(x), Some(STAR)) => out.push(x.to_vec()),
            _ => return None,
        }
        i += 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let items: Vec<&[u8]> = data.split(|b| *b == b'\n').take(8).collect();
    for &s in &items {
        let pattern = is_valid_pattern(s);
        let literal = is_valid_literal(s);
        assert!(!literal || pattern, "a literal that is not a pattern: {s:?}");
        if literal {
            assert!(matches(s, s), "a literal does not match itself: {s:?}");
        }
        if pattern {
            assert!(is_subset(s, s), "a pattern is not a subset of itself: {s:?}");
            assert!(overlaps(s, s), "a pattern does not overlap itself: {s:?}");
        }
        for &t in &items {
            // Any input, valid or not: no panic.
            let _ = (matches(s, t), is_subset(s, t), overlaps(s, t));
        }
    }

    let patterns: Vec<&[u8]> = items.iter().copied().filter(|s| is_valid_pattern(s)).collect();
    for &a in &patterns {
        for &b in &patterns {
            let escapes = instances(a, b).iter().any(|lit| !matches(b, lit));
            assert_eq!(is_subset(a, b), !escapes, "is_subset({a:?}, {b:?})");
            let witness = common_instance(a, b);
            if let Some(lit) = &witness {
                assert!(matches(a, lit) && matches(b, lit), "common instance {lit:?} of {a:?} and {b:?}");
            }
            assert_eq!(overlaps(a, b), witness.is_some(), "overlaps({a:?}, {b:?})");
            assert_eq!(overlaps(a, b), overlaps(b, a), "overlaps is not symmetric");
        }
    }

    // Literals to look up: the valid inputs and every instance of each pattern.
    let mut literals: Vec<Vec<u8>> = items.iter().filter(|s| is_valid_literal(s)).map(|s| s.to_vec()).collect();
    for &a in &patterns {
        for &b in &patterns {
            literals.extend(instances(a, b));
        }
    }
    let mut trie = Trie::new();
    for (i, p) in patterns.iter().enumerate() {
        trie.insert(p, i);
    }
    assert_eq!(trie.len(), patterns.len());
    let check = |trie: &Trie<usize>, live: &[bool]| {
        for lit in &literals {
            let mut found: Vec<usize> = Vec::new();
            trie.for_each_match(lit, |i| found.push(*i));
            found.sort_unstable();
            let want: Vec<usize> = (0..patterns.len()).filter(|&i| live[i] && matches(patterns[i], lit)).collect();
            assert_eq!(found, want, "trie vs matches for {lit:?}");
            assert_eq!(trie.has_match(lit), !want.is_empty());
        }
    };
    let mut live = vec![true; patterns.len()];
    check(&trie, &live);
    for i in (0..patterns.len()).step_by(2) {
        assert_eq!(trie.remove(patterns[i], |v| *v == i), Some(i), "remove {:?}", patterns[i]);
        live[i] = false;
    }
    assert_eq!(trie.len(), live.iter().filter(|l| **l).count());
    check(&trie, &live);
});
