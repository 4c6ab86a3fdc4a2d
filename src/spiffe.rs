//! SPIFFE IDs (`spiffe://<trust domain>/<path>`), parsed strictly by the
//! SPIFFE ID specification (SPIFFE-ID.md §2), for the strict mode of
//! `tls { verify_and_map, spiffe_trust_domain }`.
//!
//! The specification is narrower than a URI on purpose, and so is this
//! parser: the scheme is exactly `spiffe://`; the trust domain is 1 to 255
//! of `a-z 0-9 . - _` (so no upper case, port or userinfo can hide in it);
//! the path is one or more `/`-separated segments of `a-z A-Z 0-9 . - _`,
//! none empty, `.` or `..` (so no query, fragment, percent-encoding or
//! trailing slash); the whole ID is at most 2,048 bytes. Because nothing
//! is normalised, an ID that parses is in its one canonical spelling, and
//! two IDs are the same workload exactly when their strings are equal —
//! which is what lets a configured user be named by its SPIFFE ID.
//!
//! A leaf of the layers: it imports nothing of warden's, so the config
//! reader (which checks a configured trust domain) and the login (which
//! checks a certificate's URI) share one definition.

use std::fmt;

/// The scheme and separator every SPIFFE ID starts with.
const PREFIX: &str = "spiffe://";

/// Longest SPIFFE ID (the specification's limit for implementations).
pub const MAX_ID_LEN: usize = 2048;

