//! `ALTER TYPE … ADD VALUE` followed, in the same file, by a use of the new value: the
//! server refuses that use inside the transaction that added it ("unsafe use of new
//! value", even when the type itself is new), so the tier fails at `rehearse`. Lint
//! cannot prove a use (the text `'label'` may mean another type's value), so it warns.
//!
//! Invariant: only a warning, never a refusal; memory is the added values of one file
//! (at most [`MAX_VALUES`]).

use pg_query::NodeEnum;

/// Values remembered per file; a file adding more is not a migration lint can help.
const MAX_VALUES: usize = 256;

/// One value added by `ALTER TYPE … ADD VALUE`.
struct Added {
    /// The value as a constant, `'label'` (quotes doubled).
    quoted: String,
    type_name: String,
    line: usize,
    /// Warned about already (once per value).
    warned: bool,
}

/// The values added so far in one file.
#[derive(Default)]
pub(super) struct NewEnumValues {
    added: Vec<Added>,
}

/// Cheap test on a statement's text before it is parsed: might it add an enum value?
pub(super) fn may_add_value(text: &[u8]) -> bool {
    let starts_alter = text.len() >= 5 && text[..5].eq_ignore_ascii_case(b"ALTER");
    starts_alter
        && text
            .windows(9)
            .any(|w| w.eq_ignore_ascii_case(b"ADD VALUE"))
}

impl NewEnumValues {
    /// The statement at `line` (its text up to the `;`): a warning for each value
    /// added earlier that it uses, then the values it adds.
    pub(super) fn statement(&mut self, sql: &str, line: usize) -> Vec<(usize, String)> {
        let mut warnings = Vec::new();
        for added in self.added.iter_mut().filter(|a| !a.warned) {
            if sql.contains(&added.quoted) {
                added.warned = true;
                warnings.push((
                    line,
                    format!(
                        "uses {}, which `ALTER TYPE {} ADD VALUE` at line {} adds in the same transaction: the server refuses a new enum value before the transaction that adds it commits (unsafe use of new value), so this fails at rehearse. Add the value in an earlier release (or, with [bundle] transaction = \"per-tier\", an earlier tier)",
                        added.quoted, added.type_name, added.line
                    ),
                ));
            }
        }
        if may_add_value(sql.as_bytes()) && self.added.len() < MAX_VALUES {
            self.added.extend(added_values(sql, line));
        }
        warnings
    }
}

/// The values `ALTER TYPE … ADD VALUE` statements in `sql` add.
fn added_values(sql: &str, line: usize) -> Vec<Added> {
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
                Some(Added {
                    quoted: format!("'{}'", s.new_val.replace('\'', "''")),
                    type_name,
                    line: at_line,
                    warned: false,
                })
            }
            _ => None,
        })
        .collect()
}
