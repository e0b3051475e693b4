//! Glob patterns for `event_type` and `category`: `*` is any run of characters, `?` one.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob(String);

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
        Ok(Glob(pattern.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, text: &str) -> bool {
        let p: Vec<char> = self.0.chars().collect();
        let t: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0, 0);
        // Position after the last `*` and the text position it has consumed up to.
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi + 1, ti));
                pi += 1;
            } else if let Some((sp, st)) = star {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
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
