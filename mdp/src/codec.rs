//! Typed bodies: a request or reply value in one frame, MessagePack by default.

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

/// How typed bodies are written in their frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// MessagePack with named fields (maps), what Python's `msgpack` reads and writes.
    #[default]
    MessagePack,
    /// JSON text.
    Json,
}

/// A body that could not be encoded or decoded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{format:?} {direction} failed: {reason}")]
pub struct CodecError {
    /// The format in use.
    pub format: Format,
    /// "encoding" or "decoding".
    pub direction: &'static str,
    /// What the serializer said.
    pub reason: String,
}

impl Format {
    /// Encodes `value` as one frame.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes, CodecError> {
        let bytes = match self {
            Format::MessagePack => rmp_serde::to_vec_named(value).map_err(|e| e.to_string()),
            Format::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
        };
        bytes.map(Bytes::from).map_err(|reason| CodecError {
            format: self,
            direction: "encoding",
            reason,
        })
    }

    /// Decodes one frame.
    pub fn decode<T: DeserializeOwned>(self, frame: &[u8]) -> Result<T, CodecError> {
        let value = match self {
            Format::MessagePack => rmp_serde::from_slice(frame).map_err(|e| e.to_string()),
            Format::Json => serde_json::from_slice(frame).map_err(|e| e.to_string()),
        };
        value.map_err(|reason| CodecError {
            format: self,
            direction: "decoding",
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Add {
        x: i64,
        y: i64,
    }

    #[test]
    fn msgpack_is_what_python_msgpack_writes() {
        // msgpack.packb({"x": 6, "y": 7}) in Python.
        let python = [0x82, 0xa1, b'x', 0x06, 0xa1, b'y', 0x07];
        let value: Add = Format::MessagePack.decode(&python).unwrap();
        assert_eq!(value, Add { x: 6, y: 7 });
        assert_eq!(
            &Format::MessagePack.encode(&value).unwrap()[..],
            &python[..]
        );
    }

    #[test]
    fn json_round_trip_and_errors() {
        let v = Add { x: 1, y: -2 };
        let bytes = Format::Json.encode(&v).unwrap();
        assert_eq!(Format::Json.decode::<Add>(&bytes).unwrap(), v);
        assert!(Format::Json.decode::<Add>(b"{").is_err());
        assert!(Format::MessagePack.decode::<Add>(b"\xc1").is_err());
    }
}
