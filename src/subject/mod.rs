//! Subjects, wildcard patterns and the rules that relate them.
//!
//! A subject is a `.`-separated list of non-empty tokens. In a *pattern* a
//! token that is exactly `*` matches one token and a final token that is
//! exactly `>` matches one or more tokens; `foo*` or `a.b>` are literals, as in
//! nats-server. Everything here works on bytes and imports nothing from tokio,
//! so the router, the permission compiler and the fuzz targets share it.

mod cache;
mod mapping;
mod transform;
mod trie;

pub use cache::SubjectCache;
pub use mapping::{
    overlapping, Described, DescribedChoice, MapDestination, Mapped, MappingError, MappingRule, Mappings,
    MAX_DESTINATIONS, MAX_MAPPINGS,
};
pub use transform::{
    intersection, Problem, Transform, TransformError, MAX_PARTITION_ARGUMENTS, MAX_TRANSFORM_WILDCARDS,
};
pub use trie::Trie;

/// Token separator.
const SEP: u8 = b'.';
/// Single-token wildcard.
const PWC: &[u8] = b"*";
/// Trailing multi-token wildcard.
const FWC: &[u8] = b">";

/// Splits a subject or pattern into its tokens.
pub fn tokens(subject: &[u8]) -> impl Iterator<Item = &[u8]> {
    subject.split(|b| *b == SEP)
}

/// Whether a token is a wildcard (`*` or `>`).
pub fn is_wildcard_token(token: &[u8]) -> bool {
    token == PWC || token == FWC
}

/// Bytes that may never appear in a subject: whitespace, every other
/// control byte (below 0x20) and DEL. nats-server refuses only whitespace;
/// a vertical tab or DEL at the end of a subject slipped past exact deny
/// rules there, and reached subscribers looking like the denied subject.
fn is_forbidden_byte(b: u8) -> bool {
    b <= b' ' || b == 0x7f
}

/// One pass over a subject: `Some(has_wildcard)` when it is a valid
/// pattern (valid UTF-8, non-empty tokens, none of the forbidden bytes, `>`
/// only as the last token), else `None`. A single loop over the bytes
/// (counted with callgrind: fewer instructions than splitting into tokens,
/// and than a vectorised pre-pass plus `memchr` on short subjects).
fn scan(subject: &[u8]) -> Option<bool> {
    let mut wildcard = false;
    let mut token_len = 0usize;
    let mut first = 0u8;
    let mut high = 0u8;
    for &b in subject {
        if b == SEP {
            match (token_len, first) {
                (0, _) | (1, b'>') => return None,
                (1, b'*') => wildcard = true,
                _ => {}
            }
            token_len = 0;
            continue;
        }
        if is_forbidden_byte(b) {
            return None;
        }
        high |= b;
        if token_len == 0 {
            first = b;
        }
        token_len += 1;
    }
    match (token_len, first) {
        (0, _) => return None,
        (1, b'*' | b'>') => wildcard = true,
        _ => {}
    }
    // The byte scan decides the common (ASCII) case alone.
    (high < 0x80 || std::str::from_utf8(subject).is_ok()).then_some(wildcard)
}

/// A valid subscription subject: valid UTF-8, non-empty tokens, none of the
/// forbidden bytes, `>` only as the last token. Wildcards are allowed.
pub fn is_valid_pattern(subject: &[u8]) -> bool {
    scan(subject).is_some()
}

/// A valid queue group name: one or more tokens of the same bytes as a
/// subject's (valid UTF-8, no whitespace or control bytes).
pub fn is_valid_queue(queue: &[u8]) -> bool {
    !queue.is_empty() && !queue.iter().any(|b| is_forbidden_byte(*b)) && std::str::from_utf8(queue).is_ok()
}

/// Whether `value`, which came from outside (a user's name or tag filled
/// into a permission template), may stand as one literal token: not empty,
/// and no `.` (it would add tokens), no `*` or `>` anywhere, no whitespace
/// and no control character. Stricter than a subject's token, where `a*` is
/// a literal: a user named `*` in `chat.{{name()}}.>` would otherwise be
/// granted every user's `chat.*.>`, so nothing wildcard-like passes.
pub fn is_safe_token_value(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control())
}

/// Whether `token` is one template function as a whole subject token
/// (`{{name()}}`, `{{tag(team)}}`, ...): the syntax the config reader
/// accepts in permission subjects, filled in per user by `perms::template`.
pub fn is_template_token(token: &str) -> bool {
    let Some(op) = token.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) else {
        return false;
    };
    let op = op.trim().to_ascii_lowercase();
    let argument = |prefix: &str| {
        op.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(')')).is_some_and(|arg| {
            !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
    };
    matches!(op.as_str(), "name()" | "subject()" | "account-name()" | "account-subject()")
        || argument("tag(")
        || argument("account-tag(")
}

/// A valid publish subject: a pattern with no wildcard tokens.
pub fn is_valid_literal(subject: &[u8]) -> bool {
    scan(subject) == Some(false)
}

/// Whether `pattern` (which may hold wildcards) matches the literal `subject`.
///
/// Both must be valid; a wildcard token inside `subject` is treated as a
/// literal, which is what a pattern in a permission list needs.
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut subject_tokens = tokens(subject);
    for p in tokens(pattern) {
        if p == FWC {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(s) if p == PWC || p == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// Whether every subject that `inner` can match is also matched by `outer`.
///
/// This is the subscribe-permission rule: `SUB _INBOX.>` is *not* contained
/// in `_INBOX.*` (it can receive `_INBOX.a.b`), unlike in nats-server 2.9.10.
pub fn is_subset(inner: &[u8], outer: &[u8]) -> bool {
    let mut inner_tokens = tokens(inner);
    for o in tokens(outer) {
        let Some(i) = inner_tokens.next() else {
            return false;
        };
        if o == FWC {
            return true;
        }
        if i == FWC {
            return false;
        }
        if o != PWC && (i == PWC || i != o) {
            return false;
        }
    }
    inner_tokens.next().is_none()
}

/// Whether some literal subject is matched by both patterns.
///
/// Used to decide whether a wildcard subscription needs a delivery-time
/// filter for a deny rule it overlaps.
pub fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let mut at = tokens(a);
    let mut bt = tokens(b);
    loop {
        match (at.next(), bt.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == FWC || y == FWC => return true,
            (Some(x), Some(y)) if x == PWC || y == PWC || x == y => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests;
