//! `[target] database`: the databases a bundle may run on. One exact name (every bundle
//! packed before fleets), or a fleet: a list of exact names and glob patterns
//! (`["tenant_*", "billing"]`), signed like the rest of the manifest.
//!
//! The glob syntax, over the whole database name, case-sensitive, by character:
//! `*` any run of characters (none included), `?` exactly one character, `[set]` one
//! character of the set and `[!set]` one character not in it, where a set lists
//! characters and ranges `a-z` (a `]` first in the set and a `-` first or last are
//! themselves). Nothing else is special: there is no escape character; `[*]`, `[?]`
//! and `[[]` match those characters themselves.
//!
//! Invariant: a manifest's JSON *string* is always one exact name, compared byte for
//! byte as before fleets, so every bundle signed before keeps its bytes (its id) and
//! its meaning; only a JSON *array* names a fleet, and only its entries holding `*`,
//! `?` or `[` are patterns. In `bundle.toml` a string holding one of those is a
//! pattern: [`TargetDatabase::from_source`] makes it a one-entry fleet, which is what
//! the manifest records. A fleet that passed [`TargetDatabase::problems`] cannot match
//! every database, nor the server's own (`postgres`, `template0`, `template1`) by a
//! pattern.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The longest database name PostgreSQL keeps (NAMEDATALEN - 1 bytes); a longer name
/// is cut to this, so a target spelled longer can never be the name the guard reads.
pub const MAX_NAME_BYTES: usize = 63;
/// The longest pattern accepted (a set may spell many characters; no real fleet
/// needs more).
pub const MAX_PATTERN_BYTES: usize = 255;
/// The most entries a fleet may list.
pub const MAX_ENTRIES: usize = 10_000;
/// The server's own databases: a pattern must not match them (name them exactly, if
/// one really is a target).
pub const SERVER_DATABASES: [&str; 3] = ["postgres", "template0", "template1"];

/// `[target] database`: one exact name, or a fleet of names and patterns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TargetDatabase {
    /// One database, by its exact name (a JSON string: the only form before fleets).
    Name(String),
    /// A fleet: the databases whose name equals one of the exact names or matches one
    /// of the glob patterns (entries holding `*`, `?` or `[`).
    Fleet(Vec<String>),
}

