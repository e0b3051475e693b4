//! Glob patterns for `event_type` and `category`: `*` is any run of characters, `?` one.

/// A pattern compiled once at load; matching allocates nothing (wildmatch walks the text's
/// chars against the compiled pattern).
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    text: String,
    compiled: wildmatch::WildMatch,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Glob {}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.trim().is_empty() {
            return Err("empty pattern".into());
        }
        // Refused rather than taken literally: someone writing `[ab]` expects a character class.
        if let Some(c) = pattern.chars().find(|c| "[]{}\\".contains(*c)) {
            return Err(format!(
                "bad glob `{pattern}`: `{c}` is not supported; only `*` and `?` are wildcards"
            ));
        }
        Ok(Glob {
            text: pattern.to_string(),
            compiled: wildmatch::WildMatch::new(pattern),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, text: &str) -> bool {
        self.compiled.matches(text)
    }
}

/// True when any pattern matches.
pub(crate) fn any_match(globs: &[Glob], text: &str) -> bool {
    globs.iter().any(|g| g.matches(text))
}

/// The patterns as "`a`, `b`" for messages.
pub(crate) fn list(globs: &[Glob]) -> String {
    globs
        .iter()
        .map(|g| format!("`{}`", g.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let m = |p: &str, t: &str| Glob::new(p).unwrap().matches(t);
        assert!(m("incident.*", "incident.insert"));
        assert!(m("incident.*", "incident."));
        assert!(!m("incident.*", "incidents.insert"));
        assert!(m("*", ""));
        assert!(m("push", "push"));
        assert!(!m("push", "pushed"));
        assert!(m("issues.?abeled", "issues.labeled"));
        assert!(m("*.trig*ed", "incident.triggered"));
        assert!(!m("a*b", "ac"));
        assert!(m("a*b*c", "axxbyybzc"));
    }

    #[test]
    fn refuses_unsupported_syntax() {
        assert!(Glob::new("").is_err());
        assert!(Glob::new("incident.[iu]*")
            .unwrap_err()
            .contains("only `*` and `?`"));
        assert!(Glob::new("{a,b}").is_err());
    }
}
