//! Topic name and filter rules (MQTT 3.1.1 §4.7) and the upstream topic prefix (mountpoint).

/// Why a topic name or filter is unusable. Maps to return code 0x03 (or 0x02 for PUBLISH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// Not UTF-8.
    NotUtf8,
    /// Zero length.
    Empty,
    /// Contains U+0000.
    ContainsNul,
    /// A topic *name* containing `+` or `#`.
    WildcardInName,
    /// A filter with `#` not alone in the last level, or `+` not alone in its level.
    MisplacedWildcard,
}

fn text(bytes: &[u8]) -> Result<&str, TopicError> {
    let s = std::str::from_utf8(bytes).map_err(|_| TopicError::NotUtf8)?;
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.contains('\0') {
        return Err(TopicError::ContainsNul);
    }
    Ok(s)
}

/// A topic name a client may publish to or register: UTF-8, non-empty, no wildcards.
pub fn topic_name(bytes: &[u8]) -> Result<&str, TopicError> {
    let s = text(bytes)?;
    if s.contains(['+', '#']) {
        return Err(TopicError::WildcardInName);
    }
    Ok(s)
}

/// A topic filter a client may subscribe to: `+` fills a whole level, `#` only as the whole
/// last level.
pub fn topic_filter(bytes: &[u8]) -> Result<&str, TopicError> {
    let s = text(bytes)?;
    let mut levels = s.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        let ok = match level {
            "#" => last,
            "+" => true,
            l => !l.contains(['+', '#']),
        };
        if !ok {
            return Err(TopicError::MisplacedWildcard);
        }
    }
    Ok(s)
}

/// True when `filter` contains a wildcard.
pub fn is_wildcard(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

/// True when topic name `topic` matches `filter` (MQTT rules; `$` topics are not matched by a
/// leading wildcard).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Adds the upstream prefix.
pub fn to_upstream(prefix: &str, topic: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + topic.len());
    s.push_str(prefix);
    s.push_str(topic);
    s
}

/// Removes the upstream prefix; `None` when the topic does not carry it.
pub fn from_upstream<'t>(prefix: &str, topic: &'t str) -> Option<&'t str> {
    topic.strip_prefix(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_wildcards_empty_nul_and_bad_utf8() {
        assert_eq!(topic_name(b"a/b"), Ok("a/b"));
        assert_eq!(topic_name(b""), Err(TopicError::Empty));
        assert_eq!(topic_name(b"a/+"), Err(TopicError::WildcardInName));
        assert_eq!(topic_name(b"a/#"), Err(TopicError::WildcardInName));
        assert_eq!(topic_name(b"a\0"), Err(TopicError::ContainsNul));
        assert_eq!(topic_name(&[0xff, 0xfe]), Err(TopicError::NotUtf8));
    }

    #[test]
    fn filters_accept_well_placed_wildcards_only() {
        for ok in ["#", "+", "a/+/b", "a/#", "+/+", "/", "a//b"] {
            assert_eq!(topic_filter(ok.as_bytes()), Ok(ok), "{ok}");
        }
        for bad in ["a/#/b", "a#", "a/b+", "#/a", "a/+b"] {
            assert_eq!(
                topic_filter(bad.as_bytes()),
                Err(TopicError::MisplacedWildcard),
                "{bad}"
            );
        }
    }

    #[test]
    fn matching_follows_mqtt_rules() {
        assert!(matches("cmd/#", "cmd/led"));
        assert!(matches("cmd/#", "cmd"));
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(matches("#", "x/y"));
        assert!(!matches("#", "$SYS/x"));
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
    }

    #[test]
    fn prefix_is_added_and_stripped() {
        assert_eq!(to_upstream("site/", "t"), "site/t");
        assert_eq!(from_upstream("site/", "site/t"), Some("t"));
        assert_eq!(from_upstream("site/", "other/t"), None);
        assert_eq!(from_upstream("", "t"), Some("t"));
    }
}
