//! Several brokers behind one name: [`Brokers`] is the list of broker endpoints a
//! client, a worker or a peering broker is given, where `tcp://name:port` stands
//! for *every* address `name` resolves to, resolved again every
//! [`RESOLVE_EVERY`] (a Kubernetes headless Service gives one A record per ready
//! pod, and pods come and go; libzmq would connect to the first address only).
//!
//! Resolution goes through the system resolver (`getaddrinfo`: DNS, `/etc/hosts`).
//! When the environment variable `MDP_HOSTS_FILE` names a file in `/etc/hosts`
//! format, names found there resolve to every address listed for them there
//! first: a way to test discovery, or to pin a name, without touching system
//! files. A name that fails to resolve keeps the addresses it had (a DNS hiccup
//! does not disconnect anyone); a name that resolves to nothing new keeps them too.
//!
//! [`Resolved::update`] is the sans-IO part: given what each endpoint resolved to,
//! it says which concrete endpoints to connect and which to drop.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How often names are resolved again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// Most addresses one name may stand for: a name that resolves to more is taken
/// as its first (sorted) this many, with a warning (each address is a connection,
/// and a worker's are times its concurrency).
pub const MAX_ADDRESSES_PER_NAME: usize = 64;

/// The environment variable naming an `/etc/hosts`-style file consulted first.
pub const HOSTS_FILE_VAR: &str = "MDP_HOSTS_FILE";

/// Broker endpoints as given: one or several, each `tcp://host:port` with a name
/// standing for all its addresses.
///
/// ```
/// use mdp::discovery::Brokers;
///
/// let one: Brokers = "tcp://127.0.0.1:5555".into();
/// let three: Brokers = ["tcp://127.0.0.1:5555", "tcp://127.0.0.2:5555", "tcp://brokers:5555"].into();
/// assert_eq!(one.len(), 1);
/// assert_eq!(three.len(), 3);
/// assert!(!one.needs_resolving());
/// assert!(three.needs_resolving());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brokers(Vec<String>);

impl Brokers {
    /// The endpoints as given.
    pub fn endpoints(&self) -> &[String] {
        &self.0
    }

    /// How many endpoints were given.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some endpoint names a host that must be resolved.
    pub fn needs_resolving(&self) -> bool {
        self.0.iter().any(|e| name_and_port(e).is_some())
    }

    /// Checks every endpoint's syntax.
    pub fn validate(&self) -> Result<(), zmtp::Error> {
        for endpoint in &self.0 {
            if name_and_port(endpoint).is_none() {
                endpoint.parse::<zmtp::Endpoint>()?;
            }
        }
        Ok(())
    }

    /// Resolves every endpoint now: the concrete endpoints, with the error of each
    /// name that failed.
    pub async fn resolve(&self) -> Vec<(String, io::Result<Vec<String>>)> {
        let mut out = Vec::with_capacity(self.0.len());
        for endpoint in &self.0 {
            let resolved = match name_and_port(endpoint) {
                None => Ok(vec![endpoint.clone()]),
                Some((name, port)) => lookup(name, port)
                    .await
                    .map(|addrs| addrs.iter().map(|a| format!("tcp://{a}")).collect()),
            };
            out.push((endpoint.clone(), resolved));
        }
        out
    }
}

impl From<&str> for Brokers {
    fn from(endpoint: &str) -> Brokers {
        Brokers(vec![endpoint.to_owned()])
    }
}

impl From<String> for Brokers {
    fn from(endpoint: String) -> Brokers {
        Brokers(vec![endpoint])
    }
}

impl From<&String> for Brokers {
    fn from(endpoint: &String) -> Brokers {
        Brokers(vec![endpoint.clone()])
    }
}

impl From<Vec<String>> for Brokers {
    fn from(endpoints: Vec<String>) -> Brokers {
        Brokers(endpoints)
    }
}

impl From<&[String]> for Brokers {
    fn from(endpoints: &[String]) -> Brokers {
        Brokers(endpoints.to_vec())
    }
}

impl From<Vec<&str>> for Brokers {
    fn from(endpoints: Vec<&str>) -> Brokers {
        Brokers(endpoints.into_iter().map(str::to_owned).collect())
    }
}

impl<const N: usize> From<[&str; N]> for Brokers {
    fn from(endpoints: [&str; N]) -> Brokers {
        Brokers(endpoints.into_iter().map(str::to_owned).collect())
    }
}

