//! Serde adapter for an optional data map in either wire form.
//!
//! Output is always the JSON-object form. Input is a JSON object, `null`
//! (`None`), or a string holding the standard base64 (padded) of a CBOR
//! map. CBOR tuples (tag 128) become arrays, UUIDs (tag 37) their canonical
//! text, byte strings text when they are UTF-8; anything JSON cannot hold
//! (other tags, non-UTF-8 bytes, non-finite floats, huge integers) is an error.
//! So is CBOR nested deeper than the reader goes, as JSON is past
//! `serde_json`'s limit; [`is_too_deep`] tells either failure apart.
//!
//! CBOR is read straight into the JSON form, item by item, so decoding holds
//! one tree, never a CBOR tree beside its JSON copy: a body of tiny CBOR
//! items costs about what the same data sent as JSON does.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
        Json::String(text) => from_cbor_base64(&text).map(Some).map_err(de::Error::custom),
        _ => Err(de::Error::custom(
            "data must be an object or a base64 CBOR string",
        )),
    }
}

/// The message of CBOR data nested deeper than the CBOR reader goes
/// (256 levels), which [`is_too_deep`] recognises.
const CBOR_TOO_DEEP: &str = "CBOR data nests too deep to read";

/// The start of `serde_json`'s message for JSON nested deeper than it
/// reads (128 levels).
const JSON_TOO_DEEP: &str = "recursion limit exceeded";

/// True when `error`, from decoding a document that holds a data map, says
/// the data nests deeper than a decoder reads: JSON past `serde_json`'s
/// recursion limit, or CBOR past the CBOR reader's. Both limits lie beyond
/// [`MAX_DATA_DEPTH`](crate::rules::limits::MAX_DATA_DEPTH), so such data
/// is [`Error::DataTooDeep`](crate::Error::DataTooDeep), as any data over
/// that limit is.
pub fn is_too_deep(error: &serde_json::Error) -> bool {
    let text = error.to_string();
    text.starts_with(JSON_TOO_DEEP) || text.starts_with(CBOR_TOO_DEEP)
}

/// Decodes the base64 CBOR form of a data map.
pub fn from_cbor_base64(text: &str) -> Result<DataMap, String> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| format!("data is not base64: {e}"))?;
    match ciborium::from_reader(bytes.as_slice()) {
        Ok(Decoded(Json::Object(map))) => Ok(map),
        Ok(_) => Err("CBOR data is not a map".to_owned()),
        // Raised by `Item`: the message says what JSON cannot hold.
        Err(ciborium::de::Error::Semantic(None, message)) => Err(message),
        Err(ciborium::de::Error::RecursionLimitExceeded) => Err(CBOR_TOO_DEEP.to_owned()),
        Err(e) => Err(format!("data is not CBOR: {e}")),
    }
}

/// A whole CBOR item, read as JSON.
struct Decoded(Json);

impl<'de> Deserialize<'de> for Decoded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Item::Any.deserialize(d).map(Decoded)
    }
}

/// What the next CBOR item must be, and reads it as JSON.
#[derive(Clone, Copy)]
enum Item {
    /// Any item JSON can hold.
    Any,
    /// A map key: text, or bytes that are UTF-8 text.
    Key,
    /// The array inside a tuple (tag 128).
    Tuple,
    /// The 16 bytes inside a UUID (tag 37).
    Uuid,
}

impl Item {
    fn mismatch<E: de::Error>(self) -> E {
        E::custom(match self {
            Item::Any => "unsupported CBOR value",
            Item::Key => "CBOR map key is not a string",
            Item::Tuple => "CBOR tuple (tag 128) does not wrap an array",
            Item::Uuid => "CBOR UUID (tag 37) is not 16 bytes",
        })
    }

    /// `value` if this position takes a plain JSON value.
    fn scalar<E: de::Error>(self, value: Json) -> Result<Json, E> {
        match self {
            Item::Any => Ok(value),
            _ => Err(self.mismatch()),
        }
    }

    fn integer<E: de::Error>(self, i: i128) -> Result<Json, E> {
        if let Ok(v) = i64::try_from(i) {
            self.scalar(Json::from(v))
        } else if let Ok(v) = u64::try_from(i) {
            self.scalar(Json::from(v))
        } else {
            Err(E::custom(format!("CBOR integer {i} out of range")))
        }
    }

    fn text<E: de::Error>(self, text: String) -> Result<Json, E> {
        match self {
            Item::Any | Item::Key => Ok(Json::String(text)),
            _ => Err(self.mismatch()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Item {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CBOR item JSON can hold")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
        self.scalar(Json::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Json, E> {
        self.scalar(Json::from(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Json, E> {
        self.scalar(Json::from(u))
    }

    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Json, E> {
        self.integer(i)
    }

    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Json, E> {
        match i128::try_from(u) {
            Ok(i) => self.integer(i),
            Err(_) => Err(E::custom(format!("CBOR integer {u} out of range"))),
        }
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Json, E> {
        match serde_json::Number::from_f64(f) {
            Some(n) => self.scalar(Json::Number(n)),
            None => Err(E::custom(format!("CBOR float {f} has no JSON form"))),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
        self.text(s.to_owned())
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
        self.text(s)
    }

    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Json, E> {
        self.visit_byte_buf(b.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<Json, E> {
        match self {
            Item::Uuid if b.len() == 16 => Ok(Json::String(uuid_text(&b))),
            Item::Any | Item::Key => match String::from_utf8(b) {
                Ok(text) => Ok(Json::String(text)),
                Err(_) => Err(E::custom("CBOR byte string is not UTF-8")),
            },
            _ => Err(self.mismatch()),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        self.scalar(Json::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        self.scalar(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        if !matches!(self, Item::Any | Item::Tuple) {
            return Err(self.mismatch());
        }
        // The declared length is only the sender's claim: nothing is
        // reserved for it, or nested arrays claiming many items would make
        // a few bytes reserve megabytes.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Item::Any)? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Json, A::Error> {
        if !matches!(self, Item::Any) {
            return Err(self.mismatch());
        }
        let mut map = DataMap::new();
        while let Some(key) = entries.next_key_seed(Item::Key)? {
            let Json::String(key) = key else {
                return Err(Item::Key.mismatch());
            };
            let value = entries.next_value_seed(Item::Any)?;
            map.insert(key, value);
        }
        Ok(Json::Object(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, tagged: A) -> Result<Json, A::Error> {
        if !matches!(self, Item::Any) {
            return Err(self.mismatch());
        }
        let (IgnoredAny, content) = tagged.variant()?;
        de::VariantAccess::tuple_variant(content, 2, Tagged)
    }
}

/// A tagged CBOR item, which the CBOR reader hands over as the tag, then
/// the item it wraps.
struct Tagged;

impl<'de> Visitor<'de> for Tagged {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CBOR tag and its item")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let tag: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("CBOR tag without a number"))?;
        let inner = match tag {
            128 => Item::Tuple,
            37 => Item::Uuid,
            _ => return Err(de::Error::custom(format!("unsupported CBOR tag {tag}"))),
        };
        seq.next_element_seed(inner)?
            .ok_or_else(|| de::Error::custom("CBOR tag without an item"))
    }
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