/// Longest trust domain name (the specification's limit).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// A trust domain name, valid by construction: 1 to 255 bytes of lower-case
/// letters, digits, `.`, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Parses a bare trust domain name (`example.org`, not a SPIFFE ID).
    pub fn parse(name: &str) -> Result<TrustDomain, SpiffeIdError> {
        if name.contains('/') {
            return Err(SpiffeIdError::NotBareName);
        }
        check_trust_domain(name)?;
        Ok(TrustDomain(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SPIFFE ID of a workload (a non-empty path), valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    /// The whole ID, in its one canonical spelling.
    id: String,
    /// Where the path starts in `id` (its leading `/`).
    path_at: usize,
}

impl SpiffeId {
    /// Parses `spiffe://<trust domain>/<path>`. The ID of a trust domain
    /// itself (no path) is refused: it names no workload, so it cannot name
    /// a user.
    pub fn parse(id: &str) -> Result<SpiffeId, SpiffeIdError> {
        if id.len() > MAX_ID_LEN {
            return Err(SpiffeIdError::TooLong);
        }
        let rest = match id.get(..PREFIX.len()) {
            Some(scheme) if scheme == PREFIX => &id[PREFIX.len()..],
            _ => return Err(SpiffeIdError::WrongScheme),
        };
        let (domain, path) = match rest.find(['/', '?', '#']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        check_trust_domain(domain)?;
        if path.starts_with(['?', '#']) {
            return Err(SpiffeIdError::QueryOrFragment);
        }
        if path.is_empty() {
            return Err(SpiffeIdError::NoPath);
        }
        for segment in path[1..].split('/') {
            check_segment(segment)?;
        }
        Ok(SpiffeId { id: id.to_owned(), path_at: PREFIX.len() + domain.len() })
    }

    /// The trust domain's name.
    pub fn trust_domain(&self) -> &str {
        &self.id[PREFIX.len()..self.path_at]
    }

    /// The path, with its leading `/`.
    pub fn path(&self) -> &str {
        &self.id[self.path_at..]
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// Whether it belongs to `domain`.
    pub fn is_in(&self, domain: &TrustDomain) -> bool {
        self.trust_domain() == domain.as_str()
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// Why a string is not a SPIFFE ID or trust domain (the rule it breaks, in
/// the words of the specification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpiffeIdError {
    /// It does not start with `spiffe://` (lower case).
    WrongScheme,
    /// A trust domain given as a SPIFFE ID or URL rather than a bare name.
    NotBareName,
    /// Longer than 2,048 bytes.
    TooLong,
    /// The trust domain is empty.
    EmptyTrustDomain,
    /// The trust domain is longer than 255 bytes.
    TrustDomainTooLong,
    /// The trust domain has a port (`:`).
    Port,
    /// The trust domain has userinfo (`@`).
    Userinfo,
    /// The trust domain has a character other than `a-z 0-9 . - _`.
    TrustDomainCharacter,
    /// A query (`?`) or fragment (`#`).
    QueryOrFragment,
    /// No path: the ID of a trust domain, not of a workload.
    NoPath,
    /// An empty path segment (`//` or a trailing `/`).
    EmptySegment,
    /// A `.` or `..` path segment.
    DotSegment,
    /// A path character other than `a-z A-Z 0-9 . - _`.
    PathCharacter,
}

impl fmt::Display for SpiffeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpiffeIdError::WrongScheme => "it does not start with spiffe://",
            SpiffeIdError::NotBareName => "a trust domain is a bare name such as example.org, not a SPIFFE ID or URL",
            SpiffeIdError::TooLong => "it is longer than 2048 bytes",
            SpiffeIdError::EmptyTrustDomain => "the trust domain is empty",
            SpiffeIdError::TrustDomainTooLong => "the trust domain is longer than 255 bytes",
            SpiffeIdError::Port => "the trust domain has a port",
            SpiffeIdError::Userinfo => "the trust domain has userinfo",
            SpiffeIdError::TrustDomainCharacter => {
                "the trust domain may hold only lower-case letters, digits, '.', '-' and '_'"
            }
            SpiffeIdError::QueryOrFragment => "it has a query or fragment",
            SpiffeIdError::NoPath => "it has no path (it names a trust domain, not a workload)",
            SpiffeIdError::EmptySegment => "a path segment is empty",
            SpiffeIdError::DotSegment => "a path segment is '.' or '..'",
            SpiffeIdError::PathCharacter => "a path segment may hold only letters, digits, '.', '-' and '_'",
        })
    }
}

impl std::error::Error for SpiffeIdError {}

fn check_trust_domain(name: &str) -> Result<(), SpiffeIdError> {
    if name.is_empty() {
        return Err(SpiffeIdError::EmptyTrustDomain);
    }
    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::TrustDomainTooLong);
    }
    if name.contains('@') {
        return Err(SpiffeIdError::Userinfo);
    }
    if name.contains(':') {
        return Err(SpiffeIdError::Port);
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')) {
        return Err(SpiffeIdError::TrustDomainCharacter);
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), SpiffeIdError> {
    match segment {
        "" => Err(SpiffeIdError::EmptySegment),
        "." | ".." => Err(SpiffeIdError::DotSegment),
        _ if segment.contains(['?', '#']) => Err(SpiffeIdError::QueryOrFragment),
        _ if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) => {
            Err(SpiffeIdError::PathCharacter)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_id_parses_into_its_parts() {
        let id = SpiffeId::parse("spiffe://example.org/ns/prod/sa/web-1_a.b").unwrap();
        assert_eq!(id.trust_domain(), "example.org");
        assert_eq!(id.path(), "/ns/prod/sa/web-1_a.b");
        assert_eq!(id.as_str(), "spiffe://example.org/ns/prod/sa/web-1_a.b");
        assert!(id.is_in(&TrustDomain::parse("example.org").unwrap()));
        assert!(!id.is_in(&TrustDomain::parse("example.com").unwrap()));
        assert!(!id.is_in(&TrustDomain::parse("org").unwrap()), "a suffix is another domain");
        let id = SpiffeId::parse("spiffe://a_b-c.9/X").unwrap();
        assert_eq!((id.trust_domain(), id.path()), ("a_b-c.9", "/X"));
    }

    #[test]
    fn every_rule_of_the_specification_is_refused_by_name() {
        use SpiffeIdError::*;
        let long_path = format!("spiffe://example.org/{}", "a".repeat(MAX_ID_LEN));
        let long_domain = format!("spiffe://{}/a", "d".repeat(MAX_TRUST_DOMAIN_LEN + 1));
        let cases: &[(&str, SpiffeIdError)] = &[
            ("", WrongScheme),
            ("https://example.org/a", WrongScheme),
            ("SPIFFE://example.org/a", WrongScheme),
            ("spiffe:/example.org/a", WrongScheme),
            ("spiffe://", EmptyTrustDomain),
            ("spiffe:///a", EmptyTrustDomain),
            ("spiffe://example.org", NoPath),
            ("spiffe://example.org/", EmptySegment),
            ("spiffe://example.org/a/", EmptySegment),
            ("spiffe://example.org//a", EmptySegment),
            ("spiffe://example.org/a/./b", DotSegment),
            ("spiffe://example.org/..", DotSegment),
            ("spiffe://example.org:8443/a", Port),
            ("spiffe://user@example.org/a", Userinfo),
            ("spiffe://Example.org/a", TrustDomainCharacter),
            ("spiffe://exa mple.org/a", TrustDomainCharacter),
            ("spiffe://example.org?x=1", QueryOrFragment),
            ("spiffe://example.org/a?x=1", QueryOrFragment),
            ("spiffe://example.org#frag", QueryOrFragment),
            ("spiffe://example.org/a#frag", QueryOrFragment),
            ("spiffe://example.org/a%2Fb", PathCharacter),
            ("spiffe://example.org/a b", PathCharacter),
            ("spiffe://example.org/caf\u{e9}", PathCharacter),
            (&long_path, TooLong),
            (&long_domain, TrustDomainTooLong),
        ];
        for (input, want) in cases {
            assert_eq!(SpiffeId::parse(input).err(), Some(*want), "{input:?}");
        }
    }

    #[test]
    fn a_trust_domain_is_a_bare_lower_case_name() {
        assert_eq!(TrustDomain::parse("prod.example-1_x").unwrap().as_str(), "prod.example-1_x");
        for (input, want) in [
            ("", SpiffeIdError::EmptyTrustDomain),
            ("Example.org", SpiffeIdError::TrustDomainCharacter),
            ("spiffe://example.org", SpiffeIdError::NotBareName),
            ("example.org/a", SpiffeIdError::NotBareName),
            ("example.org:443", SpiffeIdError::Port),
            ("me@example.org", SpiffeIdError::Userinfo),
        ] {
            assert_eq!(TrustDomain::parse(input).err(), Some(want), "{input:?}");
        }
        assert!(TrustDomain::parse(&"d".repeat(MAX_TRUST_DOMAIN_LEN)).is_ok());
        assert_eq!(TrustDomain::parse(&"d".repeat(256)).err(), Some(SpiffeIdError::TrustDomainTooLong));
    }

    #[test]
    fn the_longest_id_allowed_parses() {
        let prefix = "spiffe://example.org/";
        let id = format!("{prefix}{}", "a".repeat(MAX_ID_LEN - prefix.len()));
        assert_eq!(SpiffeId::parse(&id).unwrap().as_str().len(), MAX_ID_LEN);
    }

    proptest::proptest! {
        /// Whatever parses is in the one spelling the rules allow, so string
        /// equality is identity equality, and parsing never panics.
        #[test]
        fn whatever_parses_is_canonical(input in "(spiffe://)?[a-zA-Z0-9./_:@?#% -]{0,40}") {
            if let Ok(id) = SpiffeId::parse(&input) {
                proptest::prop_assert_eq!(id.as_str(), input.as_str());
                proptest::prop_assert!(TrustDomain::parse(id.trust_domain()).is_ok());
                proptest::prop_assert!(id.path().len() > 1);
                for segment in id.path()[1..].split('/') {
                    proptest::prop_assert!(!segment.is_empty() && segment != "." && segment != "..");
                    proptest::prop_assert!(segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
                }
            }
        }
    }
}
