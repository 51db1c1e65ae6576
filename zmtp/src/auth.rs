//! Authentication: who may connect, decided by the application (what ZAP, RFC 27,
//! gives libzmq users, as a Rust API).
//!
//! An [`Authenticator`] sees each peer's [`AuthRequest`]: the mechanism, the peer's
//! address, its routing id and its credentials (PLAIN user name and password, CURVE
//! public key). It allows the peer or denies it with a reason; a denied peer gets an
//! ERROR command with that reason and its connection is closed before any message
//! reaches the application.
//!
//! ```
//! use zmtp::auth::{AuthRequest, Authenticator, Credentials};
//!
//! let auth = Authenticator::new(|request: &AuthRequest<'_>| match request.credentials {
//!     Credentials::Plain { username, password } if username == "admin" && password == "secret" => Ok(()),
//!     _ => Err("unknown user".into()),
//! });
//! # let _ = auth;
//! ```
//!
//! [`Authenticator::plain_users`] and [`Authenticator::curve_keys`] build the usual
//! allow-lists; [`PasswordFile`] and [`CurveKeyList`] load them from files.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bytes::Bytes;

pub use crate::proto::authenticator::{AuthRequest, Authenticator, Credentials};

impl Authenticator {
    /// Lets in PLAIN peers whose user name and password are in `users`; refuses every
    /// other peer.
    pub fn plain_users(users: PasswordFile) -> Authenticator {
        Authenticator::new(move |request| match request.credentials {
            Credentials::Plain { username, password } => {
                if users.check(username, password) {
                    Ok(())
                } else {
                    Err("invalid user name or password".into())
                }
            }
            _ => Err("PLAIN credentials required".into()),
        })
    }

    /// Lets in CURVE peers whose public key is in `keys`; refuses every other peer.
    pub fn curve_keys(keys: CurveKeyList) -> Authenticator {
        Authenticator::new(move |request| match request.credentials {
            Credentials::Curve { public_key } if keys.contains(public_key) => Ok(()),
            Credentials::Curve { public_key } => Err(format!(
                "CURVE public key {} is not in the allow-list",
                crate::proto::z85::encode_key(public_key)
            )),
            _ => Err("CURVE credentials required".into()),
        })
    }
}

/// Why a credentials file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was read.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is not in the expected format.
    #[error("{path}:{line}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

pub(crate) fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Meaningful lines of a text file: trimmed, without blanks and `#` comments, with
/// their 1-based numbers.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// PLAIN users and their passwords.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    users: HashMap<Bytes, Bytes>,
}

impl PasswordFile {
    /// An empty list.
    pub fn new() -> PasswordFile {
        PasswordFile::default()
    }

    /// Adds (or replaces) a user.
    pub fn insert(&mut self, username: impl Into<Bytes>, password: impl Into<Bytes>) {
        self.users.insert(username.into(), password.into());
    }

    /// Loads `user=password` lines (blank lines and `#` comments are skipped; the
    /// password is everything after the first `=`), as czmq's `zpasswd` files.
    pub fn load(path: impl AsRef<Path>) -> Result<PasswordFile, LoadError> {
        let path = path.as_ref();
        let text = read(path)?;
        let mut file = PasswordFile::new();
        for (line, content) in lines(&text) {
            let Some((user, password)) = content.split_once('=') else {
                return Err(LoadError::Format {
                    path: path.display().to_string(),
                    line,
                    reason: "expected user=password".into(),
                });
            };
            file.insert(user.trim().to_owned(), password.to_owned());
        }
        Ok(file)
    }

