//! Subject transforms: how an import renames the subjects it carries
//! between two accounts (`prefix`, or `to` with positional wildcards), how
//! a subject mapping rewrites a published subject (the same, plus the
//! functions of [`function`]), and the intersection of two patterns, which
//! says what part of a subscription an import can feed.
//!
//! An import's transform ([`Transform::new`]) maps every subject matching
//! its source pattern to exactly one subject, and back: each source
//! wildcard is used exactly once in the destination and no function but
//! `wildcard` is allowed, so the reverse is a transform too (stream-import
//! subscriptions are mapped into the exporter's space with it). A
//! mapping's ([`Transform::mapping`]) need not be reversible: it may drop
//! or repeat wildcards and compute tokens (`partition`, `split`, ...), as
//! nats-server's `NewSubjectTransform` allows; it only ever rewrites
//! literal subjects.

mod function;

use std::fmt;

use function::Function;
pub use function::{Problem, MAX_PARTITION_ARGUMENTS};

use super::{is_valid_pattern, tokens, FWC, PWC, SEP};

/// Most `*` wildcards a transform may carry (its apply step keeps their
/// positions in a fixed array, with no allocation).
pub const MAX_TRANSFORM_WILDCARDS: usize = 16;

/// Why a transform cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransformError {
    /// The source or destination is not a valid subject pattern.
    InvalidSubject(String),
    /// A `$N` (or `{{wildcard(N)}}`) names a wildcard the source lacks.
    NoSuchWildcard(usize),
    /// A source wildcard is not used exactly once in the destination.
    WildcardUse(usize),
    /// `>` must end both subjects or neither.
    FullWildcard,
    /// More than [`MAX_TRANSFORM_WILDCARDS`] wildcards.
    TooManyWildcards,
    /// A prefix must be a literal subject.
    BadPrefix,
    /// A mapping's destination may not hold `*` (nats-server: "invalid
    /// subject"); its wildcards are named with `$N` or `{{wildcard(N)}}`.
    WildcardInDestination,
    /// A function token that cannot be read: the token, and why.
    Function(String, Problem),
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransformError::InvalidSubject(s) => write!(f, "{s:?} is not a valid subject"),
            TransformError::NoSuchWildcard(n) => write!(f, "wildcard ${n} does not exist in the source subject"),
            TransformError::WildcardUse(n) => {
                write!(f, "wildcard {n} of the source must be used exactly once in the destination")
            }
            TransformError::FullWildcard => f.write_str("`>` must end both subjects or neither"),
            TransformError::TooManyWildcards => {
                write!(f, "at most {MAX_TRANSFORM_WILDCARDS} wildcards are supported in a mapping")
            }
            TransformError::BadPrefix => f.write_str("a prefix must be a subject without wildcards"),
            TransformError::WildcardInDestination => f.write_str(
                "a mapping destination cannot contain `*`: name the source's wildcards with $N or {{wildcard(N)}}",
            ),
            TransformError::Function(token, problem) => write!(f, "invalid mapping destination: {problem} in {token}"),
        }
    }
}

impl std::error::Error for TransformError {}

/// One destination token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Written as is.
    Literal(Box<[u8]>),
    /// The token the source's `*` number N (0-based) matched.
    Wildcard(usize),
    /// The tokens the source's trailing `>` matched.
    Rest,
    /// A mapping function of the source's tokens (never in an import's).
    Function(Function),
}

/// A mapping from the subjects a source pattern matches to destination
/// subjects. Valid by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    source: Box<[u8]>,
    dest: Vec<Part>,
    /// The source subject itself is the destination (no rewrite at all).
    identity: bool,
}

