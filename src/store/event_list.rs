//! The event list: filters, search, and cursor pages in both directions.
//!
//! Search (`q`) is case-insensitive. A fragment anywhere is matched against
//! `aap_bridge_ticket_keys(ticket)` (ticket number, PagerDuty incident id, `owner/repo#number`),
//! which a trigram index covers at any table size, and against the payload text of the newest
//! `PAYLOAD_WINDOW` events only: a payload scan of every event is what a million-event table
//! cannot afford. Random identifiers (delivery id, ServiceNow sys_id) are matched by their
//! beginning through B-trees (`id_prefix`): trigrams of random ids cost the ingest path more
//! than the rest of its insert (migration `20261208000010_search_keys`).

use super::admin::{EventSummary, SUMMARY};
use crate::domain::{paging, EventState};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// How many of the newest events a search also looks for in their payload text.
pub const PAYLOAD_WINDOW: i64 = 20_000;

/// Filters for listing events; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub source: Option<String>,
    pub state: Option<EventState>,
    /// Only events with a launch in this state.
    pub launch_state: Option<crate::domain::LaunchState>,
    pub category: Option<String>,
    pub event_type: Option<String>,
    /// `ticket.number`, exactly as the source gave it.
    pub ticket: Option<String>,
    /// A fragment to search for (see the module doc).
    pub search: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only events older than this one (ids are UUIDv7, so time-ordered): the next page.
    pub before: Option<Uuid>,
    /// Only events newer than this one: the page above.
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// `text` as a LIKE pattern matching it anywhere, lower-cased, its wildcards taken literally.
pub fn fragment(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The search text as the beginning of an id, as `aap_bridge_id_key` stores it: lower-cased,
/// after its last `:` (a GitHub delivery id is stored `hook_id:guid`). None when empty, since
/// the empty prefix would match every event.
pub fn id_prefix(text: &str) -> Option<String> {
    let text = text.trim();
    let key = text.rsplit(':').next().unwrap_or(text).to_lowercase();
    (!key.is_empty()).then_some(key)
}

/// A page newest first, and whether there are older and newer events beyond it.
pub async fn list_events(
    pool: &PgPool,
    f: &EventFilter,
) -> Result<(Vec<EventSummary>, bool, bool), sqlx::Error> {
    let up = paging::walks_up(f.before.is_some(), f.after.is_some());
    // Two lists of ids, not an OR: with an OR the planner walks the primary key backwards and
    // filters every row (0.7 s at a million events); this way the keys come from their indexes
    // and the payloads from the newest rows only (30 ms; README, "Benchmark"). A prefix is the
    // range [p, p || U+10FFFF) in byte order: a LIKE with a parameter cannot use a B-tree.
    let search = if f.search.is_some() {
        "AND id IN (
             SELECT id FROM events WHERE aap_bridge_ticket_keys(ticket) LIKE $10
             UNION ALL
             SELECT id FROM events
             WHERE aap_bridge_id_key(delivery_id) COLLATE \"C\" >= $14
               AND aap_bridge_id_key(delivery_id) COLLATE \"C\" < $14 || chr(1114111)
             UNION ALL
             SELECT id FROM events
             WHERE kind = 'servicenow'
               AND lower(ticket ->> 'sys_id') COLLATE \"C\" >= $14
               AND lower(ticket ->> 'sys_id') COLLATE \"C\" < $14 || chr(1114111)
             UNION ALL
             SELECT id FROM (SELECT id, payload FROM events ORDER BY id DESC LIMIT $12) newest
             WHERE lower(payload::text) LIKE $10)"
    } else {
        "AND $10::text IS NULL AND $12::int8 IS NOT NULL AND $14::text IS NULL"
    };
    let rows: Vec<EventSummary> = sqlx::query_as(&format!(
        "SELECT {SUMMARY} FROM events
         WHERE ($1::text IS NULL OR source = $1)
           AND ($2::text IS NULL OR state = $2)
           AND ($3::text IS NULL OR category = $3)
           AND ($4::text IS NULL OR event_type = $4)
           AND ($5::timestamptz IS NULL OR received_at >= $5)
           AND ($6::timestamptz IS NULL OR received_at < $6)
           AND ($7::uuid IS NULL OR id < $7)
           AND ($9::text IS NULL OR ticket ->> 'number' = $9)
           AND ($11::uuid IS NULL OR id > $11)
           AND ($13::text IS NULL OR EXISTS (SELECT 1 FROM launches l
                                             WHERE l.event_id = events.id AND l.state = $13))
           {search}
         ORDER BY id {} LIMIT $8",
        if up { "ASC" } else { "DESC" }
    ))
    .bind(&f.source)
    .bind(f.state)
    .bind(&f.category)
    .bind(&f.event_type)
    .bind(f.since)
    .bind(f.until)
    .bind(f.before)
    .bind(f.limit + 1)
    .bind(&f.ticket)
    .bind(f.search.as_deref().map(fragment))
    .bind(f.after)
    .bind(PAYLOAD_WINDOW)
    .bind(f.launch_state)
    .bind(f.search.as_deref().and_then(id_prefix))
    .fetch_all(pool)
    .await?;
    let page = paging::cut(rows, f.limit, f.before.is_some(), f.after.is_some());
    Ok((page.rows, page.older, page.newer))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fragments_are_literal_and_lower_case() {
        assert_eq!(super::fragment(" INC0020055 "), "%inc0020055%");
        assert_eq!(super::fragment("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(super::id_prefix(" 12345:ABCdef "), Some("abcdef".into()));
        assert_eq!(super::id_prefix("9D38"), Some("9d38".into()));
        assert_eq!(super::id_prefix("hook:"), None);
        assert_eq!(super::id_prefix("  "), None);
    }
}
