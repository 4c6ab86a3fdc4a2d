//! The reference is the checked-in `docs/config.md`, and it tells the
//! truth: at every place it lists, each option it names is read there, and
//! every other key is refused as unknown (the nats-server options it lists
//! as refused, as not implemented).

use std::path::Path;

use super::*;
use crate::config::{load_str_with_env, ConfigError, ErrorKind, Loaded};

/// An operator JWT that verifies, so that a `resolver` block is read.
const OPERATOR: &str = include_str!("../../jwt/vectors/operator.jwt");

/// What a block at `place` (a [`path_name`]) needs beside its key, in the
/// block above, to be read at all.
fn outside(place: &str) -> Vec<String> {
    match place {
        "http_authorization" => vec!["http: 8222".to_owned()],
        "resolver" => vec![format!("operator: \"{}\"", OPERATOR.trim())],
        _ => Vec::new(),
    }
}

/// What a block at `place` needs inside it for the blocks within it to be
/// read (the checks that stand before them in its table).
fn inside(place: &str) -> &'static [&'static str] {
    match place {
        "cluster" | "leafnodes" => &["port: -1"],
        "gateway" => &["name: A", "port: -1", "insecure_allow_unauthenticated_gateways: true"],
        "websocket" => &["no_tls: true"],
        "authorization.users[]" | "accounts.<name>.users[]" => &["user: u", "password: p"],
        _ => &[],
    }
}

/// A config with `line` written at `place`, and the line it stands on.
fn config_at(place: &Place, line: &str) -> (String, u32) {
    let key = line.split(':').next().unwrap_or_default();
    let mut lines: Vec<String> = Vec::new();
    let mut closers = Vec::new();
    for (i, (name, shape)) in place.path.iter().enumerate() {
        let here = path_name(&place.path[..=i]);
        lines.extend(outside(&here));
        match shape {
            Shape::Block => {
                lines.push(format!("{name} {{"));
                closers.push("}");
            }
            Shape::List => {
                lines.extend([format!("{name}: ["), "{".to_owned()]);
                closers.extend(["]", "}"]);
            }
            Shape::Named => {
                lines.extend([format!("{name} {{"), "A {".to_owned()]);
                closers.extend(["}", "}"]);
            }
        }
        // In the block `line` goes into, `line` replaces a needed key of its name.
        let innermost = i + 1 == place.path.len();
        let needed = inside(&here).iter().filter(|l| !(innermost && l.starts_with(&format!("{key}:"))));
        lines.extend(needed.map(|l| (*l).to_owned()));
    }
    lines.push(line.to_owned());
    let at = u32::try_from(lines.len()).unwrap();
    lines.extend(closers.into_iter().rev().map(str::to_owned));
    (lines.join("\n"), at)
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load_at(place: &Place, line: &str) -> (Result<Loaded, ConfigError>, String, u32) {
    let (text, at) = config_at(place, line);
    (load_str_with_env(&text, "reference.conf", &no_env), text, at)
}

#[test]
fn docs_config_md_is_the_rendering_of_the_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md");
    let rendered = reference_markdown();
    if std::env::var_os("WARDEN_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != rendered {
        let first = checked_in.lines().zip(rendered.lines()).position(|(a, b)| a != b);
        let line = first.unwrap_or_else(|| checked_in.lines().count().min(rendered.lines().count()));
        panic!(
            "docs/config.md is not the rendering of the config schema (first difference at line {}); \
             regenerate it with\n    WARDEN_UPDATE_DOCS=1 cargo test --lib config::reference\nand commit it",
            line + 1
        );
    }
}

#[test]
fn every_option_says_what_it_means() {
    for place in places() {
        for opt in place.table.options() {
            let path = place.option_path(opt);
            assert!(!opt.means.trim().is_empty(), "{path} has no meaning in the reference");
            for text in [opt.means, opt.differs, opt.default] {
                assert!(!text.ends_with('.') && !text.contains('\n'), "{path}: one line without a full stop: {text:?}");
            }
        }
    }
}

#[test]
fn every_documented_option_is_read_where_the_reference_puts_it() {
    let mut checked = 0;
    for place in places() {
        for opt in place.table.options() {
            for name in opt.names {
                let (result, text, _) = load_at(&place, &format!("{name}: 1"));
                if let Err(e) = result {
                    assert_ne!(e.kind(), ErrorKind::UnknownKey, "{}: {e}\n{text}", place.option_path(opt));
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "only {checked} names checked");
}

/// Every accepted key is listed: at each place, a made-up key and every
/// name the reference lists anywhere else (so a block pointing at the wrong
/// table, or a reader taking a key its table does not list, shows) are
/// refused as unknown, on their own line.
#[test]
fn a_key_the_reference_does_not_list_at_a_place_is_refused_there() {
    let places = places();
    let mut names: Vec<&str> =
        places.iter().flat_map(|p| p.table.options()).flat_map(|o| o.names.iter().copied()).collect();
    names.extend(places.iter().flat_map(|p| p.table.unsupported().iter().copied()));
    names.push("zz_not_an_option");
    names.sort_unstable();
    names.dedup();
    for place in &places {
        let listed = place.table.options();
        for name in names.iter().filter(|n| !listed.iter().any(|o| o.matches(n))) {
            let (result, text, at) = load_at(place, &format!("{name}: 1"));
            let Err(e) = result else { panic!("`{}`: `{name}` was accepted\n{text}", place.name()) };
            assert_eq!(e.kind(), ErrorKind::UnknownKey, "`{}`: `{name}`: {e}\n{text}", place.name());
            assert_eq!(e.line(), Some(at), "`{}`: `{name}`: {e}\n{text}", place.name());
        }
    }
}

#[test]
fn options_the_reference_lists_as_refused_are_refused_as_not_implemented() {
    for place in places() {
        for name in place.table.unsupported() {
            let (result, text, at) = load_at(&place, &format!("{name}: 1"));
            let Err(e) = result else { panic!("`{}`: {name} was accepted\n{text}", place.name()) };
            assert_eq!((e.kind(), e.line()), (ErrorKind::UnknownKey, Some(at)), "`{}`: {e}\n{text}", place.name());
            assert!(e.message().contains("warden does not support"), "`{}`: {e}", place.name());
        }
    }
}
