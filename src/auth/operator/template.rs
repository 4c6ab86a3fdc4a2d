//! Scoped signing keys' permission templates, filled in per user as
//! nats-server's `processUserPermissionsTemplate` does: `{{name()}}`,
//! `{{subject()}}`, `{{account-name()}}`, `{{account-subject()}}`,
//! `{{tag(x)}}` and `{{account-tag(x)}}` (every value of the tags `x:...`,
//! one subject per combination). Every value filled in must be a safe
//! literal token ([`is_safe_token_value`]): a user named `*` or `a.b`, or a
//! tag `team:>`, would otherwise widen `chat.{{name()}}.>` to other users'
//! subjects (nats-server fills such values in as they are). An entry with
//! such a value is invalid, like one with a missing tag. An allow entry that
//! comes out invalid is dropped (and an allow list emptied that way becomes
//! `deny >`); a deny entry that comes out invalid refuses the login, so a
//! template can never grant more than it says.

use crate::jwt::Rules;
use crate::subject::is_safe_token_value;

/// The values a template may use.
#[derive(Debug)]
pub struct Values<'a> {
    /// The user JWT's `name`.
    pub name: &'a str,
    /// The user's key.
    pub subject: &'a str,
    /// The account JWT's `name`.
    pub account_name: &'a str,
    /// The account's key.
    pub account_subject: &'a str,
    /// The user's tags.
    pub tags: &'a [String],
    /// The account's tags.
    pub account_tags: &'a [String],
}

/// Most subjects one template entry may expand to (tag combinations).
const MAX_EXPANSION: usize = 1024;

/// Fills in `rules`; `None` when a deny entry cannot be made valid.
pub fn apply(rules: &Rules, values: &Values<'_>) -> Option<Rules> {
    let allow = expand_all(&rules.allow, values, false)?;
    let mut deny = expand_all(&rules.deny, values, true)?;
    if !rules.allow.is_empty() && allow.is_empty() {
        deny.push(">".into());
    }
    Some(Rules { allow, deny })
}

fn expand_all(list: &[String], values: &Values<'_>, strict: bool) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for entry in list {
        for subject in expand(entry, values)? {
            if crate::subject::is_valid_pattern(subject.as_bytes()) {
                out.push(subject);
            } else if strict {
                return None;
            }
        }
    }
    Some(out)
}

/// Every subject one entry stands for (an entry without templates: itself).
fn expand(entry: &str, values: &Values<'_>) -> Option<Vec<String>> {
    let mut subjects = vec![String::new()];
    for (i, token) in entry.split('.').enumerate() {
        let choices: Vec<String> = match token.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
            None => vec![token.to_owned()],
            Some(op) => {
                let op = op.trim().to_ascii_lowercase();
                let tagged = |prefix: &str, tags: &[String]| -> Vec<String> {
                    let want = format!("{}:", &op[prefix.len()..op.len() - 1]);
                    tags.iter().filter_map(|t| t.to_ascii_lowercase().strip_prefix(&want).map(str::to_owned)).collect()
                };
                let filled = match op.as_str() {
                    "name()" => vec![values.name.to_owned()],
                    "subject()" => vec![values.subject.to_owned()],
                    "account-name()" => vec![values.account_name.to_owned()],
                    "account-subject()" => vec![values.account_subject.to_owned()],
                    o if o.starts_with("account-tag(") && o.ends_with(')') => {
                        tagged("account-tag(", values.account_tags)
                    }
                    o if o.starts_with("tag(") && o.ends_with(')') => tagged("tag(", values.tags),
                    // Unknown: a token no subject can have, so the entry is invalid.
                    _ => vec![" ".to_owned()],
                };
                // A value that is not one literal token: the entry is invalid.
                match filled.iter().all(|v| is_safe_token_value(v)) {
                    true => filled,
                    false => vec![" ".to_owned()],
                }
            }
        };
        if choices.is_empty() {
            // A tag the user does not have: the entry is invalid.
            return Some(vec![" ".to_owned()]);
        }
        let mut next = Vec::with_capacity(subjects.len() * choices.len());
        for prefix in &subjects {
            for choice in &choices {
                let sep = if i == 0 { "" } else { "." };
                next.push(format!("{prefix}{sep}{choice}"));
            }
        }
        if next.len() > MAX_EXPANSION {
            return None;
        }
        subjects = next;
    }
    Some(subjects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(tags: &'a [String]) -> Values<'a> {
        Values { name: "carol", subject: "UCAROL", account_name: "A", account_subject: "AKEY", tags, account_tags: &[] }
    }

    fn rules(allow: &[&str], deny: &[&str]) -> Rules {
        Rules {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn names_keys_and_tags_fill_in() {
        let tags = vec!["dept:eng".to_string(), "dept:ops".to_string()];
        let out =
            apply(&rules(&["scoped.{{name()}}.>", "t.{{tag(dept)}}", "k.{{account-subject()}}"], &[]), &values(&tags));
        assert_eq!(out.unwrap().allow, ["scoped.carol.>", "t.eng", "t.ops", "k.AKEY"]);
    }

    #[test]
    fn what_cannot_be_filled_in_grants_nothing() {
        // A missing tag or an unknown function drops the allow entry; an
        // allow list emptied that way denies everything.
        let out = apply(&rules(&["t.{{tag(team)}}", "x.{{bogus()}}"], &[]), &values(&[])).unwrap();
        assert!(out.allow.is_empty());
        assert_eq!(out.deny, [">"]);
        // A deny entry that cannot be made refuses the login.
        assert_eq!(apply(&rules(&[">"], &["t.{{tag(team)}}"]), &values(&[])), None);
    }

    #[test]
    fn a_value_that_is_not_one_literal_token_is_never_filled_in() {
        // A user named `*` must not get every user's `chat.*.>`; `>`, a dot
        // (more tokens), whitespace or a control byte are refused alike.
        for name in ["*", ">", "bob.x", "a*", "b>c", "a b", "tab\t", "nl\n", "del\u{7f}", "nbsp\u{a0}", ""] {
            let vals = Values { name, ..values(&[]) };
            let out = apply(&rules(&["chat.{{name()}}.>", "public"], &[]), &vals).unwrap();
            assert_eq!(out.allow, ["public"], "{name:?}");
            assert_eq!(apply(&rules(&[">"], &["chat.{{name()}}"]), &vals), None, "deny with {name:?}");
        }
        // Every function: tags (one bad value spoils the entry), account names.
        let tags = vec!["team:eng".to_string(), "team:*".to_string()];
        let out = apply(&rules(&["t.{{tag(team)}}"], &[]), &values(&tags)).unwrap();
        assert!(out.allow.is_empty() && out.deny == [">"]);
        let vals = Values { account_name: "A.>", account_tags: &tags, ..values(&[]) };
        let out = apply(&rules(&["a.{{account-name()}}", "b.{{account-tag(team)}}", "ok"], &[]), &vals).unwrap();
        assert_eq!(out.allow, ["ok"]);
        // Ordinary names still fill in.
        let vals = Values { name: "Zoë-1_x", ..values(&[]) };
        assert_eq!(apply(&rules(&["chat.{{name()}}.>"], &[]), &vals).unwrap().allow, ["chat.Zoë-1_x.>"]);
    }
}
