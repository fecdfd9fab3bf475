//! `ALTER TYPE … ADD VALUE` followed, in the same transaction, by a use of the new
//! value: the server refuses that use inside the transaction that added it ("unsafe
//! use of new value", even when the type itself is new), so the tier fails at
//! `rehearse`. Lint cannot prove a use (the text `'label'` may mean another type's
//! value), so it warns where the statement holds the label as a constant of an
//! expression (`DEFAULT 'b'`, `VALUES ('b')`, `'b'::e`): not where the label is
//! another enum's definition (`CREATE TYPE e2 AS ENUM ('a', 'b')`), a value added or
//! renamed, a comment (`COMMENT ON … IS 'b'`), a setting, or a constant cast to
//! another named type (`'b'::e2`). The same transaction is the rest of the file, and the later
//! files of the tiers that run in one transaction with it ([`EnumValueAdded`] carries
//! a file's values to them; `airlock-bundle`'s lint knows which files those are).
//!
//! Invariant: only a warning, never a refusal; memory is the added values of one
//! transaction (at most [`MAX_VALUES`] per file).

use pg_query::NodeEnum;

/// Values remembered per file; a file adding more is not a migration lint can help.
const MAX_VALUES: usize = 256;

/// One value added by `ALTER TYPE … ADD VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumValueAdded {
    /// The value as a constant, `'label'` (quotes doubled).
    quoted: String,
    type_name: String,
    /// The file that adds it, when it is not the file being read.
    file: Option<String>,
    line: usize,
}

impl EnumValueAdded {
    /// The same value, as seen from a later file of the transaction.
    pub fn from_file(mut self, file: &str) -> Self {
        self.file.get_or_insert_with(|| file.to_string());
        self
    }
}

/// One value being watched for.
struct Watched {
    added: EnumValueAdded,
    /// Warned about already (once per value).
    warned: bool,
}

/// The values added so far in one transaction.
#[derive(Default)]
pub(super) struct NewEnumValues {
    watched: Vec<Watched>,
}

/// Cheap test on a statement's text before it is parsed: might it add an enum value?
pub(super) fn may_add_value(text: &[u8]) -> bool {
    let starts_alter = text.len() >= 5 && text[..5].eq_ignore_ascii_case(b"ALTER");
    starts_alter
        && text
            .windows(9)
            .any(|w| w.eq_ignore_ascii_case(b"ADD VALUE"))
}

/// A warning for a use: its line, the message, and whether the value was added by an
/// earlier file (not the one being read).
pub(super) struct Use {
    pub line: usize,
    pub message: String,
    pub earlier: bool,
}

impl NewEnumValues {
    /// Watch for the values earlier files of the same transaction added.
    pub(super) fn after(earlier: Vec<EnumValueAdded>) -> Self {
        NewEnumValues {
            watched: earlier
                .into_iter()
                .map(|added| Watched {
                    added,
                    warned: false,
                })
                .collect(),
        }
    }

    /// The values this file added (for the later files of its transaction).
    pub(super) fn added_here(&self) -> Vec<EnumValueAdded> {
        self.watched
            .iter()
            .filter(|w| w.added.file.is_none())
            .map(|w| w.added.clone())
            .collect()
    }

    /// The statement at `line` (its text up to the `;`): a warning for each value
    /// added earlier that it uses, then the values it adds.
    pub(super) fn statement(&mut self, sql: &str, line: usize) -> Vec<Use> {
        let mut warnings = Vec::new();
        let mut constants: Option<Constants> = None;
        for w in self.watched.iter_mut().filter(|w| !w.warned) {
            let a = &w.added;
            if sql.contains(&a.quoted)
                && constants
                    .get_or_insert_with(|| Constants::of(sql))
                    .uses(&a.label(), &a.type_name)
            {
                w.warned = true;
                let at = match &a.file {
                    Some(f) => format!("{f}:{}", a.line),
                    None => format!("line {}", a.line),
                };
                warnings.push(Use {
                    line,
                    message: format!(
                        "uses {}, which `ALTER TYPE {} ADD VALUE` at {at} adds in the same transaction: the server refuses a new enum value before the transaction that adds it commits (unsafe use of new value), so this fails at rehearse. Add the value in an earlier release, or in an `online = true` tier before this one (`ADD VALUE IF NOT EXISTS`; each online statement commits), or, with [bundle] transaction = \"per-tier\", in an earlier tier",
                        a.quoted, a.type_name
                    ),
                    earlier: a.file.is_some(),
                });
            }
        }
        let here = self
            .watched
            .iter()
            .filter(|w| w.added.file.is_none())
            .count();
        if may_add_value(sql.as_bytes()) && here < MAX_VALUES {
            self.watched
                .extend(added_values(sql, line).into_iter().map(|added| Watched {
                    added,
                    warned: false,
                }));
        }
        warnings
    }
}

