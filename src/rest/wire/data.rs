//! Serde adapter for an optional data map in either wire form.
//!
//! Output is always the JSON-object form. Input is a JSON object, `null`
//! (`None`), or a string holding the standard base64 (padded) of one CBOR
//! map with nothing after it. CBOR tuples (tag 128) become arrays, UUIDs
//! (tag 37) their canonical text, byte strings text when they are UTF-8,
//! and integers as JSON reads the same digits: beyond 64 bits (bignums,
//! tags 2 and 3, included) the nearest float; anything JSON cannot hold
//! (other tags, non-UTF-8 bytes, non-finite floats, integers past the
//! largest float) is an error, and so is a negative bignum of 16 bytes
//! below -2^127, which the CBOR reader itself refuses. So is CBOR nested
//! deeper than the reader goes, as JSON is past `serde_json`'s limit;
//! [`is_too_deep`] tells either failure apart.
//!
//! In an answer, which a client reads from a server that may keep byte
//! strings as they are, non-UTF-8 bytes are no error: they read as the
//! base64 text the JSON form writes for bytes (see [`answer`]), so that one
//! such value does not make a whole document unreadable. A byte string key
//! reads as its text, so it replaces an entry of the same text key, as a
//! key given again does.
//!
//! CBOR is read straight into the JSON form, item by item, so decoding holds
//! one tree, never a CBOR tree beside its JSON copy: a body of tiny CBOR
//! items costs about what the same data sent as JSON does.
//!
//! Decoding stops building the map once what it has read must be longer
//! than [`MAX_DATA_BYTES`] as compact JSON (each item counted at its
//! shortest: a string as its quotes and unescaped bytes, a number as one
//! byte), which no backend stores: the rest is read without being kept,
//! and the map is an error, [`is_too_deep`] if it nests deeper than
//! [`MAX_DATA_DEPTH`] (as a backend checks nesting first), else
//! [`is_too_large`]. A tree of tiny items takes many times its encoding's
//! length in memory; so it takes at most that multiple of the limit,
//! whatever the size of the body around it. A key given again replaces its
//! entry, and the entry replaced no longer counts; but a map that went over
//! the limit was not kept, so it stays over even if a later value of the
//! same key would have made it short again.

use std::cell::Cell;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

use crate::error::Error;
use crate::model::DataMap;
use crate::rules::limits::{MAX_DATA_BYTES, MAX_DATA_DEPTH};

/// Writes the map as a JSON object, or `null`.
pub fn serialize<S: Serializer>(v: &Option<DataMap>, s: S) -> Result<S::Ok, S::Error> {
    v.serialize(s)
}

/// Reads either form, refusing byte strings that are not UTF-8.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DataMap>, D::Error> {
    d.deserialize_any(EitherForm(NonUtf8::Refused))
}

/// The data of an answer a client reads: either form, a byte string that
/// is not UTF-8 read as the standard base64 (padded) of its bytes, the text
/// the JSON form gives it.
pub mod answer {
    use super::{DataMap, Deserializer, EitherForm, NonUtf8};

    pub use super::serialize;

    /// Reads either form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DataMap>, D::Error> {
        d.deserialize_any(EitherForm(NonUtf8::Base64))
    }
}

/// What a CBOR byte string that is not UTF-8 reads as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NonUtf8 {
    /// Nothing: the data is refused.
    Refused,
    /// The standard base64 (padded) of its bytes.
    Base64,
}

/// The visitor of a data field: a map, `null`, or base64 CBOR.
struct EitherForm(NonUtf8);

impl<'de> Visitor<'de> for EitherForm {
    type Value = Option<DataMap>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("data as an object or a base64 CBOR string")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        decode_cbor_base64(text, self.0)
            .map(Some)
            .map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, entries: A) -> Result<Self::Value, A::Error> {
        let budget = Budget::new();
        let map = Reader::top(&budget).visit_map(entries)?;
        budget.verdict(map).map(Some).map_err(de::Error::custom)
    }
}

/// What decoding one data map may still build: bytes of compact JSON,
/// counted at their shortest, and how deep the map nests.
struct Budget {
    left: Cell<usize>,
    /// Set once the map must be longer than [`MAX_DATA_BYTES`].
    over: Cell<bool>,
    /// The deepest level of a container (the map itself is level 1).
    deepest: Cell<usize>,
}

