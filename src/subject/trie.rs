//! A subject trie: one level per token, with a literal map, a `*` child and a
//! list of values whose pattern ends in `>` at that level (the shape of
//! nats-server's `sublist.go`).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

use super::{tokens, FWC, PWC};

/// Values of type `T` stored under wildcard patterns and found by literal subjects.
///
/// The trie stores whatever the caller validated; it never re-checks patterns.
///
/// `S` hashes the tokens of each level. The default is SipHash with a
/// per-map random key, for tries whose patterns clients choose (the
/// subscription index, shared by every connection of an account: colliding
/// tokens there would slow everyone's lookups). A trie of patterns from the
/// configuration may take a faster hasher (the permission tries use
/// foldhash).
#[derive(Debug)]
pub struct Trie<T, S = RandomState> {
    root: Node<T, S>,
    len: usize,
}

#[derive(Debug)]
struct Node<T, S> {
    literals: Literals<T, S>,
    star: Option<Box<Node<T, S>>>,
    /// Values whose pattern ends with `>` right below this node.
    full: Vec<T>,
    /// Values whose pattern ends exactly at this node.
    here: Vec<T>,
}

impl<T, S: Default> Default for Node<T, S> {
    fn default() -> Self {
        Node { literals: Literals::Few(Vec::new()), star: None, full: Vec::new(), here: Vec::new() }
    }
}

impl<T, S> Node<T, S> {
    fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.star.is_none() && self.full.is_empty() && self.here.is_empty()
    }
}

impl<T, S: Default> Default for Trie<T, S> {
    fn default() -> Self {
        Trie { root: Node::default(), len: 0 }
    }
}

