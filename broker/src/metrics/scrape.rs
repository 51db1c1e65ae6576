//! Answering one HTTP request: `GET /metrics` gets the cached body, or waits for
//! the one refresh under way ([`BodyCache`] decides which); `/healthz` and
//! `/readyz` answer 200 or 503 from the loop's [`Health`] without asking it;
//! other paths and methods get a short error.
//!
//! A refresh runs as a task of its own, so a scraper that hangs up mid-refresh
//! cancels nothing; its outcome goes to every waiting scrape through a watch
//! channel. It asks the broker loop through [`StatsHandle::get`] (bounded by
//! [`REFRESH_TIMEOUT`]) and renders here, on the metrics thread.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;

use super::cache::{BodyCache, Lookup};
use super::render::render;
use crate::serve::StatsHandle;

/// How long a refresh waits for the broker loop's figures.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a refresh gave: a body, or why there is none.
type Outcome = Result<Bytes, &'static str>;

/// The bodies scrapes are answered with.
#[derive(Debug)]
pub struct Scrapes {
    cache: Mutex<BodyCache>,
    /// The outcome of the last refresh, for the scrapes waiting for it.
    outcome: watch::Sender<Option<Outcome>>,
    stats: StatsHandle,
    started: Instant,
    max_body: usize,
}

impl Scrapes {
    /// Scrapes of the figures `stats` gives, each body fresh for `period` and at
    /// most `max_body` bytes long.
    pub fn new(stats: StatsHandle, period: Duration, max_body: usize) -> Scrapes {
        Scrapes {
            cache: Mutex::new(BodyCache::new(period)),
            outcome: watch::Sender::new(None),
            stats,
            started: zmtp::clock::now(),
            max_body,
        }
    }

    /// The answer to `request`.
    pub async fn answer(self: &Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        let probe = match request.uri().path() {
            "/metrics" => None,
            "/healthz" => Some(self.stats.health().liveness()),
            "/readyz" => Some(self.stats.health().readiness()),
            _ => {
                return reply(
                    StatusCode::NOT_FOUND,
                    "not found: the figures are at /metrics, probes at /healthz and /readyz\n",
                )
            }
        };
        match probe {
            Some(Ok(())) => return reply(StatusCode::OK, "ok\n"),
            Some(Err(why)) => return reply_owned(StatusCode::SERVICE_UNAVAILABLE, why),
            None => {}
        }
        match self.body().await {
            Ok(body) => {
                let mut response = Response::new(Full::new(body));
                if let Ok(value) = CONTENT_TYPE.parse() {
                    response
                        .headers_mut()
                        .insert(hyper::header::CONTENT_TYPE, value);
                }
                response
            }
            Err(why) => reply(StatusCode::SERVICE_UNAVAILABLE, why),
        }
    }

    /// The body to answer with: the cached one, or the outcome of the refresh
    /// under way (started by this scrape if none was).
    async fn body(self: &Arc<Self>) -> Outcome {
        // Subscribed before the lookup, so a refresh that ends in between is seen.
        let mut done = self.outcome.subscribe();
        let lookup = lock(&self.cache).lookup(zmtp::clock::now());
        match lookup {
            Lookup::Fresh(body) => return Ok(body),
            Lookup::Refresh => {
                tokio::spawn(self.clone().refresh());
            }
            Lookup::Wait => {}
        }
        match done.changed().await {
            Ok(()) => done
                .borrow_and_update()
                .clone()
                .unwrap_or(Err("no figures yet\n")),
            Err(_) => Err("the metrics endpoint is stopping\n"),
        }
    }

    /// Asks the broker loop for its figures, renders them, and tells the waiting
    /// scrapes.
    async fn refresh(self: Arc<Self>) {
        let asked = zmtp::clock::now();
        let outcome = match tokio::time::timeout(REFRESH_TIMEOUT, self.stats.get()).await {
            Ok(Some(stats)) => {
                let body = render(&stats, zmtp::clock::now() - self.started, self.max_body);
                lock(&self.cache).refreshed(asked, body.clone());
                Ok(body)
            }
            Ok(None) => {
                lock(&self.cache).refresh_failed();
                Err("the broker is stopping\n")
            }
            Err(_) => {
                // At most one refresh at a time: this line comes at most once per
                // REFRESH_TIMEOUT.
                tracing::warn!(
                    "metrics: the broker loop did not answer within {REFRESH_TIMEOUT:?}"
                );
                lock(&self.cache).refresh_failed();
                Err("the broker did not answer in time\n")
            }
        };
        self.outcome.send_replace(Some(outcome));
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_status(status, Bytes::from_static(body.as_bytes()))
}

fn reply_owned(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_status(status, Bytes::from(body))
}

fn with_status(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

/// The guarded value, also after a panic elsewhere (every update here is one
/// assignment, so the value is never half-made).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