impl Budget {
    const fn new() -> Self {
        Budget {
            left: Cell::new(MAX_DATA_BYTES),
            over: Cell::new(false),
            deepest: Cell::new(0),
        }
    }

    /// As new, for the next map.
    fn reset(&self) {
        self.left.set(MAX_DATA_BYTES);
        self.over.set(false);
        self.deepest.set(0);
    }

    /// Spends `bytes`: false once over the limit, when nothing more is kept.
    fn spend(&self, bytes: usize) -> bool {
        if self.over.get() {
            return false;
        }
        match self.left.get().checked_sub(bytes) {
            Some(left) => {
                self.left.set(left);
                true
            }
            None => {
                self.over.set(true);
                false
            }
        }
    }

    /// Gives back `bytes` spent on what is no longer kept (a map entry
    /// whose key comes again), unless the map is already over the limit.
    fn refund(&self, bytes: usize) {
        if !self.over.get() {
            self.left
                .set(self.left.get().saturating_add(bytes).min(MAX_DATA_BYTES));
        }
    }

    /// Notes a container at `level`.
    fn reach(&self, level: usize) {
        self.deepest.set(self.deepest.get().max(level));
    }

    /// The map read, or the error a backend gives data this long.
    fn verdict(&self, map: Json) -> Result<DataMap, String> {
        if self.over.get() {
            let refused = if self.deepest.get() > MAX_DATA_DEPTH {
                Error::DataTooDeep {
                    limit: MAX_DATA_DEPTH,
                }
            } else {
                Error::DataTooLarge {
                    limit: MAX_DATA_BYTES,
                }
            };
            return Err(refused.to_string());
        }
        match map {
            Json::Object(map) => Ok(map),
            _ => Err("CBOR data is not a map".to_owned()),
        }
    }
}

/// The message of CBOR data nested deeper than the CBOR reader goes
/// (256 levels), which [`is_too_deep`] recognises.
const CBOR_TOO_DEEP: &str = "CBOR data nests too deep to read";

/// The start of `serde_json`'s message for JSON nested deeper than it
/// reads (128 levels).
const JSON_TOO_DEEP: &str = "recursion limit exceeded";

/// True when `error`, from decoding a document that holds a data map, says
/// the data nests deeper than a decoder reads (JSON past `serde_json`'s
/// recursion limit, or CBOR past the CBOR reader's; both lie beyond
/// [`MAX_DATA_DEPTH`]), or that data over the length limit also nests
/// deeper than `MAX_DATA_DEPTH`: such data is [`Error::DataTooDeep`], as
/// any data over that limit is.
pub fn is_too_deep(error: &serde_json::Error) -> bool {
    let text = error.to_string();
    let budgeted = Error::DataTooDeep {
        limit: MAX_DATA_DEPTH,
    };
    text.starts_with(JSON_TOO_DEEP)
        || text.starts_with(CBOR_TOO_DEEP)
        || text.starts_with(&budgeted.to_string())
}

/// True when `error`, from decoding a document that holds a data map, says
/// the data is longer than [`MAX_DATA_BYTES`] as compact JSON, so
/// [`Error::DataTooLarge`].
pub fn is_too_large(error: &serde_json::Error) -> bool {
    let budgeted = Error::DataTooLarge {
        limit: MAX_DATA_BYTES,
    };
    error.to_string().starts_with(&budgeted.to_string())
}

/// Decodes the base64 CBOR form of a data map, refusing byte strings that
/// are not UTF-8.
pub fn from_cbor_base64(text: &str) -> Result<DataMap, String> {
    decode_cbor_base64(text, NonUtf8::Refused)
}

