//! The Majordomo Management Interface: RFC 8's `mmi.service`, and this broker's
//! `mmi.services`, `mmi.workers` and `mmi.stats` (MessagePack bodies, see
//! [`super::snapshot`]). Any other `mmi.*` name answers `501`.
//!
//! The list answers are bounded: a body never exceeds `max_mmi_reply` bytes (the
//! list is cut short, in its sort order, to fit), and an answer is given again from
//! a small cache while the broker has not changed or for `mmi_cache` after it was
//! computed, so asking for them in a loop costs the broker little.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use zmtp::{printable, Message, PeerId};

use super::snapshot::{ServiceStats, ServiceSummary, Stats, Totals, WorkerSummary};
use super::Broker;
use crate::codec::Format;
use crate::proto::{Reply, ReplyKind, Request};

/// A service name as text (bytes that are not UTF-8 become U+FFFD).
fn name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One MessagePack frame, or `500` if `value` cannot be encoded (it always can).
fn encoded(value: &impl Serialize) -> Bytes {
    Format::MessagePack
        .encode(value)
        .unwrap_or_else(|_| Bytes::from_static(b"500"))
}

/// `items` encoded with `wrap`, as many of them (from the first) as fit in `max`
/// bytes.
fn bounded<T, W: Serialize>(items: &[T], max: usize, wrap: impl Fn(&[T]) -> W) -> Bytes {
    let whole = encoded(&wrap(items));
    if whole.len() <= max {
        return whole;
    }
    // The longest prefix that fits, by bisection: a few encodings, not one per item.
    let (mut fits, mut too_long) = (0, items.len());
    let mut best = encoded(&wrap(&items[..0]));
    while too_long - fits > 1 {
        let mid = fits + (too_long - fits) / 2;
        let body = encoded(&wrap(&items[..mid]));
        if body.len() <= max {
            fits = mid;
            best = body;
        } else {
            too_long = mid;
        }
    }
    best
}

/// Most answers the MMI cache holds.
const CACHED_ANSWERS: usize = 8;

/// MMI list answers given lately.
#[derive(Debug, Default)]
pub(super) struct Cache {
    answers: Vec<CachedAnswer>,
}

#[derive(Debug)]
struct CachedAnswer {
    service: Bytes,
    asked: Option<Bytes>,
    body: Bytes,
    at: Instant,
    generation: u64,
}

impl Broker {
    /// Answers an `mmi.*` request at once, in the client's dialect. The reply names
    /// the MMI service and carries one frame.
    pub(super) fn answer_mmi(&mut self, client: &PeerId, request: Request, now: Instant) {
        let asked = request.body.first().cloned();
        let body = match &request.service[..] {
            b"mmi.service" => {
                let asked = asked.unwrap_or_default();
                let live = self.services.get(&asked).is_some_and(|s| s.workers > 0)
                    || self.peers.serves(&asked);
                Bytes::from_static(if live { b"200" } else { b"404" })
            }
            b"mmi.services" | b"mmi.workers" | b"mmi.stats" => {
                self.list_answer(&request.service, asked, now)
            }
            _ => Bytes::from_static(b"501"),
        };
        let msg = Reply {
            service: Some(request.service.clone()),
            kind: ReplyKind::Final,
            body: Message::from(body),
        }
        .encode(request.dialect, request.enveloped);
        self.stats.replies += 1;
        let what = super::Outgoing::new("MMI", request.dialect, &request.service);
        self.send(client, what, msg);
    }

    /// The body of a list answer, from the cache when it is fresh enough.
    fn list_answer(&mut self, service: &Bytes, asked: Option<Bytes>, now: Instant) -> Bytes {
        // A name longer than any service's asks about nothing (and is not kept).
        let asked = asked.filter(|a| a.len() <= self.config.max_service_name);
        let fresh = |a: &CachedAnswer| {
            a.generation == self.generation
                || now.saturating_duration_since(a.at) < self.config.mmi_cache
        };
        if let Some(hit) = self
            .mmi_cache
            .answers
            .iter()
            .find(|a| a.service == *service && a.asked == asked && fresh(a))
        {
            return hit.body.clone();
        }
        let max = self.config.max_mmi_reply;
        let body = match &service[..] {
            b"mmi.services" => bounded(&self.services_summary(), max, |l| l.to_vec()),
            b"mmi.workers" => bounded(&self.workers_summary(asked.as_deref(), now), max, |l| {
                l.to_vec()
            }),
            _ => {
                let stats = self.stats_snapshot();
                bounded(&stats.services, max, |l| Stats {
                    totals: stats.totals.clone(),
                    services: l.to_vec(),
                    peers: stats.peers.clone(),
                })
            }
        };
        let answers = &mut self.mmi_cache.answers;
        answers.retain(|a| !(a.service == *service && a.asked == asked));
        if answers.len() >= CACHED_ANSWERS {
            answers.clear();
        }
        answers.push(CachedAnswer {
            service: service.clone(),
            asked,
            body: body.clone(),
            at: now,
            generation: self.generation,
        });
        body
    }

