//! Serde adapter for an optional data map in either wire form.
//!
//! Output is always the JSON-object form. Input is a JSON object, `null`
//! (`None`), or a string holding the standard base64 (padded) of a CBOR
//! map. CBOR tuples (tag 128) become arrays, UUIDs (tag 37) their canonical
//! text, byte strings text when they are UTF-8; anything JSON cannot hold
//! (other tags, non-UTF-8 bytes, non-finite floats, huge integers) is an error.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ciborium::value::Value as Cbor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

use crate::model::DataMap;

/// Writes the map as a JSON object, or `null`.
pub fn serialize<S: Serializer>(v: &Option<DataMap>, s: S) -> Result<S::Ok, S::Error> {
    v.serialize(s)
}

/// Reads either form.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DataMap>, D::Error> {
    match Json::deserialize(d)? {
        Json::Null => Ok(None),
        Json::Object(map) => Ok(Some(map)),
        Json::String(text) => from_cbor_base64(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom(
            "data must be an object or a base64 CBOR string",
        )),
    }
}

/// Decodes the base64 CBOR form of a data map.
pub fn from_cbor_base64(text: &str) -> Result<DataMap, String> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| format!("data is not base64: {e}"))?;
    let value: Cbor =
        ciborium::from_reader(bytes.as_slice()).map_err(|e| format!("data is not CBOR: {e}"))?;
    match to_json(value)? {
        Json::Object(map) => Ok(map),
        _ => Err("CBOR data is not a map".to_owned()),
    }
}

fn text_of_bytes(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| "CBOR byte string is not UTF-8".to_owned())
}

fn to_json(value: Cbor) -> Result<Json, String> {
    Ok(match value {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Text(s) => Json::String(s),
        Cbor::Bytes(b) => Json::String(text_of_bytes(b)?),
        Cbor::Integer(i) => {
            let i = i128::from(i);
            if let Ok(v) = i64::try_from(i) {
                Json::from(v)
            } else if let Ok(v) = u64::try_from(i) {
                Json::from(v)
            } else {
                return Err(format!("CBOR integer {i} out of range"));
            }
        }
        Cbor::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| format!("CBOR float {f} has no JSON form"))?,
        Cbor::Array(items) => {
            Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Cbor::Map(entries) => {
            let mut map = DataMap::new();
            for (key, value) in entries {
                let key = match key {
                    Cbor::Text(s) => s,
                    Cbor::Bytes(b) => text_of_bytes(b)?,
                    _ => return Err("CBOR map key is not a string".to_owned()),
                };
                map.insert(key, to_json(value)?);
            }
            Json::Object(map)
        }
        Cbor::Tag(128, inner) => match *inner {
            Cbor::Array(items) => to_json(Cbor::Array(items))?,
            _ => return Err("CBOR tuple (tag 128) does not wrap an array".to_owned()),
        },
        Cbor::Tag(37, inner) => match *inner {
            Cbor::Bytes(b) if b.len() == 16 => Json::String(uuid_text(&b)),
            _ => return Err("CBOR UUID (tag 37) is not 16 bytes".to_owned()),
        },
        Cbor::Tag(tag, _) => return Err(format!("unsupported CBOR tag {tag}")),
        _ => return Err("unsupported CBOR value".to_owned()),
    })
}

fn uuid_text(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// True when a data map is absent or empty (such fields are omitted).
pub(super) fn data_is_empty(v: &Option<DataMap>) -> bool {
    v.as_ref().map_or(true, |m| m.is_empty())
}
