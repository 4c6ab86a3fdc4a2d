//! A block's schema: each option of a config block written once, as its
//! [`Opt`] (names, type, reload behaviour, meaning) and the function that
//! reads its value, in one table per block. The same tables, walked from
//! the top level down through [`Table`], are the config reference.
//!
//! [`Block::read`] is the only reader: it looks every option up through
//! [`Section`] (case-insensitive names, nats-server's aliases, two entries
//! for one option refused), refuses unknown keys with a position and a "did
//! you mean", and only then reads the present options in table order, so a
//! typo is reported before what it causes. Checks across options are
//! [`Step::Check`]s placed in the table after the options they need; an
//! option that depends on another (`allow_non_tls` on `tls`) stands after it.
//! Options that several blocks take alike are one shared table, spliced
//! into each with [`Step::Shared`].
//!
//! The table's order is also the order of [`Section`]'s known names, which
//! breaks ties between equally close "did you mean" suggestions.

use super::error::{ConfigError, ErrorKind};
use super::section::{self, Section};
use super::value::{Entry, Map, Pos, Value};

/// Reads one present option into the block's builder `B`. The entries of
/// the block's other options are at hand for checks that need them.
pub(crate) type Read<B> = fn(&Entry, &mut B, &Found<'_>) -> Result<(), ConfigError>;

/// A check across options, run whether or not they are present.
pub(crate) type Check<B> = fn(&mut B, &Found<'_>) -> Result<(), ConfigError>;

/// One option of a block, as its table names it, with what the config
/// reference (`docs/config.md`, rendered by `reference`) says of it: written
/// once, beside the function that reads it, so the reference cannot list an
/// option the reader does not take or miss one it does.
pub(crate) struct Opt {
    /// Its names: the first is how checks and the reference name it, the
    /// rest are nats-server's aliases.
    pub(crate) names: &'static [&'static str],
    /// What its value is.
    pub(crate) ty: Ty,
    /// What a reload does with it.
    pub(crate) reload: Reload,
    /// What it means, in one line (nats-server's meaning where warden
    /// implements nats-server's option).
    pub(crate) means: &'static str,
    /// Its value when it is absent, as the reference shows it; empty when
    /// there is none (a listener that is not started).
    pub(crate) default: &'static str,
    /// Where warden differs from nats-server; empty where it does not.
    pub(crate) differs: &'static str,
}

impl Opt {
    /// The option called `names[0]` (or any of the others), with its type
    /// and reload behaviour; [`Opt::means`] says what it is.
    pub(crate) const fn new(names: &'static [&'static str], ty: Ty, reload: Reload) -> Opt {
        Opt { names, ty, reload, means: "", default: "", differs: "" }
    }

    /// The same, with what it means (one line; the reference's tests
    /// require it).
    pub(crate) const fn means(self, means: &'static str) -> Opt {
        Opt { means, ..self }
    }

    /// The same, with its value when absent.
    pub(crate) const fn default(self, default: &'static str) -> Opt {
        Opt { default, ..self }
    }

    /// The same, with where warden differs from nats-server.
    pub(crate) const fn differs(self, differs: &'static str) -> Opt {
        Opt { differs, ..self }
    }

    /// Its first name: how checks and the reference call it (the schema
    /// tests make sure no option is without one).
    pub(crate) fn name(&self) -> &'static str {
        self.names.first().copied().unwrap_or_default()
    }

    /// Whether `key` names this option (case-insensitively, as nats-server
    /// matches keys).
    pub(crate) fn matches(&self, key: &str) -> bool {
        self.names.iter().any(|n| key.eq_ignore_ascii_case(n))
    }
}

/// What an option's value is, as the reference names it. The kinds that
/// hold options of their own point at their table, which is how the
/// reference walks from the top level down.
#[derive(Clone, Copy)]
pub(crate) enum Ty {
    /// `true` or `false` (also `yes`/`no`, `on`/`off`).
    Bool,
    /// A number.
    Integer,
    /// A number of bytes, with or without a size suffix (`64KB`, `1MB`).
    Size,
    /// A port number; -1 (or 0) picks a free one.
    Port,
    /// `host:port`, `[ipv6]:port`, `:port` or a port.
    HostPort,
    /// A string.
    String,
    /// A file or directory.
    Path,
    /// A password or token: a quoted string, best an argon2 or bcrypt hash.
    Secret,
    /// A duration string (`"2m"`, `"500ms"`).
    Duration,
    /// A duration string, or a bare number of seconds (with a warning).
    Seconds,
    /// A URL.
    Url,
    /// A list of strings.
    Strings,
    /// A subject, or a list of them.
    Subjects,
    /// Anything else, described.
    Text(&'static str),
    /// A map whose keys are the config's own (described), not options.
    Map(&'static str),
    /// A block of options: `{ ... }`.
    Block(&'static dyn Table),
    /// A list of blocks: `[ { ... }, ... ]`.
    List(&'static dyn Table),
    /// A map of blocks under names of the config's choosing: `{ NAME { ... } }`.
    Named(&'static dyn Table),
    /// A value described, or a block.
    Or(&'static str, &'static dyn Table),
}

/// What a reload (SIGHUP, `warden --signal reload`, `$SYS.REQ.SERVER.<id>.RELOAD`)
/// does with an option, as `Server::reload` implements it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reload {
    /// A reload applies the new value.
    Yes,
    /// Only a restart applies it: a reload whose file writes it
    /// differently, or whose options from code hold it differently, is
    /// refused (see `config::restart`).
    Restart,
    /// A reload that changes it is refused, and the running config kept.
    Refused,
    /// A block whose options say, each.
    PerOption,
    /// Nothing to apply: the option changes nothing.
    NoEffect,
}

impl Reload {
    /// What a reload does with an option of a block whose own key does
    /// `self`: a block kept or refused as a whole keeps or refuses
    /// everything in it.
    pub(crate) fn within(self, inner: Reload) -> Reload {
        match self {
            Reload::Restart | Reload::Refused => self,
            Reload::Yes | Reload::PerOption | Reload::NoEffect => inner,
        }
    }
}

/// A table of options, whatever its reader builds: what the reference walks.
pub(crate) trait Table: Sync {
    /// The options, in table order.
    fn options(&self) -> Vec<&'static Opt>;
    /// nats-server options of this block that warden refuses.
    fn unsupported(&self) -> &'static [&'static str];
}

/// The options of a map that is read by hand rather than as a [`Block`]
/// (`{ allow, deny }`, whose unknown-key message is nats-server's): listed
/// here so the reference shows them and the reader matches them by these
/// names.
pub(crate) struct Keys(pub(crate) &'static [&'static Opt]);

impl Table for Keys {
    fn options(&self) -> Vec<&'static Opt> {
        self.0.to_vec()
    }

    fn unsupported(&self) -> &'static [&'static str] {
        &[]
    }
}

