//! [`Origin`]: where a setting's value came from (flag, environment, `basis.toml`, default).
//! A leaf: settings record it, errors name it.

use std::fmt;
use std::path::PathBuf;

/// Where a setting's value came from; errors name it so the user knows what to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, by name.
    Flag(&'static str),
    /// An environment variable, by name.
    Env(&'static str),
    /// `basis.toml`, with the line when known.
    File { path: PathBuf, line: Option<usize> },
    /// The built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(name) => write!(f, "flag {name}"),
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::File { path, line: None } => write!(f, "{}", path.display()),
            Self::File {
                path,
                line: Some(line),
            } => write!(f, "{} line {line}", path.display()),
            Self::Default => f.write_str("the built-in default"),
        }
    }
}
