//! `GET /metrics` (the path is `[metrics] path`), Prometheus text, and the layer that counts
//! every HTTP request by route template, method and status (`crate::metrics::HttpMetrics`).
//!
//! The endpoint stands outside the API's prefix. It is open by default (it names no
//! secret: job ids and counts), mounted after the credentials check; with `[metrics]
//! require_auth = true` it is one more route behind it, readable by any role. A scraper that
//! asks for OpenMetrics (`Accept: application/openmetrics-text`) gets it; any other gets the
//! Prometheus text format 0.0.4.
//!
//! The counting layer is the outermost, so a request is timed through every check, and it is
//! a plain tower service rather than a `from_fn` middleware: its future is the inner one and
//! a few words, not a boxed one, and a request costs a route match (no allocation), two
//! clock reads, a reference-count bump and three atomic additions. (axum clones each route's
//! whole layer stack per request, so every layer's state is one more bump: this layer holds
//! one `Arc`.)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;

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

/// The counting layer (see the module's doc).
#[derive(Debug, Clone)]
pub(super) struct CountRequests {
    metrics: Metrics,
}

impl CountRequests {
    pub(super) fn new(metrics: Metrics) -> CountRequests {
        CountRequests { metrics }
    }
}

impl<S> tower::Layer<S> for CountRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A service whose requests are counted.
#[derive(Debug, Clone)]
pub(super) struct Counted<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B> tower::Service<Request<B>> for Counted<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = self.metrics.http().route(request.uri().path());
        let method = request.method().clone();
        CountedFuture {
            inner: self.inner.call(request),
            metrics: self.metrics.clone(),
            route,
            method,
            started: Instant::now(),
        }
    }
}

pin_project! {
    /// The inner service's future, counted when it answers.
    pub(super) struct CountedFuture<F> {
        #[pin]
        inner: F,
        metrics: Metrics,
        route: usize,
        method: axum::http::Method,
        started: Instant,
    }
}

impl<F, E> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &answer {
            this.metrics.http().record(
                *this.route,
                this.method.as_str(),
                response.status().as_u16(),
                this.started.elapsed(),
            );
        }
        Poll::Ready(answer)
    }
}