impl Transform {
    /// An import's transform from `source` to `dest`, where `dest` names
    /// source wildcards as `$N`, `{{wildcard(N)}}` (1-based, as
    /// nats-server) or `*` (the next source wildcard in order), and ends
    /// with `>` when the source does. Reversible: see the module doc.
    pub fn new(source: &str, dest: &str) -> Result<Transform, TransformError> {
        for s in [source, dest] {
            if !is_valid_pattern(s.as_bytes()) {
                return Err(TransformError::InvalidSubject(s.to_owned()));
            }
        }
        let wildcards = source_wildcards(source)?;
        let source_rest = source == ">" || source.ends_with(".>");
        let mut dest_parts = Vec::new();
        let mut next_star = 0;
        let mut used = [0u8; MAX_TRANSFORM_WILDCARDS];
        let dest_tokens: Vec<&str> = dest.split('.').collect();
        for (i, token) in dest_tokens.iter().enumerate() {
            let part = if token.as_bytes() == FWC {
                if !source_rest || i + 1 != dest_tokens.len() {
                    return Err(TransformError::FullWildcard);
                }
                Part::Rest
            } else if token.as_bytes() == PWC {
                next_star += 1;
                Part::Wildcard(next_star - 1)
            } else {
                match function::parse(token) {
                    Ok(None) => Part::Literal(token.as_bytes().into()),
                    Ok(Some(Function::Wildcard(n))) => Part::Wildcard(n),
                    Ok(Some(_)) => return Err(TransformError::Function((*token).to_owned(), Problem::NotForImport)),
                    Err(Problem::OutOfRange) => return Err(TransformError::NoSuchWildcard(0)),
                    Err(problem) => return Err(TransformError::Function((*token).to_owned(), problem)),
                }
            };
            if let Part::Wildcard(n) = part {
                let slot = used.get_mut(n).filter(|_| n < wildcards).ok_or(TransformError::NoSuchWildcard(n + 1))?;
                *slot += 1;
            }
            dest_parts.push(part);
        }
        if source_rest && !matches!(dest_parts.last(), Some(Part::Rest)) {
            return Err(TransformError::FullWildcard);
        }
        if let Some(n) = used[..wildcards].iter().position(|&u| u != 1) {
            return Err(TransformError::WildcardUse(n + 1));
        }
        Ok(Transform { identity: source == dest, source: source.as_bytes().into(), dest: dest_parts })
    }

    /// A subject mapping's transform from `source` to `dest`, as
    /// nats-server's `NewSubjectTransform` reads it: `dest` names source
    /// wildcards with `$N` or `{{wildcard(N)}}`, any number of times, may
    /// compute tokens with the functions (`{{partition(3,1)}}`, ...), holds
    /// no `*`, and ends with `>` exactly when the source does. Only
    /// [`Transform::apply_with`] on literal subjects is meaningful for it.
    pub fn mapping(source: &str, dest: &str) -> Result<Transform, TransformError> {
        if !is_valid_pattern(source.as_bytes()) {
            return Err(TransformError::InvalidSubject(source.to_owned()));
        }
        let wildcards = source_wildcards(source)?;
        let source_rest = source == ">" || source.ends_with(".>");
        let dest_tokens: Vec<&str> = dest.split('.').collect();
        let mut parts = Vec::with_capacity(dest_tokens.len());
        for (i, token) in dest_tokens.iter().enumerate() {
            let function = function::parse(token).map_err(|p| TransformError::Function((*token).to_owned(), p))?;
            let part = match function {
                Some(f) => {
                    if f.wildcards().iter().any(|&n| n >= wildcards) {
                        return Err(TransformError::Function((*token).to_owned(), Problem::OutOfRange));
                    }
                    match f {
                        Function::Wildcard(n) => Part::Wildcard(n),
                        f => Part::Function(f),
                    }
                }
                None if token.as_bytes() == FWC => {
                    if !source_rest || i + 1 != dest_tokens.len() {
                        return Err(TransformError::FullWildcard);
                    }
                    Part::Rest
                }
                None if token.as_bytes() == PWC => return Err(TransformError::WildcardInDestination),
                None if !is_valid_pattern(token.as_bytes()) => {
                    return Err(TransformError::InvalidSubject(dest.to_owned()))
                }
                None => Part::Literal(token.as_bytes().into()),
            };
            parts.push(part);
        }
        if source_rest && !matches!(parts.last(), Some(Part::Rest)) {
            return Err(TransformError::FullWildcard);
        }
        Ok(Transform { identity: source == dest, source: source.as_bytes().into(), dest: parts })
    }

