//! The calls the bridge makes, typed.

use super::{
    read_json, Canceled, Controller, ControllerError, JobRecord, JobState, JobStates,
    LaunchOutcome, Launched, Me, Template, TemplateKind,
};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// The server's page size cap.
pub const PAGE_SIZE: usize = 200;

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

impl Controller {
    pub(super) async fn get(&self, path: &str, what: &str) -> Result<Value, ControllerError> {
        read_json(self.call(Method::GET, path, None).await?, what).await
    }

    /// Every item of a paginated list, following `next`.
    async fn get_all(&self, first: String, what: &str) -> Result<Vec<Value>, ControllerError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        while let Some(path) = next {
            let page = self.get(&path, what).await?;
            if let Some(items) = page.get("results").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            next = match page.get("next").and_then(Value::as_str) {
                Some(link) => Some(self.t.follow(link, what)?),
                None => None,
            };
        }
        Ok(out)
    }

    pub async fn me(&self) -> Result<Me, ControllerError> {
        let root = &self.api().await?.root;
        let v = self.get(&format!("{root}me/"), "me").await?;
        let u = v
            .pointer("/results/0")
            .ok_or_else(|| ControllerError::Protocol("me/ returned no user".into()))?;
        Ok(Me {
            id: u.get("id").and_then(Value::as_i64).unwrap_or_default(),
            username: u
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }

    pub async fn template(&self, kind: TemplateKind, id: i64) -> Result<Template, ControllerError> {
        let root = &self.api().await?.root;
        let what = format!("{} template {id}", kind.as_str());
        let v = self
            .get(&format!("{root}{}/{id}/", kind.collection()), &what)
            .await?;
        Ok(template_from(&v, kind))
    }

    pub async fn template_by_name(
        &self,
        kind: TemplateKind,
        name: &str,
        organization: Option<&str>,
    ) -> Result<Template, ControllerError> {
        let root = &self.api().await?.root;
        let mut q = vec![("name", name)];
        if let Some(org) = organization {
            q.push(("organization__name", org));
        }
        let what = format!(
            "{} template `{name}`{}",
            kind.as_str(),
            organization
                .map(|o| format!(" in organization `{o}`"))
                .unwrap_or_default()
        );
        let v = self
            .get(
                &format!("{root}{}/?{}", kind.collection(), query(&q)),
                &what,
            )
            .await?;
        let results = v
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match results.as_slice() {
            [one] => Ok(template_from(one, kind)),
            [] => Err(ControllerError::NotFound(what)),
            _ => Err(ControllerError::Config(format!(
                "{what} matches {} templates; name the organization",
                results.len()
            ))),
        }
    }

    /// What the template prompts for (`GET …/launch/`).
    pub async fn launch_info(&self, kind: TemplateKind, id: i64) -> Result<Value, ControllerError> {
        let root = &self.api().await?.root;
        self.get(
            &format!("{root}{}/{id}/launch/", kind.collection()),
            "launch info",
        )
        .await
    }

    /// Launches once. Never retried after it may have reached the controller: on `NoAnswer` or
    /// `Unavailable` the caller must reconcile (see the dispatcher).
    pub async fn launch(
        &self,
        kind: TemplateKind,
        id: i64,
        body: &Value,
    ) -> Result<LaunchOutcome, ControllerError> {
        let root = &self.api().await?.root;
        let path = format!("{root}{}/{id}/launch/", kind.collection());
        let resp = self.call(Method::POST, &path, Some(body)).await?;
        let v = read_json(resp, &format!("launch of {} template {id}", kind.as_str())).await?;
        let key = match kind {
            TemplateKind::Job => "job",
            TemplateKind::Workflow => "workflow_job",
        };
        let job_id = v
            .get(key)
            .or_else(|| v.get("id"))
            .and_then(Value::as_i64)
            .ok_or_else(|| ControllerError::Protocol(format!("launch answer has no `{key}`")))?;
        let launched = Launched {
            job_id,
            kind,
            status: v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("pending")
                .to_string(),
        };
        let ignored: Map<String, Value> = v
            .get("ignored_fields")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Ok(if ignored.is_empty() {
            LaunchOutcome::Launched(launched)
        } else {
            LaunchOutcome::Partial {
                launched,
                ignored_fields: ignored,
            }
        })
    }

    pub async fn job(&self, kind: TemplateKind, id: i64) -> Result<Value, ControllerError> {
        let root = &self.api().await?.root;
        self.get(
            &format!("{root}{}/{id}/", kind.jobs()),
            &format!("job {id}"),
        )
        .await
    }

    /// Asks the controller to cancel a job (`POST jobs/{id}/cancel/` or `workflow_jobs/…`).
    /// A 405 means it had already finished, a 404 that it is gone: neither is an error.
    pub async fn cancel_job(
        &self,
        kind: TemplateKind,
        id: i64,
    ) -> Result<Canceled, ControllerError> {
        let root = &self.api().await?.root;
        let path = format!("{root}{}/{id}/cancel/", kind.jobs());
        let resp = self.call(Method::POST, &path, None).await?;
        match resp.status().as_u16() {
            200..=299 => Ok(Canceled::Canceled),
            405 => Ok(Canceled::AlreadyDone),
            404 => Ok(Canceled::Gone),
            _ => Err(read_json(resp, &format!("cancel of job {id}"))
                .await
                .err()
                .unwrap_or_else(|| ControllerError::Protocol("cancel: unexpected answer".into()))),
        }
    }

    /// Waits, at most `wait`, until the controller has saved all of a finished job's output:
    /// a job turns `failed` before its events are processed, and its stdout is short until then.
    /// Reads `event_processing_finished` on the job detail (the `unified_jobs` list lacks it).
    /// False if it did not finish in time or the job could not be read.
    pub async fn output_settled(&self, id: i64, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(200);
        loop {
            match self.job(TemplateKind::Job, id).await {
                // A controller that does not report it has nothing to wait for.
                Ok(v) => match v.get("event_processing_finished").and_then(Value::as_bool) {
                    Some(false) => {}
                    _ => return true,
                },
                Err(e @ ControllerError::NotFound(_)) => {
                    tracing::debug!(job_id = id, error = %e, "job gone while waiting for its output");
                    return false;
                }
                Err(e) => tracing::debug!(job_id = id, error = %e, "cannot read the job yet"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Status of many jobs in as few requests as the server allows (200 ids per page).
    pub async fn job_states(&self, ids: &[i64]) -> Result<JobStates, ControllerError> {
        let root = self.api().await?.root.clone();
        let mut out = JobStates::default();
        let mut first_error = None;
        for chunk in ids.chunks(PAGE_SIZE) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let size = PAGE_SIZE.to_string();
            let first = format!(
                "{root}unified_jobs/?{}",
                query(&[("id__in", &list), ("page_size", &size)])
            );
            let page = match self.get_all(first, "unified jobs").await {
                Ok(items) => items
                    .into_iter()
                    .map(|item| {
                        serde_json::from_value::<JobState>(item).map_err(|e| {
                            ControllerError::Protocol(format!("unified_jobs item: {e}"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>(),
                Err(e) => Err(e),
            };
            match page {
                Ok(states) => out.found.extend(states),
                // One failed page does not cost the round the others: its jobs are read next
                // round (and are not "missing" meanwhile).
                Err(e) => {
                    tracing::warn!(jobs = chunk.len(), error = %e, "a unified_jobs page failed; its jobs wait for the next round");
                    out.unread.extend_from_slice(chunk);
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if out.unread.len() == ids.len() => Err(e),
            _ => Ok(out),
        }
    }

    /// Jobs of a template created at or after `since`, with their extra_vars. The controller
    /// refuses filters on extra_vars (403), so the caller searches them.
    pub async fn jobs_since(
        &self,
        kind: TemplateKind,
        template_id: i64,
        since: DateTime<Utc>,
    ) -> Result<Vec<JobRecord>, ControllerError> {
        let root = &self.api().await?.root;
        let filter = match kind {
            TemplateKind::Job => "job_template",
            TemplateKind::Workflow => "workflow_job_template",
        };
        let (id, since, size) = (
            template_id.to_string(),
            since.to_rfc3339_opts(SecondsFormat::Micros, true),
            PAGE_SIZE.to_string(),
        );
        let first = format!(
            "{root}{}/?{}",
            kind.jobs(),
            query(&[
                (filter, &id),
                ("created__gte", &since),
                ("page_size", &size),
                ("order_by", "created")
            ])
        );
        let items = self.get_all(first, "recent jobs").await?;
        Ok(items
            .iter()
            .map(|j| JobRecord {
                id: j.get("id").and_then(Value::as_i64).unwrap_or_default(),
                status: j
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                created: j
                    .get("created")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                extra_vars: match j.get("extra_vars") {
                    Some(Value::String(s)) => {
                        serde_json::from_str(s).unwrap_or(Value::String(s.clone()))
                    }
                    Some(v) => v.clone(),
                    None => Value::Null,
                },
            })
            .collect())
    }

    /// The last `lines` lines of a job's output (for failure post-backs).
    pub async fn stdout_tail(&self, id: i64, lines: usize) -> Result<String, ControllerError> {
        let root = &self.api().await?.root;
        let resp = self
            .call(
                Method::GET,
                &format!("{root}jobs/{id}/stdout/?format=txt"),
                None,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(read_json(resp, &format!("stdout of job {id}"))
                .await
                .err()
                .unwrap_or_else(|| {
                    ControllerError::Protocol("stdout: unexpected success".into())
                }));
        }
        let text = resp
            .text()
            .await
            .map_err(|e| ControllerError::NoAnswer(e.without_url().to_string()))?;
        let all: Vec<&str> = text.lines().collect();
        Ok(all[all.len().saturating_sub(lines)..].join("\n"))
    }
}

fn template_from(v: &Value, kind: TemplateKind) -> Template {
    Template {
        id: v.get("id").and_then(Value::as_i64).unwrap_or_default(),
        kind,
        name: v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        organization: v
            .pointer("/summary_fields/organization/name")
            .and_then(Value::as_str)
            .map(str::to_string),
        ask_variables_on_launch: v
            .get("ask_variables_on_launch")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}
