//! The token classifier: how the default build (without `pg-parser`, so without
//! libclang to build) judges gates, probes and the non-DML statements of tier files.
//!
//! It reads tokens by PostgreSQL's lexical rules (the same ones the streaming lexer
//! follows) and accepts only what it can prove from them: a gate or probe that is one
//! `SELECT`/`VALUES`/`WITH` with no word that could write, lock or change a setting,
//! and tier statements of kinds known to run inside a transaction block. Anything else
//! is refused, saying that the full check is the pg-parser build's.
//!
//! Invariant: it never accepts a statement PostgreSQL's parser refuses for what the
//! statement does. It does not find syntax errors: the server does, before running
//! anything (it parses a whole tier file, or a gate, before executing any of it).
//! `differential` below holds it to that against the parser, in the pg-parser build.

use super::SqlRole;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    /// An unquoted word: keyword, identifier or number, ASCII-uppercased.
    Word(String),
    /// A `"quoted identifier"`: its value.
    Quoted(String),
    /// `U&"…"`: its value needs Unicode-escape decoding, so it is never trusted.
    UnicodeQuoted,
    /// A string constant of any kind (`'…'`, `E'…'`, `$tag$…$tag$`…): data.
    Str,
    /// `$1`, or a `$` that opens no dollar quote.
    Param,
    /// Any other byte outside quotes and comments.
    Punct(u8),
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    line: usize,
    /// Byte offsets, to see what touches what (`E'`, `U&"`).
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Token {
    pub(super) fn word(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    pub(super) fn is(&self, word: &str) -> bool {
        self.word() == Some(word)
    }

    pub(super) fn line(&self) -> usize {
        self.line
    }

    pub(super) fn punct(&self, b: u8) -> bool {
        self.tok == Tok::Punct(b)
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_tag_byte(b: u8, first: bool) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 || (!first && b.is_ascii_digit())
}

/// The end of a string constant whose body starts at `i`: the index after its closing
/// quote, following a continuation (`'a'` newline `'b'` is one constant, scan.l
/// `quotecontinue`) so that an `E'…'` keeps its backslash escapes across it.
fn string_end(b: &[u8], mut i: usize, escape: bool, line: &mut usize) -> Option<usize> {
    loop {
        let c = *b.get(i)?;
        match c {
            b'\n' => *line += 1,
            b'\\' if escape => {
                i += 1;
                if *b.get(i)? == b'\n' {
                    *line += 1;
                }
            }
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 1,
            b'\'' => {
                let after = i + 1;
                match continuation(b, after) {
                    Some((next, newlines)) => {
                        *line += newlines;
                        i = next;
                        continue;
                    }
                    None => return Some(after),
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// After a closing quote at `i - 1`: when whitespace with a newline (and `--`
/// comments) leads to another quote, the index after that quote and the newlines
/// crossed.
fn continuation(b: &[u8], mut i: usize) -> Option<(usize, usize)> {
    let mut newlines = 0;
    let mut seen_newline = false;
    loop {
        match *b.get(i)? {
            b' ' | b'\t' | 0x0c => i += 1,
            0x0b if seen_newline => i += 1,
            b'\n' | b'\r' => {
                newlines += usize::from(b[i] == b'\n');
                seen_newline = true;
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'\'' if seen_newline => return Some((i + 1, newlines)),
            _ => return None,
        }
    }
}

/// Tokens of `sql`, whose first byte is on `first_line`; an unterminated construct is
/// `(line it opens on, message)`.
pub(super) fn tokenize(sql: &str, first_line: usize) -> Result<Vec<Token>, (usize, String)> {
    let mut tokenizer = Tokenizer {
        bytes: sql.as_bytes(),
        pos: 0,
        line: first_line,
        out: Vec::new(),
    };
    while tokenizer.pos < tokenizer.bytes.len() {
        tokenizer.step()?;
    }
    Ok(tokenizer.out)
}

fn unterminated(line: usize, what: &str) -> (usize, String) {
    (
        line,
        format!("unterminated {what}: the server would refuse the whole file"),
    )
}

/// The tokens read so far, and where the next byte is (offset and line).
struct Tokenizer<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    out: Vec<Token>,
}

impl Tokenizer<'_> {
    /// Read whatever starts at `pos`: blank, comment or one token.
    fn step(&mut self) -> Result<(), (usize, String)> {
        let bytes = self.bytes;
        let start = self.pos;
        let at = self.line;
        let c = bytes[start];
        match c {
            b'\n' => {
                self.line += 1;
                self.pos += 1;
            }
            b' ' | b'\t' | b'\r' | 0x0b | 0x0c => self.pos += 1,
            b'-' if bytes.get(start + 1) == Some(&b'-') => {
                while self.pos < bytes.len() && bytes[self.pos] != b'\n' && bytes[self.pos] != b'\r'
                {
                    self.pos += 1;
                }
            }
            b'/' if bytes.get(start + 1) == Some(&b'*') => self.block_comment(at)?,
            b'\'' => self.string_constant(start, at)?,
            b'"' => self.quoted_identifier(start, at)?,
            b'$' => self.dollar(start, at)?,
            _ if is_word_byte(c) => {
                self.skip_word_bytes();
                let word = String::from_utf8_lossy(&bytes[start..self.pos]).to_ascii_uppercase();
                self.push(Tok::Word(word), at, start);
            }
            _ => {
                self.pos += 1;
                self.push(Tok::Punct(c), at, start);
            }
        }
        Ok(())
    }

    /// A token from `start` to the current offset, opened on line `at`.
    fn push(&mut self, tok: Tok, at: usize, start: usize) {
        self.out.push(Token {
            tok,
            line: at,
            start,
            end: self.pos,
        });
    }

    fn skip_word_bytes(&mut self) {
        while self.pos < self.bytes.len() && is_word_byte(self.bytes[self.pos]) {
            self.pos += 1;
        }
    }

    /// A `/* … */` comment, which nests.
    fn block_comment(&mut self, at: usize) -> Result<(), (usize, String)> {
        let bytes = self.bytes;
        let mut depth = 0u32;
        self.pos += 2;
        loop {
            match (bytes.get(self.pos), bytes.get(self.pos + 1)) {
                (None, _) => return Err(unterminated(at, "/* comment")),
                (Some(b'/'), Some(b'*')) => {
                    depth += 1;
                    self.pos += 2;
                }
                (Some(b'*'), Some(b'/')) => {
                    self.pos += 2;
                    if depth == 0 {
                        return Ok(());
                    }
                    depth -= 1;
                }
                (Some(&x), _) => {
                    self.line += usize::from(x == b'\n');
                    self.pos += 1;
                }
            }
        }
    }

    /// A `'…'` string constant (with a `E` or `U&` touching it, which it takes in).
    fn string_constant(&mut self, start: usize, at: usize) -> Result<(), (usize, String)> {
        let out = &mut self.out;
        // `E'…'`: the word `E` right before the quote makes an escape string.
        let escape = matches!(out.last(), Some(t) if t.end == start && t.is("E"));
        let unicode = touching_u_amp(out, start);
        if escape || unicode {
            let n = if escape { 1 } else { 2 };
            out.truncate(out.len() - n);
        }
        self.pos = string_end(self.bytes, start + 1, escape, &mut self.line)
            .ok_or_else(|| unterminated(at, "string constant"))?;
        self.push(Tok::Str, at, start);
        Ok(())
    }

    /// A `"quoted identifier"` (a `U&` touching it makes it one never trusted).
    fn quoted_identifier(&mut self, start: usize, at: usize) -> Result<(), (usize, String)> {
        let bytes = self.bytes;
        let unicode = touching_u_amp(&self.out, start);
        if unicode {
            self.out.truncate(self.out.len() - 2);
        }
        let mut value = Vec::new();
        self.pos += 1;
        loop {
            match (bytes.get(self.pos), bytes.get(self.pos + 1)) {
                (None, _) => return Err(unterminated(at, "quoted identifier")),
                (Some(b'"'), Some(b'"')) => {
                    value.push(b'"');
                    self.pos += 2;
                }
                (Some(b'"'), _) => {
                    self.pos += 1;
                    break;
                }
                (Some(&x), _) => {
                    self.line += usize::from(x == b'\n');
                    value.push(x);
                    self.pos += 1;
                }
            }
        }
        let tok = if unicode {
            Tok::UnicodeQuoted
        } else {
            Tok::Quoted(String::from_utf8_lossy(&value).into_owned())
        };
        self.push(tok, at, start);
        Ok(())
    }

    /// A `$tag$…$tag$` string, or else a parameter (`$1`) or a stray `$`.
    fn dollar(&mut self, start: usize, at: usize) -> Result<(), (usize, String)> {
        let bytes = self.bytes;
        let mut tag_end = start + 1;
        while tag_end < bytes.len() && is_tag_byte(bytes[tag_end], tag_end == start + 1) {
            tag_end += 1;
        }
        if bytes.get(tag_end) == Some(&b'$') {
            let delim = &bytes[start..=tag_end];
            let body = tag_end + 1;
            let close = bytes[body..]
                .windows(delim.len())
                .position(|w| w == delim)
                .ok_or_else(|| unterminated(at, "dollar-quoted string"))?;
            self.line += bytes[body..body + close]
                .iter()
                .filter(|&&x| x == b'\n')
                .count();
            self.pos = body + close + delim.len();
            self.push(Tok::Str, at, start);
        } else {
            // `$1`, or a stray `$`: whatever word bytes follow belong to it.
            self.pos = tag_end;
            self.skip_word_bytes();
            self.push(Tok::Param, at, start);
        }
        Ok(())
    }
}

/// `U&` written right before offset `i` (a Unicode-escape string or identifier).
fn touching_u_amp(out: &[Token], i: usize) -> bool {
    match out {
        [.., u, amp] => amp.punct(b'&') && amp.end == i && u.is("U") && u.end == amp.start,
        _ => false,
    }
}

/// What the full check is, said in every refusal the token classifier cannot settle.
const FULL_CHECK: &str = "this airlock is the default build, whose SQL check is the token classifier: it refuses what it cannot prove; PostgreSQL's own parser makes the full check in the pg-parser build (cargo build --release --features pg-parser, or the Debian package)";

/// Functions a read-only gate or probe must not call (the parser build refuses the
/// same names as function calls; here any identifier with the name is refused).
fn changes_state(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "set_config"
            | "nextval"
            | "setval"
            | "pg_advisory_lock"
            | "dblink_exec"
            | "lo_import"
            | "lo_export"
    )
}

/// A word as an identifier or keyword: PostgreSQL's scanner ends a number where the
/// letters start, so `1nextval` is judged as `NEXTVAL`.
fn bare(word: &str) -> &str {
    word.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
}

/// The first few words of a statement, to name it.
fn head(toks: &[Token]) -> String {
    let words: Vec<&str> = toks.iter().map_while(Token::word).take(3).collect();
    if words.is_empty() {
        "a statement that does not begin with a keyword".into()
    } else {
        format!("`{}`", words.join(" "))
    }
}

/// One gate or probe (psql meta-commands already refused): `(line, message)` problems.
pub(super) fn query_problems(sql: &str, role: SqlRole) -> Vec<(usize, String)> {
    if sql.contains('\0') {
        return vec![(1, "contains a NUL byte".into())];
    }
    let toks = match tokenize(sql, 1) {
        Ok(t) => t,
        Err(p) => return vec![p],
    };
    let stmts: Vec<&[Token]> = toks
        .split(|t| t.punct(b';'))
        .filter(|s| !s.is_empty())
        .collect();
    let what = if role == SqlRole::Gate {
        "gate"
    } else {
        "probe"
    };
    let Some(stmt) = stmts.first() else {
        return vec![(1, "contains no statement".into())];
    };
    if stmts.len() != 1 {
        return vec![(
            stmts[1][0].line,
            format!(
                "a {what} must be exactly one statement, found {}",
                stmts.len()
            ),
        )];
    }
    let line = stmt[0].line;
    let mut problems = Vec::new();
    if !(stmt[0].is("SELECT") || stmt[0].is("VALUES") || stmt[0].is("WITH")) {
        problems.push((
            line,
            format!(
                "must be a read-only SELECT, VALUES or WITH query, found {}",
                head(stmt)
            ),
        ));
    }
    let mut depth = 0i64;
    for t in stmt.iter() {
        let found = match &t.tok {
            Tok::Word(w) => match bare(w) {
                k @ ("INSERT" | "UPDATE" | "DELETE" | "MERGE") => {
                    Some(format!("is not read-only: contains a data-modifying {k}"))
                }
                "INTO" => Some("is not read-only: INTO (SELECT INTO creates a table)".into()),
                "SHARE" => Some("is not read-only: row locks (FOR SHARE) are not read-only".into()),
                name if changes_state(name) => Some(format!(
                    "is not read-only: names {}(), which changes state",
                    name.to_ascii_lowercase()
                )),
                _ => None,
            },
            Tok::Quoted(name) if changes_state(name) => Some(format!(
                "is not read-only: names {}(), which changes state",
                name.to_ascii_lowercase()
            )),
            Tok::UnicodeQuoted => Some(format!(
                "cannot prove it read-only: a U&\"…\" identifier can spell any name; {FULL_CHECK}"
            )),
            Tok::Punct(b'\\') => Some("a backslash outside quotes is not SQL".into()),
            Tok::Punct(b'(' | b'[') => {
                depth += 1;
                None
            }
            Tok::Punct(b')' | b']') => {
                depth -= 1;
                (depth < 0).then(|| "has a `)` that closes nothing".into())
            }
            _ => None,
        };
        if let Some(message) = found {
            problems.push((t.line, message));
        }
    }
    if depth > 0 {
        problems.push((line, "has a `(` that is never closed".into()));
    }
    problems
}

/// One captured tier-file statement that does not begin with DML, starting on `line`
/// (it may hold several statements when a BEGIN … END kept the lexer from splitting):
/// `(line, message)` problems.
pub(super) fn script_problems(sql: &str, line: usize) -> Vec<(usize, String)> {
    let toks = match tokenize(sql, line) {
        Ok(t) => t,
        Err(p) => return vec![p],
    };
    let stmts = match split(&toks) {
        Ok(s) => s,
        Err(p) => return vec![p],
    };
    stmts
        .iter()
        .filter_map(|s| statement_problem(sql, s).map(|m| (s[0].line, m)))
        .collect()
}

/// Statements at top-level `;`, keeping a `CREATE FUNCTION|PROCEDURE … BEGIN ATOMIC …
/// END` body whole. Where PostgreSQL's grammar would end that body is provable only
/// for plain bodies (see [`atomic_body_end`]); others are refused.
pub(super) fn split(toks: &[Token]) -> Result<Vec<&[Token]>, (usize, String)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut depth = 0i64;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.punct(b';') && depth == 0 {
            if i > start {
                out.push(&toks[start..i]);
            }
            start = i + 1;
            depth = 0;
            i += 1;
            continue;
        }
        if t.punct(b'(') || t.punct(b'[') {
            depth += 1;
        } else if t.punct(b')') || t.punct(b']') {
            depth = (depth - 1).max(0);
        }
        if depth == 0
            && t.is("BEGIN")
            && toks.get(i + 1).is_some_and(|n| n.is("ATOMIC"))
            && is_routine(&toks[start..i])
        {
            i = atomic_body_end(toks, i + 2)? + 1;
            continue;
        }
        i += 1;
    }
    if start < toks.len() {
        out.push(&toks[start..]);
    }
    Ok(out)
}

/// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
fn is_routine(toks: &[Token]) -> bool {
    let words: Vec<&str> = toks.iter().take(4).map_while(Token::word).collect();
    matches!(
        words.as_slice(),
        ["CREATE", "FUNCTION" | "PROCEDURE", ..]
            | ["CREATE", "OR", "REPLACE", "FUNCTION" | "PROCEDURE", ..]
    )
}

/// The index of the END that closes a `BEGIN ATOMIC` body whose first token is at
/// `from`. PostgreSQL's grammar closes it at the first END that follows a `;` (or
/// ATOMIC itself); a CASE … END inside a statement cannot hold a `;`. Anything that
/// makes the place unclear (a `;` inside parentheses or CASE, an END that is not one
/// of those two, a nested BEGIN or ATOMIC) is refused.
fn atomic_body_end(toks: &[Token], from: usize) -> Result<usize, (usize, String)> {
    let unclear = |t: &Token, why: &str| {
        Err((
            t.line,
            format!("cannot tell where this BEGIN ATOMIC body ends ({why}); {FULL_CHECK}"),
        ))
    };
    let mut case_depth = 0u32;
    let mut paren = 0i64;
    let mut after_separator = true;
    for (j, t) in toks.iter().enumerate().skip(from) {
        match &t.tok {
            Tok::Word(w) if w == "CASE" => case_depth += 1,
            Tok::Word(w) if w == "END" => {
                if case_depth > 0 {
                    case_depth -= 1;
                } else if paren == 0 && after_separator {
                    return Ok(j);
                } else {
                    return unclear(t, "an END that closes neither a CASE nor the body");
                }
            }
            Tok::Word(w) if w == "BEGIN" || w == "ATOMIC" => {
                return unclear(t, "a nested BEGIN or ATOMIC")
            }
            Tok::Punct(b'(' | b'[') => paren += 1,
            Tok::Punct(b')' | b']') => {
                paren -= 1;
                if paren < 0 {
                    return unclear(t, "a `)` that closes nothing");
                }
            }
            Tok::Punct(b';') => {
                if case_depth > 0 || paren > 0 {
                    return unclear(t, "a `;` inside parentheses or a CASE");
                }
                after_separator = true;
                continue;
            }
            _ => {}
        }
        after_separator = false;
    }
    let last = toks.last().unwrap_or(&toks[from - 1]);
    unclear(last, "no END closes it")
}

/// First words of statements that are data manipulation whatever follows (the lexer's
/// own list): they can neither end the transaction nor refuse to run inside one.
const DML: [&str; 8] = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE", "WITH",
];

pub(super) const TRANSACTION_CONTROL: &str = "transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/PREPARE TRANSACTION) is airlock's job: the whole apply is one transaction";

pub(super) const SET_TRANSACTION: &str = "SET TRANSACTION (isolation level, read only, deferrable) is airlock's job: the apply transaction has already run queries, after which the server refuses an isolation level, and a read-only switch would fail the rest of the apply";

/// Settings that are SET TRANSACTION by another name.
pub(super) const TRANSACTION_SETTINGS: [&str; 3] = [
    "transaction_isolation",
    "transaction_read_only",
    "transaction_deferrable",
];

pub(super) const DO_TRANSACTION: &str = "this DO block commits or rolls back: inside airlock's transaction the server fails it (invalid transaction termination). Run batched migrations as separate releases, or drop the COMMIT/ROLLBACK";

pub(super) const CREATE_SUBSCRIPTION: &str = "CREATE SUBSCRIPTION that creates a replication slot cannot run inside a transaction block; add WITH (connect = false) (or create_slot = false) and create the slot separately";

pub(super) const ALTER_SUBSCRIPTION_REFRESH: &str = "ALTER SUBSCRIPTION … REFRESH PUBLICATION (and SET/ADD/DROP PUBLICATION, which refresh unless WITH (refresh = false)) cannot run inside a transaction block";

/// A procedural body (of a `DO` block) that commits or rolls back: the words COMMIT
/// or ROLLBACK outside its strings and comments. A body that does not tokenize is
/// judged by its raw text.
pub(super) fn body_ends_transaction(body: &str) -> bool {
    match tokenize(body, 1) {
        Ok(toks) => toks.iter().any(|t| t.is("COMMIT") || t.is("ROLLBACK")),
        Err(_) => {
            let lower = body.to_ascii_lowercase();
            lower.contains("commit") || lower.contains("rollback")
        }
    }
}

/// The body of a `DO` statement's string token, when it can be read exactly (a
/// dollar-quoted string); `None` for other string forms.
fn dollar_body<'a>(sql: &'a str, t: &Token) -> Option<&'a str> {
    let text = &sql[t.start..t.end];
    if !text.starts_with('$') {
        return None;
    }
    let delim_len = text[1..].find('$')? + 2;
    text.get(delim_len..text.len().checked_sub(delim_len)?)
}