    /// `prefix.` followed by the source subject (a stream import's `prefix`).
    pub fn with_prefix(source: &str, prefix: &str) -> Result<Transform, TransformError> {
        let prefix = prefix.strip_suffix('.').unwrap_or(prefix);
        if !super::is_valid_literal(prefix.as_bytes()) {
            return Err(TransformError::BadPrefix);
        }
        Transform::new(source, &format!("{prefix}.{source}"))
    }

    /// The source pattern.
    pub fn source(&self) -> &[u8] {
        &self.source
    }

    /// The destination as a pattern (each wildcard part as `*` or `>`): an
    /// import's (a mapping's function may write several tokens, shown as
    /// one `*`).
    pub fn dest_pattern(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, part) in self.dest.iter().enumerate() {
            if i > 0 {
                out.push(SEP);
            }
            match part {
                Part::Literal(t) => out.extend_from_slice(t),
                Part::Wildcard(_) | Part::Function(_) => out.extend_from_slice(PWC),
                Part::Rest => out.extend_from_slice(FWC),
            }
        }
        out
    }

    /// Whether subjects pass unchanged.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Whether the destination is the same for every subject the source
    /// matches (no wildcard, function or `>` in it).
    pub fn is_constant(&self) -> bool {
        self.dest.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Whether every literal subject the source matches becomes a valid
    /// literal subject: true unless a function cuts tokens (`split`,
    /// `slice...`, `left`, ...), which can make an empty token or a `*`.
    pub fn keeps_subjects_valid(&self) -> bool {
        self.dest.iter().all(|p| match p {
            Part::Function(f) => f.keeps_tokens(),
            _ => true,
        })
    }

    /// The transform that undoes this one (an import's; see the module doc).
    pub fn reverse(&self) -> Transform {
        // Destination wildcard positions, in order, become the new source's
        // wildcards; the old source's `*` number k maps to the position of
        // the destination part that used it.
        let mut order = [0usize; MAX_TRANSFORM_WILDCARDS];
        let mut count = 0;
        for part in &self.dest {
            if let Part::Wildcard(n) = part {
                if let Some(slot) = order.get_mut(*n) {
                    *slot = count;
                }
                count += 1;
            }
        }
        let mut star = 0;
        let dest = tokens(&self.source)
            .map(|t| {
                if t == PWC {
                    star += 1;
                    Part::Wildcard(order.get(star - 1).copied().unwrap_or(0))
                } else if t == FWC {
                    Part::Rest
                } else {
                    Part::Literal(t.into())
                }
            })
            .collect();
        Transform { source: self.dest_pattern().into(), dest, identity: self.identity }
    }

    /// Writes the destination of `subject` into `out` (cleared first).
    /// `subject` may be a pattern (its wildcard tokens are carried like any
    /// token). Returns false, leaving `out` unspecified, when `subject`
    /// does not match the source pattern token for token.
    pub fn apply(&self, subject: &[u8], out: &mut Vec<u8>) -> bool {
        self.apply_with(subject, out, &mut |_| 0)
    }

    /// [`Transform::apply`], with `random(n)` giving the number below `n`
    /// that a `{{random(n)}}` token writes.
    pub fn apply_with(&self, subject: &[u8], out: &mut Vec<u8>, random: &mut impl FnMut(u32) -> u32) -> bool {
        out.clear();
        if self.identity {
            out.extend_from_slice(subject);
            return true;
        }
        let mut captured = [(0usize, 0usize); MAX_TRANSFORM_WILDCARDS];
        let mut rest = None;
        let mut star = 0;
        let mut offset = 0;
        let mut subject_tokens = tokens(subject);
        for s in tokens(&self.source) {
            if s == FWC {
                if offset >= subject.len() {
                    return false;
                }
                rest = Some(offset);
                break;
            }
            let Some(t) = subject_tokens.next() else { return false };
            if s == PWC {
                if let Some(slot) = captured.get_mut(star) {
                    *slot = (offset, offset + t.len());
                }
                star += 1;
            } else if s != t {
                return false;
            }
            offset += t.len() + 1;
        }
        if rest.is_none() && subject_tokens.next().is_some() {
            return false;
        }
        let token = |n: usize| {
            let (a, b) = captured.get(n).copied().unwrap_or((0, 0));
            subject.get(a..b).unwrap_or_default()
        };
        for (i, part) in self.dest.iter().enumerate() {
            if i > 0 {
                out.push(SEP);
            }
            match part {
                Part::Literal(t) => out.extend_from_slice(t),
                Part::Wildcard(n) => out.extend_from_slice(token(*n)),
                Part::Rest => out.extend_from_slice(subject.get(rest.unwrap_or(0)..).unwrap_or_default()),
                Part::Function(f) => f.write(out, subject, token, random),
            }
        }
        true
    }
}

