//! [`SendBudget`]: bytes that several peers' outbound queues share, and
//! [`AddressBudgets`]: one such budget per source address.
//!
//! A pipe (`crate::pipe`) checks its budgets before taking a message, unless it is
//! empty: past a budget, peers that already have messages queued get no more,
//! while a peer whose queue is empty still gets one. An endpoint's budget bounds
//! what all its peers hold together; an address's keeps one host from using up the
//! endpoint's for everyone else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::defense::source::Source;

/// The bytes of messages queued in every pipe of one endpoint, against a limit
/// (`SocketOptions::send_hwm_bytes_total`).
#[derive(Debug)]
pub(crate) struct SendBudget {
    queued: AtomicUsize,
    limit: usize,
    /// A message was refused for the budget: the next release wakes the writers.
    starved: AtomicBool,
}

impl SendBudget {
    pub(crate) fn new(limit: usize) -> Arc<SendBudget> {
        Arc::new(SendBudget {
            queued: AtomicUsize::new(0),
            limit,
            starved: AtomicBool::new(false),
        })
    }

    pub(crate) fn fits(&self, cost: usize) -> bool {
        let fits = self.queued.load(Ordering::Acquire).saturating_add(cost) <= self.limit;
        if !fits {
            self.starved.store(true, Ordering::Release);
        }
        fits
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.queued.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Gives `bytes` back; true when somebody was refused for the budget since.
    pub(crate) fn release(&self, bytes: usize) -> bool {
        if bytes == 0 {
            return false;
        }
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        self.starved.swap(false, Ordering::AcqRel)
    }

    /// Bytes queued now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// One [`SendBudget`] per source address, each of `limit` bytes, shared by the
/// pipes of that address's peers and forgotten with the last of them.
#[derive(Debug)]
pub(crate) struct AddressBudgets {
    limit: usize,
    budgets: Mutex<HashMap<Source, Weak<SendBudget>>>,
}

impl AddressBudgets {
    pub(crate) fn new(limit: usize) -> AddressBudgets {
        AddressBudgets {
            limit,
            budgets: Mutex::new(HashMap::new()),
        }
    }

    /// The budget of the peer at `peer_address` (`1.2.3.4:5`, `ipc://...`).
    pub(crate) fn of(&self, peer_address: &str) -> Arc<SendBudget> {
        let source = Source::of(peer_address);
        // Single map operations: a poisoned lock still holds a valid map.
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(budget) = budgets.get(&source).and_then(Weak::upgrade) {
            return budget;
        }
        // Entries of addresses whose peers all left are swept as the map doubles,
        // so the sweep costs O(1) per address seen, amortised.
        if budgets.len() >= 64 && budgets.len().is_power_of_two() {
            budgets.retain(|_, b| b.strong_count() > 0);
        }
        let budget = SendBudget::new(self.limit);
        budgets.insert(source, Arc::downgrade(&budget));
        budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_budget_per_address_while_its_peers_hold_it() {
        let budgets = AddressBudgets::new(100);
        let a = budgets.of("10.0.0.1:1000");
        let same_host = budgets.of("10.0.0.1:2000");
        assert!(Arc::ptr_eq(&a, &same_host));
        let other = budgets.of("10.0.0.2:1000");
        assert!(!Arc::ptr_eq(&a, &other));
        drop((a, same_host));
        let again = budgets.of("10.0.0.1:1000");
        assert_eq!(
            again.queued(),
            0,
            "a new budget once the old one's peers left"
        );
    }
}