/// Objects `CREATE`, `ALTER` and `DROP` may name inside a transaction block (after
/// CREATE's modifiers): everything but databases, tablespaces, subscriptions and
/// `ALTER SYSTEM`, which are refused by name.
const OBJECTS: [&str; 35] = [
    "ACCESS",
    "AGGREGATE",
    "CAST",
    "COLLATION",
    "CONVERSION",
    "DEFAULT",
    "DOMAIN",
    "EVENT",
    "EXTENSION",
    "FOREIGN",
    "FUNCTION",
    "GROUP",
    "INDEX",
    "LANGUAGE",
    "LARGE",
    "MATERIALIZED",
    "OPERATOR",
    "OWNED",
    "POLICY",
    "PROCEDURE",
    "PUBLICATION",
    "ROLE",
    "ROUTINE",
    "RULE",
    "SCHEMA",
    "SEQUENCE",
    "SERVER",
    "STATISTICS",
    "TABLE",
    "TEXT",
    "TRANSFORM",
    "TRIGGER",
    "TYPE",
    "USER",
    "VIEW",
];

/// Words between CREATE and the kind of object.
pub(super) const CREATE_MODIFIERS: [&str; 13] = [
    "OR",
    "REPLACE",
    "GLOBAL",
    "LOCAL",
    "TEMP",
    "TEMPORARY",
    "UNLOGGED",
    "UNIQUE",
    "TRUSTED",
    "PROCEDURAL",
    "DEFAULT",
    "CONSTRAINT",
    "RECURSIVE",
];

