//! ServiceNow encoded queries, as far as catch-up needs them. The bridge prepends its time bound
//! and appends its ordering, so the configured query may not start a new query (`NQ`), start
//! with `OR` or order by anything.
//!
//! ServiceNow silently drops a condition on a field it does not know, so a misspelled field
//! reads every record. Empty parts are refused here; after each read, every record must also
//! satisfy the query's plain `field=value` conditions (see [`equalities`]).

/// Operators, longest first so `>=` is found before `>`. Those in [`NO_VALUE`] take no value.
const OPERATORS: &[&str] = &[
    "GT_OR_EQUALS_FIELD",
    "LT_OR_EQUALS_FIELD",
    "ISNOTEMPTY",
    "EMPTYSTRING",
    "STARTSWITH",
    "CHANGESFROM",
    "RELATIVEGT",
    "RELATIVELT",
    "RELATIVEGE",
    "RELATIVELE",
    "RELATIVEEE",
    "VALCHANGES",
    "CHANGESTO",
    "DATEPART",
    "ENDSWITH",
    "GT_FIELD",
    "LT_FIELD",
    "MORETHAN",
    "LESSTHAN",
    "ANYTHING",
    "NOT LIKE",
    "NOTLIKE",
    "BETWEEN",
    "DYNAMIC",
    "ISEMPTY",
    "NSAMEAS",
    "NOT IN",
    "SAMEAS",
    "NOTON",
    "NOTIN",
    "LIKE",
    "!=",
    ">=",
    "<=",
    "IN",
    "ON",
    "=",
    ">",
    "<",
];
const NO_VALUE: &[&str] = &[
    "ISEMPTY",
    "ISNOTEMPTY",
    "ANYTHING",
    "EMPTYSTRING",
    "VALCHANGES",
];

/// A ServiceNow field name (`category`, `cmdb_ci.name`).
pub fn field_name(f: &str) -> bool {
    (1..=80).contains(&f.len())
        && f.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && f.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// One condition: field, operator, value.
fn condition(part: &str) -> Result<(&str, &str, &str), String> {
    let end = part
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(part.len());
    let (field, rest) = part.split_at(end);
    if !field_name(field) {
        return Err(format!("`{part}` does not start with a field name"));
    }
    let op = OPERATORS
        .iter()
        .find(|op| rest.starts_with(**op))
        .ok_or_else(|| format!("`{part}` has no known operator after `{field}`"))?;
    let value = &rest[op.len()..];
    if value.trim().is_empty() && !NO_VALUE.contains(op) {
        return Err(format!(
            "`{part}` compares with an empty value (an unset variable?); use {field}ISEMPTY"
        ));
    }
    Ok((field, op, value))
}

/// Refuses what would read more than meant: empty parts, `NQ`, a leading `OR`, `ORDERBY`.
pub fn validate(query: &str) -> Result<(), String> {
    if query.trim().is_empty() {
        return Err("is empty; leave it out to read every record of the table".into());
    }
    for (i, part) in query.split('^').enumerate() {
        if part.trim().is_empty() {
            return Err(format!(
                "condition {} is empty (`^^`, or `^` at either end)",
                i + 1
            ));
        }
        if part == "EQ" {
            continue; // the end marker of a copied filter
        }
        if part.starts_with("NQ") {
            return Err(
                "`^NQ` starts a new query, which the bridge's time bound would not cover".into(),
            );
        }
        if part.starts_with("ORDERBY") || part.starts_with("GROUPBY") {
            return Err("the bridge orders by sys_updated_on itself; remove ORDERBY".into());
        }
        let cond = match part.strip_prefix("OR") {
            Some(_) if i == 0 => {
                return Err("starts with OR, which would OR with the bridge's time bound".into())
            }
            Some(rest) => rest,
            None => part,
        };
        condition(cond)?;
    }
    Ok(())
}

/// The plain `field=value` conditions every record must satisfy: AND-ed (no `OR` next to
/// them), on a field of the record itself (no dot-walking).
pub fn equalities(query: &str) -> Vec<(String, String)> {
    let parts: Vec<&str> = query.split('^').collect();
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let ored =
            part.starts_with("OR") || parts.get(i + 1).is_some_and(|next| next.starts_with("OR"));
        if ored {
            continue;
        }
        if let Ok((field, "=", value)) = condition(part) {
            if !field.contains('.') && !value.starts_with("javascript:") {
                out.push((field.to_string(), value.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_queries_pass() {
        for q in [
            "category=disk_full",
            "active=true^priority<=2^category=disk_full^ORcategory=service_down",
            "short_descriptionLIKEdisk^assigned_toISEMPTY^EQ",
            "sys_created_on>=javascript:gs.daysAgo(1)",
            "cmdb_ci.name=web01",
        ] {
            assert_eq!(validate(q), Ok(()), "{q}");
        }
    }

    #[test]
    fn risky_queries_are_named() {
        for (q, needle) in [
            ("", "is empty"),
            ("category=disk_full^", "condition 2 is empty"),
            ("a=1^^b=2", "condition 2 is empty"),
            ("category=", "empty value"),
            ("ORcategory=x", "starts with OR"),
            ("a=1^NQb=2", "NQ"),
            ("a=1^ORDERBYnumber", "ORDERBY"),
            ("Category=x", "field name"),
            ("category~x", "no known operator"),
        ] {
            let e = validate(q).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
        }
    }

    #[test]
    fn equalities_skip_or_groups_and_dot_walks() {
        let q = "category=disk_full^priority=1^ORpriority=2^cmdb_ci.name=x^active=true";
        assert_eq!(
            equalities(q),
            [
                ("category".to_string(), "disk_full".to_string()),
                ("active".to_string(), "true".to_string())
            ]
        );
    }
}
