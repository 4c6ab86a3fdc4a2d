//! The one error type of the config reader.
//!
//! Its `Display` names `file:line:col`, says what is wrong and shows the
//! offending line with a caret under the column. Values of secret keys
//! (`password`, `pass`, `token`, credentials in URLs) are masked in that line,
//! and messages never quote a value that could be a secret.

use std::fmt;

use super::value::{Entry, Pos, Value};

/// What kind of mistake, broadly; the message says exactly what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read.
    Io,
    /// The input exceeds a bound: file size, nesting depth, include depth or
    /// count, or the growth of variable expansion.
    Limit,
    /// Malformed text: a bad character, an unterminated string, a missing
    /// separator or terminator.
    Syntax,
    /// A `$variable` that is not defined before its use in an enclosing block
    /// nor in the environment, or an environment value that does not parse.
    Variable,
    /// A file named by `include` that cannot be used, or an include cycle.
    Include,
    /// The same key twice in one block (nats-server would take the last one
    /// silently; warden refuses).
    DuplicateKey,
    /// A key that means nothing at that place.
    UnknownKey,
    /// A value of the wrong type, e.g. a string where a number belongs.
    Type,
    /// A value of the right type that is not acceptable: a bad subject, port,
    /// duration, or a limit out of range.
    Invalid,
    /// Options that contradict each other, e.g. a token and a users list.
    Conflict,
}

/// A config that cannot be used, with where and why.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    kind: ErrorKind,
    message: String,
    file: Option<String>,
    /// 1-based line and column.
    position: Option<(u32, u32)>,
    /// The offending line, secrets masked, possibly shortened, and the
    /// 0-based character offset of the caret in it.
    snippet: Option<(String, usize)>,
}

/// Longest line shown in full; longer ones are shown around the column.
const SNIPPET_WIDTH: usize = 120;

impl ConfigError {
    /// An error with no position (e.g. the top-level file cannot be read).
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConfigError { kind, message: message.into(), file: None, position: None, snippet: None }
    }

    /// An error about a whole file.
    pub(crate) fn in_file(kind: ErrorKind, file: &str, message: impl Into<String>) -> Self {
        ConfigError { file: Some(file.to_owned()), ..ConfigError::new(kind, message) }
    }

    /// An error at a position, showing that line.
    pub(crate) fn at(kind: ErrorKind, pos: &Pos, message: impl Into<String>) -> Self {
        let snippet = pos.source.line_text(pos.line).map(|line| snippet(line, pos.column));
        ConfigError {
            kind,
            message: message.into(),
            file: Some(pos.file().to_owned()),
            position: Some((pos.line, pos.column)),
            snippet,
        }
    }

    /// What kind of mistake this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message alone, without position or snippet.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The file the error is in, if it is about a file.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// 1-based line, if the error has a position.
    pub fn line(&self) -> Option<u32> {
        self.position.map(|(l, _)| l)
    }

    /// 1-based column (in characters), if the error has a position.
    pub fn column(&self) -> Option<u32> {
        self.position.map(|(_, c)| c)
    }
}

/// Options that contradict each other, reported at the key of `entry`
/// (the one that made the contradiction).
pub(crate) fn conflict(entry: &Entry, message: &str) -> ConfigError {
    ConfigError::at(ErrorKind::Conflict, &entry.key_pos, message)
}

/// A value of the right type that is not acceptable, reported at the value.
pub(crate) fn invalid(value: &Value, message: impl Into<String>) -> ConfigError {
    ConfigError::at(ErrorKind::Invalid, &value.pos, message)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.position) {
            (Some(file), Some((line, col))) => write!(f, "{file}:{line}:{col}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            _ => {}
        }
        f.write_str(&self.message)?;
        if let (Some((text, caret)), Some((line, _))) = (&self.snippet, self.position) {
            let number = line.to_string();
            let gutter = " ".repeat(number.len());
            // Keep tabs so that the caret lines up under the same column.
            let pad: String = text.chars().take(*caret).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            write!(f, "\n{gutter} |\n{number} | {text}\n{gutter} | {pad}^")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigError")
            .field("kind", &self.kind)
            .field("file", &self.file)
            .field("position", &self.position)
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for ConfigError {}

/// The line to show: secrets masked, control characters made visible,
/// shortened around `column` when long; with the caret's character offset.
fn snippet(line: &str, column: u32) -> (String, usize) {
    let masked: Vec<char> =
        mask_secrets(line).chars().map(|c| if c.is_control() && c != '\t' { '?' } else { c }).collect();
    let caret = usize::try_from(column).unwrap_or(0).saturating_sub(1).min(masked.len());
    if masked.len() <= SNIPPET_WIDTH {
        return (masked.into_iter().collect(), caret);
    }
    let half = SNIPPET_WIDTH / 2;
    let start = caret.saturating_sub(half);
    let end = start.saturating_add(SNIPPET_WIDTH).min(masked.len());
    let mut shown = String::new();
    let mut caret_in_shown = caret - start;
    if start > 0 {
        shown.push_str("...");
        caret_in_shown += 3;
    }
    shown.extend(masked.get(start..end).unwrap_or_default());
    if end < masked.len() {
        shown.push_str("...");
    }
    (shown, caret_in_shown)
}

/// Keys whose values are never shown.
const SECRET_KEYS: [&str; 4] = ["password", "pass", "token", "auth_token"];

/// Replaces the values of secret keys and URL passwords with `*`, keeping the
/// number of characters so the caret still lines up.
pub(crate) fn mask_secrets(line: &str) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // A word: the longest run of key characters starting here.
        let starts_word = i == 0 || !is_word_char(chars[i - 1]);
        if starts_word && is_word_char(chars[i]) {
            let end = (i..chars.len()).find(|&j| !is_word_char(chars[j])).unwrap_or(chars.len());
            let word: String = chars[i..end].iter().collect();
            if SECRET_KEYS.iter().any(|k| word.eq_ignore_ascii_case(k)) {
                mask_value_after(&mut chars, end);
            } else if looks_like_seed(&word) {
                chars[i..end].fill('*');
            }
            i = end;
            continue;
        }
        // `scheme://user:password@host`: mask the password.
        if chars[i] == ':' && chars.get(i + 1) == Some(&'/') && chars.get(i + 2) == Some(&'/') {
            mask_url_password(&mut chars, i + 3);
            i += 3;
            continue;
        }
        i += 1;
    }
    chars.into_iter().collect()
}