/// Statements that need no more than their first word to be transaction-safe.
const SAFE_FIRST_WORDS: [&str; 12] = [
    "COMMENT", "GRANT", "REVOKE", "DO", "TRUNCATE", "LOCK", "SET", "RESET", "CALL", "REFRESH",
    "SECURITY", "REASSIGN",
];

/// Why one statement cannot run inside the apply transaction, or cannot be proven to.
fn statement_problem(sql: &str, toks: &[Token]) -> Option<String> {
    let Some(first) = toks[0].word() else {
        return cannot_prove(toks);
    };
    if DML.contains(&first) {
        return None;
    }
    if toks.iter().any(|t| t.is("CONCURRENTLY")) {
        return Some(format!(
            "{} … CONCURRENTLY cannot run inside a transaction block",
            head(toks).trim_matches('`')
        ));
    }
    let second = toks.get(1).and_then(Token::word);
    let fixed = |m: &str| Some(m.to_string());
    match first {
        "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" => {
            fixed(TRANSACTION_CONTROL)
        }
        "PREPARE" if second == Some("TRANSACTION") => fixed(TRANSACTION_CONTROL),
        "VACUUM" => fixed("VACUUM cannot run inside a transaction block (ANALYZE can)"),
        "ANALYZE" | "ANALYSE" => None,
        "REINDEX" if matches!(second, Some("SCHEMA" | "DATABASE" | "SYSTEM")) => {
            fixed("REINDEX SCHEMA/DATABASE/SYSTEM cannot run inside a transaction block")
        }
        "SET" | "RESET" => setting_problem(toks, first, second),
        "DO" => do_problem(sql, toks),
        "CHECKPOINT" => fixed("CHECKPOINT does not belong in a release"),
        "CREATE" | "DROP" => create_or_drop_problem(toks, first),
        "ALTER" => match second {
            Some("SYSTEM") => fixed("ALTER SYSTEM cannot run inside a transaction block"),
            Some("SUBSCRIPTION") => alter_subscription_problem(toks),
            Some(o) if OBJECTS.contains(&o) => None,
            _ => cannot_prove(toks),
        },
        // Which COPY forms run is the lexer's rule (`copy.rs`): only COPY … FROM STDIN
        // reaches a classifier.
        "COPY" => None,
        w if SAFE_FIRST_WORDS.contains(&w) => None,
        _ => cannot_prove(toks),
    }
}

