//! The parser of the nats-server config dialect: text to a positioned
//! [`Map`], with variables resolved and includes spliced in.
//!
//! What it accepts is nats-server's dialect (see `conf/lex.go`); where that
//! dialect is lenient in ways that can change a config's meaning unnoticed,
//! this parser refuses instead: duplicate keys, quotes or backslashes inside
//! unquoted values, a key whose value starts on the next line, control and
//! bidirectional-override characters. Every input is bounded (file size,
//! nesting, include depth and count, variable expansion) and every failure is
//! a positioned [`ConfigError`]; no input makes it panic.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, ErrorKind};
use super::lexer::{classify, ends_bare_value, Cursor, Scalar};
use super::value::{Entry, Kind, Map, Pos, Source, Value};

/// Largest config file (each file, includes too).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of maps and arrays, across includes.
pub const MAX_DEPTH: usize = 64;
/// Deepest chain of includes.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Most files one config may pull in.
pub const MAX_INCLUDED_FILES: usize = 256;
/// Most bytes all files of one config may add up to.
pub const MAX_TOTAL_BYTES: usize = 16 * 1024 * 1024;
/// Most value nodes that `$variable` references may copy, against
/// "billion laughs" configs (`b = [$a,$a,...]`, `c = [$b,$b,...]`).
pub const MAX_EXPANDED_NODES: usize = 1_000_000;
/// Longest environment value that a `$variable` may read.
pub const MAX_ENV_VALUE_BYTES: usize = 64 * 1024;

/// Where `$NAME` looks when no enclosing block defines `NAME`.
pub type EnvLookup<'e> = &'e dyn Fn(&str) -> Option<String>;

/// Reads the process environment. Names the environment cannot hold (empty,
/// with `=`) are not looked up; a value that is not UTF-8 counts as unset.
pub fn process_env(name: &str) -> Option<String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    std::env::var(name).ok()
}

/// Parses the config file at `path` (and the files it includes), looking
/// variables up in the process environment.
pub fn parse_file(path: &Path) -> Result<Map, ConfigError> {
    parse_file_with_env(path, &process_env)
}

/// [`parse_file`] with a given environment.
pub fn parse_file_with_env(path: &Path, env: EnvLookup<'_>) -> Result<Map, ConfigError> {
    let name = path.display().to_string();
    let canonical = std::fs::canonicalize(path)
        .map_err(|e| ConfigError::in_file(ErrorKind::Io, &name, format!("cannot read config file: {e}")))?;
    let mut session = Session::new(env);
    let bytes = session.read(&canonical).map_err(|(kind, message)| ConfigError::in_file(kind, &name, message))?;
    session.include_stack.push(canonical.clone());
    let base = canonical.parent().map(Path::to_path_buf);
    let entries = parse_source(&mut session, &bytes, &name, base, 0)?;
    Ok(Map { entries })
}

/// Parses config text. `origin` names it in errors; relative includes are
/// resolved against `origin`'s directory (the current one if it has none).
pub fn parse_str(text: &str, origin: &str) -> Result<Map, ConfigError> {
    parse_bytes_with_env(text.as_bytes(), origin, &process_env)
}

/// Parses config bytes (which must be UTF-8); the entry point for fuzzing.
pub fn parse_bytes(bytes: &[u8], origin: &str) -> Result<Map, ConfigError> {
    parse_bytes_with_env(bytes, origin, &process_env)
}

/// [`parse_bytes`] with a given environment.
pub fn parse_bytes_with_env(bytes: &[u8], origin: &str, env: EnvLookup<'_>) -> Result<Map, ConfigError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ConfigError::in_file(
            ErrorKind::Limit,
            origin,
            format!("config is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let mut session = Session::new(env);
    let base = Path::new(origin).parent().map(Path::to_path_buf).unwrap_or_default();
    let entries = parse_source(&mut session, bytes, origin, Some(base), 0)?;
    Ok(Map { entries })
}

/// State shared by a file and everything it includes.
struct Session<'e> {
    env: EnvLookup<'e>,
    /// Canonical paths of the files being parsed, outermost first: a file
    /// already on it cannot be included again (a cycle).
    include_stack: Vec<PathBuf>,
    /// Files read so far.
    files: usize,
    /// Bytes read so far.
    bytes: usize,
    /// Nodes copied by variable references so far.
    expanded: usize,
}

