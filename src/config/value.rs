//! The positioned value tree the parser produces and the loader reads.
//!
//! Every node carries the file, line and column it came from, so that any
//! later complaint ("not a valid subject", "unknown key") can point at the
//! exact spot. A value pulled in through `$variable` keeps the positions of
//! its definition; a value read from an environment variable carries the
//! position of the reference (the environment has no file to point into).

use std::fmt;
use std::sync::Arc;

/// One config text: a file, an included file, or an embedded string.
/// `Debug` shows the name only: the text may hold secrets.
pub struct Source {
    /// Display name: the path as given, or the caller's origin name.
    pub(crate) name: String,
    /// The whole text, kept to show the offending line in an error.
    pub(crate) text: String,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Source {
    pub(crate) fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Source> {
        Arc::new(Source { name: name.into(), text: text.into() })
    }

    /// Line `line` (1-based) without its line ending, if it exists.
    pub(crate) fn line_text(&self, line: u32) -> Option<&str> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        self.text.split('\n').nth(index).map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
}

/// Where a node starts: file, 1-based line, 1-based column (in characters).
#[derive(Clone)]
pub struct Pos {
    pub(crate) source: Arc<Source>,
    pub(crate) line: u32,
    pub(crate) column: u32,
}

impl Pos {
    pub(crate) fn new(source: &Arc<Source>, line: u32, column: u32) -> Pos {
        Pos { source: Arc::clone(source), line, column }
    }

    /// The file (or origin name) this position is in.
    pub fn file(&self) -> &str {
        &self.source.name
    }

    /// 1-based line.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// 1-based column, counted in characters.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Debug for Pos {
    /// Only `file:line:col`: never the source text, which may hold secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.source.name, self.line, self.column)
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A parsed value with its position. Its `Debug` shows string values, which
/// may be passwords: do not log value trees (log [`crate::config::Options`],
/// whose secrets are redacted).
#[derive(Debug, Clone)]
pub struct Value {
    /// What the value is.
    pub kind: Kind,
    /// Where it starts.
    pub pos: Pos,
}

/// The value kinds of the dialect.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A quoted or unquoted string.
    String(String),
    /// A plain integer such as `4222` or `-1`.
    Integer(i64),
    /// An integer written with a size suffix (`64KB`, `2m`): kept apart so a
    /// duration option can refuse `2m` (two million) instead of misreading it.
    Size(i64),
    /// A float such as `1.5`.
    Float(f64),
    /// `true`/`false`/`yes`/`no`/`on`/`off`, unquoted.
    Bool(bool),
    /// `[ ... ]`.
    Array(Vec<Value>),
    /// `{ ... }`.
    Map(Map),
}

impl Value {
    /// "a string", "an integer", ...: for type errors (never the value itself,
    /// which could be a secret).
    pub fn describe(&self) -> &'static str {
        match self.kind {
            Kind::String(_) => "a string",
            Kind::Integer(_) => "an integer",
            Kind::Size(_) => "a size",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Array(_) => "an array",
            Kind::Map(_) => "a map",
        }
    }

    /// Number of nodes in this tree (itself included); bounds variable expansion.
    pub(crate) fn node_count(&self) -> usize {
        match &self.kind {
            Kind::Array(items) => items.iter().fold(1usize, |n, v| n.saturating_add(v.node_count())),
            Kind::Map(map) => map.entries.iter().fold(1usize, |n, e| n.saturating_add(e.value.node_count())),
            _ => 1,
        }
    }

    /// Levels of maps and arrays in this tree (0 for a scalar).
    pub(crate) fn depth(&self) -> usize {
        let children = match &self.kind {
            Kind::Array(items) => items.iter().map(Value::depth).max(),
            Kind::Map(map) => map.entries.iter().map(|e| e.value.depth()).max(),
            _ => return 0,
        };
        children.unwrap_or(0).saturating_add(1)
    }

    /// Moves every node of this tree to `pos` (for values read from the environment).
    pub(crate) fn relocate(&mut self, pos: &Pos) {
        self.pos = pos.clone();
        match &mut self.kind {
            Kind::Array(items) => items.iter_mut().for_each(|v| v.relocate(pos)),
            Kind::Map(map) => map.entries.iter_mut().for_each(|e| {
                e.key_pos = pos.clone();
                e.value.relocate(pos);
            }),
            _ => {}
        }
    }
}

/// A block `{ ... }` (or the top level): entries in file order, keys unique.
#[derive(Debug, Clone, Default)]
pub struct Map {
    /// The entries, in the order they were written (includes spliced in place).
    pub entries: Vec<Entry>,
}

impl Map {
    /// The entry with exactly this key (case-sensitive, as variables are).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// One `key = value` of a map.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key as written (quotes removed).
    pub key: String,
    /// Where the key starts.
    pub key_pos: Pos,
    /// The value.
    pub value: Value,
    /// Whether some later `$key` referred to this entry. The loader ignores
    /// such entries when it does not know the key (role definitions such as
    /// `admin = {...}` inside `authorization`), as nats-server does.
    pub used_as_variable: bool,
}