/// The refusal of a statement the token classifier cannot settle.
fn cannot_prove(toks: &[Token]) -> Option<String> {
    Some(format!(
        "cannot prove that {} runs inside a transaction block; {FULL_CHECK}",
        head(toks)
    ))
}

/// `SET`/`RESET` (`first`) of a setting that is SET TRANSACTION by another name.
fn setting_problem(toks: &[Token], first: &str, second: Option<&str>) -> Option<String> {
    let at = 1 + usize::from(matches!(second, Some("LOCAL" | "SESSION")));
    let setting = match toks.get(at).map(|t| &t.tok) {
        Some(Tok::Word(w)) => Some(w.to_ascii_lowercase()),
        Some(Tok::Quoted(q)) => Some(q.clone()),
        Some(Tok::UnicodeQuoted) => return cannot_prove(toks),
        _ => None,
    };
    match setting.as_deref() {
        Some("transaction") if first == "SET" => Some(SET_TRANSACTION.to_string()),
        Some(name) if TRANSACTION_SETTINGS.contains(&name) => Some(SET_TRANSACTION.to_string()),
        _ => None,
    }
}

/// A `DO` block whose body commits or rolls back.
fn do_problem(sql: &str, toks: &[Token]) -> Option<String> {
    // The body: the first string constant (`DO [LANGUAGE l] body [LANGUAGE l]`).
    let body = toks.iter().find(|t| t.tok == Tok::Str)?;
    let commits = match dollar_body(sql, body) {
        Some(text) => body_ends_transaction(text),
        // Quoted bodies may hold escapes and continuations: judged by raw text.
        None => {
            let lower = sql[body.start..body.end].to_ascii_lowercase();
            lower.contains("commit") || lower.contains("rollback")
        }
    };
    commits.then(|| DO_TRANSACTION.to_string())
}