/// Decodes the base64 CBOR form of a data map, reading byte strings that
/// are not UTF-8 as `non_utf8` says.
fn decode_cbor_base64(text: &str, non_utf8: NonUtf8) -> Result<DataMap, String> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| format!("data is not base64: {e}"))?;
    let mut rest = bytes.as_slice();
    CBOR_NON_UTF8.set(non_utf8);
    CBOR_BUDGET.with(|budget| {
        budget.reset();
        match ciborium::from_reader(&mut rest) {
            // One map, as the JSON form is one object: bytes after it are
            // not data to drop unread.
            Ok(Decoded(_)) if !rest.is_empty() => Err(match rest.len() {
                1 => "data is not one CBOR item: 1 byte follows it".to_owned(),
                more => format!("data is not one CBOR item: {more} bytes follow it"),
            }),
            Ok(Decoded(map)) => budget.verdict(map),
            // Raised by `Reader`: the message says what JSON cannot hold.
            Err(ciborium::de::Error::Semantic(None, message)) => Err(message),
            Err(ciborium::de::Error::RecursionLimitExceeded) => Err(CBOR_TOO_DEEP.to_owned()),
            Err(ciborium::de::Error::Semantic(Some(at), message)) => {
                Err(format!("data is not CBOR: {message} at byte {at}"))
            }
            Err(ciborium::de::Error::Syntax(at)) => {
                Err(format!("data is not CBOR: malformed at byte {at}"))
            }
            // The reader holds the whole input: only its end fails a read.
            Err(ciborium::de::Error::Io(_)) if bytes.is_empty() => {
                Err("data is empty, not a CBOR map".to_owned())
            }
            Err(ciborium::de::Error::Io(_)) => Err(format!(
                "data is not CBOR: it ends inside an item, after {} bytes",
                bytes.len()
            )),
        }
    })
}

thread_local! {
    /// The budget of the CBOR map being decoded on this thread (the CBOR
    /// reader passes no state of its caller's to what it builds). No CBOR
    /// is decoded inside another, so one per thread serves.
    static CBOR_BUDGET: Budget = const { Budget::new() };
    /// What the CBOR map being decoded on this thread makes of a byte
    /// string that is not UTF-8.
    static CBOR_NON_UTF8: Cell<NonUtf8> = const { Cell::new(NonUtf8::Refused) };
}

/// A whole CBOR item, read as JSON under [`CBOR_BUDGET`].
struct Decoded(Json);

impl<'de> Deserialize<'de> for Decoded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CBOR_BUDGET.with(|budget| Reader::top(budget).deserialize(d).map(Decoded))
    }
}

/// What the next CBOR item must be.
#[derive(Clone, Copy)]
enum Item {
    /// Any item JSON can hold.
    Any,
    /// A map key: text, or bytes, read as a byte string value is.
    Key,
    /// The array inside a tuple (tag 128).
    Tuple,
    /// The 16 bytes inside a UUID (tag 37).
    Uuid,
    /// The magnitude inside a bignum (tag 2, or 3 when `negative`).
    Bignum { negative: bool },
}

impl Item {
    fn mismatch<E: de::Error>(self) -> E {
        E::custom(match self {
            Item::Any => "unsupported CBOR value",
            Item::Key => "CBOR map key is not a string",
            Item::Tuple => "CBOR tuple (tag 128) does not wrap an array",
            Item::Uuid => "CBOR UUID (tag 37) is not 16 bytes",
            Item::Bignum { .. } => "CBOR bignum (tag 2 or 3) is not a byte string",
        })
    }
}

/// The bytes [`Reader`] spends on `value`: its compact JSON, each number
/// counted as one byte and each string unescaped, at its shortest.
fn counted_len(value: &Json) -> usize {
    match value {
        Json::Null | Json::Bool(true) => 4,
        Json::Bool(false) => 5,
        Json::Number(_) => 1,
        Json::String(text) => text.len() + 2,
        Json::Array(items) => {
            2 + items.iter().map(counted_len).sum::<usize>() + items.len().saturating_sub(1)
        }
        Json::Object(entries) => {
            let entries_len: usize = entries
                .iter()
                .map(|(key, value)| key.len() + 2 + counted_len(value))
                .sum();
            2 + entries_len + (2 * entries.len()).saturating_sub(1)
        }
    }
}

/// Reads the next item, of either form, as JSON, spending its shortest
/// compact JSON from `budget`: once that is spent, items are read and
/// checked but not kept (each reads as `null`).
#[derive(Clone, Copy)]
struct Reader<'b> {
    item: Item,
    budget: &'b Budget,
    /// The level of a container read here.
    level: usize,
}