/// A string is one name, an array of strings a fleet; anything else is refused with
/// what `target.database` takes.
impl<'de> Deserialize<'de> for TargetDatabase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = TargetDatabase;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a database name, or a list of database names and patterns (e.g. [\"tenant_*\"])")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TargetDatabase::Name(v.into()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = vec![];
                while let Some(e) = seq.next_element::<String>()? {
                    if entries.len() > MAX_ENTRIES {
                        return Err(serde::de::Error::custom(format!(
                            "target.database lists more than {MAX_ENTRIES} entries"
                        )));
                    }
                    entries.push(e);
                }
                Ok(TargetDatabase::Fleet(entries))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Whether a fleet entry is a pattern (holds `*`, `?` or `[`).
pub fn is_pattern(entry: &str) -> bool {
    entry.contains(['*', '?', '['])
}

impl Default for TargetDatabase {
    fn default() -> Self {
        TargetDatabase::Name(String::new())
    }
}

impl From<&str> for TargetDatabase {
    fn from(name: &str) -> Self {
        TargetDatabase::Name(name.into())
    }
}

impl TargetDatabase {
    /// `bundle.toml`'s meaning: a string holding `*`, `?` or `[` is a pattern, recorded
    /// as a one-entry fleet (a manifest's string is always an exact name).
    pub fn from_source(self) -> TargetDatabase {
        match self {
            TargetDatabase::Name(n) if is_pattern(&n) => TargetDatabase::Fleet(vec![n]),
            other => other,
        }
    }

    /// A fleet (a list, of names or patterns), not one exact name.
    pub fn is_fleet(&self) -> bool {
        matches!(self, TargetDatabase::Fleet(_))
    }

    /// This target when it is a fleet (what outputs name as `target_database`), `None`
    /// for one database (whose outputs stay what they were before fleets).
    pub fn fleet(&self) -> Option<TargetDatabase> {
        self.is_fleet().then(|| self.clone())
    }

    /// The names and patterns, as written.
    pub fn entries(&self) -> Vec<&str> {
        match self {
            TargetDatabase::Name(n) => vec![n.as_str()],
            TargetDatabase::Fleet(v) => v.iter().map(String::as_str).collect(),
        }
    }

    /// The database to connect to when the connection names none: the one exact name
    /// (also a fleet of exactly one exact name); `None` when it takes a pattern or a
    /// choice.
    pub fn default_name(&self) -> Option<&str> {
        match self {
            TargetDatabase::Name(n) => Some(n),
            TargetDatabase::Fleet(v) => match v.as_slice() {
                [one] if !is_pattern(one) => Some(one),
                _ => None,
            },
        }
    }

    /// The entry `database` equals or matches (the first, in order), or `None`: the
    /// name guard refuses it.
    pub fn matching(&self, database: &str) -> Option<&str> {
        match self {
            TargetDatabase::Name(n) => (n == database).then_some(n.as_str()),
            TargetDatabase::Fleet(v) => v
                .iter()
                .find(|e| match Glob::parse(e) {
                    Ok(g) => g.matches(database),
                    Err(_) => false,
                })
                .map(String::as_str),
        }
    }

    /// What a message says the bundle is for: `"app"` (as before fleets), or
    /// `the databases matching "tenant_*" or "billing"`.
    pub fn describe(&self) -> String {
        match self {
            TargetDatabase::Name(n) => format!("{n:?}"),
            TargetDatabase::Fleet(v) => format!(
                "the databases {} {}",
                if v.iter().any(|e| is_pattern(e)) {
                    "matching"
                } else {
                    "named"
                },
                v.iter()
                    .map(|e| format!("{e:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        }
    }

    /// Why this target is refused (empty: it is fine). An exact name (the manifest
    /// string of every bundle before fleets) needs only to be non-empty, as it always
    /// did; a fleet's entries are judged one by one, and the fleet as a whole.
    pub fn problems(&self) -> Vec<String> {
        let v = match self {
            TargetDatabase::Name(n) if n.is_empty() => {
                return vec!["target.database must name the database the bundle is for".into()]
            }
            TargetDatabase::Name(_) => return vec![],
            TargetDatabase::Fleet(v) => v,
        };
        let mut problems = vec![];
        if v.is_empty() {
            problems.push("target.database is an empty list: name the databases the bundle is for (exact names, or patterns such as \"tenant_*\")".into());
        }
        if v.len() > MAX_ENTRIES {
            problems.push(format!(
                "target.database lists {} entries, more than {MAX_ENTRIES}: name the fleet by a pattern (e.g. \"tenant_*\")",
                v.len()
            ));
            return problems;
        }
        let mut seen = std::collections::BTreeSet::new();
        for entry in v {
            if let Some(why) = entry_problem(entry) {
                problems.push(why);
            } else if !seen.insert(entry.as_str()) {
                problems.push(format!("target.database lists {entry:?} twice"));
            }
        }
        problems
    }
}

impl fmt::Display for TargetDatabase {
    /// The names and patterns, comma-separated (`app`, `tenant_*, billing`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.entries().join(", "))
    }
}

/// Why one fleet entry is refused, if it is.
fn entry_problem(entry: &str) -> Option<String> {
    let shown = |e: &str| {
        let cut: String = e.chars().take(80).collect();
        if cut.len() < e.len() {
            format!("{cut:?}…")
        } else {
            format!("{e:?}")
        }
    };
    if entry.is_empty() {
        return Some("target.database holds an empty name; every entry names a database or a pattern of names".into());
    }
    if entry.chars().any(char::is_control) {
        return Some(format!(
            "target.database entry {} holds a control character; database names in a fleet are printable",
            shown(entry)
        ));
    }
    if !is_pattern(entry) {
        return (entry.len() > MAX_NAME_BYTES).then(|| format!(
            "target.database entry {} is {} bytes; PostgreSQL cuts database names to {MAX_NAME_BYTES} bytes, so no database is named that",
            shown(entry),
            entry.len()
        ));
    }
    if entry.len() > MAX_PATTERN_BYTES {
        return Some(format!(
            "target.database pattern {} is {} bytes, more than {MAX_PATTERN_BYTES}; write a shorter pattern",
            shown(entry),
            entry.len()
        ));
    }
    let glob = match Glob::parse(entry) {
        Ok(g) => g,
        Err(why) => {
            return Some(format!(
                "target.database pattern {}: {why} (patterns: * any characters, ? one, [abc] [a-z] [!abc] one of a set; nothing else is special)",
                shown(entry)
            ))
        }
    };
    if !glob.has_literal() {
        return Some(format!(
            "target.database pattern {} has no character of its own (only *, ? and sets), so it would match nearly every database on a server, the server's own included; name the fleet by a part its names share, e.g. \"tenant_*\"",
            shown(entry)
        ));
    }
    if let Some(own) = SERVER_DATABASES.iter().find(|d| glob.matches(d)) {
        return Some(format!(
            "target.database pattern {} matches the server's own database {own:?}; make it narrower (a pattern never names {}), or list {own:?} by its exact name if it really is a target",
            shown(entry),
            SERVER_DATABASES.join(", ")
        ));
    }
    None
}

/// One element of a parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// This character.
    Char(char),
    /// `?`: any one character.
    One,
    /// `*`: any run of characters.
    Star,
    /// `[…]` / `[!…]`: one character in (or, negated, not in) these ranges.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A parsed glob pattern (see the module documentation for the syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pieces: Vec<Piece>,
}

impl Glob {
    /// Parse `pattern`; an unclosed set, an empty one or a range running backwards is
    /// refused, with why.
    pub fn parse(pattern: &str) -> Result<Glob, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pieces = vec![];
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if pieces.last() != Some(&Piece::Star) {
                        pieces.push(Piece::Star);
                    }
                    i += 1;
                }
                '?' => {
                    pieces.push(Piece::One);
                    i += 1;
                }
                '[' => {
                    let (piece, next) = parse_set(&chars, i)?;
                    pieces.push(piece);
                    i = next;
                }
                c => {
                    pieces.push(Piece::Char(c));
                    i += 1;
                }
            }
        }
        Ok(Glob { pieces })
    }

    /// Whether some character of the pattern matches only itself (a plain character,
    /// or a set of exactly one character such as `[*]`).
    fn has_literal(&self) -> bool {
        self.pieces.iter().any(|p| match p {
            Piece::Char(_) => true,
            Piece::Set { negated, ranges } => {
                !negated && ranges.len() == 1 && ranges[0].0 == ranges[0].1
            }
            _ => false,
        })
    }

    /// Whether the whole of `name` matches. Linear in the pattern times the name (the
    /// classic backtrack to the last `*`), whatever the input.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let (mut p, mut n) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match self.pieces.get(p) {
                Some(Piece::Star) => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                Some(piece) if one_matches(piece, name[n]) => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            }
        }
        self.pieces[p..].iter().all(|piece| *piece == Piece::Star)
    }
}

