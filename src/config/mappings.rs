//! `mappings { SOURCE: DESTINATION }` (alias `maps`), at the top level for
//! the global account and in an account block, read as nats-server 2.15.1
//! reads it (`parseAccountMappings`, `parseAccountMapDest`): a destination
//! is a subject, one `{ destination, weight, cluster }` block or a list of
//! them; a weight is a number or `"NN%"` from 0 to 100. Every rule is
//! checked here as the broker will compile it ([`MappingRule::check`]), so
//! a mistake is refused with its file, line and column.

use super::error::{invalid, ConfigError, ErrorKind};
use super::schema::{Block, Opt, Reload, Ty};
use super::section;
use super::value::{Entry, Kind, Value};
use crate::subject::{overlapping, MapDestination, MappingError, MappingRule, MAX_DESTINATIONS, MAX_MAPPINGS};

/// What `mappings` means, for the top level's and an account's table.
pub(super) const MEANS: &str = "Subject mappings: a publish on a source subject (or pattern) is rewritten to a \
    destination, or one of several by weight, before it is checked and routed; a destination names the source's \
    wildcards with `$N` or `{{wildcard(N)}}` and may use `partition`, `split`, `splitFromLeft`, `splitFromRight`, \
    `sliceFromLeft`, `sliceFromRight`, `left`, `right`, `random`";

/// Where warden differs, for the reference.
pub(super) const DIFFERS: &str = "Refused where nats-server guesses: a wildcard index below 1, a count below 1, \
    a function inside a longer token; overlapping sources are tried literal first, then in the order written \
    (with a warning); a rewrite into an invalid subject is refused with `Invalid Publish Subject`";

/// One destination block.
pub(super) static DESTINATION: Block<MapDestination> = Block {
    unsupported: &[],
    steps: &[
        super::schema::Step::Key(
            &Opt::new(&["destination", "dest"], Ty::String, Reload::Yes)
                .means("The subject the source's messages are rewritten to"),
            |e, d, _| section::string(&e.value, "destination").map(|s| d.subject = s.to_owned()),
        ),
        super::schema::Step::Key(
            &Opt::new(&["weight"], Ty::Text("0 to 100, or `\"NN%\"`"), Reload::Yes)
                .means("Percent of the messages sent here; what no destination is given goes unchanged, or is dropped when the source is itself a destination"),
            |e, d, _| weight(&e.value).map(|w| d.weight = w),
        ),
        super::schema::Step::Key(
            &Opt::new(&["cluster"], Ty::String, Reload::Yes).means(
                "Applies only on servers of this cluster; a rule with such entries uses the unscoped ones elsewhere",
            ),
            |e, d, _| section::word(&e.value, "cluster").map(|c| d.cluster = Some(c.to_owned())),
        ),
    ],
};

/// A weight: an integer, or a string of one with an optional `%`.
fn weight(value: &Value) -> Result<u8, ConfigError> {
    let n = match &value.kind {
        Kind::Integer(n) => *n,
        Kind::String(s) => {
            let digits = s.strip_suffix('%').unwrap_or(s);
            digits
                .parse::<i64>()
                .map_err(|_| invalid(value, format!("Invalid weight {digits:?} for mapping destination")))?
        }
        _ => {
            return Err(ConfigError::at(
                ErrorKind::Type,
                &value.pos,
                format!("a mapping weight must be a number or a percentage, found {}", value.describe()),
            ))
        }
    };
    u8::try_from(n)
        .ok()
        .filter(|w| *w <= 100)
        .ok_or_else(|| invalid(value, format!("Invalid weight {n} for mapping destination")))
}

/// One destination block, which must name its destination and weight.
fn destination(value: &Value) -> Result<MapDestination, ConfigError> {
    let mut d = MapDestination { subject: String::new(), weight: 0, cluster: None };
    let found = DESTINATION.read_value("a mapping destination", value, &mut d)?;
    if found.get("destination").is_none() {
        return Err(invalid(value, "a mapping destination needs `destination`"));
    }
    if found.get("weight").is_none() {
        return Err(invalid(value, format!("Missing weight for mapping destination {:?}", d.subject)));
    }
    Ok(d)
}