impl<'b> Reader<'b> {
    /// The reader of a whole data map.
    fn top(budget: &'b Budget) -> Self {
        Reader {
            item: Item::Any,
            budget,
            level: 1,
        }
    }

    /// The reader of an item inside the container read here.
    fn inside(self, item: Item) -> Self {
        Reader {
            item,
            budget: self.budget,
            level: self.level + 1,
        }
    }

    /// `value`, if this position takes a plain JSON value, written as
    /// `bytes` at the shortest.
    fn scalar<E: de::Error>(self, bytes: usize, value: impl FnOnce() -> Json) -> Result<Json, E> {
        match self.item {
            Item::Any => Ok(self.kept(bytes, value)),
            _ => Err(self.item.mismatch()),
        }
    }

    /// `value()` if the budget has `bytes` left, else `null`.
    fn kept(self, bytes: usize, value: impl FnOnce() -> Json) -> Json {
        if self.budget.spend(bytes) {
            value()
        } else {
            Json::Null
        }
    }

    /// An integer as JSON reads its digits: past 64 bits, the nearest
    /// float (`as` rounds to nearest, as serde_json's parse does).
    fn integer<E: de::Error>(self, i: i128) -> Result<Json, E> {
        if let Ok(v) = i64::try_from(i) {
            self.scalar(1, || Json::from(v))
        } else if let Ok(v) = u64::try_from(i) {
            self.scalar(1, || Json::from(v))
        } else {
            self.float(i as f64)
        }
    }

    fn float<E: de::Error>(self, f: f64) -> Result<Json, E> {
        match serde_json::Number::from_f64(f) {
            Some(n) => self.scalar(1, || Json::Number(n)),
            None => Err(E::custom(format!("CBOR float {f} has no JSON form"))),
        }
    }

    /// A bignum of big-endian magnitude `bytes`: `n`, or `-1 - n`.
    fn bignum<E: de::Error>(self, bytes: &[u8], negative: bool) -> Result<Json, E> {
        // A number, where the tag stood.
        let number = Reader {
            item: Item::Any,
            ..self
        };
        let bytes = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
        let mut magnitude = [0u8; 16];
        if let Some(start) = magnitude.len().checked_sub(bytes.len()) {
            magnitude[start..].copy_from_slice(bytes);
            if let Ok(n) = i128::try_from(u128::from_be_bytes(magnitude)) {
                return number.integer(if negative { -1 - n } else { n });
            }
        }
        // Past 127 bits: the nearest float to its decimal digits, if one is
        // finite (2^1024 and beyond are not).
        let f = (bytes.len() <= 128)
            .then(|| decimal(bytes, negative).parse::<f64>().ok())
            .flatten()
            .filter(|f| f.is_finite());
        match f {
            Some(f) => number.float(f),
            None => Err(E::custom("CBOR bignum out of range")),
        }
    }

