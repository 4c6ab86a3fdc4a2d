use super::*;

fn rule(source: &str, dests: &[(&str, u8, Option<&str>)]) -> MappingRule {
    MappingRule {
        source: source.into(),
        destinations: dests
            .iter()
            .map(|(s, w, c)| MapDestination { subject: (*s).into(), weight: *w, cluster: c.map(Into::into) })
            .collect(),
    }
}

fn one(source: &str, dest: &str) -> MappingRule {
    rule(source, &[(dest, 100, None)])
}

/// The subject each roll 0..100 gives: `None` for dropped, the subject
/// itself when unchanged.
fn outcomes(m: &Mappings, subject: &str) -> Vec<Option<String>> {
    (0..100u8)
        .map(|roll| {
            let mut out = Vec::new();
            match m.find(subject.as_bytes()).map(|r| m.apply(r, subject.as_bytes(), &mut out, roll, &mut |_| 0)) {
                None | Some(Mapped::Unchanged) => Some(subject.to_owned()),
                Some(Mapped::Rewritten) => Some(String::from_utf8(out).unwrap()),
                Some(Mapped::Dropped) => None,
                Some(Mapped::Invalid) => Some("<invalid>".into()),
            }
        })
        .collect()
}

fn count(outs: &[Option<String>], what: Option<&str>) -> usize {
    outs.iter().filter(|o| o.as_deref() == what).count()
}

#[test]
fn none_compiles_to_nothing() {
    assert!(Mappings::compile(&[], Some("c")).unwrap().is_none());
}

#[test]
fn literal_before_wildcard_then_order_written() {
    let rules = [one("a.>", "gt.>"), one("a.*", "star.$1"), one("a.b", "lit")];
    let m = Mappings::compile(&rules, None).unwrap().unwrap();
    assert_eq!(outcomes(&m, "a.b")[0].as_deref(), Some("lit"));
    assert_eq!(outcomes(&m, "a.c")[0].as_deref(), Some("gt.c"));
    assert_eq!(outcomes(&m, "z")[0].as_deref(), Some("z"));
    assert_eq!(overlapping(&rules), vec![(0, 1), (0, 2), (1, 2)]);
    assert!(overlapping(&[one("a", "x"), one("b", "y"), one("c.*", "z")]).is_empty());
}

#[test]
fn weights_under_100_leave_the_rest_unchanged() {
    let m = Mappings::compile(&[rule("w.*", &[("w.one.$1", 30, None)])], None).unwrap().unwrap();
    let outs = outcomes(&m, "w.7");
    assert_eq!(count(&outs, Some("w.one.7")), 30);
    assert_eq!(count(&outs, Some("w.7")), 70);
}

#[test]
fn weights_under_100_with_the_source_listed_drop_the_rest() {
    let m = Mappings::compile(&[rule("l", &[("l", 50, None), ("l2", 20, None)])], None).unwrap().unwrap();
    let outs = outcomes(&m, "l");
    assert_eq!(count(&outs, Some("l")), 50);
    assert_eq!(count(&outs, Some("l2")), 20);
    assert_eq!(count(&outs, None), 30);
}

#[test]
fn cluster_scoped_entries_apply_in_their_cluster_only() {
    let r = rule("a", &[("east", 100, Some("east")), ("west", 100, Some("west")), ("any", 100, None)]);
    let rules = [r];
    for (cluster, want) in [(Some("east"), "east"), (Some("west"), "west"), (Some("north"), "any"), (None, "any")] {
        let m = Mappings::compile(&rules, cluster).unwrap().unwrap();
        assert_eq!(count(&outcomes(&m, "a"), Some(want)), 100, "{cluster:?}");
    }
    // Only scoped entries: elsewhere the subject passes unchanged.
    let m = Mappings::compile(&[rule("a", &[("east", 100, Some("east"))])], Some("west")).unwrap().unwrap();
    assert_eq!(count(&outcomes(&m, "a"), Some("a")), 100);
}

