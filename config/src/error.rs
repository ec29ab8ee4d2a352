//! [`ConfigError`]: everything that can be wrong with a configuration file or a command-line
//! override, with the file, line and column where the operator has to look.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A 1-based line and column (in characters) inside a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, starting at 1.
    pub line: usize,
    /// Column in characters (not bytes), starting at 1.
    pub column: usize,
}

impl Position {
    /// The position of byte offset `offset` inside `text` (clamped to the end of the text and
    /// to a character boundary).
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = text.get(..offset).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
        Position { line, column }
    }

    /// The position where `span` starts inside `text`.
    pub fn of_span(text: &str, span: &Range<usize>) -> Position {
        Position::of_offset(text, span.start)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a configuration could not be loaded.
///
/// `Display` names the file and, when known, the line and column, e.g.
/// `config/gateway.toml:12:9: invalid value for upstream.url: unsupported scheme "http"`, or the
/// flag, e.g. `invalid value for --radio: ...`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    ///
    /// **Fault:** operator (wrong path or permissions). **Recovery:** exit with code 2.
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The text is not valid TOML, or does not fit the expected shape (unknown key, wrong
    /// type, bad duration string).
    ///
    /// **Fault:** operator. **Recovery:** exit with code 2.
    #[error("{}{}: {message}", path.display(), OptPos(position))]
    Parse {
        /// The file (or a pseudo path for built-in text).
        path: PathBuf,
        /// Where the TOML parser stopped, when it said.
        position: Option<Position>,
        /// The parser's message.
        message: String,
    },

    /// A value has the right type but is out of range or contradicts another setting.
    ///
    /// **Fault:** operator. **Recovery:** exit with code 2.
    #[error("{}{}: invalid value for {key}: {reason}", path.display(), OptPos(position))]
    Invalid {
        /// The file (or a pseudo path for built-in text).
        path: PathBuf,
        /// Where the offending value is, when it appears in the file.
        position: Option<Position>,
        /// Dotted key, e.g. `upstream.url`, `predefined[2].id` or `ports[2].wnid`.
        key: String,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// A command-line override has a bad value.
    ///
    /// **Fault:** operator. **Recovery:** exit with code 2.
    #[error("invalid value for {flag}: {reason}")]
    Flag {
        /// The flag, e.g. `--listen` or `--radio`.
        flag: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

impl ConfigError {
    /// A [`ConfigError::Parse`] for the parser message `message` at byte range `span` of `text`
    /// (read from `path`).
    pub fn parse(path: &Path, text: &str, span: Option<Range<usize>>, message: &str) -> Self {
        ConfigError::Parse {
            path: path.to_path_buf(),
            position: span.map(|s| Position::of_span(text, &s)),
            message: message.trim().to_owned(),
        }
    }

    /// A [`ConfigError::Invalid`] for `key` at byte range `span` of `text` (read from `path`),
    /// or without a position when the value is not in the file.
    pub fn invalid(
        path: &Path,
        text: &str,
        span: Option<Range<usize>>,
        key: &str,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            position: span.map(|s| Position::of_span(text, &s)),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    /// A [`ConfigError::Flag`]: `flag` has a bad value.
    pub fn flag(flag: &str, reason: impl Into<String>) -> Self {
        ConfigError::Flag {
            flag: flag.to_owned(),
            reason: reason.into(),
        }
    }

    /// The position inside the file, for parse and validation errors that have one.
    pub fn position(&self) -> Option<Position> {
        match self {
            ConfigError::Parse { position, .. } | ConfigError::Invalid { position, .. } => {
                *position
            }
            ConfigError::Read { .. } | ConfigError::Flag { .. } => None,
        }
    }
}

/// Reads the configuration file at `path`.
///
/// # Errors
///
/// [`ConfigError::Read`] naming `path` when it cannot be read.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Deserializes `text` (read from `path`) into the serde shape `T`.
///
/// # Errors
///
/// [`ConfigError::Parse`] with the position toml reports, for bad syntax, unknown keys, wrong
/// types and values a `Deserialize` impl refuses (such as a bad duration string).
pub fn from_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::parse(path, text, e.span(), e.message()))
}

/// Formats `:line:col` or nothing.
struct OptPos<'a>(&'a Option<Position>);

impl fmt::Display for OptPos<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\n[b]\nkey = \"é\" # x\n";
        assert_eq!(
            Position::of_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        assert_eq!(
            Position::of_offset(text, 6),
            Position { line: 2, column: 1 }
        );
        let hash = text.find('#').unwrap_or_default();
        assert_eq!(
            Position::of_offset(text, hash),
            Position {
                line: 3,
                column: 11
            }
        );
        assert_eq!(Position::of_offset(text, 10_000).line, 4);
    }

    #[test]
    fn display_names_file_line_and_column() {
        let e = ConfigError::Invalid {
            path: "config/gateway.toml".into(),
            position: Some(Position {
                line: 12,
                column: 9,
            }),
            key: "upstream.url".into(),
            reason: "unsupported scheme \"http\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "config/gateway.toml:12:9: invalid value for upstream.url: unsupported scheme \"http\""
        );
        let e = ConfigError::Invalid {
            path: "g.toml".into(),
            position: None,
            key: "k".into(),
            reason: "r".into(),
        };
        assert_eq!(e.to_string(), "g.toml: invalid value for k: r");
    }

    #[test]
    fn constructors_place_the_error_and_flags_have_no_position() {
        let text = "a = 1\nb = \"x\"\n";
        let path = Path::new("f.toml");
        let start = text.find('"').unwrap_or_default();
        let e = ConfigError::invalid(path, text, Some(start..start + 3), "b", "is not a number");
        assert_eq!(e.position(), Some(Position { line: 2, column: 5 }));
        assert_eq!(
            e.to_string(),
            "f.toml:2:5: invalid value for b: is not a number"
        );
        let e = ConfigError::parse(path, text, None, " expected a table \n");
        assert_eq!(e.to_string(), "f.toml: expected a table");
        let e = ConfigError::flag("--radio", "bad URI");
        assert_eq!(e.position(), None);
        assert_eq!(e.to_string(), "invalid value for --radio: bad URI");
    }

    #[test]
    fn toml_errors_carry_the_file_and_position() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct T {
            #[allow(dead_code)]
            a: i64,
        }
        let e = from_toml::<T>("a = 1\nzz = 2\n", Path::new("t.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("t.toml:2:1: unknown field `zz`"),
            "{e}"
        );
        let e = read(Path::new("/nonexistent/t.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/t.toml: cannot read"),
            "{e}"
        );
    }
}
