//! The config reference, `docs/config.md`: every option warden reads, with
//! its type, default, reload behaviour, meaning and difference from
//! nats-server, rendered from the tables that read them (`schema::Opt`
//! beside each reader), so the reference and the reader cannot disagree.
//!
//! [`places`] walks the tables from the top level down: a block, a list of
//! blocks and a map of named blocks each become a place with its path
//! (`cluster.tls`, `leafnodes.remotes[]`, `accounts.<name>.users[]`); a
//! shared table (`tls`, `permissions`) appears at every place it can be
//! written, since what a reload does with it depends on where it stands.
//! The tests check that the checked-in file is this rendering, and that
//! every option of every place is read, and nothing else, where the
//! reference says.

use std::fmt::Write;

use super::parser::{MAX_DEPTH, MAX_FILE_BYTES, MAX_INCLUDE_DEPTH, MAX_TOTAL_BYTES};
use super::schema::{Opt, Reload, Table, Ty};

/// How a block is written under its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `key { ... }`
    Block,
    /// `key: [ { ... }, ... ]`
    List,
    /// `key { NAME { ... }, ... }`
    Named,
}

/// One block of the reference: where it stands and what it holds.
pub(crate) struct Place {
    /// The keys from the top level down to it (first names), each with how
    /// its block is written; empty for the top level.
    pub(crate) path: Vec<(&'static str, Shape)>,
    /// Its options.
    pub(crate) table: &'static dyn Table,
    /// What a reload does with its options, as far as the keys above it
    /// decide (a block kept as a whole keeps everything in it).
    pub(crate) reload: Reload,
}

impl Place {
    /// Its path as the reference writes it: `cluster.tls`,
    /// `accounts.<name>.users[]`; empty for the top level.
    pub(crate) fn name(&self) -> String {
        path_name(&self.path)
    }

