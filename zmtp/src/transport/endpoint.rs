//! Endpoint strings: `tcp://host:port`, `ipc:///path` and `inproc://name` (RFC 37
//! "Transports").

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a socket binds or connects.
///
/// ```
/// use zmtp::Endpoint;
///
/// let ep: Endpoint = "tcp://127.0.0.1:5555".parse().unwrap();
/// assert_eq!(ep.to_string(), "tcp://127.0.0.1:5555");
/// let any: Endpoint = "tcp://*:0".parse().unwrap();       // any interface, any port
/// let v6: Endpoint = "tcp://[::1]:5555".parse().unwrap();
/// let ipc: Endpoint = "ipc:///tmp/broker.sock".parse().unwrap();
/// let inproc: Endpoint = "inproc://events".parse().unwrap();
/// assert!("udp://x:1".parse::<Endpoint>().is_err());
/// # let _ = (any, v6, ipc, inproc);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// TCP: a host name, IPv4 or IPv6 address (without brackets), or `*` on bind.
    Tcp {
        /// Host name or address; `*` binds every interface.
        host: String,
        /// Port; 0 on bind picks a free port.
        port: u16,
    },
    /// A Unix domain socket path.
    Ipc(PathBuf),
    /// A name shared by sockets of the same process: messages move between them
    /// without framing or copying.
    Inproc(String),
}

/// Why an endpoint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint {endpoint:?}: {reason}")]
pub struct EndpointError {
    /// The string as given.
    pub endpoint: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Endpoint, EndpointError> {
        let err = |reason| EndpointError {
            endpoint: s.to_string(),
            reason,
        };
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| err("expected transport://address"))?;
        match scheme {
            "tcp" => {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| err("expected tcp://host:port"))?;
                let port = if port == "*" {
                    0
                } else {
                    port.parse()
                        .map_err(|_| err("port is not a number 0-65535"))?
                };
                let host = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                if host.is_empty() {
                    return Err(err("missing host"));
                }
                Ok(Endpoint::Tcp {
                    host: host.to_string(),
                    port,
                })
            }
            "ipc" => {
                if rest.is_empty() {
                    return Err(err("missing path"));
                }
                Ok(Endpoint::Ipc(PathBuf::from(rest)))
            }
            "inproc" => {
                if rest.is_empty() {
                    return Err(err("missing name"));
                }
                Ok(Endpoint::Inproc(rest.to_string()))
            }
            _ => Err(err(
                "unsupported transport (tcp, ipc and inproc are supported)",
            )),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Endpoint::Ipc(path) => write!(f, "ipc://{}", path.display()),
            Endpoint::Inproc(name) => write!(f, "inproc://{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in [
            "tcp://127.0.0.1:5555",
            "tcp://[::1]:80",
            "tcp://localhost:1",
            "ipc:///tmp/x.sock",
            "ipc://relative.sock",
            "inproc://a-name/with:anything",
        ] {
            assert_eq!(s.parse::<Endpoint>().unwrap().to_string(), s);
        }
        assert_eq!(
            "tcp://*:*".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp {
                host: "*".into(),
                port: 0
            }
        );
        for bad in [
            "tcp://host",
            "tcp://:5",
            "tcp://h:99999",
            "inproc",
            "inproc://",
            "ipc://",
            "pgm://x:1",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }
}
