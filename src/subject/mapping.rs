//! Subject mappings (`mappings {}`, at the top level for the global
//! account and per account): rules that rewrite the subject a client
//! publishes on before it is checked and routed, as nats-server's
//! `AddWeightedMappings` and `selectMappedSubject` do.
//!
//! A rule has a source pattern and destinations, each a [`Transform`]
//! with a weight in percent. The weights of the destinations that apply
//! (those scoped to this server's cluster if the rule has any, else the
//! unscoped ones) add up to at most 100; the rest of the hundred goes to
//! the subject unchanged, unless the source itself is listed as a
//! destination, in which case that rest is dropped: the message goes
//! nowhere (nats-server's "they want loss").
//!
//! Which rule applies: one whose source is the subject itself, else the
//! first wildcard rule in the order written whose source matches.
//! nats-server keeps its rules in the order Go's map iteration gave them,
//! so when two wildcard sources overlap it picks either; the config
//! reader warns about such pairs ([`overlapping`]).

use std::collections::HashMap;
use std::fmt;

use super::{is_valid_literal, is_valid_pattern, matches, overlaps, scan, Transform, TransformError};

/// Most rules one account's `mappings` may hold: the table is read on
/// every mapped publish and its size is the config's, but a bound keeps a
/// generated config from making every publish scan a huge list.
pub const MAX_MAPPINGS: usize = 4096;

/// Most destinations one rule may list (weights are whole percents).
pub const MAX_DESTINATIONS: usize = 100;

/// One rule as written in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRule {
    /// The subject or pattern whose publishes are rewritten.
    pub source: String,
    /// Where they go (a plain `"src": "dest"` is one destination of 100%).
    pub destinations: Vec<MapDestination>,
}

/// One destination of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDestination {
    /// The destination subject, with `$N` and `{{function(...)}}` tokens.
    pub subject: String,
    /// Percent of the source's messages sent here (0 to 100).
    pub weight: u8,
    /// Applies only on a server of this cluster (`cluster: "name"`).
    pub cluster: Option<String>,
}

/// Why a rule cannot be used (nats-server's texts where it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MappingError {
    /// The source is not a valid subject pattern.
    InvalidSource(String),
    /// A destination's transform cannot be built.
    Destination(String, TransformError),
    /// The same destination subject twice.
    Duplicate(String),
    /// A destination weighs more than 100 percent.
    Weight(u8),
    /// The destinations of one cluster (or the unscoped ones) weigh more
    /// than 100 percent together.
    TotalWeight,
    /// More than [`MAX_DESTINATIONS`] destinations.
    TooManyDestinations,
    /// More than [`MAX_MAPPINGS`] rules.
    TooManyRules,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingError::InvalidSource(s) => write!(f, "Subject {s:?} is not a valid subject"),
            MappingError::Destination(d, err) => write!(f, "destination {d:?}: {err}"),
            MappingError::Duplicate(d) => write!(f, "duplicate entry for {d:?}"),
            MappingError::Weight(w) => write!(f, "Invalid weight {w} for mapping destination"),
            MappingError::TotalWeight => f.write_str("total weight needs to be <= 100"),
            MappingError::TooManyDestinations => write!(f, "at most {MAX_DESTINATIONS} destinations per mapping"),
            MappingError::TooManyRules => write!(f, "at most {MAX_MAPPINGS} mappings per account"),
        }
    }
}

impl std::error::Error for MappingError {}

impl MappingRule {
    /// Checks the rule as nats-server would add it, whatever the cluster:
    /// every destination is a transform of the source, none repeats, no
    /// weight (nor the sum of one cluster's) is over 100.
    pub fn check(&self) -> Result<(), MappingError> {
        self.compile(None).map(|_| ())?;
        let mut clusters: Vec<Option<&str>> = self.destinations.iter().map(|d| d.cluster.as_deref()).collect();
        clusters.dedup();
        for cluster in clusters.into_iter().flatten() {
            self.compile(Some(cluster))?;
        }
        Ok(())
    }

