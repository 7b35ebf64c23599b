//! HTTP requests by route, method and status, with their latency, counted without a lock or
//! an allocation per request: the route is found by matching the path against the route
//! templates (axum's own matcher, `matchit`, with the same `{id}` syntax, built once), and
//! every (route, method, status) has its atomic counter allocated up front. A path no route
//! has counts under [`UNMATCHED`]; a request refused before it was routed (401, 403) still
//! counts under the route it asked for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::histogram::{Buckets, LATENCY_BUCKETS};

/// The route label of a path that no route has.
pub const UNMATCHED: &str = "unmatched";

/// Methods with a label of their own; any other is `other`.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other",
];

/// Statuses with a label of their own (what tickd and hyper answer); any other is counted
/// under its class (`2xx` ... `5xx`, `other`).
const STATUSES: [u16; 31] = [
    200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 406, 408, 409, 410,
    411, 413, 414, 415, 416, 421, 422, 429, 431, 500, 502, 503,
];
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
const STATUS_SLOTS: usize = STATUSES.len() + CLASSES.len();

/// One route's counts.
#[derive(Debug)]
struct RouteStats {
    /// `[method][status slot]`.
    requests: Box<[[AtomicU64; STATUS_SLOTS]]>,
    /// Latency per method.
    latency: Box<[Buckets]>,
}

impl RouteStats {
    fn new() -> RouteStats {
        RouteStats {
            requests: (0..METHODS.len())
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            latency: (0..METHODS.len())
                .map(|_| Buckets::new(LATENCY_BUCKETS))
                .collect(),
        }
    }
}

/// The HTTP side of the metrics: see the module's doc.
#[derive(Debug)]
pub struct HttpMetrics {
    matcher: matchit::Router<usize>,
    /// Route templates by index; the last is [`UNMATCHED`].
    routes: Vec<Box<str>>,
    stats: Box<[RouteStats]>,
}

impl HttpMetrics {
    /// Counts for these route templates (axum's syntax: `/jobs/{id}`). A template that does
    /// not parse, or comes twice, is left out: its requests count as unmatched.
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> HttpMetrics {
        let mut matcher = matchit::Router::new();
        let mut routes: Vec<Box<str>> = Vec::new();
        for template in templates {
            if matcher.insert(template, routes.len()).is_ok() {
                routes.push(template.into());
            } else {
                tracing::warn!(
                    "metrics: route {template:?} cannot be matched; counted as unmatched"
                );
            }
        }
        routes.push(UNMATCHED.into());
        let stats = routes.iter().map(|_| RouteStats::new()).collect();
        HttpMetrics {
            matcher,
            routes,
            stats,
        }
    }

    /// The route a request for `path` takes (an index for [`HttpMetrics::record`]).
    pub fn route(&self, path: &str) -> usize {
        match self.matcher.at(path) {
            Ok(found) => *found.value,
            Err(_) => self.routes.len() - 1,
        }
    }

    /// Counts a request to `route` (from [`HttpMetrics::route`]) answered `status` after
    /// `took`.
    pub fn record(&self, route: usize, method: &str, status: u16, took: Duration) {
        let Some(stats) = self.stats.get(route) else {
            return;
        };
        let method = METHODS[..METHODS.len() - 1]
            .iter()
            .position(|m| *m == method)
            .unwrap_or(METHODS.len() - 1);
        if let Some(counts) = stats.requests.get(method) {
            counts[status_slot(status)].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(latency) = stats.latency.get(method) {
            latency.observe(took);
        }
    }
}

/// Where `status` is counted.
fn status_slot(status: u16) -> usize {
    match STATUSES.binary_search(&status) {
        Ok(slot) => slot,
        Err(_) => {
            let class = match status {
                100..=199 => 0,
                200..=299 => 1,
                300..=399 => 2,
                400..=499 => 3,
                500..=599 => 4,
                _ => 5,
            };
            STATUSES.len() + class
        }
    }
}

/// The label of a status slot.
fn status_label(slot: usize, digits: &mut itoa_buf::Buf) -> &str {
    match STATUSES.get(slot) {
        Some(code) => digits.format(*code),
        None => CLASSES[slot - STATUSES.len()],
    }
}

/// Three decimal digits without an allocation.
mod itoa_buf {
    #[derive(Default)]
    pub struct Buf([u8; 3]);

    impl Buf {
        pub fn format(&mut self, code: u16) -> &str {
            let code = code.min(999);
            self.0 = [
                b'0' + (code / 100) as u8,
                b'0' + (code / 10 % 10) as u8,
                b'0' + (code % 10) as u8,
            ];
            std::str::from_utf8(&self.0).unwrap_or("000")
        }
    }
}

impl Collector for HttpMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut requests = encoder.encode_descriptor(
            "tickd_http_requests",
            "HTTP requests answered, by route template, method and status",
            None,
            MetricType::Counter,
        )?;
        for (route, stats) in self.routes.iter().zip(self.stats.iter()) {
            for (method, counts) in METHODS.iter().zip(stats.requests.iter()) {
                for (slot, count) in counts.iter().enumerate() {
                    let count = count.load(Ordering::Relaxed);
                    if count == 0 {
                        continue;
                    }
                    let mut digits = itoa_buf::Buf::default();
                    let status = status_label(slot, &mut digits);
                    let labels = [("method", *method), ("route", &**route), ("status", status)];
                    ConstCounter::new(count).encode(requests.encode_family(&labels)?)?;
                }
            }
        }
        let mut latency = encoder.encode_descriptor(
            "tickd_http_request_duration_seconds",
            "Time from a request's arrival at the router to its response head, by route template and method",
            None,
            MetricType::Histogram,
        )?;
        for (route, stats) in self.routes.iter().zip(self.stats.iter()) {
            for (method, buckets) in METHODS.iter().zip(stats.latency.iter()) {
                if buckets.count() == 0 {
                    continue;
                }
                let labels = [("method", *method), ("route", &**route)];
                buckets.encode_into(&mut latency.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_counted_under_their_route_template() {
        let http = HttpMetrics::new(["/scheduler", "/scheduler/jobs", "/scheduler/jobs/{id}"]);
        assert_eq!(http.route("/scheduler/jobs/abc"), 2);
        assert_eq!(http.route("/scheduler/jobs"), 1);
        assert_eq!(
            http.route("/scheduler/jobs/"),
            3,
            "no trailing slash, as the router"
        );
        assert_eq!(http.route("/elsewhere"), 3);
        assert_eq!(&*http.routes[3], UNMATCHED);
    }

    #[test]
    fn statuses_have_slots_or_classes() {
        assert!(STATUSES.windows(2).all(|w| w[0] < w[1]));
        let mut digits = itoa_buf::Buf::default();
        assert_eq!(status_label(status_slot(404), &mut digits), "404");
        assert_eq!(status_label(status_slot(418), &mut digits), "4xx");
        assert_eq!(status_label(status_slot(999), &mut digits), "other");
    }
}
