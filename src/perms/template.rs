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

/// Fills in every entry of `list`. An entry that comes out invalid is
/// dropped, or with `strict` (deny lists) makes the whole list `None`.
pub fn fill_list(list: &[String], values: &Values<'_>, strict: bool) -> Option<Vec<String>> {
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