#[test]
fn refusals() {
    let err = |r: MappingRule| r.check().unwrap_err();
    assert_eq!(err(rule("a", &[("b", 60, None), ("c", 50, None)])), MappingError::TotalWeight);
    assert_eq!(err(rule("a", &[("b", 101, None)])), MappingError::Weight(101));
    assert_eq!(err(rule("a", &[("b", 50, None), ("b", 50, None)])), MappingError::Duplicate("b".into()));
    assert_eq!(err(rule("a", &[("b", 50, Some("x")), ("b", 50, None)])), MappingError::Duplicate("b".into()));
    assert!(matches!(err(one("a..b", "c")), MappingError::InvalidSource(_)));
    assert!(matches!(err(one("a.*", "b.*")), MappingError::Destination(_, TransformError::WildcardInDestination)));
    // Every cluster's entries are checked, whichever cluster compiles.
    assert!(rule("a", &[("b", 60, Some("x")), ("c", 60, Some("y"))]).check().is_ok());
    assert_eq!(err(rule("a", &[("b", 60, Some("x")), ("c", 60, Some("x"))])), MappingError::TotalWeight);
    let bad_elsewhere = [rule("a.*", &[("b.$2", 100, Some("x")), ("c", 100, None)])];
    assert!(Mappings::compile(&bad_elsewhere, Some("y")).is_err());
}

#[test]
fn split_into_nothing_is_invalid_not_routed() {
    let m = Mappings::compile(&[one("p.*", "p.{{split(1,-)}}"), one("s.*", "s.{{sliceFromLeft(1,1)}}")], None)
        .unwrap()
        .unwrap();
    assert_eq!(outcomes(&m, "p.-")[0].as_deref(), Some("<invalid>"));
    assert_eq!(outcomes(&m, "s.a*")[0].as_deref(), Some("<invalid>"), "a wildcard token is never published");
    assert_eq!(outcomes(&m, "s.ab")[0].as_deref(), Some("s.a.b"));
}

#[test]
fn describe_lists_the_choices() {
    let m = Mappings::compile(&[rule("foo.*", &[("v1.$1", 80, None), ("v2.{{random(3)}}", 10, None)])], None)
        .unwrap()
        .unwrap();
    let described = m.describe(b"foo.x").unwrap();
    assert_eq!(described.source, "foo.*");
    let choice = |dest: &str, weight, subject: Option<&[u8]>| DescribedChoice {
        dest: dest.into(),
        weight,
        subject: subject.map(<[u8]>::to_vec),
    };
    assert_eq!(
        described.choices,
        vec![
            choice("v1.$1", 80, Some(b"v1.x")),
            choice("v2.{{random(3)}}", 10, Some(b"v2.2")),
            choice("foo.*", 10, None),
        ]
    );
    assert!(m.describe(b"bar").is_none());
}

/// A naive model of which rule applies: the literal source if any, else
/// the first written wildcard source that matches.
fn naive_find(rules: &[MappingRule], subject: &str) -> Option<String> {
    rules
        .iter()
        .rev()
        .find(|r| r.source == subject)
        .or_else(|| {
            rules.iter().find(|r| r.source.contains(['*', '>']) && matches(r.source.as_bytes(), subject.as_bytes()))
        })
        .map(|r| r.source.clone())
}

proptest::proptest! {
    #[test]
    fn finds_as_the_naive_model(sources in proptest::collection::vec("[ab*]{1}(\\.[ab*]){0,2}(\\.>)?", 1..6),
                                subject in "[ab]{1}(\\.[ab]){0,3}") {
        let rules: Vec<MappingRule> = sources.iter().map(|s| one(s, if s.ends_with('>') { "x.>" } else { "x" })).collect();
        let m = Mappings::compile(&rules, None).unwrap().unwrap();
        let found = m.find(subject.as_bytes()).map(|i| String::from_utf8(m.rules[i as usize].source.to_vec()).unwrap());
        let want = naive_find(&rules, &subject);
        // A repeated wildcard source is replaced in place: the model's
        // first match names the same source.
        proptest::prop_assert_eq!(found, want);
    }
}
