//! A block's schema: each option of a config block written once, as its
//! [`Opt`] (names) and the function that reads its value, in one table per
//! block.
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

/// One option of a block, as its table names it: a struct rather than the
/// bare names, so that what the config reference says of the option can
/// stand beside them, written once.
pub(crate) struct Opt {
    /// Its names: the first is how checks name it, the rest are
    /// nats-server's aliases.
    pub(crate) names: &'static [&'static str],
}

impl Opt {
    /// The option called `names[0]`, or any of the others.
    pub(crate) const fn new(names: &'static [&'static str]) -> Opt {
        Opt { names }
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
        for names in self.keys() {
            entries.push((first_name(names), s.get(names)?));
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

    /// Each option's names, in table order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &'static [&'static str]> {
        self.flat().into_iter().filter_map(|step| match step {
            Step::Key(opt, _) => Some(opt.names),
            Step::Check(_) | Step::Shared(_) => None,
        })
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

/// How checks name an option; the schema tests make sure no table has an
/// empty list of names.
fn first_name(names: &'static [&'static str]) -> &'static str {
    names.first().copied().unwrap_or_default()
}
