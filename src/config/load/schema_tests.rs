//! The tables themselves: every name reaches its option, no name is
//! claimed twice, and a typo of any option in any block is refused where it
//! stands with that option as the suggestion.

use super::*;
use crate::config::schema::Block;
use crate::config::{delegation, websocket};

/// An operator JWT that verifies, so that a resolver block is read.
const OPERATOR: &str = include_str!("../../jwt/vectors/operator.jwt");

/// A block's names, how a config reaches it, and on which line of that
/// config the `{}` (where a test writes a key) stands, at column 1.
struct Case {
    name: &'static str,
    keys: Vec<&'static [&'static str]>,
    unsupported: &'static [&'static str],
    template: String,
    line: u32,
}

fn case<B>(name: &'static str, block: &Block<B>, template: &str, line: u32) -> Case {
    Case { name, keys: block.keys().collect(), unsupported: block.unsupported, template: template.to_owned(), line }
}

fn cases() -> Vec<Case> {
    vec![
        case("the top level", &TOP, "# top\n{}\n", 2),
        case("tls", &tls::TLS, "tls {\n{}\n}", 2),
        case("websocket tls", &tls::TLS, "websocket {\nno_tls: false\ntls {\n{}\n}\n}", 4),
        case("cluster", &cluster::CLUSTER, "cluster {\n{}\n}", 2),
        case("cluster authorization", &cluster::ROUTE_AUTH, "cluster {\nport: 6222\nauthorization {\n{}\n}\n}", 4),
        case("websocket", &websocket::WEBSOCKET, "websocket {\n{}\n}", 2),
        case(
            "gateway",
            &gateway::GATEWAY,
            "gateway {\nname: A\nport: -1\ninsecure_allow_unauthenticated_gateways: true\n{}\n}",
            5,
        ),
        case(
            "gateway authorization",
            &gateway::GATEWAY_AUTH,
            "gateway {\nname: A\nport: -1\nauthorization {\n{}\n}\n}",
            5,
        ),
        case(
            "websocket authorization",
            &websocket::WEBSOCKET_AUTH,
            "websocket {\nno_tls: true\nauthorization {\n{}\n}\n}",
            4,
        ),
        case("http_authorization", &monitor::HTTP_AUTH, "http: 8222\nhttp_authorization {\n{}\n}", 3),
        case("leafnodes", &leafnodes::LEAFNODES, "leafnodes {\n{}\n}", 2),
        case("leafnodes authorization", &leafnodes::LEAF_AUTH, "leafnodes {\nport: 7422\nauthorization {\n{}\n}\n}", 4),
        case(
            "a leafnode user",
            &leafnodes::LEAF_USER,
            "leafnodes {\nport: 7422\nauthorization {\nusers: [\n{\n{}\n}\n]\n}\n}",
            6,
        ),
        case("a leafnode remote", &leafnodes::REMOTE, "leafnodes {\nremotes: [\n{\n{}\n}\n]\n}", 4),
        case("authorization", &auth::AUTHORIZATION, "authorization {\n{}\n}", 2),
        // A list of maps or a map of named blocks: the table is one element.
        case("a users entry", &auth::USER, "authorization {\nusers: [\n{\n{}\n}\n]\n}", 4),
        case("permissions", &auth::PERMISSIONS, "authorization {\npermissions {\n{}\n}\n}", 3),
        case(
            "allow_responses",
            &auth::ALLOW_RESPONSES,
            "accounts {\nA {\ndefault_permissions {\nallow_responses {\n{}\n}\n}\n}\n}",
            5,
        ),
        case("an account", &accounts::ACCOUNT, "accounts {\nA {\n{}\n}\n}", 3),
        case("account limits", &accounts::LIMITS, "accounts {\nA {\nlimits {\n{}\n}\n}\n}", 4),
        case("an export", &accounts::EXPORT, "accounts {\nA {\nexports: [\n{\n{}\n}\n]\n}\n}", 5),
        case("an import", &accounts::IMPORT, "accounts {\nA {\nimports: [\n{\n{}\n}\n]\n}\n}", 5),
        case(
            "an import source",
            &accounts::IMPORT_SOURCE,
            "accounts {\nA {\nimports: [\n{\nservice {\n{}\n}\n}\n]\n}\n}",
            6,
        ),
        case("auth_callout", &delegation::CALLOUT, "authorization {\nauth_callout {\n{}\n}\n}", 3),
        case("http_authorizer", &delegation::HTTP_AUTHORIZER, "authorization {\nhttp_authorizer {\n{}\n}\n}", 3),
        case("resolver", &operator::RESOLVER, &format!("operator: \"{}\"\nresolver {{\n{{}}\n}}", OPERATOR.trim()), 3),
    ]
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(case: &Case, line: &str) -> Result<Loaded, ConfigError> {
    load_str_with_env(&case.template.replace("{}", line), "schema.conf", &no_env)
}

/// `name` with its first two different neighbours swapped: one edit away.
fn typo(name: &str) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    if let Some(i) = (1..chars.len()).find(|&i| chars[i - 1] != chars[i]) {
        chars.swap(i - 1, i);
    }
    chars.into_iter().collect()
}

