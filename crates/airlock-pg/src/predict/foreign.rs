//! A question of the target's data that another tool wrote (a Liquibase `sqlCheck`),
//! asked the way airlock asks its own: through the door ([`crate::door`]), whose
//! proof makes a temporary view in a savepoint and then reads it read-only; the
//! transaction is rolled back.
//!
//! Invariant: the question is sent only as the door's proven view (nothing a role
//! defines runs, nothing is written); what the door cannot prove is not asked, and
//! the caller is told why.

use crate::{door, sql_err, DbError};

/// What became of the question.
#[derive(Debug)]
pub enum Answer {
    /// The first column of each row, as text (NULL kept).
    Rows(Vec<Option<String>>),
    /// PostgreSQL refused the question itself (a relation, column or function that is
    /// not there, a syntax error): its message. Nothing ran.
    Failed(String),
    /// The door could not prove it calls nothing a role defines: why. Not asked.
    NotAsked(String),
}

/// Ask `sql` (one `SELECT`) on the session `client`, under `search_path`.
pub fn first_column(
    client: &mut postgres::Client,
    sql: &str,
    search_path: &str,
    lock_timeout: &str,
) -> Result<Answer, DbError> {
    let body = sql
        .trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    let value = "airlock_q.airlock_c";
    let question = format!(
        "SELECT CASE WHEN {value} IS NULL THEN NULL ELSE {} END AS airlock_v FROM ({body}) AS airlock_q(airlock_c)",
        door::text_of(value)
    );
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .map_err(|e| sql_err("BEGIN on the target", &e))?;
    tx.batch_execute(&format!(
        "SET LOCAL search_path = {}",
        crate::quote_literal(search_path)
    ))
    .map_err(|e| sql_err("search_path", &e))?;
    door::open(&mut tx, lock_timeout)?;
    let asked = door::ask(&mut tx, &question).map_err(|e| sql_err("the question", &e))?;
    let _ = tx.rollback();
    Ok(match asked {
        Ok(rows) => Answer::Rows(rows.iter().map(|r| r.get::<_, Option<String>>(0)).collect()),
        Err(why) => match why.strip_prefix(door::UNPROVABLE) {
            Some(message) => {
                Answer::Failed(message.strip_suffix(')').unwrap_or(message).to_string())
            }
            None => Answer::NotAsked(why),
        },
    })
}
