//! GitHub: each hook's recent deliveries, newest first (`GET …/hooks/{id}/deliveries`, cursor
//! pages through `Link: rel="next"`), back to the checkpoint but never past GitHub's 3-day
//! redelivery window. A delivery that no attempt answered 2xx, whose guid the bridge has not
//! stored and has not asked for before, is redelivered (`POST …/deliveries/{id}/attempts`).
//!
//! `status_code` 0 means nothing answered at all; GitHub's `status=failure` filter leaves those
//! out, so every delivery is listed and judged here.

use super::github_api::{rate_low, Api, Asked, Item, Stop};
use super::{db, Redelivery, Summary};
use crate::config::{GithubPlan, Hook};
use crate::store::catch_up as store;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashSet};

/// GitHub redelivers deliveries of the last 3 days; the margin leaves time for the request.
const WINDOW: chrono::Duration = chrono::Duration::days(3);
const WINDOW_MARGIN: chrono::Duration = chrono::Duration::minutes(10);
const PER_PAGE: u32 = 100;

pub struct Github {
    plan: GithubPlan,
    api: Api,
}

impl Github {
    pub fn new(plan: GithubPlan) -> Result<Self, String> {
        let api = Api::new(&plan)?;
        Ok(Github { plan, api })
    }

    pub async fn pass(
        &self,
        pool: &PgPool,
        source: &str,
        since: Option<DateTime<Utc>>,
        summary: &mut Summary,
    ) -> Result<(), String> {
        let result = self.hooks(pool, source, since, summary).await;
        store::prune_redeliveries(pool, source).await.map_err(db)?;
        result
    }

    async fn hooks(
        &self,
        pool: &PgPool,
        source: &str,
        since: Option<DateTime<Utc>>,
        summary: &mut Summary,
    ) -> Result<(), String> {
        for hook in &self.plan.hooks {
            if !self.hook(pool, source, hook, since, summary).await? {
                break;
            }
        }
        Ok(())
    }

    /// One hook; false when the whole pass must stop (rate limit).
    async fn hook(
        &self,
        pool: &PgPool,
        source: &str,
        hook: &Hook,
        since: Option<DateTime<Utc>>,
        summary: &mut Summary,
    ) -> Result<bool, String> {
        let scope = hook.scope();
        let window = Utc::now() - WINDOW + WINDOW_MARGIN;
        let overlap = chrono::Duration::seconds(self.plan.pace.overlap_secs as i64);
        let checkpoint = store::checkpoint(pool, source, &scope).await.map_err(db)?;
        let floor = since
            .or(checkpoint.map(|c| c - overlap))
            .map_or(window, |t| t.max(window));
        summary.since = summary.since.min(floor);
        // Newest first: read pages until one reaches past the floor.
        let mut url = format!(
            "{}{}/deliveries?per_page={PER_PAGE}",
            self.plan.api_url,
            hook.path()
        );
        let mut items: Vec<Item> = Vec::new();
        loop {
            let (page, next, headers) = match self.api.list(&url).await {
                Ok(p) => p,
                Err(Stop::RateLimited(why)) => {
                    summary.stop(why);
                    return Ok(false);
                }
                Err(Stop::Failed(why)) => {
                    return Err(format!("{scope}: listing deliveries: {why}"))
                }
            };
            summary.pages += 1;
            let past = page.iter().any(|d| d.delivered_at < floor);
            items.extend(page.into_iter().filter(|d| d.delivered_at >= floor));
            if let Some(why) = rate_low(&headers) {
                summary.stop(why);
                return Ok(false);
            }
            match next {
                Some(next) if !past => url = self.api.same_origin(&next)?,
                _ => break,
            }
        }
        summary.examined += items.len() as u32;
        let newest = items.iter().map(|d| d.delivered_at).max();
        let (complete, go_on) = self
            .redeliver_missing(pool, source, hook, &items, summary)
            .await?;
        if let (true, Some(newest)) = (complete, newest) {
            store::advance(pool, source, &scope, newest)
                .await
                .map_err(db)?;
        }
        Ok(go_on)
    }

