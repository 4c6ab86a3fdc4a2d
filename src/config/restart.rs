//! The options a reload cannot apply (those the schema marks
//! [`Reload::Restart`], and everything inside a block so marked), as the
//! config file wrote them. A reload compares the new file's with the
//! running one's and refuses when one differs, naming it, as nats-server
//! refuses ("config reload not supported for ..."), instead of keeping the
//! old value without a word.
//!
//! The comparison is of what is written (values without positions), not
//! of what it means: `port: 4222` written where the default 4222 stood
//! before counts as a change. That errs on the side of saying so.
//!
//! A reload of options from code (`Server::reload`, which embedders and
//! the config file path alike go through) has no file to compare:
//! [`restart_only_change`] takes the same options from the schema and
//! compares where each lands in [`Options`] ([`fields`], whose tests hold
//! it to the schema), so that path refuses them too instead of keeping
//! the old values while it reports success.

use std::fmt::Write;

use super::options::Options;
use super::reference;
use super::schema::{Reload, Table, Ty};
use super::value::{Kind, Map, Pos, Value};

mod fields;

/// What a refusal says after the option's name and what happened to it.
pub const TAKES_EFFECT_AT_RESTART: &str = "but it takes effect only at a restart: restart the server to apply it";

/// One restart-only option as written.
#[derive(Debug, Clone)]
struct Setting {
    /// Its path by the options' first names: `cluster`, `leafnodes.remotes`.
    path: String,
    /// Its value without positions; never shown (it may hold a secret).
    value: String,
    /// Where its key was written.
    at: Pos,
}

/// Equal when written alike, wherever written.
impl PartialEq for Setting {
    fn eq(&self, other: &Setting) -> bool {
        (&self.path, &self.value) == (&other.path, &other.value)
    }
}

/// Every restart-only option a config file sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestartOnly(Vec<Setting>);

impl RestartOnly {
    /// Collects them from a parsed config's top level.
    pub(crate) fn of(map: &Map) -> RestartOnly {
        let mut out = Vec::new();
        collect(super::load::table(), map, "", Reload::PerOption, &mut out);
        RestartOnly(out)
    }

    /// Why a reload from `self` (running) to `new` cannot be applied: the
    /// first restart-only option that was added, removed or changed, with
    /// where it is (in the new file; in the old one when removed).
    pub fn refuse_change_to(&self, new: &RestartOnly) -> Option<String> {
        for setting in &new.0 {
            match self.0.iter().find(|s| s.path == setting.path) {
                Some(old) if old.value == setting.value => {}
                Some(_) => return Some(refusal(&setting.at, &setting.path, "changed")),
                None => return Some(refusal(&setting.at, &setting.path, "added")),
            }
        }
        let removed = self.0.iter().find(|old| !new.0.iter().any(|s| s.path == old.path));
        removed.map(|old| refusal(&old.at, &old.path, "removed"))
    }
}

fn refusal(at: &Pos, path: &str, how: &str) -> String {
    format!("{at}: `{path}` {how}, {TAKES_EFFECT_AT_RESTART}")
}

/// The first option only a restart applies on which `running` and `new`
/// differ, by its path as a config file's refusal names it (`cluster`,
/// `leafnodes.port`, `tls.spiffe_trust_domain`): why a reload to `new`
/// must be refused before anything of it is applied. An option that
/// reaches no field of [`Options`] (`prof_port`, which only 0 passes)
/// never differs here.
pub fn restart_only_change(running: &Options, new: &Options) -> Option<String> {
    restart_only_paths().into_iter().find(|path| match fields::same(path) {
        Some(same) => !same(running, new),
        // Not compared, so not known to be unchanged: refused (the tests
        // of `fields` keep every restart-only option compared).
        None => true,
    })
}

/// Every option the schema marks [`Reload::Restart`], by path, in table
/// order: within a block so marked only the block's own key, as
/// [`RestartOnly::of`] records them.
fn restart_only_paths() -> Vec<String> {
    let mut out = Vec::new();
    for place in reference::places().iter().filter(|p| p.reload != Reload::Restart) {
        let restart = place.table.options().into_iter().filter(|o| place.reload.within(o.reload) == Reload::Restart);
        out.extend(restart.map(|opt| place.option_path(opt)));
    }
    out
}

