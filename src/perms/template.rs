//! Permission templates, filled in per user as nats-server's
//! `processUserPermissionsTemplate` does for JWT scoped signing keys, and
//! by warden for config users too: `{{name()}}`, `{{subject()}}`,
//! `{{account-name()}}`, `{{account-subject()}}`, `{{tag(x)}}` and
//! `{{account-tag(x)}}` (every value of the tags `x:...`, one subject per
//! combination). Every value filled in must be a safe literal token
//! ([`is_safe_token_value`]): a user named `*` or `a.b`, or a tag `team:>`,
//! would otherwise widen `chat.{{name()}}.>` to other users' subjects
//! (nats-server fills such values in as they are). An entry with such a
//! value is invalid, like one with a missing tag or value. Callers drop an
//! invalid allow entry and refuse the user for an invalid deny entry, so a
//! template can never grant more than it says.

use crate::config::{Permissions, SubjectRules};
use crate::subject::is_safe_token_value;

/// The values a template may use; an empty one has no value, so an entry
/// using it is invalid.
#[derive(Debug)]
pub struct Values<'a> {
    /// The user JWT's `name`; a config user's name, or an nkey user's key.
    pub name: &'a str,
    /// The user's key (empty for a config user with a password).
    pub subject: &'a str,
    /// The account JWT's `name`; a config account's name.
    pub account_name: &'a str,
    /// The account's key (empty in config mode, where accounts have none).
    pub account_subject: &'a str,
    /// The user's tags.
    pub tags: &'a [String],
    /// The account's tags.
    pub account_tags: &'a [String],
}

/// Most subjects one template entry may expand to (tag combinations).
const MAX_EXPANSION: usize = 1024;

/// Fills in every entry of `list`. An entry that comes out invalid is
/// dropped, or with `strict` (deny lists) makes the whole list `None`. A
/// subscribe entry's queue group (`"chat.{{name()}} workers"`) is kept as
/// written after each subject.
pub fn fill_list(list: &[String], values: &Values<'_>, strict: bool) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for entry in list {
        let (subject, queue) = match entry.split_once(' ') {
            Some((subject, queue)) => (subject, Some(queue)),
            None => (entry.as_str(), None),
        };
        for subject in expand(subject, values)? {
            if crate::subject::is_valid_pattern(subject.as_bytes()) {
                out.push(match queue {
                    Some(queue) => format!("{subject} {queue}"),
                    None => subject,
                });
            } else if strict {
                return None;
            }
        }
    }
    Some(out)
}

/// `perms` filled in for one user: allow and literal entries that come out
/// invalid are dropped (an allow list emptied that way still denies
/// everything, as any empty allow list does); `None` when a deny entry
/// cannot be made valid, which must refuse the user.
pub fn fill(perms: &Permissions, values: &Values<'_>) -> Option<Permissions> {
    let list = |l: &Option<Vec<String>>, strict: bool| match l {
        Some(l) => fill_list(l, values, strict).map(Some),
        None => Some(None),
    };
    let rules = |r: &Option<SubjectRules>| match r {
        Some(r) => Some(Some(SubjectRules {
            allow: list(&r.allow, false)?,
            literal: list(&r.literal, false)?,
            deny: list(&r.deny, true)?,
        })),
        None => Some(None),
    };
    Some(Permissions {
        publish: rules(&perms.publish)?,
        subscribe: rules(&perms.subscribe)?,
        allow_responses: perms.allow_responses,
    })
}

/// Whether any entry of `perms` holds a template.
pub fn has_templates(perms: &Permissions) -> bool {
    let lists = [&perms.publish, &perms.subscribe]
        .into_iter()
        .flatten()
        .flat_map(|r| [&r.allow, &r.literal, &r.deny].into_iter().flatten());
    lists.flatten().any(|entry| entry.contains("{{"))
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

    fn list(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    fn carol(tags: &[String]) -> Values<'_> {
        Values { name: "carol", subject: "", account_name: "APP", account_subject: "", tags, account_tags: &[] }
    }

    #[test]
    fn config_rules_fill_in_with_queues_literals_and_the_deny_rule() {
        let tags = vec!["team:eng".to_string()];
        let perms = Permissions {
            publish: Some(SubjectRules {
                allow: list(&["chat.{{name()}}.>", "k.{{subject()}}"]),
                ..Default::default()
            }),
            subscribe: Some(SubjectRules {
                allow: list(&["team.{{tag(team)}}.>", "jobs.{{account-name()}} workers"]),
                literal: list(&["sensor.{{name()}}.*"]),
                deny: list(&["team.{{tag(team)}}.secret"]),
            }),
            allow_responses: None,
        };
        assert!(has_templates(&perms));
        let out = fill(&perms, &carol(&tags)).unwrap();
        // A config user with a password has no key: that entry is dropped.
        assert_eq!(out.publish.unwrap().allow, list(&["chat.carol.>"]));
        let sub = out.subscribe.unwrap();
        assert_eq!(sub.allow, list(&["team.eng.>", "jobs.APP workers"]));
        assert_eq!(sub.literal, list(&["sensor.carol.*"]));
        assert_eq!(sub.deny, list(&["team.eng.secret"]));
        // Without the tag the deny cannot be filled in: the user is refused.
        assert_eq!(fill(&perms, &carol(&[])), None);
        // A name that is not one literal token never widens an allow entry.
        let dotted = Values { name: "a.b", ..carol(&tags) };
        let out = fill(&perms, &dotted).unwrap();
        assert_eq!(out.publish.unwrap().allow, Some(Vec::new()), "an emptied allow list still denies all");
        assert!(!has_templates(&Permissions::default()));
    }
}