/// `CREATE`/`DROP` (`first`): by the kind of object, after CREATE's modifiers.
fn create_or_drop_problem(toks: &[Token], first: &str) -> Option<String> {
    let fixed = |m: &str| Some(m.to_string());
    let at = if first == "CREATE" {
        1 + toks[1..]
            .iter()
            .take_while(|t| t.word().is_some_and(|w| CREATE_MODIFIERS.contains(&w)))
            .count()
    } else {
        1
    };
    match toks.get(at).and_then(Token::word) {
        Some("DATABASE") => fixed("CREATE/DROP DATABASE cannot run inside a transaction block"),
        Some("TABLESPACE") => {
            fixed("CREATE/DROP TABLESPACE cannot run inside a transaction block")
        }
        Some("SUBSCRIPTION") if first == "CREATE" => {
            // Safe only without a replication slot, which is provable only from
            // `connect = false` (no create_slot) or `create_slot = false`.
            let says = |name: &str| {
                toks.windows(3).any(|w| {
                    w[0].is(name) && w[1].punct(b'=') && (w[2].is("FALSE") || w[2].is("OFF"))
                })
            };
            let mentions_slot = toks.iter().any(|t| t.is("CREATE_SLOT"));
            let no_slot = says("CREATE_SLOT") || (says("CONNECT") && !mentions_slot);
            (!no_slot).then(|| CREATE_SUBSCRIPTION.to_string())
        }
        Some("SUBSCRIPTION") => fixed(
            "DROP SUBSCRIPTION cannot run inside a transaction block when the subscription has a replication slot, which lint cannot see",
        ),
        Some(o) if OBJECTS.contains(&o) => None,
        _ => cannot_prove(toks),
    }
}