impl<'e> Session<'e> {
    fn new(env: EnvLookup<'e>) -> Self {
        Session { env, include_stack: Vec::new(), files: 0, bytes: 0, expanded: 0 }
    }

    /// Reads a config file within the size budgets.
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, (ErrorKind, String)> {
        self.files += 1;
        if self.files > MAX_INCLUDED_FILES {
            return Err((ErrorKind::Limit, format!("more than {MAX_INCLUDED_FILES} config files")));
        }
        let io = |e: std::io::Error| (ErrorKind::Io, format!("cannot read config file: {e}"));
        let file = File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        // Read one byte past the limit to notice a larger (or growing) file.
        let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX).saturating_add(1);
        file.take(limit).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err((ErrorKind::Limit, format!("config file is larger than {MAX_FILE_BYTES} bytes")));
        }
        self.bytes = self.bytes.saturating_add(bytes.len());
        if self.bytes > MAX_TOTAL_BYTES {
            return Err((ErrorKind::Limit, format!("config files add up to more than {MAX_TOTAL_BYTES} bytes")));
        }
        Ok(bytes)
    }
}

/// Parses one file's bytes into its top-level entries.
fn parse_source(
    session: &mut Session<'_>,
    bytes: &[u8],
    name: &str,
    base_dir: Option<PathBuf>,
    depth: usize,
) -> Result<Vec<Entry>, ConfigError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let source = Source::new(name, String::from_utf8_lossy(bytes));
            let prefix = String::from_utf8_lossy(valid);
            let (line, column) = end_position(&prefix);
            return Err(ConfigError::at(
                ErrorKind::Syntax,
                &Pos::new(&source, line, column),
                "the config is not valid UTF-8",
            ));
        }
    };
    let source = Source::new(name, text);
    check_characters(text, &source)?;
    let mut parser = Parser {
        session,
        cur: Cursor::new(text, &source),
        base_dir,
        scopes: vec![Vec::new()],
        depth,
        allow_variables: true,
    };
    parser.document()?;
    Ok(parser.scopes.pop().unwrap_or_default())
}

/// Line and column just after `text`.
fn end_position(text: &str) -> (u32, u32) {
    let line = text.matches('\n').count().saturating_add(1);
    let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()).saturating_add(1);
    (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
}

/// Refuses control characters (other than tab and line endings) and Unicode
/// bidirectional controls, which make text display differently from what it
/// means ("Trojan Source").
fn check_characters(text: &str, source: &Arc<Source>) -> Result<(), ConfigError> {
    let mut cursor = Cursor::new(text, source);
    while let Some(c) = cursor.peek() {
        let bad = match c {
            '\t' | '\n' => false,
            '\r' => cursor.peek2() != Some('\n'),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => true,
            c => c.is_control(),
        };
        if bad {
            return Err(cursor.error(
                ErrorKind::Syntax,
                format!("character U+{:04X} is not allowed in a config file", u32::from(c)),
            ));
        }
        cursor.bump();
    }
    Ok(())
}

/// Parses one text; `scopes` holds the maps being built, innermost last,
/// which is where `$name` looks first.
struct Parser<'s, 'e, 'a> {
    session: &'s mut Session<'e>,
    cur: Cursor<'a>,
    /// Directory that relative includes start from; `None` where includes are
    /// not allowed (environment values).
    base_dir: Option<PathBuf>,
    scopes: Vec<Vec<Entry>>,
    depth: usize,
    /// False inside environment values, which may not refer to variables.
    allow_variables: bool,
}

