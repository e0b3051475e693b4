//! Checks on rendered launch values, which carry text from the event (ticket fields, labels):
//! a `limit` must name hosts, not patterns (`all` would run everywhere); extra_vars must not
//! carry Jinja markup the controller might evaluate; no value may be huge. A rule opts out of
//! the first two explicitly.

use serde_json::Value as Json;

pub const DEFAULT_MAX_VALUE_CHARS: usize = 4096;

/// A rule's choices; the defaults are the strict ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Guard {
    /// `limit_patterns: true`: the limit may be any Ansible host pattern.
    pub limit_patterns: bool,
    /// `allow_templates_in_values: true`: extra_vars strings may contain `{{`, `{%`, `{#`.
    pub allow_templates_in_values: bool,
    /// `max_value_chars`: the longest rendered string value.
    pub max_value_chars: usize,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            limit_patterns: false,
            allow_templates_in_values: false,
            max_value_chars: DEFAULT_MAX_VALUE_CHARS,
        }
    }
}

impl Guard {
    /// Why the rendered launch body may not be sent, or Ok.
    pub fn check(&self, request: &Json) -> Result<(), String> {
        let Some(fields) = request.as_object() else {
            return Ok(());
        };
        if let Some(limit) = fields.get("limit").and_then(Json::as_str) {
            if !self.limit_patterns {
                check_limit(limit)?;
            }
        }
        fields.iter().try_for_each(|(field, v)| self.walk(field, v))
    }

    fn walk(&self, path: &str, value: &Json) -> Result<(), String> {
        match value {
            Json::String(s) => {
                let n = s.chars().count();
                if n > self.max_value_chars {
                    return Err(format!(
                        "{path}: the rendered value is {n} characters, over the rule's \
                         max_value_chars of {}",
                        self.max_value_chars
                    ));
                }
                let in_vars = path == "extra_vars" || path.starts_with("extra_vars.");
                if in_vars && !self.allow_templates_in_values {
                    if let Some(m) = ["{{", "{%", "{#"].iter().find(|m| s.contains(**m)) {
                        return Err(format!(
                            "{path}: the rendered value contains `{m}` (Jinja markup from the \
                             event), which the controller could evaluate; set \
                             `allow_templates_in_values: true` on the rule to send it"
                        ));
                    }
                }
                Ok(())
            }
            Json::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| self.walk(&format!("{path}[{i}]"), v)),
            Json::Object(map) => map
                .iter()
                .try_for_each(|(k, v)| self.walk(&format!("{path}.{k}"), v)),
            _ => Ok(()),
        }
    }
}

/// A limit is one or more plain host names separated by commas.
pub(crate) fn check_limit(limit: &str) -> Result<(), String> {
    let fail = |why: String| {
        Err(format!(
            "limit `{}` refused: {why}; only host names (letters, digits, `.`, `-`, `_`) \
             separated by `,` are accepted unless the rule sets `limit_patterns: true`",
            shown(limit)
        ))
    };
    for host in limit.split(',').map(str::trim) {
        if host.is_empty() {
            return fail("it has an empty entry".into());
        }
        if host.eq_ignore_ascii_case("all") {
            return fail("`all` is every host in the inventory".into());
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return fail(match c {
                '*' | '?' => format!("`{c}` is a wildcard"),
                '!' | '&' | ':' => format!("`{c}` is an Ansible pattern operator"),
                '~' => "`~` starts a regular expression".into(),
                '[' | ']' => "`[…]` selects hosts of a group by position".into(),
                c if c.is_whitespace() => "host names have no spaces".into(),
                c => format!("`{}` is not allowed in a host name", c.escape_default()),
            });
        }
    }
    Ok(())
}

/// At most 80 characters of a value, for a message.
fn shown(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TAIL: &str = "; only host names (letters, digits, `.`, `-`, `_`) separated by `,` are \
                        accepted unless the rule sets `limit_patterns: true`";

    #[test]
    fn host_names_pass() {
        for ok in [
            "web01",
            "web01.example.com",
            "db-1,db_2, cache3",
            "10.0.0.7",
        ] {
            check_limit(ok).unwrap();
        }
    }

    #[test]
    fn each_pattern_is_refused_with_its_reason() {
        for (limit, why) in [
            ("all", "`all` is every host in the inventory"),
            ("web01,ALL", "`all` is every host in the inventory"),
            ("web*", "`*` is a wildcard"),
            ("web0?", "`?` is a wildcard"),
            ("web:!db", "`:` is an Ansible pattern operator"),
            ("!db", "`!` is an Ansible pattern operator"),
            ("web&db", "`&` is an Ansible pattern operator"),
            ("~web\\d+", "`~` starts a regular expression"),
            (
                "webservers[0]",
                "`[…]` selects hosts of a group by position",
            ),
            ("web01 db01", "host names have no spaces"),
            ("web01,,db", "it has an empty entry"),
            ("web/01", "`/` is not allowed in a host name"),
            ("web\n01", "host names have no spaces"),
        ] {
            assert_eq!(
                check_limit(limit).unwrap_err(),
                format!("limit `{limit}` refused: {why}{TAIL}"),
                "{limit:?}"
            );
        }
    }

    #[test]
    fn limit_patterns_allows_them() {
        let g = Guard {
            limit_patterns: true,
            ..Guard::default()
        };
        g.check(&json!({"limit": "all:!db"})).unwrap();
        assert!(Guard::default().check(&json!({"limit": "all"})).is_err());
    }

    #[test]
    fn markup_in_extra_vars_is_refused_unless_allowed() {
        for m in ["{{", "{%", "{#"] {
            let req = json!({"extra_vars": {"ticket": {"text": ["ok", format!("a {m} b")]}}});
            assert_eq!(
                Guard::default().check(&req).unwrap_err(),
                format!(
                    "extra_vars.ticket.text[1]: the rendered value contains `{m}` (Jinja markup \
                     from the event), which the controller could evaluate; set \
                     `allow_templates_in_values: true` on the rule to send it"
                )
            );
            let open = Guard {
                allow_templates_in_values: true,
                ..Guard::default()
            };
            open.check(&req).unwrap();
        }
        // Only extra_vars are templated by the controller.
        Guard::default()
            .check(&json!({"job_tags": "{{x}}"}))
            .unwrap();
    }

    #[test]
    fn long_values_are_refused() {
        let g = Guard {
            max_value_chars: 10,
            ..Guard::default()
        };
        g.check(&json!({"extra_vars": {"d": "0123456789"}}))
            .unwrap();
        assert_eq!(
            g.check(&json!({"extra_vars": {"d": "0123456789é"}}))
                .unwrap_err(),
            "extra_vars.d: the rendered value is 11 characters, over the rule's max_value_chars \
             of 10"
        );
        assert_eq!(
            Guard::default()
                .check(&json!({"limit": "a".repeat(4097)}))
                .unwrap_err(),
            "limit: the rendered value is 4097 characters, over the rule's max_value_chars of 4096"
        );
    }
}