impl<T, S: BuildHasher + Default> Trie<T, S> {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` under `pattern` (a valid pattern, checked by the caller).
    pub fn insert(&mut self, pattern: &[u8], value: T) {
        let mut node = &mut self.root;
        let mut toks = tokens(pattern).peekable();
        while let Some(tok) = toks.next() {
            if tok == FWC && toks.peek().is_none() {
                push_lean(&mut node.full, value);
                self.len += 1;
                return;
            }
            node =
                if tok == PWC { node.star.get_or_insert_with(Box::default) } else { node.literals.get_or_insert(tok) };
        }
        push_lean(&mut node.here, value);
        self.len += 1;
    }

    /// Removes and returns the first value under exactly `pattern` for which
    /// `pred` holds, pruning nodes that become empty.
    pub fn remove(&mut self, pattern: &[u8], pred: impl FnMut(&T) -> bool) -> Option<T> {
        let toks: Vec<&[u8]> = tokens(pattern).collect();
        let removed = remove_at(&mut self.root, &toks, pred);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Calls `f` for every value whose pattern matches the literal `subject`.
    pub fn for_each_match<'a>(&'a self, subject: &[u8], mut f: impl FnMut(&'a T)) {
        let toks: smallvec_like::Tokens<'_> = smallvec_like::Tokens::new(subject);
        match_at(&self.root, toks.as_slice(), &mut f);
    }

    /// Whether any pattern matches the literal `subject` (stops at the
    /// first: a deny check needs no more).
    pub fn has_match(&self, subject: &[u8]) -> bool {
        let toks: smallvec_like::Tokens<'_> = smallvec_like::Tokens::new(subject);
        has_match_at(&self.root, toks.as_slice())
    }

    /// Calls `f` for every stored value.
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(&'a T)) {
        visit_all(&self.root, &mut f);
    }
}

fn remove_at<T, S: BuildHasher>(node: &mut Node<T, S>, toks: &[&[u8]], pred: impl FnMut(&T) -> bool) -> Option<T> {
    let Some((tok, rest)) = toks.split_first() else {
        let idx = node.here.iter().position(pred)?;
        return Some(node.here.swap_remove(idx));
    };
    if *tok == FWC && rest.is_empty() {
        let idx = node.full.iter().position(pred)?;
        return Some(node.full.swap_remove(idx));
    }
    if *tok == PWC {
        let child = node.star.as_deref_mut()?;
        let removed = remove_at(child, rest, pred);
        if child.is_empty() {
            node.star = None;
        }
        removed
    } else {
        let child = node.literals.get_mut(tok)?;
        let removed = remove_at(child, rest, pred);
        if child.is_empty() {
            node.literals.remove(tok);
        }
        removed
    }
}

fn match_at<'a, T, S: BuildHasher>(node: &'a Node<T, S>, toks: &[&[u8]], f: &mut impl FnMut(&'a T)) {
    let Some((tok, rest)) = toks.split_first() else {
        node.here.iter().for_each(&mut *f);
        return;
    };
    node.full.iter().for_each(&mut *f);
    if let Some(child) = node.literals.get(tok) {
        match_at(child, rest, f);
    }
    if let Some(child) = node.star.as_deref() {
        match_at(child, rest, f);
    }
}

fn has_match_at<T, S: BuildHasher>(node: &Node<T, S>, toks: &[&[u8]]) -> bool {
    let Some((tok, rest)) = toks.split_first() else {
        return !node.here.is_empty();
    };
    !node.full.is_empty()
        || node.literals.get(tok).is_some_and(|child| has_match_at(child, rest))
        || node.star.as_deref().is_some_and(|child| has_match_at(child, rest))
}

fn visit_all<'a, T, S>(node: &'a Node<T, S>, f: &mut impl FnMut(&'a T)) {
    node.here.iter().for_each(&mut *f);
    node.full.iter().for_each(&mut *f);
    match &node.literals {
        Literals::Few(few) => few.iter().for_each(|(_, c)| visit_all(c, f)),
        Literals::Many(many) => many.values().for_each(|c| visit_all(c, f)),
    }
    if let Some(child) = node.star.as_deref() {
        visit_all(child, f);
    }
}

/// Most children a node keeps in a vector before it switches to a map.
const FEW: usize = 8;

/// A node's children by literal token.
///
/// Most nodes of a large index have one child (`s.<id>.x`: every `<id>`
/// node has just `x`), and a hash map's smallest table holds four nodes
/// inline, about 500 bytes, which made up half of what a subscription cost
/// at 100,000 of them. Up to [`FEW`] children sit in a vector that grows
/// one at a time and is scanned in order (at most eight token compares,
/// cheaper than hashing the token); past that, a map.
#[derive(Debug)]
enum Literals<T, S> {
    Few(Vec<Child<T, S>>),
    Many(Box<Children<T, S>>),
}

/// A literal token and the node under it.
type Child<T, S> = (Box<[u8]>, Node<T, S>);

/// Nodes by literal token.
type Children<T, S> = HashMap<Box<[u8]>, Node<T, S>, S>;

impl<T, S: BuildHasher> Literals<T, S> {
    fn get(&self, tok: &[u8]) -> Option<&Node<T, S>> {
        match self {
            Literals::Few(few) => few.iter().find(|(k, _)| **k == *tok).map(|(_, n)| n),
            Literals::Many(many) => many.get(tok),
        }
    }

    fn get_mut(&mut self, tok: &[u8]) -> Option<&mut Node<T, S>> {
        match self {
            Literals::Few(few) => few.iter_mut().find(|(k, _)| **k == *tok).map(|(_, n)| n),
            Literals::Many(many) => many.get_mut(tok),
        }
    }

    fn remove(&mut self, tok: &[u8]) {
        match self {
            Literals::Few(few) => {
                if let Some(i) = few.iter().position(|(k, _)| **k == *tok) {
                    few.swap_remove(i);
                }
            }
            Literals::Many(many) => {
                many.remove(tok);
            }
        }
    }
}

impl<T, S: BuildHasher + Default> Literals<T, S> {
    /// The child under `tok`, made empty if there was none.
    fn get_or_insert(&mut self, tok: &[u8]) -> &mut Node<T, S> {
        if let Literals::Few(few) = self {
            if few.len() >= FEW && !few.iter().any(|(k, _)| **k == *tok) {
                let many = std::mem::take(few).into_iter().collect();
                *self = Literals::Many(Box::new(many));
            }
        }
        match self {
            Literals::Few(few) => {
                let index = match few.iter().position(|(k, _)| **k == *tok) {
                    Some(i) => i,
                    None => {
                        few.reserve_exact(1);
                        few.push((tok.into(), Node::default()));
                        few.len() - 1
                    }
                };
                &mut few[index].1
            }
            Literals::Many(many) => many.entry(tok.into()).or_default(),
        }
    }
}

impl<T, S> Literals<T, S> {
    fn is_empty(&self) -> bool {
        match self {
            Literals::Few(few) => few.is_empty(),
            Literals::Many(many) => many.is_empty(),
        }
    }
}

/// Pushes onto a vector whose first allocation holds one value (a pattern
/// usually has one subscriber; the default first allocation holds four),
/// growing by doubling after that.
fn push_lean<T>(values: &mut Vec<T>, value: T) {
    if values.capacity() == 0 {
        values.reserve_exact(1);
    }
    values.push(value);
}

/// Token splitting without a heap allocation for ordinary subjects.
mod smallvec_like {
    use super::tokens;

    /// Subjects with more tokens than this fall back to a heap vector.
    const INLINE: usize = 16;

    /// Tokens of one subject; `heap` is used (and allocates) only past `INLINE`.
    pub(super) struct Tokens<'a> {
        inline: [&'a [u8]; INLINE],
        len: usize,
        heap: Vec<&'a [u8]>,
    }

    impl<'a> Tokens<'a> {
        pub(super) fn new(subject: &'a [u8]) -> Self {
            let mut toks = Tokens { inline: [&[]; INLINE], len: 0, heap: Vec::new() };
            for tok in tokens(subject) {
                if toks.len == INLINE {
                    toks.heap = tokens(subject).collect();
                    break;
                }
                toks.inline[toks.len] = tok;
                toks.len += 1;
            }
            toks
        }

        pub(super) fn as_slice(&self) -> &[&'a [u8]] {
            if self.heap.is_empty() {
                &self.inline[..self.len]
            } else {
                &self.heap
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::matches;
    use proptest::prelude::*;

    fn found(t: &Trie<u32>, s: &str) -> Vec<u32> {
        let mut v = Vec::new();
        t.for_each_match(s.as_bytes(), |x| v.push(*x));
        v.sort_unstable();
        v
    }

    #[test]
    fn literal_star_and_full_wildcards() {
        let mut t = Trie::new();
        t.insert(b"foo.bar", 1);
        t.insert(b"foo.*", 2);
        t.insert(b"foo.>", 3);
        t.insert(b">", 4);
        t.insert(b"*.bar", 5);
        assert_eq!(found(&t, "foo.bar"), vec![1, 2, 3, 4, 5]);
        assert_eq!(found(&t, "foo.baz.qux"), vec![3, 4]);
        assert_eq!(found(&t, "foo"), vec![4]);
        assert_eq!(t.len(), 5);
        assert_eq!(t.remove(b"foo.*", |v| *v == 2), Some(2));
        assert_eq!(t.remove(b"foo.*", |v| *v == 2), None);
        assert_eq!(found(&t, "foo.bar"), vec![1, 3, 4, 5]);
        for (p, v) in [("foo.bar", 1), ("foo.>", 3), (">", 4), ("*.bar", 5)] {
            assert_eq!(t.remove(p.as_bytes(), |x| *x == v), Some(v));
        }
        assert!(t.is_empty());
        assert!(t.root.is_empty(), "empty nodes are pruned");
    }

    #[test]
    fn a_node_with_many_children_switches_to_a_map_and_back_to_empty() {
        let mut t: Trie<usize> = Trie::new();
        for i in 0..3 * FEW {
            t.insert(format!("a.{i}.x").as_bytes(), i);
            t.insert(format!("a.{i}").as_bytes(), 100 + i);
        }
        t.insert(b"a.*.x", 1000);
        assert!(matches!(t.root.literals.get(b"a").map(|a| &a.literals), Some(Literals::Many(_))));
        for i in 0..3 * FEW {
            let mut got = Vec::new();
            t.for_each_match(format!("a.{i}.x").as_bytes(), |v| got.push(*v));
            got.sort_unstable();
            assert_eq!(got, vec![i, 1000]);
            assert!(t.has_match(format!("a.{i}").as_bytes()));
        }
        assert!(!t.has_match(b"a.none"));
        let mut all = 0;
        t.for_each(|_| all += 1);
        assert_eq!(all, 6 * FEW + 1);
        for i in 0..3 * FEW {
            assert_eq!(t.remove(format!("a.{i}.x").as_bytes(), |v| *v == i), Some(i));
            assert_eq!(t.remove(format!("a.{i}").as_bytes(), |v| *v == 100 + i), Some(100 + i));
        }
        assert_eq!(t.remove(b"a.*.x", |_| true), Some(1000));
        assert!(t.is_empty() && t.root.is_empty(), "empty nodes are pruned");
    }

    fn token() -> impl Strategy<Value = String> {
        // Mostly three tokens (so patterns overlap), sometimes one of
        // twelve (so a node passes `FEW` children and becomes a map).
        prop_oneof![
            3 => prop_oneof![Just("a".to_string()), Just("b".to_string()), Just("c".to_string())],
            1 => (0..12u8).prop_map(|i| format!("n{i}")),
        ]
    }

    fn pattern() -> impl Strategy<Value = String> {
        (prop::collection::vec(prop_oneof![token(), Just("*".to_string())], 1..4), any::<bool>()).prop_map(
            |(mut toks, full)| {
                if full {
                    toks.push(">".into());
                }
                toks.join(".")
            },
        )
    }

    fn literal() -> impl Strategy<Value = String> {
        prop::collection::vec(token(), 1..5).prop_map(|t| t.join("."))
    }

    proptest! {
        #[test]
        fn trie_agrees_with_naive_matcher(
            pats in prop::collection::vec(pattern(), 0..20),
            subjects in prop::collection::vec(literal(), 1..20),
        ) {
            let mut t: Trie<usize> = Trie::new();
            for (i, p) in pats.iter().enumerate() {
                t.insert(p.as_bytes(), i);
            }
            for s in &subjects {
                let mut got = Vec::new();
                t.for_each_match(s.as_bytes(), |i| got.push(*i));
                got.sort_unstable();
                let want: Vec<usize> = pats.iter().enumerate()
                    .filter(|(_, p)| matches(p.as_bytes(), s.as_bytes()))
                    .map(|(i, _)| i).collect();
                prop_assert_eq!(t.has_match(s.as_bytes()), !want.is_empty());
                prop_assert_eq!(got, want);
            }
        }
    }
}
