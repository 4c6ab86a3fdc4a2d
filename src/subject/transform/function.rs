//! The functions a mapping destination token may be, written as one whole
//! token `{{name(arguments)}}` (or the legacy `$N`), read as nats-server
//! 2.15.1 reads them (`indexPlaceHolders` in `subject_transform.go`): the
//! first letter of each word of the name in either case (`splitFromLeft`,
//! `SplitFromLeft`), blanks allowed around the name and the arguments.
//!
//! Where nats-server accepts an argument that can only be a mistake, the
//! reader refuses it (fail closed): a wildcard index below 1 (nats-server
//! reads `$0` and `$-1` as the source's first token, wildcard or not), a
//! count or size below 1 (nats-server's `partition(-3)` wraps the count
//! around, and `left(1,0)` does nothing), and wildcard arguments to
//! `partition` on a source without wildcards (nats-server ignores them).
//!
//! Every function works on bytes, as nats-server's do on Go strings; what
//! it writes is checked as a subject by the caller (a slice of `a*` can be
//! the wildcard `*`, which is never routed).

use std::fmt;

/// Most wildcard arguments one `partition` takes (each names a source
/// wildcard; repeats allowed): bounds the work per message.
pub const MAX_PARTITION_ARGUMENTS: usize = 16;

/// What is wrong with a function token (nats-server's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// `{{name(...)}}` with a name nats-server does not know.
    Unknown,
    /// Too few arguments.
    NotEnoughArguments,
    /// Too many arguments.
    TooManyArguments,
    /// An argument that is not what the function takes.
    InvalidArgument,
    /// A wildcard index the source does not have.
    OutOfRange,
    /// A function other than `wildcard` in an import's transform, which
    /// must be reversible.
    NotForImport,
    /// `{{` or `}}` in a token that is not one whole function (warden
    /// only: nats-server takes `x{{wildcard(1)}}` as a literal token).
    NotWholeToken,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::Unknown => "unknown function",
            Problem::NotEnoughArguments => "not enough arguments passed to the function",
            Problem::TooManyArguments => "too many arguments passed to the function",
            Problem::InvalidArgument => "function argument is invalid or in the wrong format",
            Problem::OutOfRange => "wildcard index out of range",
            Problem::NotForImport => "the only mapping function allowed for import transforms is {{Wildcard()}}",
            Problem::NotWholeToken => "a mapping function must be a whole token, `{{name(arguments)}}`",
        })
    }
}

/// A destination token computed from the source subject. Wildcard
/// arguments are 0-based source wildcard numbers (checked against the
/// source by the transform that holds the function).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Function {
    /// The token the wildcard matched (`$N`, `{{wildcard(N)}}`).
    Wildcard(usize),
    /// FNV-1a (32 bits) of the named wildcards' tokens, concatenated, or of
    /// the whole subject when none is named, modulo `buckets`, in decimal.
    Partition { buckets: u32, wildcards: Box<[usize]> },
    /// The token cut in two, `at` bytes from its start (unchanged when it
    /// is not longer than that).
    SplitFromLeft { wildcard: usize, at: usize },
    /// The token cut in two, `at` bytes from its end.
    SplitFromRight { wildcard: usize, at: usize },
    /// The token cut into tokens of `size` bytes from its start, the
    /// remainder last.
    SliceFromLeft { wildcard: usize, size: usize },
    /// The token cut into tokens of `size` bytes from its end, the
    /// remainder first.
    SliceFromRight { wildcard: usize, size: usize },
    /// The token's first `len` bytes.
    Left { wildcard: usize, len: usize },
    /// The token's last `len` bytes.
    Right { wildcard: usize, len: usize },
    /// The token cut at every `delimiter`, empty pieces left out (an empty
    /// delimiter cuts between characters).
    Split { wildcard: usize, delimiter: Box<[u8]> },
    /// A random number below `ceiling`, in decimal.
    Random { ceiling: u32 },
}

/// The function names, each with the byte positions whose letter may be
/// upper or lower case (nats-server's `[sS]plit[fF]rom[lL]eft`).
const NAMES: &[(&str, &[usize])] = &[
    ("wildcard", &[0]),
    ("partition", &[0]),
    ("splitfromleft", &[0, 5, 9]),
    ("splitfromright", &[0, 5, 9]),
    ("slicefromleft", &[0, 5, 9]),
    ("slicefromright", &[0, 5, 9]),
    ("split", &[0]),
    ("left", &[0]),
    ("right", &[0]),
    ("random", &[0]),
];

/// Whether `written` is `name` (lower case) with only the letters at
/// `humps` allowed in upper case.
fn is_name(written: &str, name: &str, humps: &[usize]) -> bool {
    written.len() == name.len()
        && written
            .bytes()
            .zip(name.bytes())
            .enumerate()
            .all(|(i, (w, n))| w == n || (humps.contains(&i) && w.to_ascii_lowercase() == n))
}

/// Go's `\s`.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// Go's `strconv.Atoi` on `text` with spaces trimmed: an optional sign and
/// decimal digits.
fn integer(text: &str) -> Option<i64> {
    text.trim_matches(' ').parse().ok()
}

