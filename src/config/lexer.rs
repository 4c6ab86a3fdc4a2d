//! The lexical layer of the nats-server config dialect.
//!
//! The dialect is context-sensitive (`:` separates a key from its value but is
//! part of the unquoted value `127.0.0.1:4222`), so the lexer is driven by the
//! parser: a [`Cursor`] that knows its line and column, and scanners for each
//! lexical form that the parser calls where that form may appear. Nothing here
//! indexes or slices in a way that can panic: the cursor only ever moves by
//! whole characters.

use std::sync::Arc;

use super::error::{ConfigError, ErrorKind};
use super::value::{Pos, Source};

/// A position in one source text.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    source: Arc<Source>,
    /// Byte offset; always on a character boundary.
    offset: usize,
    line: u32,
    column: u32,
}

/// Characters that end an unquoted value (besides the end of input).
pub(crate) fn ends_bare_value(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | ',' | ';' | ']' | '}')
}

/// Characters that end a bare key.
fn ends_bare_key(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '=' | ':' | '{' | '[')
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `source`'s text (which `text` must be).
    pub(crate) fn new(text: &'a str, source: &Arc<Source>) -> Self {
        let mut cursor = Cursor { text, source: Arc::clone(source), offset: 0, line: 1, column: 1 };
        if text.starts_with('\u{feff}') {
            // A byte-order mark is not part of the config; columns start after it.
            cursor.offset = '\u{feff}'.len_utf8();
        }
        cursor
    }

    /// The current position.
    pub(crate) fn pos(&self) -> Pos {
        Pos::new(&self.source, self.line, self.column)
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.offset..).unwrap_or("")
    }

    /// The next character, not consumed.
    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The character after the next one.
    pub(crate) fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    /// Consumes one character.
    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    /// An error at the current position.
    pub(crate) fn error(&self, kind: ErrorKind, message: impl Into<String>) -> ConfigError {
        ConfigError::at(kind, &self.pos(), message)
    }

    /// Whether a comment (`#` or `//`) starts here.
    pub(crate) fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek2() == Some('/'),
            _ => false,
        }
    }

    /// Skips spaces and tabs.
    pub(crate) fn skip_blanks(&mut self) -> bool {
        let mut skipped = false;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
            skipped = true;
        }
        skipped
    }

    /// Skips a comment up to (not including) the end of its line.
    fn skip_comment(&mut self) {
        while !matches!(self.peek(), None | Some('\n' | '\r')) {
            self.bump();
        }
    }

    /// Consumes one line ending (`\n` or `\r\n`), if one is here.
    pub(crate) fn eat_newline(&mut self) -> bool {
        match self.peek() {
            Some('\n') => {
                self.bump();
                true
            }
            Some('\r') if self.peek2() == Some('\n') => {
                self.bump();
                self.bump();
                true
            }
            _ => false,
        }
    }

    /// Skips blanks and a trailing comment on this line; the line ending stays.
    pub(crate) fn skip_line_trivia(&mut self) {
        self.skip_blanks();
        if self.at_comment() {
            self.skip_comment();
        }
    }

    /// Skips blanks, comments and line endings. Returns whether a line ended.
    pub(crate) fn skip_trivia(&mut self) -> bool {
        let mut newline = false;
        loop {
            self.skip_line_trivia();
            if !self.eat_newline() {
                return newline;
            }
            newline = true;
        }
    }

    /// Scans a double-quoted string; the cursor is on the opening quote.
    /// Escapes: `\t \n \r \" \\ \xHH`, as nats-server. May span lines.
    pub(crate) fn double_quoted(&mut self) -> Result<String, ConfigError> {
        let start = self.pos();
        self.bump();
        let mut bytes = Vec::new();
        loop {
            let here = self.pos();
            let Some(c) = self.bump() else {
                return Err(ConfigError::at(ErrorKind::Syntax, &start, "unterminated string: missing closing '\"'"));
            };
            match c {
                '"' => break,
                '\\' => {
                    let escaped = match self.bump() {
                        Some('t') => b'\t',
                        Some('n') => b'\n',
                        Some('r') => b'\r',
                        Some('"') => b'"',
                        Some('\\') => b'\\',
                        Some('x') => self.hex_byte(&here)?,
                        Some(other) => {
                            return Err(ConfigError::at(
                                ErrorKind::Syntax,
                                &here,
                                format!(
                                "invalid escape character '{}'; only \\xXX, \\t, \\n, \\r, \\\" and \\\\ are allowed",
                                other.escape_default()
                            ),
                            ))
                        }
                        None => {
                            return Err(ConfigError::at(
                                ErrorKind::Syntax,
                                &start,
                                "unterminated string: missing closing '\"'",
                            ))
                        }
                    };
                    bytes.push(escaped);
                }
                _ => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| {
            ConfigError::at(ErrorKind::Syntax, &start, "the \\x escapes in this string do not form valid UTF-8")
        })
    }

    /// The two hex digits after `\x`.
    fn hex_byte(&mut self, escape: &Pos) -> Result<u8, ConfigError> {
        let mut value = 0u8;
        for _ in 0..2 {
            let digit = self.peek().and_then(|c| c.to_digit(16));
            let Some(digit) = digit else {
                return Err(ConfigError::at(ErrorKind::Syntax, escape, "expected two hexadecimal digits after '\\x'"));
            };
            self.bump();
            // Two hex digits fit a byte: 0..=0xff.
            value = value.wrapping_mul(16).wrapping_add(digit as u8);
        }
        Ok(value)
    }

    /// Scans a single-quoted (raw) string; the cursor is on the opening quote.
    pub(crate) fn single_quoted(&mut self) -> Result<String, ConfigError> {
        let start = self.pos();
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
                None => {
                    return Err(ConfigError::at(
                        ErrorKind::Syntax,
                        &start,
                        "unterminated string: missing closing \"'\"",
                    ))
                }
            }
        }
    }

    /// Scans a bare key; the cursor is on its first character.
    pub(crate) fn bare_key(&mut self) -> Result<String, ConfigError> {
        let mut key = String::new();
        while let Some(c) = self.peek() {
            if ends_bare_key(c) {
                break;
            }
            if matches!(c, '}' | ']' | ',' | ';' | '"' | '\'' | '#' | '\\' | '(' | ')') {
                return Err(
                    self.error(ErrorKind::Syntax, format!("unexpected '{c}' in key; quote keys that contain it"))
                );
            }
            key.push(c);
            self.bump();
        }
        if key.is_empty() {
            return Err(self.error(ErrorKind::Syntax, "expected a key"));
        }
        Ok(key)
    }

    /// Scans an unquoted value up to a terminator; the cursor is on its first
    /// character. Quotes, backslashes and brackets inside are refused: in
    /// nats-server they silently change the meaning, here they must be quoted.
    pub(crate) fn bare_value(&mut self) -> Result<String, ConfigError> {
        let mut value = String::new();
        while let Some(c) = self.peek() {
            if ends_bare_value(c) {
                break;
            }
            if matches!(c, '"' | '\'' | '\\' | '{' | '[') {
                return Err(self.error(
                    ErrorKind::Syntax,
                    format!("unexpected '{c}' in an unquoted value; quote the whole value"),
                ));
            }
            value.push(c);
            self.bump();
        }
        Ok(value)
    }

    /// Scans an unquoted `include` path: up to blanks, a line end, `;` or `}`.
    pub(crate) fn bare_path(&mut self) -> String {
        let mut path = String::new();
        while let Some(c) = self.peek() {
            if matches!(c, ' ' | '\t' | '\n' | '\r' | ';' | '}' | ',') {
                break;
            }
            path.push(c);
            self.bump();
        }
        path
    }

    /// Scans a raw quoted `include` path (no escapes, one line).
    pub(crate) fn quoted_path(&mut self, quote: char) -> Result<String, ConfigError> {
        let start = self.pos();
        self.bump();
        let mut path = String::new();
        loop {
            match self.peek() {
                Some(c) if c == quote => {
                    self.bump();
                    return Ok(path);
                }
                None | Some('\n' | '\r') => {
                    return Err(ConfigError::at(ErrorKind::Syntax, &start, "unterminated include path"))
                }
                Some(c) => {
                    path.push(c);
                    self.bump();
                }
            }
        }
    }
}