impl<B: 'static> Table for Block<B> {
    fn options(&self) -> Vec<&'static Opt> {
        self.flat()
            .into_iter()
            .filter_map(|step| match step {
                Step::Key(opt, _) => Some(*opt),
                Step::Check(_) | Step::Shared(_) => None,
            })
            .collect()
    }

    fn unsupported(&self) -> &'static [&'static str] {
        self.unsupported
    }
}

/// One line of a block's table.
pub(crate) enum Step<B: 'static> {
    /// An option and how its value is read when it is present.
    Key(&'static Opt, Read<B>),
    /// A check across the options above it.
    Check(Check<B>),
    /// Options and checks that several blocks share (`auth_callout` and
    /// `http_authorizer` take the same safety settings), read at this place
    /// as if they were written here.
    Shared(&'static [Step<B>]),
}

/// A config block: its options and checks in reading order, and the
/// nats-server options of the block that warden refuses with a clearer
/// message than "unknown key".
pub(crate) struct Block<B: 'static> {
    /// The table, in reading order.
    pub(crate) steps: &'static [Step<B>],
    /// nats-server options of this block that warden does not implement.
    pub(crate) unsupported: &'static [&'static str],
}

/// The entries a block holds, by each option's first name.
pub(crate) struct Found<'a> {
    entries: Vec<(&'static str, Option<&'a Entry>)>,
}

impl<'a> Found<'a> {
    /// The entry of the option whose first name is `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&'a Entry> {
        let slot = self.entries.iter().find(|(n, _)| *n == name);
        // A name that is not in the table is a mistake in a check, which
        // would silently never fire; every test that runs the check catches it.
        debug_assert!(slot.is_some(), "`{name}` is not an option of this block");
        slot.and_then(|(_, e)| *e)
    }

    /// Fails at `at` with `message` unless the option whose first name is
    /// `name` is present: for the options a block cannot do without.
    pub(crate) fn require(&self, name: &str, at: &Pos, message: &str) -> Result<(), ConfigError> {
        match self.get(name) {
            Some(_) => Ok(()),
            None => Err(ConfigError::at(ErrorKind::Invalid, at, message)),
        }
    }
}

impl<B: 'static> Block<B> {
    /// Reads `map` into `b`; `name` says which block it is in messages
    /// ("the top level", "cluster tls").
    pub(crate) fn read<'a>(&self, name: &'static str, map: &'a Map, b: &mut B) -> Result<Found<'a>, ConfigError> {
        let mut s = Section::new(name, map);
        let mut entries = Vec::new();
        for opt in self.options() {
            entries.push((opt.name(), s.get(opt.names)?));
        }
        s.finish(self.unsupported)?;
        let found = Found { entries };
        let mut present = found.entries.iter().map(|(_, e)| *e);
        for step in self.flat() {
            match step {
                Step::Key(_, read) => {
                    if let Some(e) = present.next().flatten() {
                        read(e, b, &found)?;
                    }
                }
                Step::Check(check) => check(b, &found)?,
                // `flat` has spliced it in.
                Step::Shared(_) => {}
            }
        }
        Ok(found)
    }

    /// [`Block::read`] of a value that must be a map, named `name` in
    /// messages.
    pub(crate) fn read_value<'a>(
        &self,
        name: &'static str,
        value: &'a Value,
        b: &mut B,
    ) -> Result<Found<'a>, ConfigError> {
        self.read(name, section::map(value, name)?, b)
    }

    /// Each option's names, in table order (for the schema tests).
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &'static [&'static str]> {
        self.options().into_iter().map(|opt| opt.names)
    }

    /// The table with every shared part spliced in where it stands.
    fn flat(&self) -> Vec<&'static Step<B>> {
        fn splice<B: 'static>(steps: &'static [Step<B>], out: &mut Vec<&'static Step<B>>) {
            for step in steps {
                match step {
                    Step::Shared(inner) => splice(inner, out),
                    _ => out.push(step),
                }
            }
        }
        let mut out = Vec::new();
        splice(self.steps, &mut out);
        out
    }
}