/// Reads a `mappings` entry; overlapping sources add a warning each.
pub(super) fn read(entry: &Entry, warnings: &mut Vec<String>) -> Result<Vec<MappingRule>, ConfigError> {
    let map = section::map(&entry.value, "mappings")?;
    let mut rules: Vec<MappingRule> = Vec::new();
    let mut positions = Vec::new();
    for e in map.entries.iter().filter(|e| !e.used_as_variable) {
        if rules.len() >= MAX_MAPPINGS {
            return Err(ConfigError::at(ErrorKind::Invalid, &e.key_pos, MappingError::TooManyRules.to_string()));
        }
        if rules.iter().any(|r| r.source == e.key) {
            return Err(ConfigError::at(
                ErrorKind::Conflict,
                &e.key_pos,
                format!("a mapping for {:?} is already given above", e.key),
            ));
        }
        let (destinations, places): (Vec<MapDestination>, Vec<&Value>) = match &e.value.kind {
            Kind::String(s) => {
                (vec![MapDestination { subject: s.clone(), weight: 100, cluster: None }], vec![&e.value])
            }
            Kind::Map(_) => (vec![destination(&e.value)?], vec![&e.value]),
            Kind::Array(items) => {
                if items.len() > MAX_DESTINATIONS {
                    return Err(invalid(&e.value, MappingError::TooManyDestinations.to_string()));
                }
                let mut ds = Vec::with_capacity(items.len());
                for item in items {
                    ds.push(destination(item)?);
                }
                (ds, items.iter().collect())
            }
            _ => {
                return Err(ConfigError::at(
                    ErrorKind::Type,
                    &e.value.pos,
                    format!(
                        "a mapping's destination must be a subject, a destination block or a list of them, found {}",
                        e.value.describe()
                    ),
                ))
            }
        };
        let rule = MappingRule { source: e.key.clone(), destinations };
        if let Err(err) = rule.check() {
            return Err(placed(e, &rule, &places, err));
        }
        rules.push(rule);
        positions.push(e.key_pos.clone());
    }
    for (a, b) in overlapping(&rules) {
        warnings.push(format!(
            "{}: mappings {:?} and {:?} (at {}) overlap: a subject both match takes the literal one, else the first \
             written; nats-server picks either at random",
            positions[b], rules[a].source, rules[b].source, positions[a]
        ));
    }
    Ok(rules)
}

/// The error for `rule` (from `e`), placed at the destination it names
/// when it names one.
fn placed(e: &Entry, rule: &MappingRule, places: &[&Value], err: MappingError) -> ConfigError {
    let at = |subject: &str| {
        rule.destinations.iter().position(|d| d.subject == subject).and_then(|i| places.get(i)).map(|v| &v.pos)
    };
    match &err {
        MappingError::InvalidSource(_) => ConfigError::at(ErrorKind::Invalid, &e.key_pos, err.to_string()),
        MappingError::Destination(d, inner) => ConfigError::at(
            ErrorKind::Invalid,
            at(d).unwrap_or(&e.value.pos),
            format!("Error adding mapping for {:?} to {d:?} : {inner}", rule.source),
        ),
        _ => ConfigError::at(
            ErrorKind::Invalid,
            &e.value.pos,
            format!("Error adding mapping for {:?} : {err}", rule.source),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn err(text: &str) -> crate::config::ConfigError {
        load_str(text, "test.conf").unwrap_err()
    }

    #[test]
    fn the_forms_nats_server_takes() {
        let loaded = load_str(
            r#"
mappings {
  "foo.*": "bar.{{wildcard(1)}}"
  legacy.*: "old.$1"
  canary: [ {destination: "canary.v1", weight: 80%}, {destination: "canary.v2", weight: "20"} ]
  one: { dest: "two", weight: 100 }
  scoped: [ {destination: "east", weight: 100, cluster: "east"}, {destination: "any", weight: 100} ]
}
accounts { A { maps { "a.>": "b.>" } } }
"#,
            "test.conf",
        )
        .unwrap();
        let o = &loaded.options;
        assert_eq!(o.mappings.len(), 5);
        assert_eq!(o.mappings[2].destinations[1].weight, 20);
        assert_eq!(o.mappings[4].destinations[0].cluster.as_deref(), Some("east"));
        assert_eq!(o.accounts[0].mappings[0].source, "a.>");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn mistakes_are_placed() {
        let e = err("mappings {\n  \"a.*\": \"b.{{foo(1)}}\"\n}");
        assert_eq!((e.line(), e.column()), (Some(2), Some(10)));
        assert!(e.message().contains("unknown function in {{foo(1)}}"), "{e}");
        let e = err("mappings {\n a: [\n  {destination: b, weight: 60}\n  {destination: c, weight: 50}\n ]\n}");
        assert_eq!(e.line(), Some(2));
        assert!(e.message().contains("total weight needs to be <= 100"), "{e}");
        let e = err("mappings { a: [ {destination: b, weight: 60}, {destination: c} ] }");
        assert!(e.message().contains("Missing weight for mapping destination \"c\""), "{e}");
        let e = err("mappings { a: [ {destination: b, weight: 101} ] }");
        assert!(e.message().contains("Invalid weight 101"), "{e}");
        let e = err("mappings { a: [ {destination: b, weight: 100, clustr: x} ] }");
        assert_eq!(e.kind(), crate::config::ErrorKind::UnknownKey);
        let e = err("mappings { \"a..b\": c }");
        assert!(e.message().contains("not a valid subject"), "{e}");
        let e = err("mappings {\n a.*: x\n b: [ {destination: \"q.{{wildcard(1)}}\", weight: 10} ]\n}");
        assert_eq!(e.line(), Some(3));
        assert!(e.message().contains("wildcard index out of range"), "{e}");
        let e = err("mappings { a: 3 }");
        assert_eq!(e.kind(), crate::config::ErrorKind::Type);
        let e = err("accounts { A { mappings { \"a.*\": \"b.$0\" } } }");
        assert!(e.message().contains("wildcard index out of range in $0"), "{e}");
    }

    #[test]
    fn overlapping_sources_are_warned_about() {
        let loaded = load_str("mappings { \"a.*\": x, \"a.>\": \"y.>\" }", "test.conf").unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("overlap"), "{:?}", loaded.warnings);
    }
}
