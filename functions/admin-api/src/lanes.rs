//! The lanes' routes of the admin API: their counts with whether each is paused, and pausing
//! and resuming one. Each pause and resume is logged with the admin's user id.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use oes_domain::email::Lane;
use oes_domain::ports::{BoxError, QueueCounts};
use oes_domain::user::UserId;
use oes_runtime::http::{ApiError, json};
use serde::Serialize;
use serde_json::json;

use crate::routes::{AdminService, unavailable};

/// A queue's counts, and for a lane whether it is paused.
#[derive(Debug, Serialize)]
pub struct QueueView {
    /// Visible, in flight, delayed.
    #[serde(flatten)]
    pub counts: QueueCounts,
    /// For a lane: whether its receiving is paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

impl AdminService {
    /// The lanes (with `paused`), then the dead-letter queue: what `GET /admin/queues` shows
    /// (and `oes-local`'s `GET /health`).
    pub async fn queue_views(&self) -> Result<Vec<QueueView>, BoxError> {
        let counts = self.queues.counts().await?;
        let mut queues = Vec::with_capacity(counts.len());
        for (i, counts) in counts.into_iter().enumerate() {
            let paused = match Lane::ALL.get(i) {
                Some(lane) => Some(self.lanes.is_paused(*lane).await?),
                None => None,
            };
            queues.push(QueueView { counts, paused });
        }
        Ok(queues)
    }
}

/// `GET /admin/queues`: the lanes (with `paused`), then the dead-letter queue.
pub(crate) async fn queues(admin: &AdminService) -> Result<Response<Body>, ApiError> {
    let queues = admin.queue_views().await.map_err(unavailable)?;
    Ok(json(StatusCode::OK, &json!({ "queues": queues })))
}

/// `POST /admin/lanes/{lane}/pause` (`paused`) and `…/resume`; a lane other than `priority` or
/// `bulk` is not found.
pub(crate) async fn switch(
    admin: &AdminService,
    lane: &str,
    paused: bool,
    admin_id: &UserId,
) -> Result<Response<Body>, ApiError> {
    let lane = Lane::parse(lane).ok_or_else(ApiError::not_found)?;
    let switched = if paused {
        admin.lanes.pause(lane).await
    } else {
        admin.lanes.resume(lane).await
    };
    switched.map_err(|e| unavailable(e.into()))?;
    let action = if paused { "paused" } else { "resumed" };
    tracing::warn!(lane = lane.as_str(), admin = %admin_id, action, "an admin switched a lane");
    Ok(json(
        StatusCode::OK,
        &json!({ "lane": lane.as_str(), "paused": paused }),
    ))
}
