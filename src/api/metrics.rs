//! `GET /metrics` (the path is `[metrics] path`), Prometheus text. Every HTTP request is
//! counted by route template, method and status (`crate::metrics::HttpMetrics`).
//!
//! The endpoint stands outside the API's prefix. It is open by default (it names no
//! secret: job ids and counts), mounted after the credentials check; with `[metrics]
//! require_auth = true` it is one more route behind it, readable by any role. A scraper that
//! asks for OpenMetrics (`Accept: application/openmetrics-text`) gets it; any other gets the
//! Prometheus text format 0.0.4.
//!
//! Every request is counted by the gate (`gate.rs`), outermost, so that it is timed through
//! every check: a route match (no allocation), two clock reads and three atomic additions.

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::metrics::{Metrics, OPENMETRICS_TEXT, PROMETHEUS_TEXT};
use crate::scheduler::Scheduler;

/// What the `/metrics` route reads: the metrics, and the scheduler whose state a scrape
/// shows.
#[derive(Debug, Clone)]
pub struct MetricsEndpoint {
    /// The daemon's metrics.
    pub metrics: Metrics,
    /// Where `/metrics` is served (`[metrics] path`).
    pub path: String,
    /// Whether it is behind the API's credentials (`[metrics] require_auth`).
    pub require_auth: bool,
}

/// `GET /metrics`.
pub(super) async fn get_metrics(
    State((endpoint, scheduler)): State<(MetricsEndpoint, Scheduler)>,
    headers: HeaderMap,
) -> Response {
    let snapshot = scheduler.metrics_snapshot().await;
    let openmetrics = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/openmetrics-text"));
    match endpoint.metrics.encode(snapshot, openmetrics) {
        Ok(text) => {
            let content_type = if openmetrics {
                OPENMETRICS_TEXT
            } else {
                PROMETHEUS_TEXT
            };
            (
                [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
                text,
            )
                .into_response()
        }
        Err(error) => ApiError::Internal(anyhow::anyhow!("encoding the metrics failed: {error}"))
            .into_response(),
    }
}
