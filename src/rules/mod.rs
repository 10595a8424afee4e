//! The rule language: parse (jsonb → AST), compile against a relation's columns, evaluate rows,
//! explain, and write a segmentation out as SQL. Pure Rust: no Postgres types here.

pub mod ast;
pub mod compile;
pub mod number;
pub mod pattern;
pub mod points;
pub mod reference;
pub mod related;
pub mod ruleset;
pub mod score;
pub mod sql;
pub mod time;

pub use compile::{Cell, ColumnType, Columns, Row};
pub use ruleset::{Mode, Ruleset, RulesetDef};
#[cfg(test)]
mod properties;