/// An unquoted value, classified.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Bool(bool),
    Integer(i64),
    Size(i64),
    Float(f64),
    String(String),
}

/// Classifies an unquoted value: boolean word, integer, integer with a size
/// suffix, float, or else a string (so `127.0.0.1:4222`, `10s` and
/// `nats-route://h:1` are strings). `Err` is a message for a number that is
/// out of range.
pub(crate) fn classify(token: &str) -> Result<Scalar, String> {
    match token.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => return Ok(Scalar::Bool(true)),
        "false" | "no" | "off" => return Ok(Scalar::Bool(false)),
        _ => {}
    }
    let unsigned = token.strip_prefix('-').unwrap_or(token);
    let digits_end = unsigned.find(|c: char| !c.is_ascii_digit()).unwrap_or(unsigned.len());
    if digits_end == 0 {
        let after_dot = token.strip_prefix('.').unwrap_or("");
        if after_dot.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("number `{token}` must start with a digit (write 0{token})"));
        }
        return Ok(Scalar::String(token.to_owned()));
    }
    let (digits, rest) = unsigned.split_at(digits_end);
    let negative = token.len() != unsigned.len();
    if rest.is_empty() {
        return integer(token).map(Scalar::Integer);
    }
    if let Some(fraction) = rest.strip_prefix('.') {
        if !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) {
            return token
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Scalar::Float)
                .ok_or_else(|| format!("float `{token}` is out of range"));
        }
        return Ok(Scalar::String(token.to_owned()));
    }
    match size_multiplier(rest) {
        Some(multiplier) => {
            let base = integer(digits)?;
            let signed = if negative { -base } else { base };
            signed.checked_mul(multiplier).map(Scalar::Size).ok_or_else(|| format!("size `{token}` is out of range"))
        }
        None => Ok(Scalar::String(token.to_owned())),
    }
}