/// `(name, port)` of a `tcp://name:port` endpoint whose host is a name (not an
/// address, not `*`); `None` for everything else.
fn name_and_port(endpoint: &str) -> Option<(&str, u16)> {
    let rest = endpoint.strip_prefix("tcp://")?;
    let (host, port) = rest.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.is_empty() || host == "*" || host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
        return None;
    }
    // `tcp://eth0;host:port` (a source interface) is left to zmtp as given.
    if host.contains(';') {
        return None;
    }
    Some((host, port))
}

/// Every address of `name` (the hosts file of [`HOSTS_FILE_VAR`] first), sorted.
async fn lookup(name: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Some(path) = std::env::var_os(HOSTS_FILE_VAR) {
        // A small local file, read at most every few seconds.
        let text = std::fs::read_to_string(&path)?;
        let addrs = hosts_lookup(&text, name, port);
        if !addrs.is_empty() {
            return Ok(addrs);
        }
    }
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port)).await?.collect();
    addrs.sort();
    addrs.dedup();
    Ok(addrs)
}

/// The addresses listed for `name` in `/etc/hosts`-format `text`, sorted.
fn hosts_lookup(text: &str, name: &str, port: u16) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let ip: IpAddr = words.next()?.parse().ok()?;
            words
                .any(|w| w.eq_ignore_ascii_case(name))
                .then_some(SocketAddr::new(ip, port))
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// The concrete endpoints in use, and how a new resolution changes them.
#[derive(Debug, Default, Clone)]
pub struct Resolved {
    /// Per given endpoint, what it stood for at its last good resolution.
    by_given: std::collections::BTreeMap<String, BTreeSet<String>>,
}

/// What a resolution changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// Concrete endpoints to connect now.
    pub added: Vec<String>,
    /// Concrete endpoints no given endpoint stands for any more.
    pub removed: Vec<String>,
    /// Every concrete endpoint in use after it.
    pub current: Vec<String>,
}

impl Change {
    /// Whether anything was added or removed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// Resolves `brokers` now, and again every [`RESOLVE_EVERY`] while some of them
/// are names, sending the first resolution and then each [`Change`] until the
/// receiver is dropped. Runs on its
/// own task, so a slow DNS answer delays nobody.
pub fn watch(brokers: Brokers) -> tokio::sync::mpsc::Receiver<Change> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut resolved = Resolved::default();
        let mut first = true;
        loop {
            let change = resolved.update(brokers.resolve().await);
            // The first resolution is always told, even when it found nothing.
            if (first || !change.is_empty()) && tx.send(change).await.is_err() {
                return;
            }
            first = false;
            if !brokers.needs_resolving() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(RESOLVE_EVERY) => {}
                () = tx.closed() => return,
            }
        }
    });
    rx
}

impl Resolved {
    /// Every concrete endpoint in use.
    pub fn current(&self) -> BTreeSet<String> {
        self.by_given.values().flatten().cloned().collect()
    }

