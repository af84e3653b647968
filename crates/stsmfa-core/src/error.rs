//! The one user-facing error type: a line saying what went wrong, plus hints
//! saying what to do. Everything that reaches `main` becomes one of these.

use std::fmt;

/// An error to show the user: `stsmfa: error: {message}` and `hint: …` lines.
#[derive(Debug)]
pub struct Fail {
    pub message: String,
    pub hints: Vec<String>,
    /// Exit code: 1 for run-time failures, 2 for bad usage.
    pub code: u8,
}

impl Fail {
    pub fn new(message: impl Into<String>) -> Self {
        Fail {
            message: message.into(),
            hints: Vec::new(),
            code: 1,
        }
    }

    /// Bad usage (exit code 2), e.g. an invalid `--duration`.
    pub fn usage(message: impl Into<String>) -> Self {
        Fail {
            code: 2,
            ..Fail::new(message)
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fail {}

/// Shorthand for the many places that build a `Fail` with hints.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { $crate::error::Fail::new(format!($($arg)*)) };
}