/// The number of `*` in a source, at most [`MAX_TRANSFORM_WILDCARDS`].
fn source_wildcards(source: &str) -> Result<usize, TransformError> {
    let wildcards = tokens(source.as_bytes()).filter(|t| *t == PWC).count();
    if wildcards > MAX_TRANSFORM_WILDCARDS {
        return Err(TransformError::TooManyWildcards);
    }
    Ok(wildcards)
}

/// The pattern matching exactly the subjects both `a` and `b` match, or
/// `None` when they share none. Both must be valid patterns.
pub fn intersection(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut at, mut bt) = (tokens(a), tokens(b));
    let mut first = true;
    let mut push = |out: &mut Vec<u8>, t: &[u8]| {
        if !std::mem::take(&mut first) {
            out.push(SEP);
        }
        out.extend_from_slice(t);
    };
    loop {
        match (at.next(), bt.next()) {
            (None, None) => return Some(out),
            (Some(x), Some(y)) if x == FWC && y == FWC => {
                push(&mut out, FWC);
                return Some(out);
            }
            (Some(x), Some(y)) if x == FWC || y == FWC => {
                // The other side's remaining tokens, this one included.
                let (first_token, remaining) = if x == FWC { (y, &mut bt) } else { (x, &mut at) };
                push(&mut out, first_token);
                for t in remaining {
                    push(&mut out, t);
                }
                return Some(out);
            }
            (Some(x), Some(y)) if x == PWC => push(&mut out, y),
            (Some(x), Some(y)) if y == PWC || x == y => push(&mut out, x),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::{is_subset, matches};

    fn apply(t: &Transform, s: &str) -> Option<String> {
        let mut out = Vec::new();
        t.apply(s.as_bytes(), &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn prefix_and_positional_forms() {
        let t = Transform::with_prefix("public.>", "from.a").unwrap();
        assert_eq!(apply(&t, "public.x.y").as_deref(), Some("from.a.public.x.y"));
        assert_eq!(apply(&t, "private.x"), None);
        let t = Transform::new("a.private.*", "x.*").unwrap();
        assert_eq!(apply(&t, "a.private.9").as_deref(), Some("x.9"));
        let t = Transform::new("orders.*.*", "o.$2.{{wildcard(1)}}").unwrap();
        assert_eq!(apply(&t, "orders.eu.42").as_deref(), Some("o.42.eu"));
        assert_eq!(apply(&t, "orders.eu"), None);
        assert_eq!(apply(&t, "orders.eu.42.x"), None);
        let t = Transform::new("time", "time").unwrap();
        assert!(t.is_identity());
    }

    #[test]
    fn invertible_only() {
        assert_eq!(Transform::new("a.*", "b"), Err(TransformError::WildcardUse(1)));
        assert_eq!(Transform::new("a.*", "b.$1.$1"), Err(TransformError::WildcardUse(1)));
        assert_eq!(Transform::new("a.*", "b.$2"), Err(TransformError::NoSuchWildcard(2)));
        assert_eq!(Transform::new("a.>", "b.c"), Err(TransformError::FullWildcard));
        assert_eq!(Transform::new("a.b", "c.>"), Err(TransformError::FullWildcard));
        assert!(matches!(Transform::new("a..b", "c"), Err(TransformError::InvalidSubject(_))));
        assert_eq!(Transform::with_prefix("a", "x.*"), Err(TransformError::BadPrefix));
    }

    #[test]
    fn reverse_undoes() {
        let t = Transform::new("orders.*.*.>", "o.$2.x.$1.>").unwrap();
        let r = t.reverse();
        assert_eq!(r.source(), b"o.*.x.*.>");
        assert_eq!(apply(&t, "orders.eu.42.a.b").as_deref(), Some("o.42.x.eu.a.b"));
        assert_eq!(apply(&r, "o.42.x.eu.a.b").as_deref(), Some("orders.eu.42.a.b"));
        // Patterns pass through: a subscription mapped into the exporter's space.
        assert_eq!(apply(&r, "o.*.x.eu.>").as_deref(), Some("orders.eu.*.>"));
    }

    #[test]
    fn intersections() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("a.b", "a.b", Some("a.b")),
            ("a.*", "a.b", Some("a.b")),
            ("a.>", "a.b.c", Some("a.b.c")),
            ("a.>", "*.b.>", Some("a.b.>")),
            (">", "a.*", Some("a.*")),
            ("a.*.c", "*.b.*", Some("a.b.c")),
            ("a.b", "a.c", None),
            ("a.>", "a", None),
            ("a.*", "a.b.c", None),
        ];
        for (a, b, want) in cases {
            let got = intersection(a.as_bytes(), b.as_bytes()).map(|v| String::from_utf8(v).unwrap());
            assert_eq!(got.as_deref(), *want, "{a} ∩ {b}");
            let back = intersection(b.as_bytes(), a.as_bytes()).map(|v| String::from_utf8(v).unwrap());
            assert_eq!(back.as_deref(), *want, "{b} ∩ {a}");
        }
    }

    proptest::proptest! {
        /// The intersection is contained in both, and every literal both
        /// match is matched by it.
        #[test]
        fn intersection_is_exact(a in "[ab*]{1}(\\.[ab*]){0,3}(\\.>)?", b in "[ab*]{1}(\\.[ab*]){0,3}(\\.>)?",
                                 s in "[ab]{1}(\\.[ab]){0,5}") {
            let i = intersection(a.as_bytes(), b.as_bytes());
            let both = matches(a.as_bytes(), s.as_bytes()) && matches(b.as_bytes(), s.as_bytes());
            match i {
                Some(i) => {
                    proptest::prop_assert!(is_subset(&i, a.as_bytes()) && is_subset(&i, b.as_bytes()));
                    proptest::prop_assert_eq!(matches(&i, s.as_bytes()), both);
                }
                None => proptest::prop_assert!(!both),
            }
        }

        /// A transform and its reverse are inverse on every matching subject.
        #[test]
        fn round_trip(s in "[ab]{1}(\\.[ab]){2,5}") {
            let t = Transform::new("*.*.>", "x.$2.y.$1.>").unwrap();
            let mut there = Vec::new();
            let mut back = Vec::new();
            proptest::prop_assert!(t.apply(s.as_bytes(), &mut there));
            proptest::prop_assert!(t.reverse().apply(&there, &mut back));
            proptest::prop_assert_eq!(back, s.as_bytes().to_vec());
        }
    }
}