    /// The rule as it applies on a server of `cluster`.
    fn compile(&self, cluster: Option<&str>) -> Result<Rule, MappingError> {
        if !is_valid_pattern(self.source.as_bytes()) {
            return Err(MappingError::InvalidSource(self.source.clone()));
        }
        if self.destinations.len() > MAX_DESTINATIONS {
            return Err(MappingError::TooManyDestinations);
        }
        let mut totals: HashMap<Option<&str>, u16> = HashMap::new();
        for (i, d) in self.destinations.iter().enumerate() {
            if self.destinations[..i].iter().any(|e| e.subject == d.subject) {
                return Err(MappingError::Duplicate(d.subject.clone()));
            }
            if d.weight > 100 {
                return Err(MappingError::Weight(d.weight));
            }
            let total = totals.entry(d.cluster.as_deref()).or_default();
            *total += u16::from(d.weight);
            if *total > 100 {
                return Err(MappingError::TotalWeight);
            }
        }
        let scoped = cluster.filter(|c| self.destinations.iter().any(|d| d.cluster.as_deref() == Some(*c)));
        let mut choices = Vec::new();
        for d in self.destinations.iter().filter(|d| d.cluster.as_deref() == scoped) {
            let transform = Transform::mapping(&self.source, &d.subject)
                .map_err(|e| MappingError::Destination(d.subject.clone(), e))?;
            choices.push(Choice { dest: d.subject.as_str().into(), weight: d.weight, transform: Some(transform) });
        }
        // Every destination of every cluster must be valid, wherever the
        // rule is compiled.
        for d in self.destinations.iter().filter(|d| d.cluster.as_deref() != scoped) {
            Transform::mapping(&self.source, &d.subject)
                .map_err(|e| MappingError::Destination(d.subject.clone(), e))?;
        }
        let total: u8 = choices.iter().map(|c| c.weight).sum();
        let source_listed = self.destinations.iter().any(|d| d.subject == self.source);
        if total != 100 && !source_listed {
            let weight = if choices.is_empty() { 100 } else { 100 - total };
            choices.push(Choice { dest: self.source.as_str().into(), weight, transform: None });
        }
        let mut upto = 0u8;
        let ranges = choices
            .iter()
            .map(|c| {
                upto += c.weight;
                upto
            })
            .collect();
        let source = self.source.as_bytes().into();
        Ok(Rule { source, choices, upto: ranges })
    }
}

/// A rule as it applies on this server.
#[derive(Debug, Clone)]
struct Rule {
    source: Box<[u8]>,
    /// The destinations of this server's cluster (or the unscoped ones),
    /// the unchanged rest last if there is one.
    choices: Vec<Choice>,
    /// Each choice's cumulative weight: a roll `r` in 0..100 picks the
    /// first choice with `r < upto`; past the last, the message is dropped.
    upto: Vec<u8>,
}

/// One destination of a compiled rule.
#[derive(Debug, Clone)]
struct Choice {
    /// As written (or the source, for the unchanged rest).
    dest: Box<str>,
    weight: u8,
    /// `None`: the subject passes unchanged.
    transform: Option<Transform>,
}

/// What one rule can make of a subject ([`Mappings::describe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The rule's source, as written.
    pub source: String,
    /// Its destinations that apply here, the unchanged rest last.
    pub choices: Vec<DescribedChoice>,
}

/// One destination of a [`Described`] rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedChoice {
    /// As written (the source, for the unchanged rest).
    pub dest: String,
    /// Its weight in percent.
    pub weight: u8,
    /// The subject it gives; `None` for the unchanged rest.
    pub subject: Option<Vec<u8>>,
}

/// What a rule does to one published subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    /// No rule applies, or the roll kept the subject as it is.
    Unchanged,
    /// The subject is rewritten (into the caller's buffer).
    Rewritten,
    /// The roll fell in the weight nobody was given: the message goes
    /// nowhere.
    Dropped,
    /// The rewritten subject is not a valid literal subject (a `split` or
    /// `slice` made an empty token or a wildcard): never routed.
    Invalid,
}

/// One account's mappings as they apply on this server: found by exact
/// subject, else by the first matching wildcard source.
#[derive(Debug, Clone)]
pub struct Mappings {
    rules: Vec<Rule>,
    /// Rules with a literal source, by source.
    literal: HashMap<Box<[u8]>, u32>,
    /// Rules with a wildcard source, in the order written.
    wildcard: Vec<u32>,
}

