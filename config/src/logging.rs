//! Logging setup of the binaries: a `tracing` subscriber writing to stderr, filtered by the
//! `--log` directives (or the binary's environment variable), as text or JSON lines.
//!
//! Colours are written only when stderr is a terminal and `NO_COLOR` is unset or empty, so the
//! journal and log files get plain text. When stderr is the systemd journal (`JOURNAL_STREAM`
//! names it), text lines carry no timestamp of their own (the journal stamps each line) and
//! start with the syslog priority of their level (`<3>` error, `<4>` warn, `<6>` info, `<7>`
//! debug and trace), which the journal takes as the line's priority (`journalctl -p warning`).

use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// Log output formats (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The `--log` value is not a level or a list of tracing directives.
    ///
    /// **Fault:** operator. **Recovery:** exit with code 2.
    #[error("--log {directives:?}: {source}")]
    Filter {
        /// The value as given.
        directives: String,
        /// What the filter parser said.
        source: tracing_subscriber::filter::ParseError,
    },

    /// A bare word in the `--log` value that is not a level (e.g. `loud`). As a tracing
    /// directive it would name a target and silently turn every other log line off.
    ///
    /// **Fault:** operator. **Recovery:** exit with code 2.
    #[error(
        "--log {directives:?}: {word:?} is not a log level: use error, warn, info, debug, trace \
         or off, or target=level directives such as \"info,gateway=debug\""
    )]
    NotALevel {
        /// The value as given.
        directives: String,
        /// The word that is not a level.
        word: String,
    },

    /// A global subscriber (or `log` logger) was installed before.
    ///
    /// **Fault:** the program (set up logging once). **Recovery:** exit with code 1.
    #[error("cannot install the logger: {0}")]
    AlreadyInstalled(String),
}

impl LogError {
    /// The exit code for this error: 2 when the operator has to fix `--log`, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            LogError::Filter { .. } | LogError::NotALevel { .. } => 2,
            LogError::AlreadyInstalled(_) => 1,
        }
    }
}

/// Installs the global subscriber: events passing `directives` (e.g. `info` or
/// `info,gateway=debug`) go to stderr in `format`, coloured only on a terminal.
///
/// # Errors
///
/// [`LogError::Filter`] for bad directives; [`LogError::AlreadyInstalled`] when called twice.
pub fn init(directives: &str, format: LogFormat) -> Result<(), LogError> {
    init_quiet(directives, format, &[])
}

/// [`init`], with the log targets in `quiet` (e.g. a library's chatty crate) off unless the
/// directives name them.
///
/// # Errors
///
/// As [`init`]; errors name the directives as given.
pub fn init_quiet(directives: &str, format: LogFormat, quiet: &[&str]) -> Result<(), LogError> {
    let understood = with_quiet(&levels(directives)?, quiet);
    let filter =
        tracing_subscriber::EnvFilter::try_new(&understood).map_err(|source| LogError::Filter {
            directives: directives.to_owned(),
            source,
        })?;
    let no_color = std::env::var_os("NO_COLOR");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(std::io::stderr().is_terminal(), no_color.as_deref()));
    let journal = std::env::var("JOURNAL_STREAM")
        .ok()
        .is_some_and(|stream| stderr_is(&stream));
    match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text if journal => builder
            .event_format(JournalPriority(plain_text()))
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    }
    .map_err(|e| LogError::AlreadyInstalled(e.to_string()))
}

/// `understood` directives with `target=off` added for each target in `quiet` they do not name.
fn with_quiet(understood: &str, quiet: &[&str]) -> String {
    let mut out = understood.to_owned();
    for target in quiet.iter().filter(|t| !understood.contains(**t)) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(target);
        out.push_str("=off");
    }
    out
}

