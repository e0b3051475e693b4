//! The deliveries log as the page and the API read it.

use super::query::DeliveryQuery;
use super::{Admin, Result};
use crate::deliveries::sql::{self, DeliveryRow};

/// A page of deliveries, newest first, with the cursors of the pages below and above it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryRow>,
    /// `before=` for the older page; null on the oldest.
    pub next_before: Option<i64>,
    /// `after=` for the newer page; null on the newest.
    pub prev_after: Option<i64>,
}

impl Admin {
    pub async fn deliveries(&self, query: &DeliveryQuery) -> Result<DeliveryPage> {
        let (rows, older, newer) = sql::list(&self.pool, &query.filter()).await?;
        Ok(DeliveryPage {
            next_before: older.then(|| rows.last().map(|r| r.id)).flatten(),
            prev_after: newer.then(|| rows.first().map(|r| r.id)).flatten(),
            deliveries: rows,
        })
    }
}