#[test]
fn names_are_lowercase_unique_and_not_also_unsupported() {
    for case in cases() {
        let mut seen = std::collections::HashSet::new();
        for names in &case.keys {
            assert!(!names.is_empty(), "{}: an option without a name", case.name);
            for name in *names {
                assert_eq!(*name, name.to_ascii_lowercase(), "{}: `{name}` is matched case-insensitively", case.name);
                assert!(seen.insert(*name), "{}: `{name}` names two options", case.name);
                assert!(!case.unsupported.contains(name), "{}: `{name}` is both read and unsupported", case.name);
            }
        }
    }
}

#[test]
fn every_name_reaches_its_option_in_any_case() {
    for case in cases() {
        for name in case.keys.iter().flat_map(|names| names.iter()) {
            for written in [name.to_string(), name.to_ascii_uppercase()] {
                if let Err(e) = load(&case, &format!("{written}: 1")) {
                    assert_ne!(e.kind(), ErrorKind::UnknownKey, "{}: `{written}` is not reached: {e}", case.name);
                }
            }
        }
    }
}

#[test]
fn two_names_of_one_option_conflict() {
    for case in cases() {
        for names in case.keys.iter().filter(|names| names.len() > 1) {
            let e = load(&case, &format!("{}: 1\n{}: 1", names[0], names[1])).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "{}: {e}", case.name);
            assert_eq!((e.line(), e.column()), (Some(case.line + 1), Some(1)), "{}: {e}", case.name);
            assert!(e.message().contains("sets the same option as"), "{}: {e}", case.name);
        }
    }
}

#[test]
fn a_typo_of_any_option_is_refused_where_it_stands_with_a_suggestion() {
    for case in cases() {
        for names in &case.keys {
            let wrong = typo(names[0]);
            let e = load(&case, &format!("{wrong}: 1")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::UnknownKey, "{}: {e}", case.name);
            assert_eq!((e.line(), e.column()), (Some(case.line), Some(1)), "{}: {e}", case.name);
            let said = format!("unknown key `{wrong}` in {}; did you mean `", case.name);
            assert!(e.message().starts_with(&said), "{}: {e}", case.name);
            assert!(
                names.iter().any(|n| e.message().ends_with(&format!("`{n}`?"))),
                "{}: `{wrong}` should suggest `{}`: {e}",
                case.name,
                names[0]
            );
        }
    }
}

#[test]
fn unsupported_options_get_the_clearer_message() {
    for case in cases() {
        for name in case.unsupported {
            let e = load(&case, &format!("{name}: 1")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::UnknownKey, "{}: {e}", case.name);
            let said = format!("`{name}` is a nats-server option that warden does not support (in {})", case.name);
            assert_eq!(e.message(), said);
        }
    }
}