/// A wildcard index as written (1-based): `Some(n - 1)`, or the problem.
fn wildcard_index(text: &str) -> Result<usize, Problem> {
    match integer(text) {
        Some(n) if n >= 1 => usize::try_from(n - 1).map_err(|_| Problem::OutOfRange),
        Some(_) => Err(Problem::OutOfRange),
        None => Err(Problem::InvalidArgument),
    }
}

/// A count or size: 1 up to `i32::MAX` (nats-server's bound).
fn positive(text: &str) -> Result<u32, Problem> {
    match integer(text) {
        Some(n) if (1..=i64::from(i32::MAX)).contains(&n) => u32::try_from(n).map_err(|_| Problem::InvalidArgument),
        _ => Err(Problem::InvalidArgument),
    }
}

/// Reads one destination token: `Ok(None)` for a literal token, the
/// function it is, or what is wrong with it.
pub(super) fn parse(token: &str) -> Result<Option<Function>, Problem> {
    if let Some(number) = token.strip_prefix('$').filter(|n| !n.is_empty()) {
        // nats-server: a `$` token that is not a number is a literal
        // (`$SYS`); one that is names a wildcard.
        return match number.parse::<i64>() {
            Ok(_) => wildcard_index(number).map(|n| Some(Function::Wildcard(n))),
            Err(_) => Ok(None),
        };
    }
    let Some(inner) = token.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")).filter(|i| !i.is_empty()) else {
        if token.contains("{{") || token.contains("}}") {
            return Err(Problem::NotWholeToken);
        }
        return Ok(None);
    };
    let inner = inner.trim_start_matches(is_blank).trim_end_matches(is_blank);
    let (Some(open), Some(close)) = (inner.find('('), inner.rfind(')')) else {
        return Err(Problem::Unknown);
    };
    if close + 1 != inner.len() || close < open {
        return Err(Problem::Unknown);
    }
    let written = inner[..open].trim_end_matches(is_blank);
    let Some((name, _)) = NAMES.iter().find(|(name, humps)| is_name(written, name, humps)) else {
        return Err(Problem::Unknown);
    };
    // nats-server splits the arguments at a comma and the blanks after it.
    let args: Vec<&str> = inner[open + 1..close]
        .split(',')
        .enumerate()
        .map(|(i, a)| if i == 0 { a } else { a.trim_start_matches(is_blank) })
        .collect();
    let count = |want: usize| match args.len() {
        n if n < want || (n == 1 && args[0].is_empty()) => Err(Problem::NotEnoughArguments),
        n if n > want => Err(Problem::TooManyArguments),
        _ => Ok(()),
    };
    let pair = || -> Result<(usize, usize), Problem> {
        count(2)?;
        let wildcard = wildcard_index(args[0])?;
        let n = positive(args[1])?;
        Ok((wildcard, n as usize))
    };
    let function = match *name {
        "wildcard" => {
            count(1)?;
            Function::Wildcard(wildcard_index(args[0])?)
        }
        "partition" => {
            let buckets = positive(args[0])?;
            if args.len() > 1 + MAX_PARTITION_ARGUMENTS {
                return Err(Problem::TooManyArguments);
            }
            let wildcards = args[1..].iter().map(|a| wildcard_index(a)).collect::<Result<_, _>>()?;
            Function::Partition { buckets, wildcards }
        }
        "splitfromleft" => pair().map(|(wildcard, at)| Function::SplitFromLeft { wildcard, at })?,
        "splitfromright" => pair().map(|(wildcard, at)| Function::SplitFromRight { wildcard, at })?,
        "slicefromleft" => pair().map(|(wildcard, size)| Function::SliceFromLeft { wildcard, size })?,
        "slicefromright" => pair().map(|(wildcard, size)| Function::SliceFromRight { wildcard, size })?,
        "left" => pair().map(|(wildcard, len)| Function::Left { wildcard, len })?,
        "right" => pair().map(|(wildcard, len)| Function::Right { wildcard, len })?,
        "split" => {
            count(2)?;
            let wildcard = wildcard_index(args[0])?;
            if args[1].contains([' ', '.']) {
                return Err(Problem::InvalidArgument);
            }
            Function::Split { wildcard, delimiter: args[1].as_bytes().into() }
        }
        "random" => {
            if args.len() != 1 {
                return Err(Problem::NotEnoughArguments);
            }
            Function::Random { ceiling: positive(args[0])? }
        }
        _ => return Err(Problem::Unknown),
    };
    Ok(Some(function))
}

impl Function {
    /// The source wildcards the function reads (0-based).
    pub(super) fn wildcards(&self) -> &[usize] {
        match self {
            Function::Wildcard(w)
            | Function::SplitFromLeft { wildcard: w, .. }
            | Function::SplitFromRight { wildcard: w, .. }
            | Function::SliceFromLeft { wildcard: w, .. }
            | Function::SliceFromRight { wildcard: w, .. }
            | Function::Left { wildcard: w, .. }
            | Function::Right { wildcard: w, .. }
            | Function::Split { wildcard: w, .. } => std::slice::from_ref(w),
            Function::Partition { wildcards, .. } => wildcards,
            Function::Random { .. } => &[],
        }
    }