    /// Applies a resolution of every given endpoint: a failed or empty one keeps
    /// what that endpoint stood for before.
    pub fn update(&mut self, resolution: Vec<(String, io::Result<Vec<String>>)>) -> Change {
        let before = self.current();
        for (given, result) in resolution {
            match result {
                Ok(list) if !list.is_empty() => {
                    let mut list: BTreeSet<String> = list.into_iter().collect();
                    if list.len() > MAX_ADDRESSES_PER_NAME {
                        tracing::warn!(endpoint = %given, addresses = list.len(),
                            "a broker name stands for too many addresses; using the first {MAX_ADDRESSES_PER_NAME}");
                        list = list.into_iter().take(MAX_ADDRESSES_PER_NAME).collect();
                    }
                    self.by_given.insert(given, list);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(endpoint = %given, error = %e,
                    "cannot resolve a broker endpoint; keeping its last addresses"),
            }
        }
        let after = self.current();
        Change {
            added: after.difference(&before).cloned().collect(),
            removed: before.difference(&after).cloned().collect(),
            current: after.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_names_are_resolved() {
        assert_eq!(name_and_port("tcp://brokers:5555"), Some(("brokers", 5555)));
        assert_eq!(
            name_and_port("tcp://broker-0.brokers.ns.svc.cluster.local:5555"),
            Some(("broker-0.brokers.ns.svc.cluster.local", 5555))
        );
        for literal in [
            "tcp://127.0.0.1:5555",
            "tcp://[::1]:5555",
            "tcp://*:5555",
            "ipc:///tmp/x",
            "inproc://x",
            "tcp://brokers",
            "tcp://eth0;brokers:5555",
        ] {
            assert_eq!(name_and_port(literal), None, "{literal}");
        }
    }

    #[test]
    fn a_hosts_file_gives_every_address_of_a_name() {
        let text = "# pods\n127.0.0.2 brokers broker-a\n127.0.0.3   Brokers # two\n\
                    ::1 other\nnot-an-address brokers\n127.0.0.2 brokers\n";
        let addrs: Vec<String> = hosts_lookup(text, "brokers", 5555)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(addrs, ["127.0.0.2:5555", "127.0.0.3:5555"]);
        assert!(hosts_lookup(text, "nobody", 1).is_empty());
    }

    fn ok(given: &str, list: &[&str]) -> (String, io::Result<Vec<String>>) {
        (
            given.to_owned(),
            Ok(list.iter().map(|s| s.to_string()).collect()),
        )
    }

    #[test]
    fn a_new_resolution_adds_and_removes_endpoints_and_a_failure_keeps_them() {
        let mut r = Resolved::default();
        let change = r.update(vec![
            ok("tcp://b:1", &["tcp://10.0.0.1:1", "tcp://10.0.0.2:1"]),
            ok("ipc:///x", &["ipc:///x"]),
        ]);
        assert_eq!(change.added.len(), 3);
        assert!(change.removed.is_empty());
        // A pod leaves, another comes.
        let change = r.update(vec![
            ok("tcp://b:1", &["tcp://10.0.0.2:1", "tcp://10.0.0.3:1"]),
            ok("ipc:///x", &["ipc:///x"]),
        ]);
        assert_eq!(change.added, ["tcp://10.0.0.3:1"]);
        assert_eq!(change.removed, ["tcp://10.0.0.1:1"]);
        // DNS fails, or answers nothing: nothing changes.
        let failed = ("tcp://b:1".to_owned(), Err(io::Error::other("no answer")));
        assert!(r.update(vec![failed]).is_empty());
        assert!(r.update(vec![ok("tcp://b:1", &[])]).is_empty());
        assert_eq!(r.current().len(), 3);
    }

    #[test]
    fn a_name_stands_for_a_bounded_number_of_addresses() {
        let mut r = Resolved::default();
        let many: Vec<String> = (0..1000)
            .map(|i| format!("tcp://10.0.{}.{}:1", i / 256, i % 256))
            .collect();
        let change = r.update(vec![("tcp://b:1".to_owned(), Ok(many))]);
        assert_eq!(change.added.len(), MAX_ADDRESSES_PER_NAME);
    }

    #[test]
    fn two_names_for_one_address_connect_it_once() {
        let mut r = Resolved::default();
        let change = r.update(vec![
            ok("tcp://a:1", &["tcp://10.0.0.1:1"]),
            ok("tcp://b:1", &["tcp://10.0.0.1:1"]),
        ]);
        assert_eq!(change.added, ["tcp://10.0.0.1:1"]);
        let change = r.update(vec![ok("tcp://a:1", &["tcp://10.0.0.9:1"])]);
        assert_eq!(change.added, ["tcp://10.0.0.9:1"]);
        assert!(change.removed.is_empty(), "b still stands for it");
    }

    #[tokio::test]
    async fn literal_endpoints_resolve_to_themselves() {
        let brokers: Brokers = ["tcp://127.0.0.1:5555", "ipc:///tmp/b"].into();
        let resolved = brokers.resolve().await;
        assert_eq!(resolved[0].1.as_ref().unwrap(), &["tcp://127.0.0.1:5555"]);
        assert_eq!(resolved[1].1.as_ref().unwrap(), &["ipc:///tmp/b"]);
        let bad: Brokers = "tcp//nope".into();
        assert!(bad.validate().is_err());
    }

    #[tokio::test]
    async fn localhost_resolves_through_the_system() {
        let brokers: Brokers = "tcp://localhost:5555".into();
        let resolved = brokers.resolve().await;
        let list = resolved[0].1.as_ref().unwrap();
        assert!(
            list.iter()
                .any(|e| e == "tcp://127.0.0.1:5555" || e == "tcp://[::1]:5555"),
            "{list:?}"
        );
    }
}
