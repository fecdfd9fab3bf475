//! The lexing room: the one streaming lexer (`lexer`, following PostgreSQL's `scan.l`),
//! the settings that decide how text is lexed (`lexing`), PostgreSQL's tokens
//! (`tokens`), execution's cut of a file into pieces (`split`), psql's meta-commands
//! (`meta`), file-wide transaction wrappers (`wrapper`) and the byte sets the lexer
//! searches (`byteset`).
//!
//! Invariant: where a statement ends is where the server's lexer says it ends, under
//! the lexing settings in force; lint, execution and the dossier cut a file alike.

pub(crate) mod byteset;
pub(crate) mod copy;
pub(crate) mod lexer;
pub(crate) mod lexing;
pub(crate) mod meta;
pub(crate) mod split;
pub(crate) mod tokens;
pub(crate) mod wrapper;