impl Parser<'_, '_, '_> {
    /// The whole text: entries, optionally wrapped in `{ }` (so JSON parses).
    fn document(&mut self) -> Result<(), ConfigError> {
        self.cur.skip_trivia();
        if self.cur.peek() == Some('{') {
            let open = self.cur.pos();
            self.cur.bump();
            self.entries(Some(&open))?;
            self.cur.skip_trivia();
            if let Some(c) = self.cur.peek() {
                return Err(self
                    .cur
                    .error(ErrorKind::Syntax, format!("unexpected '{c}' after the '}}' that closes the config")));
            }
            return Ok(());
        }
        self.entries(None)
    }

    /// Entries up to the `}` matching `open`, or to the end of the text.
    fn entries(&mut self, open: Option<&Pos>) -> Result<(), ConfigError> {
        loop {
            self.cur.skip_trivia();
            match self.cur.peek() {
                None => {
                    return match open {
                        Some(open) => {
                            Err(ConfigError::at(ErrorKind::Syntax, open, "this '{' is never closed: missing '}'"))
                        }
                        None => Ok(()),
                    };
                }
                Some('}') if open.is_some() => {
                    self.cur.bump();
                    return Ok(());
                }
                Some(c @ ('}' | ']' | ',' | ';' | '=' | ':')) => {
                    return Err(self.cur.error(ErrorKind::Syntax, format!("expected a key, found '{c}'")));
                }
                _ => {}
            }
            self.entry()?;
            self.cur.skip_line_trivia();
            match self.cur.peek() {
                None | Some('\n' | '\r' | '}') => {}
                Some(',' | ';') => {
                    self.cur.bump();
                }
                Some(c) => {
                    return Err(self.cur.error(
                        ErrorKind::Syntax,
                        format!("expected a new line, ',' or ';' after the value, found '{c}'"),
                    ));
                }
            }
        }
    }

    /// One `key value` (or an `include`), added to the innermost scope.
    fn entry(&mut self) -> Result<(), ConfigError> {
        let key_pos = self.cur.pos();
        let (key, quoted) = match self.cur.peek() {
            Some('"') => (self.cur.double_quoted()?, true),
            Some('\'') => (self.cur.single_quoted()?, true),
            _ => (self.cur.bare_key()?, false),
        };
        if !quoted && key.eq_ignore_ascii_case("include") {
            return self.include();
        }
        let blanks = self.cur.skip_blanks();
        match self.cur.peek() {
            Some('=' | ':') => {
                self.cur.bump();
                self.cur.skip_blanks();
            }
            Some('{' | '[') => {}
            None | Some('\n' | '\r') => self.value_on_next_line(&key, &key_pos)?,
            _ if self.cur.at_comment() => self.value_on_next_line(&key, &key_pos)?,
            _ if blanks => {}
            Some(c) => {
                return Err(self
                    .cur
                    .error(ErrorKind::Syntax, format!("expected '=', ':' or a space after key `{key}`, found '{c}'")));
            }
        }
        let value = self.value()?;
        self.insert(Entry { key, key_pos, value, used_as_variable: false })
    }

    /// A key with nothing after it on its line: only a block may follow on a
    /// later line (`authorization` then `{` below it).
    fn value_on_next_line(&mut self, key: &str, key_pos: &Pos) -> Result<(), ConfigError> {
        self.cur.skip_trivia();
        if self.cur.peek() == Some('{') {
            return Ok(());
        }
        Err(ConfigError::at(ErrorKind::Syntax, key_pos, format!("key `{key}` has no value on its line")))
    }

    /// Adds an entry to the innermost scope, refusing a duplicate key.
    fn insert(&mut self, entry: Entry) -> Result<(), ConfigError> {
        if self.scopes.is_empty() {
            self.scopes.push(Vec::new());
        }
        let Some(scope) = self.scopes.last_mut() else {
            return Ok(());
        };
        if let Some(first) = scope.iter().find(|e| e.key == entry.key) {
            return Err(ConfigError::at(
                ErrorKind::DuplicateKey,
                &entry.key_pos,
                format!(
                    "duplicate key `{}` (first set at {}); nats-server would silently use the last value, warden refuses",
                    entry.key, first.key_pos
                ),
            ));
        }
        scope.push(entry);
        Ok(())
    }

    /// A value of any kind; the cursor is on its first character.
    fn value(&mut self) -> Result<Value, ConfigError> {
        let pos = self.cur.pos();
        let kind = match self.cur.peek() {
            None => return Err(self.syntax("expected a value, found the end of the file")),
            Some('\n' | '\r') => return Err(self.syntax("expected a value, found the end of the line")),
            Some('{') => return self.map(),
            Some('[') => return self.array(),
            Some('$') => return self.variable(),
            Some('"') => Kind::String(self.cur.double_quoted()?),
            Some('\'') => Kind::String(self.cur.single_quoted()?),
            Some('(') => return Err(self.syntax("block strings `( ... )` are not supported; use a quoted string")),
            Some(c @ (',' | ';' | '}' | ']' | '=')) => {
                return Err(self.syntax(format!("expected a value, found '{c}'")))
            }
            Some(_) if self.cur.at_comment() => return Err(self.syntax("expected a value, found a comment")),
            Some(_) => {
                let token = self.cur.bare_value()?;
                match classify(&token) {
                    Ok(Scalar::Bool(b)) => Kind::Bool(b),
                    Ok(Scalar::Integer(i)) => Kind::Integer(i),
                    Ok(Scalar::Size(i)) => Kind::Size(i),
                    Ok(Scalar::Float(f)) => Kind::Float(f),
                    Ok(Scalar::String(s)) => Kind::String(s),
                    Err(message) => return Err(ConfigError::at(ErrorKind::Invalid, &pos, message)),
                }
            }
        };
        Ok(Value { kind, pos })
    }

    fn syntax(&self, message: impl Into<String>) -> ConfigError {
        self.cur.error(ErrorKind::Syntax, message)
    }

    /// Enters one level of nesting.
    fn descend(&mut self) -> Result<(), ConfigError> {
        if self.depth >= MAX_DEPTH {
            return Err(self
                .cur
                .error(ErrorKind::Limit, format!("maps and arrays are nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        Ok(())
    }

    /// `{ entries }`.
    fn map(&mut self) -> Result<Value, ConfigError> {
        self.descend()?;
        let pos = self.cur.pos();
        self.cur.bump();
        self.scopes.push(Vec::new());
        let result = self.entries(Some(&pos));
        let entries = self.scopes.pop().unwrap_or_default();
        self.depth -= 1;
        result?;
        Ok(Value { kind: Kind::Map(Map { entries }), pos })
    }

    /// `[ values ]`, separated by commas or line ends.
    fn array(&mut self) -> Result<Value, ConfigError> {
        self.descend()?;
        let pos = self.cur.pos();
        self.cur.bump();
        let mut items = Vec::new();
        let mut after_item = false;
        loop {
            let newline = self.cur.skip_trivia();
            match self.cur.peek() {
                None => return Err(ConfigError::at(ErrorKind::Syntax, &pos, "this '[' is never closed: missing ']'")),
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                Some(',') if after_item => {
                    self.cur.bump();
                    after_item = false;
                }
                Some(',') => return Err(self.syntax("expected a value, found ','")),
                Some(c) if after_item && !newline => {
                    return Err(
                        self.syntax(format!("expected ',', a new line or ']' after an array element, found '{c}'"))
                    )
                }
                Some(_) => {
                    items.push(self.value()?);
                    after_item = true;
                }
            }
        }
        self.depth -= 1;
        Ok(Value { kind: Kind::Array(items), pos })
    }

    /// `$name` or `${name}`: the innermost enclosing definition before this
    /// point, else the environment. An unquoted bcrypt hash (`$2a$11$...`) is
    /// a string, as nats-server reads it.
    fn variable(&mut self) -> Result<Value, ConfigError> {
        let pos = self.cur.pos();
        self.cur.bump();
        let name = if self.cur.peek() == Some('{') {
            self.cur.bump();
            let mut name = String::new();
            loop {
                match self.cur.peek() {
                    Some('}') => {
                        self.cur.bump();
                        break;
                    }
                    Some(c) if !ends_bare_value(c) && c != '{' && c != '$' => {
                        name.push(c);
                        self.cur.bump();
                    }
                    _ => return Err(self.syntax("expected '}' to close '${'")),
                }
            }
            if let Some(c) = self.cur.peek().filter(|c| !ends_bare_value(*c)) {
                return Err(self.syntax(format!("unexpected '{c}' after '${{{name}}}'")));
            }
            name
        } else {
            let name = self.cur.bare_value()?;
            if ["2a$", "2b$", "2x$", "2y$"].iter().any(|p| name.starts_with(p)) {
                return Ok(Value { kind: Kind::String(format!("${name}")), pos });
            }
            name
        };
        if name.is_empty() {
            return Err(ConfigError::at(ErrorKind::Syntax, &pos, "expected a variable name after '$'"));
        }
        if name.contains('$') {
            return Err(ConfigError::at(
                ErrorKind::Syntax,
                &pos,
                format!("`${name}` is not a valid variable name; quote the value if it is a string"),
            ));
        }
        if !self.allow_variables {
            return Err(ConfigError::at(ErrorKind::Variable, &pos, "an environment value may not refer to a variable"));
        }
        let found = self.scopes.iter_mut().rev().find_map(|scope| {
            scope.iter_mut().find(|e| e.key == name).map(|entry| {
                entry.used_as_variable = true;
                entry.value.clone()
            })
        });
        if let Some(value) = found {
            if self.depth.saturating_add(value.depth()) > MAX_DEPTH {
                return Err(ConfigError::at(
                    ErrorKind::Limit,
                    &pos,
                    format!("maps and arrays are nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            self.session.expanded = self.session.expanded.saturating_add(value.node_count());
            if self.session.expanded > MAX_EXPANDED_NODES {
                return Err(ConfigError::at(
                    ErrorKind::Limit,
                    &pos,
                    format!("variable references copy more than {MAX_EXPANDED_NODES} values"),
                ));
            }
            return Ok(value);
        }
        match (self.session.env)(&name) {
            Some(text) => self.env_value(&name, &text, &pos),
            None => Err(ConfigError::at(
                ErrorKind::Variable,
                &pos,
                format!(
                    "variable `${name}` is not defined: define it before this line in this block or an enclosing one, or set the environment variable {name}"
                ),
            )),
        }
    }

    /// An environment value, parsed as a config value. Errors point at the
    /// reference and never show the value (it may be a secret).
    fn env_value(&mut self, name: &str, text: &str, at: &Pos) -> Result<Value, ConfigError> {
        let fail = |message: &str| {
            ConfigError::at(
                ErrorKind::Variable,
                at,
                format!("environment variable {name} does not hold a valid config value: {message}"),
            )
        };
        if text.len() > MAX_ENV_VALUE_BYTES {
            return Err(fail(&format!("longer than {MAX_ENV_VALUE_BYTES} bytes")));
        }
        let source = Source::new(format!("${name} (environment)"), text);
        check_characters(text, &source).map_err(|e| fail(e.message()))?;
        let mut parser = Parser {
            session: &mut *self.session,
            cur: Cursor::new(text, &source),
            base_dir: None,
            scopes: Vec::new(),
            depth: self.depth,
            allow_variables: false,
        };
        parser.cur.skip_trivia();
        let mut value = parser.value().map_err(|e| fail(e.message()))?;
        parser.cur.skip_trivia();
        if parser.cur.peek().is_some() {
            return Err(fail("unexpected text after the value (quote it if it is one string)"));
        }
        value.relocate(at);
        Ok(value)
    }

    /// `include path`: the file's top-level entries join the current block.
    /// Relative paths start from the including file's directory.
    fn include(&mut self) -> Result<(), ConfigError> {
        self.cur.skip_blanks();
        let at = self.cur.pos();
        let path = match self.cur.peek() {
            Some(q @ ('"' | '\'')) => self.cur.quoted_path(q)?,
            Some('=' | ':') => {
                return Err(self.syntax("`include` is a keyword, not a key: write include \"file.conf\""))
            }
            Some('{' | '[' | '$') | None | Some('\n' | '\r') => {
                return Err(self.syntax("expected a file name after `include`"))
            }
            Some(_) => self.cur.bare_path(),
        };
        if path.is_empty() {
            return Err(ConfigError::at(ErrorKind::Include, &at, "empty include path"));
        }
        let Some(base) = &self.base_dir else {
            return Err(ConfigError::at(ErrorKind::Include, &at, "include is not allowed in an environment value"));
        };
        let full = base.join(&path);
        let fail = |kind, message: String| ConfigError::at(kind, &at, format!("cannot include `{path}`: {message}"));
        if self.session.include_stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(fail(ErrorKind::Limit, format!("includes are nested deeper than {MAX_INCLUDE_DEPTH} files")));
        }
        let canonical = std::fs::canonicalize(&full).map_err(|e| fail(ErrorKind::Include, e.to_string()))?;
        if self.session.include_stack.contains(&canonical) {
            let chain: Vec<String> = self
                .session
                .include_stack
                .iter()
                .chain(std::iter::once(&canonical))
                .map(|p| p.display().to_string())
                .collect();
            return Err(fail(ErrorKind::Include, format!("include cycle: {}", chain.join(" -> "))));
        }
        let bytes = self.session.read(&canonical).map_err(|(kind, message)| fail(kind, message))?;
        let name = full.display().to_string();
        let base_dir = canonical.parent().map(Path::to_path_buf);
        self.session.include_stack.push(canonical);
        let result = parse_source(self.session, &bytes, &name, base_dir, self.depth);
        self.session.include_stack.pop();
        for entry in result? {
            self.insert(entry)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