/// Walks `map` with its `table`: records the options whose reload
/// behaviour (`within`, inherited from the enclosing blocks) is restart,
/// and descends into blocks whose options each say.
fn collect(table: &dyn Table, map: &Map, prefix: &str, within: Reload, out: &mut Vec<Setting>) {
    let options = table.options();
    for entry in &map.entries {
        let Some(opt) = options.iter().find(|o| o.matches(&entry.key)) else { continue };
        let path = if prefix.is_empty() { opt.name().to_owned() } else { format!("{prefix}.{}", opt.name()) };
        let reload = within.within(opt.reload);
        if reload == Reload::Restart {
            out.push(Setting { path, value: canonical(&entry.value), at: entry.key_pos.clone() });
            continue;
        }
        match (opt.ty, &entry.value.kind) {
            (Ty::Block(inner) | Ty::Or(_, inner), Kind::Map(block)) => collect(inner, block, &path, reload, out),
            (Ty::Named(inner), Kind::Map(named)) => {
                for each in &named.entries {
                    if let Kind::Map(block) = &each.value.kind {
                        collect(inner, block, &format!("{path}.{}", each.key), reload, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A value's text without positions, for comparison only.
fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    let _ = match &value.kind {
        Kind::String(s) => write!(out, "{s:?}"),
        Kind::Integer(n) => write!(out, "{n}"),
        Kind::Size(n) => write!(out, "{n}s"),
        Kind::Float(f) => write!(out, "{f}"),
        Kind::Bool(b) => write!(out, "{b}"),
        Kind::Array(items) => {
            out.push('[');
            for item in items {
                write_canonical(item, out);
                out.push(',');
            }
            out.push(']');
            Ok(())
        }
        Kind::Map(map) => {
            out.push('{');
            for entry in &map.entries {
                let _ = write!(out, "{:?}:", entry.key.to_ascii_lowercase());
                write_canonical(&entry.value, out);
                out.push(',');
            }
            out.push('}');
            Ok(())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parser;

    fn of(text: &str) -> RestartOnly {
        let map = parser::parse_bytes_with_env(text.as_bytes(), "w.conf", &|_| None).unwrap();
        RestartOnly::of(&map)
    }

    #[test]
    fn a_reload_that_changes_a_restart_only_option_is_refused_by_name_and_place() {
        let running = of("port: 4222\nlogtime: true\nauthorization { user: a, password: b }\nmax_payload: 1MB");
        let same =
            of("# moved about\nmax_payload: 1MB\nlogtime: true\nport: 4222\nauthorization { user: a, password: c }");
        assert_eq!(running.refuse_change_to(&same), None, "only positions and reloadable options differ");
        let port = of("port: 4222\nlogtime: true\nauthorization { user: a, password: b }\nmax_payload: 2MB");
        assert_eq!(
            running.refuse_change_to(&port).as_deref(),
            Some("w.conf:4:1: `max_payload` changed, but it takes effect only at a restart: restart the server to apply it")
        );
        let added =
            of("port: 4222\nlogtime: true\nauthorization { user: a, password: b }\nmax_payload: 1MB\nmax_control_line: 8KB");
        assert!(running.refuse_change_to(&added).unwrap().starts_with("w.conf:5:1: `max_control_line` added"));
        let removed = of("port: 4222\nauthorization { user: a, password: b }\nmax_payload: 1MB");
        assert!(running.refuse_change_to(&removed).unwrap().starts_with("w.conf:2:1: `logtime` removed"));
        let traced =
            of("port: 4222\nlogtime: true\nauthorization { user: a, password: b }\nmax_payload: 1MB\ntrace: true");
        assert_eq!(running.refuse_change_to(&traced), None, "trace reloads");
    }

    #[test]
    fn options_inside_blocks_and_named_blocks_are_found_with_their_path() {
        let running = of("leafnodes { port: 7422 }\naccounts { A { users = [ {user: u, password: p} ] } }");
        let changed = of("leafnodes { port: 7423 }\naccounts { A { users = [ {user: u, password: p} ] } }");
        let why = running.refuse_change_to(&changed).unwrap();
        assert!(why.starts_with("w.conf:1:13: `leafnodes.port` changed"), "{why}");
        let users = of("leafnodes { port: 7422 }\naccounts { A { users = [ {user: u, password: q} ] } }");
        assert_eq!(running.refuse_change_to(&users), None, "accounts reload");
    }
}
