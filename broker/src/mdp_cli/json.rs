//! JSON on the command line, MessagePack or JSON on the wire.

use bytes::Bytes;
use rmpv::Value as Mp;
use serde_json::Value as Json;

/// How request bodies are written and replies read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Frames as they are.
    Raw,
    /// A JSON argument becomes a MessagePack frame; MessagePack replies print as JSON.
    MessagePack,
    /// JSON text both ways (checked, printed compact).
    Json,
}

/// The frame that carries `text` (a JSON value) in `encoding`.
pub fn encode(text: &[u8], encoding: Encoding) -> Result<Bytes, String> {
    if encoding == Encoding::Raw {
        return Ok(Bytes::copy_from_slice(text));
    }
    let value: Json =
        serde_json::from_slice(text).map_err(|e| format!("the body is not JSON: {e}"))?;
    match encoding {
        Encoding::MessagePack => rmp_serde::to_vec_named(&value)
            .map(Bytes::from)
            .map_err(|e| e.to_string()),
        _ => Ok(Bytes::from(value.to_string())),
    }
}

/// A reply frame as one line of text: JSON for the structured encodings (a frame
/// that does not decode is shown as a JSON string of its bytes, with a warning), the
/// bytes themselves otherwise.
pub fn decode(frame: &[u8], encoding: Encoding) -> Vec<u8> {
    let value = match encoding {
        Encoding::Raw => return frame.to_vec(),
        Encoding::MessagePack => {
            let mut reader = frame;
            match rmpv::decode::read_value(&mut reader) {
                Ok(value) if reader.is_empty() => Some(to_json(value)),
                _ => None,
            }
        }
        Encoding::Json => serde_json::from_slice::<Json>(frame).ok(),
    };
    let value = value.unwrap_or_else(|| {
        eprintln!(
            "mdp: a reply frame of {} bytes is not {encoding:?}",
            frame.len()
        );
        Json::String(String::from_utf8_lossy(frame).into_owned())
    });
    value.to_string().into_bytes()
}

/// MessagePack to JSON: binary data becomes a string when it is UTF-8 and an array
/// of byte values otherwise; map keys that are not strings are written as JSON text;
/// extension types become `{"ext": TYPE, "data": [BYTES]}`.
pub fn to_json(value: Mp) -> Json {
    match value {
        Mp::Nil => Json::Null,
        Mp::Boolean(b) => Json::Bool(b),
        Mp::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Json::from(u),
            (_, Some(s)) => Json::from(s),
            _ => Json::Null,
        },
        Mp::F32(f) => serde_json::Number::from_f64(f64::from(f)).map_or(Json::Null, Json::Number),
        Mp::F64(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Mp::String(s) => Json::String(s.into_str().unwrap_or_default()),
        Mp::Binary(bytes) => bytes_to_json(bytes),
        Mp::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Mp::Map(pairs) => Json::Object(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Mp::String(s) => s.into_str().unwrap_or_default(),
                        Mp::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Mp::Ext(kind, data) => serde_json::json!({ "ext": kind, "data": data }),
    }
}

fn bytes_to_json(bytes: Vec<u8>) -> Json {
    match String::from_utf8(bytes) {
        Ok(text) => Json::String(text),
        Err(e) => Json::Array(e.into_bytes().into_iter().map(Json::from).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_messagepack() {
        let text = br#"{"a":2,"b":[-3,4.5,"x",null,true],"c":{"d":"e"}}"#;
        let frame = encode(text, Encoding::MessagePack).unwrap();
        assert_eq!(frame[0] & 0xf0, 0x80, "a MessagePack map");
        let back = decode(&frame, Encoding::MessagePack);
        let back: Json = serde_json::from_slice(&back).unwrap();
        assert_eq!(back, serde_json::from_slice::<Json>(text).unwrap());
    }

    #[test]
    fn binary_and_odd_keys_still_print() {
        let value = Mp::Map(vec![
            (Mp::from(1), Mp::Binary(vec![0xff, 0])),
            (Mp::Binary(b"k".to_vec()), Mp::Binary(b"text".to_vec())),
        ]);
        let mut frame = Vec::new();
        rmpv::encode::write_value(&mut frame, &value).unwrap();
        let printed = decode(&frame, Encoding::MessagePack);
        assert_eq!(printed, br#"{"1":[255,0],"k":"text"}"#);
    }

    #[test]
    fn bad_input_is_an_error_or_shown_as_text() {
        assert!(encode(b"{nope", Encoding::MessagePack).is_err());
        // Cut short, or followed by more: shown as the bytes' text.
        for frame in [&b"\x92\x01"[..], b"\x01\x02"] {
            let shown = Json::String(String::from_utf8_lossy(frame).into_owned()).to_string();
            assert_eq!(decode(frame, Encoding::MessagePack), shown.into_bytes());
        }
        assert_eq!(decode(b"[1, 2]", Encoding::Json), b"[1,2]");
        assert_eq!(encode(b"raw", Encoding::Raw).unwrap(), "raw");
    }
}