fn integer(text: &str) -> Result<i64, String> {
    text.parse::<i64>().map_err(|_| format!("integer `{text}` is out of range"))
}

/// The multiplier of a size suffix, case-insensitive: a bare letter is a power
/// of 1000, `b`/`i`/`ib` forms are powers of 1024 (as nats-server).
fn size_multiplier(suffix: &str) -> Option<i64> {
    let lower = suffix.to_ascii_lowercase();
    let mut chars = lower.chars();
    let exponent = match chars.next()? {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        _ => return None,
    };
    let base: i64 = match chars.as_str() {
        "" => 1000,
        "b" | "i" | "ib" => 1024,
        _ => return None,
    };
    base.checked_pow(exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        use Scalar::*;
        let s = |x: &str| String(x.to_owned());
        let cases: Vec<(&str, Scalar)> = vec![
            ("true", Bool(true)),
            ("YES", Bool(true)),
            ("On", Bool(true)),
            ("false", Bool(false)),
            ("no", Bool(false)),
            ("OFF", Bool(false)),
            ("4222", Integer(4222)),
            ("-1", Integer(-1)),
            ("007", Integer(7)),
            ("1.5", Float(1.5)),
            ("-0.25", Float(-0.25)),
            ("2k", Size(2000)),
            ("2K", Size(2000)),
            ("64KB", Size(65536)),
            ("1ki", Size(1024)),
            ("1KiB", Size(1024)),
            ("2m", Size(2_000_000)),
            ("10MB", Size(10_485_760)),
            ("1g", Size(1_000_000_000)),
            ("1GB", Size(1 << 30)),
            ("1t", Size(1_000_000_000_000)),
            ("1tb", Size(1 << 40)),
            ("1PB", Size(1 << 50)),
            ("1e", Size(1_000_000_000_000_000_000)),
            ("-2k", Size(-2000)),
            ("127.0.0.1:4222", s("127.0.0.1:4222")),
            ("127.0.0.1", s("127.0.0.1")),
            ("10s", s("10s")),
            ("1h30m", s("1h30m")),
            ("1.5s", s("1.5s")),
            ("2ms", s("2ms")),
            ("1.", s("1.")),
            ("1e5", s("1e5")),
            ("nats-route://a:1", s("nats-route://a:1")),
            ("-foo", s("-foo")),
            ("foo", s("foo")),
            (">", s(">")),
            ("_INBOX.*", s("_INBOX.*")),
        ];
        for (token, want) in cases {
            assert_eq!(classify(token), Ok(want), "{token}");
        }
    }

    #[test]
    fn classify_out_of_range() {
        for token in ["9223372036854775808", "10e", "8EB", ".5"] {
            assert!(classify(token).is_err(), "{token}");
        }
        assert_eq!(classify("-9223372036854775808"), Ok(Scalar::Integer(i64::MIN)));
    }

    #[test]
    fn double_quoted_escapes() {
        let source = Source::new("t", "");
        let cases = [
            (r#""a\tb\n\r\"\\""#, Ok("a\tb\n\r\"\\".to_owned())),
            (r#""\x41\xc3\xa9""#, Ok("Aé".to_owned())),
            (r#""$X""#, Ok("$X".to_owned())),
            ("\"multi\nline\"", Ok("multi\nline".to_owned())),
            (r#""\q""#, Err(2u32)),
            (r#""\x4""#, Err(2)),
            (r#""\xff""#, Err(1)),
            (r#""open"#, Err(1)),
        ];
        for (text, want) in cases {
            let mut cursor = Cursor::new(text, &source);
            let got = cursor.double_quoted();
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{text}"),
                (Err(e), Err(col)) => assert_eq!(e.column(), Some(col), "{text}: {e}"),
                (g, w) => panic!("{text}: got {g:?}, want {w:?}"),
            }
        }
    }
}