    /// Whether the function writes one valid token whatever it is given
    /// (a number, or a copy of a token of a valid subject).
    pub(super) fn keeps_tokens(&self) -> bool {
        matches!(self, Function::Wildcard(_) | Function::Partition { .. } | Function::Random { .. })
    }

    /// Appends the function's value to `out`. `token(n)` is what source
    /// wildcard `n` matched, `subject` the whole subject, `random(n)` a
    /// number below `n`.
    pub(super) fn write<'s>(
        &self,
        out: &mut Vec<u8>,
        subject: &[u8],
        token: impl Fn(usize) -> &'s [u8],
        random: &mut impl FnMut(u32) -> u32,
    ) {
        match self {
            Function::Wildcard(w) => out.extend_from_slice(token(*w)),
            Function::Partition { buckets, wildcards } => {
                let mut hash = Fnv1a::new();
                if wildcards.is_empty() {
                    hash.write(subject);
                }
                for w in wildcards.iter() {
                    hash.write(token(*w));
                }
                decimal(out, hash.finish() % buckets);
            }
            Function::SplitFromLeft { wildcard, at } => {
                let t = token(*wildcard);
                split_at(out, t, *at);
            }
            Function::SplitFromRight { wildcard, at } => {
                let t = token(*wildcard);
                split_at(out, t, t.len().wrapping_sub(*at));
            }
            Function::SliceFromLeft { wildcard, size } => {
                let t = token(*wildcard);
                let size = if *size < t.len() { *size } else { t.len().max(1) };
                join(out, t.chunks(size));
            }
            Function::SliceFromRight { wildcard, size } => {
                let t = token(*wildcard);
                let size = if *size < t.len() { *size } else { t.len().max(1) };
                let (head, rest) = t.split_at(t.len() % size);
                join(out, std::iter::once(head).filter(|h| !h.is_empty()).chain(rest.chunks(size)));
            }
            Function::Left { wildcard, len } => {
                let t = token(*wildcard);
                out.extend_from_slice(t.get(..*len).unwrap_or(t));
            }
            Function::Right { wildcard, len } => {
                let t = token(*wildcard);
                out.extend_from_slice(t.get(t.len().saturating_sub(*len)..).unwrap_or(t));
            }
            Function::Split { wildcard, delimiter } => {
                let t = token(*wildcard);
                if delimiter.is_empty() {
                    // Go's strings.Split with "": one piece per character
                    // (subjects are UTF-8), none of them empty.
                    let text = std::str::from_utf8(t).unwrap_or_default();
                    join(out, text.char_indices().map(|(i, c)| &t[i..i + c.len_utf8()]));
                } else {
                    split_like_go(out, pieces(t, delimiter));
                }
            }
            Function::Random { ceiling } => decimal(out, random(*ceiling)),
        }
    }
}

/// `t` cut before byte `at` when that leaves both parts non-empty.
fn split_at(out: &mut Vec<u8>, t: &[u8], at: usize) {
    if at > 0 && at < t.len() {
        out.extend_from_slice(&t[..at]);
        out.push(b'.');
        out.extend_from_slice(&t[at..]);
    } else {
        out.extend_from_slice(t);
    }
}

/// The parts, `.` between them.
fn join<P: AsRef<[u8]>>(out: &mut Vec<u8>, parts: impl Iterator<Item = P>) {
    for (i, part) in parts.enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(part.as_ref());
    }
}

/// nats-server's joining of `split`'s pieces, to the byte: each non-empty
/// piece, with a `.` before every non-empty piece but the first, except
/// that a leading empty piece suppresses the first `.` only (`--a` split
/// at `-` is `.a`, an invalid subject the caller refuses, as nats-server
/// never delivers it).
fn split_like_go<'t>(out: &mut Vec<u8>, pieces: impl Iterator<Item = &'t [u8]>) {
    let mut pieces = pieces.enumerate().peekable();
    while let Some((j, piece)) = pieces.next() {
        out.extend_from_slice(piece);
        if pieces.peek().is_some_and(|(_, next)| !next.is_empty()) && !(j == 0 && piece.is_empty()) {
            out.push(b'.');
        }
    }
}

/// `t` cut at every occurrence of the non-empty `delimiter`.
fn pieces<'t>(t: &'t [u8], delimiter: &'t [u8]) -> impl Iterator<Item = &'t [u8]> {
    let mut rest = Some(t);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(delimiter.len()).position(|w| w == delimiter) {
            Some(i) => {
                rest = Some(&r[i + delimiter.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn decimal(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// 32-bit FNV-1a, the hash nats-server's `partition` uses (Go's
/// `hash/fnv.New32a`): the same subject lands in the same partition on
/// both servers.
pub(super) struct Fnv1a(u32);

impl Fnv1a {
    pub(super) fn new() -> Fnv1a {
        Fnv1a(0x811c_9dc5)
    }

    pub(super) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u32::from(*b)).wrapping_mul(0x0100_0193);
        }
    }

    pub(super) fn finish(&self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests;
