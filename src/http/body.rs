//! Reading a hook's body within its size limit, a deadline and the process-wide byte budget.
//!
//! Every byte of buffer is reserved from `budget` (a semaphore of bytes) before it is allocated:
//! the declared Content-Length up front, or, for chunked bodies, each growth of the buffer. A
//! stalled upload therefore holds at most what it reserved, and the sum over all uploads stays
//! under `server.max_inflight_body_bytes`. Past it the request gets 503, not an allocation.

use crate::config::ServerSettings;
use crate::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct HookLimits {
    pub budget: Arc<Semaphore>,
    pub body_timeout: Duration,
    pub max_concurrent: usize,
}

impl HookLimits {
    pub fn new(s: &ServerSettings) -> Self {
        Self {
            budget: Arc::new(Semaphore::new(s.max_inflight_body_bytes)),
            body_timeout: Duration::from_secs(s.body_timeout_secs),
            max_concurrent: s.max_concurrent_hooks,
        }
    }
}

/// The body and its reservation; the bytes count against the budget until both are dropped.
pub struct Received {
    pub bytes: Bytes,
    pub _reserved: Option<OwnedSemaphorePermit>,
}

pub async fn read(
    limits: &HookLimits,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Received, ApiError> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let mut buf = Buffer {
        limits,
        limit,
        data: Vec::new(),
        reserved: None,
    };
    if let Some(n) = declared {
        buf.grow_to(n as usize)?;
    }
    let secs = limits.body_timeout.as_secs();
    match tokio::time::timeout(limits.body_timeout, buf.fill(body)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            metrics::counter!("aap_bridge_requests_shed_total", "reason" => "body_timeout")
                .increment(1);
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {secs} s"),
            )
            .closing());
        }
    }
    Ok(Received {
        bytes: Bytes::from(buf.data),
        _reserved: buf.reserved,
    })
}

struct Buffer<'a> {
    limits: &'a HookLimits,
    limit: usize,
    data: Vec<u8>,
    reserved: Option<OwnedSemaphorePermit>,
}

impl Buffer<'_> {
    async fn fill(&mut self, mut body: Body) -> Result<(), ApiError> {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            })?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            let need = self.data.len() + chunk.len();
            if need > self.limit {
                return Err(ApiError::too_large(self.limit));
            }
            if need > self.data.capacity() {
                // Doubling keeps chunked bodies linear; never past the limit.
                let cap = need.max(self.data.capacity() * 2).min(self.limit);
                self.grow_to(cap)?;
            }
            self.data.extend_from_slice(&chunk);
        }
        Ok(())
    }

    /// Reserves, then allocates, capacity for `cap` bytes in all.
    fn grow_to(&mut self, cap: usize) -> Result<(), ApiError> {
        let held = self.reserved.as_ref().map_or(0, |p| p.num_permits());
        if cap > held {
            let more = u32::try_from(cap - held).map_err(|_| ApiError::too_large(self.limit))?;
            let permit = self
                .limits
                .budget
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| {
                    metrics::counter!("aap_bridge_requests_shed_total", "reason" => "body_budget")
                        .increment(1);
                    ApiError::unavailable(
                        "too many request bodies in flight (server.max_inflight_body_bytes); retry",
                    )
                    .closing()
                })?;
            match &mut self.reserved {
                Some(p) => p.merge(permit),
                None => self.reserved = Some(permit),
            }
        }
        self.data.reserve_exact(cap - self.data.len());
        Ok(())
    }
}