/// Whether stderr is the stream `JOURNAL_STREAM` names (`<device>:<inode>`, as systemd sets
/// it for a service whose output goes to the journal). A child whose stderr was redirected
/// elsewhere inherits the variable, so the file itself is compared.
fn stderr_is(journal_stream: &str) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The syslog priority of a level, as the journal reads it from a `<N>` line prefix.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Text lines for the journal: `<N>` (the level's syslog priority) before the inner format.
struct JournalPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for JournalPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// The compact text format without colours or timestamps (what the journal variant wraps).
fn plain_text() -> format::Format<format::Compact, ()> {
    format::format().compact().with_ansi(false).without_time()
}

/// The directives with every bare word checked: a level stays, a common synonym becomes the
/// level it means (`warning` → `warn`, `verbose` → `debug`, …), anything else is refused (as a
/// directive it would select only a target of that name). `target=level` directives and
/// targets with a path (`gateway::core`) pass unchanged.
pub fn levels(directives: &str) -> Result<String, LogError> {
    let mut out = Vec::new();
    for d in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        if d.contains(['=', ':', '[']) {
            out.push(d.to_owned());
            continue;
        }
        let level = match d.to_ascii_lowercase().as_str() {
            l @ ("error" | "warn" | "info" | "debug" | "trace" | "off") => l.to_owned(),
            "warning" => "warn".to_owned(),
            "err" | "fatal" | "critical" => "error".to_owned(),
            "verbose" => "debug".to_owned(),
            "all" => "trace".to_owned(),
            "none" | "quiet" | "silent" => "off".to_owned(),
            _ => {
                return Err(LogError::NotALevel {
                    directives: directives.to_owned(),
                    word: d.to_owned(),
                });
            }
        };
        out.push(level);
    }
    Ok(out.join(","))
}

/// Whether to write ANSI colours: only to a terminal, and not when `NO_COLOR` is set to a
/// non-empty value.
fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_words_are_levels_or_their_synonyms_and_anything_else_is_refused() {
        assert_eq!(levels("warning").unwrap(), "warn");
        assert_eq!(levels("VERBOSE").unwrap(), "debug");
        assert_eq!(levels("info,gateway=debug").unwrap(), "info,gateway=debug");
        assert_eq!(
            levels("gateway::core=trace").unwrap(),
            "gateway::core=trace"
        );
        assert_eq!(levels(" warn , rumqttd=off ").unwrap(), "warn,rumqttd=off");
        let e = levels("info,loud").unwrap_err();
        assert!(matches!(&e, LogError::NotALevel { word, .. } if word == "loud"));
        assert!(e.to_string().contains("not a log level"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".as_ref())));
        assert!(!colour(true, Some("1".as_ref())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("".as_ref())));
    }

    #[test]
    fn quiet_targets_are_off_unless_the_directives_name_them() {
        assert_eq!(with_quiet("info", &["rumqttd"]), "info,rumqttd=off");
        assert_eq!(with_quiet("", &["rumqttd"]), "rumqttd=off");
        assert_eq!(
            with_quiet("info,rumqttd=warn", &["rumqttd"]),
            "info,rumqttd=warn"
        );
        assert_eq!(with_quiet("debug", &[]), "debug");
    }

    #[test]
    fn journal_lines_carry_the_syslog_priority_of_their_level() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
        assert_eq!(priority(Level::TRACE), 7);
    }

    #[test]
    fn a_malformed_journal_stream_is_not_taken_for_stderr() {
        assert!(!stderr_is(""));
        assert!(!stderr_is("12"));
        assert!(!stderr_is("a:b"));
        assert!(!stderr_is("0:0"));
    }

    #[test]
    fn bad_directives_name_the_flag_and_the_value() {
        let e = init("info,[", LogFormat::Text).unwrap_err();
        assert!(matches!(e, LogError::Filter { .. }), "{e:?}");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("--log \"info,[\": "), "{e}");
    }

    #[test]
    fn a_second_logger_is_refused_instead_of_panicking() {
        init("info", LogFormat::Json).unwrap();
        let e = init("debug", LogFormat::Text).unwrap_err();
        assert!(matches!(e, LogError::AlreadyInstalled(_)), "{e:?}");
        assert_eq!(e.exit_code(), 1);
    }
}