/// An nkey seed (`S` and a key type, 58 base32 characters): under a
/// remote's `nkey`, or pasted where a public key belongs, it is masked
/// whatever key it stands under.
fn looks_like_seed(word: &str) -> bool {
    word.len() == 58
        && word.starts_with('S')
        && word.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// After a secret key at `end`: skip a closing quote, blanks and a separator,
/// then mask the value (quoted: up to the closing quote; bare: up to a
/// terminator).
fn mask_value_after(chars: &mut [char], end: usize) {
    let mut j = end;
    if matches!(chars.get(j), Some('"' | '\'')) {
        j += 1;
    }
    while matches!(chars.get(j), Some(' ' | '\t')) {
        j += 1;
    }
    if matches!(chars.get(j), Some('=' | ':')) {
        j += 1;
        while matches!(chars.get(j), Some(' ' | '\t')) {
            j += 1;
        }
    } else if j == end {
        // Not followed by a separator or a blank: the word is not a key.
        return;
    }
    let quote = match chars.get(j) {
        Some(&q @ ('"' | '\'')) => {
            j += 1;
            Some(q)
        }
        _ => None,
    };
    while let Some(&c) = chars.get(j) {
        let stop = match quote {
            Some(q) => c == q,
            None => matches!(c, ' ' | '\t' | ',' | ';' | '}' | ']' | '#'),
        };
        if stop {
            break;
        }
        if let Some(slot) = chars.get_mut(j) {
            *slot = '*';
        }
        j += 1;
    }
}

/// From the start of a URL authority: if it has `user:password@`, mask the password.
fn mask_url_password(chars: &mut [char], start: usize) {
    let end = (start..chars.len())
        .find(|&j| matches!(chars[j], ' ' | '\t' | '"' | '\'' | ',' | ']' | '/'))
        .unwrap_or(chars.len());
    let Some(at) = (start..end).rev().find(|&j| chars[j] == '@') else {
        return;
    };
    let Some(colon) = (start..at).find(|&j| chars[j] == ':') else {
        return;
    };
    for slot in chars.iter_mut().take(at).skip(colon + 1) {
        *slot = '*';
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::Source;

    #[test]
    fn display_names_position_and_shows_line_with_caret() {
        let source = Source::new("a.conf", "port: 4222\n  prot: 1\n");
        let pos = Pos::new(&source, 2, 3);
        let err = ConfigError::at(ErrorKind::UnknownKey, &pos, "unknown key `prot`");
        assert_eq!(err.to_string(), "a.conf:2:3: unknown key `prot`\n  |\n2 |   prot: 1\n  |   ^");
        assert_eq!(err.line(), Some(2));
        assert_eq!(err.column(), Some(3));
        assert_eq!(err.file(), Some("a.conf"));
    }

    #[test]
    fn caret_follows_tabs() {
        let source = Source::new("t", "\tx = ");
        let err = ConfigError::at(ErrorKind::Syntax, &Pos::new(&source, 1, 6), "m");
        assert!(err.to_string().ends_with("1 | \tx = \n  | \t    ^"));
    }

    #[test]
    fn secrets_are_masked_in_the_shown_line() {
        let cases = [
            ("password: foo", "password: ***"),
            (
                "{user: alice, password: \"s3cr3t\", permissions: $admin}",
                "{user: alice, password: \"******\", permissions: $admin}",
            ),
            ("pass=abc;", "pass=***;"),
            ("token \"t0k\"", "token \"***\""),
            ("\"password\": \"x\",", "\"password\": \"*\","),
            ("routes = [nats-route://ruser:T0pS3cr3t@host:6222]", "routes = [nats-route://ruser:*********@host:6222]"),
            ("passwords_file = x", "passwords_file = x"),
            ("user: pass", "user: pass"),
            // Seeds under any key; public keys stay readable.
            (
                "nkey: \"SUAN5JP7QY76HLOYOGCE3Z7CTWIWMFNXN3NXXHR52IMZBUKGRDGJXOI24E\"",
                "nkey: \"**********************************************************\"",
            ),
            (
                "nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4",
                "nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(mask_secrets(line), want, "{line}");
        }
    }

    #[test]
    fn long_lines_are_shortened_around_the_column() {
        let line = format!("{}X{}", "a".repeat(500), "b".repeat(500));
        let (shown, caret) = snippet(&line, 501);
        assert!(shown.len() < 140);
        assert_eq!(shown.chars().nth(caret), Some('X'));
    }
}