    /// Asks for each missing delivery; returns (every missing one settled, go on with the pass).
    async fn redeliver_missing(
        &self,
        pool: &PgPool,
        source: &str,
        hook: &Hook,
        items: &[Item],
        summary: &mut Summary,
    ) -> Result<(bool, bool), String> {
        // All attempts of one delivery share its guid; one 2xx among them means it arrived.
        let mut by_guid: BTreeMap<&str, Vec<&Item>> = BTreeMap::new();
        for d in items {
            by_guid.entry(d.guid.as_str()).or_default().push(d);
        }
        by_guid.retain(|_, attempts| !attempts.iter().any(|d| (200..300).contains(&d.status_code)));
        let Some(oldest) = items.iter().map(|d| d.delivered_at).min() else {
            return Ok((true, true));
        };
        let id_of = |guid: &str| format!("{}:{guid}", hook.id());
        let mut ids: Vec<String> = by_guid.keys().map(|g| id_of(g)).collect();
        let asked: HashSet<String> = store::requested(pool, source, &ids)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
        // Without X-GitHub-Hook-ID the delivery id is the bare guid.
        ids.extend(by_guid.keys().map(|g| g.to_string()));
        let after = oldest - chrono::Duration::days(1);
        let stored: HashSet<String> = store::stored_deliveries(pool, source, &ids, after)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
        let mut missing: Vec<(&str, &Item)> = by_guid
            .iter()
            .filter(|(g, _)| !stored.contains(&id_of(g)) && !stored.contains(**g))
            .filter(|(g, _)| !asked.contains(&id_of(g)))
            .map(|(g, attempts)| {
                // Redeliver the original, which GitHub keeps longest.
                let pick = attempts
                    .iter()
                    .find(|d| !d.redelivery)
                    .unwrap_or(&attempts[0]);
                (*g, *pick)
            })
            .collect();
        missing.sort_by_key(|(_, d)| d.delivered_at);
        let mut complete = true;
        for (guid, d) in missing {
            let asked_now = summary.redeliveries.len() as u32;
            if asked_now >= self.plan.pace.max_per_run {
                summary.stop(format!(
                    "max_per_run ({asked_now}) redeliveries requested; the next pass continues"
                ));
                return Ok((false, false));
            }
            let delivery_id = id_of(guid);
            if !store::claim_redelivery(pool, source, &delivery_id, d.id)
                .await
                .map_err(db)?
            {
                continue; // another pass asked for it meanwhile
            }
            summary.missing += 1;
            metrics::counter!("aap_bridge_catch_up_missing_total", "source" => source.to_string())
                .increment(1);
            let (result, keep, stop) = match self.api.ask(hook, d.id).await {
                Ok((Asked::Requested, headers)) => {
                    ("requested".to_string(), true, rate_low(&headers))
                }
                Ok((Asked::TooOld, _)) => ("too_old".to_string(), true, None),
                Ok((Asked::Gone, _)) => ("not_found".to_string(), true, None),
                Err(Stop::RateLimited(why)) => ("rate_limited".to_string(), false, Some(why)),
                Err(Stop::Failed(why)) => {
                    complete = false;
                    (format!("failed: {why}"), false, None)
                }
            };
            let label = result.split(':').next().unwrap_or("failed").to_string();
            let settled = keep.then_some(label.as_str());
            store::settle_redelivery(pool, source, &delivery_id, settled)
                .await
                .map_err(db)?;
            metrics::counter!("aap_bridge_catch_up_redeliveries_total",
                "source" => source.to_string(), "result" => label)
            .increment(1);
            summary.redeliveries.push(Redelivery {
                hook: hook.scope(),
                guid: guid.to_string(),
                delivery: d.id,
                event: match &d.action {
                    Some(a) if !d.event.is_empty() => format!("{}.{a}", d.event),
                    _ => d.event.clone(),
                },
                delivered_at: d.delivered_at,
                status_code: d.status_code,
                result,
            });
            if let Some(why) = stop {
                summary.stop(why);
                return Ok((false, false));
            }
        }
        Ok((complete, true))
    }
}