impl EnumValueAdded {
    /// The label, unquoted.
    fn label(&self) -> String {
        self.quoted[1..self.quoted.len() - 1].replace("''", "'")
    }
}

/// The string constants of a statement's expressions, each with the type it is cast
/// to by name, if any; `None` when the statement does not parse (then any text of the
/// label counts, as lint cannot tell).
struct Constants(Option<Vec<(String, Option<String>)>>);

impl Constants {
    fn of(sql: &str) -> Constants {
        let tree = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT)
            .ok()
            .and_then(|p| serde_json::to_value(&p.protobuf).ok());
        Constants(tree.map(|t| {
            let mut out = vec![];
            constants_in(&t, None, &mut out);
            out
        }))
    }

    /// Whether `label` of enum `type_name` (as written, maybe qualified) may be used:
    /// a constant with its text, not cast to another named type.
    fn uses(&self, label: &str, type_name: &str) -> bool {
        let Some(constants) = &self.0 else {
            return true;
        };
        let short = type_name.rsplit('.').next().unwrap_or(type_name);
        constants
            .iter()
            .any(|(c, to)| c == label && to.as_deref().is_none_or(|t| t == short))
    }
}

/// The string constants (`A_Const`) under `v` (the parse tree as JSON), each with the
/// named type it is directly cast to (`'b'::e2`), or that the column it is the default
/// of has (`x e2 DEFAULT 'b'`). A setting's value is no constant of a type.
fn constants_in(v: &serde_json::Value, ty: Option<&str>, out: &mut Vec<(String, Option<String>)>) {
    use serde_json::Value;
    match v {
        Value::Array(items) => items.iter().for_each(|i| constants_in(i, None, out)),
        Value::Object(map) => {
            if let Some(c) = map.get("AConst") {
                if let Some(s) = c.pointer("/val/Sval/sval").and_then(Value::as_str) {
                    out.push((s.to_string(), ty.map(str::to_string)));
                }
            } else if let Some(inner) = map.get("node").filter(|_| map.len() == 1) {
                constants_in(inner, ty, out);
            } else if let Some(t) = map.get("TypeCast") {
                let to = last_name(&t["type_name"]);
                constants_in(&t["arg"], to.as_deref(), out);
            } else if let Some(d) = map.get("ColumnDef") {
                let to = last_name(&d["type_name"]);
                for c in d["constraints"].as_array().into_iter().flatten() {
                    constants_in(&c["node"]["Constraint"]["raw_expr"], to.as_deref(), out);
                }
                constants_in(&d["raw_default"], to.as_deref(), out);
            } else if !map.contains_key("VariableSetStmt") {
                map.values().for_each(|x| constants_in(x, None, out));
            }
        }
        _ => {}
    }
}

/// The last part of a type's name in the JSON tree (`public.e2` → `e2`).
fn last_name(type_name: &serde_json::Value) -> Option<String> {
    type_name["names"]
        .as_array()?
        .last()?
        .pointer("/node/String/sval")?
        .as_str()
        .map(str::to_string)
}

/// The values `ALTER TYPE … ADD VALUE` statements in `sql` add.
fn added_values(sql: &str, line: usize) -> Vec<EnumValueAdded> {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return Vec::new();
    };
    super::parser::statements_by_line(&parsed, sql, line)
        .into_iter()
        .filter_map(|(at_line, node)| match node {
            NodeEnum::AlterEnumStmt(s) if s.old_val.is_empty() && !s.new_val.is_empty() => {
                let type_name = s
                    .type_name
                    .iter()
                    .filter_map(|n| match &n.node {
                        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(".");
                Some(EnumValueAdded {
                    quoted: format!("'{}'", s.new_val.replace('\'', "''")),
                    type_name,
                    file: None,
                    line: at_line,
                })
            }
            _ => None,
        })
        .collect()
}
