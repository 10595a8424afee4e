//! The one error type of the pure core. The pgrx boundary (`api::raise`) turns each variant into an
//! ERROR with its SQLSTATE, detail and hint; nothing in the core knows about Postgres.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SegError {
    /// Malformed rule: unknown key or operator, wrong shape (22023).
    #[error("invalid rule at {path}: {message}")]
    InvalidRule {
        path: String,
        message: String,
        hint: String,
    },

    /// The rule names a column the source relation does not have (42703).
    #[error("column \"{attr}\" does not exist in {source_name}")]
    UnknownAttribute {
        path: String,
        attr: String,
        source_name: String,
        hint: String,
    },

    /// The rule names an object that is not declared, e.g. a related source (42704).
    #[error("{message}")]
    UnknownObject {
        path: String,
        message: String,
        hint: String,
    },

    /// A value that cannot be compared with the column's type (42804).
    #[error("type mismatch at {path}: {message}")]
    TypeMismatch {
        path: String,
        message: String,
        hint: String,
    },

    /// A `matches` pattern that does not compile (2201B).
    #[error("invalid regular expression at {path}: {message}")]
    InvalidRegex { path: String, message: String },

    /// A bad interval or date/time literal (22007).
    #[error("invalid {what} at {path}: \"{value}\"")]
    InvalidDatetime {
        path: String,
        what: &'static str,
        value: String,
        hint: String,
    },

    /// Segment hierarchy faults: a cycle or a parent in another segmentation (22023).
    #[error("invalid segment hierarchy: {message}")]
    Hierarchy { message: String, hint: String },

    /// A numeric argument outside its domain, e.g. an NPS score of 11 or negative ARR (22003).
    #[error("{message}")]
    OutOfRange { message: String, hint: String },

    /// Any other invalid argument (22023).
    #[error("{message}")]
    InvalidArgument { message: String, hint: String },

    /// A rule or value beyond the documented limits, e.g. nested too deeply (54001).
    #[error("{message}")]
    TooComplex { message: String, hint: String },

    /// A model fit that cannot proceed or did not converge (22000 data exception).
    #[error("{message}")]
    FitFailed { message: String, detail: String },
}

impl SegError {
    pub fn invalid_rule(path: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        SegError::InvalidRule {
            path: path.to_string(),
            message: message.into(),
            hint: hint.into(),
        }
    }
    pub fn type_mismatch(path: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        SegError::TypeMismatch {
            path: path.to_string(),
            message: message.into(),
            hint: hint.into(),
        }
    }
    pub fn out_of_range(message: impl Into<String>, hint: impl Into<String>) -> Self {
        SegError::OutOfRange {
            message: message.into(),
            hint: hint.into(),
        }
    }
    pub fn invalid_argument(message: impl Into<String>, hint: impl Into<String>) -> Self {
        SegError::InvalidArgument {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// The five-character SQLSTATE this error is reported with.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SegError::InvalidRule { .. }
            | SegError::Hierarchy { .. }
            | SegError::InvalidArgument { .. } => "22023",
            SegError::UnknownAttribute { .. } => "42703",
            SegError::UnknownObject { .. } => "42704",
            SegError::TypeMismatch { .. } => "42804",
            SegError::InvalidRegex { .. } => "2201B",
            SegError::InvalidDatetime { .. } => "22007",
            SegError::OutOfRange { .. } => "22003",
            SegError::TooComplex { .. } => "54001",
            SegError::FitFailed { .. } => "22000",
        }
    }

    pub fn detail(&self) -> Option<String> {
        match self {
            SegError::InvalidRule { path, .. }
            | SegError::UnknownAttribute { path, .. }
            | SegError::UnknownObject { path, .. }
            | SegError::TypeMismatch { path, .. }
            | SegError::InvalidRegex { path, .. }
            | SegError::InvalidDatetime { path, .. } => Some(format!("JSON path: {path}")),
            SegError::FitFailed { detail, .. } => Some(detail.clone()),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            SegError::InvalidRule { hint, .. }
            | SegError::UnknownAttribute { hint, .. }
            | SegError::UnknownObject { hint, .. }
            | SegError::TypeMismatch { hint, .. }
            | SegError::InvalidDatetime { hint, .. }
            | SegError::Hierarchy { hint, .. }
            | SegError::OutOfRange { hint, .. }
            | SegError::TooComplex { hint, .. }
            | SegError::InvalidArgument { hint, .. } => {
                Some(hint.clone()).filter(|h| !h.is_empty())
            }
            SegError::InvalidRegex { .. } => {
                Some("patterns use the syntax PostgreSQL and Rust read alike: characters, . ^ $, [...] with ranges and [:alpha:]-style classes, \\d \\s \\w (ASCII) and their negations, (...) and (?:...), |, * + ? {m,n} (lazy with ?), a backslash before punctuation".into())
            }
            SegError::FitFailed { .. } => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, SegError>;
