//! `ByteCount`: how the schema carries a number of bytes (file sizes,
//! quotas, limits). GraphQL's `Int` is signed 32-bit, so it cannot say
//! 2 GiB, let alone a 10 GiB quota; this scalar is a JSON number bounded by
//! 2^53 − 1, the largest integer every JSON client (JavaScript's `Number`
//! included) reads exactly. On input a decimal string is accepted too, for
//! clients that keep 64-bit integers as strings.

use async_graphql::{InputValueError, InputValueResult, Number, Scalar, ScalarType, Value};

use crate::error::ApiError;

/// The largest count the scalar carries: 2^53 − 1, JavaScript's
/// `Number.MAX_SAFE_INTEGER` (8 PiB).
pub const MAX_BYTE_COUNT: u64 = (1 << 53) - 1;

/// A count of bytes, from 0 to 2^53 − 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteCount(u64);

impl ByteCount {
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A count the scalar cannot carry exactly (negative, or above
/// 2^53 − 1). On output that is a stored or configured value out of range,
/// so the field answers `INTERNAL` with the cause logged: a size is never
/// rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteCountOutOfRange(i128);

impl TryFrom<u64> for ByteCount {
    type Error = ByteCountOutOfRange;

    fn try_from(n: u64) -> Result<Self, Self::Error> {
        if n <= MAX_BYTE_COUNT { Ok(Self(n)) } else { Err(ByteCountOutOfRange(n.into())) }
    }
}

/// Counts are stored as `BIGINT`.
impl TryFrom<i64> for ByteCount {
    type Error = ByteCountOutOfRange;

    fn try_from(n: i64) -> Result<Self, Self::Error> {
        u64::try_from(n).map_err(|_| ByteCountOutOfRange(n.into())).and_then(Self::try_from)
    }
}

impl From<ByteCountOutOfRange> for async_graphql::Error {
    fn from(e: ByteCountOutOfRange) -> Self {
        ApiError::internal(anyhow::anyhow!("{} bytes cannot be answered as a ByteCount (0 to {MAX_BYTE_COUNT})", e.0)).into()
    }
}

/// What an output field holds: the count, or why it cannot be given. The
/// error becomes the field's error only when the field is selected.
pub type ByteCountField = Result<ByteCount, ByteCountOutOfRange>;

/// A non-negative integer count of bytes, exact up to 2^53 − 1
/// (9007199254740991, JavaScript's `Number.MAX_SAFE_INTEGER`, about 8 PiB).
///
/// Output: always a JSON number.
///
/// Input: a JSON number with no fractional part, from 0 to 9007199254740991,
/// or a string of decimal digits in that range (`"10737418240"`), for
/// clients that keep 64-bit integers as strings. Anything else is refused:
/// negative, fractional, larger numbers, and any other string.
#[Scalar]
impl ScalarType for ByteCount {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => from_number(n),
            Value::String(s) => from_digits(s),
            _ => Err(InputValueError::expected_type(value)),
        }
        // The API's code for a value the client must change, as before
        // this scalar (a negative `sizeBytes` was refused by the resolver).
        .map_err(|e| e.with_extension("code", "BAD_USER_INPUT"))
    }

    fn to_value(&self) -> Value {
        Value::Number(Number::from(self.0))
    }
}

fn too_large(shown: &str) -> InputValueError<ByteCount> {
    InputValueError::custom(format!("{shown} is larger than the largest byte count, {MAX_BYTE_COUNT} (2^53 - 1)"))
}

fn from_number(n: &Number) -> InputValueResult<ByteCount> {
    if let Some(n) = n.as_u64() {
        return ByteCount::try_from(n).map_err(|_| too_large(&n.to_string()));
    }
    if let Some(n) = n.as_i64() {
        return Err(InputValueError::custom(format!("a byte count cannot be negative, and {n} is")));
    }
    // A float: `1.5`, `-2.0`, or an integer written `1e3` or `1024.0`.
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.is_sign_negative() && f != 0.0 {
        return Err(InputValueError::custom(format!("a byte count cannot be negative, and {n} is")));
    }
    if f.fract() != 0.0 || !f.is_finite() {
        return Err(InputValueError::custom(format!("a byte count is a whole number, and {n} is not")));
    }
    // Every integer up to 2^53 is exact as an f64, so this compares exactly.
    if f > MAX_BYTE_COUNT as f64 {
        return Err(too_large(&n.to_string()));
    }
    Ok(ByteCount(f as u64))
}

fn from_digits(s: &str) -> InputValueResult<ByteCount> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InputValueError::custom(format!(
            "a byte count given as a string is decimal digits only (like \"10737418240\"), and {s:?} is not"
        )));
    }
    // Digits only, so the one failure left is overflow.
    s.parse::<u64>().ok().and_then(|n| ByteCount::try_from(n).ok()).ok_or_else(|| too_large(&format!("{s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<u64, String> {
        let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        <ByteCount as ScalarType>::parse(v).map(ByteCount::get).map_err(|e| e.into_server_error(Default::default()).message)
    }

    #[test]
    fn numbers_and_digit_strings_up_to_2_pow_53_minus_1_are_taken() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("10737418240"), Ok(10_737_418_240));
        assert_eq!(parse("\"10737418240\""), Ok(10_737_418_240));
        assert_eq!(parse("9007199254740991"), Ok(MAX_BYTE_COUNT));
        assert_eq!(parse("\"9007199254740991\""), Ok(MAX_BYTE_COUNT));
        assert_eq!(parse("1024.0"), Ok(1024));
        assert_eq!(parse("1e3"), Ok(1000));
        assert_eq!(parse("\"007\""), Ok(7));
    }

    #[test]
    fn anything_else_is_refused_saying_why() {
        for (json, why) in [
            ("-1", "negative"),
            ("-1.5", "negative"),
            ("\"-1\"", "digits only"),
            ("1.5", "whole number"),
            ("9007199254740992", "larger"),
            ("18446744073709551616", "larger"),
            ("9007199254740992.0", "larger"),
            ("\"9007199254740992\"", "larger"),
            ("\"99999999999999999999999\"", "larger"),
            ("\"\"", "digits only"),
            ("\" 12\"", "digits only"),
            ("\"+12\"", "digits only"),
            ("\"1e3\"", "digits only"),
            ("\"12.0\"", "digits only"),
            ("true", "ByteCount"),
            ("null", "ByteCount"),
        ] {
            let err = parse(json).expect_err(json);
            assert!(err.contains(why), "{json}: {err}");
        }
    }

    #[test]
    fn output_is_a_json_number_and_out_of_range_counts_are_not_made() {
        assert_eq!(ByteCount::try_from(10_737_418_240_i64).map(|b| b.to_value()), Ok(Value::Number(10_737_418_240_u64.into())));
        assert!(ByteCount::try_from(-1_i64).is_err());
        assert!(ByteCount::try_from(MAX_BYTE_COUNT + 1).is_err());
        assert!(ByteCount::try_from(i64::MAX).is_err());
    }
}
