//! Where a connection comes from, as the per-address limits count it.
//!
//! One host is one bucket: an IPv4 address, or an IPv6 /64 (the block a single
//! host or home network is handed; an attacker on one link can pick any of its
//! 2^64 addresses, so counting them one by one would count nothing). IPv4 mapped
//! into IPv6 (`::ffff:a.b.c.d`) counts as the IPv4 address. `ipc://` peers are all
//! local processes of one machine and share one bucket, [`Source::Local`].

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The bucket a peer address is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// An IPv4 address, or an IPv6 address with its last 64 bits cleared (its /64).
    Ip(IpAddr),
    /// Every peer on a Unix domain socket (`ipc://`), or any address that is not an
    /// IP address and port.
    Local,
}

impl Source {
    /// The bucket of a peer address as the transport prints it (`127.0.0.1:40312`,
    /// `[2001:db8::1]:40312`, `ipc:///tmp/x`).
    pub fn of(peer_address: &str) -> Source {
        match peer_address.parse::<SocketAddr>() {
            Ok(addr) => Source::of_ip(addr.ip()),
            Err(_) => Source::Local,
        }
    }

    /// The bucket of an IP address.
    pub fn of_ip(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::Ip(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::Ip(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !u128::from(u64::MAX);
                    Source::Ip(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            Source::Ip(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            Source::Local => f.write_str("local (ipc)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_grouped_by_address_and_ipv6_by_its_64_bit_prefix() {
        let a = Source::of("127.0.0.2:40312");
        assert_eq!(a, Source::of("127.0.0.2:1"));
        assert_ne!(a, Source::of("127.0.0.1:40312"));
        assert_eq!(a.to_string(), "127.0.0.2");

        let v6 = Source::of("[2001:db8:1:2:aaaa::1]:5555");
        assert_eq!(v6, Source::of("[2001:db8:1:2:ffff:1:2:3]:1"));
        assert_ne!(v6, Source::of("[2001:db8:1:3::1]:5555"));
        assert_eq!(v6.to_string(), "2001:db8:1:2::/64");

        assert_eq!(Source::of("[::ffff:10.0.0.5]:9"), Source::of("10.0.0.5:9"));
        assert_eq!(Source::of("ipc:///tmp/broker.sock"), Source::Local);
        assert_eq!(Source::of("not an address"), Source::Local);
        assert_eq!(Source::Local.to_string(), "local (ipc)");
    }
}