    /// A string of `len` bytes, made by `owned` if kept.
    fn text<E: de::Error>(self, len: usize, owned: impl FnOnce() -> String) -> Result<Json, E> {
        match self.item {
            Item::Any | Item::Key => Ok(self.kept(len + 2, || Json::String(owned()))),
            _ => Err(self.item.mismatch()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Reader<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reader<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an item JSON can hold")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
        self.scalar(if b { 4 } else { 5 }, || Json::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Json, E> {
        self.scalar(1, || Json::from(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Json, E> {
        self.scalar(1, || Json::from(u))
    }

    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Json, E> {
        self.integer(i)
    }

    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Json, E> {
        match i128::try_from(u) {
            Ok(i) => self.integer(i),
            Err(_) => self.float(u as f64),
        }
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Json, E> {
        self.float(f)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
        self.text(s.len(), || s.to_owned())
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
        self.text(s.len(), || s)
    }

    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Json, E> {
        self.visit_byte_buf(b.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<Json, E> {
        match self.item {
            Item::Uuid if b.len() == 16 => Ok(self.kept(38, || Json::String(uuid_text(&b)))),
            Item::Bignum { negative } => self.bignum(&b, negative),
            Item::Any | Item::Key => match String::from_utf8(b) {
                Ok(text) => self.visit_string(text),
                Err(bytes) if CBOR_NON_UTF8.get() == NonUtf8::Base64 => {
                    self.visit_string(STANDARD.encode(bytes.into_bytes()))
                }
                Err(_) => Err(E::custom("CBOR byte string is not UTF-8")),
            },
            _ => Err(self.item.mismatch()),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        self.scalar(4, || Json::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        self.scalar(4, || Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        if !matches!(self.item, Item::Any | Item::Tuple) {
            return Err(self.item.mismatch());
        }
        self.budget.reach(self.level);
        // The declared length is only the sender's claim: nothing is
        // reserved for it, or nested arrays claiming many items would make
        // a few bytes reserve megabytes.
        let mut items = Vec::new();
        // Brackets, and a comma before each item but the first.
        let mut kept = self.budget.spend(2);
        while let Some(item) = seq.next_element_seed(self.inside(Item::Any))? {
            kept &= items.is_empty() || self.budget.spend(1);
            if kept {
                items.push(item);
            } else {
                items = Vec::new();
            }
        }
        Ok(if kept { Json::Array(items) } else { Json::Null })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Json, A::Error> {
        if !matches!(self.item, Item::Any) {
            return Err(self.item.mismatch());
        }
        self.budget.reach(self.level);
        let mut map = DataMap::new();
        // Braces, and a colon after each key and a comma before each entry
        // but the first.
        let mut kept = self.budget.spend(2);
        let mut first = true;
        while let Some(key) = entries.next_key_seed(self.inside(Item::Key))? {
            // A key given again replaces its entry, as a JSON reader keeps
            // the last: the entry read before is given back before the new
            // value is read, so the map is counted as it is kept.
            if let Json::String(key) = &key {
                if let Some(old) = map.remove(key) {
                    let separators = 2;
                    self.budget
                        .refund(key.len() + 2 + counted_len(&old) + separators);
                }
            }
            let value = entries.next_value_seed(self.inside(Item::Any))?;
            kept &= self.budget.spend(if first { 1 } else { 2 });
            first = false;
            match key {
                Json::String(key) if kept => {
                    map.insert(key, value);
                }
                _ => {
                    kept = false;
                    map = DataMap::new();
                }
            }
        }
        Ok(if kept { Json::Object(map) } else { Json::Null })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, tagged: A) -> Result<Json, A::Error> {
        if !matches!(self.item, Item::Any) {
            return Err(self.item.mismatch());
        }
        let (IgnoredAny, content) = tagged.variant()?;
        de::VariantAccess::tuple_variant(content, 2, Tagged(self))
    }
}

/// A tagged CBOR item, which the CBOR reader hands over as the tag, then
/// the item it wraps, read where `.0` reads.
struct Tagged<'b>(Reader<'b>);

impl<'de> Visitor<'de> for Tagged<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CBOR tag and its item")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let tag: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("CBOR tag without a number"))?;
        let item = match tag {
            128 => Item::Tuple,
            37 => Item::Uuid,
            2 | 3 => Item::Bignum { negative: tag == 3 },
            _ => return Err(de::Error::custom(format!("unsupported CBOR tag {tag}"))),
        };
        seq.next_element_seed(Reader { item, ..self.0 })?
            .ok_or_else(|| de::Error::custom("CBOR tag without an item"))
    }
}

/// The decimal digits of the bignum of big-endian magnitude `bytes` (no
/// leading zero): `n`, or `-1 - n`, signed.
fn decimal(bytes: &[u8], negative: bool) -> String {
    let mut n = bytes.to_vec();
    if negative {
        // -1 - n is -(n + 1).
        for byte in n.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
        if n.first() == Some(&0) {
            n.insert(0, 1);
        }
    }
    let mut digits = Vec::new();
    while n.iter().any(|b| *b != 0) {
        // One long division by ten, from the most significant byte.
        let mut rest = 0u32;
        for byte in n.iter_mut() {
            let value = rest * 256 + u32::from(*byte);
            *byte = (value / 10) as u8;
            rest = value % 10;
        }
        digits.push(b'0' + rest as u8);
    }
    if negative {
        digits.push(b'-');
    }
    digits.iter().rev().map(|d| char::from(*d)).collect()
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
