//! Connection metadata: the property list carried by READY (and PLAIN/CURVE INITIATE).
//!
//! Wire form (RFC 37 "metadata"): repeated `name-len(1) name value-len(u32 BE) value`.
//! Names are compared case-insensitively as the RFC says, although libzmq itself
//! matches "Socket-Type" and "Identity" case-sensitively, which is why we always send
//! exactly those spellings. Unknown properties are kept; trailing bytes that do not
//! form a whole property are an error (libzmq: EPROTO).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The property that names the sender's socket type.
pub const SOCKET_TYPE: &str = "Socket-Type";
/// The property that carries the sender's routing id.
pub const IDENTITY: &str = "Identity";

/// An ordered list of `(name, value)` properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    properties: Vec<(String, Bytes)>,
}

/// Why a property list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The list ends in the middle of a property.
    #[error("metadata truncated inside property {index}")]
    Truncated {
        /// Zero-based index of the incomplete property.
        index: usize,
    },
    /// A property name is empty or not printable ASCII.
    #[error("metadata property {index} has an invalid name")]
    BadName {
        /// Zero-based index of the property.
        index: usize,
    },
}

impl Metadata {
    /// An empty list.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Appends a property.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Bytes>) {
        self.properties.push((name.into(), value.into()));
    }

    /// The value of the first property called `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.properties
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All properties in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.properties.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.properties.len()
    }

    /// True when there are no properties.
    pub fn is_empty(&self) -> bool {
        self.properties.is_empty()
    }

    /// Encodes the list. Names longer than 255 bytes are cut to 255.
    pub fn encode(&self, dst: &mut BytesMut) {
        for (name, value) in &self.properties {
            let name = &name.as_bytes()[..name.len().min(255)];
            dst.put_u8(name.len() as u8); // ok: cut to 255 above
            dst.put_slice(name);
            dst.put_u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
            dst.put_slice(&value[..value.len().min(u32::MAX as usize)]);
        }
    }

    /// Parses a whole property list; every byte must belong to a property.
    pub fn parse(mut src: Bytes) -> Result<Metadata, MetadataError> {
        let mut properties = Vec::new();
        while src.has_remaining() {
            let index = properties.len();
            let name_len = usize::from(src.get_u8());
            if name_len == 0 {
                return Err(MetadataError::BadName { index });
            }
            if src.remaining() < name_len + 4 {
                return Err(MetadataError::Truncated { index });
            }
            let name = src.split_to(name_len);
            if !name.iter().all(|b| b.is_ascii_graphic()) {
                return Err(MetadataError::BadName { index });
            }
            let value_len = src.get_u32() as usize;
            if src.remaining() < value_len {
                return Err(MetadataError::Truncated { index });
            }
            let value = src.split_to(value_len);
            // ASCII-graphic checked above, so this is valid UTF-8.
            let name = String::from_utf8_lossy(&name).into_owned();
            properties.push((name, value));
        }
        Ok(Metadata { properties })
    }
}

#[cfg(test)]
#[path = "tests/metadata.rs"]
mod tests;
