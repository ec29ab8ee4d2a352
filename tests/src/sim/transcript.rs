//! [`Transcript`]: one line per thing that happened in a simulation run (every datagram sent,
//! lost or delivered, every upstream command and event, every node event), so that two runs
//! can be compared byte for byte.

use std::fmt::Write as _;

/// The lines of one run, in the order things happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    lines: Vec<String>,
}

impl Transcript {
    /// Appends `what` at simulated time `now` (milliseconds), said by `who`.
    pub fn push(&mut self, now: u64, who: &str, what: &str) {
        let mut line = String::with_capacity(24 + who.len() + what.len());
        let _ = write!(line, "{now:>9} {who:<10} {what}");
        self.lines.push(line);
    }

    /// The lines.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True before anything happened.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The whole transcript as text, a line each.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// The first line where `self` and `other` differ (index and both lines), if any.
    pub fn first_difference(&self, other: &Transcript) -> Option<(usize, String, String)> {
        let n = self.lines.len().max(other.lines.len());
        (0..n).find_map(|i| {
            let a = self.lines.get(i);
            let b = other.lines.get(i);
            (a != b).then(|| {
                (
                    i,
                    a.cloned().unwrap_or_else(|| "<end>".into()),
                    b.cloned().unwrap_or_else(|| "<end>".into()),
                )
            })
        })
    }
}