    /// The path of its option `opt`.
    pub(crate) fn option_path(&self, opt: &Opt) -> String {
        match self.name() {
            place if place.is_empty() => opt.name().to_owned(),
            place => format!("{place}.{}", opt.name()),
        }
    }
}

/// A path as the reference writes it.
pub(crate) fn path_name(path: &[(&'static str, Shape)]) -> String {
    let mut name = String::new();
    for (i, (key, shape)) in path.iter().enumerate() {
        if i > 0 {
            name.push('.');
        }
        name.push_str(key);
        match shape {
            Shape::Block => {}
            Shape::List => name.push_str("[]"),
            Shape::Named => name.push_str(".<name>"),
        }
    }
    name
}

/// The heading of the section of the place at `path`.
fn heading(path: &[(&'static str, Shape)]) -> String {
    match path_name(path) {
        name if name.is_empty() => "Top level".to_owned(),
        name => format!("`{name}`"),
    }
}

/// The block an option holds, and how it is written, if it holds one.
fn inner(ty: Ty) -> Option<(Shape, &'static dyn Table)> {
    match ty {
        Ty::Block(table) | Ty::Or(_, table) => Some((Shape::Block, table)),
        Ty::List(table) => Some((Shape::List, table)),
        Ty::Named(table) => Some((Shape::Named, table)),
        _ => None,
    }
}

/// Every place, the top level first, each followed by the blocks within it
/// in table order.
pub(crate) fn places() -> Vec<Place> {
    fn walk(place: Place, out: &mut Vec<Place>) {
        let (table, reload, path) = (place.table, place.reload, place.path.clone());
        out.push(place);
        for opt in table.options() {
            let Some((shape, inner)) = inner(opt.ty) else { continue };
            let mut path = path.clone();
            path.push((opt.name(), shape));
            walk(Place { path, table: inner, reload: reload.within(opt.reload) }, out);
        }
    }
    let mut out = Vec::new();
    walk(Place { path: Vec::new(), table: super::load::table(), reload: Reload::PerOption }, &mut out);
    out
}

/// The config reference as Markdown: what `docs/config.md` holds.
pub fn reference_markdown() -> String {
    let places = places();
    let mut out = String::new();
    out.push_str(&intro());
    let options: usize = places.iter().map(|p| p.table.options().len()).sum();
    let _ = writeln!(
        out,
        "{options} options in {} blocks; a block that can stand in several places (`tls`, `permissions`) is listed at each.\n",
        places.len()
    );
    for place in &places {
        let _ = writeln!(out, "## {}\n", heading(&place.path));
        out.push_str("| Option | Type | Default | Reload | Meaning | warden differs |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for opt in place.table.options() {
            let mut name = format!("`{}`", place.option_path(opt));
            if let [_, aliases @ ..] = opt.names {
                if !aliases.is_empty() {
                    let aliases: Vec<String> = aliases.iter().map(|a| format!("`{a}`")).collect();
                    let _ = write!(name, " (also {})", aliases.join(", "));
                }
            }
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} |",
                type_text(place, opt),
                cell(&default_text(opt.default)),
                reload_text(place.reload.within(opt.reload)),
                cell(opt.means),
                cell(opt.differs),
            );
        }
        let refused = place.table.unsupported();
        if !refused.is_empty() {
            let names: Vec<String> = refused.iter().map(|n| format!("`{n}`")).collect();
            let _ = writeln!(out, "\nRefused, not implemented (nats-server options): {}.", names.join(", "));
        }
        out.push('\n');
    }
    out
}

/// A table cell: `|` would end it early.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A default as written: a single literal (`4222`, `$SYS`) as code, a
/// phrase ("the server id") as it is.
fn default_text(default: &str) -> String {
    match default {
        "" => "—".to_owned(),
        d if d.contains([' ', '`']) => d.to_owned(),
        d => format!("`{d}`"),
    }
}

fn reload_text(reload: Reload) -> &'static str {
    match reload {
        Reload::Yes => "yes",
        Reload::Restart => "restart",
        Reload::Refused => "refused",
        Reload::PerOption => "per option",
        Reload::NoEffect => "n/a",
    }
}

/// The type column; a block links to its section.
fn type_text(place: &Place, opt: &Opt) -> String {
    let link = |shape_text: &str| {
        let mut path = place.path.clone();
        if let Some((shape, _)) = inner(opt.ty) {
            path.push((opt.name(), shape));
        }
        format!("[{shape_text}](#{})", anchor(&heading(&path)))
    };
    let text = match opt.ty {
        Ty::Bool => "boolean",
        Ty::Integer => "integer",
        Ty::Size => "size",
        Ty::Port => "port",
        Ty::HostPort => "host:port",
        Ty::String => "string",
        Ty::Path => "path",
        Ty::Secret => "secret",
        Ty::Duration => "duration",
        Ty::Seconds => "duration or seconds",
        Ty::Url => "URL",
        Ty::Strings => "list of strings",
        Ty::Subjects => "subject or list of subjects",
        Ty::Text(text) => text,
        Ty::Map(keys) => return cell(&format!("map ({keys})")),
        Ty::Block(_) => return link("block"),
        Ty::List(_) => return link("list of blocks"),
        Ty::Named(_) => return link("map of named blocks"),
        Ty::Or(text, _) => return format!("{} or {}", cell(text), link("block")),
    };
    cell(text)
}

/// GitHub's anchor of a heading: lower case, spaces to `-`, other
/// punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Bytes in a MiB, for the bounds.
const MIB: usize = 1024 * 1024;

/// What holds for every option: the dialect, units, variables, includes,
/// and how to read the columns. Each statement is what `parser`, `lexer`,
/// `section` and `duration` do.
fn intro() -> String {
    format!(
        "\
# Configuration reference

<!-- Generated from the config schema (src/config/schema.rs and the tables beside each reader) by
     warden::config::reference_markdown; do not edit. Regenerate with
     WARDEN_UPDATE_DOCS=1 cargo test --lib config::reference -->

Every option warden reads, from the tables that read them: an option listed here is read
where it stands, and an option not listed is refused. The names are nats-server's, and a
nats-server config is read as is where warden implements what it asks for.

## The file

- **Dialect**: nats-server's. `key: value`, `key = value` or `key value`; blocks `{{ }}`;
  lists `[ ]` with items separated by commas or line ends; comments `#` and `//`; strings
  bare, `\"quoted\"` or `'quoted'`; the whole file may be wrapped in `{{ }}` (JSON with quoted
  keys reads as is).
- **Strict**: an unknown key is an error with its file, line and column and the nearest
  known key (\"did you mean\"); a nats-server option warden does not implement is an error
  that says so (listed under each block as *Refused*); the same key twice in a block, and
  two names of one option (`user` and `username`), are errors. Nothing falls back to a
  default on a mistake.
- **Names** are case-insensitive (`PORT` is `port`); the aliases in the tables are
  nats-server's other names for the same option.
- **Booleans**: `true`/`false`, `yes`/`no`, `on`/`off`, unquoted.
- **Sizes**: a number, or a number with a suffix: `k`, `m`, `g`, `t`, `p`, `e` are powers of
  1000; `kb`, `ki`, `kib` (and so on) powers of 1024, so `1MB` is 1048576. Any case. Every
  integer option takes a suffix.
- **Durations**: a string of numbers with units `ns`, `us`, `ms`, `s`, `m`, `h` (`\"500ms\"`,
  `\"2m\"`, `\"1h30m\"`, `\"1.5s\"`). Quote them: unquoted, `2m` is a size (2000000), and is
  refused with a hint. Where the type is *duration or seconds*, a bare number is seconds
  (nats-server's older form; `ping_interval` and `write_deadline` warn about it).
- **Secrets** (passwords, tokens): strings, best quoted. An argon2 hash (`warden passwd` makes one)
  or a bcrypt hash (`$2a$...`) is verified as such; plain text works and is warned about.
- **Variables**: `NAME = value` in a block defines a variable for the lines after it, in
  that block and the blocks inside it; `$NAME` or `${{NAME}}` uses it. A name no enclosing
  block defines is read from the environment (its value parsed as a config value); an
  undefined one is an error. A definition that no `$NAME` uses is an unknown key. An
  unquoted bcrypt hash is a string, not a variable.
- **Includes**: `include \"file.conf\"` (or `include file.conf`) puts that file's entries
  where the line stands; a relative path starts from the including file's directory.
- **Bounds**: {file} MiB a file and {total} MiB in all, {includes} nested includes, {depth}
  levels of blocks and lists.
- **Command-line flags** (`-p`, `--tls`, ...) override the file.

## The columns

- **Option**: the path from the top level: `cluster.tls.cert_file` is `cert_file` inside
  `tls {{ }}` inside `cluster {{ }}`; `[]` marks an element of a list (`leafnodes.remotes[].url`),
  `<name>` a name of the config's choosing (`accounts.<name>.users[].password`).
- **Type**: *size*, *duration* and *secret* as above; *port* is 1 to 65535, or 0 or -1 for
  a free port; *host:port* is also `[ipv6]:port`, `:port` or a port alone.
- **Default**: the value when the option is absent; — when absent means \"not set\".
- **Reload** (SIGHUP, `warden --signal reload`, or a granted `$SYS.REQ.SERVER.<id>.RELOAD`):
  *yes*: a reload applies it; *restart*: only a restart applies it, and a reload whose file
  writes it differently is refused, naming it, with the running config kept (nats-server
  applies some of these, such as logging and limits, on reload); *refused*: a reload that
  changes it is refused and the running config kept; *per option*: see the
  block's options; *n/a*: it changes nothing. A reload that fails any check is refused and
  the running config kept. An embedder's `Server::reload` holds the options it is given to
  the same column: options that differ in one marked *restart* are refused whole with
  `StartError::RestartOnly` naming it.
- **warden differs**: where warden's meaning or default is not nats-server's; *warden only*
  marks an option nats-server does not have.

",
        file = MAX_FILE_BYTES / MIB,
        total = MAX_TOTAL_BYTES / MIB,
        includes = MAX_INCLUDE_DEPTH,
        depth = MAX_DEPTH,
    )
}

#[cfg(test)]
mod tests;
