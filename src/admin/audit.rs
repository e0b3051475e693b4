//! The audit trail as the page and the API read it.

use super::query::{AuditQuery, DEFAULT_LIMIT};
use super::{Admin, Result};
use crate::operators::audit::{self, AuditFilter, AuditRow};

/// A page of the audit trail, newest first.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditRow>,
    /// `before=` for the older page; null on the oldest.
    pub next_before: Option<i64>,
}

/// How many actions the event and rules pages show.
const ON_PAGE: i64 = 20;

impl Admin {
    pub async fn audit(&self, q: &AuditQuery) -> Result<AuditPage> {
        let f = AuditFilter {
            actor: q.actor.clone(),
            target: q.target.clone(),
            before: q.before,
            limit: q.limit.unwrap_or(DEFAULT_LIMIT),
        };
        let (entries, more) = audit::list(&self.pool, &f).await?;
        Ok(AuditPage {
            next_before: more.then(|| entries.last().map(|e| e.id)).flatten(),
            entries,
        })
    }

    /// The latest actions on one target (`audit::event(id)`, `audit::rule(name)`).
    pub async fn audit_of(&self, target: &str) -> Result<Vec<AuditRow>> {
        let f = AuditFilter {
            target: Some(target.to_string()),
            limit: ON_PAGE,
            ..AuditFilter::default()
        };
        Ok(audit::list(&self.pool, &f).await?.0)
    }

    /// The latest actions on any rule.
    pub async fn audit_of_rules(&self) -> Result<Vec<AuditRow>> {
        Ok(audit::of_rules(&self.pool, ON_PAGE).await?)
    }
}