    /// Every service with workers or waiting requests, by name (`mmi.services`).
    pub fn services_summary(&self) -> Vec<ServiceSummary> {
        let busy = self.busy_workers();
        let remote = self.peers.workers_by_service();
        let names: std::collections::BTreeSet<&Bytes> =
            self.services.keys().chain(remote.keys().copied()).collect();
        let mut list: Vec<ServiceSummary> = names
            .into_iter()
            .map(|n| self.service_summary(n, &busy, &remote))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Busy workers per service, counted in one pass (the idle lists may hold stale
    /// entries, so they cannot be counted instead).
    fn busy_workers(&self) -> HashMap<&Bytes, u64> {
        let mut busy: HashMap<&Bytes, u64> = HashMap::new();
        for w in self.workers.values().filter(|w| w.busy.is_some()) {
            *busy.entry(&w.service).or_default() += 1;
        }
        busy
    }

    fn service_summary(
        &self,
        service: &Bytes,
        busy: &HashMap<&Bytes, u64>,
        remote: &HashMap<&Bytes, u64>,
    ) -> ServiceSummary {
        let (workers, queued) = self
            .services
            .get(service)
            .map_or((0, 0), |s| (s.workers as u64, s.queue.len() as u64));
        let busy = busy.get(service).copied().unwrap_or(0);
        ServiceSummary {
            name: name(service),
            workers,
            idle: workers.saturating_sub(busy),
            busy,
            queued,
            via_peers: remote.get(service).copied().unwrap_or(0),
            peers: if remote.contains_key(service) {
                self.peers.serving(service)
            } else {
                Vec::new()
            },
        }
    }

    /// Every registered worker, or those of `service` when given, by service and then
    /// identity (`mmi.workers`).
    pub fn workers_summary(&self, service: Option<&[u8]>, now: Instant) -> Vec<WorkerSummary> {
        let lifetime = self.config.heartbeat_interval * self.config.liveness;
        let mut list: Vec<WorkerSummary> = self
            .workers
            .iter()
            .filter(|(_, w)| service.map_or(true, |s| w.service == s))
            .map(|(id, w)| {
                let heard = w.expiry.checked_sub(lifetime).unwrap_or(w.expiry);
                WorkerSummary {
                    identity: printable(id.routing_id()),
                    service: name(&w.service),
                    dialect: w.dialect.name().to_string(),
                    busy: w.busy.is_some(),
                    served: w.served,
                    last_heard_ms: u64::try_from(now.saturating_duration_since(heard).as_millis())
                        .unwrap_or(u64::MAX),
                }
            })
            .collect();
        list.sort_by(|a, b| (&a.service, &a.identity).cmp(&(&b.service, &b.identity)));
        list
    }

    /// The broker's counters and every known service's figures (`mmi.stats`, and
    /// what `mdp-broker --metrics` serves).
    pub fn stats_snapshot(&self) -> Stats {
        // Services with workers or requests now, and those that had workers before.
        let remote = self.peers.workers_by_service();
        let names: std::collections::BTreeSet<&Bytes> = self
            .services
            .keys()
            .chain(self.history.names())
            .chain(remote.keys().copied())
            .collect();
        let busy = self.busy_workers();
        let mut services: Vec<ServiceStats> = names
            .into_iter()
            .map(|n| {
                let s = self.service_summary(n, &busy, &remote);
                let h = self.history.get(n);
                ServiceStats {
                    name: s.name,
                    workers: s.workers,
                    idle: s.idle,
                    busy: s.busy,
                    queued: s.queued,
                    served: h.map_or(0, |h| h.served),
                    failed: h.map_or(0, |h| h.failed),
                    requeued: h.map_or(0, |h| h.requeued),
                    via_peers: s.via_peers,
                    p50_ms: h.and_then(|h| h.latency.quantile(0.5)),
                    p99_ms: h.and_then(|h| h.latency.quantile(0.99)),
                    latency_count: h.map_or(0, |h| h.latency.count()),
                    latency_sum_seconds: h.map_or(0.0, |h| h.latency.sum_seconds()),
                }
            })
            .collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        let s = &self.stats;
        Stats {
            totals: Totals {
                requests: s.requests,
                replies: s.replies,
                dropped: s.dropped,
                requeued: s.requeued,
                malformed: s.malformed,
                workers: self.workers.len() as u64,
                held: self.requests.len() as u64,
                held_bytes: self.ledger.total().bytes as u64,
                paused: self.ledger.paused_count() as u64,
                undelivered: s.undelivered,
                handed_to_peers: s.handed_to_peers,
                served_for_peers: s.served_for_peers,
                returned_by_peers: s.returned_by_peers,
                peers_up: self.peers.up().count() as u64,
            },
            services,
            peers: self.peers.summaries(),
        }
    }
}
