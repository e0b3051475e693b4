//! `${ENV}` expansion in parsed config values and `*_file` indirection for secrets.
//!
//! Expansion runs on string values after YAML parsing, never on the text, so a value holding
//! `: `, ` #`, quotes or a newline cannot change the document, and `"${PD_SECRET}"` stays a
//! string even when the secret is all digits.
//!
//! Kubernetes and systemd hand secrets over as files, so any key `foo_file` is replaced by `foo`
//! holding the file's contents. A list of paths gives a list of contents.

use serde_json::Value;
use std::path::Path;

/// Expands `${NAME}` and `${NAME:-default}` in every string of the tree; `$${` is a literal
/// `${`. An unset variable without a default is an error naming it and the key.
pub fn expand_env(value: &mut Value) -> Result<(), String> {
    expand_tree(value, "", &|name| std::env::var(name).ok())
}

pub fn expand_tree(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains('$') => {
            *s = expand_with(s, lookup).map_err(|e| format!("`{path}`: {e}"))?;
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                expand_tree(v, &p, lookup)?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                expand_tree(v, &format!("{path}[{i}]"), lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn expand_with(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` near `{}`", snippet(after)))?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name in `${{{expr}}}`"));
            }
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"
                    ))
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn snippet(s: &str) -> &str {
    let end = s.char_indices().nth(20).map(|(i, _)| i).unwrap_or(s.len());
    &s[..end]
}

/// Replaces every `key_file: path` (or list of paths) by `key: contents` anywhere in the tree.
pub fn resolve_files(value: &mut Value, base: Option<&Path>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            let file_keys: Vec<String> = map
                .keys()
                .filter(|k| k.ends_with("_file"))
                .cloned()
                .collect();
            for key in file_keys {
                let target = key.trim_end_matches("_file").to_string();
                let spec = map.remove(&key).unwrap_or(Value::Null);
                let contents = match spec {
                    Value::Null => continue,
                    Value::String(p) => Value::String(read_secret(&p, base, &key)?),
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .map(|i| match i {
                                Value::String(p) => read_secret(p, base, &key).map(Value::String),
                                _ => Err(format!("`{key}` must be a path or a list of paths")),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(format!("`{key}` must be a path or a list of paths")),
                };
                if map.contains_key(&target) {
                    return Err(format!("both `{target}` and `{key}` are set; keep one"));
                }
                map.insert(target, contents);
            }
            for v in map.values_mut() {
                resolve_files(v, base)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                resolve_files(v, base)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn read_secret(path: &str, base: Option<&Path>, key: &str) -> Result<String, String> {
    let p = Path::new(path);
    let full = match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    };
    let text = std::fs::read_to_string(&full)
        .map_err(|e| format!("`{key}`: cannot read {}: {e}", full.display()))?;
    // Files written by `echo` or editors end in a newline that is not part of the secret.
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_default_and_escape() {
        assert_eq!(expand_with("x ${A} y", &env).unwrap(), "x alpha y");
        assert_eq!(expand_with("${B:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand_with("$${A} $5", &env).unwrap(), "${A} $5");
    }

    #[test]
    fn unset_variable_is_named() {
        let err = expand_with("k: ${MISSING}", &env).unwrap_err();
        assert!(err.contains("MISSING"), "{err}");
        assert!(expand_with("${A", &env).is_err());
        let mut v = serde_json::json!({"sources": {"gh": {"secrets": ["${MISSING}"]}}});
        let err = expand_tree(&mut v, "", &env).unwrap_err();
        assert_eq!(
            err,
            "`sources.gh.secrets[0]`: environment variable `MISSING` is not set \
             (use `${MISSING:-default}` for a default)"
        );
    }

    #[test]
    fn file_keys_are_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s1"), "one\n").unwrap();
        std::fs::write(dir.path().join("s2"), "two").unwrap();
        let mut v = serde_json::json!({"a": {"secrets_file": ["s1", "s2"], "token_file": "s1"}});
        resolve_files(&mut v, Some(dir.path())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": {"secrets": ["one", "two"], "token": "one"}})
        );
        let mut both = serde_json::json!({"token": "x", "token_file": "s1"});
        assert!(resolve_files(&mut both, Some(dir.path())).is_err());
    }
}
