//! An instant controller for the pipeline benchmark: launches answer 201 at once and every job
//! stays `running`, so the tracker keeps polling all of them.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Default)]
pub struct Recorder {
    next_id: AtomicI64,
    /// aap_bridge_event_id -> when the launch POST arrived.
    pub launches: Mutex<HashMap<String, Instant>>,
    /// When each `unified_jobs` request arrived.
    pub polls: Mutex<Vec<Instant>>,
}

pub async fn start() -> anyhow::Result<(String, Arc<Recorder>)> {
    let rec = Arc::new(Recorder::default());
    let app = Router::new()
        .route(
            "/api/v2/ping/",
            get(|| async { Json(json!({"version": "bench"})) }),
        )
        .route(
            "/api/v2/me/",
            get(|| async {
                Json(json!({"count": 1, "results": [{"id": 1, "username": "bench"}]}))
            }),
        )
        .route("/api/v2/job_templates/{id}/launch/", post(launch))
        .route("/api/v2/unified_jobs/", get(unified_jobs))
        .route(
            "/api/v2/jobs/",
            get(|| async { Json(json!({"count": 0, "next": null, "results": []})) }),
        )
        .with_state(rec.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, rec))
}

async fn launch(
    State(rec): State<Arc<Recorder>>,
    Path(_id): Path<i64>,
    Json(body): Json<Value>,
) -> (axum::http::StatusCode, Json<Value>) {
    let now = Instant::now();
    if let Some(e) = body
        .pointer("/extra_vars/aap_bridge_event_id")
        .and_then(Value::as_str)
    {
        rec.launches.lock().unwrap().insert(e.to_string(), now);
    }
    let id = rec.next_id.fetch_add(1, Ordering::SeqCst) + 1;
    let answer =
        json!({"job": id, "id": id, "type": "job", "status": "pending", "ignored_fields": {}});
    (axum::http::StatusCode::CREATED, Json(answer))
}

async fn unified_jobs(
    State(rec): State<Arc<Recorder>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    rec.polls.lock().unwrap().push(Instant::now());
    let results: Vec<Value> = q
        .get("id__in")
        .map(|ids| {
            ids.split(',')
                .filter_map(|s| s.parse::<i64>().ok())
                .map(|id| json!({"id": id, "type": "job", "status": "running", "failed": false,
                                 "started": "2026-11-22T00:00:00Z", "finished": null, "elapsed": 0.0}))
                .collect()
        })
        .unwrap_or_default();
    Json(json!({"count": results.len(), "next": null, "previous": null, "results": results}))
}