    /// Whether `username` exists with this `password`. Compares in constant time
    /// for equal lengths, so a timing attacker learns no prefix of a password.
    pub fn check(&self, username: &[u8], password: &[u8]) -> bool {
        self.users
            .get(username)
            .is_some_and(|expected| constant_time_eq(expected, password))
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there is no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_key_lists_load_plain_lines_and_czmq_certificates() {
        let dir = std::env::temp_dir().join(format!("zmtp-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Keys whose Z85 text contains '=' (as many do) on both kinds of line.
        let with_equals = || loop {
            let pair = crate::proto::mechanism::curve::CurveKeyPair::generate();
            if pair.public_z85().contains('=') && pair.secret_z85().contains('=') {
                return pair;
            }
        };
        let (a, b) = (with_equals(), with_equals());
        std::fs::write(
            dir.join("a.txt"),
            format!("# allowed\n{}\n", a.public_z85()),
        )
        .unwrap();
        std::fs::write(
            dir.join("b.key"),
            format!("metadata\ncurve\n    public-key = \"{}\"\n", b.public_z85()),
        )
        .unwrap();
        let list = CurveKeyList::load(&dir).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.contains(&a.public) && list.contains(&b.public));
        let single = CurveKeyList::load(dir.join("a.txt")).unwrap();
        assert_eq!(single.len(), 1);

        // Secret certificates next to the public ones are skipped...
        std::fs::write(
            dir.join("c.key_secret"),
            format!("curve\n    secret-key = \"{}\"\n", a.secret_z85()),
        )
        .unwrap();
        assert_eq!(CurveKeyList::load(&dir).unwrap().len(), 2);
        // ...but a secret key anywhere else is refused.
        std::fs::write(
            dir.join("c.txt"),
            format!("curve\n    secret-key = \"{}\"\n", a.secret_z85()),
        )
        .unwrap();
        let err = CurveKeyList::load(&dir).unwrap_err().to_string();
        assert!(err.contains("secret"), "{err}");
        std::fs::write(dir.join("c.txt"), "not a key\n").unwrap();
        let err = CurveKeyList::load(&dir).unwrap_err().to_string();
        assert!(err.contains("c.txt:1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A czmq/pyzmq secret certificate file (`NAME.key_secret`).
fn is_secret_certificate(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.ends_with("_secret"))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// CURVE public keys allowed in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurveKeyList {
    keys: HashSet<[u8; 32]>,
}

impl CurveKeyList {
    /// An empty list.
    pub fn new() -> CurveKeyList {
        CurveKeyList::default()
    }

    /// Adds a key.
    pub fn insert(&mut self, public_key: [u8; 32]) {
        self.keys.insert(public_key);
    }

    /// Whether `public_key` is allowed.
    pub fn contains(&self, public_key: &[u8; 32]) -> bool {
        self.keys.contains(public_key)
    }

    /// The keys, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.keys.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Loads keys from a file, or from every file of a directory but secret
    /// certificates (`*_secret`, which czmq and pyzmq write next to the public
    /// `*.key` ones). A key is 40 characters of Z85 (RFC 32) on a line of its own,
    /// or in czmq certificate syntax (`public-key = "…"`); blank lines, `#` comments
    /// and other certificate lines are skipped. Secret-key lines are refused, so a
    /// secret never sits in an allow-list by mistake.
    pub fn load(path: impl AsRef<Path>) -> Result<CurveKeyList, LoadError> {
        let path = path.as_ref();
        let mut list = CurveKeyList::new();
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| LoadError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let mut files: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.is_file() && !is_secret_certificate(p))
                .collect();
            files.sort();
            for file in files {
                list.load_file(&file)?;
            }
        } else {
            list.load_file(path)?;
        }
        Ok(list)
    }

    fn load_file(&mut self, path: &Path) -> Result<(), LoadError> {
        let text = read(path)?;
        for (line, content) in lines(&text) {
            let error = |reason: &str| LoadError::Format {
                path: path.display().to_string(),
                line,
                reason: reason.into(),
            };
            // A bare key first: Z85 itself may contain '='.
            if let Ok(key) = crate::proto::z85::decode_key(content) {
                self.insert(key);
                continue;
            }
            let key_text = match content.split_once('=') {
                Some((name, value)) => {
                    let name = name.trim();
                    if name.contains("secret") {
                        return Err(error("a secret key in a list of allowed public keys"));
                    }
                    if name != "public-key" {
                        continue; // other certificate metadata
                    }
                    value.trim().trim_matches('"')
                }
                // A certificate section name ("metadata", "curve").
                None if content.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => continue,
                None => content,
            };
            let key = crate::proto::z85::decode_key(key_text)
                .map_err(|_| error("not a 40-character Z85 key"))?;
            self.insert(key);
        }
        Ok(())
    }
}