/// `ALTER SUBSCRIPTION`: refreshing a publication cannot run inside a transaction block.
fn alter_subscription_problem(toks: &[Token]) -> Option<String> {
    let refresh_false = toks
        .windows(3)
        .any(|w| w[0].is("REFRESH") && w[1].punct(b'=') && (w[2].is("FALSE") || w[2].is("OFF")));
    let action = toks.get(3).and_then(Token::word);
    let publication = matches!(action, Some("SET" | "ADD" | "DROP"))
        && toks.get(4).is_some_and(|t| t.is("PUBLICATION"));
    if action == Some("REFRESH") || (publication && !refresh_false) {
        Some(ALTER_SUBSCRIPTION_REFRESH.to_string())
    } else {
        cannot_prove(toks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script_ok(sql: &str) -> bool {
        let mut c =
            super::super::ScriptChecker::with_classifier("t.sql", super::super::Classifier::Tokens);
        c.feed(sql.as_bytes());
        let p = c.finish();
        p.is_empty()
    }

    fn query_ok(sql: &str, role: SqlRole) -> bool {
        super::super::check_query_with("q.sql", sql, role, super::super::Classifier::Tokens)
            .is_empty()
    }

    #[test]
    fn the_reference_bundle_passes_the_token_classifier() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bundle/one-roof/sql");
        let mut n = 0;
        for e in walkdir::WalkDir::new(&root) {
            let e = e.unwrap();
            if !e.file_type().is_file() {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap();
            let rel = e
                .path()
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let ok = if rel.starts_with("gate/") {
                query_ok(&text, SqlRole::Gate)
            } else if rel.starts_with("probe/") {
                query_ok(&text, SqlRole::Probe)
            } else {
                script_ok(&text)
            };
            assert!(ok, "{rel} refused by the token classifier");
            n += 1;
        }
        assert!(n >= 13, "only {n} files found under {}", root.display());
    }

    /// What a release typically holds, pg_dump's header included.
    pub(super) const TYPICAL_TIER: &str = r#"
SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
CREATE SCHEMA IF NOT EXISTS app;
CREATE TABLE app.account (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, "begin" date, status text DEFAULT 'new; COMMIT');
CREATE UNLOGGED TABLE app.scratch (k text);
CREATE TEMP TABLE t AS SELECT 1 AS a;
CREATE UNIQUE INDEX account_name ON app.account (lower(name));
CREATE INDEX ON app.account USING btree (status) WHERE status <> 'gone';
ALTER TABLE app.account ADD COLUMN note text, ALTER COLUMN name SET DEFAULT '';
ALTER TABLE ONLY app.account ADD CONSTRAINT name_len CHECK (length(name) < 200);
CREATE SEQUENCE app.seq;
ALTER SEQUENCE app.seq OWNED BY app.account.id;
CREATE TYPE app.mood AS ENUM ('sad', 'ok');
ALTER TYPE app.mood ADD VALUE 'happy';
CREATE DOMAIN app.pos AS int CHECK (VALUE > 0);
CREATE OR REPLACE VIEW app.v AS SELECT id, CASE WHEN status = 'x' THEN 1 ELSE 0 END AS flag FROM app.account;
CREATE MATERIALIZED VIEW app.mv AS SELECT count(*) FROM app.account WITH NO DATA;
REFRESH MATERIALIZED VIEW app.mv;
CREATE OR REPLACE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.note := 'touched; COMMIT';
  RETURN NEW;
END
$$;
CREATE TRIGGER touch BEFORE UPDATE ON app.account FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE FUNCTION app.two() RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT 1 + 1;
  SELECT CASE WHEN true THEN 2 END;
END;
CREATE PROCEDURE app.p() LANGUAGE sql BEGIN ATOMIC INSERT INTO app.scratch VALUES ('x'); END;
DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM app.account) THEN RAISE NOTICE 'empty'; END IF; END $do$;
COMMENT ON TABLE app.account IS 'who; VACUUM';
GRANT SELECT ON app.account TO PUBLIC;
REVOKE ALL ON app.scratch FROM PUBLIC;
CREATE POLICY p ON app.account USING (true);
ALTER TABLE app.account ENABLE ROW LEVEL SECURITY;
CREATE EXTENSION IF NOT EXISTS plpgsql;
LOCK TABLE app.account IN SHARE MODE;
TRUNCATE app.scratch;
CALL app.p();
INSERT INTO app.account (name) VALUES ('a'), (E'b\'; COMMIT; --');
UPDATE app.account SET note = $q$ $$ ; ROLLBACK $q$;
DELETE FROM app.scratch;
DROP VIEW IF EXISTS app.old_view;
DROP INDEX IF EXISTS app.old_index;
DROP TABLE IF EXISTS app.old CASCADE;
DROP FUNCTION IF EXISTS app.gone(int);
RESET check_function_bodies;
"#;

    #[test]
    fn typical_ddl_tiers_pass_the_token_classifier() {
        let mut c =
            super::super::ScriptChecker::with_classifier("t.sql", super::super::Classifier::Tokens);
        c.feed(TYPICAL_TIER.as_bytes());
        assert_eq!(c.finish(), vec![]);
    }

    #[test]
    fn what_it_cannot_prove_it_refuses_naming_the_full_check() {
        for sql in [
            "CLUSTER t USING i;",
            "REINDEX TABLE t;",
            "EXPLAIN ANALYZE SELECT 1;",
            "(SELECT 1);",
            "ALTER DATABASE d SET x = 1;",
            "DISCARD PLANS;",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; END;",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (1; END;",
        ] {
            let mut c = super::super::ScriptChecker::with_classifier(
                "t.sql",
                super::super::Classifier::Tokens,
            );
            c.feed(sql.as_bytes());
            let p = c.finish();
            assert!(
                p.iter()
                    .any(|p| p.line == 1 && p.message.contains("pg-parser")),
                "{sql}: {p:?}"
            );
        }
        assert!(!query_ok("SELECT U&\"nextval\"('s')", SqlRole::Gate));
        assert!(!query_ok("TABLE t", SqlRole::Gate));
    }

    #[test]
    fn a_begin_column_cannot_hide_a_commit() {
        // The lexer keeps `;` inside CREATE … BEGIN (psql's heuristic); the classifier
        // splits again and finds the COMMIT.
        let sql = "CREATE TABLE t (begin int);\nCOMMIT;\n";
        let mut c =
            super::super::ScriptChecker::with_classifier("t.sql", super::super::Classifier::Tokens);
        c.feed(sql.as_bytes());
        let p = c.finish();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, 2);
        // Inside a BEGIN ATOMIC body, `SELECT begin` would end the body for the parser
        // before the count says so: refused rather than guessed.
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT begin FROM t; END; COMMIT; END;";
        assert!(!script_ok(sql));
    }

    #[test]
    fn gates_that_could_write_lock_or_set_are_refused() {
        for sql in [
            "SELECT \"nextval\"('s') > 0",
            "SELECT pg_catalog.SETVAL('s', 1)",
            "SELECT 1nextval('s')",
            "SELECT 1 FROM t FOR KEY SHARE",
            "SELECT 1 FROM t FOR NO KEY UPDATE",
            "WITH x AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE) SELECT 1",
            "SELECT * INTO t2 FROM t",
            "SELECT 1 \\gexec",
            "SELECT (1",
            "SELECT 1)",
            "SELECT 'a' \0",
        ] {
            assert!(!query_ok(sql, SqlRole::Gate), "{sql} accepted");
        }
        for sql in [
            "SELECT 'nextval(''s'')' AS ready",
            "SELECT E'\\' ; COMMIT' AS ready",
            "SELECT $$ ; INSERT $$ AS ready",
            "SELECT 1 AS ready FROM t FOR READ ONLY",
            "VALUES (true)",
            "SELECT \"Update\" FROM t",
        ] {
            assert!(query_ok(sql, SqlRole::Gate), "{sql} refused");
        }
    }
}

