//! What the subcommands print, written so that output into a closed pipe
//! (`check-config | head`) never panics, unlike `println!`.
//!
//! A reader that went away (`EPIPE`) ends the output quietly. Any other write error (a full
//! disk behind a redirection) is noted on stderr, because the output is then incomplete. Neither
//! changes the exit code: it says whether the command itself succeeded.

use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitCode;

/// Prints the answer of `check-config` and returns its exit code.
///
/// `Ok(settings)`: the line `configuration OK: SOURCE`, then `settings` (its `Display` is the
/// summary of the effective configuration) on stdout; exit 0. `Err(e)`: `error: E` on stderr;
/// exit 2 (the operator has to fix the configuration or a flag).
pub fn check_config<S: Display, E: Display>(result: &Result<S, E>, source: &str) -> ExitCode {
    match result {
        Ok(settings) => {
            print(format_args!("configuration OK: {source}\n{settings}"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint(format_args!("error: {e}\n"));
            ExitCode::from(2)
        }
    }
}

/// Writes `text` to stdout and flushes it; a closed pipe ends it quietly, another write error
/// is noted on stderr. Never panics.
pub fn print(text: impl Display) {
    let result = write_all(&mut io::stdout().lock(), text);
    if let Some(note) = failure_note(result) {
        eprint(format_args!("{note}\n"));
    }
}

/// Writes `text` to stderr, ignoring write errors (there is nowhere left to report them).
pub fn eprint(text: impl Display) {
    let _ = write_all(&mut io::stderr().lock(), text);
}

/// Writes and flushes `text`, stopping at the first error.
fn write_all(out: &mut impl Write, text: impl Display) -> io::Result<()> {
    write!(out, "{text}")?;
    out.flush()
}

/// What to tell the operator about the outcome of writing to stdout: nothing when it worked
/// or when the reader closed the pipe.
fn failure_note(result: io::Result<()>) -> Option<String> {
    match result {
        Ok(()) => None,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => None,
        Err(e) => Some(format!(
            "warning: the output is incomplete: cannot write to stdout: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader went away after `room` bytes.
    struct ClosedAfter {
        room: usize,
        kind: io::ErrorKind,
        written: Vec<u8>,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(self.kind));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_the_output_quietly() {
        let mut out = ClosedAfter {
            room: 5,
            kind: io::ErrorKind::BrokenPipe,
            written: Vec::new(),
        };
        let result = write_all(&mut out, format_args!("configuration OK: x\nmore\n"));
        assert_eq!(out.written, b"confi");
        assert_eq!(
            result.as_ref().map_err(io::Error::kind),
            Err(io::ErrorKind::BrokenPipe)
        );
        assert_eq!(failure_note(result), None);
    }

    #[test]
    fn other_write_errors_are_noted() {
        let mut out = ClosedAfter {
            room: 0,
            kind: io::ErrorKind::StorageFull,
            written: Vec::new(),
        };
        let note = failure_note(write_all(&mut out, "x")).unwrap();
        assert!(
            note.contains("incomplete") && note.contains("stdout"),
            "{note}"
        );
        assert_eq!(failure_note(Ok(())), None);
    }
}