/// `fill_list` against a naive evaluator written from the module's rules,
/// and the rule that matters most checked on the compiled set: a template
/// never lets a user publish where its own values do not lead.
#[cfg(test)]
mod naive_tests {
    use proptest::prelude::*;

    use super::*;
    use crate::perms::PermissionSet;

    #[derive(Debug, Clone)]
    enum Token {
        Literal(&'static str),
        Name,
        Tag,
    }

    fn token() -> impl Strategy<Value = Token> {
        prop_oneof![
            3 => prop::sample::select(vec!["a", "b", "*", ">"]).prop_map(Token::Literal),
            1 => Just(Token::Name),
            1 => Just(Token::Tag),
        ]
    }

    fn text(tokens: &[Token]) -> String {
        let words: Vec<&str> = tokens
            .iter()
            .map(|t| match t {
                Token::Literal(s) => s,
                Token::Name => "{{name()}}",
                Token::Tag => "{{tag(t)}}",
            })
            .collect();
        words.join(".")
    }

    /// A value is filled in only when it is one plain token.
    fn safe(v: &str) -> bool {
        !v.is_empty() && !v.chars().any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
    }

    /// The subjects an entry stands for; `None` when it is invalid.
    fn naive(tokens: &[Token], name: &str, tags: &[String]) -> Option<Vec<String>> {
        let tag_values: Vec<String> = tags.iter().filter_map(|t| t.strip_prefix("t:").map(str::to_owned)).collect();
        let mut subjects = vec![Vec::<String>::new()];
        for token in tokens {
            let choices = match token {
                Token::Literal(s) => vec![s.to_string()],
                Token::Name if safe(name) => vec![name.to_owned()],
                Token::Tag if !tag_values.is_empty() && tag_values.iter().all(|v| safe(v)) => tag_values.clone(),
                _ => return None,
            };
            subjects = subjects
                .iter()
                .flat_map(|prefix| {
                    choices.iter().map(move |c| {
                        let mut next = prefix.clone();
                        next.push(c.clone());
                        next
                    })
                })
                .collect();
        }
        let out: Vec<String> = subjects.into_iter().map(|s| s.join(".")).collect();
        out.iter().all(|s| crate::subject::is_valid_pattern(s.as_bytes())).then_some(out)
    }

    fn entries() -> impl Strategy<Value = Vec<Vec<Token>>> {
        prop::collection::vec(prop::collection::vec(token(), 1..4), 1..4)
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["x", "y", "", "a.b", "*", ">", "sp ace", "tab\t", "zoë"]).prop_map(String::from)
    }

    fn tags() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(
            prop::sample::select(vec!["t:1", "t:2", "t:*", "t:a.b", "u:3"]).prop_map(String::from),
            0..3,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn fill_list_agrees_with_the_naive_evaluator(list in entries(), name in name(), tags in tags()) {
            let values = Values { name: &name, subject: "", account_name: "A", account_subject: "", tags: &tags, account_tags: &[] };
            let texts: Vec<String> = list.iter().map(|e| text(e)).collect();
            let each: Vec<Option<Vec<String>>> = list.iter().map(|e| naive(e, &name, &tags)).collect();
            // Allow lists drop what is invalid; deny lists fail on it.
            let lenient: Vec<String> = each.iter().flatten().flatten().cloned().collect();
            prop_assert_eq!(fill_list(&texts, &values, false), Some(lenient.clone()));
            let strict = each.iter().all(Option::is_some).then_some(lenient);
            prop_assert_eq!(fill_list(&texts, &values, true), strict);
        }

        #[test]
        fn a_template_never_grants_another_users_subjects(name in name(), other in "[a-z]{1,3}", tail in "[a-z]{1,3}") {
            let perms = Permissions {
                publish: Some(SubjectRules { allow: Some(vec!["chat.{{name()}}.>".into()]), ..SubjectRules::default() }),
                ..Permissions::default()
            };
            let values = Values { name: &name, subject: "", account_name: "A", account_subject: "", tags: &[], account_tags: &[] };
            let set = PermissionSet::compile(&fill(&perms, &values).unwrap()).unwrap();
            let subject = format!("chat.{other}.{tail}");
            prop_assert_eq!(set.may_publish(subject.as_bytes()), safe(&name) && other == name, "{} as {:?}", subject, name);
        }
    }
}