impl Mappings {
    /// The rules as they apply on a server of `cluster` (its `cluster {
    /// name }`); `None` when there are none (so a publish pays nothing).
    /// Fails on the first rule that [`MappingRule::check`] would refuse,
    /// with its index.
    pub fn compile(rules: &[MappingRule], cluster: Option<&str>) -> Result<Option<Mappings>, (usize, MappingError)> {
        if rules.is_empty() {
            return Ok(None);
        }
        if rules.len() > MAX_MAPPINGS {
            return Err((MAX_MAPPINGS, MappingError::TooManyRules));
        }
        let mut out =
            Mappings { rules: Vec::with_capacity(rules.len()), literal: HashMap::new(), wildcard: Vec::new() };
        for (i, rule) in rules.iter().enumerate() {
            let compiled = rule.compile(cluster).map_err(|e| (i, e))?;
            let index = u32::try_from(out.rules.len()).map_err(|_| (i, MappingError::TooManyRules))?;
            if scan(&compiled.source) == Some(false) {
                // A later rule for the same source replaces the earlier,
                // as in nats-server.
                out.literal.insert(compiled.source.clone(), index);
            } else if let Some(same) =
                out.wildcard.iter().position(|&w| out.rules[w as usize].source == compiled.source)
            {
                out.wildcard[same] = index;
            } else {
                out.wildcard.push(index);
            }
            out.rules.push(compiled);
        }
        Ok(Some(out))
    }

    /// The rule that applies to the literal `subject`, if one does.
    pub fn find(&self, subject: &[u8]) -> Option<u32> {
        if let Some(&i) = self.literal.get(subject) {
            return Some(i);
        }
        self.wildcard.iter().copied().find(|&i| self.rules.get(i as usize).is_some_and(|r| matches(&r.source, subject)))
    }

    /// Applies rule `rule` (from [`Mappings::find`]) to `subject`: `roll`
    /// (0 to 99) picks the destination, `random(n)` gives the numbers of
    /// `{{random(n)}}`. A rewritten subject is written to `out`.
    pub fn apply(
        &self,
        rule: u32,
        subject: &[u8],
        out: &mut Vec<u8>,
        roll: u8,
        random: &mut impl FnMut(u32) -> u32,
    ) -> Mapped {
        let Some(rule) = self.rules.get(rule as usize) else { return Mapped::Unchanged };
        let single = rule.choices.len() == 1 && rule.upto.first() == Some(&100);
        let pick = if single { Some(0) } else { rule.upto.iter().position(|&upto| roll < upto) };
        let Some(choice) = pick.and_then(|i| rule.choices.get(i)) else { return Mapped::Dropped };
        let Some(transform) = &choice.transform else { return Mapped::Unchanged };
        if !transform.apply_with(subject, out, random) {
            return Mapped::Unchanged;
        }
        if transform.is_identity() {
            return Mapped::Unchanged;
        }
        if !transform.keeps_subjects_valid() && !is_valid_literal(out) {
            return Mapped::Invalid;
        }
        Mapped::Rewritten
    }

    /// What the rule for `subject` can make of it, for `warden check
    /// --map` (`random(n)` gives n - 1); `None` when no rule applies.
    pub fn describe(&self, subject: &[u8]) -> Option<Described> {
        let rule = self.rules.get(self.find(subject)? as usize)?;
        let mut choices = Vec::new();
        for c in &rule.choices {
            let result = c.transform.as_ref().and_then(|t| {
                let mut to = Vec::new();
                t.apply_with(subject, &mut to, &mut |n| n.saturating_sub(1)).then_some(to)
            });
            choices.push(DescribedChoice { dest: c.dest.to_string(), weight: c.weight, subject: result });
        }
        Some(Described { source: String::from_utf8_lossy(&rule.source).into_owned(), choices })
    }

    /// The sources of the rules, each once: what a leaf connection must
    /// be told interest in, so what is published there on a source
    /// reaches this server to be mapped (nats-server's leaf `smap`).
    pub fn sources(&self) -> Vec<Box<[u8]>> {
        let mut sources: Vec<Box<[u8]>> = self.rules.iter().map(|r| r.source.clone()).collect();
        sources.sort();
        sources.dedup();
        sources
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Pairs of rules (by index) whose different sources both match some
/// subject, with a wildcard in each or in one: nats-server picks either for
/// such a subject, warden the literal source or else the first written.
pub fn overlapping(rules: &[MappingRule]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (i, a) in rules.iter().enumerate() {
        for (j, b) in rules.iter().enumerate().skip(i + 1) {
            let (sa, sb) = (a.source.as_bytes(), b.source.as_bytes());
            let both_literal = scan(sa) == Some(false) && scan(sb) == Some(false);
            if sa != sb && !both_literal && overlaps(sa, sb) {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests;
