//! Publish rules compiled to tries: a check is at most two trie walks.

use crate::subject::is_valid_pattern;

use super::{PermsError, RuleList, RuleTrie};

/// Compiled `publish` rules.
#[derive(Debug, Default)]
pub(super) struct PublishRules {
    /// `None`: no allow list, everything passes this stage. `Some` (even
    /// empty): the subject must match one of its patterns.
    allow: Option<RuleTrie>,
    /// `None` when there is no deny entry, so the common case skips a walk.
    deny: Option<RuleTrie>,
}

impl PublishRules {
    /// Compiles allow and deny lists as written in the config.
    pub(super) fn compile(allow: Option<&[String]>, deny: Option<&[String]>) -> Result<Self, PermsError> {
        let allow = allow.map(|list| build_trie(list, RuleList::PublishAllow)).transpose()?;
        let deny = match deny {
            Some(list) if !list.is_empty() => Some(build_trie(list, RuleList::PublishDeny)?),
            _ => None,
        };
        Ok(PublishRules { allow, deny })
    }

    /// Rules that refuse everything (an empty allow list).
    pub(super) fn deny_all() -> Self {
        PublishRules { allow: Some(RuleTrie::default()), deny: None }
    }

    /// Whether there is neither an allow nor a deny list.
    pub(super) fn is_unrestricted(&self) -> bool {
        self.allow.is_none() && self.deny.is_none()
    }

    /// Allow (if present) must match, then deny must not.
    pub(super) fn permits(&self, subject: &[u8]) -> bool {
        if let Some(allow) = &self.allow {
            if !allow.has_match(subject) {
                return false;
            }
        }
        match &self.deny {
            Some(deny) => !deny.has_match(subject),
            None => true,
        }
    }
}

fn build_trie(list: &[String], which: RuleList) -> Result<RuleTrie, PermsError> {
    let mut trie = RuleTrie::default();
    for entry in list {
        if !is_valid_pattern(entry.as_bytes()) {
            return Err(PermsError::InvalidEntry { list: which, entry: entry.clone() });
        }
        trie.insert(entry.as_bytes(), ());
    }
    Ok(trie)
}
