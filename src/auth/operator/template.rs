//! Scoped signing keys' permission templates (see [`crate::perms::template`]
//! for the functions and the safety rule): an allow entry that comes out
//! invalid is dropped (and an allow list emptied that way becomes `deny
//! >`); a deny entry that comes out invalid refuses the login.

use crate::jwt::Rules;
use crate::perms::template::fill_list;
pub use crate::perms::template::Values;

/// Fills in `rules`; `None` when a deny entry cannot be made valid.
pub fn apply(rules: &Rules, values: &Values<'_>) -> Option<Rules> {
    let allow = fill_list(&rules.allow, values, false)?;
    let mut deny = fill_list(&rules.deny, values, true)?;
    if !rules.allow.is_empty() && allow.is_empty() {
        deny.push(">".into());
    }
    Some(Rules { allow, deny })
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
