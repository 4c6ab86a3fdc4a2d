//! An account JWT's `mappings` claim as the broker's mapping rules, the
//! same [`MappingRule`]s an account's `mappings {}` in a config becomes, so
//! weights, cluster-scoped destinations and the transform functions behave
//! alike whichever way the account was defined.
//!
//! Checked when the JWT enters (loaded or pushed), in two steps:
//! - the checks of the Go jwt library's `Mapping.Validate` (v2.8, the one
//!   nats-server 2.15.1 links), with its texts, so a push that nats-server
//!   answers "jwt validation failed" is answered so here too: an empty
//!   subject, one with a space, unscoped weights over 100 together, one
//!   cluster's weights over 100 together;
//! - the rule as the broker will compile it ([`MappingRule::check`]): a
//!   destination that is no transform of its source, an unknown function,
//!   a repeated destination. nats-server logs such a rule and loads the
//!   account without it, so its publishes go unmapped; warden refuses the
//!   JWT instead (SECURITY.md: a mapping can be what keeps traffic apart,
//!   and half an account is not what its issuer signed).

use crate::jwt::AccountClaims;
use crate::subject::{MapDestination, MappingRule, MAX_MAPPINGS};

/// The claim's rules, or every reason it is invalid.
pub(super) fn rules(claims: &AccountClaims) -> Result<Vec<MappingRule>, Vec<String>> {
    let mut errors = Vec::new();
    if claims.mappings.len() > MAX_MAPPINGS {
        errors.push(format!("at most {MAX_MAPPINGS} mappings per account"));
        return Err(errors);
    }
    let mut rules = Vec::with_capacity(claims.mappings.len());
    for (source, entries) in &claims.mappings {
        library_checks(source, entries, &mut errors);
        let rule = MappingRule {
            source: source.clone(),
            destinations: entries
                .iter()
                .map(|e| MapDestination {
                    subject: e.subject.clone(),
                    weight: e.weight(),
                    cluster: (!e.cluster.is_empty()).then(|| e.cluster.clone()),
                })
                .collect(),
        };
        if errors.is_empty() {
            if let Err(err) = rule.check() {
                errors.push(format!("Error adding mapping for {source:?} : {err}"));
            }
        }
        rules.push(rule);
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// The Go library's checks of one entry, with its texts (sums kept wide:
/// the library's `uint8` sum wraps, so three destinations of 100 would
/// pass there).
fn library_checks(source: &str, entries: &[crate::jwt::WeightedMapping], errors: &mut Vec<String>) {
    subject_checks(source, errors);
    let mut total: u32 = 0;
    let mut per_cluster: Vec<(&str, u32)> = Vec::new();
    for e in entries {
        subject_checks(&e.subject, errors);
        if e.cluster.is_empty() {
            total += u32::from(e.weight());
            continue;
        }
        let at = match per_cluster.iter().position(|(c, _)| *c == e.cluster) {
            Some(at) => at,
            None => {
                per_cluster.push((&e.cluster, 0));
                per_cluster.len() - 1
            }
        };
        per_cluster[at].1 += u32::from(e.weight);
        if per_cluster[at].1 > 100 {
            errors.push(format!(
                "Mapping {source:?} in cluster {:?} exceeds 100% among all of it's weighted to mappings",
                e.cluster
            ));
        }
    }
    if total > 100 {
        errors.push(format!("Mapping {source:?} exceeds 100% among all of it's weighted to mappings"));
    }
}

/// The library's `Subject.Validate`.
fn subject_checks(subject: &str, errors: &mut Vec<String>) {
    if subject.is_empty() {
        errors.push("subject cannot be empty".into());
    }
    if subject.contains(' ') {
        errors.push(format!("subject {subject:?} cannot have spaces"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: serde_json::Value) -> AccountClaims {
        serde_json::from_value(serde_json::json!({ "mappings": json })).unwrap()
    }

    #[test]
    fn weights_clusters_and_functions_become_rules() {
        let rules = rules(&claims(serde_json::json!({
            "a.*": [{ "subject": "b.{{wildcard(1)}}" }],
            "canary": [{ "subject": "v1", "weight": 80 }, { "subject": "v2", "weight": 20 }],
            "scoped": [{ "subject": "east", "weight": 100, "cluster": "east" }, { "subject": "any" }],
        })))
        .unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].destinations[0].weight, 100, "an absent weight is 100");
        assert_eq!(rules[1].destinations[1].weight, 20);
        assert_eq!(rules[2].destinations[0].cluster.as_deref(), Some("east"));
        assert_eq!(rules[2].destinations[1].cluster, None);
    }

    #[test]
    fn invalid_claims_are_refused_with_the_librarys_texts() {
        let errors = rules(&claims(serde_json::json!({
            "over": [{ "subject": "x", "weight": 60 }, { "subject": "y", "weight": 60 }],
        })))
        .unwrap_err();
        assert_eq!(errors, ["Mapping \"over\" exceeds 100% among all of it's weighted to mappings"]);
        let errors = rules(&claims(serde_json::json!({
            "c": [{ "subject": "x", "weight": 70, "cluster": "e" }, { "subject": "y", "weight": 70, "cluster": "e" }],
        })))
        .unwrap_err();
        assert!(errors[0].contains("in cluster \"e\" exceeds 100%"), "{errors:?}");
        // Three of 100 wrap the library's uint8 sum to 44; not here.
        let errors = rules(&claims(serde_json::json!({
            "wrap": [{ "subject": "x" }, { "subject": "y" }, { "subject": "z" }],
        })))
        .unwrap_err();
        assert!(errors[0].contains("exceeds 100%"), "{errors:?}");
        let errors = rules(&claims(serde_json::json!({ "s": [{ "subject": "has space" }] }))).unwrap_err();
        assert_eq!(errors, ["subject \"has space\" cannot have spaces"]);
        // What the library lets through but no server can apply.
        let errors = rules(&claims(serde_json::json!({ "a.*": [{ "subject": "b.{{nope(1)}}" }] }))).unwrap_err();
        assert!(errors[0].starts_with("Error adding mapping for \"a.*\""), "{errors:?}");
        let errors = rules(&claims(serde_json::json!({ "a": [{ "subject": "b.$1" }] }))).unwrap_err();
        assert!(errors[0].contains("wildcard index out of range"), "{errors:?}");
    }
}