/// Whether one non-star piece matches the character `c`.
fn one_matches(piece: &Piece, c: char) -> bool {
    match piece {
        Piece::Char(x) => *x == c,
        Piece::One => true,
        Piece::Set { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
        Piece::Star => false,
    }
}

/// The set opening at `chars[open]` (`[`): the piece and the index after its `]`.
fn parse_set(chars: &[char], open: usize) -> Result<(Piece, usize), String> {
    let mut i = open + 1;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let first = i;
    let mut ranges = vec![];
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(format!(
                "the set opened at character {} is never closed by ]",
                open + 1
            ));
        };
        if c == ']' && i > first {
            return Ok((Piece::Set { negated, ranges }, i + 1));
        }
        // `a-z`: a range, unless the `-` is last in the set.
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            let end = chars[i + 2];
            if end < c {
                return Err(format!(
                    "the range {c}-{end} runs backwards (write {end}-{c})"
                ));
            }
            ranges.push((c, end));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> Glob {
        Glob::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn patterns_match_the_whole_name() {
        let cases: &[(&str, &str, bool)] = &[
            ("tenant_*", "tenant_1", true),
            ("tenant_*", "tenant_", true),
            ("tenant_*", "xtenant_1", false),
            ("tenant_*", "Tenant_1", false),
            ("*_eu", "shop_eu", true),
            ("*_eu", "shop_eu2", false),
            ("t?", "t1", true),
            ("t?", "t12", false),
            ("t[0-9]", "t7", true),
            ("t[0-9]", "ta", false),
            ("t[!0-9]", "ta", true),
            ("t[!0-9]", "t7", false),
            ("t[]]", "t]", true),
            ("t[-a]", "t-", true),
            ("t[a-]", "t-", true),
            ("t[*]", "t*", true),
            ("t[*]", "tx", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("a**b", "ab", true),
            ("é*", "école", true),
            ("t?", "té", true),
        ];
        for (p, name, want) in cases {
            assert_eq!(glob(p).matches(name), *want, "{p} ~ {name}");
        }
    }

    #[test]
    fn matching_is_fast_on_hostile_input() {
        let p = format!("{}b", "a*".repeat(100));
        let name = "a".repeat(10_000);
        assert!(!glob(&p).matches(&name));
    }

    #[test]
    fn an_exact_name_is_compared_byte_for_byte_even_with_glob_characters() {
        // A manifest string is one exact name, as it always was.
        let t = TargetDatabase::Name("tenant_*".into());
        assert_eq!(t.matching("tenant_*"), Some("tenant_*"));
        assert_eq!(t.matching("tenant_1"), None);
        assert_eq!(t.default_name(), Some("tenant_*"));
        assert!(t.problems().is_empty());
        // bundle.toml's string with a glob character is a pattern.
        let f = t.from_source();
        assert_eq!(f, TargetDatabase::Fleet(vec!["tenant_*".into()]));
        assert_eq!(f.matching("tenant_1"), Some("tenant_*"));
        assert_eq!(f.default_name(), None);
        assert_eq!(
            TargetDatabase::Name("app".into()).from_source(),
            TargetDatabase::Name("app".into())
        );
    }

    #[test]
    fn a_fleet_matches_by_name_or_pattern() {
        let f = TargetDatabase::Fleet(vec!["billing".into(), "tenant_[ab]".into()]);
        assert_eq!(f.matching("billing"), Some("billing"));
        assert_eq!(f.matching("tenant_b"), Some("tenant_[ab]"));
        assert_eq!(f.matching("tenant_c"), None);
        assert_eq!(f.default_name(), None);
        assert_eq!(
            TargetDatabase::Fleet(vec!["app".into()]).default_name(),
            Some("app")
        );
        assert_eq!(
            f.describe(),
            "the databases matching \"billing\" or \"tenant_[ab]\""
        );
        assert_eq!(TargetDatabase::Name("app".into()).describe(), "\"app\"");
    }

    #[test]
    fn hostile_fleets_are_refused_with_why() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "empty list"),
            (&[""], "empty name"),
            (&["*"], "no character of its own"),
            (&["**"], "no character of its own"),
            (&["?*"], "no character of its own"),
            (&["[a-z]*"], "no character of its own"),
            (&["*s*"], "the server's own database \"postgres\""),
            (&["template?"], "the server's own database \"template0\""),
            (&["tenant_[0-9"], "never closed"),
            (&["tenant_["], "never closed"),
            (&["tenant_[]"], "never closed"),
            (&["tenant_[9-0]"], "runs backwards"),
            (&["a\nb"], "control character"),
            (&["tenant_1", "tenant_1"], "twice"),
        ];
        for (entries, why) in cases {
            let t = TargetDatabase::Fleet(entries.iter().map(|e| e.to_string()).collect());
            let problems = t.problems().join("\n");
            assert!(problems.contains(why), "{entries:?}: {problems}");
        }
        let long_name = "n".repeat(64);
        let long_pattern = format!("t_{}*", "[ab]".repeat(70));
        for e in [long_name.as_str(), long_pattern.as_str()] {
            let p = TargetDatabase::Fleet(vec![e.into()]).problems().join("\n");
            assert!(p.contains("bytes"), "{p}");
        }
        let many = TargetDatabase::Fleet((0..=MAX_ENTRIES).map(|i| format!("t{i}")).collect());
        assert!(many.problems()[0].contains("more than"));
        for fine in [
            &["tenant_*"][..],
            &["tenant_[0-9][0-9]", "billing", "postgres"],
            &["t[*]"],
            &[&"n".repeat(63)],
        ] {
            let t = TargetDatabase::Fleet(fine.iter().map(|e| e.to_string()).collect());
            assert!(t.problems().is_empty(), "{fine:?}: {:?}", t.problems());
        }
    }

    #[test]
    fn a_single_name_serializes_as_before_and_a_fleet_as_a_list() {
        let one: TargetDatabase = serde_json::from_str("\"app\"").unwrap();
        assert_eq!(one, TargetDatabase::Name("app".into()));
        assert_eq!(serde_json::to_string(&one).unwrap(), "\"app\"");
        let fleet: TargetDatabase = serde_json::from_str("[\"tenant_*\",\"x\"]").unwrap();
        assert_eq!(
            serde_json::to_string(&fleet).unwrap(),
            "[\"tenant_*\",\"x\"]"
        );
        assert!(serde_json::from_str::<TargetDatabase>("{\"a\":1}").is_err());
        assert!(serde_json::from_str::<TargetDatabase>("7").is_err());
    }
}
