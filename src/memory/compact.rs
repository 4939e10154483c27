//! Data maps kept compact: a stored map is its JSON text.
//!
//! A `serde_json` map allocates a whole B-tree node even for one key, about
//! 600 bytes; the text of `{"i":1}` is seven. Units and attempts store their
//! data as text and convert at the API boundary: a write serializes the map
//! once, a read parses it back (the text round-trips every value exactly).

use std::fmt;

use crate::error::{Error, Result};
use crate::model::DataMap;

/// A data map as JSON text; the empty map is no text at all.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct CompactData(Box<[u8]>);

impl CompactData {
    pub(crate) fn encode(data: &DataMap) -> Result<Self> {
        Self::encode_with(data, &mut Vec::new())
    }

    /// [`encode`](Self::encode) writing through `buffer`, so that a batch
    /// allocates only each text's exact size.
    pub(crate) fn encode_with(data: &DataMap, buffer: &mut Vec<u8>) -> Result<Self> {
        if data.is_empty() {
            return Ok(Self::default());
        }
        buffer.clear();
        serde_json::to_writer(&mut *buffer, data).map_err(Error::backend)?;
        Ok(CompactData(Box::from(buffer.as_slice())))
    }

    pub(crate) fn decode(&self) -> Result<DataMap> {
        if self.0.is_empty() {
            return Ok(DataMap::new());
        }
        serde_json::from_slice(&self.0).map_err(Error::backend)
    }
}

impl fmt::Debug for CompactData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactData({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;

    #[test]
    fn maps_round_trip_exactly() {
        let maps = [
            DataMap::new(),
            data!({"i": 1}),
            data!({"f": 0.1, "big": u64::MAX, "neg": i64::MIN, "x": 1.0, "e": 1e300}),
            data!({"s": "quote \" and \\ and \u{1F600}", "n": null, "l": [1, [2, {"a": {}}]]}),
        ];
        for map in maps {
            let compact = CompactData::encode(&map).unwrap();
            assert_eq!(compact.decode().unwrap(), map);
        }
    }

    #[test]
    fn one_key_data_is_its_text() {
        let compact = CompactData::encode(&data!({"i": 123})).unwrap();
        assert_eq!(&*compact.0, br#"{"i":123}"#);
        assert!(CompactData::encode(&DataMap::new()).unwrap().0.is_empty());
    }

    #[test]
    fn a_reused_buffer_leaves_nothing_behind() {
        let mut buffer = Vec::new();
        let long =
            CompactData::encode_with(&data!({"long": "x".repeat(100)}), &mut buffer).unwrap();
        let short = CompactData::encode_with(&data!({"i": 1}), &mut buffer).unwrap();
        assert_eq!(long.decode().unwrap(), data!({"long": "x".repeat(100)}));
        assert_eq!(&*short.0, br#"{"i":1}"#);
    }
}
