//! What happened to each service's requests (served, failed, requeued, latency),
//! kept for a bounded number of names.
//!
//! Names come from workers' READY, so a peer inventing names could otherwise grow
//! this without end. At the bound, the service used least recently among those with
//! no worker now is forgotten to make room: a new service always gets its figures,
//! and a service with workers is never forgotten.

use std::time::Instant;

use bytes::Bytes;

use super::latency::LatencyWindow;
use super::name_map::NameMap;

/// Most service names whose history the broker keeps.
pub const MAX_SERVICE_HISTORY: usize = 1024;

/// One service's figures.
#[derive(Debug, Default)]
pub(crate) struct ServiceHistory {
    pub(crate) served: u64,
    pub(crate) failed: u64,
    pub(crate) requeued: u64,
    pub(crate) latency: LatencyWindow,
    /// Last registration, request or reply: the order of eviction.
    last_used: Option<Instant>,
}

/// The figures of up to [`MAX_SERVICE_HISTORY`] services.
#[derive(Debug, Default)]
pub(crate) struct History {
    services: NameMap<ServiceHistory>,
}

impl History {
    /// `name` was registered by a worker at `now`: its record, made if need be by
    /// forgetting the least recently used service for which `has_workers` is false.
    /// When every remembered service has workers, the new one is not remembered.
    pub(crate) fn register(
        &mut self,
        name: &Bytes,
        now: Instant,
        has_workers: impl Fn(&Bytes) -> bool,
    ) {
        if let Some(h) = self.services.get_mut(name) {
            h.last_used = Some(now);
            return;
        }
        if self.services.len() >= MAX_SERVICE_HISTORY {
            let oldest = self
                .services
                .iter()
                .filter(|(n, _)| !has_workers(n))
                .min_by_key(|(_, h)| h.last_used)
                .map(|(n, _)| n.clone());
            match oldest {
                Some(oldest) => {
                    self.services.remove(&oldest);
                }
                None => return,
            }
        }
        self.services.insert(
            name.clone(),
            ServiceHistory {
                last_used: Some(now),
                ..ServiceHistory::default()
            },
        );
    }

    /// The record of `name`, if remembered, marked as used at `now`.
    pub(crate) fn touch(&mut self, name: &[u8], now: Instant) -> Option<&mut ServiceHistory> {
        let h = self.services.get_mut(name)?;
        h.last_used = Some(now);
        Some(h)
    }

    /// The record of `name`, if remembered.
    pub(crate) fn get(&self, name: &[u8]) -> Option<&ServiceHistory> {
        self.services.get(name)
    }

    /// Counts a failed request of `name`.
    pub(crate) fn failed(&mut self, name: &[u8]) {
        if let Some(h) = self.services.get_mut(name) {
            h.failed += 1;
        }
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &Bytes> {
        self.services.keys()
    }

    pub(crate) fn len(&self) -> usize {
        self.services.len()
    }

    /// Moves every latency window on to `now`.
    pub(crate) fn rotate(&mut self, now: Instant) {
        for h in self.services.values_mut() {
            h.latency.rotate(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn at_the_bound_the_least_recently_used_service_without_workers_goes() {
        let mut history = History::default();
        let start = Instant::now();
        let name = |i: usize| Bytes::from(format!("s{i}"));
        for i in 0..MAX_SERVICE_HISTORY {
            history.register(&name(i), start + Duration::from_millis(i as u64), |_| false);
        }
        // s0 has workers; s1 was used lately: s2 is the one to go.
        history.touch(b"s1", start + Duration::from_secs(10));
        let has_workers = |n: &Bytes| n == "s0";
        history.register(&name(5000), start + Duration::from_secs(11), has_workers);
        assert_eq!(history.len(), MAX_SERVICE_HISTORY);
        assert!(
            history.get(b"s5000").is_some(),
            "a new service gets its figures"
        );
        assert!(history.get(b"s0").is_some() && history.get(b"s1").is_some());
        assert!(history.get(b"s2").is_none());
    }

    #[test]
    fn services_with_workers_are_never_evicted() {
        let mut history = History::default();
        let now = Instant::now();
        for i in 0..MAX_SERVICE_HISTORY {
            history.register(&Bytes::from(format!("s{i}")), now, |_| true);
        }
        history.register(&Bytes::from_static(b"new"), now, |_| true);
        assert!(history.get(b"new").is_none());
        assert_eq!(history.len(), MAX_SERVICE_HISTORY);
    }
}
