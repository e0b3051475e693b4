//! What a reply target must look like before the bridge builds a URL from it.

/// A ServiceNow table name as a URL path segment may carry it.
pub fn valid_table(t: &str) -> bool {
    (1..=80).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// ServiceNow sys_ids are 32 lowercase hex digits.
pub fn valid_sys_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