#[cfg(all(test, feature = "pg-parser"))]
mod differential {
    //! The token classifier against PostgreSQL's parser on generated files full of
    //! hazards: whatever the token classifier accepts, the parser accepts too, or
    //! refuses only because it does not parse (the server then refuses the whole file
    //! or gate before running any of it).
    use super::super::{check_query_with, Classifier, ScriptChecker, SqlProblem, SqlRole};

    /// xorshift64*: reproducible without a dependency; the seed is printed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const LITERALS: &[&str] = &[
        "'line
\\x'",
        "'a; COMMIT; b'",
        "'it''s; VACUUM'",
        "E'\\'; COMMIT; --'",
        "E'x'\n'\\'; COMMIT; --'",
        "$$; COMMIT;$$",
        "$q$ $$; BEGIN; $q$",
        "\"we;ird\"\"; COMMIT\"",
        "\"nextval\"",
        "U&\"set_config\"",
        "nextval",
        "begin",
        "\"begin\"",
        "1",
        "$1",
        "x$y$z",
        "concurrently",
    ];

    const GAPS: &[&str] = &[
        " ",
        "\n",
        " -- ; COMMIT\n",
        "/* ; COMMIT; /* nested */ */",
        "\r\n",
        "",
        "\t",
        " /*x*/ ",
    ];

    const SCRIPT_STATEMENTS: &[&str] = &[
        "ANALYZE",
        "ANALYZE t (a)",
        "REINDEX SCHEMA s",
        "REINDEX SYSTEM d",
        "ALTER DATABASE d SET TABLESPACE x",
        "ALTER DATABASE d SET work_mem = 1",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET LOCAL TRANSACTION READ ONLY",
        "SET transaction_isolation = 'serializable'",
        "SET SESSION transaction_read_only = on",
        "SET \"transaction_deferrable\" = on",
        "RESET transaction_isolation",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        "SET LOCAL work_mem = {L}",
        "DO $b$ BEGIN COMMIT; END $b$",
        "DO $b$ BEGIN PERFORM 1; ROLLBACK; END $b$",
        "DO LANGUAGE plpgsql $$ BEGIN PERFORM 'commit'; END $$",
        "DO 'BEGIN ROLLBACK; END'",
        "DO E'BEGIN PERFORM {L}; END'",
        "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (connect = false)",
        "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (connect = false, create_slot = true)",
        "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot = false)",
        "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
        "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (connect)",
        "ALTER SUBSCRIPTION s REFRESH PUBLICATION",
        "ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)",
        "ALTER SUBSCRIPTION s DISABLE",
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES ({L}); INSERT INTO b VALUES (1))",
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); COMMIT)",
        "CREATE TABLE t (begin int, x text DEFAULT {L})",
        "CREATE TABLE t (a int); CREATE TABLE u (begin int)",
        "CREATE TABLE t (x int GENERATED ALWAYS AS (1) VIRTUAL)",
        "COPY t FROM '/etc/passwd'",
        "COPY t TO STDOUT",
        "COPY (SELECT {L}) TO PROGRAM 'x'",
        "CREATE TABLE t (a int, b text DEFAULT {L})",
        "CREATE TABLE t ({L} int)",
        "CREATE TABLE t (begin int)",
        "CREATE UNIQUE INDEX i ON t (a)",
        "CREATE INDEX CONCURRENTLY i ON t (a)",
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
        "DROP INDEX CONCURRENTLY i",
        "DROP INDEX i",
        "ALTER TABLE t ADD COLUMN c int DEFAULT {L}",
        "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
        "ALTER SYSTEM SET work_mem = '1MB'",
        "ALTER DATABASE d SET work_mem = '1MB'",
        "DROP TABLE IF EXISTS t",
        "COMMENT ON TABLE t IS {L}",
        "GRANT SELECT ON t TO PUBLIC",
        "DO $b$ BEGIN PERFORM {L}; END $b$",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC {BODY} END",
        "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC {BODY} END",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN RETURN 1; COMMIT; END $f$",
        "CREATE VIEW v AS SELECT {L} AS x",
        "CREATE SCHEMA s",
        "CREATE DATABASE d",
        "DROP DATABASE d",
        "CREATE TABLESPACE x LOCATION '/tmp'",
        "DROP SUBSCRIPTION s",
        "SET search_path = public",
        "SET LOCAL statement_timeout = {L}",
        "RESET ALL",
        "TRUNCATE t",
        "COMMIT",
        "BEGIN",
        "END",
        "ROLLBACK",
        "START TRANSACTION",
        "SAVEPOINT s",
        "PREPARE TRANSACTION 'x'",
        "VACUUM",
        "ANALYZE t",
        "REINDEX DATABASE d",
        "REINDEX TABLE t",
        "CLUSTER",
        "CLUSTER t USING i",
        "DISCARD ALL",
        "CHECKPOINT",
        "COPY t FROM STDIN",
        "INSERT INTO t VALUES ({L})",
        "SELECT {L}",
        "UPDATE t SET a = {L}",
        "CREATE TABLE (",
        "ALTER TABLE",
        "CREATE {L}",
        "{L} COMMIT",
    ];

    const BODY_STATEMENTS: &[&str] = &[
        "SELECT {L};",
        "SELECT CASE WHEN true THEN 1 END;",
        "SELECT begin FROM t;",
        "SELECT 1 AS end;",
        "SELECT 1 AS case;",
        "INSERT INTO t VALUES (1);",
        "SELECT (1;",
        "END;",
    ];

    const QUERIES: &[&str] = &[
        "SELECT 'a
\\b' AS ready",
        "SELECT E'a'
'\\' AS ready",
        "SELECT {L} AS ready",
        "SELECT count(*) >= 1 AS ready, {L} AS reason FROM t",
        "WITH a AS (SELECT {L}) SELECT true FROM a",
        "VALUES (true, {L})",
        "SELECT nextval('s') > 0",
        "SELECT \"nextval\"('s')",
        "SELECT pg_catalog.set_config('a', {L}, true)",
        "SELECT U&\"nextval\"('s')",
        "SELECT * INTO x FROM t",
        "SELECT 1 FROM t FOR UPDATE",
        "SELECT 1 FROM t FOR KEY SHARE",
        "SELECT 1 FROM t FOR READ ONLY",
        "WITH d AS (DELETE FROM t RETURNING 1) SELECT true",
        "WITH d AS (INSERT INTO t VALUES ({L}) RETURNING 1) SELECT true",
        "WITH d AS (UPDATE t SET a = 1 RETURNING 1) SELECT true",
        "TABLE t",
        "(SELECT 1)",
        "SELECT 1; SELECT 2",
        "SET x = {L}",
        "RESET transaction_read_only",
        "COMMIT",
        "EXPLAIN SELECT 1",
        "SELECT lo_import('/etc/passwd')",
        "SELECT dblink_exec('x')",
        "SELECT {L} FROM t WHERE a = ANY(ARRAY[1, 2])",
        "SELECT {L}",
        "INSERT INTO t VALUES ({L})",
        "DELETE FROM t",
        "SELECT (",
        "SELECT 1 FROM",
        "SELECT x$a$ FROM t",
        "SELECT {L} \\g",
        "SELECT 1 AS ready;",
        "select Count(*) > 0 as READY from \"T\"",
    ];

    fn fill(rng: &mut Rng, template: &str) -> String {
        let mut s = template.to_string();
        while let Some(at) = s.find("{L}") {
            let lit = rng.pick(LITERALS);
            s.replace_range(at..at + 3, lit);
        }
        if s.contains("{BODY}") {
            let n = rng.below(4);
            let body: Vec<String> = (0..n)
                .map(|_| {
                    let st = rng.pick(BODY_STATEMENTS);
                    format!("{}{}", fill(rng, st), rng.pick(GAPS))
                })
                .collect();
            s = s.replace("{BODY}", &body.concat());
        }
        s
    }

    fn script(rng: &mut Rng) -> String {
        let n = 1 + rng.below(4);
        (0..n)
            .map(|_| {
                let st = rng.pick(SCRIPT_STATEMENTS);
                format!("{}{}{};", rng.pick(GAPS), fill(rng, st), rng.pick(GAPS))
            })
            .collect()
    }

    fn query(rng: &mut Rng) -> String {
        let q = rng.pick(QUERIES);
        format!("{}{}{}", rng.pick(GAPS), fill(rng, q), rng.pick(GAPS))
    }

    fn script_verdict(sql: &str, how: Classifier) -> Vec<SqlProblem> {
        let mut c = ScriptChecker::with_classifier("d.sql", how);
        c.feed(sql.as_bytes());
        c.finish()
    }

    /// The parser refuses nothing, or only text that does not parse.
    fn parser_accepts_or_cannot_parse(p: &[SqlProblem]) -> bool {
        p.iter().all(|x| x.message.contains("does not parse"))
    }

    #[derive(Default, Debug)]
    struct Tally {
        cases: usize,
        tokens_accept: usize,
        parser_accept: usize,
        both_accept: usize,
        tokens_accept_parser_cannot_parse: usize,
    }

    fn judge(t: &mut Tally, sql: &str, tokens: &[SqlProblem], parser: &[SqlProblem]) {
        t.cases += 1;
        t.tokens_accept += usize::from(tokens.is_empty());
        t.parser_accept += usize::from(parser.is_empty());
        t.both_accept += usize::from(tokens.is_empty() && parser.is_empty());
        if tokens.is_empty() && !parser.is_empty() {
            assert!(
                parser_accepts_or_cannot_parse(parser),
                "the token classifier accepted what the parser refuses:\n{sql:?}\nparser: {parser:?}"
            );
            t.tokens_accept_parser_cannot_parse += 1;
        }
    }

    fn seed() -> u64 {
        std::env::var("AIRLOCK_DIFF_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            })
    }

    #[test]
    fn token_classifier_accepts_a_subset_of_what_the_parser_accepts() {
        let seed = seed();
        eprintln!("differential seed {seed} (AIRLOCK_DIFF_SEED={seed} reproduces it)");
        let mut rng = Rng(seed);
        let mut scripts = Tally::default();
        for _ in 0..20_000 {
            let sql = script(&mut rng);
            let tokens = script_verdict(&sql, Classifier::Tokens);
            let parser = script_verdict(&sql, Classifier::Parser);
            judge(&mut scripts, &sql, &tokens, &parser);
        }
        let mut queries = Tally::default();
        for _ in 0..20_000 {
            let sql = query(&mut rng);
            let role = if rng.below(2) == 0 {
                SqlRole::Gate
            } else {
                SqlRole::Probe
            };
            let tokens = check_query_with("q.sql", &sql, role, Classifier::Tokens);
            let parser = check_query_with("q.sql", &sql, role, Classifier::Parser);
            judge(&mut queries, &sql, &tokens, &parser);
        }
        eprintln!("tier scripts: {scripts:?}\ngates/probes: {queries:?}");
        // Not vacuous: both sides accept a good share, and the token classifier keeps
        // most of what the parser accepts.
        for t in [&scripts, &queries] {
            assert!(t.both_accept * 10 > t.cases, "{t:?}");
            assert!(t.both_accept * 2 > t.parser_accept, "{t:?}");
        }
    }

    #[test]
    fn the_fixed_corpora_agree() {
        let typical = super::tests::TYPICAL_TIER;
        assert_eq!(script_verdict(typical, Classifier::Tokens), vec![]);
        assert_eq!(script_verdict(typical, Classifier::Parser), vec![]);
    }
}
