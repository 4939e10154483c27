//! Data maps as `jsonb` parameters, written so that PostgreSQL keeps every
//! number's kind.
//!
//! `jsonb` holds a number as a `numeric` and prints it back in plain
//! notation, with as many decimals as it was written with. serde_json
//! writes a float of magnitude 10¹⁶ or more in exponent form (`1e19`),
//! which would come back as the integer `10000000000000000000`. Floats are
//! written here in plain notation, with a decimal point
//! (`10000000000000000000.0`; [`PlainFloats`]), which comes back as the
//! same float: the text the data limit measures.

use std::borrow::Cow;
use std::error::Error;
use std::io;

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use tokio_postgres::types::{accepts, to_sql_checked, IsNull, ToSql, Type};

use crate::model::DataMap;
use crate::rules::limits::PlainFloats;

/// A data map (NUL-escaped, see the `nul` module) as a `jsonb` parameter.
#[derive(Debug)]
pub(crate) struct Jsonb<'a>(pub(crate) Cow<'a, DataMap>);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        put_version(ty, out);
        write(&self.0, out.writer())?;
        Ok(IsNull::No)
    }

    accepts!(JSON, JSONB);
    to_sql_checked!();
}

/// A data map already written by [`write`], as a `jsonb` parameter.
#[derive(Debug)]
pub(crate) struct WrittenJsonb<'a>(pub(crate) &'a [u8]);

impl ToSql for WrittenJsonb<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        put_version(ty, out);
        out.put_slice(self.0);
        Ok(IsNull::No)
    }

    accepts!(JSON, JSONB);
    to_sql_checked!();
}

/// Writes `map` (already NUL-escaped) as compact JSON with floats in
/// plain notation: the text of a `jsonb` parameter.
pub(crate) fn write(map: &DataMap, out: impl io::Write) -> serde_json::Result<()> {
    map.serialize(&mut serde_json::Serializer::with_formatter(
        out,
        PlainFloats,
    ))
}

/// The binary format's version, which a `jsonb` parameter starts with.
fn put_version(ty: &Type, out: &mut BytesMut) {
    if *ty == Type::JSONB {
        out.put_u8(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(value: f64) -> String {
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, PlainFloats);
        value.serialize(&mut serializer).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn large_floats_are_written_as_decimals_that_read_back_exactly() {
        for value in [
            1e16,
            -1e16,
            1e19,
            12_345_678_901_234_567_890.0,
            1.5e300,
            f64::MAX,
            f64::MIN,
        ] {
            let text = written(value);
            assert!(!text.contains('e'), "{text}");
            assert!(text.ends_with(".0"), "{text}");
            assert_eq!(text.parse::<f64>().unwrap(), value, "{text}");
            // As the client reads `jsonb` back.
            let read: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(read, serde_json::json!(value), "{text}");
        }
        assert_eq!(written(1e19), "10000000000000000000.0");
    }

    #[test]
    fn other_floats_read_back_exactly() {
        for value in [
            0.0,
            2.5,
            1e15,
            9_999_999_999_999_998.0,
            1e-7,
            f64::MIN_POSITIVE,
            5e-324,
        ] {
            let text = written(value);
            assert!(!text.contains('e'), "{text}");
            let read: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(read, serde_json::json!(value), "{text}");
        }
        assert_eq!(written(2.5), "2.5");
        assert_eq!(written(1e-7), "0.0000001");
    }
}
