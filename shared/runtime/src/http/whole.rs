//! Whole numbers in request bodies as JSON Schema reads `integer`: `27` and `27.0` alike.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// Largest whole number a JSON float holds exactly (2^53).
const EXACT_FLOAT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// A non-negative whole number of a JSON body. JSON Schema's `integer`, which the OpenAPI
/// document promises, is any number without a fractional part: `27`, `27.0` and `2.7e1` are the
/// same value, and a client whose JSON library writes `27.0` must not get a 400 for it. `27.5`,
/// `-1` and `"27"` are refused (400 `invalid_body`). Declare the field with
/// `#[schema(value_type = u64)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Whole(pub u64);

impl From<Whole> for u64 {
    fn from(value: Whole) -> Self {
        value.0
    }
}

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WholeVisitor)
    }
}

struct WholeVisitor;

impl Visitor<'_> for WholeVisitor {
    type Value = Whole;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number, 0 or more")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Whole, E> {
        Ok(Whole(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Whole, E> {
        u64::try_from(value)
            .map(Whole)
            .map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Whole, E> {
        if value.fract() == 0.0 && (0.0..=EXACT_FLOAT_LIMIT).contains(&value) {
            // Exact: a whole float no larger than 2^53 converts without loss.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Whole(value as u64))
        } else {
            Err(E::invalid_value(Unexpected::Float(value), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<u64, String> {
        serde_json::from_str::<Whole>(json)
            .map(u64::from)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_number_is_read_however_json_writes_it() {
        for (json, value) in [
            ("27", 27),
            ("27.0", 27),
            ("2.7e1", 27),
            ("0.0", 0),
            ("-0.0", 0),
        ] {
            assert_eq!(parse(json), Ok(value), "{json}");
        }
        assert_eq!(parse("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn fractions_negatives_strings_and_inexact_floats_are_refused() {
        for json in ["27.5", "-1", "-1.0", "\"27\"", "null", "1e300", "true"] {
            let error = parse(json).expect_err(json);
            assert!(
                error.contains("a whole number, 0 or more"),
                "{json}: {error}"
            );
        }
    }
}
